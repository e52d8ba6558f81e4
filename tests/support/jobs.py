"""Builders of the job side's unit tests: a parsed BigModelJob, its node pods as the job
controller observes them, the clock and the timing settings the decisions run with, and
readers of what the decisions plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bigmodel.api import BigModelJob, ConditionStatus, parse_resource
from bigmodel.controller.conditions import find
from bigmodel.controller.job.decisions import decide
from bigmodel.controller.job.plan import Plan, Problem
from bigmodel.controller.job.pods import NodePod
from bigmodel.controller.job.timing import Timing
from bigmodel.manifests.frameworks import Member
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


# The decisions at NOW with TIMING, and what their plan says.


def cond(type_: str, status: bool, reason: str, ago: float = 0) -> dict[str, Any]:
    """A condition of the job's status, changed `ago` seconds before NOW."""
    when = (NOW - timedelta(seconds=ago)).isoformat()
    return {"type": type_, "status": str(status), "reason": reason, "lastTransitionTime": when}


def nodes(*ranks: int) -> list[Member]:
    """The members of these node ranks."""
    return [node(r) for r in ranks]


def plan_for(job: BigModelJob, pods: list[NodePod], *problems: Problem) -> Plan:
    """What the job's decisions plan at NOW for these pods and cluster problems."""
    return decide(job, pods, NOW, TIMING, problems)


def reason(plan: Plan, type_: str) -> str | None:
    """The reason of the plan's condition `type_` while it is True (None otherwise)."""
    found = find(plan.status.conditions, type_)
    return found.reason if found and found.status is ConditionStatus.TRUE else None


def message(plan: Plan, type_: str) -> str:
    """The message of the plan's condition `type_` (which must be there)."""
    found = find(plan.status.conditions, type_)
    assert found is not None, f"no {type_} condition"
    return found.message


def deleted(plan: Plan) -> list[str]:
    """Names of the pods the plan deletes."""
    return [p.name for p in plan.delete]
