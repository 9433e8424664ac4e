"""Sync and import (issue 13): throughput against the SDK itself.

1. **Sync**: a csv-only run of ``steps`` rows of 4 scalars (100,000; ``--quick``
   10,000) replayed by ``unilog.sync`` into MLflow and into TensorBoard, against

   - *the SDK itself* fed the same rows: for MLflow ``MlflowClient.log_batch``
     of 1,000 metrics a call (MLflow's limit) into a fresh run, then
     ``set_terminated``; for TensorBoard one ``Event`` proto a step framed by
     tensorboard's own ``RecordWriter`` into an event file, fsynced at the end
     (exactly how unilog's TensorBoard backend writes), and for reference
     tensorboard's ``EventFileWriter`` and torch's ``SummaryWriter.add_scalar``;
   - *the same backend fed live*: ``unilog.init(backends=[backend])``, ``run.log``
     of the same rows, timed to the end of ``finish``;
   - a second sync of the same run (its ledger says the backend has everything),
     and a sync with ``isolation="thread"`` beside the default logging process.

   Target: 100,000 rows sync in at most the SDK's own time plus 10% (ratio <= 1.10).

2. **Import**: the TensorBoard folder and the MLflow run the direct writers made
   (``steps`` rows) read by ``unilog.import_run`` into a new unilog run, against
   TensorBoard's ``EventAccumulator`` (size guidance 0) merely loading it, and
   ``MlflowClient.get_metric_history`` of every key.

Each variant runs in a fresh interpreter, alternated, 3 times (``--quick``: once).
The SDK's import is paid before its clock starts; ``unilog.sync`` is timed as a
call, everything in it included (with the default logging process, starting
that process and importing the SDK there). Every MLflow store, on both sides, is
a copy of one empty SQLite store whose schema was created beforehand: schema
creation (~2 s) is excluded from every figure.

``python -m benchmarks --only sync``; a variant alone: ``python -m benchmarks.sync
--probe NAME '<json args>'``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import values

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("loss", "acc", "lr", "grad_norm")
METRICS_PER_CALL = 1000  # MLflow's log_batch limit
TARGET = 1.10
QUICK_STEPS = 5_000  # --quick: the smoke pass of tests/test_benchmarks.py, under ~30 s
PROBES: dict[str, Any] = {}


def probe(function):
    """Register ``function`` as a variant run with ``--probe NAME``."""
    PROBES[function.__name__] = function
    return function


# -- the variants, each run in a fresh interpreter ---------------------------------------


@probe
def mlflow_sdk(steps: int, db: str, folder: str) -> dict:
    """``MlflowClient.log_batch`` of 1,000 metrics a call into a fresh run of ``db``."""
    import mlflow  # noqa: F401  (paid before the clock, and timed on its own)
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient("sqlite:///" + db)
    client.search_experiments()  # the engine and the connection, as a warm user has them
    start = time.perf_counter()
    experiment = client.create_experiment("bench", artifact_location=str(Path(folder, "art")))
    run_id = client.create_run(experiment).info.run_id
    per_call = METRICS_PER_CALL // len(KEYS)
    base = int(time.time() * 1000)
    for first in range(0, steps, per_call):
        metrics = [Metric(k, v, base + i, i) for i in range(first, min(steps, first + per_call))
                   for k, v in values(i).items()]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    client.set_terminated(run_id)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "stored": _stored(db), "run_id": run_id}


@probe
def tb_record_writer(steps: int, folder: str) -> dict:
    """An ``Event`` a step through tensorboard's ``RecordWriter``: the backend's own way."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    Event, Summary, Value = event_pb2.Event, summary_pb2.Summary, summary_pb2.Summary.Value
    start = time.perf_counter()
    Path(folder).mkdir(parents=True, exist_ok=True)
    path = Path(folder, f"events.out.tfevents.{int(time.time())}.bench")
    with open(path, "wb") as file:
        record = RecordWriter(file)
        record.write(Event(wall_time=time.time(), file_version="brain.Event:2")
                     .SerializeToString())
        for i in range(steps):
            tagged = [Value(tag=k, simple_value=v) for k, v in values(i).items()]
            record.write(Event(wall_time=time.time(), step=i, summary=Summary(value=tagged))
                         .SerializeToString())
        file.flush()
        os.fsync(file.fileno())
    return {"seconds": time.perf_counter() - start, "stored": _tb_scalars(Path(folder))}


