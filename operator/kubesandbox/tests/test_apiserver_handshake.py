"""What exec, attach and port-forward check before upgrading: the container named (or the
only one), and a running pod and container; refusals are 400s naming what is wrong."""

from __future__ import annotations

from typing import Any

import pytest

from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.http.connect.handshake import container_name, require_running


def pod(*containers: str, phase: str = "Running", running: tuple[str, ...] = ()) -> Any:
    return {
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": c} for c in containers]},
        "status": {
            "phase": phase,
            "containerStatuses": [
                {"name": c, "state": {"running": {}} if c in running else {"waiting": {}}}
                for c in containers
            ],
        },
    }


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(StatusError) as raised:
        call(*args)
    assert raised.value.code == 400
    return raised.value.message


def test_the_only_container_is_the_default() -> None:
    assert container_name(pod("main"), None) == "main"
    assert container_name(pod("a", "b"), "b") == "b"


def test_several_containers_need_a_name() -> None:
    message = refusal(container_name, pod("a", "b"), None)
    assert message == "a container name must be specified for pod p, choose one of: [a b]"


def test_an_unknown_container_is_named() -> None:
    assert refusal(container_name, pod("a"), "x") == "container x is not valid for pod p"


def test_a_running_container_passes() -> None:
    require_running(pod("a", running=("a",)), "a")
    require_running(pod("a"))  # port-forward: the pod runs


def test_a_waiting_container_is_not_found() -> None:
    message = refusal(require_running, pod("a", phase="Pending"), "a")
    assert message == 'unable to upgrade connection: container not found ("a")'


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_completed_pod_is_refused_with_its_phase(phase: str) -> None:
    assert f"current phase is {phase}" in refusal(require_running, pod("a", phase=phase), "a")


def test_port_forward_needs_a_running_pod() -> None:
    assert "pod is Pending" in refusal(require_running, pod("a", phase="Pending"))
