"""The six backends' SDKs driven directly, without unilog: the baselines of the
fan-out and end-to-end benchmarks.

Each class opens an offline run of its SDK in ``root`` with the settings unilog's
backend uses, and offers ``step(i, values)`` (what a user writes by hand: one
call per step, or per value where the SDK has no multi-key call) and
``batch(rows)`` (the SDK driven optimally: as few calls as its API allows),
then ``close()``. Imports are paid by :func:`warm_up`, outside every timing.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

Rows = list[tuple[int, dict[str, float]]]

_MLFLOW_TEMPLATE: list[Path] = []  # one empty store per process, made on first use


def fresh_mlflow_uri(root: Path) -> str:
    """A new, empty SQLite MLflow store in ``root``, copied from one created once per
    process: the schema creation (1-3 s of migrations, once in a store's life, and
    very noisy here) is left out of every timing, for unilog and the SDK alike."""
    if not _MLFLOW_TEMPLATE:
        from mlflow.tracking import MlflowClient

        folder = Path(tempfile.mkdtemp(prefix="unilog-bench-mlflow-template-"))
        MlflowClient("sqlite:///" + (folder / "mlflow.db").as_posix()).search_experiments()
        _MLFLOW_TEMPLATE.append(folder / "mlflow.db")
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_MLFLOW_TEMPLATE[0], root / "mlflow.db")
    return "sqlite:///" + (root / "mlflow.db").as_posix()


def unilog_backends(names: Iterable[str], root: Path) -> list[Any]:
    """``unilog.init``'s ``backends`` for ``names``: MLflow on a fresh pre-made store."""
    return [{"name": n, "tracking_uri": fresh_mlflow_uri(root / "mlflow-store")}
            if n == "mlflow" else n for n in names]


class CsvDirect:
    """``csv.writer`` to a file, unilog's long format (step, time, key, value)."""

    name = "csv"

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self._file = open(root / "metrics.csv", "w", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self._writer.writerow(("step", "time", "key", "value"))

    def step(self, i: int, values: dict[str, float]) -> None:
        now = time.time()
        self._writer.writerows((i, now, k, v) for k, v in values.items())

    def batch(self, rows: Rows) -> None:
        now = time.time()
        self._writer.writerows((i, now, k, v) for i, values in rows for k, v in values.items())

    def close(self) -> None:
        self._file.close()


class TensorBoardDirect:
    """tensorboard's ``EventFileWriter``: one event per step (its API has no batch call)."""

    name = "tensorboard"

    def __init__(self, root: Path):
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        self._writer = EventFileWriter(str(root / "tensorboard"))

    def step(self, i: int, values: dict[str, float]) -> None:
        tagged = [self._summary.Value(tag=k, simple_value=v) for k, v in values.items()]
        self._writer.add_event(self._event(wall_time=time.time(), step=i,
                                           summary=self._summary(value=tagged)))

    def batch(self, rows: Rows) -> None:
        for i, values in rows:
            self.step(i, values)

    def close(self) -> None:
        self._writer.close()


class MlflowDirect:
    """``MlflowClient`` on a SQLite store: ``log_batch`` per step, or of 1,000 metrics."""

    name = "mlflow"

    def __init__(self, root: Path):
        from mlflow.tracking import MlflowClient

        self._client = MlflowClient(fresh_mlflow_uri(root))
        experiment = self._client.create_experiment(
            "bench", artifact_location=str(root / "artifacts"))
        self._run_id = self._client.create_run(experiment).info.run_id

    def step(self, i: int, values: dict[str, float]) -> None:
        self.batch([(i, values)])

    def batch(self, rows: Rows) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)
        metrics = [Metric(k, v, stamp, i) for i, values in rows for k, v in values.items()]
        for first in range(0, len(metrics), 1000):  # the most one request may carry
            self._client.log_batch(self._run_id, metrics=metrics[first:first + 1000],
                                   synchronous=True)

    def close(self) -> None:
        self._client.set_terminated(self._run_id)


