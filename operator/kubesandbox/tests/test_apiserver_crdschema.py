"""CRDSchema treats custom resources as kube-apiserver does: defaults, pruning, OpenAPI v3
checks and list types (CEL rules and ratcheting: `test_apiserver_crdschema_rules.py`)."""

from __future__ import annotations

from typing import Any

import pytest
from crdschemas import errors_of, obj_schema

from kubesandbox.apiserver.crdschema import CRDSchema

INT_OR_STRING = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
}


# --- defaulting ----------------------------------------------------------------------------

DEFAULTS = obj_schema(
    {
        "n": {"type": "integer", "default": 3},
        "policy": obj_schema({"limit": {"type": "integer", "default": 6}}, default={}),
        "items": {
            "type": "array",
            "items": obj_schema({"on": {"type": "boolean", "default": True}}),
        },
        "map": {
            "type": "object",
            "additionalProperties": obj_schema({"w": {"type": "integer", "default": 1}}),
        },
        "nullable": {"type": "string", "nullable": True},
        "plain": {"type": "string"},
    }
)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({}, {"n": 3, "policy": {"limit": 6}}),
        ({"n": 5, "policy": {"limit": 1}}, {"n": 5, "policy": {"limit": 1}}),
        ({"n": None}, {"n": 3, "policy": {"limit": 6}}),
        ({"plain": None}, {"n": 3, "policy": {"limit": 6}}),
        ({"nullable": None}, {"nullable": None, "n": 3, "policy": {"limit": 6}}),
        (
            {"items": [{}, {"on": False}]},
            {"items": [{"on": True}, {"on": False}], "n": 3, "policy": {"limit": 6}},
        ),
        ({"map": {"a": {}}}, {"map": {"a": {"w": 1}}, "n": 3, "policy": {"limit": 6}}),
    ],
    ids=[
        "absent",
        "present",
        "null-with-default",
        "null-dropped",
        "nullable-kept",
        "list-items",
        "map-values",
    ],
)
def test_default_fills_absent_fields_top_down(
    given: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert CRDSchema(DEFAULTS).default(given) == expected


def test_default_does_not_change_its_argument() -> None:
    given: dict[str, Any] = {"policy": {}}
    CRDSchema(DEFAULTS).default(given)
    assert given == {"policy": {}}


# --- pruning -------------------------------------------------------------------------------

PRUNING = obj_schema(
    {
        "spec": obj_schema(
            {
                "known": {"type": "string"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "partly": obj_schema(
                    {"n": obj_schema({})}, **{"x-kubernetes-preserve-unknown-fields": True}
                ),
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "pods": {"type": "array", "items": obj_schema({"name": {"type": "string"}})},
                "embedded": obj_schema({}, **{"x-kubernetes-embedded-resource": True}),
            }
        )
    }
)


@pytest.mark.parametrize(
    ("spec", "kept", "dropped"),
    [
        ({"known": "a", "other": 1}, {"known": "a"}, ["spec.other"]),
        ({"free": {"any": {"thing": 1}}}, {"free": {"any": {"thing": 1}}}, []),
        ({"partly": {"x": 1, "n": {"y": 2}}}, {"partly": {"x": 1, "n": {}}}, ["spec.partly.n.y"]),
        ({"labels": {"a.b/c": "d"}}, {"labels": {"a.b/c": "d"}}, []),
        ({"pods": [{"name": "p", "x": 1}]}, {"pods": [{"name": "p"}]}, ["spec.pods[0].x"]),
        (
            {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "x": 1}},
            {"embedded": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}},
            ["spec.embedded.x"],
        ),
    ],
    ids=[
        "unknown",
        "preserve-unknown",
        "preserve-with-properties",
        "map",
        "list-items",
        "embedded",
    ],
)
def test_prune_drops_unknown_fields_and_reports_their_paths(
    spec: dict[str, Any], kept: dict[str, Any], dropped: list[str]
) -> None:
    schema = CRDSchema(PRUNING)
    obj = {"spec": spec}
    assert schema.prune(obj) == {"spec": kept}
    assert schema.unknown_fields(obj) == dropped


