"""Scale (issue 6, item 5): the cost of a ``log`` stays flat however many distinct
keys a run has and however long it runs, for the CSV, TensorBoard and MLflow
backends.

- **Distinct keys**: every step logs 4 scalars, taken in turn from N keys
  (step i logs keys 4i..4i+3 modulo N), so a run of S steps has N distinct
  keys, each logged 4S/N times. The row stays 4 values wide, so what changes
  is only how many keys unilog and the backend know (unilog's key maps, the
  CSV's escaped keys, TensorBoard's tags, MLflow's latest-metric rows): a cost
  per ``log`` that stays flat here is a cost per key per ``log`` that stays flat.
  MLflow's own ``log_batch`` on the same metrics, without unilog, runs beside
  it at 10 and 10,000 keys: its SQLite store updates one latest-metric row per
  distinct key in each request, so its cost per value grows with the keys, and
  the baseline shows how much of that is MLflow's.
- **Steps**: runs of 1,000 to 1,000,000 steps of the 4 scalars of
  :func:`benchmarks.common.values`.

Each run logs in a tight loop on the caller's thread, the backend already open
(the clock starts at the first ``log``). Figures: the caller-side time of one
``run.log`` (about 10,000 calls timed per run, evenly spread; the values are
built outside the timing, the garbage collector paused as in
:func:`benchmarks.common.through_unilog`), its median over the first and over the
last tenth of those calls, and the time per value from the first ``log`` until
``finish`` returns. TensorBoard and MLflow get a queue as long as the run
(``queue_size``): a tight loop outruns them, and with the default bound
(100,000 records) what does not fit would be dropped (and counted) instead of
timed. Every run must end with nothing dropped and no error.

Memory: RSS over the longest CSV run (the local record's default queue
applies back-pressure, so it is bounded), beside
:func:`benchmarks.core.stalled_memory` (a backend stalled for the whole run,
measured first). RSS growth is read in a process whose heap earlier runs may
have grown and freed, so it is a lower bound; the shape (flat once the queue is
full) is the point.
"""

from __future__ import annotations

import gc
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import unilog
from benchmarks.common import fmt, values
from benchmarks.core import _rss_mb, stalled_memory

BACKENDS = ("csv", "tensorboard", "mlflow")
KEY_COUNTS = (10, 100, 1_000, 10_000)
#: Timed calls per run (evenly spread) and the share of them in each end window.
SAMPLES, WINDOW = 10_000, 0.1


def _backends(backend: str, steps: int) -> dict:
    if backend == "csv":
        return {"csv": {}}
    return {backend: {"queue_size": steps + 1_000}}  # nothing dropped: see the docstring


