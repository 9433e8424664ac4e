"""Benchmarks of the Neptune backend (issue 4): N steps of 4 scalars, end to end
(until ``finish``/``stop`` returns), through unilog with ``backends=["neptune"]`` in
offline mode (the CSV local record included, as every run has it) against calling
the neptune SDK directly, one ``append`` per value per step, in an offline run.
Import costs (~2.7 s for ``import neptune``) are paid before timing."""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

from benchmarks.common import compare_with_sdk, values

KEYS = ("loss", "acc", "lr", "grad_norm")


def through_sdk(steps: int, data_dir: Path) -> float:
    """Seconds for the same values with ``neptune.init_run(mode="offline")``, one append each."""
    import neptune

    os.environ["NEPTUNE_DATA_DIRECTORY"] = str(data_dir)
    try:
        start = time.perf_counter()
        run = neptune.init_run(mode="offline", capture_stdout=False, capture_stderr=False,
                               capture_hardware_metrics=False, capture_traceback=False,
                               git_ref=False, source_files=[])
        for i in range(steps):
            for key, value in values(i).items():
                run[key].append(value, step=i)
        run.stop()
        return time.perf_counter() - start
    finally:
        os.environ.pop("NEPTUNE_DATA_DIRECTORY", None)


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the Neptune benchmarks; returns (figure, measured, target) rows."""
    steps = 500 if quick else 10000
    repeats = 3
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-neptune-"))
    from unilog_plugins.neptune_backend import _import_neptune

    _import_neptune()  # the import, outside every timing
    logging.getLogger("neptune").setLevel(logging.WARNING)  # its per-run info lines
    return compare_with_sdk("neptune", "Neptune", "SDK directly, append per value per step, same values", through_sdk, steps, repeats,
                            root)


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
