"""Benchmarks of the wandb backend: N steps of 4 scalars, end to end (until
``finish`` returns), through unilog with ``backends=["wandb"]`` in offline mode
(the CSV local record included, as every run has it) against calling the wandb
SDK directly, one ``run.log(values, step=i)`` per step, in an offline run with the
same settings. The import and wandb-core's start (once per process) are paid
before timing."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import compare_with_sdk, values


def through_sdk(steps: int, root: Path) -> float:
    """Seconds for the same values with ``wandb.init(mode="offline")``, one log per step."""
    import wandb

    from unilog_plugins.wandb_backend import DEFAULT_SETTINGS

    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run = wandb.init(project="bench", dir=str(root), mode="offline", reinit="create_new",
                     settings=wandb.Settings(**DEFAULT_SETTINGS))
    for i in range(steps):
        run.log(values(i), step=i)
    run.finish()
    return time.perf_counter() - start


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the wandb benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-wandb-"))
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # as the backend does offline
    through_sdk(10, root / "warm-up")  # import wandb and start wandb-core, outside the timings
    return compare_with_sdk("wandb", "wandb", "SDK directly, run.log per step, same values", through_sdk, steps, repeats,
                            root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
