"""A BigModelService's children as the builders make them: Deployment, Service, probes,
runtimes, and which changes roll out."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from bigmodel.api import BigModelService, parse_resource
from bigmodel.manifests.service import (
    TEMPLATE_HASH,
    RuntimeImages,
    build_deployment,
    build_service,
    selector_string,
    server_command,
    spec_errors,
    url,
)

IMAGES = RuntimeImages(torch="registry.example.com/server:1", vllm="vllm/vllm-openai:v0.11.0")


def make(spec: dict[str, Any] | None = None, **meta: Any) -> BigModelService:
    body = {
        "metadata": {"name": "chat", "namespace": "ml", "uid": "u", "generation": 1, **meta},
        "spec": {"model": {"name": "tiny", "uri": "/models/tiny"}, **(spec or {})},
    }
    return parse_resource(BigModelService, body)


def container(service: BigModelService, replicas: int = 1) -> dict[str, Any]:
    deployment = build_deployment(service, replicas, IMAGES)
    [server] = deployment["spec"]["template"]["spec"]["containers"]
    return server


def template_hash(service: BigModelService, replicas: int = 1) -> str:
    meta = build_deployment(service, replicas, IMAGES)["spec"]["template"]["metadata"]
    return meta["annotations"][TEMPLATE_HASH]


def test_torch_runs_this_projects_server_with_the_model_and_port() -> None:
    image, command = server_command(make({"args": ["--max-batch-size", "16"]}), IMAGES)
    assert image == IMAGES.torch
    assert command[:3] == ["python", "-m", "bigmodel.serving"]
    assert command[command.index("--model-name") + 1] == "tiny"
    assert command[command.index("--model-uri") + 1] == "/models/tiny"
    assert command[command.index("--port") + 1] == "8000"
    assert command[command.index("--device") + 1] == "cpu"
    assert command[-2:] == ["--max-batch-size", "16"]


def test_torch_with_gpus_runs_on_cuda() -> None:
    _, command = server_command(make({"gpusPerReplica": 1}), IMAGES)
    assert command[command.index("--device") + 1] == "cuda"
    resources = container(make({"gpusPerReplica": 1}))["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"


def test_vllm_serves_tensor_parallel_over_the_replicas_gpus() -> None:
    service = make({"runtime": "vllm", "gpusPerReplica": 2})
    image, command = server_command(service, IMAGES)
    assert image == IMAGES.vllm
    assert command[:3] == ["vllm", "serve", "/models/tiny"]
    assert command[command.index("--served-model-name") + 1] == "tiny"
    assert command[command.index("--tensor-parallel-size") + 1] == "2"
    probes = container(service)
    assert probes["readinessProbe"]["httpGet"]["path"] == "/health"


def test_custom_runs_your_image_and_command_with_tcp_probes() -> None:
    service = make({"runtime": "custom", "image": "me/srv:2", "command": ["srv"], "args": ["-v"]})
    server = container(service)
    assert (server["image"], server["command"], server["args"]) == ("me/srv:2", ["srv"], ["-v"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert server[probe]["tcpSocket"] == {"port": 8000}, probe


def test_a_probe_path_replaces_the_tcp_check_of_a_custom_server() -> None:
    service = make(
        {
            "runtime": "custom",
            "image": "me/srv:2",
            "command": ["srv"],
            "readinessProbe": {"path": "/ready"},
        }
    )
    assert container(service)["readinessProbe"]["httpGet"] == {"path": "/ready", "port": 8000}


def test_the_startup_probe_covers_the_startup_timeout_before_liveness_starts() -> None:
    server = container(make({"startupTimeoutSeconds": 1200}))
    startup = server["startupProbe"]
    assert startup["httpGet"]["path"] == "/v2/health/live"
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 1200
    assert server["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert server["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"


def test_termination_grace_covers_the_longest_request_and_the_drain() -> None:
    pod = build_deployment(make({"maxRequestSeconds": 600}), 1, IMAGES)["spec"]["template"]
    assert pod["spec"]["terminationGracePeriodSeconds"] > 600
    server = pod["spec"]["containers"][0]
    assert server["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert server["terminationMessagePath"] in server["args"]


def test_changing_the_replica_count_never_changes_the_pod_template() -> None:
    assert template_hash(make(), 1) == template_hash(make(), 5)
    five = build_deployment(make(), 5, IMAGES)
    assert five["spec"]["replicas"] == 5


def test_changing_the_model_or_args_changes_the_pod_template() -> None:
    base = template_hash(make())
    assert template_hash(make({"args": ["--max-batch-size", "4"]})) != base
    assert template_hash(make({"model": {"name": "tiny", "uri": "/models/v2"}})) != base


def test_the_rollout_follows_rolling_update() -> None:
    service = make({"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    strategy = build_deployment(service, 2, IMAGES)["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }


def test_the_service_selects_exactly_the_deployments_replicas() -> None:
    service = make()
    deployment = build_deployment(service, 2, IMAGES)
    front = build_service(service)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert front["spec"]["selector"] == selector
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items()
    assert front["spec"]["type"] == "ClusterIP"
    assert front["spec"]["ports"][0]["port"] == 8000
    assert selector_string(service) == ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    assert url(service) == "http://chat.ml.svc:8000"


def test_scheduling_fields_and_the_overlay_reach_the_pods() -> None:
    service = make(
        {
            "nodeSelector": {"gpu": "h200"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "podTemplate": {
                "metadata": {"labels": {"team": "a"}},
                "spec": {"containers": [{"name": "server", "securityContext": {"runAsUser": 1}}]},
            },
        }
    )
    template = build_deployment(service, 1, IMAGES)["spec"]["template"]
    assert template["spec"]["nodeSelector"] == {"gpu": "h200"}
    assert template["spec"]["tolerations"][0]["key"] == "gpu"
    assert template["metadata"]["labels"]["team"] == "a"
    assert template["spec"]["containers"][0]["securityContext"] == {"runAsUser": 1}


def test_settings_the_operator_owns_are_refused_naming_the_field() -> None:
    service = make(
        {
            "podTemplate": {
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{"name": "server", "readinessProbe": {}}],
                }
            }
        }
    )
    assert spec_errors(service) == [
        "spec.podTemplate.spec.terminationGracePeriodSeconds: set by the operator"
        " (use spec.maxRequestSeconds)",
        "spec.podTemplate.spec.containers[0].readinessProbe: set by the operator"
        " (use spec.readinessProbe)",
    ]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"runtime": "vllm", "gpusPerReplica": 2, "rollingUpdate": {"maxSurge": 1}},
        {"runtime": "custom", "image": "me/srv:2", "command": ["srv"]},
    ],
)
def test_children_are_valid_kubernetes_objects(spec: dict[str, Any]) -> None:
    service = make(spec)
    for child in (build_deployment(service, 2, IMAGES), build_service(service)):
        kubernetes_validate.validate(child, "1.33", strict=True)
