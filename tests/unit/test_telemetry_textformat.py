"""Reading chosen series from a page of the Prometheus text format: lines, labels, escapes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from bigmodel.runtime.exposition import NODE_STEP_SECONDS, render
from bigmodel.runtime.stats import RankStats, observe
from bigmodel.telemetry.textformat import Series, parse_sample, read_series


def test_reads_the_node_step_seconds_of_a_runtime_page() -> None:
    assert read_series(
        render({0: observe(RankStats(), 0.25), 1: observe(RankStats(), 0.5)}),
        [Series(NODE_STEP_SECONDS)],
    ) == {Series(NODE_STEP_SECONDS): 0.5}


def test_a_longer_name_sharing_the_prefix_is_not_read() -> None:
    page = "x_ewma 7\n# HELP x help\n# TYPE x gauge\nx 3\nx_total 9\n"
    assert read_series(page, [Series("x")]) == {Series("x"): 3.0}


@pytest.mark.parametrize(
    ("line", "labels", "value"),
    [
        ("m 1.5", {}, 1.5),
        ("m 1.5 1700000000000", {}, 1.5),
        ("m\t2e-3", {}, 0.002),
        ('m{a="x"} 4', {"a": "x"}, 4.0),
        ('m {a="x",} 4', {"a": "x"}, 4.0),
        ('m{a="}{ ,=",b=""} 5', {"a": "}{ ,=", "b": ""}, 5.0),
        (
            'm{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 6',
            {"a": 'q"uote', "b": "back\\slash", "c": "new\nline"},
            6.0,
        ),
        ("m +Inf", {}, math.inf),
        ("m -Inf", {}, -math.inf),
    ],
)
def test_sample_lines_parse_as_the_text_format_says(
    line: str, labels: dict[str, str], value: float
) -> None:
    assert parse_sample(line, "m") == (labels, value)


def test_nan_is_read_as_nan() -> None:
    assert math.isnan(parse_sample("m NaN", "m")[1])


@pytest.mark.parametrize(
    "line",
    ["m", "m abc", "m 1 2 3", 'm{a="x} 1', "m{a=x} 1", 'm{a="x" b="y"} 1', 'm{a="\\q"} 1'],
)
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(ValueError):
        parse_sample(line, "m")


def test_matching_series_are_added_up_and_labels_select() -> None:
    page = 'c{code="200"} 3\nc{code="500"} 2\nc{code="200",path="/x"} 1\n'
    found = read_series(page, [Series("c"), Series("c", {"code": "500"})])
    assert found == {Series("c"): 6.0, Series("c", {"code": "500"}): 2.0}


def test_a_series_split_by_a_label_is_added_up_per_value_of_it() -> None:
    page = (
        'h_bucket{le="0.5",a="x"} 1\nh_bucket{le="0.5",a="y"} 2\n'
        'h_bucket{le="+Inf"} 4\nh_bucket 9\n'
    )
    found = read_series(page, [Series("h_bucket", by="le")])
    assert found == {
        Series("h_bucket", {"le": "0.5"}): 3.0,
        Series("h_bucket", {"le": "+Inf"}): 4.0,
    }  # the line without `le` is not a bucket


def test_windows_line_endings_and_a_first_line_without_newline() -> None:
    assert read_series("m 1\r\nn 2", [Series("m"), Series("n")]) == {
        Series("m"): 1.0,
        Series("n"): 2.0,
    }


label_values = st.text(st.characters(codec="utf-8"), max_size=12)


@given(label_values, st.floats(allow_nan=False, width=64))
def test_reads_what_prometheus_client_writes(label: str, value: float) -> None:
    registry = CollectorRegistry()
    Gauge("g", "help", ["a"], registry=registry).labels(label).set(value)
    Gauge("g_other", "help", registry=registry).set(1)
    page = generate_latest(registry).decode()
    assert read_series(page, [Series("g", {"a": label})]) == {Series("g", {"a": label}): value}
