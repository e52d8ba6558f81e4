"""Deterministic names of a job's children; the API bounds make them fit Kubernetes limits."""

from __future__ import annotations


def service_name(job: str) -> str:
    """The headless Service that gives node pods their DNS names (the pods' subdomain)."""
    return job


def node_pod_name(job: str, rank: int) -> str:
    """Pod (and hostname) of node `rank`: `<job>-node-<rank>`."""
    return f"{job}-node-{rank}"
