"""What a node's page says about why its steps take the time they take: the parts of its
step and its machine sampler's figures (`bigmodel.runtime.exposition`), read in the same
scrape as T_i (`WithEvidence`) and kept per target in `Scrape.raw`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bigmodel.runtime.exposition import (
    MACHINE_SERIES,
    NODE_COMMUNICATION_SECONDS,
    NODE_COMPUTE_SECONDS,
    NODE_INPUT_WAIT_SECONDS,
)
from bigmodel.telemetry.collect import Scrape
from bigmodel.telemetry.readings import Reading
from bigmodel.telemetry.textformat import Series

_PARTS = {
    "input_wait": Series(NODE_INPUT_WAIT_SECONDS),
    "compute": Series(NODE_COMPUTE_SECONDS),
    "communication": Series(NODE_COMMUNICATION_SECONDS),
}
_MACHINE = {figure: Series(f"bigmodel_node_machine_{figure}") for figure in MACHINE_SERIES}
EVIDENCE_SERIES: tuple[Series, ...] = (*_PARTS.values(), *_MACHINE.values())


@dataclass(frozen=True)
class WithEvidence:
    """A `Reading` that also reads the evidence series (T_i still comes from `base`)."""

    base: Reading

    @property
    def series(self) -> tuple[Series, ...]:
        return (*self.base.series, *EVIDENCE_SERIES)

    def value(self, current: Mapping[Series, float], earlier: Scrape | None, now: float) -> float:
        return self.base.value(current, earlier, now)


@dataclass(frozen=True)
class NodeEvidence:
    """One node's evidence this round; None (or absent from `machine`): not reported."""

    input_wait: float | None = None
    compute: float | None = None
    communication: float | None = None
    machine: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    """`MachineSample` figure -> value, for the figures the node reported."""


def evidence_of(raw: Mapping[Series, float]) -> NodeEvidence:
    """The evidence among the series read from one page."""
    return NodeEvidence(
        input_wait=raw.get(_PARTS["input_wait"]),
        compute=raw.get(_PARTS["compute"]),
        communication=raw.get(_PARTS["communication"]),
        machine=MappingProxyType(
            {figure: raw[series] for figure, series in _MACHINE.items() if series in raw}
        ),
    )


def round_evidence(scrapes: Mapping[str, Scrape]) -> dict[str, NodeEvidence]:
    """Per target key that answered this round, its evidence."""
    return {key: evidence_of(s.raw) for key, s in scrapes.items() if s.value is not None}
