"""What the backends' work costs a training loop on the CPU (issues 6 and 11).

A backend's SDK is Python code; on a thread of the training process it takes
the interpreter lock from the training thread. This measures a loop of small
torch steps (one torch thread, so the second core is free for logging) that
logs 4 scalars per step, at three step lengths (about 0.5, 1.2 and 5 ms), each
variant in a fresh interpreter, alternated over repetitions:

- with no logging (the floor);
- through unilog with its default, ``isolation="process"``: the local record
  (csv) on a thread, every SDK in the one logging process;
- through unilog with ``isolation="thread"``: every SDK on a worker thread of
  the training process (unilog before issue 11);

for csv alone, csv + tensorboard, csv + wandb, csv + mlflow, and all six.
Per variant: the loop's time against the floor, the caller's ``run.log``
median and p99, ``finish``, and the logging process's peak memory. "Steady"
starts the loop once every backend has opened (``run.flush`` after ``init``);
"cold" starts it right after ``init`` returns, so the SDKs import and open
while the loop runs. Files are warmed once beforehand (one throwaway run with
every SDK, in a process of its own), so no variant pays for a cold disk.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import plots

SIX = "csv,tensorboard,mlflow,wandb,swanlab,neptune"
#: (label, backends or "" for none, isolation)
VARIANTS = (
    ("no logging", "", ""),
    ("csv", "csv", "process"),
    ("csv + tensorboard, logging process", "csv,tensorboard", "process"),
    ("csv + tensorboard, threads", "csv,tensorboard", "thread"),
    ("csv + wandb, logging process", "csv,wandb", "process"),
    ("csv + wandb, threads", "csv,wandb", "thread"),
    ("csv + mlflow, logging process", "csv,mlflow", "process"),
    ("csv + mlflow, threads", "csv,mlflow", "thread"),
    ("six backends, logging process", SIX, "process"),
    ("six backends, threads", SIX, "thread"),
)
QUICK_VARIANTS = ("no logging", "csv", "csv + wandb, logging process",
                  "six backends, logging process", "six backends, threads")
#: Step lengths: (label, matrix size, chained matmuls, steps in a full run)
STEPS = (("0.5 ms", 110, 6, 8000), ("1.2 ms", 160, 8, 3000), ("5 ms", 260, 12, 800))


def _work_factory(size: int, depth: int):
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    a = torch.randn(size, size) / size ** 0.5

    def work() -> None:
        x = a
        for _ in range(depth):
            x = torch.tanh(x @ a)
    return work


def _specs(names: list[str], root: Path) -> list:
    from benchmarks import direct

    return direct.unilog_backends(names, root)


def _peak_rss_mb(pid: int | None) -> float | None:
    """The peak resident memory of process ``pid`` (VmHWM), in MB."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def warm_files(root: Path) -> None:
    """One throwaway run with every SDK, in its own process: later variants find
    the SDKs' files in the page cache."""
    code = ("import unilog, sys; r = unilog.init(project='warm', dir=sys.argv[1], "
            "mode='offline', backends=sys.argv[2].split(',')); r.log({'x': 1.0}); r.finish()")
    subprocess.run([sys.executable, "-c", code, str(root), SIX], capture_output=True,
                   timeout=600, cwd=Path(__file__).resolve().parent.parent)


