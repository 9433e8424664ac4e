"""Start-up (issue 6, item 4): ``import unilog`` against a bare interpreter, and
``init`` + ``finish`` of an empty offline run for each backend against the SDK's
own start and end of an empty offline run.

Each backend is measured two ways, unilog and the SDK alternated in every
repetition:

- **first in a process** (cold): a fresh interpreter per sample, timed from just
  before the first import (unilog's, or the SDK's) until ``finish`` returns, so
  the SDK's import and any helper it starts (wandb-core, a SQLite store's schema)
  are included; the interpreter's own start is not (the same for both);
- **warm**: one fresh interpreter per backend that has already imported
  everything and run once; the later runs are timed.

unilog's ``init`` only validates, writes the manifest and starts a worker per
backend, which opens the backend (the SDK's import and start included) on its
own thread, in parallel with the caller and with the other backends. So
``init`` returning and ``finish`` returning are reported apart: the caller's
wait in ``init``, and the rest, which ``finish`` waits for when the run is
empty. Every unilog run also keeps the CSV local record.

The SDK baselines do what each backend does, with the backend's settings:
``wandb.init(mode="offline")``/``finish``, ``swanlab.init`` (offline)/``finish``,
``neptune.init_run(mode="offline")``/``stop``, ``MlflowClient`` on a SQLite
store (experiment looked up or created, ``create_run``, ``set_terminated``),
tensorboard's ``EventFileWriter`` open/close, a ``csv.writer`` file open/close.

This module imports nothing but the standard library at the top: a sample runs
``python -m benchmarks.startup --probe ...`` and must pay unilog's import itself.
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

BACKENDS = ("csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune")
#: The module each backend's SDK needs (None: the standard library).
SDK_MODULE = {"csv": None, "tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb",
              "swanlab": "swanlab", "neptune": "neptune"}
REPO = Path(__file__).resolve().parent.parent
FRESH_STORE = " (a new SQLite store each time: its schema is created)"


# -- one empty run, each way (run inside a probe process) ----------------------------


def through_unilog(backend: str, root: Path) -> dict[str, float]:
    """``import unilog`` (a no-op once imported), ``init`` and ``finish`` of an empty
    offline run; seconds each."""
    clock = time.perf_counter
    start = clock()
    import unilog

    imported = clock()
    run = unilog.init(project="bench", dir=root, backends=[backend], mode="offline")
    started = clock()
    report = run.finish(timeout=300)
    finished = clock()
    for name, counts in report.items():
        if isinstance(counts, dict) and (counts.get("errors") or counts.get("disabled")):
            raise RuntimeError(f"backend {name} failed: {counts}")
    return {"import": imported - start, "init": started - imported, "finish": finished - started}


def _prepare_sdk(backend: str) -> None:
    """The environment each backend sets before its SDK starts, set outside the timings."""
    if backend == "wandb":
        os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import unilog_plugins.wandb_backend  # noqa: F401  (its DEFAULT_SETTINGS; not wandb)
    elif backend == "mlflow":
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    elif backend == "neptune":
        import unilog_plugins.neptune_backend  # noqa: F401  (its quiet import; not neptune)


def through_sdk(backend: str, root: Path) -> dict[str, float]:
    """The SDK's own import (a no-op once imported), start and end of an empty
    offline run, as the backend drives it; seconds each."""
    root.mkdir(parents=True, exist_ok=True)
    clock = time.perf_counter
    start = clock()
    begin, end = _SDK[backend]()
    imported = clock()
    handle = begin(root)
    started = clock()
    end(handle)
    finished = clock()
    return {"import": imported - start, "init": started - imported, "finish": finished - started}


def _csv():
    import csv

    def begin(root):
        f = open(root / "metrics.csv", "w", newline="")  # noqa: SIM115 (closed by end)
        csv.writer(f).writerow(("step", "time", "key", "value"))
        return f

    return begin, lambda f: f.close()


def _tensorboard():
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    return lambda root: EventFileWriter(str(root / "tb")), lambda writer: writer.close()


def _mlflow():
    from mlflow.tracking import MlflowClient

    def begin(root):
        client = MlflowClient("sqlite:///" + (root / "mlflow.db").as_posix())
        found = client.get_experiment_by_name("bench")
        experiment = found.experiment_id if found else client.create_experiment(
            "bench", artifact_location=str(root / "artifacts"))
        return client, client.create_run(experiment).info.run_id

    def end(handle):
        client, run_id = handle
        client.set_terminated(run_id)

    return begin, end


def _wandb():
    import wandb

    from unilog_plugins.wandb_backend import DEFAULT_SETTINGS

    def begin(root):
        return wandb.init(project="bench", dir=str(root), mode="offline", reinit="create_new",
                          settings=wandb.Settings(**DEFAULT_SETTINGS))

    return begin, lambda run: run.finish()


def _swanlab():
    import swanlab

    def begin(root):
        settings = swanlab.Settings(
            mode="offline", interactive=False, log_dir=root / "swanlab",
            terminal=swanlab.Settings.Terminal(proxy_type="none"),
            probe=swanlab.Settings.Probe(hardware=False, runtime=False, requirements=False,
                                         conda=False, git=False, monitor=False))
        return swanlab.init(settings=settings, project="bench")

    return begin, lambda run: run.finish()


def _neptune():
    from unilog_plugins.neptune_backend import _import_neptune

    neptune = _import_neptune()

    def begin(root):
        os.environ["NEPTUNE_DATA_DIRECTORY"] = str(root / "neptune")  # as the backend does
        try:
            return neptune.init_run(mode="offline", capture_stdout=False, capture_stderr=False,
                                    capture_hardware_metrics=False, capture_traceback=False,
                                    git_ref=False, source_files=[])
        finally:
            os.environ.pop("NEPTUNE_DATA_DIRECTORY", None)

    return begin, lambda run: run.stop()


_SDK = {"csv": _csv, "tensorboard": _tensorboard, "mlflow": _mlflow, "wandb": _wandb,
        "swanlab": _swanlab, "neptune": _neptune}
_WAYS = {"unilog": through_unilog, "sdk": through_sdk}


def _quiet() -> None:
    import logging

    for name in ("mlflow", "alembic", "neptune"):  # per-run INFO lines: noise in a report
        logging.getLogger(name).setLevel(logging.WARNING)


def _probe(mode: str, way: str, backend: str, repeats: int, root: Path) -> list[dict]:
    """In a fresh process: one sample (cold), or a first run of each way and then
    ``repeats`` alternated timed runs of both (warm)."""
    if way == "sdk" or mode == "warm":
        _prepare_sdk(backend)
    if mode == "cold":
        _quiet()
        return [_WAYS[way](backend, root / way)]
    samples = []
    for i in range(repeats + 1):
        order = ("unilog", "sdk") if i % 2 == 0 else ("sdk", "unilog")
        timed = {w: _WAYS[w](backend, root / w) for w in order}
        _quiet()  # after the first run: the SDKs' imports set their loggers' levels
        if i:  # the first run of each way imports and starts everything: not timed
            samples.append(timed)
    return samples


def _spawn(mode: str, way: str, backend: str, repeats: int, root: Path) -> tuple[list, float]:
    """Run a probe in a fresh interpreter; (its samples, the process's wall seconds)."""
    args = [sys.executable, "-m", "benchmarks.startup", "--probe", mode, way, backend,
            str(repeats), str(root)]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f"startup probe {mode} {way} {backend} failed:\n{proc.stderr[-3000:]}")
    return json.loads((root / "probe.json").read_text()), wall


