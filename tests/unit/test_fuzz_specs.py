"""Fuzzed BigModelJob and BigModelService specs (`support.fuzzing`): none crashes the CRD
validation, the models, the decisions or the builders; an invalid one is refused naming its
field or ends Failed/Invalid naming it; a valid one yields children the Kubernetes schema
accepts. A few hundred derandomized examples here; `benchmarks/chaos.py fuzz` runs 10,000."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from support.fuzzing import Fuzzed, check, resources

FUZZ = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(resources("BigModelJob"))
def test_a_fuzzed_job_is_refused_failed_invalid_or_builds_valid_pods(fuzzed: Fuzzed) -> None:
    assert check("BigModelJob", fuzzed) in (
        "refused",
        "invalid",
        "suspended",
        "child-invalid",
        "valid",
    )


@FUZZ
@given(resources("BigModelService"))
def test_a_fuzzed_service_is_refused_failed_invalid_or_builds_valid_children(
    fuzzed: Fuzzed,
) -> None:
    assert check("BigModelService", fuzzed) in ("refused", "invalid", "child-invalid", "valid")