def measure(backends: str, steps: int, isolation: str, step: str, cold: bool) -> dict:
    """One variant in this interpreter: loop seconds, the logging calls' median and
    p99 in µs, finish seconds, the logging process's peak memory."""
    from benchmarks.common import finish_complete, values

    _, size, depth, _ = next(s for s in STEPS if s[0] == step)
    work = _work_factory(size, depth)
    root = tempfile.mkdtemp(prefix="unilog-bench-interference-")
    for _ in range(50):
        work()
    run = None
    init_s = 0.0
    if backends:
        import unilog

        specs = _specs(backends.split(","), Path(root))  # creates MLflow's store: not timed
        before = time.perf_counter()
        run = unilog.init(project="bench-interference", dir=root, mode="offline",
                          backends=specs, isolation=isolation)
        init_s = time.perf_counter() - before
        if not cold:
            run.flush(timeout=300)
    clock, samples = time.perf_counter_ns, []
    start = time.perf_counter()
    for i in range(steps):
        work()
        before = clock()
        if run is not None:
            run.log(values(i))
        samples.append(clock() - before)
    loop = time.perf_counter() - start
    finish, child_mb = 0.0, None
    if run is not None:
        before = time.perf_counter()
        report = finish_complete(run, 600)
        finish = time.perf_counter() - before
        child_mb = _peak_rss_mb(next((r["process"] for r in report.values()
                                      if r.get("process")), None))
    samples.sort()
    return {"loop_s": loop, "log_us": statistics.median(samples) / 1e3,
            "p99_us": samples[int(len(samples) * 0.99)] / 1e3, "finish_s": finish,
            "init_s": init_s, "child_mb": child_mb}


def handoff_cost(batches: int, rows_per_batch: int = 100) -> dict:
    """Per batch of rows (4 scalars each), on the sending side: pickling it as the
    forwarder does, sending the bytes over a pipe to a reader process, and, the
    alternative, copying the same bytes into shared memory. A row holds any
    keys and kinds of values, so shared memory would still need the pickling;
    it could only replace the pipe's copy."""
    import multiprocessing as mp
    from multiprocessing import shared_memory
    from types import MappingProxyType

    from unilog._logging_process import dumps
    from unilog.backend import Row
    from benchmarks.common import values

    batch = [["records", 1, [Row(i, MappingProxyType(values(i)), time.time())
                             for i in range(rows_per_batch)]]]
    payload = dumps(batch)
    ctx = mp.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=_drain_pipe, args=(receive,))
    reader.start()
    memory = shared_memory.SharedMemory(create=True, size=len(payload) * 2)
    times: dict[str, list[float]] = {"pickle": [], "pipe": [], "shared_memory": []}
    try:
        for _ in range(batches):
            start = time.perf_counter()
            dumps(batch)
            times["pickle"].append(time.perf_counter() - start)
            start = time.perf_counter()
            send.send_bytes(payload)
            times["pipe"].append(time.perf_counter() - start)
            start = time.perf_counter()
            memory.buf[:len(payload)] = payload
            times["shared_memory"].append(time.perf_counter() - start)
        send.send_bytes(b"")
        reader.join(timeout=60)
    finally:
        memory.close()
        memory.unlink()
    return {k: statistics.median(v) * 1e6 for k, v in times.items()} | {"bytes": len(payload)}


def _drain_pipe(receive) -> None:
    while receive.recv_bytes():
        pass


def short_run(isolation: str) -> dict:
    """A short run with all six backends in a fresh interpreter: ``init`` returning,
    the first row stored by every backend (``flush`` after it), and the whole run
    until ``finish`` returns; the logging process's start is in these figures."""
    import unilog
    from benchmarks.common import values

    root = tempfile.mkdtemp(prefix="unilog-bench-short-")
    specs = _specs(SIX.split(","), Path(root))
    start = time.perf_counter()
    run = unilog.init(project="bench-short", dir=root, mode="offline", backends=specs,
                      isolation=isolation)
    init_s = time.perf_counter() - start
    run.log(values(0))
    run.flush(timeout=300)
    first_s = time.perf_counter() - start
    for i in range(1, 100):
        run.log(values(i))
    run.finish(timeout=300)
    return {"init_s": init_s, "first_s": first_s, "total_s": time.perf_counter() - start}


