"""Benchmarks of the SwanLab backend (issue 4): N steps of 4 scalars, end to end
(until ``finish`` returns), through unilog with ``backends=["swanlab"]`` offline
(the CSV local record included, as every run has it) against calling the SwanLab
SDK directly, one ``run.log`` per step, offline, in the same process. Import
costs are paid before timing; each SwanLab run writes under a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import direct
from benchmarks.common import compare_with_sdk


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the SwanLab benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-swanlab-"))
    direct.warm_up(["swanlab"], root)  # the import (~0.6 s), outside every timing
    return compare_with_sdk("swanlab", "SwanLab", "SDK directly, run.log per step, same rows",
                            direct.time_per_step("swanlab"), steps, repeats, root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
