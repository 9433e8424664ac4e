"""Issue 6, item 2: end to end with all six backends, how much their work overlaps,
and whether a process per backend would pay.

- **unilog, six backends**: ``init``, 10,000 steps x 4 scalars, until ``finish``
  returns (offline), against the **sum of each SDK driven optimally on its own**
  (batched where its API allows: ``csv.writerows``, MLflow ``log_batch`` of
  1,000 metrics, Neptune ``extend`` per key; wandb, SwanLab and TensorBoard
  have no batch call, so one call per step is their optimum), each from opening
  its run to closing it.
- **per backend**: unilog with that backend alone (plus the CSV record every
  run has) against its SDK called once per step. MLflow per step (~5 ms) and
  Neptune per value are timed on fewer steps and scaled to the same count.
- **overlap**: the six backends' own times through unilog, summed, against
  the six at once; and the process's CPU time over the wall time.
- **threads or processes**: the same six single-backend runs in six processes
  started together (imports and SDK warm-up done before a shared start), and
  the caller-side price a process per backend would add: pickling each row into
  a ``multiprocessing`` queue per backend.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import statistics
import tempfile
import time
from pathlib import Path

import unilog
from benchmarks import direct, plots
from benchmarks.all_backends import usable_backends
from benchmarks.common import finish_complete, fmt, values

#: Backends whose per-step direct cost is timed on fewer steps, then scaled.
SLOW_PER_STEP = {"mlflow": 20, "neptune": 5}  # divide the step count by this


def rows_for(steps: int) -> direct.Rows:
    """The rows every variant logs: step i, the 4 scalars of ``values(i)``."""
    return [(i, values(i)) for i in range(steps)]


def through_unilog(backends: list[str], rows: direct.Rows, root: Path) -> dict:
    """Seconds from ``init`` until ``finish`` returns, the process CPU seconds in
    that time, and the per-backend report (an error fails the benchmark)."""
    cpu, start = os.times(), time.perf_counter()
    run = unilog.init(project="bench-e2e", dir=root, mode="offline",
                      backends=direct.unilog_backends(backends, root))
    for _, step_values in rows:
        run.log(step_values)
    finish_complete(run, 900)
    wall = time.perf_counter() - start
    after = os.times()
    return {"wall": wall, "cpu": (after.user - cpu.user) + (after.system - cpu.system)}


def direct_per_step(name: str, rows: direct.Rows, root: Path) -> float:
    """Seconds for ``name``'s SDK called once per step, scaled to ``len(rows)``."""
    divide = SLOW_PER_STEP.get(name, 1)
    return direct.time_direct(name, rows[: len(rows) // divide], root, batched=False) * divide


def _process_main(name: str, steps: int, root: str, ready, go, results) -> None:
    """One backend's unilog run in its own process, timed from the shared start."""
    rows = rows_for(steps)
    direct.warm_up([name] if name != "csv" else [], Path(root) / "warm")
    unilog.init(project="warm", dir=root, mode="offline",
                backends=direct.unilog_backends([name], Path(root) / "warm")).finish()
    spec = direct.unilog_backends([name], Path(root))
    ready.wait()
    go.wait()
    run = unilog.init(project="bench-proc", dir=root, backends=spec, mode="offline")
    for _, step_values in rows:
        run.log(step_values)
    run.finish(timeout=900)
    results.put((name, time.time()))


def in_processes(backends: list[str], steps: int, root: Path) -> float:
    """Wall seconds for the six single-backend runs in six processes started together."""
    ctx = mp.get_context("spawn")
    ready, go, results = ctx.Barrier(len(backends) + 1), ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_process_main, args=(name, steps, str(root / name), ready, go,
                                                      results)) for name in backends]
    for proc in procs:
        proc.start()
    ready.wait(timeout=600)  # every child has imported and warmed up
    start = time.time()
    go.set()
    ends = [results.get(timeout=900)[1] for _ in procs]
    for proc in procs:
        proc.join(timeout=60)
    return max(ends) - start


