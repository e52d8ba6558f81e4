"""Pod pieces shared by the builders of both kinds."""

from __future__ import annotations

from typing import Any

import pytest

from bigmodel.manifests.pods import child_metadata, merge, public


@pytest.mark.parametrize(
    ("base", "overlay", "expected"),
    [
        ({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}}, {"a": {"b": 1, "c": 3}}),
        ({"l": [1, 2]}, {"l": [3]}, {"l": [3]}),
        ([{"name": "x", "v": 1}], [{"name": "y"}], [{"name": "x", "v": 1}, {"name": "y"}]),
        ([{"name": "x", "v": 1}], [{"name": "x", "v": 2}], [{"name": "x", "v": 2}]),
    ],
)  # fmt: skip
def test_merge(base: Any, overlay: Any, expected: Any) -> None:
    assert merge(base, overlay) == expected


def test_tool_keys_never_reach_children() -> None:
    owner = {
        "namespace": "ml",
        "labels": {"team": "a", "kopf.zalando.org/x": "1", "bigmodel.dev/job": "j"},
        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "n"},
    }
    meta = child_metadata(owner, "c", {"app.kubernetes.io/name": "x"})
    assert meta == {
        "name": "c",
        "namespace": "ml",
        "labels": {"team": "a", "app.kubernetes.io/name": "x"},
        "annotations": {"note": "n"},
    }
    assert public({"bigmodel.dev/generation": "2"}) == {}


GITOPS_KEYS = {
    "labels": {
        "argocd.argoproj.io/instance": "ml-team",
        "kustomize.toolkit.fluxcd.io/name": "ml-team",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        "helm.toolkit.fluxcd.io/name": "ml",
        "helm.sh/chart": "ml-0.1.0",
    },
    "annotations": {
        "argocd.argoproj.io/tracking-id": "ml-team:bigmodel.dev/BigModelJob:ml/train",
        "argocd.argoproj.io/sync-options": "Prune=false",
        "meta.helm.sh/release-name": "ml",
        "config.k8s.io/owning-inventory": "ml-team",
    },
}
"""What Argo CD, Flux, Helm and kpt write on the resources they apply from Git."""


def test_gitops_tracking_keys_never_reach_children() -> None:
    """Copied to a child, Argo CD's tracking keys make it claim (and prune) the operator's
    pods; Flux's and Helm's would count them in their inventories."""
    owner = {
        "namespace": "ml",
        "labels": {"team": "a", **GITOPS_KEYS["labels"]},
        "annotations": {"note": "n", **GITOPS_KEYS["annotations"]},
    }
    meta = child_metadata(owner, "c", {})
    assert (meta["labels"], meta["annotations"]) == ({"team": "a"}, {"note": "n"})
