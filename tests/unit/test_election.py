"""Leader election, the pure part: each round's decision from the lease, this replica's
identity and the time, the lease records written, and the settings with their checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bigmodel.controller.election import (
    Action,
    ElectionSettings,
    LeaseRecord,
    decide,
    default_lease_namespace,
    lease_object,
    lease_spec,
    new_identity,
    released_spec,
)

ME, OTHER = "me_1", "other_2"
SETTINGS = ElectionSettings()  # 15 s lease, 10 s renew deadline, 2 s retry period


def held_by(holder: str, duration: int = 15, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(
        holder=holder,
        duration_seconds=duration,
        acquire_time="2026-12-07T00:00:00.000000Z",
        renew_time="2026-12-07T00:00:05.000000Z",
        transitions=transitions,
        resource_version="42",
    )


# (lease, observed_at, now, renewed_at) -> action; times in monotonic seconds
CASES = {
    "no lease: create it": (None, 0.0, 100.0, None, Action.CREATE),
    "a released lease (no holder) is taken at once": (
        held_by(""), 99.0, 100.0, None, Action.ACQUIRE,
    ),
    "another holder's live lease: wait": (held_by(OTHER), 90.0, 100.0, None, Action.WAIT),
    "another holder's lease unchanged for its duration: take it over": (
        held_by(OTHER), 85.0, 100.0, None, Action.ACQUIRE,
    ),
    "expiry uses the lease's own duration, not ours": (
        held_by(OTHER, duration=60), 50.0, 100.0, None, Action.WAIT,
    ),
    "our own lease: renew it": (held_by(ME), 95.0, 100.0, 95.0, Action.RENEW),
    "our own lease found after a restart of the loop: renew it": (
        held_by(ME), 0.0, 100.0, None, Action.RENEW,
    ),
    "leader not renewed within the renew deadline: step down": (
        held_by(ME), 89.0, 100.0, 90.0, Action.STEP_DOWN,
    ),
    "leader just inside the renew deadline: renew": (held_by(ME), 91.0, 100.0, 90.5, Action.RENEW),
    "leader finds another holder: step down": (held_by(OTHER), 99.0, 100.0, 98.0, Action.STEP_DOWN),
    "leader finds the lease released by someone: step down": (
        held_by(""), 99.0, 100.0, 98.0, Action.STEP_DOWN,
    ),
    "leader finds the lease deleted: create it again": (None, 0.0, 100.0, 98.0, Action.CREATE),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_decision(case: str) -> None:
    lease, observed_at, now, renewed_at, expected = CASES[case]
    assert decide(lease, observed_at, ME, now, renewed_at, SETTINGS) is expected


def test_a_candidate_never_acquires_before_the_leader_stepped_down() -> None:
    """The leader renewed at t=0 and steps down at the renew deadline; a candidate that saw
    that renewal no earlier than t=0 may take over only a lease duration later."""
    lease = held_by(OTHER)
    for tenths in range(0, 200):
        now = tenths / 10
        leader_leads = decide(held_by(ME), 0.0, ME, now, 0.0, SETTINGS) is Action.RENEW
        candidate_takes = decide(lease, 0.0, ME, now, None, SETTINGS) is Action.ACQUIRE
        assert not (leader_leads and candidate_takes), now


def test_a_takeover_counts_a_transition_and_sets_the_acquire_time() -> None:
    spec = lease_spec(Action.ACQUIRE, held_by(OTHER, transitions=3), ME, SETTINGS)
    assert spec["holderIdentity"] == ME
    assert spec["leaseTransitions"] == 4
    assert spec["leaseDurationSeconds"] == 15
    assert spec["acquireTime"] == spec["renewTime"] != "2026-12-07T00:00:00.000000Z"


def test_a_renewal_keeps_the_acquire_time_and_the_transitions() -> None:
    spec = lease_spec(Action.RENEW, held_by(ME, transitions=3), ME, SETTINGS)
    assert spec["acquireTime"] == "2026-12-07T00:00:00.000000Z"
    assert spec["leaseTransitions"] == 3
    assert spec["renewTime"] > "2026-12-07T00:00:05.000000Z"


def test_a_new_lease_starts_at_zero_transitions() -> None:
    assert lease_spec(Action.CREATE, None, ME, SETTINGS)["leaseTransitions"] == 0


def test_a_released_lease_has_no_holder_and_a_one_second_duration() -> None:
    spec = released_spec(held_by(ME, transitions=3))
    assert spec["holderIdentity"] is None
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 3
    assert LeaseRecord.from_lease({"spec": spec}).holder == ""


def test_an_update_carries_the_version_it_was_read_at() -> None:
    lease = lease_object(SETTINGS, {"holderIdentity": ME}, "42")
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert lease["metadata"] == {
        "name": "bigmodel-operator",
        "namespace": "default",
        "resourceVersion": "42",
    }
    assert "resourceVersion" not in lease_object(SETTINGS, {})["metadata"]


def test_a_record_read_back_equals_itself_whatever_its_version() -> None:
    lease = lease_object(SETTINGS, lease_spec(Action.CREATE, None, ME, SETTINGS), "7")
    record = LeaseRecord.from_lease(lease)
    assert record.holder == ME and record.resource_version == "7"
    assert record.same_record(LeaseRecord.from_lease(lease | {"metadata": {}}))
    renewed = lease_spec(Action.RENEW, record, ME, SETTINGS) | {"renewTime": "2099-01-01T00:00:00Z"}
    assert not record.same_record(LeaseRecord.from_lease({"spec": renewed}))


def test_defaults_are_controller_runtimes() -> None:
    settings = ElectionSettings.from_env({})
    assert (settings.lease_duration, settings.renew_deadline, settings.retry_period) == (
        15.0,
        10.0,
        2.0,
    )
    assert settings.enabled and settings.release_on_cancel


def test_every_setting_is_read_from_the_environment() -> None:
    settings = ElectionSettings.from_env(
        {
            "BIGMODEL_LEADER_ELECTION": "false",
            "BIGMODEL_LEADER_ELECTION_LEASE_NAME": "ops",
            "BIGMODEL_LEADER_ELECTION_LEASE_NAMESPACE": "system",
            "BIGMODEL_LEADER_ELECTION_LEASE_DURATION": "30",
            "BIGMODEL_LEADER_ELECTION_RENEW_DEADLINE": "20",
            "BIGMODEL_LEADER_ELECTION_RETRY_PERIOD": "4",
            "BIGMODEL_LEADER_ELECTION_RELEASE_ON_CANCEL": "no",
        }
    )
    assert settings == ElectionSettings(False, "ops", "system", 30.0, 20.0, 4.0, False)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BIGMODEL_LEADER_ELECTION_RENEW_DEADLINE": "15"},
            "BIGMODEL_LEADER_ELECTION_RENEW_DEADLINE=15.0 must be below "
            "BIGMODEL_LEADER_ELECTION_LEASE_DURATION=15.0",
        ),
        (
            {"BIGMODEL_LEADER_ELECTION_RETRY_PERIOD": "9"},
            "BIGMODEL_LEADER_ELECTION_RETRY_PERIOD=9.0 must be below",
        ),
        ({"BIGMODEL_LEADER_ELECTION_LEASE_DURATION": "0"}, "must be above 0"),
        ({"BIGMODEL_LEADER_ELECTION_RETRY_PERIOD": "soon"}, "not a number"),
        ({"BIGMODEL_LEADER_ELECTION": "maybe"}, "must be one of 1, true"),
        (
            {"BIGMODEL_LEADER_ELECTION_LEASE_DURATION": "0.5"},
            "BIGMODEL_LEADER_ELECTION_LEASE_DURATION=0.5: must be at least 1",
        ),
    ],
    ids=["deadline-not-below-duration", "retry-too-long", "zero", "text", "flag", "sub-second"],
)
def test_a_bad_setting_is_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("+", r"\+")):
        ElectionSettings.from_env(env)


def test_the_lease_namespace_is_the_pods_own_in_a_cluster(tmp_path: Path) -> None:
    own = tmp_path / "namespace"
    own.write_text("bigmodel-system\n")
    assert default_lease_namespace(["team-a"], own) == "bigmodel-system"


def test_outside_a_cluster_the_lease_is_in_the_first_watched_namespace(tmp_path: Path) -> None:
    absent = tmp_path / "absent"
    assert default_lease_namespace(["team-a", "team-b"], absent) == "team-a"
    assert default_lease_namespace([], absent) == "default"


def test_the_identity_is_the_pod_name_with_a_random_suffix() -> None:
    first, second = new_identity({"POD_NAME": "op-7f9c"}), new_identity({"POD_NAME": "op-7f9c"})
    assert first.startswith("op-7f9c_") and second.startswith("op-7f9c_")
    assert first != second
