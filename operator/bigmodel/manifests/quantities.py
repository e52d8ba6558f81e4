"""Kubernetes resource quantities as numbers (pure): the CPUs and bytes of a pod's main
container, for engines that size their workers from them (Dask threads, Spark cores)."""

from __future__ import annotations

import math
from decimal import Decimal

from bigmodel.api.core import ResourceRequirements

_SUFFIXES: dict[str, Decimal] = {
    **{s: Decimal(2) ** (10 * (i + 1)) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(10) ** (3 * i) for i, s in zip((-3, -2, -1), ("n", "u", "m"), strict=True)},
    **{s: Decimal(10) ** (3 * (i + 1)) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
}


def quantity(value: int | str) -> Decimal:
    """The number a quantity stands for (`500m` -> 0.5, `2Gi` -> 2147483648)."""
    text = str(value)
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix) and "e" not in text.lower().removesuffix(suffix.lower()):
            return Decimal(text.removesuffix(suffix)) * _SUFFIXES[suffix]
    return Decimal(text)


def _of(resources: ResourceRequirements, name: str) -> Decimal | None:
    """The limit on `name`, else its request, None when neither is set."""
    found = resources.limits.get(name, resources.requests.get(name))
    return None if found is None else quantity(found)


def whole_cpus(resources: ResourceRequirements) -> int:
    """CPUs the container may use, rounded down, at least 1 (1 when unset)."""
    cpus = _of(resources, "cpu")
    return max(1, math.floor(cpus)) if cpus is not None else 1


def memory_bytes(resources: ResourceRequirements) -> int | None:
    """Bytes of memory the container may use, None when unset."""
    found = _of(resources, "memory")
    return None if found is None else int(found)