def timed_run(backend: str, steps: int, step_values: Callable[[int], dict], root: Path,
              rss_points: int = 0) -> dict:
    """One run of ``steps`` logs through ``backend`` (beside the CSV record).

    Returns the sampled per-call times (µs, in call order), seconds from the first
    ``log`` until ``finish`` returns, values logged, and RSS growth (MB) at
    ``rss_points`` evenly spread steps (read between calls, outside the timing).
    """
    run = unilog.init(project="bench-scale", dir=root, mode="offline",
                      backends=_backends(backend, steps))
    if not run.flush(timeout=120):  # the backend is open before the clock starts
        raise RuntimeError(f"the {backend} backend did not open")
    every = max(1, steps // SAMPLES)
    rss_every = steps // rss_points if rss_points else steps + 1
    samples, rss, rss_start = [], [], _rss_mb()
    clock, log, count = time.perf_counter_ns, run.log, 0
    gc.disable()
    start = time.perf_counter()
    try:
        for i in range(steps):
            data = step_values(i)
            count += len(data)
            if i % every:
                log(data)
                continue
            before = clock()
            log(data)
            samples.append(clock() - before)
            if i and i % rss_every == 0:
                rss.append((i, _rss_mb() - rss_start))
    finally:
        gc.enable()
    report = run.finish(timeout=600)
    elapsed = time.perf_counter() - start
    for name, counts in report.items():
        if counts["errors"] or counts["failed"] or counts["dropped"] or counts["timed_out"]:
            raise RuntimeError(f"the {name} backend lost records: {counts}")
    if rss_points:
        rss.append((steps, _rss_mb() - rss_start))
    return {"us": [s / 1e3 for s in samples], "seconds": elapsed, "values": count, "rss": rss}


def _windows(us: list[float]) -> tuple[float, float, float]:
    """(median of all, of the first tenth, of the last tenth) of a run's sampled calls."""
    n = max(1, int(len(us) * WINDOW))
    return statistics.median(us), statistics.median(us[:n]), statistics.median(us[-n:])


def _key_values(n_keys: int) -> Callable[[int], dict]:
    names = [f"layer_{k // 4:04d}/{('loss', 'acc', 'lr', 'grad_norm')[k % 4]}"
             for k in range(n_keys)]

    def step_values(i: int) -> dict[str, float]:
        first = 4 * i
        return {names[(first + j) % n_keys]: 1.0 / (i + j + 1) for j in range(4)}

    return step_values


class _Store:
    """A fresh MLflow SQLite store per run without paying its schema each time:
    the first run's empty store is copied (the backend finds ``<dir>/mlflow/mlflow.db``)."""

    def __init__(self, base: Path):
        self.base, self.empty, self.n = base, None, 0

    def folder(self, mlflow: bool) -> Path:
        """A new folder for one run; with ``mlflow``, holding ``mlflow/mlflow.db``, empty."""
        self.n += 1
        root = self.base / f"run-{self.n}"
        if mlflow:
            if self.empty is None:
                import mlflow  # noqa: F401  (its import sets its loggers' levels: first)

                _quiet_mlflow()
                self.empty = self.base / "empty" / "mlflow.db"
                run = unilog.init(project="schema", dir=self.base / "empty-run",
                                  backends=["mlflow"], mode="offline")
                run.finish(timeout=120)
                self.empty.parent.mkdir(parents=True)
                shutil.copyfile(self.base / "empty-run" / "mlflow" / "mlflow.db", self.empty)
            (root / "mlflow").mkdir(parents=True)
            shutil.copyfile(self.empty, root / "mlflow" / "mlflow.db")
        return root


def _quiet_mlflow() -> None:
    for name in ("mlflow", "alembic"):  # INFO lines on every store opened: noise
        logging.getLogger(name).setLevel(logging.WARNING)


def mlflow_direct(steps: int, step_values: Callable[[int], dict], root: Path) -> dict:
    """The same metrics with MLflow's own ``log_batch``, 1,000 a request (the most
    it takes), no unilog: seconds from the first request until ``set_terminated``
    returns. What MLflow's store costs by itself, for the same keys."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient("sqlite:///" + (root / "mlflow" / "mlflow.db").as_posix())
    experiment = client.create_experiment("bench", artifact_location=str(root / "artifacts"))
    run_id = client.create_run(experiment).info.run_id
    stamp = int(time.time() * 1000)
    metrics = [Metric(key, value, stamp + i, i) for i in range(steps)
               for key, value in step_values(i).items()]
    start = time.perf_counter()
    for first in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[first:first + 1000], synchronous=True)
    client.set_terminated(run_id)
    return {"us": [], "seconds": time.perf_counter() - start, "values": len(metrics), "rss": []}


#: A variant's runner: (its steps, the values of a step, a folder) -> a run's results.
Runner = Callable[[int, Callable[[int], dict], Path], dict]
DIRECT = "mlflow's own log_batch"


def _runner(variant: str, rss_points: int) -> Runner:
    if variant == DIRECT:
        return mlflow_direct
    return lambda steps, step_values, root: timed_run(variant, steps, step_values, root,
                                                      rss_points)


def sweep(plan: dict[str, tuple[int, ...]], make_values: Callable[[int], Callable],
          steps_of: Callable[[str, int], int], repeats_of: Callable[[str, int], int],
          store: _Store, rss_points: int = 0) -> dict:
    """Every (variant, size) ``repeats_of(variant, size)`` times; the variants in turn
    within each repetition, their sizes in alternating order from one repetition
    to the next. A variant is a backend, or ``DIRECT``. Returns
    {variant: {size: [run results]}}."""
    found = {v: {s: [] for s in sizes} for v, sizes in plan.items()}
    most = max(repeats_of(v, s) for v, sizes in plan.items() for s in sizes)
    for rep in range(most):
        for variant, sizes in plan.items():
            for size in (sizes if rep % 2 == 0 else sizes[::-1]):
                if rep >= repeats_of(variant, size):
                    continue
                root = store.folder(mlflow=variant in ("mlflow", DIRECT))
                runner = _runner(variant, rss_points)
                found[variant][size].append(runner(steps_of(variant, size),
                                                   make_values(size), root))
                shutil.rmtree(root, ignore_errors=True)
    return found


def _summary(runs: list[dict]) -> dict:
    med = [_windows(r["us"]) for r in runs if r["us"]]
    return {"call": [m[0] for m in med], "first": [m[1] for m in med],
            "last": [m[2] for m in med],
            "per_value": [r["seconds"] / r["values"] for r in runs]}


def _rows(what: str, found: dict, label: Callable[[int], str], note: str) -> list[tuple]:
    rows, med = [], statistics.median
    for variant, sizes in found.items():
        stats = {size: _summary(runs) for size, runs in sizes.items() if runs}
        small, large = min(stats), max(stats)
        if variant != DIRECT:
            calls = {size: med(s["call"]) for size, s in stats.items()}
            per_size = "; ".join(
                f"{label(size)}: {fmt(s['call'], 'us', 1, 2)} (last / first tenth "
                f"{med(s['last']) / med(s['first']):.2f}x)" for size, s in stats.items())
            rows.append((f"{variant}, {what}: run.log caller-side median per call{note}",
                         f"{per_size}; largest / smallest {calls[large] / calls[small]:.2f}x",
                         "flat (~1x)"))
        ends = {size: med(s["per_value"]) for size, s in stats.items()}
        per_value = "; ".join(f"{label(size)}: {fmt(s['per_value'], 'us', 1e6, 2)}"
                              for size, s in stats.items())
        who = ("unilog end to end per value, first log until finish returns"
               if variant != DIRECT else "the same metrics without unilog, 1,000 a request: "
               "per value, first request until set_terminated returns")
        rows.append((f"{variant}, {what}: {who}",
                     f"{per_value}; largest / smallest {ends[large] / ends[small]:.2f}x",
                     "flat (~1x)" if variant != DIRECT else "-"))
    return rows


def _plot(out: Path, name: str, title: str, xlabel: str, found: dict, key: str,
          scale: float, ylabel: str) -> None:
    from benchmarks.plots import line_plot

    series = {}
    for variant, sizes in found.items():
        points = [(size, statistics.median(_summary(runs)[key]) * scale)
                  for size, runs in sizes.items() if runs and _summary(runs)[key]]
        if points:
            series[variant] = ([x for x, _ in points], [y for _, y in points])
    line_plot(out / f"{name}.png", title, xlabel, ylabel, series, logx=True, logy=True)


def memory_rows(csv_run: dict, stalled: dict | None, out: Path) -> list[tuple]:
    """RSS over the longest CSV run, beside :func:`benchmarks.core.stalled_memory`'s
    run with a backend stalled throughout (None: not measured, as in --quick; the
    core section measures it too)."""
    from benchmarks.plots import line_plot

    curve = csv_run["rss"]
    series = {"csv (healthy)": ([s for s, _ in curve], [m for _, m in curve])}
    marks = [curve[len(curve) // 10], curve[len(curve) // 2], curve[-1]]
    measured = ", ".join(f"+{mb:.1f} MB at {step:,}" for step, mb in marks)
    if stalled:
        points = sorted(stalled["rss_growth_mb_at_calls"].items())
        series["csv + a backend stalled throughout"] = ([s for s, _ in points],
                                                        [m for _, m in points])
        measured += ("; with a backend stalled throughout (benchmarks.core.stalled_memory): "
                     + ", ".join(f"+{mb:.1f} MB at {step:,}" for step, mb in points)
                     + f" ({stalled['stalled_dropped']:,} records dropped by the stalled "
                     f"backend, CSV complete: {stalled['csv_complete']})")
    line_plot(out / "scale_rss.png", "RSS growth over a run (4 scalars a step)",
              "log calls", "MB over the run's start", series)
    return [(f"memory over a {curve[-1][0]:,}-step CSV run (RSS growth, sampled "
             f"{len(curve)} times; plot scale_rss)", measured, "bounded")]


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Run the scale benchmarks; returns (figure, measured, target) rows."""
    import importlib.util

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    base = Path(tempfile.mkdtemp(prefix="unilog-bench-scale-"))
    store = _Store(base)
    present = [b for b in BACKENDS if b == "csv" or importlib.util.find_spec(b)]
    rows = [(f"{b}: scale", f"skipped: {b} is not installed", "flat")
            for b in BACKENDS if b not in present]
    if quick:  # CI's smoke pass: every path once, MLflow (the slow one) with small runs
        step_sizes = {"csv": (1_000, 10_000), "tensorboard": (1_000, 10_000),
                      "mlflow": (1_000,)}
        key_steps = {"csv": 1_000, "tensorboard": 1_000, "mlflow": 250}
    else:
        step_sizes = {"csv": (1_000, 10_000, 100_000, 1_000_000),
                      "tensorboard": (1_000, 10_000, 100_000, 1_000_000),
                      "mlflow": (1_000, 10_000, 100_000)}
        key_steps = {"csv": 20_000, "tensorboard": 20_000, "mlflow": 5_000}
    key_steps[DIRECT] = key_steps["mlflow"]
    # First, while this process's heap has not yet been grown (and freed) by the
    # long runs below: RSS growth is read against it.
    stalled = None if quick else stalled_memory(1_000_000, base)

    key_plan = {b: KEY_COUNTS for b in present}
    if "mlflow" in present:  # is a cost that grows with the keys MLflow's own?
        key_plan[DIRECT] = (KEY_COUNTS[0], KEY_COUNTS[-1])
    # MLflow's runs take ~20x longer than the others': 2 repetitions, not 3.
    keys = sweep(key_plan, _key_values, lambda v, n: key_steps[v],
                 lambda v, n: 1 if quick else 2 if v in ("mlflow", DIRECT) else 3, store)
    rows += _rows("4 keys a step from N distinct keys", keys, lambda n: f"{n:,} keys",
                  f" ({key_steps['csv']:,} steps; MLflow {key_steps['mlflow']:,})")
    _plot(out, "scale_keys", "run.log per call vs distinct keys (4 a step)", "distinct keys",
          keys, "call", 1, "us per log (median)")
    _plot(out, "scale_keys_end_to_end", "End to end per value vs distinct keys (4 a step)",
          "distinct keys", keys, "per_value", 1e6, "us per value until finish")

    # The longest runs once each (they take the most time); the others 3 times.
    steps = sweep({b: step_sizes[b] for b in present}, lambda _: values, lambda v, s: s,
                  lambda v, s: 1 if quick or s >= 100_000 else 3, store, rss_points=50)
    rows += _rows("4 scalars a step", steps, lambda s: f"{s:,} steps",
                  " (runs of 100,000+ steps: 1 run each)" if not quick else "")
    _plot(out, "scale_steps", "run.log per call vs run length (4 scalars a step)",
          "steps in the run", steps, "call", 1, "us per log (median)")
    _plot(out, "scale_steps_end_to_end", "End to end per value vs run length",
          "steps in the run", steps, "per_value", 1e6, "us per value until finish")

    longest = steps["csv"][max(step_sizes["csv"])][0]
    rows += memory_rows(longest, stalled, out)
    shutil.rmtree(base, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv, Path(tempfile.mkdtemp(prefix="unilog-scale-"))):
        print(" | ".join(row))
