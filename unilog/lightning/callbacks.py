"""Lightning callbacks that log what Lightning's own loggers leave out.

- :class:`LogPredictions`: sample predictions of the first validation batch,
  as captioned images and a table, every N epochs.
- :class:`LogHistograms`: histograms of weights and gradients every N steps.
- :class:`StopWhenPruned`: ends ``fit`` when a sweep's pruner stops the trial.

Both log through the trainer's :class:`~unilog.lightning.UnilogLogger` (the
first one, if there are several) at Lightning's current step, so their
records share rows with the metrics of that step; without one they warn once
and do nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.rank_zero import rank_zero_only, rank_zero_warn

import unilog
from unilog.lightning.logger import UnilogLogger


def find_unilog_logger(trainer: Any) -> UnilogLogger | None:
    """The trainer's first :class:`UnilogLogger`, or None."""
    return next((lg for lg in trainer.loggers if isinstance(lg, UnilogLogger)), None)


def trainer_step(trainer: Any) -> int:
    """The step Lightning logs metrics at (its count of optimizer-stepped batches)."""
    loop = getattr(getattr(trainer, "fit_loop", None), "epoch_loop", None)
    return getattr(loop, "_batches_that_stepped", trainer.global_step)


class _UnilogCallback(Callback):
    """Finds the UnilogLogger and logs through it; warns once when there is none."""

    _warned = False

    def _log(self, trainer: Any, values: dict[str, Any]) -> None:
        logger = find_unilog_logger(trainer)
        if logger is None:
            if not self._warned:
                self._warned = True
                rank_zero_warn(f"{type(self).__name__} logs through a UnilogLogger, and the "
                               "trainer has none: nothing is logged")
            return
        logger.log_metrics(values, step=trainer_step(trainer))


def _default_unpack(batch: Any) -> tuple[Any, Any]:
    return batch[0], batch[1]


def _default_predict(module: Any, inputs: Any) -> Any:
    return module(inputs).argmax(dim=-1)


class LogPredictions(_UnilogCallback):
    """Every ``every_n_epochs`` epochs, log the model's predictions for the first
    ``num_samples`` inputs of the first validation batch.

    Each input becomes ``<key>/<i>``, an :class:`unilog.Image` captioned
    ``"pred 3 / true 5"``, and all of them one :class:`unilog.Table` ``<key>/table``
    (columns ``sample``, ``prediction``, ``target``, ``correct``).

    :param unpack: ``batch -> (inputs, targets)``; default ``batch[0], batch[1]``.
    :param predict: ``(module, inputs) -> predictions``; default the argmax of
        ``module(inputs)`` over the last dimension (classification).
    :param images: log the inputs as images (they must be image-shaped:
        ``(C, H, W)``, ``(H, W, C)`` or ``(H, W)``); False logs the table only.
    """

    def __init__(self, every_n_epochs: int = 1, num_samples: int = 8,
                 key: str = "val/predictions", images: bool = True,
                 unpack: Callable[[Any], tuple[Any, Any]] = _default_unpack,
                 predict: Callable[[Any, Any], Any] = _default_predict):
        if every_n_epochs < 1 or num_samples < 1:
            raise ValueError("every_n_epochs and num_samples must be at least 1")
        self.every_n_epochs = every_n_epochs
        self.num_samples = num_samples
        self.key = key
        self.images = images
        self.unpack = unpack
        self.predict = predict

    @rank_zero_only
    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        """On the first validation batch of a chosen epoch: predict and log."""
        if (batch_idx != 0 or dataloader_idx != 0 or trainer.sanity_checking
                or trainer.current_epoch % self.every_n_epochs):
            return
        inputs, targets = self.unpack(batch)
        inputs, targets = inputs[: self.num_samples], targets[: self.num_samples]
        with torch.no_grad():
            predictions = self.predict(pl_module, inputs)
        # Every N epochs, a few values: reading them on the host here is cheap.
        predictions, targets = _as_list(predictions), _as_list(targets)
        rows = [[i, p, t, p == t] for i, (p, t) in enumerate(zip(predictions, targets))]
        values: dict[str, Any] = {f"{self.key}/table": unilog.Table(
            columns=["sample", "prediction", "target", "correct"], data=rows)}
        if self.images:
            for i, (p, t) in enumerate(zip(predictions, targets)):
                values[f"{self.key}/{i}"] = unilog.Image(inputs[i].detach(),
                                                         caption=f"pred {p} / true {t}")
        self._log(trainer, values)


def _as_list(values: Any) -> list:
    return values.tolist() if hasattr(values, "tolist") else list(values)


class LogHistograms(_UnilogCallback):
    """Every ``every_n_steps`` optimizer steps, log a histogram of each parameter
    (``weights/<name>``) and of its gradient (``gradients/<name>``).

    Taken just before the optimizer step, when the gradients are complete.
    Tensors are copied on the device and binned on the backends' workers: no
    device sync on the training thread.
    """

    def __init__(self, every_n_steps: int = 100, weights: bool = True, gradients: bool = True,
                 num_bins: int = 64):
        if every_n_steps < 1:
            raise ValueError("every_n_steps must be at least 1")
        if not (weights or gradients):
            raise ValueError("LogHistograms needs weights=True, gradients=True or both")
        self.every_n_steps = every_n_steps
        self.weights = weights
        self.gradients = gradients
        self.num_bins = num_bins

    @rank_zero_only
    def on_before_optimizer_step(self, trainer: Any, pl_module: Any, optimizer: Any) -> None:
        """Log the histograms when the step is a multiple of ``every_n_steps``."""
        if trainer.global_step % self.every_n_steps:
            return
        values: dict[str, Any] = {}
        for name, param in pl_module.named_parameters():
            if self.weights:
                values[f"weights/{name}"] = unilog.Histogram(param.detach(),
                                                             num_bins=self.num_bins)
            if self.gradients and param.grad is not None:
                values[f"gradients/{name}"] = unilog.Histogram(param.grad.detach(),
                                                               num_bins=self.num_bins)
        self._log(trainer, values)


class StopWhenPruned(Callback):
    """Ends ``fit`` once a sweep's pruner has stopped this trial.

    Under ``unilog.agent`` a trial's run turns ``run.should_stop`` True when the
    sweep's hyperband pruner stops it (docs/sweeps.md); this callback sets
    ``trainer.should_stop`` then, checked after each validation and each training
    epoch, as Optuna's own Lightning pruning callback does. Lightning ends the fit
    normally; the trial is recorded as pruned. Outside a sweep it does nothing.
    """

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        """Stop when the pruner said so."""
        self._check(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        """Stop when the pruner said so (also for fits without validation)."""
        self._check(trainer)

    @staticmethod
    def _check(trainer: Any) -> None:
        logger = find_unilog_logger(trainer)
        run = logger.run if logger is not None else None
        if run is not None and run.should_stop:
            trainer.should_stop = True
