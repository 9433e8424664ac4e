"""Lightning (issue 6, items 1 and 6): ``UnilogLogger`` against Lightning's own loggers.

1. **Caller-side cost.** The same 4-scalar records driven through Lightning's
   own fan-out, ``_LoggerConnector.log_metrics`` (per logger ``log_metrics`` then
   ``save``, on the training thread), into Lightning's ``CSVLogger``,
   ``TensorBoardLogger``, ``MLFlowLogger`` (a local SQLite store) and
   ``WandbLogger(offline=True)`` together, each of them alone, and one
   ``UnilogLogger`` over the four matching backends. Every experiment is opened
   before timing (start-up is section 4); then the median per step on the
   caller's thread, and the time from the first step until ``finalize("success")``
   returns (for ``WandbLogger`` also ``wandb.finish()``, which its ``finalize``
   leaves to the user: until then the run's file is not complete).
2. **Epoch time.** A small MLP on random data, CPU (one torch thread), fitted
   with ``UnilogLogger(backends=["csv", "tensorboard"])``, with ``[CSVLogger,
   TensorBoardLogger]``, with a ``DummyLogger`` (Lightning's own per-step
   logging work, a logger that does nothing) and with ``logger=False`` (the
   floor), at ``log_every_n_steps`` 1 and 50 (Lightning's default); a callback
   times ``on_train_epoch_start`` -> ``on_train_epoch_end``, the first epoch of
   each fit left out as warm-up. Lightning's fan-out is timed inside the fits
   too: there, between training steps, it runs with cold caches and sleeping
   workers, and costs several times what the loop of part 1 shows.

The variants alternate inside each repetition (rotated, so none always runs
first); figures are medians with [min-max], and the epoch-time ratio is also
given per fit, side by side, which cancels most of the machine's drift.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

from benchmarks.common import fmt, values
from benchmarks.plots import bar_plot

Rows = list[tuple[str, str, str]]

#: Lightning's loggers and the unilog backend that matches each, in fan-out order.
PAIRS = (("CSVLogger", "csv"), ("TensorBoardLogger", "tensorboard"),
         ("MLFlowLogger", "mlflow"), ("WandbLogger", "wandb"))
TOGETHER = "Lightning's 4 loggers"
UNILOG = "UnilogLogger (4 backends)"
DUMMY = "DummyLogger"


def _quiet() -> None:
    """Lightning's and MLflow's INFO lines and known warnings are noise in a report."""
    import lightning.pytorch  # noqa: F401  (sets its loggers to INFO when imported)

    _quiet_loggers()
    for pattern in (".*LeafSpec.*", ".*does not have many workers.*",
                    ".*is smaller than the logging interval.*", ".*litlogger.*"):
        warnings.filterwarnings("ignore", message=pattern)
    os.environ.setdefault("WANDB_ERROR_REPORTING", "false")  # as the wandb backend does
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def _quiet_loggers() -> None:
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "Experiment with name bench not found. Creating it.": each run's store is fresh.
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)


# -- 1. caller-side cost through Lightning's fan-out --------------------------------


_TEMPLATE: dict[str, Path] = {}  # an empty MLflow SQLite store, made once per process


def _sqlite_store(folder: Path) -> str:
    """A local SQLite MLflow store with its schema already created: a copy of one
    template (creating the schema takes seconds, and start-up is not timed here)."""
    if "db" not in _TEMPLATE:
        from mlflow.tracking import MlflowClient

        _quiet_loggers()  # mlflow sets its own loggers to INFO when imported
        template = Path(tempfile.mkdtemp(prefix="unilog-bench-mlflow-")) / "mlflow.db"
        MlflowClient("sqlite:///" + template.as_posix()).search_experiments()
        _TEMPLATE["db"] = template
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_TEMPLATE["db"], folder / "mlflow.db")
    return "sqlite:///" + (folder / "mlflow.db").as_posix()


def _lightning_logger(kind: str, root: Path) -> Any:
    """One of Lightning's loggers, writing under ``root``, offline, as a user sets it up."""
    from lightning.pytorch import loggers

    if kind == "CSVLogger":
        return loggers.CSVLogger(root, name="bench")
    if kind == "TensorBoardLogger":
        return loggers.TensorBoardLogger(root, name="bench", default_hp_metric=False)
    if kind == "MLFlowLogger":
        return loggers.MLFlowLogger(experiment_name="bench", tracking_uri=_sqlite_store(root),
                                    artifact_location=str(root / "artifacts"))
    if kind == "WandbLogger":
        import wandb

        from unilog_plugins.wandb_backend import DEFAULT_SETTINGS

        # The settings unilog's wandb backend uses, so both write the same way.
        return loggers.WandbLogger(project="bench", save_dir=str(root), offline=True,
                                   reinit="create_new",
                                   # mode in the settings too: after other sections' runs in
                                   # this process, wandb otherwise asked for a login here
                                   settings=wandb.Settings(mode="offline", **DEFAULT_SETTINGS))
    raise ValueError(kind)


