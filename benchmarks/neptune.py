"""Benchmarks of the Neptune backend (issue 4): N steps of 4 scalars, end to end
(until ``finish``/``stop`` returns), through unilog with ``backends=["neptune"]`` in
offline mode (the CSV local record included, as every run has it) against calling
the neptune SDK directly, one ``append`` per value per step, in an offline run.
Import costs (~2.7 s for ``import neptune``) are paid before timing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks import direct
from benchmarks.common import compare_with_sdk


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the Neptune benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-neptune-"))
    direct.warm_up(["neptune"], root)  # the import (~2.7 s), outside every timing
    return compare_with_sdk("neptune", "Neptune",
                            "SDK directly, append per value per step, same values",
                            direct.time_per_step("neptune"), steps, repeats, root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
