"""Issue 6, item 1: the caller-side cost of logging to six backends.

``run.log`` of 4 scalars per step with csv, tensorboard, mlflow, wandb, swanlab
and neptune all enabled (offline), against calling the six SDKs directly in
sequence on the caller's thread, one call per step each (per value for
Neptune, whose API has no multi-key call) — what the existing multi-tracker
wrappers do. Both are medians per step on the caller's thread; the direct
loop also gives each SDK's own share. (Lightning's loggers driven through
Lightning's own fan-out are in the ``lightning`` section.)
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import unilog
from benchmarks import direct, plots
from benchmarks.all_backends import usable_backends
from benchmarks.common import timed_log_loop, values


def unilog_per_step_us(backends: list[str], steps: int, root: Path) -> tuple[float, dict]:
    """Median µs per ``run.log`` with every backend open (start-up excluded)."""
    run = unilog.init(project="bench-fanout", dir=root, mode="offline",
                      backends=direct.unilog_backends(backends, root))
    run.flush(timeout=120)  # every backend opened: measure steady logging
    samples = timed_log_loop(run, steps)
    report = run.finish(timeout=600)
    problems = {name: {k: r[k] for k in ("errors", "dropped", "failed") if r.get(k)}
                for name, r in report.items()}
    return statistics.median(samples) / 1e3, {k: v for k, v in problems.items() if v}


def direct_per_step_us(backends: list[str], steps: int, root: Path) -> tuple[float, dict]:
    """Median µs per step calling each SDK in turn, and each SDK's median share."""
    sdks = direct.open_all(backends, root)
    clock, totals = time.perf_counter_ns, []
    shares: dict[str, list[int]] = {sdk.name: [] for sdk in sdks}
    try:
        for i in range(steps):
            step_values = values(i)
            start = clock()
            for sdk in sdks:
                before = clock()
                sdk.step(i, step_values)
                shares[sdk.name].append(clock() - before)
            totals.append(clock() - start)
    finally:
        for sdk in sdks:
            sdk.close()
    return (statistics.median(totals) / 1e3,
            {name: statistics.median(s) / 1e3 for name, s in shares.items()})


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target); writes fanout.png."""
    backends = usable_backends()
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-fanout-"))
    direct.warm_up([b for b in backends if b != "csv"], root)
    repeats = 2 if quick else 5
    unilog_steps = 1000 if quick else 10_000
    direct_steps = 50 if quick else 500  # ~8 ms a step: medians settle long before 10,000
    ours, theirs, problems = [], [], {}
    shares: dict[str, list[float]] = {b: [] for b in backends}
    for rep in range(repeats):
        us, found = unilog_per_step_us(backends, unilog_steps, root / f"unilog-{rep}")
        ours.append(us)
        problems.update(found)
        total, share = direct_per_step_us(backends, direct_steps, root / f"direct-{rep}")
        theirs.append(total)
        for name, value in share.items():
            shares[name].append(value)
    med = statistics.median
    ratio = med(theirs) / med(ours)
    share_text = ", ".join(f"{name} {med(s):,.1f}" for name, s in shares.items())
    plots.bar_plot(out / "fanout.png", "Caller-side cost per step, 4 scalars (log scale)",
                   "µs per step (median, [min-max])",
                   ["unilog, 6 backends", "direct, 6 SDKs", *[f"{n} alone" for n in shares]],
                   [med(ours), med(theirs), *[med(s) for s in shares.values()]],
                   [min(ours), min(theirs), *[min(s) for s in shares.values()]],
                   [max(ours), max(theirs), *[max(s) for s in shares.values()]], logy=True)
    return [
        (f"run.log, 4 scalars, {len(backends)} backends ({', '.join(backends)}), offline: "
         f"median µs per step on the caller's thread ({unilog_steps:,} steps x {repeats})",
         f"{med(ours):.2f} us [{min(ours):.2f}-{max(ours):.2f}]; backend problems: "
         f"{problems or 'none'}", "<= 10 us"),
        (f"the same {len(backends)} SDKs called directly in sequence, one call per step each "
         f"(per value for Neptune): median µs per step ({direct_steps:,} steps x {repeats})",
         f"{med(theirs):,.0f} us [{min(theirs):,.0f}-{max(theirs):,.0f}]; per SDK: "
         f"{share_text} us", "-"),
        ("direct fan-out / unilog, caller-side",
         f"**{ratio:,.0f}x** less on the caller's thread with unilog", ">= 100x"),
    ]