def _unilog_logger(backends: list[str], root: Path) -> Any:
    from unilog.lightning import UnilogLogger

    options: Any = backends
    if "mlflow" in backends:
        options = [{"name": "mlflow", "tracking_uri": _sqlite_store(root / "mlflow")}
                   if b == "mlflow" else b for b in backends]
    return UnilogLogger(project="bench", backends=options, dir=root, mode="offline")


def _open(logger: Any) -> None:
    """Open the logger's experiment (and, for unilog, wait until every backend is open)."""
    experiment = logger.experiment
    if type(logger).__name__ == "UnilogLogger":
        assert experiment.flush(timeout=120), "a unilog backend did not open"


def _finalize(logger: Any) -> int:
    """Finalize as Lightning does at the end of a fit; returns the rows unilog dropped."""
    logger.finalize("success")
    if type(logger).__name__ == "WandbLogger":
        logger.experiment.finish()  # WandbLogger.finalize leaves the run open
    if type(logger).__name__ != "UnilogLogger":
        return 0
    report = logger.run.finish()  # idempotent: the report of the finish finalize did
    if any(r["errors"] or r["failed"] for r in report.values()):
        raise RuntimeError(f"a unilog backend failed: {report}")
    return sum(r["dropped"] for r in report.values())


def fan_out(loggers: list[Any], steps: int) -> tuple[float, float, int]:
    """Drive ``steps`` records through Lightning's own ``_LoggerConnector.log_metrics``.

    Returns (median ns per step on the caller's thread, seconds from the first
    step until every logger is finalized, rows unilog dropped).
    """
    from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import (
        _LoggerConnector,
    )

    for logger in loggers:
        _open(logger)
    connector = _LoggerConnector(SimpleNamespace(loggers=loggers))  # only .loggers is read
    log_metrics, clock = connector.log_metrics, time.perf_counter_ns
    samples = []
    start = time.perf_counter()
    gc.disable()
    try:
        for i in range(steps):
            step_values = values(i)
            before = clock()
            log_metrics(step_values, step=i)
            samples.append(clock() - before)
    finally:
        gc.enable()
    dropped = sum(_finalize(logger) for logger in loggers)
    return statistics.median(samples), time.perf_counter() - start, dropped


