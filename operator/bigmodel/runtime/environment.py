"""What the step timer reads from the pod's environment (torchrun's variables and ours).

- `LOCAL_RANK`, `LOCAL_WORLD_SIZE`, `GROUP_RANK`, `TORCHELASTIC_RUN_ID`: set by torchrun.
- `BIGMODEL_METRICS_PORT` (default 9400): port of `/metrics`, served by local rank 0 only.
- `BIGMODEL_METRICS_HOST` (default 0.0.0.0): address it binds (a pod IP where several pods
  share one host, as in the sandbox).
- `BIGMODEL_STATS_DIR` (default `/dev/shm`): where local ranks publish their statistics.
- `BIGMODEL_MACHINE_SAMPLER` (default 1): 0 turns the once-a-second host and GPU sampler off.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bigmodel.runtime.shared_stats import default_directory, pod_key, stats_path

DEFAULT_METRICS_PORT = 9400


@dataclass(frozen=True)
class PodEnvironment:
    """One process's place in its pod, and where the pod's telemetry lives."""

    local_rank: int
    local_world_size: int
    node_rank: int
    run_id: str
    metrics_host: str
    metrics_port: int
    stats_dir: Path
    sample_machine: bool = True

    def stats_path(self, local_rank: int) -> Path:
        """Where `local_rank` of this pod publishes its statistics."""
        key = pod_key(self.run_id, self.node_rank, self.metrics_host, self.metrics_port)
        return stats_path(self.stats_dir, key, local_rank)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: must be >= {minimum}")
    return value


def read_environment(env: Mapping[str, str]) -> PodEnvironment:
    """Parse the pod environment; a bad value raises ValueError naming the variable."""
    local_world_size = _int(env, "LOCAL_WORLD_SIZE", 1, 1)
    local_rank = _int(env, "LOCAL_RANK", 0, 0)
    if local_rank >= local_world_size:
        raise ValueError(f"LOCAL_RANK={local_rank}: must be < LOCAL_WORLD_SIZE={local_world_size}")
    port = _int(env, "BIGMODEL_METRICS_PORT", DEFAULT_METRICS_PORT, 1)
    if port > 65535:
        raise ValueError(f"BIGMODEL_METRICS_PORT={port}: must be <= 65535")
    return PodEnvironment(
        local_rank=local_rank,
        local_world_size=local_world_size,
        node_rank=_int(env, "GROUP_RANK", 0, 0),
        run_id=env.get("TORCHELASTIC_RUN_ID", ""),
        metrics_host=env.get("BIGMODEL_METRICS_HOST") or "0.0.0.0",
        metrics_port=port,
        stats_dir=Path(env.get("BIGMODEL_STATS_DIR") or default_directory()),
        sample_machine=_flag(env, "BIGMODEL_MACHINE_SAMPLER", default=True),
    )


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "")
    if raw not in ("", "0", "1"):
        raise ValueError(f"{name}={raw!r}: expected 0 or 1")
    return default if not raw else raw == "1"
