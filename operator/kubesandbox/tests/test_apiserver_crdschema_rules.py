"""CRDSchema's CEL rules as kube-apiserver runs them (`x-kubernetes-validations`, with
transition rules on the correlated old value) and its ratcheting of unchanged values."""

from __future__ import annotations

from typing import Any

import pytest
from crdschemas import errors_of, obj_schema

from kubesandbox.apiserver.crdschema import CRDSchema, FieldError


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
