"""Benchmarks of the TensorBoard backend (issue 3): N steps of 4 scalars, end to end
(until ``finish``/``close`` returns), through unilog with ``backends=["tensorboard"]``
(the CSV local record included, as every run has it) against writing the same
records directly: with tensorboard's ``EventFileWriter`` (one event per step, the
way the backend writes) and with torch's ``SummaryWriter`` (``add_scalar`` per
value, what most users write by hand). Import costs are paid before timing."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.common import fmt, through_unilog, values

KEYS = ("loss", "acc", "lr", "grad_norm")


def through_event_file_writer(steps: int, logdir: Path) -> float:
    """Seconds to write the same rows with tensorboard's EventFileWriter directly."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    Event, Summary, Value = event_pb2.Event, summary_pb2.Summary, summary_pb2.Summary.Value
    start = time.perf_counter()
    writer = EventFileWriter(str(logdir))
    for i in range(steps):
        tagged = [Value(tag=k, simple_value=v) for k, v in values(i).items()]
        writer.add_event(Event(wall_time=time.time(), step=i, summary=Summary(value=tagged)))
    writer.close()
    return time.perf_counter() - start


def through_summary_writer(steps: int, logdir: Path) -> float:
    """Seconds to write the same values with torch's SummaryWriter, one add_scalar each."""
    from torch.utils.tensorboard import SummaryWriter

    start = time.perf_counter()
    writer = SummaryWriter(str(logdir))
    for i in range(steps):
        for key, value in values(i).items():
            writer.add_scalar(key, value, i)
    writer.close()
    return time.perf_counter() - start


def _has_torch() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the TensorBoard benchmarks; returns (figure, measured, target) rows."""
    steps = 1000 if quick else 10000
    repeats = 3 if quick else 5
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-tb-"))
    torch = _has_torch()
    # Pay the imports once, outside every timing (the backend's own included).
    import tensorboard.summary.writer.event_file_writer  # noqa: F401

    from unilog_plugins.tensorboard_backend import _load_sdk

    _load_sdk()

    if torch:
        import torch.utils.tensorboard  # noqa: F401
    ours, calls, direct, summary_writer, dropped = [], [], [], [], 0
    for rep in range(repeats):
        elapsed, per_call, missed = through_unilog("tensorboard", steps, root / "unilog")
        ours.append(elapsed)
        calls.append(per_call)
        dropped += missed
        direct.append(through_event_file_writer(steps, root / f"efw-{rep}"))
        if torch:
            summary_writer.append(through_summary_writer(steps, root / f"torch-{rep}"))
    values = 4 * steps
    med = statistics.median
    rows = [
        (f"TensorBoard: unilog end to end, {steps:,} steps x 4 scalars (until finish returns)",
         f"{fmt(ours)}; {values / med(ours):,.0f} values/s; rows dropped: {dropped}",
         "0 dropped"),
        ("TensorBoard: direct EventFileWriter, same records (one event per step)",
         f"{fmt(direct)}; unilog / direct {med(ours) / med(direct):.2f}x", "-"),
    ]
    if torch:
        ratio = med(ours) / med(summary_writer)
        rows.append(("TensorBoard: torch SummaryWriter, add_scalar per value, same values",
                     f"{fmt(summary_writer)}; unilog / SummaryWriter {ratio:.2f}x",
                     "unilog <= 1.5x"))
    else:
        rows.append(("TensorBoard: torch SummaryWriter", "skipped: torch is not installed",
                     "unilog <= 1.5x"))
    rows.append(("TensorBoard: run.log caller-side cost in that run (median per call)",
                 fmt([c / 1e6 for c in calls], "us", 1e6, 2), "<= 10 us"))
    return rows


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv):
        print(" | ".join(row))