# -- the measurements ---------------------------------------------------------------


def cold(backends: list[str], repeats: int, root: Path) -> dict[str, dict]:
    """First run in a fresh process, unilog and the SDK alternated per repetition."""
    found = {b: {"unilog": [], "sdk": [], "wall_unilog": [], "wall_sdk": []} for b in backends}
    for rep in range(repeats):
        for backend in backends:
            for way in (("unilog", "sdk") if rep % 2 == 0 else ("sdk", "unilog")):
                samples, wall = _spawn("cold", way, backend, 1,
                                       root / f"cold-{backend}-{way}-{rep}")
                found[backend][way] += samples
                found[backend][f"wall_{way}"].append(wall)
    return found


def warm(backends: list[str], repeats: int, root: Path) -> dict[str, dict]:
    """Later runs in one process per backend (everything already imported and started)."""
    found = {}
    for backend in backends:
        samples, _ = _spawn("warm", "both", backend, repeats, root / f"warm-{backend}")
        found[backend] = {w: [s[w] for s in samples] for w in ("unilog", "sdk")}
    return found


def import_rows(repeats: int, sub_repeats: int, lightning: bool = True) -> list[tuple]:
    """``import unilog`` (``benchmarks.core.import_cost``), and the optional submodules
    (``sub_repeats`` times: importing Lightning takes seconds)."""
    from benchmarks.core import import_cost

    imp = import_cost(repeats)
    rows = [("import unilog: added wall time over python -c pass (median)",
             f"{imp['added_ms']:.1f} ms (bare {imp['bare_s'][0] * 1e3:.0f} ms, with unilog "
             f"{imp['unilog_s'][0] * 1e3:.0f} ms [{imp['unilog_s'][1] * 1e3:.0f}-"
             f"{imp['unilog_s'][2] * 1e3:.0f}]); heavy modules: "
             f"{imp['heavy_modules_imported'] or 'none'}", "<= 50 ms, none")]
    pairs = [("unilog.hydra", "unilog")]
    if lightning:
        pairs.insert(0, ("unilog.lightning", "lightning.pytorch"))
    else:
        rows.append(("import unilog.lightning", "skipped in --quick (Lightning's own import "
                     "takes seconds)", "-"))
    codes = ["pass"] + [code for pair in pairs for code in pair]
    times = {code: [] for code in codes}
    for _ in range(sub_repeats):
        for code in codes:
            stmt = code if code == "pass" else f"import {code}"
            start = time.perf_counter()
            subprocess.run([sys.executable, "-W", "ignore", "-c", stmt], check=True,
                           capture_output=True)
            times[code].append(time.perf_counter() - start)
    med = {code: statistics.median(t) for code, t in times.items()}
    for module, base in pairs:
        rows.append((f"import {module}: wall time over python -c pass, and over "
                     f"import {base} alone (for information)",
                     f"+{(med[module] - med['pass']) * 1e3:,.0f} ms "
                     f"[{(min(times[module]) - med['pass']) * 1e3:,.0f}-"
                     f"{(max(times[module]) - med['pass']) * 1e3:,.0f}]; "
                     f"+{(med[module] - med[base]) * 1e3:,.0f} ms over import {base} "
                     f"({med[base] * 1e3:,.0f} ms)", "-"))
    return rows


