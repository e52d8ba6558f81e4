"""Read chosen series from a page of the Prometheus text exposition format (pure).

Pages are not parsed into metric families: only the lines of the wanted series are found
(`str.find` on line starts) and parsed, escapes included. prometheus_client's own parser
(`text_string_to_metric_families`) parses every line into families: on a node's page it
costs 7 to 17 times as much (benchmarks/exposition_parsing.py), up to a doubling of a
1,000-node telemetry round's CPU, so it is not used here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class Series:
    """A series selector: metric name and label values it must carry (others may differ).
    Several matching series are added up (a counter split by label). With `by` (a label
    name), they are added up per value of that label instead: one series per value, keyed
    `Series(name, labels | {by: value})` (a histogram's buckets, by `le`)."""

    name: str
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    by: str | None = None

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.labels.items())), self.by))


_ESCAPES = {"\\": "\\", '"': '"', "n": "\n"}


def _labels(line: str, start: int) -> tuple[dict[str, str], int]:
    """Parse `{a="x",b="y"}` from `line[start] == "{"`; returns labels and the index after
    the closing brace. Raises ValueError on a malformed block."""
    labels: dict[str, str] = {}
    i, end = start + 1, len(line)
    while True:
        while i < end and line[i] in " \t":
            i += 1
        if i < end and line[i] == "}":
            return labels, i + 1
        equals = line.find("=", i)
        if equals < 0:
            raise ValueError("label without '='")
        name = line[i:equals].strip()
        i = equals + 1
        while i < end and line[i] in " \t":
            i += 1
        if i >= end or line[i] != '"':
            raise ValueError(f"label {name!r}: value not quoted")
        i += 1
        chars: list[str] = []
        while True:
            quote = line.find('"', i)
            backslash = line.find("\\", i, quote if quote >= 0 else end)
            if quote < 0:
                raise ValueError(f"label {name!r}: unterminated value")
            if backslash < 0:
                chars.append(line[i:quote])
                i = quote + 1
                break
            chars.append(line[i:backslash])
            escaped = line[backslash + 1 : backslash + 2]
            if escaped not in _ESCAPES:
                raise ValueError(f"label {name!r}: bad escape \\{escaped}")
            chars.append(_ESCAPES[escaped])
            i = backslash + 2
        if not name:
            raise ValueError("empty label name")
        labels[name] = "".join(chars)
        while i < end and line[i] in " \t":
            i += 1
        if i < end and line[i] == ",":
            i += 1
        elif i < end and line[i] != "}":
            raise ValueError(f"unexpected {line[i]!r} after label {name!r}")


def _next_line(page: str, needle: str, position: int) -> int:
    """Start of the next line beginning with `needle[1:]` at or after `position`, or -1."""
    found = page.find(needle, position)
    return found + 1 if found >= 0 else -1


def _lines_of(page: str, name: str) -> Iterator[str]:
    """The sample lines of metric `name` (not of a longer name sharing its prefix)."""
    needle = "\n" + name
    start = 0 if page.startswith(name) else _next_line(page, needle, 0)
    while start >= 0:
        after = start + len(name)
        end = page.find("\n", after)
        if after == len(page) or page[after] in "{ \t":  # not `name_ewma` for `name`
            yield page[start : len(page) if end < 0 else end].rstrip("\r")
        start = -1 if end < 0 else _next_line(page, needle, end)


def parse_sample(line: str, name: str) -> tuple[dict[str, str], float]:
    """Labels and value of one sample line of `name` (an optional timestamp is ignored).
    Raises ValueError when the line is not valid text exposition."""
    i = len(name)
    while i < len(line) and line[i] in " \t":
        i += 1
    labels: dict[str, str] = {}
    if i < len(line) and line[i] == "{":
        labels, i = _labels(line, i)
    fields = line[i:].split()
    if not 1 <= len(fields) <= 2:
        raise ValueError(f"expected 'value [timestamp]' after the labels in {line[:200]!r}")
    try:
        value = float(fields[0])
    except ValueError:
        raise ValueError(f"value {fields[0][:50]!r} is not a number") from None
    return labels, value


def read_series(page: str, wanted: Sequence[Series]) -> dict[Series, float]:
    """The value of each wanted series present on `page` (matching series added up, per
    value of its `by` label if it has one).
    Raises ValueError on a malformed line of a wanted series."""
    found: dict[Series, float] = {}
    for series in wanted:
        for line in _lines_of(page, series.name):
            labels, value = parse_sample(line, series.name)
            if not all(labels.get(k) == v for k, v in series.labels.items()):
                continue
            key = series
            if series.by is not None:
                if series.by not in labels:
                    continue
                key = Series(
                    series.name, MappingProxyType({**series.labels, series.by: labels[series.by]})
                )
            found[key] = found.get(key, 0.0) + value
    return found