def caller_cost(steps: int, repeats: int, root: Path,
                alone: bool = True) -> tuple[Rows, dict[str, list[float]]]:
    """Per-step caller cost and end-to-end time: Lightning's loggers (together and,
    with ``alone``, each by itself) against UnilogLogger."""
    from lightning.pytorch.loggers.logger import DummyLogger

    kinds = [kind for kind, _ in PAIRS]
    variants: dict[str, Callable[[Path], list[Any]]] = {
        TOGETHER: lambda r: [_lightning_logger(k, r) for k in kinds],
        UNILOG: lambda r: [_unilog_logger([b for _, b in PAIRS], r)],
        DUMMY: lambda r: [DummyLogger()],
    }
    if alone:
        variants.update({k: (lambda r, k=k: [_lightning_logger(k, r)]) for k in kinds})
    per_step: dict[str, list[float]] = {name: [] for name in variants}
    end_to_end: dict[str, list[float]] = {name: [] for name in variants}
    names, dropped = list(variants), 0
    for rep in range(repeats):
        for j in range(len(names)):
            name = names[(j + rep) % len(names)]
            folder = root / f"{rep}-{names.index(name)}"
            ns, seconds, missed = fan_out(variants[name](folder), steps)
            dropped += missed
            per_step[name].append(ns / 1e3)
            end_to_end[name].append(seconds)
            shutil.rmtree(folder, ignore_errors=True)
    med = statistics.median
    ratio = med(per_step[TOGETHER]) / med(per_step[UNILOG])
    e2e_ratio = med(end_to_end[UNILOG]) / med(end_to_end[TOGETHER])
    rows = [
        (f"{steps:,} steps x 4 scalars through Lightning's own fan-out (log_metrics + save "
         "per logger) into CSVLogger + TensorBoardLogger + MLFlowLogger (SQLite) + "
         "WandbLogger (offline): per step on the caller's thread",
         fmt(per_step[TOGETHER], "us", 1, 1), "-"),
        *((f"same, {name} alone", fmt(per_step[name], "us", 1, 1), "-")
          for name in kinds if name in per_step),
        ("same, one DummyLogger: the cost of Lightning's fan-out itself (values converted "
         "to scalars, the loop), paid whatever the loggers", fmt(per_step[DUMMY], "us", 1, 2),
         "-"),
        ("same, one UnilogLogger(backends=[csv, tensorboard, mlflow, wandb], mode=offline)",
         f"{fmt(per_step[UNILOG], 'us', 1, 2)}; Lightning's 4 / UnilogLogger **{ratio:,.0f}x**",
         "far below the fan-out (>= 100x)"),
        ("end to end, first step until finalize(\"success\") returns (wandb.finish() "
         "included): Lightning's 4 loggers", fmt(end_to_end[TOGETHER]), "-"),
        ("end to end, same: UnilogLogger (every backend flushed and closed)",
         f"{fmt(end_to_end[UNILOG])}; UnilogLogger / Lightning's 4 {e2e_ratio:.2f}x; rows "
         f"dropped: {dropped}", "0 dropped"),
    ]
    return rows, per_step


# -- 2. epoch time of a small model --------------------------------------------------


class _EpochTimer:
    """A Lightning callback recording each training epoch's wall time."""

    def __new__(cls):  # subclassed lazily: lightning is imported only when this runs
        from lightning.pytorch.callbacks import Callback

        class EpochTimer(Callback):
            def __init__(self):
                self.times: list[float] = []

            def on_train_epoch_start(self, trainer, pl_module):
                self._start = time.perf_counter()

            def on_train_epoch_end(self, trainer, pl_module):
                self.times.append(time.perf_counter() - self._start)

        return EpochTimer()


def _module(features: int = 32, hidden: int = 64, classes: int = 4) -> Any:
    import lightning.pytorch as pl
    import torch
    from torch import nn

    class SmallMLP(pl.LightningModule):
        """features -> hidden -> hidden -> classes; logs 4 scalars per step."""

        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(),
                                     nn.Linear(hidden, classes))

        def forward(self, x):
            return self.net(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            logits = self(x)
            loss = nn.functional.cross_entropy(logits, y)
            self.log_dict({"train/loss": loss,
                           "train/acc": (logits.argmax(1) == y).float().mean(),
                           "train/logit_mean": logits.detach().mean(),
                           "train/lr": 0.05})
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    return SmallMLP()


def _loader(batches: int, batch: int = 16, features: int = 32, classes: int = 4) -> Any:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batches * batch, features, generator=generator)
    y = torch.randint(0, classes, (batches * batch,), generator=generator)
    return DataLoader(TensorDataset(x, y), batch_size=batch, shuffle=False)