def _sum(sample: dict[str, float]) -> float:
    return sample["import"] + sample["init"] + sample["finish"]


def _parts(samples: list[dict], unit: float = 1.0, digits: int = 2) -> str:
    med = {part: statistics.median(s[part] for s in samples) for part in ("import", "init",
                                                                         "finish")}
    return (f"import {med['import'] * unit:.{digits}f}, init {med['init'] * unit:.{digits}f}, "
            f"finish {med['finish'] * unit:.{digits}f}")


def backend_rows(name: str, cold_found: dict | None, warm_found: dict) -> list[tuple]:
    """Rows of one backend: first run in a process, then later runs."""
    from benchmarks.common import fmt

    rows = []
    med = statistics.median
    if cold_found is not None:
        ours = [_sum(s) for s in cold_found["unilog"]]
        sdk = [_sum(s) for s in cold_found["sdk"]]
        rows.append((
            f"{name}: first run in a fresh process, import + init + finish of an empty "
            f"offline run{FRESH_STORE if name == 'mlflow' else ''}: unilog (parts, s) vs "
            "the SDK (parts, s)",
            f"unilog {fmt(ours)} ({_parts(cold_found['unilog'])}); SDK {fmt(sdk)} "
            f"({_parts(cold_found['sdk'])}); unilog / SDK {med(ours) / med(sdk):.2f}x; "
            f"whole process {med(cold_found['wall_unilog']):.2f} vs "
            f"{med(cold_found['wall_sdk']):.2f} s", "-"))
    ours = [s["init"] + s["finish"] for s in warm_found["unilog"]]
    sdk = [s["init"] + s["finish"] for s in warm_found["sdk"]]
    init = [s["init"] for s in warm_found["unilog"]]
    rows.append((
        f"{name}: later runs in the same process, init + finish of an empty offline run "
        "(init returning = the caller's wait)",
        f"unilog {fmt(ours, 'ms', 1e3, 1)} (init returns in {fmt(init, 'ms', 1e3, 1)}); SDK "
        f"{fmt(sdk, 'ms', 1e3, 1)} (init {med(s['init'] for s in warm_found['sdk']) * 1e3:.1f}"
        f" ms); unilog / SDK {med(ours) / med(sdk):.2f}x", "-"))
    return rows


