"""What earlier versions left on objects (kopf's finalizer and annotations): removed by a
JSON patch that touches nothing else."""

from __future__ import annotations

from typing import Any

from bigmodel.controller.legacy import FINALIZER, legacy_patch


def body(finalizers: list[str], annotations: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "a", "finalizers": finalizers, "annotations": annotations}}


def test_an_object_without_legacy_marks_needs_no_patch() -> None:
    assert legacy_patch(body([], {})) == []
    assert legacy_patch({"metadata": {}}) == []
    assert legacy_patch(body(["other.io/keep"], {"other.io/x": "1"})) == []


def test_the_old_finalizer_is_removed_at_its_index_guarded_by_a_test() -> None:
    patch = legacy_patch(body(["other.io/keep", FINALIZER], {}))
    assert patch == [
        {"op": "test", "path": "/metadata/finalizers/1", "value": FINALIZER},
        {"op": "remove", "path": "/metadata/finalizers/1"},
    ]


def test_kopfs_annotations_are_removed_and_others_kept() -> None:
    annotations = {
        "bigmodel.dev/last-handled-configuration": "{}",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    patch = legacy_patch(body([], annotations))
    assert patch == [
        {"op": "remove", "path": "/metadata/annotations/bigmodel.dev~1last-handled-configuration"}
    ]
