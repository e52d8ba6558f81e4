"""Resource quantities as the engines size their workers from them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bigmodel.api.core import ResourceRequirements
from bigmodel.manifests.quantities import memory_bytes, quantity, whole_cpus


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("500m", "0.5"),
        ("2", "2"),
        (3, "3"),
        ("1.5", "1.5"),
        ("2Gi", str(2 * 2**30)),
        ("3M", "3000000"),
        ("1e3", "1000"),
    ],
)
def test_a_quantity_is_the_number_it_stands_for(text: str | int, number: str) -> None:
    assert quantity(text) == Decimal(number)


def test_whole_cpus_round_down_and_are_at_least_one() -> None:
    assert whole_cpus(ResourceRequirements(requests={"cpu": "2500m"})) == 2
    assert whole_cpus(ResourceRequirements(requests={"cpu": "500m"})) == 1
    assert whole_cpus(ResourceRequirements()) == 1


def test_the_limit_wins_over_the_request() -> None:
    resources = ResourceRequirements(requests={"memory": "1Gi"}, limits={"memory": "2Gi"})
    assert memory_bytes(resources) == 2 * 2**30


def test_unset_memory_is_none() -> None:
    assert memory_bytes(ResourceRequirements()) is None
