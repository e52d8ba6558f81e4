"""A container's environment and command line as the kubelet builds them."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kubesandbox.kubelet.podenv import (
    ConfigError,
    MissingReference,
    MountMap,
    command_line,
    container_env,
    expand,
    field_value,
    resource_value,
)

POD = {
    "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"a": "1", "b": "2"}},
    "spec": {"nodeName": "sandbox-node-0"},
    "status": {"podIP": "127.10.0.4"},
}
OBJECTS = {
    ("configmaps", "cm"): {"data": {"k": "v", "LEVEL": "debug"}},
    ("secrets", "sec"): {"data": {"token": base64.b64encode(b"s3cret").decode()}},
}


def lookup(plural: str, name: str) -> Any:
    return OBJECTS.get((plural, name))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)-$(B)", "1-$(B)"),
        ("$$(A)", "$(A)"),
        ("cost $$5", "cost $5"),
        ("$A", "$A"),
    ],
)
def test_expand(text: str, expected: str) -> None:
    assert expand(text, {"A": "1"}) == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("metadata.name", "p"),
        ("metadata.namespace", "ns"),
        ("metadata.uid", "u"),
        ("metadata.labels['b']", "2"),
        ("metadata.labels", 'a="1"\nb="2"\n'),
        ("spec.nodeName", "sandbox-node-0"),
        ("status.podIP", "127.10.0.4"),
    ],
)
def test_field_value(path: str, expected: str) -> None:
    assert field_value(POD, path) == expected


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"resource": "limits.cpu"}, "2"),
        ({"resource": "requests.memory", "divisor": "1Mi"}, "512"),
        ({"resource": "limits.memory", "divisor": "1Gi"}, "8"),  # no limit: the node's
    ],
)
def test_resource_value(ref: Any, expected: str) -> None:
    container = {
        "name": "c",
        "resources": {"limits": {"cpu": "1500m"}, "requests": {"memory": "512Mi"}},
    }
    assert resource_value(container, ref, {"memory": "8Gi"}) == expected


def test_container_env_orders_env_from_then_env_with_expansion() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"}],
        "env": [
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "token"}}},
            {"name": "BOTH", "value": "$(POD)-$(CM_LEVEL)"},
            {
                "name": "GONE",
                "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y", "optional": True}},
            },
        ],
    }
    assert container_env(POD, container, {}, lookup) == {
        "CM_k": "v",
        "CM_LEVEL": "debug",
        "POD": "p",
        "TOKEN": "s3cret",
        "BOTH": "p-debug",
    }


def test_a_missing_config_map_is_a_missing_reference_to_wait_for() -> None:
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}],
    }
    with pytest.raises(MissingReference, match='configmap "x" not found'):
        container_env(POD, container, {}, lookup)


def test_command_line_expands_command_then_args() -> None:
    assert command_line({"name": "c", "command": ["run"], "args": ["--rank=$(R)"]}, {"R": "1"}) == [
        "run",
        "--rank=1",
    ]


def test_args_without_command_are_the_command_line() -> None:
    container = {"name": "c", "image": "busybox", "args": ["/bin/sh", "-c", "echo $(R)"]}
    assert command_line(container, {"R": "1"}) == ["/bin/sh", "-c", "echo 1"]


def test_a_container_without_command_or_args_is_a_start_error() -> None:
    with pytest.raises(ConfigError, match=r"neither command nor args.*set `command`") as raised:
        command_line({"name": "c", "image": "busybox"}, {})
    assert not isinstance(raised.value, MissingReference)  # a start error, not waited for


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/data", "/host/data"),
        ("/data/x.txt", "/host/data/x.txt"),
        ("--out=/data/ckpt", "--out=/host/data/ckpt"),
        ("/data/cache/model", "/host/cache/model"),
        ("/database", "/database"),
        ("/x/data", "/x/data"),
    ],
)
def test_mount_paths_are_rewritten_at_path_boundaries(text: str, expected: str) -> None:
    mounts = MountMap({"/data": "/host/data", "/data/cache": "/host/cache"})
    assert mounts.rewrite(text) == expected