def _epoch_loggers(kind: str, root: Path) -> Any:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from lightning.pytorch.loggers.logger import DummyLogger

    if kind == "floor":
        return False
    if kind == "dummy":  # Lightning's own per-step logging work, with a logger that does nothing
        return DummyLogger()
    if kind == "lightning":
        return [CSVLogger(root, name="pl"),
                TensorBoardLogger(root, name="pl", default_hp_metric=False)]
    from unilog.lightning import UnilogLogger

    return UnilogLogger(project="bench", backends=["csv", "tensorboard"], dir=root,
                        mode="offline")


@contextlib.contextmanager
def _timed_fan_out(samples: list[int]) -> Iterator[None]:
    """Time each call of Lightning's ``_LoggerConnector.log_metrics`` (its fan-out) in a fit."""
    from lightning.pytorch.trainer.connectors.logger_connector.logger_connector import (
        _LoggerConnector,
    )

    original, clock = _LoggerConnector.log_metrics, time.perf_counter_ns

    def log_metrics(self, metrics, step=None):
        before = clock()
        original(self, metrics, step)
        if metrics:  # Lightning also calls it with nothing to log, and returns at once
            samples.append(clock() - before)

    _LoggerConnector.log_metrics = log_metrics
    try:
        yield
    finally:
        _LoggerConnector.log_metrics = original


def fit_epochs(kind: str, every: int, epochs: int, batches: int,
               root: Path) -> tuple[list[float], float]:
    """One fit: its epoch times (s), the first (warm-up) epoch left out, and the
    median time (us) of Lightning's fan-out per logged step (0 without a logger)."""
    import lightning.pytorch as pl
    import torch

    torch.manual_seed(0)
    timer = _EpochTimer()
    trainer = pl.Trainer(max_epochs=epochs + 1, accelerator="cpu", devices=1,
                         logger=_epoch_loggers(kind, root), log_every_n_steps=every,
                         callbacks=[timer], enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0)
    samples: list[int] = []
    with _timed_fan_out(samples):
        trainer.fit(_module(), _loader(batches))
    return timer.times[1:], statistics.median(samples) / 1e3 if samples else 0.0


#: (logger, log_every_n_steps) fitted in each repetition.
EPOCH_VARIANTS = (("floor", 1), ("dummy", 1), ("lightning", 1), ("unilog", 1),
                  ("lightning", 50), ("unilog", 50))


def epoch_time(epochs: int, batches: int, repeats: int, root: Path) -> tuple[Rows, dict]:
    """Median epoch time per variant, alternated in each repetition, and the ratios.

    torch runs on one thread here: a model this small gains nothing from
    intra-op threads, and on a shared 2-core machine OpenMP's spinning threads
    made the same epoch vary 5x from one fit to the next.
    """
    import torch

    times: dict[tuple[str, int], list[float]] = {v: [] for v in EPOCH_VARIANTS}
    fan_out_us: dict[tuple[str, int], list[float]] = {v: [] for v in EPOCH_VARIANTS}
    per_fit: dict[int, list[float]] = {1: [], 50: []}  # unilog / Lightning's, per repetition
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for rep in range(repeats):
            medians = {}
            for j in range(len(EPOCH_VARIANTS)):
                variant = EPOCH_VARIANTS[(j + rep) % len(EPOCH_VARIANTS)]
                folder = root / f"epochs-{rep}-{variant[0]}-{variant[1]}"
                fit, us = fit_epochs(*variant, epochs, batches, folder)
                times[variant] += fit
                fan_out_us[variant].append(us)
                medians[variant] = statistics.median(fit)
                shutil.rmtree(folder, ignore_errors=True)
            for every in per_fit:
                per_fit[every].append(medians[("unilog", every)] / medians[("lightning", every)])
    finally:
        torch.set_num_threads(threads)
    return _epoch_rows(times, fan_out_us, per_fit, epochs, batches, repeats), times