def test_prune_keeps_api_version_kind_and_metadata_at_the_root() -> None:
    obj = {"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "a", "labels": {"k": "v"}}}
    assert CRDSchema(PRUNING).prune(obj) == obj


# --- OpenAPI v3 validation -----------------------------------------------------------------

VALUES = obj_schema(
    {
        "n": {"type": "integer", "minimum": 1, "maximum": 4},
        "ratio": {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        "mode": {"type": "string", "enum": ["A", "B"]},
        "name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
        "size": {**INT_OR_STRING, "pattern": "^[0-9]+Gi$"},
        "tags": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        "when": {"type": "string", "format": "date-time"},
        "maybe": {"type": "string", "nullable": True},
        "labels": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 2}},
    },
    required=["n"],
)


@pytest.mark.parametrize(
    ("obj", "error"),
    [
        ({}, ("FieldValueRequired", "n", "Required value")),
        (
            {"n": 0},
            (
                "FieldValueInvalid",
                "n",
                "Invalid value: 0: n in body should be greater than or equal to 1",
            ),
        ),
        (
            {"n": 5},
            (
                "FieldValueInvalid",
                "n",
                "Invalid value: 5: n in body should be less than or equal to 4",
            ),
        ),
        (
            {"n": 1, "ratio": 0},
            (
                "FieldValueInvalid",
                "ratio",
                "Invalid value: 0: ratio in body should be greater than 0",
            ),
        ),
        (
            {"n": "1"},
            (
                "FieldValueTypeInvalid",
                "n",
                'Invalid value: "string": n in body must be of type integer: "string"',
            ),
        ),
        (
            {"n": 1, "mode": "C"},
            (
                "FieldValueNotSupported",
                "mode",
                'Unsupported value: "C": supported values: "A", "B"',
            ),
        ),
        (
            {"n": 1, "name": "abcd"},
            ("FieldValueTooLong", "name", "Too long: may not be more than 3 bytes"),
        ),
        (
            {"n": 1, "name": "A"},
            (
                "FieldValueInvalid",
                "name",
                "Invalid value: \"A\": name in body should match '^[a-z]+$'",
            ),
        ),
        (
            {"n": 1, "size": True},
            (
                "FieldValueTypeInvalid",
                "size",
                'Invalid value: "boolean": size in body must be of type integer,string: "boolean"',
            ),
        ),
        (
            {"n": 1, "size": "2G"},
            (
                "FieldValueInvalid",
                "size",
                "Invalid value: \"2G\": size in body should match '^[0-9]+Gi$'",
            ),
        ),
        (
            {"n": 1, "tags": ["a", "b"]},
            ("FieldValueTooMany", "tags", "Too many: 2: must have at most 1 items"),
        ),
        (
            {"n": 1, "when": "yesterday"},
            (
                "FieldValueInvalid",
                "when",
                'Invalid value: "yesterday": when in body must be of type date-time: "yesterday"',
            ),
        ),
        (
            {"n": 1, "labels": {"a.b/c": "xyz"}},
            ("FieldValueTooLong", "labels[a.b/c]", "Too long: may not be more than 2 bytes"),
        ),
    ],
)
def test_openapi_errors_read_like_kube_apiserver_ones(
    obj: dict[str, Any], error: tuple[str, str, str]
) -> None:
    assert error in errors_of(VALUES, obj)


@pytest.mark.parametrize(
    "obj",
    [
        {"n": 1, "size": 3},
        {"n": 1, "size": "3Gi"},
        {"n": 1, "maybe": None},
        {"n": 1, "when": "2025-01-02T03:04:05Z"},
        {"n": 1, "ratio": 0.5},
    ],
)
def test_valid_values_pass(obj: dict[str, Any]) -> None:
    assert errors_of(VALUES, obj) == []


# --- list types ----------------------------------------------------------------------------

LISTS = obj_schema(
    {
        "ports": {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["port", "protocol"],
            "items": obj_schema({"port": {"type": "integer"}, "protocol": {"type": "string"}}),
        },
        "codes": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}},
    }
)


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"ports": [{"port": 1, "protocol": "TCP"}, {"port": 1, "protocol": "UDP"}]}, []),
        (
            {"ports": [{"port": 1, "protocol": "TCP"}, {"port": 1, "protocol": "TCP"}]},
            [("FieldValueDuplicate", "ports[1]", 'Duplicate value: {"port":1,"protocol":"TCP"}')],
        ),
        ({"codes": [1, 2, 1]}, [("FieldValueDuplicate", "codes[2]", "Duplicate value: 1")]),
    ],
    ids=["distinct-keys", "map-duplicate", "set-duplicate"],
)
def test_list_map_and_set_items_must_be_unique(obj: dict[str, Any], expected: list[Any]) -> None:
    assert errors_of(LISTS, obj) == expected
