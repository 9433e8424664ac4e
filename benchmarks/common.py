"""What the single-backend benchmarks share: the values logged, the timed run
through unilog, and how a figure is printed."""

from __future__ import annotations

import gc
import statistics
import time
from pathlib import Path
from typing import Callable

import unilog


def values(i: int) -> dict[str, float]:
    """The 4 scalars of step ``i``, the same in every benchmark and direct baseline."""
    return {"loss": 1.0 / (i + 1), "acc": i / (i + 1), "lr": 1e-3 * 0.999 ** i, "grad_norm": 2.0}


def finish_complete(run: unilog.Run, timeout: float) -> dict:
    """``run.finish(timeout)``'s report; raises when a backend lost records (errors,
    failed or dropped), so no figure is ever taken from a run that lost data."""
    report = run.finish(timeout=timeout)
    bad = {n: r for n, r in report.items() if r["errors"] or r["failed"] or r["dropped"]}
    if bad:
        raise RuntimeError(f"backends lost records: {bad}")
    return report


def timed_log_loop(run: unilog.Run, steps: int) -> list[int]:
    """``run.log(values(i))`` for ``steps`` steps, garbage collector off; the ns of each call."""
    clock, samples = time.perf_counter_ns, []
    gc.disable()
    try:
        for i in range(steps):
            step_values = values(i)
            before = clock()
            run.log(step_values)
            samples.append(clock() - before)
    finally:
        gc.enable()
    return samples


def through_unilog(backend: str, steps: int, root: Path) -> tuple[float, float, int]:
    """Log ``steps`` steps offline through ``backend`` (beside the CSV record).

    Returns (seconds from ``init`` until ``finish`` returns, median caller-side
    µs of ``run.log``, rows the backend dropped). Dropped rows are counted, not
    hidden, so a fast result never hides a loss; an error fails the benchmark.
    """
    start = time.perf_counter()
    run = unilog.init(project="bench", dir=root, backends=[backend], mode="offline")
    samples = timed_log_loop(run, steps)
    report = run.finish(timeout=600)[backend]
    elapsed = time.perf_counter() - start
    if report["errors"] or report["failed"]:
        raise RuntimeError(f"the {backend} backend failed: {report}")
    return elapsed, statistics.median(samples) / 1e3, report["dropped"]


def fmt(samples: list[float], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    """``median unit [min-max]``."""
    med, lo, hi = statistics.median(samples), min(samples), max(samples)
    return f"{med * scale:.{digits}f} {unit} [{lo * scale:.{digits}f}-{hi * scale:.{digits}f}]"


def compare_with_sdk(backend: str, label: str, direct_label: str,
                     through_sdk: Callable[[int, Path], float], steps: int, repeats: int,
                     root: Path) -> list[tuple[str, str, str]]:
    """unilog through ``backend`` against ``through_sdk(steps, folder)`` (the same
    values with the SDK called directly, once per step), alternated ``repeats``
    times; rows of (figure, measured, target)."""
    ours, calls, direct, dropped = [], [], [], 0
    for rep in range(repeats):
        elapsed, per_call, missed = through_unilog(backend, steps, root / "unilog")
        ours.append(elapsed)
        calls.append(per_call)
        dropped += missed
        direct.append(through_sdk(steps, root / f"direct-{rep}"))
    med = statistics.median
    return [
        (f"{label}: unilog end to end, {steps:,} steps x 4 scalars, offline (until finish)",
         f"{fmt(ours)}; {4 * steps / med(ours):,.0f} values/s; rows dropped: {dropped}",
         "0 dropped"),
        (f"{label}: {direct_label}",
         f"{fmt(direct)}; unilog / direct {med(ours) / med(direct):.2f}x", "unilog <= 1.5x"),
        (f"{label}: run.log caller-side cost in that run (median per call)",
         fmt([c / 1e6 for c in calls], "us", 1e6, 2), "<= 10 us"),
    ]