def _epoch_rows(times: dict, fan_out_us: dict, per_fit: dict[int, list[float]], epochs: int,
                batches: int, repeats: int) -> Rows:
    med = statistics.median
    floor = med(times[("floor", 1)])
    head = (f"small MLP, {batches} steps/epoch (batch 16, CPU, 1 torch thread), epoch time, "
            f"median of {epochs} epoch(s) x {repeats} fit(s) (first epoch of each left out)")
    names = {"dummy": "DummyLogger (Lightning's own logging path, a logger doing nothing)",
             "lightning": "[CSVLogger, TensorBoardLogger]",
             "unilog": "UnilogLogger(backends=[csv, tensorboard])"}
    rows: Rows = [(f"{head}: logger=False (the floor)", fmt(times[("floor", 1)], "ms", 1e3, 1),
                   "-")]
    for kind, every in EPOCH_VARIANTS[1:]:
        variant = (kind, every)
        value = (f"{fmt(times[variant], 'ms', 1e3, 1)}; {med(times[variant]) / floor:.3f}x the "
                 f"floor; Lightning's fan-out {med(fan_out_us[variant]):.0f} us per logged step")
        target = "-"
        if kind == "unilog":
            ratio = med(times[variant]) / med(times[("lightning", every)])
            value += (f"; UnilogLogger / Lightning's **{ratio:.3f}x** (per fit, side by side: "
                      f"{fmt(per_fit[every], 'x', 1, 3)})")
            target = "<= 1.0x"
        rows.append((f"log_every_n_steps={every}: {names[kind]}", value, target))
    return rows


# -- the section -----------------------------------------------------------------------


def _warm_up(root: Path) -> None:
    """Import the SDKs, start wandb-core and run a first fit, outside every timing."""
    fan_out([_lightning_logger(k, root / "warm-up") for k, _ in PAIRS], 3)
    fan_out([_unilog_logger([b for _, b in PAIRS], root / "warm-up-unilog")], 3)
    fit_epochs("unilog", 1, 1, 4, root / "warm-up-fit")
    fit_epochs("lightning", 1, 1, 4, root / "warm-up-fit")


def _plots(out: Path, per_step: dict[str, list[float]], times: dict) -> None:
    names = [name for name in [k for k, _ in PAIRS] + [TOGETHER, DUMMY, UNILOG]
             if name in per_step]
    samples = [per_step[name] for name in names]
    bar_plot(out / "lightning_caller_cost.png",
             "Per step on the training thread, Lightning's fan-out", "us per step (log)",
             names, [statistics.median(s) for s in samples], [min(s) for s in samples],
             [max(s) for s in samples], logy=True)
    labels = {("floor", 1): "logger=False", ("dummy", 1): "DummyLogger, every 1",
              ("lightning", 1): "CSV+TB loggers, every 1",
              ("unilog", 1): "UnilogLogger, every 1", ("lightning", 50): "CSV+TB loggers, every 50",
              ("unilog", 50): "UnilogLogger, every 50"}
    keys = list(labels)
    bar_plot(out / "lightning_epoch_time.png", "Epoch time of a small MLP (CPU)", "ms per epoch",
             [labels[k] for k in keys], [statistics.median(times[k]) * 1e3 for k in keys],
             [min(times[k]) * 1e3 for k in keys], [max(times[k]) * 1e3 for k in keys])


def run(quick: bool, out: Path) -> Rows:
    """Rows of (figure, measured, target); plots into ``out``."""
    import importlib.util

    if importlib.util.find_spec("lightning") is None:
        return [("Lightning", "skipped: lightning is not installed", "-")]
    _quiet()
    root = Path(tempfile.mkdtemp(prefix="unilog-bench-lightning-"))
    try:
        if not quick:  # the smoke pass only checks that every path runs
            _warm_up(root)
        steps, repeats = (20, 1) if quick else (500, 3)
        rows, per_step = caller_cost(steps, repeats, root, alone=not quick)
        epochs, batches, fits = (1, 10, 1) if quick else (5, 150, 6)
        epoch_rows, times = epoch_time(epochs, batches, fits, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if "db" in _TEMPLATE:
            shutil.rmtree(_TEMPLATE.pop("db").parent, ignore_errors=True)
    _plots(out, per_step, times)
    return rows + epoch_rows


if __name__ == "__main__":
    import sys

    for row in run("--quick" in sys.argv, Path("benchmarks/results")):
        print(" | ".join(row))
