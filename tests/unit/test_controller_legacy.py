"""What earlier versions left on objects (kopf's finalizer and annotations): removed by a
JSON patch that touches nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

from bigmodel.controller.legacy import FINALIZER, Release, legacy_patch


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


class FakeKube:
    def __init__(self) -> None:
        self.patches: list[tuple[str, Any]] = []

    async def path(self, obj: Any) -> str:
        return f"/{obj['metadata']['name']}"

    async def request(self, method: str, path: str, body: Any, content_type: str) -> None:
        self.patches.append((path, body))


def test_each_version_of_an_object_is_patched_once_until_the_watch_brings_the_next() -> None:
    kube = FakeKube()
    release = Release(kube)  # type: ignore[arg-type]
    old = {"metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "finalizers": [FINALIZER]}}

    async def looks() -> None:
        await release(old)
        await release(old)  # the cache has not caught up yet: no second, failing, patch
        await release({"metadata": {"name": "a", "uid": "u", "resourceVersion": "8"}})

    asyncio.run(looks())
    assert [path for path, _ in kube.patches] == ["/a"]
