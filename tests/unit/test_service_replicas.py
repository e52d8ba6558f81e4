"""Views of a service's replicas: the targets a telemetry round scrapes."""

from __future__ import annotations

from bigmodel.controller.service.replicas import ReplicaPod, replica_targets


def test_targets_are_running_replicas_with_an_address() -> None:
    pods = [
        ReplicaPod("b", "2", "Running", "h", ready=False, ip="10.0.0.2"),
        ReplicaPod("a", "1", "Running", "h", ready=True, ip="10.0.0.1"),
        ReplicaPod("c", "3", "Pending", "h"),
        ReplicaPod("d", "4", "Running", "h", ready=True, ip="10.0.0.4", deleting=True),
    ]
    assert [(t.key, t.url) for t in replica_targets(pods, 8000)] == [
        ("a", "http://10.0.0.1:8000/metrics"),
        ("b", "http://10.0.0.2:8000/metrics"),
    ]
