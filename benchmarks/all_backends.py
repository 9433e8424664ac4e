"""Caller-side cost of ``run.log`` with every installed backend enabled at once (offline).

The training loop pays only for normalising and enqueueing; each backend's SDK
runs on its own worker, where it competes for the interpreter lock. The
figure is the median per call over a loop of 4-scalar steps, beside the same
loop with the CSV record alone, measured in the same run.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import unilog
from benchmarks.common import timed_log_loop
from unilog.errors import BackendNotFound, BackendNotInstalled
from unilog.plugins import get_backend_class

ALL = ("csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune")


def usable_backends() -> list[str]:
    """The six built-in backends that are registered and installed here."""
    found = []
    for name in ALL:
        try:
            get_backend_class(name)
        except (BackendNotFound, BackendNotInstalled):
            continue
        found.append(name)
    return found


def _median_log_us(backends: list[str], steps: int, root: Path) -> tuple[float, dict]:
    run = unilog.init(project="bench-all", dir=root, backends=backends, mode="offline")
    run.flush(timeout=120)  # every backend opened: measure steady logging, not start-up
    samples = timed_log_loop(run, steps)
    report = run.finish(timeout=300)
    return statistics.median(samples) / 1e3, report


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target)."""
    backends = usable_backends()
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-all-"))
    steps = 1000 if quick else 10_000
    repeats = 1 if quick else 3
    everything, alone, problems = [], [], {}
    for _ in range(repeats):
        us, report = _median_log_us(backends, steps, root)
        everything.append(us)
        problems.update({name: {k: v for k, v in r.items() if k in ("errors", "dropped")
                                and v} for name, r in report.items()})
        alone.append(_median_log_us(["csv"], steps, root)[0])
    problems = {k: v for k, v in problems.items() if v}
    return [(
        f"run.log, 4 scalars, with {len(backends)} backends at once ({', '.join(backends)}), "
        "offline: median per call on the caller's thread",
        f"{statistics.median(everything):.2f} us [{min(everything):.2f}-{max(everything):.2f}]"
        f"; CSV record alone {statistics.median(alone):.2f} us; backend problems: "
        f"{problems or 'none'}",
        "<= 10 us",
    )]
