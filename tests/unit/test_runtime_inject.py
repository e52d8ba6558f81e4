"""The example trainer's `--inject` causes (`bigmodel.runtime.inject`)."""

from __future__ import annotations

import pytest

from bigmodel.runtime.inject import Injection, parse_injection


def test_input_wait_sleeps_on_its_rank_only() -> None:
    injection = parse_injection("input-wait:3:0.25")
    assert injection == Injection("input-wait", 3, 0.25)
    assert (injection.input_wait(3), injection.input_wait(0)) == (0.25, 0.0)
    assert injection.extra_forwards(3) == 0


def test_compute_factor_adds_forward_passes_on_its_rank() -> None:
    injection = parse_injection("compute:1:2")
    assert (injection.extra_forwards(1), injection.extra_forwards(0)) == (3, 0)
    assert parse_injection("compute:1:1").extra_forwards(1) == 0


def test_communication_delays_every_rank_from_its_step() -> None:
    injection = parse_injection("communication:0.1:20")
    assert (injection.communication_delay(19), injection.communication_delay(20)) == (0.0, 0.1)
    assert injection.input_wait(0) == 0.0


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("network:1:2", "input-wait:RANK:SECONDS"),
        ("input-wait:1", "expected one of"),
        ("input-wait:x:1", "input-wait:RANK:SECONDS with numbers"),
        ("compute:0:0.5", "FACTOR >= 1"),
        ("input-wait:0:-1", "SECONDS >= 0"),
        ("input-wait:-1:1", "ranks/steps >= 0"),
        ("communication:0.1:nan", "with numbers"),
        ("input-wait:0:inf", "SECONDS >= 0"),
    ],
)
def test_a_bad_injection_names_the_allowed_form(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("+", r"\+")):
        parse_injection(text)
