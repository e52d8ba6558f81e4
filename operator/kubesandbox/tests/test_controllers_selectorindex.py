"""The Endpoints controller's index of service selectors: which selectors pick a label set."""

from __future__ import annotations

from kubesandbox.controllers.selectorindex import SelectorIndex

SHARED = {"app.kubernetes.io/managed-by": "op"}


def test_a_selector_matches_the_labels_that_carry_all_its_pairs() -> None:
    index = SelectorIndex()
    index.put(("ns", "web"), {"app": "web", **SHARED})
    index.put(("ns", "db"), {"app": "db", **SHARED})
    assert index.matching("ns", {"app": "web", "extra": "x", **SHARED}) == {("ns", "web")}
    assert index.matching("ns", {"app": "web"}) == set()
    assert index.matching("other", {"app": "web", **SHARED}) == set()


def test_selectors_sharing_a_pair_are_filed_apart() -> None:
    index = SelectorIndex()
    for i in range(100):
        index.put(("ns", f"s{i}"), {"job": f"j{i}", **SHARED})
    # only the first went under the shared pair: one lookup reads a few selectors, not 100
    assert sum(len(keys) for keys in index._buckets.values()) == 100
    assert max(len(keys) for keys in index._buckets.values()) == 1
    assert index.matching("ns", {"job": "j42", **SHARED}) == {("ns", "s42")}


def test_a_changed_or_removed_selector_stops_matching() -> None:
    index = SelectorIndex()
    index.put(("ns", "s"), {"app": "web"})
    index.put(("ns", "s"), {"app": "db"})
    assert index.matching("ns", {"app": "web"}) == set()
    index.remove(("ns", "s"))
    assert index.matching("ns", {"app": "db"}) == set()
    index.put(("ns", "s"), {})
    assert index.matching("ns", {}) == set()
