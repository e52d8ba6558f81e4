"""The fault plan: which requests its rules select and fault, reproducibly from a seed."""

from __future__ import annotations

import pytest

from kubesandbox.faults.plan import Call, FaultPlan, Kind, Rule, parse_rule

PATCH = Call("patch", "trainjobs", "status", "ns", "/apis/x/ns/trainjobs/j/status", "kopf/1")
WATCH = Call("watch", "pods", "", "ns", "/api/v1/namespaces/ns/pods", "my-operator/0.1")
LIST = Call("list", "pods", "", "ns", "/api/v1/namespaces/ns/pods", "kubectl/v1.33")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _draws(plan: FaultPlan, calls: list[Call]) -> list[list[str]]:
    return [plan.decide(c).labels for c in calls]


def test_the_same_seed_faults_the_same_requests() -> None:
    rules = [Rule(Kind.ERROR, rate=0.3, code=503)]
    calls = [PATCH, LIST] * 50
    first, again = _draws(FaultPlan(rules, 7), calls), _draws(FaultPlan(rules, 7), calls)
    assert first == again
    assert 10 < sum(1 for labels in first if labels) < 50  # about 30 of 100
    assert _draws(FaultPlan(rules, 8), calls) != first


def test_a_request_draws_the_same_whatever_other_requests_come_between() -> None:
    rules = [Rule(Kind.ERROR, rate=0.5)]
    alone = _draws(FaultPlan(rules, 3), [PATCH] * 20)
    mixed = _draws(FaultPlan(rules, 3), [PATCH, LIST] * 20)[::2]
    assert alone == mixed


def test_setting_a_plan_again_starts_its_draws_and_counts_again() -> None:
    plan = FaultPlan([Rule(Kind.ERROR, rate=0.5)], 3)
    first = _draws(plan, [PATCH] * 20)
    plan.set([Rule(Kind.ERROR, rate=0.5)], 3)
    assert plan.injected == {}
    assert _draws(plan, [PATCH] * 20) == first


def test_selectors_pick_verbs_resources_namespaces_and_user_agent_prefixes() -> None:
    rule = Rule(
        Kind.SLOW, verbs=("patch",), resources=("trainjobs/status",), user_agents=("kopf/",)
    )
    assert rule.selects(PATCH)
    assert not rule.selects(LIST)
    assert not Rule(Kind.SLOW, resources=("trainjobs",)).selects(PATCH)  # not /status
    assert not Rule(Kind.SLOW, namespaces=("other",)).selects(PATCH)
    assert Rule(Kind.SLOW, user_agents=("kubectl/", "kopf/")).selects(PATCH)


def test_conflicts_answer_only_writes_and_watch_faults_only_watches() -> None:
    assert Rule(Kind.CONFLICT).selects(PATCH)
    assert not Rule(Kind.CONFLICT).selects(LIST)
    assert Rule(Kind.GONE).selects(WATCH) and Rule(Kind.DROP).selects(WATCH)
    assert not Rule(Kind.GONE).selects(LIST) and not Rule(Kind.DROP).selects(PATCH)


def test_one_error_per_request_and_slow_delays_add_up() -> None:
    plan = FaultPlan(
        [
            Rule(Kind.SLOW, seconds=0.25),
            Rule(Kind.ERROR, code=429),
            Rule(Kind.CONFLICT),
            Rule(Kind.SLOW, seconds=0.5),
        ]
    )
    decision = plan.decide(PATCH)
    assert decision.error is not None and decision.error.code == 429
    assert decision.delay == 0.75
    assert decision.labels == ["slow", "error:429", "slow"]
    assert plan.injected == {"slow": 2, "error:429": 1}


def test_a_watch_is_either_gone_or_failed_and_may_be_dropped() -> None:
    decision = FaultPlan([Rule(Kind.GONE), Rule(Kind.ERROR), Rule(Kind.DROP, seconds=3)]).decide(
        WATCH
    )
    assert (decision.gone, decision.error, decision.drop_after) == (True, None, 3)


def test_a_stall_holds_requests_for_its_seconds_from_when_it_is_set() -> None:
    clock = Clock()
    plan = FaultPlan([Rule(Kind.STALL, seconds=5)], clock=clock)
    assert plan.decide(LIST).stall_until == 105
    clock.now = 104.9
    assert plan.decide(LIST).stall_until == 105
    clock.now = 105
    assert plan.decide(LIST).stall_until is None


def test_a_periodic_stall_opens_every_period_after_the_first() -> None:
    clock = Clock()
    plan = FaultPlan([Rule(Kind.STALL, seconds=2, every=10)], clock=clock)
    assert plan.decide(LIST).stall_until is None  # healthy for the first period
    clock.now = 111
    assert plan.decide(LIST).stall_until == 112
    clock.now = 113
    assert plan.decide(LIST).stall_until is None
    clock.now = 120.5
    assert plan.decide(LIST).stall_until == 122
    assert plan.injected == {"stall": 2}


def test_rules_parse_from_the_command_line() -> None:
    rule = parse_rule("error:code=503,rate=0.2,verbs=patch+update,user_agents=kopf/")
    assert rule == Rule(Kind.ERROR, 0.2, 503, verbs=("patch", "update"), user_agents=("kopf/",))
    assert parse_rule("drop").delay == 10.0
    assert parse_rule("stall:seconds=3,every=30") == Rule(Kind.STALL, seconds=3.0, every=30.0)


def test_rules_round_trip_through_json() -> None:
    rule = Rule(Kind.SLOW, 0.5, seconds=0.1, resources=("pods",), namespaces=("a", "b"))
    assert Rule.from_json(rule.to_json()) == rule


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("boom", "kind"),
        ("error:code=404", "code"),
        ("error:rate=2", "rate"),
        ("slow:seconds=-1", "seconds"),
        ("slow:seconds=soon", "seconds"),
        ("slow:colour=red", "colour"),
        ("slow:fast", "key=value"),
    ],
)
def test_a_bad_rule_is_refused_naming_what_is_wrong(text: str, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        parse_rule(text)
