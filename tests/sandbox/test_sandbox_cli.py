"""The `kubesandbox up` command line: defaults a new user can run the CPU examples on, and
options checked with a message naming them."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubesandbox.cli import DEFAULT_NODES, build_parser
from kubesandbox.kubelet.host import MIN_NODE_CPUS, default_cpus
from kubesandbox.testing import start_sandbox


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
