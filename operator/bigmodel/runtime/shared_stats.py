"""How local ranks hand their step statistics to the one process that serves `/metrics`.

Each local rank owns one small file in a memory-backed directory (`/dev/shm` by default) and
overwrites it in place with one `pwrite` per update: a fixed-size record with a CRC
(`stats.encode`), so a reader that catches a half-written record retries instead of trusting
it. Local rank 0 reads the files of all local ranks on each scrape: O(local ranks), whatever
the history. Why files rather than `multiprocessing.shared_memory`: no resource tracker that
unlinks another process's segment on exit (Python < 3.13), creation is atomic (write a temp
file, rename), a restarted rank simply replaces its file, and `ls /dev/shm` shows them.

The file names carry a key derived from what makes the pod's endpoint unique (torchrun run
id, node rank, metrics host and port), so two nodes sharing one host never collide.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from bigmodel.runtime.stats import RankStats, decode, encode

_READ_ATTEMPTS = 3


def default_directory() -> Path:
    """`/dev/shm` where it exists (memory-backed), else the temp directory."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() else Path(tempfile.gettempdir())


def pod_key(run_id: str, node_rank: int, host: str, port: int) -> str:
    """A short stable key naming one pod's files."""
    return hashlib.sha256(f"{run_id}|{node_rank}|{host}|{port}".encode()).hexdigest()[:16]


def stats_path(directory: Path, key: str, local_rank: int) -> Path:
    """The file where `local_rank` of the pod `key` publishes its statistics."""
    return directory / f"bigmodel-steps-{key}-{local_rank}"


class StatsFile:
    """The writer side: one local rank's file, replaced at creation, removed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_bytes(encode(RankStats()))
        temp.replace(path)
        self._fd = os.open(path, os.O_WRONLY)

    def write(self, stats: RankStats) -> None:
        """Overwrite the record in place (one system call)."""
        os.pwrite(self._fd, encode(stats), 0)

    def close(self) -> None:
        """Close and remove the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.path.unlink(missing_ok=True)


def read_stats(path: Path) -> RankStats | None:
    """The latest record in `path`, None when absent or unreadable after a few tries."""
    for _ in range(_READ_ATTEMPTS):
        try:
            stats = decode(path.read_bytes())
        except FileNotFoundError:
            return None
        if stats is not None:
            return stats
    return None


def read_ranks(paths: Mapping[int, Path]) -> dict[int, RankStats]:
    """The statistics of every local rank whose file is readable."""
    found = {rank: read_stats(path) for rank, path in paths.items()}
    return {rank: stats for rank, stats in found.items() if stats is not None}
