"""Benchmarks of the core (issue 2): import cost, caller-side cost, CSV throughput,
memory with a stalled backend. Every figure is printed beside the direct
equivalent measured in the same run, as a ratio, with medians and min/max."""

from __future__ import annotations

import csv
import gc
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import unilog
from benchmarks import plugin

HEAVY = ("torch", "numpy", "wandb", "mlflow", "swanlab", "neptune", "tensorboard",
         "lightning", "omegaconf")


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def import_cost(repeats: int) -> dict:
    """Wall time of ``python -c 'import unilog'`` against ``python -c 'pass'``."""
    probe = ("import sys, unilog; heavy = [m for m in %r if m in sys.modules]; "
             "print(','.join(heavy))" % (HEAVY,))
    bare, with_unilog, leaked = [], [], set()
    for _ in range(repeats):
        for code, into in (("pass", bare), (probe, with_unilog)):
            start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True).stdout.strip()
            into.append(time.perf_counter() - start)
            leaked.update(filter(None, out.split(",")))
    return {"bare_s": _stats(bare), "unilog_s": _stats(with_unilog),
            "added_ms": (statistics.median(with_unilog) - statistics.median(bare)) * 1e3,
            "heavy_modules_imported": sorted(leaked)}


def caller_cost(calls: int, repeats: int, root: Path) -> dict:
    """Per-call time of ``run.log`` (4 scalars) with csv + 5 do-nothing backends,
    against writing the same 4 values with ``csv.writer`` directly."""
    per_run = []
    for rep in range(repeats):
        run = unilog.init(project="bench", dir=root, backends=_six_backends(), on_error="warn")
        samples = []
        clock = time.perf_counter_ns
        gc.disable()
        for i in range(calls):
            values = {"loss": 1.0 / (i + 1), "acc": 0.5, "lr": 1e-3, "grad_norm": 2.0}
            start = clock()
            run.log(values)
            samples.append(clock() - start)
        gc.enable()
        run.finish()
        per_run.append(statistics.median(samples) / 1e3)
    direct = []
    for rep in range(repeats):
        buffer = io.StringIO()
        write = csv.writer(buffer).writerow
        samples = []
        clock = time.perf_counter_ns
        for i in range(calls):
            values = {"loss": 1.0 / (i + 1), "acc": 0.5, "lr": 1e-3, "grad_norm": 2.0}
            start = clock()
            for key, value in values.items():
                write((i, 0.0, key, value))
            samples.append(clock() - start)
        direct.append(statistics.median(samples) / 1e3)
    return {"unilog_us": _stats(per_run), "direct_csv_us": _stats(direct),
            "ratio": statistics.median(per_run) / statistics.median(direct)}


def _six_backends() -> dict:
    # Five do-nothing backends beside the CSV record; each needs its own name,
    # so the same class is registered under five names.
    names = _nothing_names()
    return {"csv": {}, **{n: {} for n in names}}


def _nothing_names() -> list[str]:
    from unilog import plugins

    names = [f"bench_nothing_{i}" for i in range(5)]
    if names[0] not in plugins.available_backends():
        classes = [type(f"Nothing{i}", (plugin.Nothing,), {"name": n})
                   for i, n in enumerate(names)]

        class Extra:
            @unilog.hookimpl
            def unilog_register_backends(self, register):
                for cls in classes:
                    register(cls)

        plugins.register_plugin(Extra(), name="unilog-benchmarks-nothing")
    return names


