"""The process kubelet's pure parts: GPU indices per node."""

from __future__ import annotations

import pytest

from kubesandbox.kubelet.host import gpu_indices


@pytest.mark.parametrize(
    ("nodes", "real", "fake", "expected"),
    [
        (2, 0, 2, [["0", "1"], ["0", "1"]]),
        (2, 3, 8, [["0", "2"], ["1"]]),  # real GPUs win and are never shared
        (1, 1, 0, [["0"]]),
        (2, 0, 0, [[], []]),
    ],
)
def test_gpu_indices(nodes: int, real: int, fake: int, expected: list[list[str]]) -> None:
    assert gpu_indices(nodes, real, fake) == expected