class _LogPerStep:
    """An SDK run with ``log(values, step=)`` and ``finish()`` and no batch call, so
    one ``log`` per step is also its optimum (wandb, SwanLab)."""

    _run: Any

    def step(self, i: int, values: dict[str, float]) -> None:
        self._run.log(values, step=i)

    def batch(self, rows: Rows) -> None:
        for i, values in rows:
            self._run.log(values, step=i)

    def close(self) -> None:
        self._run.finish()


class WandbDirect(_LogPerStep):
    """``wandb.init(mode="offline")``: ``run.log`` per step (wandb has no batch call)."""

    name = "wandb"

    def __init__(self, root: Path):
        import wandb

        from unilog_plugins.wandb_backend import DEFAULT_SETTINGS

        root.mkdir(parents=True, exist_ok=True)
        self._run = wandb.init(project="bench", dir=str(root), mode="offline",
                               reinit="create_new", settings=wandb.Settings(**DEFAULT_SETTINGS))


class SwanlabDirect(_LogPerStep):
    """``swanlab.init`` offline: ``run.log`` per step (no batch call)."""

    name = "swanlab"

    def __init__(self, root: Path):
        import swanlab

        settings = swanlab.Settings(
            mode="offline", interactive=False, log_dir=root / "swanlab",
            terminal=swanlab.Settings.Terminal(proxy_type="none"),
            probe=swanlab.Settings.Probe(hardware=False, runtime=False, requirements=False,
                                         git=False, monitor=False))
        self._run = swanlab.init(settings=settings, project="bench")


class NeptuneDirect:
    """``neptune.init_run(mode="offline")``: ``append`` per value per step, or one
    ``extend`` per key for the whole series."""

    name = "neptune"

    def __init__(self, root: Path):
        from unilog_plugins.neptune_backend import _import_neptune

        neptune = _import_neptune()
        # Neptune writes under $NEPTUNE_DATA_DIRECTORY (else the working directory).
        os.environ["NEPTUNE_DATA_DIRECTORY"] = str(root / "neptune")
        self._run = neptune.init_run(mode="offline", capture_stdout=False,
                                     capture_stderr=False, capture_hardware_metrics=False,
                                     capture_traceback=False, git_ref=False, source_files=[])

    def step(self, i: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self._run[key].append(value, step=i)

    def batch(self, rows: Rows) -> None:
        for key in rows[0][1] if rows else ():
            self._run[key].extend([values[key] for _, values in rows],
                                  steps=[i for i, _ in rows])

    def close(self) -> None:
        self._run.stop()
        os.environ.pop("NEPTUNE_DATA_DIRECTORY", None)


DIRECT = {cls.name: cls for cls in (CsvDirect, TensorBoardDirect, MlflowDirect, WandbDirect,
                                    SwanlabDirect, NeptuneDirect)}


def warm_up(names: Iterable[str], root: Path) -> None:
    """Import each SDK and start whatever it starts once per process (wandb-core),
    so no timing pays for it; quiets the SDKs' per-run INFO lines."""
    for name in names:
        sdk = DIRECT[name](root / f"warm-{name}")
        sdk.step(0, {"x": 1.0})
        sdk.close()
    for logger in ("mlflow", "alembic", "neptune"):
        logging.getLogger(logger).setLevel(logging.WARNING)


def time_direct(name: str, rows: Rows, root: Path, batched: bool) -> float:
    """Seconds from opening ``name``'s SDK run until it is closed, for ``rows``."""
    start = time.perf_counter()
    sdk = DIRECT[name](root)
    if batched:
        sdk.batch(rows)
    else:
        for i, values in rows:
            sdk.step(i, values)
    sdk.close()
    return time.perf_counter() - start


def time_per_step(name: str) -> Callable[[int, Path], float]:
    """``(steps, root) -> seconds`` with ``name``'s SDK called once per step on
    ``values(i)``: the baseline of the single-backend benchmarks."""
    from benchmarks.common import values

    return lambda steps, root: time_direct(name, [(i, values(i)) for i in range(steps)],
                                           root, batched=False)


def open_all(names: Iterable[str], root: Path) -> list[Any]:
    """One open SDK run per name (for the fan-out loop)."""
    return [DIRECT[name](root / name) for name in names]
