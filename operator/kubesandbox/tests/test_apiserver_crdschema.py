"""CRDSchema treats custom resources as kube-apiserver does: defaults, pruning, OpenAPI v3
checks, list types and CEL rules (with transition rules)."""

from __future__ import annotations

from typing import Any

import pytest

from kubesandbox.apiserver.crdschema import CRDSchema, FieldError

INT_OR_STRING = {
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
}


def obj_schema(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, **extra}


def errors_of(schema: dict[str, Any], obj: Any, old: Any = None) -> list[tuple[str, str, str]]:
    return [(e.type, e.field, e.message) for e in CRDSchema(schema).validate(obj, old)]


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


# --- CEL -----------------------------------------------------------------------------------


def ruled(*rules: dict[str, Any], **properties: Any) -> dict[str, Any]:
    return obj_schema({"spec": obj_schema(properties, **{"x-kubernetes-validations": list(rules)})})


RANGE = ruled(
    {"rule": "self.min <= self.max", "message": "min must be <= max", "fieldPath": ".min"},
    min={"type": "integer"},
    max={"type": "integer"},
)


def test_rule_failure_names_the_field_path_with_the_message() -> None:
    assert errors_of(RANGE, {"spec": {"min": 3, "max": 2}}) == [
        ("FieldValueInvalid", "spec.min", 'Invalid value: "object": min must be <= max')
    ]


def test_rule_of_an_absent_node_is_not_evaluated() -> None:
    assert errors_of(RANGE, {}) == []


def test_rule_runtime_error_rejects_the_object() -> None:
    (error,) = CRDSchema(RANGE).validate({"spec": {"min": 3}})
    assert (error.type, error.field) == ("FieldValueInvalid", "spec.min")


def test_type_errors_block_rules_as_in_kube_apiserver() -> None:
    errors = CRDSchema(RANGE).validate({"spec": {"min": "3", "max": 2}})
    assert [e.type for e in errors] == ["FieldValueTypeInvalid", "FieldValueInvalid"]
    assert "some validation rules were not checked" in errors[1].message


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (
            {
                "rule": "self.name.lowerAscii() == self.name",
                "message": "m",
                "reason": "FieldValueForbidden",
            },
            ("FieldValueForbidden", "spec", "Forbidden: m"),
        ),
        (
            {
                "rule": "has(self.other)",
                "message": "m",
                "reason": "FieldValueRequired",
                "fieldPath": ".other",
            },
            ("FieldValueRequired", "spec.other", "Required value: m"),
        ),
        (
            {"rule": "self.name.startsWith('a')", "messageExpression": "'bad name ' + self.name"},
            ("FieldValueInvalid", "spec", 'Invalid value: "object": bad name Bob'),
        ),
        (
            {"rule": "self.name.size() < 3"},
            (
                "FieldValueInvalid",
                "spec",
                'Invalid value: "object": failed rule: self.name.size() < 3',
            ),
        ),
    ],
    ids=["forbidden", "required", "message-expression", "no-message"],
)
def test_rule_reason_and_message_shape_the_error(
    rule: dict[str, Any], expected: tuple[str, str, str]
) -> None:
    schema = ruled(rule, name={"type": "string"}, other={"type": "string"})
    assert errors_of(schema, {"spec": {"name": "Bob"}}) == [expected]


IMMUTABLE = ruled(
    image={
        "type": "string",
        "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "immutable"}],
    },
    envs={
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": obj_schema(
            {"name": {"type": "string"}, "value": {"type": "string"}},
            **{
                "x-kubernetes-validations": [
                    {"rule": "self.value == oldSelf.value", "message": "frozen"}
                ]
            },
        ),
    },
)


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ({"image": "b"}, None, []),
        (
            {"image": "b"},
            {"image": "a"},
            [("FieldValueInvalid", "spec.image", 'Invalid value: "string": immutable')],
        ),
        ({"image": "a"}, {"image": "a"}, []),
        ({"image": "b"}, {}, []),
        (
            {"envs": [{"name": "y", "value": "1"}, {"name": "x", "value": "2"}]},
            {"envs": [{"name": "x", "value": "1"}]},
            [("FieldValueInvalid", "spec.envs[1]", 'Invalid value: "object": frozen')],
        ),
    ],
    ids=["create", "changed", "unchanged", "absent-in-old", "list-map-correlated-by-key"],
)
def test_transition_rules_compare_with_the_correlated_old_value(
    new: dict[str, Any], old: dict[str, Any] | None, expected: list[Any]
) -> None:
    assert errors_of(IMMUTABLE, {"spec": new}, old and {"spec": old}) == expected


def test_optional_old_self_rules_also_run_on_create() -> None:
    rule = {
        "rule": "!oldSelf.hasValue() || self == oldSelf.value()",
        "optionalOldSelf": True,
        "message": "m",
    }
    schema = ruled(rule, name={"type": "string"})
    assert errors_of(schema, {"spec": {"name": "a"}}) == []
    assert errors_of(schema, {"spec": {"name": "a"}}, {"spec": {"name": "b"}}) == [
        ("FieldValueInvalid", "spec", 'Invalid value: "object": m')
    ]


def test_field_error_prints_as_kubectl_shows_it() -> None:
    assert (
        str(FieldError("FieldValueRequired", "spec.image", "Required value"))
        == "spec.image: Required value"
    )


# --- ratcheting -----------------------------------------------------------------------------

RATCHETED = obj_schema(
    {
        "spec": obj_schema(
            {"size": {"type": "integer", "maximum": 5}},
            **{"x-kubernetes-validations": [{"rule": "self.size < 4", "message": "small"}]},
        ),
        "status": obj_schema({"phase": {"type": "string"}}),
    }
)


def test_an_unchanged_invalid_spec_does_not_block_a_status_update() -> None:
    # e.g. stored before a stricter CRD version: kube-apiserver ratchets unchanged values
    old = {"spec": {"size": 9}, "status": {}}
    assert errors_of(RATCHETED, {"spec": {"size": 9}, "status": {"phase": "Running"}}, old) == []


def test_a_changed_field_is_validated_again() -> None:
    found = errors_of(RATCHETED, {"spec": {"size": 8}}, {"spec": {"size": 9}})
    assert [(kind, field) for kind, field, _ in found] == [
        ("FieldValueInvalid", "spec.size"),
        ("FieldValueInvalid", "spec"),
    ]


def test_transition_rules_run_on_unchanged_values_too() -> None:
    rule = {"rule": "self.size > oldSelf.size", "message": "must grow"}
    schema = ruled(rule, size={"type": "integer"})
    assert errors_of(schema, {"spec": {"size": 1}, "status": {}}, {"spec": {"size": 1}}) == [
        ("FieldValueInvalid", "spec", 'Invalid value: "object": must grow')
    ]


def test_rules_at_the_root_see_only_the_name_of_the_metadata() -> None:
    rule = {"rule": "!has(self.metadata.labels) && self.metadata.name == 'a'", "message": "m"}
    schema = obj_schema({}, **{"x-kubernetes-validations": [rule]})
    assert errors_of(schema, {"metadata": {"name": "a", "labels": {"x": "y"}}}) == []
