"""The sandbox's deprecated names (`sandbox.bigmodel.dev/`, `BIGMODEL_SANDBOX_*`) still
recognised for one release, with one warning per name."""

from __future__ import annotations

import logging

import pytest

from kubesandbox import legacy
from kubesandbox.kubelet.simulated import EXIT_CODE_ANNOTATION, simulated_pod_status


def test_each_sandbox_name_has_one_deprecated_spelling() -> None:
    assert legacy.spellings("kubesandbox.dev/exit-code") == (
        "kubesandbox.dev/exit-code",
        "sandbox.bigmodel.dev/exit-code",
    )
    assert legacy.spellings("KUBESANDBOX_MOUNT_WORK") == (
        "KUBESANDBOX_MOUNT_WORK",
        "BIGMODEL_SANDBOX_MOUNT_WORK",
    )
    assert legacy.spellings("app.kubernetes.io/name") == ("app.kubernetes.io/name",)


def test_lookup_prefers_the_new_name_and_warns_once_for_the_old(
    caplog: pytest.LogCaptureFixture,
) -> None:
    new, old = "kubesandbox.dev/lookup-test", "sandbox.bigmodel.dev/lookup-test"
    assert legacy.lookup({new: "1", old: "2"}, new) == "1"
    assert legacy.lookup({"other": "x"}, new) is None
    with caplog.at_level(logging.WARNING, logger=legacy.__name__):
        assert legacy.lookup({old: "2"}, new) == "2"
        assert legacy.lookup({old: "3"}, new) == "3"
    assert [r.getMessage() for r in caplog.records] == [
        f"{old} is deprecated and goes in the next release: use {new}"
    ]


def test_labels_and_variables_are_also_given_under_their_old_names() -> None:
    assert legacy.with_old_names({"kubesandbox.dev/node-type": "process", "type": "x"}) == {
        "kubesandbox.dev/node-type": "process",
        "sandbox.bigmodel.dev/node-type": "process",
        "type": "x",
    }


@pytest.mark.parametrize("key", [EXIT_CODE_ANNOTATION, "sandbox.bigmodel.dev/exit-code"])
def test_a_simulated_pod_finishes_on_the_exit_code_annotation_under_either_name(key: str) -> None:
    pod = {
        "metadata": {"uid": "u", "annotations": {key: "7"}},
        "spec": {"containers": [{"name": "main", "image": "busybox"}]},
    }
    assert simulated_pod_status(pod, "2026-01-01T00:00:00Z")["phase"] == "Failed"
