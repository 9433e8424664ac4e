"""Benchmarks of the SwanLab backend (issue 4): N steps of 4 scalars, end to end
(until ``finish`` returns), through unilog with ``backends=["swanlab"]`` offline
(the CSV local record included, as every run has it) against calling the SwanLab
SDK directly, one ``run.log`` per step, offline, in the same process. Import
costs are paid before timing; each SwanLab run writes under a temporary folder."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import compare_with_sdk, values

KEYS = ("loss", "acc", "lr", "grad_norm")


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
        run.log(values(i), step=i)
    run.finish()
    return time.perf_counter() - start


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the SwanLab benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-swanlab-"))
    import swanlab  # noqa: F401  (the import, ~0.6 s, is paid once outside the timings)

    return compare_with_sdk("swanlab", "SwanLab", "SDK directly, run.log per step, same rows", through_sdk, steps, repeats,
                            root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