def pickle_cost_us(backends: list[str], steps: int, batch: int) -> float:
    """Caller-side µs per step to ship each row to one ``multiprocessing`` queue per
    backend (``batch`` rows per put), read by a consumer process each."""
    ctx = mp.get_context("spawn")
    queues = [ctx.Queue() for _ in backends]
    consumers = [ctx.Process(target=_drain, args=(q,)) for q in queues]
    for proc in consumers:
        proc.start()
    pending: list = []
    start = time.perf_counter()
    for i in range(steps):
        pending.append((i, values(i)))
        if len(pending) == batch:
            for queue in queues:
                queue.put(pending)
            pending = []
    elapsed = time.perf_counter() - start
    for queue in queues:
        queue.put(None)
    for proc in consumers:
        proc.join(timeout=60)
    return elapsed / steps * 1e6


def _drain(queue) -> None:
    while queue.get() is not None:
        pass


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target); writes end_to_end.png."""
    backends = usable_backends()
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-e2e-"))
    direct.warm_up([b for b in backends if b != "csv"], root)
    steps = 500 if quick else 10_000
    repeats = 1 if quick else 3
    rows = rows_for(steps)
    med = statistics.median
    together, cpu, procs = [], [], []
    alone = {b: [] for b in backends}
    optimal = {b: [] for b in backends}
    per_step = {b: [] for b in backends}
    for rep in range(repeats):
        base = root / f"rep{rep}"
        result = through_unilog(backends, rows, base / "all")
        together.append(result["wall"])
        cpu.append(result["cpu"])
        for name in backends:
            alone[name].append(through_unilog([name], rows, base / f"alone-{name}")["wall"])
            optimal[name].append(direct.time_direct(name, rows, base / f"opt-{name}", True))
            per_step[name].append(direct_per_step(name, rows, base / f"step-{name}"))
        procs.append(in_processes(backends, steps, base / "procs"))
    sum_optimal = sum(med(v) for v in optimal.values())
    sum_alone = sum(med(v) for v in alone.values())
    overhead = med(together) / sum_optimal - 1
    faster = [n for n in backends if med(alone[n]) < med(per_step[n])]
    put_row = pickle_cost_us(backends, 2000 if quick else 20_000, 1)
    put_batch = pickle_cost_us(backends, 2000 if quick else 20_000, 100)

    plots.bar_plot(out / "end_to_end.png",
                   f"End to end, {steps:,} steps x 4 scalars (seconds, median)", "seconds",
                   ["unilog, 6 at once", "sum of SDKs, optimal", "sum through unilog alone",
                    "6 processes", *[f"{n}: unilog / per step" for n in backends]],
                   [med(together), sum_optimal, sum_alone, med(procs),
                    *[med(alone[n]) / med(per_step[n]) for n in backends]])
    per_backend = "; ".join(
        f"{n}: unilog {med(alone[n]):.2f} s, per step {med(per_step[n]):.2f} s "
        f"({med(alone[n]) / med(per_step[n]):.2f}x), optimal {med(optimal[n]):.2f} s"
        for n in backends)
    return [
        (f"unilog, {len(backends)} backends at once, init until finish returns, "
         f"{steps:,} steps x 4 scalars", fmt(together), "-"),
        ("sum of each SDK driven optimally on its own (batched where its API allows), "
         "open until close", f"{sum_optimal:.3f} s; unilog's overhead on top: "
         f"**{overhead:+.0%}**", "<= +10%"),
        ("each backend through unilog alone (with the CSV record) against its SDK called "
         "once per step (MLflow and Neptune per-step times scaled from 1/20 and 1/5 of the "
         "steps)", per_backend,
         f"every backend faster through unilog: {len(faster)}/{len(backends)} "
         f"({', '.join(sorted(set(backends) - set(faster))) or 'all'} not)"),
        ("overlap: the six runs through unilog alone, summed, against the six at once",
         f"{sum_alone:.2f} s summed vs {med(together):.2f} s at once: "
         f"{1 - med(together) / sum_alone:.0%} of the work overlapped; process CPU "
         f"{med(cpu):.2f} s in {med(together):.2f} s wall "
         f"({med(cpu) / med(together):.2f} cores busy)", "-"),
        ("threads or processes: the same six single-backend runs in six processes started "
         "together (wall, imports and warm-up excluded)",
         f"{fmt(procs)}; / six threads in one process {med(procs) / med(together):.2f}x", "-"),
        ("caller-side price of a process per backend: pickling each row into one "
         "multiprocessing queue per backend (6 queues)",
         f"{put_row:.1f} us per step row by row ({put_row / 10:.1f}x the 10 us budget); "
         f"{put_batch:.2f} us per step in batches of 100 rows", "<= 10 us"),
    ]
