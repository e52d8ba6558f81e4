"""Bash programs of node pods that run the example trainer, for lifecycle tests and
benchmarks (they know the torchrun contract's `PET_NODE_RANK`)."""

from __future__ import annotations

import textwrap
from pathlib import Path

EXAMPLE_TRAINER = "python -m bigmodel.runtime.example_trainer --batch-size 4 --log-every 5"


def gang_restart_script(work: Path) -> str:
    """A node pod's bash program that fails once, for gang-restart tests: the first run of
    every process trains the example trainer 10 steps with checkpoints under `work`, then node
    1 exits 3; the rerun (after the gang restart) must resume from step 10 and train to 20."""
    checkpoints, marks = work / "checkpoints", work / "marks"
    marks.mkdir(parents=True, exist_ok=True)
    return textwrap.dedent(
        f"""
        mark={marks}/$PET_NODE_RANK-$LOCAL_RANK
        if [ ! -e $mark ]; then
          touch $mark
          {EXAMPLE_TRAINER} --steps 10 --checkpoint-dir {checkpoints} || exit 1
          [ "$PET_NODE_RANK" = 1 ] && exit 3
          exit 0
        fi
        exec {EXAMPLE_TRAINER} --steps 20 --checkpoint-dir {checkpoints}
        """
    )