def _one(label: str, backends: str, isolation: str, steps: int, step: str, cold: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.interference", backends or "-", str(steps),
         isolation or "thread", step, "cold" if cold else "steady"],
        capture_output=True, text=True, timeout=1800,
        cwd=Path(__file__).resolve().parent.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"{label} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target); writes interference.png."""
    warm_files(Path(tempfile.mkdtemp(prefix="unilog-bench-warm-")))
    repeats = 1 if quick else 3
    variants = [v for v in VARIANTS if not quick or v[0] in QUICK_VARIANTS]
    step_sizes = [s for s in STEPS if not quick or s[0] == "1.2 ms"]
    med = statistics.median
    rows = []
    plotted: dict[str, float] = {}
    for step, _, _, full_steps in step_sizes:
        steps = 300 if quick else full_steps
        for cold in (False, True):
            if cold and step != "1.2 ms":
                continue  # the first seconds: measured at the step length
            phase = "cold" if cold else "steady"
            results: dict[str, list[dict]] = {label: [] for label, *_ in variants}
            for rep in range(repeats):
                order = variants if rep % 2 == 0 else list(reversed(variants))
                for label, backends, isolation in order:
                    results[label].append(_one(label, backends, isolation, steps, step, cold))
            floor = med(r["loop_s"] for r in results["no logging"])
            for label, measured in results.items():
                loops = [r["loop_s"] for r in measured]
                ratio = med(loops) / floor
                if step == "1.2 ms" and not cold:
                    plotted[label] = ratio
                if label == "no logging":
                    rows.append((f"{step} steps ({phase}), {steps:,} steps: no logging",
                                 f"{med(loops):.2f} s [{min(loops):.2f}-{max(loops):.2f}]",
                                 "-"))
                    continue
                child = [r["child_mb"] for r in measured if r["child_mb"]]
                rows.append((
                    f"{step} steps ({phase}), {steps:,} steps: {label}",
                    f"**{ratio:.2f}x** the loop without logging "
                    f"[{min(loops) / floor:.2f}-{max(loops) / floor:.2f}]; run.log "
                    f"{med(r['log_us'] for r in measured):.1f} us median, "
                    f"{med(r['p99_us'] for r in measured):.1f} us p99; init "
                    f"{med(r['init_s'] for r in measured) * 1e3:.0f} ms; finish "
                    f"{med(r['finish_s'] for r in measured):.2f} s"
                    + (f"; logging process peak {med(child):.0f} MB" if child else ""),
                    _target(label)))
    handoff = handoff_cost(200 if quick else 5000)
    rows.append(("hand-off of a batch of 100 rows (4 scalars each) to the logging process, "
                 "on the forwarder's thread (median)",
                 f"pickling {handoff['pickle']:.0f} us ({handoff['bytes']:,} bytes); then over "
                 f"a pipe {handoff['pipe']:.0f} us, or copied into shared memory "
                 f"{handoff['shared_memory']:.1f} us", "-"))
    for isolation in ("process", "thread"):
        short = []
        for _ in range(repeats):
            proc = subprocess.run([sys.executable, "-m", "benchmarks.interference", "short",
                                   isolation], capture_output=True, text=True, timeout=900,
                                  cwd=Path(__file__).resolve().parent.parent)
            if proc.returncode != 0:
                raise RuntimeError(f"short run failed: {proc.stderr[-2000:]}")
            short.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        rows.append((f"a short run, six backends, isolation={isolation!r} (100 rows, a fresh "
                     "interpreter)",
                     f"init returns in {med(r['init_s'] for r in short) * 1e3:.0f} ms; every "
                     f"backend has the first row after {med(r['first_s'] for r in short):.2f} s; "
                     f"finish returns after {med(r['total_s'] for r in short):.2f} s", "-"))
    plots.bar_plot(out / "interference.png",
                   "CPU training loop, 1.2 ms steps: time / time without logging",
                   "x the loop without logging", list(plotted), list(plotted.values()))
    return rows


def _target(label: str) -> str:
    if label.startswith("six backends, logging"):
        return "<= 1.10x; p99 <= 50 us"
    if label.startswith("csv + wandb, logging"):
        return "<= 1.05x; p99 <= 50 us"
    return "-"


if __name__ == "__main__" and sys.argv[1] == "short":
    print(json.dumps(short_run(sys.argv[2])))
elif __name__ == "__main__":
    backends_arg, steps_arg, isolation_arg, step_arg, phase_arg = sys.argv[1:6]
    result = measure("" if backends_arg == "-" else backends_arg, int(steps_arg),
                     isolation_arg, step_arg, phase_arg == "cold")
    print(json.dumps(result))
