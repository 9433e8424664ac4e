"""Benchmarks of the wandb backend: N steps of 4 scalars, end to end (until
``finish`` returns), through unilog with ``backends=["wandb"]`` in offline mode
(the CSV local record included, as every run has it) against calling the wandb
SDK directly, one ``run.log(values, step=i)`` per step, in an offline run with the
same settings. The import and wandb-core's start (once per process) are paid
before timing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks import direct
from benchmarks.common import compare_with_sdk


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the wandb benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-wandb-"))
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # as the backend does offline
    direct.warm_up(["wandb"], root)  # import wandb and start wandb-core, outside the timings
    return compare_with_sdk("wandb", "wandb", "SDK directly, run.log per step, same values",
                            direct.time_per_step("wandb"), steps, repeats, root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
