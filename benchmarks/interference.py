"""Issue 6, item 2 (continued): what the backends' work costs a CPU training loop,
and whether moving it into another process would pay.

Backends run on worker threads of the training process, so their Python code
shares one interpreter lock with the training loop. This measures a loop of
small torch steps (one torch thread, ~1 ms a step, so the second core is free
for the backends) that logs 4 scalars per step:

- with no logging (the floor);
- through unilog with its workers in-process (csv alone, csv + tensorboard,
  all six), and with the workers' linger off (``UNILOG_WORKER_LINGER=0``, how
  unilog worked before it was added);
- with ``process: True`` on every backend but the local record (each SDK in
  its own child process, unilog.process_backend);
- through a prototype of a separate logging process: the loop appends rows to
  a list and every 50 steps pickles the batch into a ``multiprocessing`` queue,
  read by a child process that logs them through unilog with the same six
  backends (the child's own finish is reported apart).

Each variant runs in a fresh interpreter (``python -m benchmarks.interference``),
alternated over repetitions.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import plots

SIX = "csv,tensorboard,mlflow,wandb,swanlab,neptune"
#: (label, backends or "" for none, extra environment, how: thread, process or child)
VARIANTS = (
    ("no logging", "", {}, "thread"),
    ("unilog: csv", "csv", {}, "thread"),
    ("unilog: csv + tensorboard", "csv,tensorboard", {}, "thread"),
    ("unilog: six backends", SIX, {}, "thread"),
    ("unilog: six backends, linger off", SIX, {"UNILOG_WORKER_LINGER": "0"}, "thread"),
    ("unilog: six backends, process=True on the five SDKs", SIX, {}, "process"),
    ("six backends in one child process (prototype)", SIX, {}, "child"),
)
FORWARD_EVERY = 50  # steps per batch sent to the child process


def _work_factory():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    a = torch.randn(160, 160)

    def work() -> None:
        x = a
        for _ in range(8):
            x = torch.tanh(x @ a)
    return work


def _child(queue, backends: str, root: str, done) -> None:
    """The logging process of the prototype: rows in from the queue, out through unilog."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import unilog
    from benchmarks import direct

    names = backends.split(",")
    direct.warm_up([n for n in names if n != "csv"], Path(root) / "warm")
    run = unilog.init(project="bench-interference", dir=root, mode="offline",
                      backends=direct.unilog_backends(names, Path(root)))
    run.flush(timeout=120)
    done.put("ready")
    while (batch := queue.get()) is not None:
        for values in batch:
            run.log(values)
    start = time.perf_counter()
    run.finish(timeout=600)
    done.put(time.perf_counter() - start)


def _specs(names: list[str], root: Path, in_processes: bool) -> list:
    from benchmarks import direct

    specs = direct.unilog_backends(names, root)
    if not in_processes:
        return specs
    return [s if s == "csv" else {**(s if isinstance(s, dict) else {"name": s}), "process": True}
            for s in specs]


def measure(backends: str, steps: int, how: str) -> dict:
    """One variant in this interpreter: loop seconds, median µs of the logging calls."""
    import multiprocessing as mp

    from benchmarks.common import values

    work = _work_factory()
    root = tempfile.mkdtemp(prefix="unilog-bench-interference-")
    run = queue = proc = done = None
    if how == "child":
        ctx = mp.get_context("spawn")
        queue, done = ctx.Queue(), ctx.Queue()
        proc = ctx.Process(target=_child, args=(queue, backends, root, done))
        proc.start()
        assert done.get(timeout=300) == "ready"
    elif backends:
        import unilog
        from benchmarks import direct

        names = backends.split(",")
        direct.warm_up([n for n in names if n != "csv"], Path(root) / "warm")
        run = unilog.init(project="bench-interference", dir=root, mode="offline",
                          backends=_specs(names, Path(root), how == "process"))
        run.flush(timeout=120)
    for _ in range(50):
        work()
    clock, samples, pending = time.perf_counter_ns, [], []
    start = time.perf_counter()
    for i in range(steps):
        work()
        before = clock()
        if run is not None:
            run.log(values(i))
        elif queue is not None:
            pending.append(values(i))
            if len(pending) == FORWARD_EVERY:
                queue.put(pending)
                pending = []
        samples.append(clock() - before)
    loop = time.perf_counter() - start
    finish = 0.0
    if run is not None:
        before = time.perf_counter()
        run.finish(timeout=600)
        finish = time.perf_counter() - before
    elif queue is not None:
        queue.put(pending)
        queue.put(None)
        finish = done.get(timeout=600)
        proc.join(timeout=60)
    return {"loop_s": loop, "log_us": statistics.median(samples) / 1e3, "finish_s": finish}


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target); writes interference.png."""
    steps, repeats = (300, 1) if quick else (3000, 3)
    results: dict[str, list[dict]] = {label: [] for label, *_ in VARIANTS}
    for rep in range(repeats):
        order = VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))
        for label, backends, env, how in order:
            proc = subprocess.run(
                [sys.executable, "-m", "benchmarks.interference", backends or "-", str(steps),
                 how],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=1200,
                cwd=Path(__file__).resolve().parent.parent)
            if proc.returncode != 0:
                raise RuntimeError(f"{label} failed: {proc.stderr[-2000:]}")
            results[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    med = statistics.median
    floor = med(r["loop_s"] for r in results["no logging"])
    rows = []
    for label, measured in results.items():
        loops = [r["loop_s"] for r in measured]
        rows.append((f"CPU loop of {steps:,} torch steps (1 thread), 4 scalars logged per step: "
                     f"{label}",
                     f"{med(loops):.2f} s [{min(loops):.2f}-{max(loops):.2f}], "
                     f"**{med(loops) / floor:.2f}x** the loop without logging; logging call "
                     f"{med(r['log_us'] for r in measured):.1f} us median in the loop; "
                     f"finish {med(r['finish_s'] for r in measured):.2f} s", "-"))
    plots.bar_plot(out / "interference.png",
                   f"CPU training loop, {steps:,} steps: time / time without logging",
                   "x the loop without logging", list(results),
                   [med(r["loop_s"] for r in m) / floor for m in results.values()])
    return rows


if __name__ == "__main__":
    backends_arg, steps_arg, how_arg = sys.argv[1:4]
    result = measure("" if backends_arg == "-" else backends_arg, int(steps_arg), how_arg)
    print(json.dumps(result))