def _plots(out: Path, cold_found: dict, warm_found: dict) -> None:
    from benchmarks.plots import bar_plot

    for kind, found, key, unit, scale in (("cold", cold_found, _sum, "s", 1.0),
                                          ("warm", warm_found,
                                           lambda s: s["init"] + s["finish"], "ms", 1e3)):
        labels, meds, lows, highs = [], [], [], []
        for backend, ways in found.items():
            for way in ("unilog", "sdk"):
                values = [key(s) * scale for s in ways[way]]
                labels.append(f"{backend} {'unilog' if way == 'unilog' else 'SDK'}")
                meds.append(statistics.median(values))
                lows.append(min(values))
                highs.append(max(values))
        if labels:
            title = ("first run in a fresh process (import + init + finish)" if kind == "cold"
                     else "later runs in one process (init + finish)")
            bar_plot(out / f"startup_{kind}.png", f"Empty offline run: {title}", unit,
                     labels, meds, lows, highs, logy=True)


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Run the start-up benchmarks; returns (figure, measured, target) rows."""
    import importlib.util

    root = Path(tempfile.mkdtemp(prefix="unilog-bench-startup-"))
    rows = import_rows(3 if quick else 15, 1 if quick else 5, lightning=not quick)
    present, missing = [], []
    for name in BACKENDS:
        module = SDK_MODULE[name]
        (present if module is None or importlib.util.find_spec(module) else missing).append(name)
    # --quick (CI's smoke pass) keeps to the backends that start in well under a second.
    measured = [b for b in present if b in ("csv", "tensorboard")] if quick else present
    cold_found = cold(measured, 1 if quick else 5, root)
    warm_found = warm(measured, 2 if quick else 7, root)
    for name in present:
        if name in warm_found:
            rows += backend_rows(name, cold_found.get(name), warm_found[name])
    rows += [(f"{name}: init + finish", f"skipped: {SDK_MODULE[name]} is not installed", "-")
             for name in missing]
    _plots(out, cold_found, warm_found)
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:  # one sample, in this fresh process; JSON in a file
        mode, way, backend, repeats, folder = sys.argv[2:7]
        samples = _probe(mode, way, backend, int(repeats), Path(folder))
        (Path(folder) / "probe.json").write_text(json.dumps(samples))
    else:
        for row in run("--quick" in sys.argv, Path(tempfile.mkdtemp(prefix="unilog-startup-"))):
            print(" | ".join(row))