@probe
def tb_event_file_writer(steps: int, folder: str) -> dict:
    """The same events through tensorboard's ``EventFileWriter`` (its own thread)."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    Event, Summary, Value = event_pb2.Event, summary_pb2.Summary, summary_pb2.Summary.Value
    start = time.perf_counter()
    writer = EventFileWriter(folder)
    for i in range(steps):
        tagged = [Value(tag=k, simple_value=v) for k, v in values(i).items()]
        writer.add_event(Event(wall_time=time.time(), step=i, summary=Summary(value=tagged)))
    writer.close()
    return {"seconds": time.perf_counter() - start, "stored": _tb_scalars(Path(folder))}


@probe
def tb_summary_writer(steps: int, folder: str) -> dict:
    """torch's ``SummaryWriter.add_scalar`` per value (what most users write by hand)."""
    from torch.utils.tensorboard import SummaryWriter

    start = time.perf_counter()
    writer = SummaryWriter(folder)
    for i in range(steps):
        for key, value in values(i).items():
            writer.add_scalar(key, value, i)
    writer.close()
    return {"seconds": time.perf_counter() - start, "stored": _tb_scalars(Path(folder))}


@probe
def sync(steps: int, backend: str, run_dir: str, isolation: str) -> dict:
    """``unilog.sync(run_dir, backends=[backend])``, timed as a call."""
    import unilog

    start = time.perf_counter()
    report = unilog.sync(run_dir, backends=[backend], mode="offline", isolation=isolation,
                         progress=False)
    seconds = time.perf_counter() - start
    entry = report.runs[0].backends[backend]
    if not report.ok:
        raise RuntimeError(f"sync failed: {report}")
    return {"seconds": seconds, "sent": entry.sent, "already": entry.already,
            "stored": _stored_by(backend, Path(run_dir))}


@probe
def live(steps: int, backend: str, root: str) -> dict:
    """``init`` + ``run.log`` of the same rows + ``finish``, timed to the end of finish."""
    import unilog

    start = time.perf_counter()
    run = unilog.init(project="bench", dir=root, backends=[backend], mode="offline")
    for i in range(steps):
        run.log(values(i))
    report = run.finish(timeout=1200)[backend]
    seconds = time.perf_counter() - start
    if report["errors"] or report["failed"] or report["undelivered"]:
        raise RuntimeError(f"the {backend} backend failed: {report}")
    # "dropped" is counted, not fatal: what arrived is counted below, after the clock.
    return {"seconds": seconds, "stored": _stored_by(backend, Path(run.dir)),
            "dropped": report["dropped"], "delivered": report["delivered"]}


@probe
def import_tensorboard(steps: int, logdir: str, folder: str) -> dict:
    """``unilog.import_run(logdir, source="tensorboard")`` (tensorboard imported first)."""
    import tensorboard.backend.event_processing.event_accumulator  # noqa: F401

    import unilog

    start = time.perf_counter()
    path = unilog.import_run(logdir, source="tensorboard", project="bench", dir=folder)
    return {"seconds": time.perf_counter() - start, "stored": _csv_values(path)}


