"""Which API requests fail, and how: a list of rules and a seed (pure, deterministic).

A rule selects resource requests by verb, resource, namespace and user-agent prefix, and
fires on a share (`rate`) of them. Whether it fires on a request is drawn from the seed, the
rule's index, the request's verb and path and how many such requests came before, so the
same seed gives the same decisions for the same requests whatever else runs meanwhile.
Stalls are windows of time instead: while one is open, every request it selects waits.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    """What a rule does to the requests it selects."""

    ERROR = "error"
    """Answer `code` (500, 503, or 429 with `Retry-After`) without doing anything."""
    CONFLICT = "conflict"
    """Answer 409 Conflict to an update or patch, as for a stale resourceVersion."""
    GONE = "gone"
    """End a watch at once with a `410 Expired` ERROR event, as for a too-old version."""
    DROP = "drop"
    """Cut a watch's connection `seconds` after it started (no clean end of stream)."""
    STALL = "stall"
    """Answer nothing for `seconds` (once, or every `every` seconds): requests wait."""
    SLOW = "slow"
    """Answer `seconds` late."""


WATCH_ONLY = (Kind.GONE, Kind.DROP)
WRITES = ("update", "patch")
"""The verbs a conflict can answer."""
ERROR_CODES = (429, 500, 503, 504)
DEFAULT_SECONDS = {Kind.DROP: 10.0, Kind.STALL: 5.0, Kind.SLOW: 0.5, Kind.ERROR: 1.0}
"""`seconds` when a rule does not say: a drop's watch life, a stall's length, a slow
answer's delay, an error's `Retry-After`."""


