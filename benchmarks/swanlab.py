"""Benchmarks of the SwanLab backend (issue 4): N steps of 4 scalars, end to end
(until ``finish`` returns), through unilog with ``backends=["swanlab"]`` offline
(the CSV local record included, as every run has it) against calling the SwanLab
SDK directly, one ``run.log`` per step, offline, in the same process. Import
costs are paid before timing; each SwanLab run writes under a temporary folder."""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from pathlib import Path

import unilog

KEYS = ("loss", "acc", "lr", "grad_norm")


def _values(i: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "acc": i / (i + 1), "lr": 1e-3 * 0.999 ** i, "grad_norm": 2.0}


def through_unilog(steps: int, root: Path) -> tuple[float, float, int]:
    """(seconds end to end, median caller-side µs of ``run.log``, rows SwanLab missed)."""
    samples = []
    clock = time.perf_counter_ns
    start = time.perf_counter()
    run = unilog.init(project="bench", dir=root, backends=["swanlab"], mode="offline")
    gc.disable()
    for i in range(steps):
        values = _values(i)
        before = clock()
        run.log(values)
        samples.append(clock() - before)
    gc.enable()
    report = run.finish()
    elapsed = time.perf_counter() - start
    sw = report["swanlab"]
    if sw["errors"] or sw["failed"]:
        raise RuntimeError(f"the swanlab backend failed: {sw}")
    return elapsed, statistics.median(samples) / 1e3, sw["dropped"]


def through_sdk(steps: int, log_dir: Path) -> float:
    """Seconds for the same rows with the SwanLab SDK directly (offline, as the backend sets it)."""
    import swanlab

    start = time.perf_counter()
    settings = swanlab.Settings(
        mode="offline", interactive=False, log_dir=log_dir,
        terminal=swanlab.Settings.Terminal(proxy_type="none"),
        probe=swanlab.Settings.Probe(hardware=False, runtime=False, requirements=False,
                                     git=False, monitor=False))
    run = swanlab.init(settings=settings, project="bench")
    for i in range(steps):
        run.log(_values(i), step=i)
    run.finish()
    return time.perf_counter() - start


def _fmt(values: list[float], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{med * scale:.{digits}f} {unit} [{lo * scale:.{digits}f}-{hi * scale:.{digits}f}]"


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the SwanLab benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-swanlab-"))
    import swanlab  # noqa: F401  (the import, ~0.6 s, is paid once outside the timings)

    ours, calls, direct, dropped = [], [], [], 0
    for rep in range(repeats):
        elapsed, per_call, missed = through_unilog(steps, root / "unilog")
        ours.append(elapsed)
        calls.append(per_call)
        dropped += missed
        direct.append(through_sdk(steps, root / f"sdk-{rep}"))
    values = 4 * steps
    med = statistics.median
    return [
        (f"SwanLab: unilog end to end, {steps:,} steps x 4 scalars, offline (until finish returns)",
         f"{_fmt(ours)}; {values / med(ours):,.0f} values/s; rows dropped: {dropped}",
         "0 dropped"),
        ("SwanLab: SDK directly, run.log per step, same rows, offline",
         f"{_fmt(direct)}; unilog / direct {med(ours) / med(direct):.2f}x", "unilog <= 1.5x"),
        ("SwanLab: run.log caller-side cost in that run (median per call)",
         _fmt([c / 1e6 for c in calls], "us", 1e6, 2), "<= 10 us"),
    ]


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
