"""TensorFlow's launch contract: TF_CONFIG in TFJob's shape, pods named by role, the command
run as given, and the CEL rules that refuse what TensorFlow cannot run."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bigmodel.api import BigModelJob, parse_resource
from bigmodel.api.crds import crds
from bigmodel.manifests.frameworks import Member, contract_of
from bigmodel.manifests.job import build_pod, build_service, spec_errors
from kubesandbox.apiserver.crdschema import CRDSchema

JOB_SCHEMA = CRDSchema(
    next(c for c in crds() if c["spec"]["names"]["kind"] == "BigModelJob")["spec"]["versions"][0][
        "schema"
    ]["openAPIV3Schema"]
)
BASE = {"image": "img", "command": ["python", "train.py"], "args": ["--epochs", "2"]}


def body(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "bigmodel.dev/v1alpha1",
        "kind": "BigModelJob",
        "metadata": {"name": "mnist", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {**BASE, **spec},
    }


def tf_job(nodes: int = 3, **tensorflow: int) -> BigModelJob:
    spec: dict[str, Any] = {"framework": "tensorflow", "nodes": nodes, "masterPort": 2222}
    if tensorflow:
        spec["tensorflow"] = tensorflow
    return parse_resource(BigModelJob, body(spec))


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def tf_config(pod: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(env_of(pod)["TF_CONFIG"])
    return config


def test_a_worker_gets_tfjobs_tf_config_with_every_workers_address() -> None:
    pod = build_pod(tf_job(), Member("worker", 1))
    assert tf_config(pod) == {
        "cluster": {
            "worker": [
                "mnist-node-0.mnist.ml.svc:2222",
                "mnist-node-1.mnist.ml.svc:2222",
                "mnist-node-2.mnist.ml.svc:2222",
            ]
        },
        "task": {"type": "worker", "index": 1},
        "environment": "cloud",
    }


def test_parameter_servers_and_the_evaluator_appear_in_the_cluster_only_when_asked_for() -> None:
    job = tf_job(nodes=2, parameterServers=2, evaluators=1)
    config = tf_config(build_pod(job, Member("ps", 1)))
    assert config["cluster"] == {
        "worker": ["mnist-node-0.mnist.ml.svc:2222", "mnist-node-1.mnist.ml.svc:2222"],
        "ps": ["mnist-ps-0.mnist.ml.svc:2222", "mnist-ps-1.mnist.ml.svc:2222"],
        "evaluator": ["mnist-evaluator.mnist.ml.svc:2222"],
    }
    assert config["task"] == {"type": "ps", "index": 1}
    evaluator = tf_config(build_pod(job, Member("evaluator", 0)))
    assert evaluator["task"] == {"type": "evaluator", "index": 0}


@pytest.mark.parametrize(
    ("member", "name"),
    [
        (Member("worker", 0), "mnist-node-0"),
        (Member("ps", 1), "mnist-ps-1"),
        (Member("evaluator", 0), "mnist-evaluator"),
    ],
)
def test_pods_are_named_and_labelled_for_their_role(member: Member, name: str) -> None:
    pod = build_pod(tf_job(parameterServers=2, evaluators=1), member)
    labels = pod["metadata"]["labels"]
    assert (pod["metadata"]["name"], pod["spec"]["hostname"]) == (name, name)
    assert (labels["bigmodel.dev/role"], labels["bigmodel.dev/node-rank"]) == (
        member.role,
        str(member.index),
    )


def test_the_command_runs_as_given_without_a_launcher() -> None:
    container = build_pod(tf_job(), Member("worker", 0))["spec"]["containers"][0]
    assert (container["command"], container["args"]) == (["python", "train.py"], ["--epochs", "2"])
    assert not [name for name in env_of(build_pod(tf_job(), Member("worker", 0))) if "PET_" in name]


def test_the_headless_service_names_the_port_as_tfjob_does() -> None:
    assert build_service(tf_job())["spec"]["ports"][0] == {
        "name": "tfjob-port",
        "port": 2222,
        "protocol": "TCP",
    }


def test_only_workers_are_measured_and_decide() -> None:
    spec = tf_job(parameterServers=1, evaluators=1).spec
    roles = contract_of(spec.framework).roles(spec)
    assert [(r.name, r.measured, r.decides) for r in roles] == [
        ("worker", True, True),
        ("ps", False, False),
        ("evaluator", False, False),
    ]


def test_tf_config_in_user_env_is_refused_naming_the_field() -> None:
    spec = {"framework": "tensorflow", "env": [{"name": "TF_CONFIG", "value": "{}"}]}
    job = parse_resource(BigModelJob, body(spec))
    assert spec_errors(job) == ["spec.env[0].name: TF_CONFIG is set by the operator"]


@pytest.mark.parametrize(
    ("spec", "field", "words"),
    [
        (
            {"framework": "tensorflow", "nodes": 2, "elastic": {"minNodes": 1, "maxNodes": 2}},
            "spec.elastic",
            "elastic applies only to framework pytorch",
        ),
        ({"tensorflow": {"parameterServers": 1}}, "spec.tensorflow", "only when framework is"),
        (
            {"framework": "tensorflow", "procsPerNode": 2},
            "spec.procsPerNode",
            "procsPerNode must be 1 for framework tensorflow",
        ),
        (
            {"framework": "tensorflow", "tensorflow": {"evaluators": 2}},
            "spec.tensorflow.evaluators",
            "at most one evaluator",
        ),
    ],
)
def test_the_schema_refuses_what_tensorflow_cannot_run_naming_the_field(
    spec: dict[str, Any], field: str, words: str
) -> None:
    obj = JOB_SCHEMA.default(body(spec))
    errors = JOB_SCHEMA.validate(obj)
    assert [(e.field, words in e.message) for e in errors] == [(field, True)], errors


def test_a_tensorflow_job_with_its_options_is_admitted() -> None:
    spec = {"framework": "tensorflow", "procsPerNode": 1, "tensorflow": {"parameterServers": 2}}
    assert JOB_SCHEMA.validate(JOB_SCHEMA.default(body(spec))) == []


def test_the_framework_cannot_change_after_creation() -> None:
    old = JOB_SCHEMA.default(body({}))
    new = JOB_SCHEMA.default(body({"framework": "tensorflow"}))
    assert [e.field for e in JOB_SCHEMA.validate(new, old)] == ["spec.framework"]