@probe
def tb_accumulator(steps: int, logdir: str) -> dict:
    """TensorBoard's ``EventAccumulator`` (size guidance 0: keep all) loading the folder."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    start = time.perf_counter()
    accumulator = EventAccumulator(logdir, size_guidance={"scalars": 0, "images": 0,
                                                          "tensors": 0, "histograms": 0})
    accumulator.Reload()
    stored = sum(len(accumulator.Scalars(tag)) for tag in accumulator.Tags()["scalars"])
    return {"seconds": time.perf_counter() - start, "stored": stored}


@probe
def import_mlflow(steps: int, db: str, run_id: str, folder: str) -> dict:
    """``unilog.import_run(uri, source="mlflow", run_id=...)`` (mlflow imported first)."""
    import mlflow  # noqa: F401

    import unilog

    start = time.perf_counter()
    path = unilog.import_run("sqlite:///" + db, source="mlflow", run_id=run_id,
                             project="bench", dir=folder)
    return {"seconds": time.perf_counter() - start, "stored": _csv_values(path)}


@probe
def mlflow_history(steps: int, db: str, run_id: str) -> dict:
    """``MlflowClient.get_metric_history`` of every key of the run."""
    from mlflow.tracking import MlflowClient

    start = time.perf_counter()
    client = MlflowClient("sqlite:///" + db)
    keys = client.get_run(run_id).data.metrics
    stored = sum(len(client.get_metric_history(run_id, key)) for key in keys)
    return {"seconds": time.perf_counter() - start, "stored": stored}


@probe
def make_store(steps: int, db: str) -> dict:
    """An empty SQLite store with its schema (copied for every variant, untimed)."""
    from mlflow.tracking import MlflowClient

    MlflowClient("sqlite:///" + db).search_experiments()
    return {"seconds": 0.0}


# -- counting what arrived (after the clock) ---------------------------------------------


def _stored(db: str | Path) -> int:
    with sqlite3.connect(str(db)) as connection:
        return connection.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]


def _tb_scalars(folder: Path) -> int:
    """Scalar values in the event files directly under ``folder``."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    count = 0
    for path in folder.glob("events.out.tfevents.*"):
        for event in EventFileLoader(str(path)).Load():
            count += sum(1 for v in event.summary.value if v.tag in KEYS)
    return count


def _stored_by(backend: str, run_dir: Path) -> int:
    if backend == "mlflow":
        return _stored(run_dir.parent.parent / "mlflow" / "mlflow.db")
    return _tb_scalars(run_dir / "tensorboard")


def _csv_values(run_dir: Path) -> int:
    """Values in the local record (one line each)."""
    with open(Path(run_dir) / "metrics.csv", encoding="utf-8") as f:
        return sum(1 for _ in f) - 1


# -- the parent: set-up, alternation, figures --------------------------------------------