@dataclass(frozen=True)
class Call:
    """What the plan sees of a resource request."""

    verb: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    path: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Rule:
    """One fault and the requests it selects (an empty selector selects all)."""

    kind: Kind
    rate: float = 1.0
    code: int = 500
    seconds: float | None = None
    every: float = 0.0
    verbs: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    """`pods`, or `pods/status` for one subresource."""
    namespaces: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()
    """Prefixes, e.g. `kopf/` and `my-operator/` for an operator's own requests."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", Kind(self.kind))
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate: {self.rate} is not between 0 and 1")
        if self.kind is Kind.ERROR and self.code not in ERROR_CODES:
            raise ValueError(f"code: {self.code} is not one of {', '.join(map(str, ERROR_CODES))}")
        if (self.seconds or 0) < 0 or self.every < 0:
            raise ValueError("seconds and every must not be negative")

    @property
    def delay(self) -> float:
        """`seconds`, or the kind's default."""
        return DEFAULT_SECONDS.get(self.kind, 0.0) if self.seconds is None else self.seconds

    @property
    def label(self) -> str:
        """How counts name the rule's faults: `error:503`, `conflict`, ..."""
        return f"{self.kind}:{self.code}" if self.kind is Kind.ERROR else str(self.kind)

    def selects(self, call: Call) -> bool:
        """Whether the request is one this rule may fault."""
        if self.kind in WATCH_ONLY and call.verb != "watch":
            return False
        if self.kind is Kind.CONFLICT and call.verb not in WRITES:
            return False
        resource = f"{call.resource}/{call.subresource}" if call.subresource else call.resource
        return (
            (not self.verbs or call.verb in self.verbs)
            and (not self.resources or resource in self.resources)
            and (not self.namespaces or call.namespace in self.namespaces)
            and (not self.user_agents or call.user_agent.startswith(self.user_agents))
        )

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin endpoint sends it (lists for the selectors)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Rule:
        """A rule from JSON; ValueError names a field that is wrong."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}: expected {sorted(known)}")
        if data.get("kind") not in tuple(Kind):
            raise ValueError(f"kind: {data.get('kind')!r} is not one of {', '.join(Kind)}")
        values: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in data.items()
        }
        try:
            return cls(**values)
        except TypeError as exc:
            raise ValueError(str(exc)) from None


@dataclass
class Decision:
    """What to do to one request: wait, then fail or go on (a watch may end or be cut)."""

    stall_until: float | None = None
    """Monotonic time until which the request waits."""
    delay: float = 0.0
    error: Rule | None = None
    """An error or conflict rule that fired."""
    gone: bool = False
    drop_after: float | None = None
    labels: list[str] = field(default_factory=list)
    """The faults injected, as counted."""


class FaultPlan:
    """The rules in force, their seeded draws, and counts of the faults injected."""

    def __init__(
        self, rules: Iterable[Rule] = (), seed: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self.injected: Counter[str] = Counter()
        self.set(rules, seed)

    def set(self, rules: Iterable[Rule], seed: int) -> None:
        """Replace the rules (stall windows count from now); counts start again."""
        self.rules, self.seed = tuple(rules), seed
        self.since = self._clock()
        self._seen: Counter[tuple[int, str]] = Counter()
        self.injected.clear()

    def to_json(self) -> dict[str, Any]:
        """The plan and its counts, as the admin endpoint answers."""
        return {
            "seed": self.seed,
            "rules": [r.to_json() for r in self.rules],
            "injected": dict(sorted(self.injected.items())),
        }

    def _fires(self, index: int, rule: Rule, call: Call) -> bool:
        """The rule's seeded draw for this request (the n-th of its verb and path)."""
        if rule.rate >= 1.0:
            return True
        key = f"{call.verb} {call.path}"
        occurrence = self._seen[(index, key)]
        self._seen[(index, key)] += 1
        return random.Random(f"{self.seed}/{index}/{key}/{occurrence}").random() < rule.rate

    def _stall_end(self, rule: Rule, now: float) -> float | None:
        """The end of the stall window open at `now`, if one is."""
        elapsed = now - self.since
        if rule.every <= 0:
            return self.since + rule.delay if elapsed < rule.delay else None
        if elapsed < rule.every:
            return None
        start = self.since + (elapsed // rule.every) * rule.every
        return start + rule.delay if now < start + rule.delay else None

    def decide(self, call: Call) -> Decision:
        """What the rules do to this request; what fires is counted."""
        decision, now = Decision(), self._clock()
        for index, rule in enumerate(self.rules):
            if not rule.selects(call):
                continue
            if rule.kind is Kind.STALL:
                end = self._stall_end(rule, now)
                if end is not None:
                    decision.stall_until = max(end, decision.stall_until or end)
                    decision.labels.append(rule.label)
                continue
            if not self._fires(index, rule, call):
                continue
            if rule.kind is Kind.SLOW:
                decision.delay += rule.delay
            elif rule.kind in (Kind.ERROR, Kind.CONFLICT):
                if decision.error is not None or decision.gone:
                    continue
                decision.error = rule
            elif rule.kind is Kind.GONE:
                if decision.error is not None:
                    continue
                decision.gone = True
            else:
                decision.drop_after = min(rule.delay, decision.drop_after or rule.delay)
            decision.labels.append(rule.label)
        self.injected.update(decision.labels)
        return decision


def parse_rule(text: str) -> Rule:
    """A rule from the command line: `KIND[:key=value,...]`, list values joined with `+`
    (`error:code=503,rate=0.2,verbs=patch+update,user_agents=kopf/`)."""
    kind, _, options = text.partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    lists = {"verbs", "resources", "namespaces", "user_agents"}
    numbers = {"rate": float, "seconds": float, "every": float, "code": int}
    for option in filter(None, (o.strip() for o in options.split(","))):
        key, equals, value = option.partition("=")
        if not equals:
            raise ValueError(f"{option!r} is not key=value")
        if key in lists:
            data[key] = [v for v in value.split("+") if v]
        elif key in numbers:
            try:
                data[key] = numbers[key](value)
            except ValueError:
                raise ValueError(f"{key}: {value!r} is not a number") from None
        else:
            data[key] = value
    return Rule.from_json(data)