def csv_throughput(steps: int, repeats: int, root: Path) -> dict:
    """Scalar values per second through unilog's CSV record until ``finish`` returns,
    against a direct ``csv.writer`` to a file with the same lines."""
    ours, direct = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        run = unilog.init(project="bench", dir=root)
        for i in range(steps):
            run.log({"loss": 1.0 / (i + 1), "acc": 0.5, "lr": 1e-3, "grad_norm": 2.0})
        run.finish()
        ours.append(4 * steps / (time.perf_counter() - start))
        start = time.perf_counter()
        with open(root / "direct.csv", "w", newline="") as f:
            write = csv.writer(f).writerow
            for i in range(steps):
                now = round(time.time(), 3)
                for key, value in (("loss", 1.0 / (i + 1)), ("acc", 0.5), ("lr", 1e-3),
                                   ("grad_norm", 2.0)):
                    write((i, now, key, value))
        direct.append(4 * steps / (time.perf_counter() - start))
    return {"unilog_values_per_s": _stats(ours), "direct_values_per_s": _stats(direct),
            "ratio": statistics.median(ours) / statistics.median(direct)}


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def stalled_memory(calls: int, root: Path) -> dict:
    """RSS while ``calls`` log calls go to csv + a backend stalled for the whole run."""
    plugin.install()
    plugin.STALL.clear()
    run = unilog.init(project="bench", dir=root, backends=["csv", "bench_stalled"])
    checkpoints, start_rss = {}, _rss_mb()
    marks = {calls // 10, calls // 2, calls}
    for i in range(1, calls + 1):
        run.log({"loss": 1.0 / i, "acc": 0.5, "lr": 1e-3, "grad_norm": 2.0})
        if i in marks:
            checkpoints[i] = round(_rss_mb() - start_rss, 1)
    report = run.finish(timeout=2)
    plugin.STALL.set()
    lines = sum(1 for _ in open(run.dir / "metrics.csv")) - 1
    return {"rss_growth_mb_at_calls": checkpoints, "stalled_dropped": report["bench_stalled"]["dropped"],
            "csv_lines": lines, "csv_complete": lines == 4 * calls}


def dispatch_cost(calls: int, repeats: int) -> dict:
    """Per row, what handing it to a run's members costs: pluggy's hook call (what
    unilog did before issue 11), the implementations resolved once through pluggy
    (what it does now), and a plain loop over the same bound methods."""
    from types import MappingProxyType

    from unilog.backend import Row
    from unilog._dispatch import Dispatcher
    from unilog.hookspecs import hookimpl

    class Member:
        busy = None

        def __init__(self, name: str):
            self.name, self.names, self.count = name, [name], 0

        @hookimpl
        def unilog_dispatch_row(self, row, local_only):
            self.count += 1

    members = [Member("a"), Member("b")]  # the local record and the logging process
    dispatcher = Dispatcher(members)
    row = Row(0, MappingProxyType({"x": 1.0}), 0.0)
    hook, resolved = dispatcher.hook.unilog_dispatch_row, dispatcher.dispatch_row
    plain = [m.unilog_dispatch_row for m in members]

    def through_hook():
        for _ in range(calls):
            hook(row=row, local_only=False)

    def through_resolved():
        for _ in range(calls):
            resolved(row, False)

    def through_loop():
        for _ in range(calls):
            for function in plain:
                function(row, False)

    times: dict[str, list[float]] = {"hook": [], "resolved": [], "loop": []}
    for _ in range(repeats):
        for name, fn in (("hook", through_hook), ("resolved", through_resolved),
                         ("loop", through_loop)):
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) / calls * 1e6)
    return {name: _stats(values) for name, values in times.items()}


def run_all(quick: bool) -> list[tuple[str, str, str]]:
    """Run every core benchmark; returns (figure, measured, target) rows."""
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-"))
    repeats = 2 if quick else 5
    rows = []
    imp = import_cost(3 if quick else 15)
    rows.append(("import unilog: added wall time (median)",
                 f"{imp['added_ms']:.1f} ms (bare {imp['bare_s'][0]*1e3:.0f} ms, with unilog "
                 f"{imp['unilog_s'][0]*1e3:.0f} ms [{imp['unilog_s'][1]*1e3:.0f}-"
                 f"{imp['unilog_s'][2]*1e3:.0f}]); heavy modules: "
                 f"{imp['heavy_modules_imported'] or 'none'}", "<= 50 ms, none"))
    cost = caller_cost(2000 if quick else 20000, repeats, root)
    rows.append(("run.log, 4 scalars, csv + 5 no-op backends (median per call)",
                 f"{cost['unilog_us'][0]:.2f} us [{cost['unilog_us'][1]:.2f}-"
                 f"{cost['unilog_us'][2]:.2f}]; direct csv.writer {cost['direct_csv_us'][0]:.2f} "
                 f"us; ratio {cost['ratio']:.2f}x", "<= 10 us"))
    disp = dispatch_cost(20000 if quick else 500000, repeats)
    rows.append(("handing a row to the run's 2 members (median per row)",
                 f"pluggy hook call {disp['hook'][0]:.2f} us; resolved once through pluggy "
                 f"{disp['resolved'][0]:.2f} us; plain loop {disp['loop'][0]:.2f} us; "
                 f"ratio resolved/loop {disp['resolved'][0] / disp['loop'][0]:.2f}x",
                 "close to the plain loop"))
    thr = csv_throughput(5000 if quick else 100000, repeats, root)
    rows.append(("CSV record end to end (values/s until finish returns)",
                 f"{thr['unilog_values_per_s'][0]:,.0f} [{thr['unilog_values_per_s'][1]:,.0f}-"
                 f"{thr['unilog_values_per_s'][2]:,.0f}]; direct csv.writer "
                 f"{thr['direct_values_per_s'][0]:,.0f}; ratio {thr['ratio']:.2f}x",
                 ">= 100,000 values/s"))
    mem = stalled_memory(20000 if quick else 1_000_000, root)
    rows.append(("memory with one backend stalled for the whole run (RSS growth)",
                 f"{mem['rss_growth_mb_at_calls']} MB at N calls; stalled backend dropped "
                 f"{mem['stalled_dropped']:,}; CSV complete: {mem['csv_complete']}",
                 "bounded, CSV complete"))
    return rows
