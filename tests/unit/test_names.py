"""Child names: deterministic, and within Kubernetes' 63-character label limit."""

from __future__ import annotations

import re

from bigmodel.api import BigModelJob, Framework
from bigmodel.api.job import MAX_NAME_LENGTH, MAX_NODES, MAX_PARAMETER_SERVERS
from bigmodel.manifests.frameworks import contract_of
from bigmodel.manifests.names import node_pod_name, service_name

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def test_pods_are_job_node_rank_under_a_service_named_like_the_job() -> None:
    assert (node_pod_name("llama", 12), service_name("llama")) == ("llama-node-12", "llama")


def test_the_longest_allowed_name_and_highest_rank_fit_a_dns_label() -> None:
    job = "j" * MAX_NAME_LENGTH
    for name in (service_name(job), node_pod_name(job, MAX_NODES - 1)):
        assert len(name) <= 63
        assert DNS1035.match(name), name


def test_every_frameworks_longest_pod_names_fit_a_dns_label() -> None:
    for framework in Framework:
        spec: dict[str, object] = {"framework": framework.value, "image": "i", "command": ["x"]}
        spec["nodes"] = MAX_NODES
        if framework is Framework.TENSORFLOW:
            spec["tensorflow"] = {"parameterServers": MAX_PARAMETER_SERVERS, "evaluators": 1}
        job = BigModelJob.model_validate(
            {"metadata": {"name": "j" * MAX_NAME_LENGTH}, "spec": spec}
        )
        contract = contract_of(framework)
        for role in contract.roles(job.spec):
            if role.indices:
                name = role.pod_name(job.metadata["name"], role.indices[-1])
                assert len(name) <= 63 and DNS1035.match(name), name
