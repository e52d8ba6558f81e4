"""Label and field selectors as kube-apiserver parses them."""

from __future__ import annotations

import pytest

from kubesandbox.apiserver.errors import StatusError
from kubesandbox.apiserver.selectors import (
    label_values,
    parse_field_selector,
    parse_label_selector,
)


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ("app=web", {"app": "web"}, True),
        ("app==web", {"app": "db"}, False),
        ("app!=web", {}, True),
        ("app in (web, db)", {"app": "db"}, True),
        ("app notin (web,db)", {"app": "db"}, False),
        ("app notin (web)", {}, True),
        ("app", {"app": ""}, True),
        ("!app", {"app": "x"}, False),
        ("app in (a,b),tier", {"app": "a", "tier": "t"}, True),
    ],
)
def test_label_selector_matches(selector: str, labels: dict[str, str], expected: bool) -> None:
    assert all(r.matches(labels) for r in parse_label_selector(selector)) is expected


def test_a_malformed_label_selector_is_400() -> None:
    with pytest.raises(StatusError) as exc:
        parse_label_selector("app in web")
    assert exc.value.code == 400


def test_pod_field_selectors_match_node_and_phase() -> None:
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}
    reqs = parse_field_selector("spec.nodeName=n1,status.phase!=Failed", "pods")
    assert all(r.matches(pod) for r in reqs)


def test_an_unsupported_field_selector_is_400_like_the_real_server() -> None:
    with pytest.raises(StatusError) as exc:
        parse_field_selector("spec.nodeName=n1", "configmaps")
    assert exc.value.code == 400
    assert "field label not supported: spec.nodeName" in exc.value.message


def test_equality_and_set_requirements_become_label_values_for_the_index() -> None:
    reqs = parse_label_selector("app=web,tier in (a,b),tier in (b,c),env!=prod,gpu")
    assert label_values(reqs) == {"app": {"web"}, "tier": {"b"}}
