"""The pod environment the step timer reads (torchrun's variables and ours)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.runtime.environment import DEFAULT_METRICS_PORT, read_environment


def test_defaults_outside_torchrun() -> None:
    pod = read_environment({})
    assert (pod.local_rank, pod.local_world_size, pod.node_rank) == (0, 1, 0)
    assert (pod.metrics_host, pod.metrics_port) == ("0.0.0.0", DEFAULT_METRICS_PORT)


def test_reads_torchrun_and_bigmodel_variables(tmp_path: Path) -> None:
    env = {
        "LOCAL_RANK": "1",
        "LOCAL_WORLD_SIZE": "2",
        "GROUP_RANK": "3",
        "TORCHELASTIC_RUN_ID": "job",
        "BIGMODEL_METRICS_HOST": "127.0.0.5",
        "BIGMODEL_METRICS_PORT": "9500",
        "BIGMODEL_STATS_DIR": str(tmp_path),
    }
    pod = read_environment(env)
    assert (pod.local_rank, pod.local_world_size, pod.node_rank) == (1, 2, 3)
    assert (pod.run_id, pod.metrics_host, pod.metrics_port) == ("job", "127.0.0.5", 9500)
    assert pod.stats_path(0).parent == tmp_path


def test_every_local_rank_of_a_pod_agrees_on_the_file_names() -> None:
    rank0 = read_environment({"LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"})
    rank1 = read_environment({"LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert rank0.stats_path(1) == rank1.stats_path(1)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BIGMODEL_METRICS_PORT": "http"}, "BIGMODEL_METRICS_PORT='http'"),
        ({"BIGMODEL_METRICS_PORT": "70000"}, "BIGMODEL_METRICS_PORT=70000"),
        ({"BIGMODEL_METRICS_PORT": "0"}, "BIGMODEL_METRICS_PORT=0"),
        ({"LOCAL_RANK": "-1"}, "LOCAL_RANK=-1"),
        ({"LOCAL_RANK": "2", "LOCAL_WORLD_SIZE": "2"}, "LOCAL_RANK=2"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_environment(env)
