"""The sandbox store: resourceVersions, watch replay, selection transitions, 410 and the
owner and label indexes."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.selectors import object_filter, parse_label_selector
from kubesandbox.apiserver.store import Obj, Store


def _cm(name: str, uid: str, **labels: str) -> Obj:
    return {"metadata": {"name": name, "namespace": "ns", "uid": uid, "labels": labels}}


def _drain(watcher: object) -> list[tuple[str, str]]:
    queue = watcher.queue  # type: ignore[attr-defined]
    out = []
    while not queue.empty():
        kind, obj = queue.get_nowait()
        out.append((kind, obj["metadata"]["name"]))
    return out


def test_every_write_gets_the_next_cluster_wide_resource_version() -> None:
    store = Store()
    a = store.put("configmaps", _cm("a", "1"))
    b = store.put("secrets", _cm("b", "2"))
    assert (a["metadata"]["resourceVersion"], b["metadata"]["resourceVersion"]) == ("1", "2")


def test_watch_replays_changes_after_a_resource_version() -> None:
    store = Store()
    store.put("configmaps", _cm("a", "1"))
    store.put("configmaps", _cm("b", "2"))
    store.remove("configmaps", "ns", "a")
    watcher = store.watch("configmaps", None, None, since=1)
    assert _drain(watcher) == [("ADDED", "b"), ("DELETED", "a")]


def test_an_object_leaving_the_selection_is_deleted_for_the_watcher() -> None:
    store = Store()
    match = object_filter(parse_label_selector("app=web"), [])
    watcher = store.watch("configmaps", "ns", match, since=None)
    store.put("configmaps", _cm("a", "1", app="web"))
    store.put("configmaps", _cm("a", "1", app="db"))
    store.put("configmaps", _cm("a", "1", app="web"))
    assert _drain(watcher) == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "a")]


def test_watch_from_before_the_retained_history_is_410() -> None:
    store = Store(history=2)
    for i in range(4):
        store.put("configmaps", _cm(f"c{i}", str(i)))
    with pytest.raises(StatusError) as exc:
        store.watch("configmaps", None, None, since=1)
    assert exc.value.code == 410
    assert store.watch("configmaps", None, None, since=3).queue.qsize() == 1


def test_dependents_are_indexed_by_owner_uid() -> None:
    store = Store()
    child = _cm("child", "c")
    child["metadata"]["ownerReferences"] = [{"uid": "p", "name": "parent"}]
    store.put("configmaps", child)
    assert [o["metadata"]["name"] for _, o in store.dependents("p")] == ["child"]
    store.remove("configmaps", "ns", "child")
    assert store.dependents("p") == []


def _names(objs: Iterable[Obj]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


def test_objects_are_selected_by_label_through_the_index() -> None:
    store = Store()
    store.put("configmaps", _cm("a", "1", app="web", tier="front"))
    store.put("configmaps", _cm("b", "2", app="web", tier="back"))
    store.put("configmaps", _cm("c", "3", app="db"))
    assert _names(store.objects("configmaps", "ns", {"app": {"web"}})) == ["a", "b"]
    assert _names(store.objects("configmaps", "ns", {"app": {"web"}, "tier": {"back"}})) == ["b"]
    assert _names(store.objects("configmaps", None, {"app": {"web", "db"}})) == ["a", "b", "c"]
    assert _names(store.objects("configmaps", "other", {"app": {"web"}})) == []


def test_the_label_index_follows_relabelling_and_removal() -> None:
    store = Store()
    store.put("configmaps", _cm("a", "1", app="web"))
    store.put("configmaps", _cm("a", "1", app="db"))
    store.put("configmaps", _cm("b", "2", app="web"))
    store.remove("configmaps", "ns", "b")
    assert _names(store.objects("configmaps", "ns", {"app": {"web"}})) == []
    assert _names(store.objects("configmaps", "ns", {"app": {"db"}})) == ["a"]