def _in_process(name: str, **kwargs: Any) -> dict:
    env = {**os.environ, "UNILOG_SILENT": "true", "MLFLOW_DISABLE_TELEMETRY": "true",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    env.pop("UNILOG_DIR", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # every store here is named by its path
    proc = subprocess.run([sys.executable, "-m", "benchmarks.sync", "--probe", name,
                           json.dumps(kwargs)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({proc.returncode}): {proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def _csv_run(steps: int, root: Path) -> Path:
    """The run to sync: ``steps`` rows of 4 scalars in the local record only."""
    import unilog

    run = unilog.init(project="bench", dir=root, backends=["csv"], mode="offline")
    for i in range(steps):
        run.log(values(i))
    run.finish(timeout=600)
    return Path(run.dir)


def _copy_run(source: Path, root: Path, store: Path | None) -> Path:
    """A fresh copy of the run under ``root`` (no ledger yet), beside an empty store."""
    target = root / source.parent.name / source.name
    shutil.copytree(source, target)
    if store is not None:
        (root / "mlflow").mkdir(parents=True)
        shutil.copy(store, root / "mlflow" / "mlflow.db")
    return target


def _fresh_store(store: Path, folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(store, folder / "mlflow.db")
    return folder / "mlflow.db"


class _Bench:
    def __init__(self, steps: int, repeats: int, base: Path, quick: bool):
        self.steps, self.repeats, self.base, self.quick = steps, repeats, base, quick
        self.samples: dict[str, list[float]] = {}
        self.dropped: dict[str, int] = {}  # label -> rows a live backend reported dropped
        self.lost: dict[str, int] = {}  # label -> values a live backend did not store
        self.n = 0
        self.sources: dict[str, Any] = {}

    def record(self, label: str, result: dict, expect: int | None) -> None:
        if "dropped" in result:  # live: a loss is a figure of its own, not a failed section
            self.lost[label] = self.lost.get(label, 0) + expect - result["stored"]
        elif expect is not None and result.get("stored") != expect:
            raise RuntimeError(f"{label}: {result.get('stored')} values stored, {expect} sent")
        self.samples.setdefault(label, []).append(result["seconds"])
        if "dropped" in result:
            self.dropped[label] = self.dropped.get(label, 0) + result["dropped"]

    def folder(self, name: str) -> Path:
        self.n += 1
        return self.base / f"{self.n:03d}-{name}"

    # the variants of one repetition -------------------------------------------------

    def variants(self, rep: int, run: Path, store: Path, torch: bool) -> list:
        steps, values_ = self.steps, 4 * self.steps
        calls = []

        def sdk_mlflow():
            folder = self.folder("sdk-mlflow")
            db = _fresh_store(store, folder)
            result = _in_process("mlflow_sdk", steps=steps, db=str(db), folder=str(folder))
            self.record("mlflow sdk", result, values_)
            self.sources.setdefault("mlflow", (db, result["run_id"]))

        def tb_direct():
            folder = self.folder("tb-record")
            self.record("tensorboard sdk", _in_process("tb_record_writer", steps=steps,
                                                       folder=str(folder)), values_)
            self.sources.setdefault("tensorboard", folder)

        def tb_efw():
            self.record("tensorboard efw", _in_process(
                "tb_event_file_writer", steps=steps, folder=str(self.folder("tb-efw"))), values_)

        def tb_torch():
            self.record("tensorboard torch", _in_process(
                "tb_summary_writer", steps=steps, folder=str(self.folder("tb-torch"))), values_)

        def synced(backend: str):
            def go():
                root = self.folder(f"sync-{backend}")
                copy = _copy_run(run, root, store if backend == "mlflow" else None)
                first = _in_process("sync", steps=steps, backend=backend, run_dir=str(copy),
                                    isolation="process")
                if first["sent"] != steps:
                    raise RuntimeError(f"sync to {backend} sent {first['sent']} of {steps}")
                self.record(f"{backend} sync", first, values_)
                again = _in_process("sync", steps=steps, backend=backend, run_dir=str(copy),
                                    isolation="process")
                if again["sent"] or again["already"] != steps:
                    raise RuntimeError(f"second sync to {backend}: {again}")
                self.record(f"{backend} sync again", again, values_)
            return go

        def synced_thread(backend: str):
            def go():
                root = self.folder(f"thread-{backend}")
                copy = _copy_run(run, root, store if backend == "mlflow" else None)
                result = _in_process("sync", steps=steps, backend=backend, run_dir=str(copy),
                                     isolation="thread")
                self.record(f"{backend} sync thread", result, values_)
            return go

        def logged_live(backend: str):
            def go():
                root = self.folder(f"live-{backend}")
                if backend == "mlflow":
                    (root / "mlflow").mkdir(parents=True)
                    shutil.copy(store, root / "mlflow" / "mlflow.db")
                self.record(f"{backend} live", _in_process("live", steps=steps, backend=backend,
                                                           root=str(root)), values_)
            return go

        calls += [sdk_mlflow, synced("mlflow"), tb_direct, tb_efw, synced("tensorboard")]
        if not self.quick:  # the smoke pass keeps to the figures of the target
            calls += [synced_thread("mlflow"), logged_live("mlflow"),
                      synced_thread("tensorboard"), logged_live("tensorboard")]
        if torch:
            calls.append(tb_torch)
        return calls

    def imports(self) -> list:
        values_ = 4 * self.steps
        logdir = self.sources["tensorboard"]
        db, run_id = self.sources["mlflow"]

        def tb_import():
            self.record("import tensorboard", _in_process(
                "import_tensorboard", steps=self.steps, logdir=str(logdir),
                folder=str(self.folder("import-tb"))), values_)

        def tb_load():
            self.record("tensorboard accumulator", _in_process(
                "tb_accumulator", steps=self.steps, logdir=str(logdir)), values_)

        def mlflow_import():
            self.record("import mlflow", _in_process(
                "import_mlflow", steps=self.steps, db=str(db), run_id=run_id,
                folder=str(self.folder("import-mlflow"))), values_)

        def mlflow_read():
            self.record("mlflow history", _in_process(
                "mlflow_history", steps=self.steps, db=str(db), run_id=run_id), values_)

        return [tb_import, tb_load, mlflow_import, mlflow_read]

    def go(self, torch: bool) -> None:
        store = self.base / "empty.db"
        _in_process("make_store", steps=0, db=str(store))
        run = _csv_run(self.steps, self.base / "source")
        for rep in range(self.repeats):
            calls = self.variants(rep, run, store, torch)
            for call in calls if rep % 2 == 0 else reversed(calls):
                call()
        for rep in range(self.repeats):
            calls = self.imports()
            for call in calls if rep % 2 == 0 else reversed(calls):
                call()


def _fmt(samples: list[float], steps: int) -> str:
    med = statistics.median(samples)
    return (f"{med:.2f} s [{min(samples):.2f}-{max(samples):.2f}]; "
            f"{steps / med:,.0f} rows/s")


def _rows(bench: _Bench) -> list[tuple[str, str, str]]:
    s, steps, med = bench.samples, bench.steps, statistics.median
    n = f"{steps:,} rows x 4 scalars"
    rows = []
    for backend, sdk_label in (("mlflow", "MlflowClient.log_batch, 1,000 metrics a call, "
                                          "+ set_terminated (SQLite, schema made beforehand)"),
                               ("tensorboard", "an Event a step through tensorboard's "
                                               "RecordWriter, fsynced (the backend's own way)")):
        sdk = med(s[f"{backend} sdk"])
        ratio = med(s[f"{backend} sync"]) / sdk
        rows += [
            (f"{backend}: the SDK itself, {n}: {sdk_label}", _fmt(s[f"{backend} sdk"], steps),
             "-"),
            (f"{backend}: unilog.sync of a csv-only run, {n} (logging process)",
             f"{_fmt(s[f'{backend} sync'], steps)}; sync / SDK **{ratio:.2f}x**",
             f"<= {TARGET:.2f}x ({'met' if ratio <= TARGET else 'MISSED'})"),
            (f"{backend}: a second sync of the same run (nothing to send)",
             f"{med(s[f'{backend} sync again']):.3f} s [{min(s[f'{backend} sync again']):.3f}-"
             f"{max(s[f'{backend} sync again']):.3f}]", "near zero"),
        ]
        for label, what in (("sync thread", "unilog.sync, isolation=\"thread\""),
                            ("live", "the same rows logged live (init + run.log + finish)")):
            key = f"{backend} {label}"
            measured = (f"{_fmt(s[key], steps)}; / SDK {med(s[key]) / sdk:.2f}x"
                        if key in s else "not run in --quick")
            if bench.dropped.get(key) or bench.lost.get(key):
                measured += (f"; over {bench.repeats} runs, finish reported 'dropped': "
                             f"{bench.dropped[key]} row(s) and {bench.lost[key]} value(s) "
                             "were not in the backend")
            rows.append((f"{backend}: {what}", measured, "-"))
        if backend == "tensorboard":
            for label, what in (("efw", "tensorboard's EventFileWriter (its own thread)"),
                                ("torch", "torch SummaryWriter.add_scalar per value")):
                other = s.get(f"tensorboard {label}")
                if other:
                    rows.append((f"tensorboard: for reference, {what}",
                                 f"{_fmt(other, steps)}; sync / it "
                                 f"{med(s['tensorboard sync']) / med(other):.2f}x", "-"))
    for source, reader, label in (
            ("tensorboard", "tensorboard accumulator",
             "TensorBoard's EventAccumulator loading it (size guidance 0)"),
            ("mlflow", "mlflow history", "MlflowClient.get_metric_history of every key")):
        ours, theirs = med(s[f"import {source}"]), med(s[reader])
        rows += [
            (f"import from {source}: unilog.import_run, {n}", _fmt(s[f"import {source}"], steps),
             "-"),
            (f"import from {source}: {label}",
             f"{_fmt(s[reader], steps)}; import / reader **{ours / theirs:.2f}x**", "-"),
        ]
    return rows


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target)."""
    import importlib.util

    steps, repeats = (QUICK_STEPS, 1) if quick else (100_000, 3)
    torch = importlib.util.find_spec("torch") is not None and not quick
    base = Path(tempfile.mkdtemp(prefix="unilog-bench-sync-"))
    try:
        bench = _Bench(steps, repeats, base, quick)
        bench.go(torch)
        return _rows(bench)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        import logging

        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        print(json.dumps(PROBES[sys.argv[2]](**json.loads(sys.argv[3]))))
