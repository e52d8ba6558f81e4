"""Local ranks publish their statistics in small files; local rank 0 reads them all."""

from __future__ import annotations

from pathlib import Path

from bigmodel.runtime.shared_stats import StatsFile, pod_key, read_ranks, read_stats, stats_path
from bigmodel.runtime.stats import RankStats, encode, observe


def test_a_written_record_is_read_back(tmp_path: Path) -> None:
    stats_file = StatsFile(tmp_path / "rank-0")
    stats = observe(RankStats(), 0.5)
    stats_file.write(stats)
    assert read_stats(stats_file.path) == stats


def test_a_new_file_starts_empty_and_replaces_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "rank-0"
    path.write_bytes(encode(observe(RankStats(), 9.0)))
    StatsFile(path)
    assert read_stats(path) == RankStats()


def test_close_removes_the_file_and_is_idempotent(tmp_path: Path) -> None:
    stats_file = StatsFile(tmp_path / "rank-0")
    stats_file.close()
    stats_file.close()
    assert not stats_file.path.exists()


def test_missing_or_garbled_files_are_skipped(tmp_path: Path) -> None:
    StatsFile(tmp_path / "rank-0")
    (tmp_path / "rank-2").write_bytes(b"garbage")
    paths = {rank: tmp_path / f"rank-{rank}" for rank in range(3)}
    assert read_ranks(paths) == {0: RankStats()}


def test_pods_sharing_a_host_get_distinct_file_names(tmp_path: Path) -> None:
    keys = {
        pod_key("job", 0, "127.0.0.1", 9400),
        pod_key("job", 1, "127.0.0.1", 9400),
        pod_key("job", 0, "127.0.0.2", 9400),
        pod_key("job", 0, "127.0.0.1", 9401),
        pod_key("other", 0, "127.0.0.1", 9400),
    }
    assert len(keys) == 5
    assert stats_path(tmp_path, "k", 0) != stats_path(tmp_path, "k", 1)
