"""Benchmarks of the wandb backend: N steps of 4 scalars, end to end (until
``finish`` returns), through unilog with ``backends=["wandb"]`` in offline mode
(the CSV local record included, as every run has it) against calling the wandb
SDK directly, one ``run.log(values, step=i)`` per step, in an offline run with the
same settings. The import and wandb-core's start (once per process) are paid
before timing."""

from __future__ import annotations

import gc
import os
import statistics
import tempfile
import time
from pathlib import Path

import unilog


def _values(i: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "acc": i / (i + 1), "lr": 1e-3 * 0.999 ** i, "grad_norm": 2.0}


def through_unilog(steps: int, root: Path) -> tuple[float, float, int]:
    """(seconds end to end, median caller-side µs of ``run.log``, rows wandb missed)."""
    samples = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    run = unilog.init(project="bench", dir=root, mode="offline", backends=["wandb"])
    gc.disable()
    for i in range(steps):
        values = _values(i)
        before = clock()
        run.log(values)
        samples.append(clock() - before)
    gc.enable()
    report = run.finish(timeout=600)
    elapsed = time.perf_counter() - start
    wb = report["wandb"]
    if wb["errors"] or wb["failed"]:
        raise RuntimeError(f"the wandb backend failed: {wb}")
    return elapsed, statistics.median(samples) / 1e3, wb["dropped"]


def through_sdk(steps: int, root: Path) -> float:
    """Seconds for the same values with ``wandb.init(mode="offline")``, one log per step."""
    import wandb

    from unilog_plugins.wandb_backend import DEFAULT_SETTINGS

    root.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    run = wandb.init(project="bench", dir=str(root), mode="offline", reinit="create_new",
                     settings=wandb.Settings(**DEFAULT_SETTINGS))
    for i in range(steps):
        run.log(_values(i), step=i)
    run.finish()
    return time.perf_counter() - start


def _fmt(values: list[float], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{med * scale:.{digits}f} {unit} [{lo * scale:.{digits}f}-{hi * scale:.{digits}f}]"


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the wandb benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-wandb-"))
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # as the backend does offline
    through_sdk(10, root / "warm-up")  # import wandb and start wandb-core, outside the timings
    ours, calls, direct, dropped = [], [], [], 0
    for rep in range(repeats):
        elapsed, per_call, missed = through_unilog(steps, root / "unilog")
        ours.append(elapsed)
        calls.append(per_call)
        dropped += missed
        direct.append(through_sdk(steps, root / f"direct-{rep}"))
    med = statistics.median
    return [
        (f"wandb (offline): unilog end to end, {steps:,} steps x 4 scalars (until finish)",
         f"{_fmt(ours)}; {4 * steps / med(ours):,.0f} values/s; rows dropped: {dropped}",
         "0 dropped"),
        ("wandb (offline): SDK directly, run.log per step, same values",
         f"{_fmt(direct)}; unilog / direct {med(ours) / med(direct):.2f}x", "unilog <= 1.5x"),
        ("wandb: run.log caller-side cost in that run (median per call)",
         _fmt([c / 1e6 for c in calls], "us", 1e6, 2), "<= 10 us"),
    ]


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
