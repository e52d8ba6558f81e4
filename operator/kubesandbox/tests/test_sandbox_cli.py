"""The `kubesandbox` command line: `up` with defaults a new user can run the CPU examples on,
options checked with a message naming them, and `fault` for a running sandbox."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from kubesandbox.cli import DEFAULT_NODES, build_parser
from kubesandbox.kubelet.host import MIN_NODE_CPUS, default_cpus
from kubesandbox.testing import BIN, RunningSandbox, start_sandbox


def test_the_defaults_are_two_nodes_of_at_least_four_cpus() -> None:
    args = build_parser().parse_args(["up"])
    assert (args.nodes, DEFAULT_NODES) == (2, 2)
    assert args.cpus_per_node is None  # the sandbox then takes default_cpus()
    assert int(default_cpus()) >= MIN_NODE_CPUS


def test_cpus_per_node_takes_a_quantity() -> None:
    assert build_parser().parse_args(["up", "--cpus-per-node", "2500m"]).cpus_per_node == "2500m"


@pytest.mark.parametrize("value", ["0", "-1", "lots"])
def test_a_bad_cpu_count_is_refused_naming_the_option(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["up", "--cpus-per-node", value])
    err = capsys.readouterr().err
    assert "--cpus-per-node" in err and "not a positive CPU quantity" in err


@pytest.mark.integration
def test_up_says_how_to_point_kubectl_at_it_and_serves_the_default_nodes(tmp_path: Path) -> None:
    with start_sandbox(tmp_path) as sandbox:
        printed = (tmp_path / "sandbox.log").read_text()
        assert f"  export KUBECONFIG={sandbox.kubeconfig}\n  kubectl get nodes\n" in printed
        nodes = sandbox.get("default", "nodes")["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["sandbox-node-0", "sandbox-node-1"]
    assert {n["status"]["allocatable"]["cpu"] for n in nodes} == {default_cpus()}


def test_fault_set_parses_rules_and_refuses_a_bad_one_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build_parser().parse_args(["fault", "set", "error:code=503,rate=0.5", "--seed", "3"])
    assert (args.rules[0].code, args.rules[0].rate, args.seed) == (503, 0.5, 3)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fault", "set", "error:code=404"])
    assert "code: 404 is not one of" in capsys.readouterr().err


@pytest.mark.integration
def test_fault_turns_api_faults_on_and_off_in_a_running_sandbox(sandbox: RunningSandbox) -> None:
    def fault(*args: str) -> dict[str, Any]:
        command = [str(BIN / "kubesandbox"), "fault", "--kubeconfig", str(sandbox.kubeconfig)]
        done = subprocess.run([*command, *args], capture_output=True, text=True, check=True)
        answer: dict[str, Any] = json.loads(done.stdout)
        return answer

    rule = "error:code=500,verbs=list,resources=secrets,user_agents=kubectl/"
    assert fault("set", rule)["rules"][0]["code"] == 500
    refused = sandbox.kubectl("get", "secrets", check=False)
    assert "InternalError" in refused.stderr
    assert fault("clear")["injected"] == {"error:500": 1}
    assert sandbox.kubectl("get", "secrets").returncode == 0
