"""CEL `x-kubernetes-validations` (pure): each rule evaluated at its node, with `oldSelf`
correlated as kube-apiserver does for transition rules, and unchanged values ratcheted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import cel
import cel.stdlib

from kubesandbox.apiserver.crdschema.nodes import MISSING, FieldError, Node, Rule, children


def _old_child(old: Any, node: Node, value: Any, key: str | int) -> Any:
    """The old value correlated with a child, as transition rules see it: by key for objects
    and maps, by map keys (or value) for list-type map (set) lists, never for atomic lists."""
    if old is MISSING:
        return MISSING
    if isinstance(old, dict) and isinstance(key, str):
        return old.get(key, MISSING)
    if not isinstance(old, list) or not isinstance(value, list) or not isinstance(key, int):
        return MISSING
    item = value[key]
    list_type = node.schema.get("x-kubernetes-list-type")
    if list_type == "set":
        return item if item in old else MISSING
    if list_type == "map" and isinstance(item, dict):
        keys = node.schema.get("x-kubernetes-list-map-keys", [])
        for candidate in old:
            if isinstance(candidate, dict) and all(candidate.get(k) == item.get(k) for k in keys):
                return candidate
    return MISSING


def cel_errors(
    value: Any, old: Any, node: Node, path: str, unchanged: bool | None = None
) -> Iterator[FieldError]:
    """Evaluate the rules of `node` on `value`, then of its children, recursively. A value
    equal to its correlated old value (`unchanged`, computed when None) runs only its
    transition rules: validation ratcheting, as kube-apiserver ignores the errors of unchanged
    values but never those of rules that read `oldSelf`."""
    if unchanged is None:
        unchanged = old is not MISSING and value == old
    if unchanged and not node.transitions:
        return
    rules = [r for r in node.rules if r.transition or not unchanged]
    if rules:
        yield from _node_errors(rules, value, old, node, path)
    for key, item, child, child_path in children(value, node, path):
        child_old = _old_child(old, node, value, key)
        still = (child_old is not MISSING) if unchanged else None  # None: compare
        yield from cel_errors(item, child_old, child, child_path, still)


def _node_errors(
    rules: list[Rule], value: Any, old: Any, node: Node, path: str
) -> Iterator[FieldError]:
    """The errors of some rules of one node, sharing their contexts (building one converts
    `self` and `oldSelf` to CEL values, which costs more than evaluating a rule)."""
    contexts: dict[bool, Any] = {}

    def context(optional: bool) -> Any:
        if optional not in contexts:
            variables = {"self": value}
            if optional:
                wrapped = cel.OptionalValue.none() if old is MISSING else cel.OptionalValue.of(old)
                variables["oldSelf"] = wrapped
            elif old is not MISSING:
                variables["oldSelf"] = old
            contexts[optional] = cel.Context(
                variables=variables, functions=cel.stdlib.STDLIB_FUNCTIONS
            )
        return contexts[optional]

    for rule in rules:
        if rule.transition and old is MISSING and not rule.optional_old_self:
            continue  # a transition rule does not apply to a new value
        error = _evaluate(rule, context(rule.optional_old_self), node, path)
        if error is not None:
            yield error


def _evaluate(rule: Rule, context: Any, node: Node, path: str) -> FieldError | None:
    """One rule at one node; None when it holds."""
    field_path = (path + rule.field_path).lstrip(".")
    try:
        result = rule.program.execute(context)
    except Exception as exc:  # a CEL runtime error rejects the object, as in Kubernetes
        detail = f"{rule.source}: {exc}"
        return FieldError(
            "FieldValueInvalid", field_path, f'Invalid value: "{node.type_name}": {detail}'
        )
    if result is True:
        return None
    return _rule_error(rule, _message(rule, context), field_path, node.type_name)


def _message(rule: Rule, context: Any) -> str:
    """The rule's messageExpression result, else its message."""
    if rule.message_program is not None:
        try:
            text = rule.message_program.execute(context)
        except Exception:  # kube-apiserver falls back to message too
            return rule.message
        if isinstance(text, str) and text.strip():
            return text
    return rule.message


def _rule_error(rule: Rule, message: str, path: str, type_name: str) -> FieldError:
    """The StatusCause of a failed rule, by its reason."""
    prefixes = {
        "FieldValueForbidden": "Forbidden: ",
        "FieldValueRequired": "Required value: ",
        "FieldValueDuplicate": "Duplicate value: ",
    }
    prefix = prefixes.get(rule.reason, f'Invalid value: "{type_name}": ')
    reason = rule.reason if rule.reason in prefixes else "FieldValueInvalid"
    return FieldError(reason, path, prefix + message)
