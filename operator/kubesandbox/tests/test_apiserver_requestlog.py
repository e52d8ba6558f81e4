"""The request log and the RBAC permissions derived from it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from kubesandbox.apiserver.http.paths import parse_resource_path
from kubesandbox.apiserver.http.requestlog import Permission, RequestLog, permissions, read, record

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def _entry(method: str, path: str, agent: str = "kopf/1", watch: bool = False) -> dict[str, object]:
    return record(method, path, parse_resource_path(path), watch, agent, 200, WHEN)


def test_a_record_names_verb_group_resource_and_object() -> None:
    entry = _entry("PATCH", "/apis/train.example.com/v1alpha1/namespaces/ns/trainjobs/j/status")
    assert entry == {
        "time": "2026-01-01T00:00:00.000+00:00",
        "method": "PATCH",
        "path": "/apis/train.example.com/v1alpha1/namespaces/ns/trainjobs/j/status",
        "verb": "patch",
        "apiGroup": "train.example.com",
        "resource": "trainjobs",
        "subresource": "status",
        "namespace": "ns",
        "name": "j",
        "userAgent": "kopf/1",
        "user": None,
        "code": 200,
    }


def test_non_resource_paths_have_no_resource() -> None:
    entry = _entry("GET", "/apis")
    assert (entry["verb"], entry["resource"], entry["apiGroup"]) == ("get", None, None)


def test_permissions_are_the_triples_used_with_subresources_joined() -> None:
    entries = [
        _entry("GET", "/api/v1/namespaces/ns/pods"),
        _entry("GET", "/api/v1/namespaces/ns/pods", watch=True),
        _entry("GET", "/api/v1/namespaces/ns/pods/p/log"),
        _entry("POST", "/api/v1/namespaces/ns/events"),
        _entry("DELETE", "/api/v1/namespaces/ns/configmaps"),
        _entry("GET", "/apis"),
    ]
    assert permissions(entries) == {
        Permission("", "pods", "list"),
        Permission("", "pods", "watch"),
        Permission("", "pods/log", "get"),
        Permission("", "events", "create"),
        Permission("", "configmaps", "deletecollection"),
    }


def test_permissions_can_be_limited_to_one_client() -> None:
    entries = [
        _entry("GET", "/api/v1/namespaces/ns/pods", agent="kopf/1.45"),
        _entry("DELETE", "/api/v1/namespaces/ns/pods/p", agent="kubectl/v1.33"),
    ]
    assert permissions(entries, user_agent="kopf/") == {Permission("", "pods", "list")}


def test_the_log_file_round_trips(tmp_path: Path) -> None:
    log = RequestLog(tmp_path / "requests.log")
    log.write(_entry("GET", "/api/v1/nodes"))
    log.close()
    with (tmp_path / "requests.log").open("a") as handle:
        handle.write('{"torn": ')  # a line cut short by a crash is skipped
    assert read(tmp_path / "requests.log") == [_entry("GET", "/api/v1/nodes")]
