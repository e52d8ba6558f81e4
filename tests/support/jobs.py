"""Builders of the job side's unit tests: a parsed BigModelJob, its node pods as the job
controller observes them, the clock and the timing settings the decisions run with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bigmodel.api import BigModelJob, parse_resource
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks.pytorch import node

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
"""The decisions' clock."""
TIMING = Timing(restart_backoff=10, restart_backoff_max=60, elastic_grace=30)


def make_job(
    spec: dict[str, Any] | None = None, *, metadata: dict[str, Any] | None = None, **status: Any
) -> BigModelJob:
    """A parsed job `train` in namespace `ml` (uid `u`, generation 1): 2 nodes running
    `python train.py`; `spec`, `metadata` and `status` fields add to or override that."""
    body = {
        "metadata": {"name": "train", "namespace": "ml", "uid": "u", "generation": 1}
        | (metadata or {}),
        "spec": {"image": "i", "command": ["python", "train.py"], "nodes": 2, **(spec or {})},
        "status": status,
    }
    return parse_resource(BigModelJob, body)


def node_pod(rank: int, phase: str = "Running", **fields: Any) -> NodePod:
    """Node pod `rank` of the job `train`, as the job controller observes it."""
    return NodePod(
        name=f"train-node-{rank}", uid=f"u{rank}", member=node(rank), phase=phase, **fields
    )
