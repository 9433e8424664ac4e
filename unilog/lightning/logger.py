"""``UnilogLogger``: a Lightning logger whose experiment is a unilog :class:`~unilog.Run`.

Lightning drives it like any of its own loggers; every record then reaches
all of the run's backends, each on its own worker thread. Choices (see
docs/lightning.md):

- The run is created lazily, on rank zero only, the first time Lightning (or
  the user) touches ``experiment``; other ranks get Lightning's do-nothing
  experiment. The run id is fixed in the constructor, so ``version`` and the
  checkpoint folder (``<dir>/<project>/<id>/checkpoints``) are known at once.
- ``finalize("success")`` finishes the run (``finished``), ``finalize("failed")``
  finishes it as ``failed`` (``killed`` for a KeyboardInterrupt). Any other
  status (Lightning's SLURM requeue handler sends ``"finished"`` before the
  job is requeued) only flushes: the training goes on elsewhere.
- Logging after ``finalize`` (``trainer.test`` after ``trainer.fit``) resumes
  the same run. Steps may not go backwards in unilog, so a record Lightning
  sends at a step below the run's current step is written at the current
  step, with Lightning's own step kept as ``trainer/global_step``.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

import unilog
from unilog import settings
from unilog.errors import ConfigError, UnilogError
from unilog.lightning.checkpoints import CHECKPOINT_MODES, CheckpointLogger

#: Lightning's status names, mapped to unilog's ``(status, exit_code)``.
_FINAL_STATUS = {"success": ("finished", 0), "failed": ("failed", 1)}


class UnilogLogger(Logger):
    """A Lightning logger that logs through unilog to every backend at once.

    ``UnilogLogger(project="digits", backends=["csv", "tensorboard"], config=cfg,
    log_checkpoints="best")``; every other keyword is passed to
    :func:`unilog.init` (``name``, ``dir``, ``tags``, ``notes``, ``group``,
    ``mode``, ``id``, ``resume``, ``on_error``).

    :param log_checkpoints: which of ``ModelCheckpoint``'s files become
        artifacts: ``False``; ``"best"`` (after each save that changes the best,
        alias ``best``); ``"last"`` (the latest and the best checkpoint, once,
        when training ends, aliases ``latest`` and ``best``); ``"all"`` (every
        file, right after it is saved; ``latest`` on the newest, ``best`` on
        the best).
    :param checkpoint_name: the artifact name checkpoints are versions of.
    """

    def __init__(self, project: str | None = None, backends: Any = None, config: Any = None,
                 log_checkpoints: bool | str = False, checkpoint_name: str = "model",
                 **init_kwargs: Any):
        super().__init__()
        if log_checkpoints not in CHECKPOINT_MODES:
            raise ConfigError(f"log_checkpoints must be one of {CHECKPOINT_MODES}, "
                              f"not {log_checkpoints!r}")
        unknown = set(init_kwargs) - _INIT_ARGUMENTS
        if unknown:
            raise ConfigError(f"UnilogLogger got unknown argument(s) {sorted(unknown)}; it "
                              f"takes unilog.init's: {sorted(_INIT_ARGUMENTS)}")
        init_kwargs.setdefault("id", settings.new_run_id())
        self._init_kwargs = dict(init_kwargs, project=project, backends=backends,
                                 config=config)
        self._id = str(init_kwargs["id"])
        self._run: unilog.Run | None = None
        self._checkpoints = CheckpointLogger(log_checkpoints, checkpoint_name)

    # -- where things are ------------------------------------------------------

    @property
    def name(self) -> str:
        """The unilog project (Lightning's experiment name)."""
        if self._run is not None:
            return self._run.project
        return self._init_kwargs["project"] or settings.default_project()

    @property
    def version(self) -> str:
        """The unilog run id."""
        return self._id

    @property
    def save_dir(self) -> str:
        """The root of unilog's local files (``dir``, ``$UNILOG_DIR``, else ``./runs``)."""
        return str(settings.resolve_dir(self._init_kwargs.get("dir")))

    @property
    def root_dir(self) -> str:
        """``<save_dir>/<project>``."""
        return str(Path(self.save_dir) / self.name)

    @property
    def log_dir(self) -> str:
        """The run directory, ``<save_dir>/<project>/<id>``; checkpoints go below it."""
        return str(Path(self.root_dir) / self.version)

    # -- the run -----------------------------------------------------------------

    @property
    def run(self) -> unilog.Run | None:
        """The unilog Run if one was created (None before first use and on ranks
        other than zero); unlike ``experiment``, never creates or resumes one, so it
        is the way to reach a run after ``finalize`` (``logger.run.use_artifact(...)``)."""
        return self._run

    @property
    @rank_zero_experiment
    def experiment(self) -> unilog.Run:
        """The unilog Run (created on first use; resumed when used again after ``finalize``)."""
        if self._run is None or self._run.finished:
            kwargs = dict(self._init_kwargs, rank_zero_only=False)  # Lightning decides the rank
            if self._run is not None:
                kwargs["resume"] = "allow"
            self._run = unilog.init(**kwargs)
        return self._run

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | Any, *args: Any,
                        **kwargs: Any) -> None:
        """Merge ``params`` (dict, Namespace, DictConfig, a LightningModule's
        ``hparams``) into the run's config; later keys win, as in ``run.config.update``."""
        self.experiment.config.update(params)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log ``metrics`` at Lightning's step. Tensors are passed through as they
        are (no ``.item()``, no device sync); media values are welcome too."""
        run = self.experiment  # run.log flattens into a fresh dict: no copy needed here
        if step is None:
            run.log(metrics)
            return
        step = _as_step(step)
        if step < run.step:
            # After a finalize + resume (fit, then test), Lightning's step is behind.
            metrics = {**metrics, "trainer/global_step": step}
            step = run.step
        run.log(metrics, step=step)

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Not recorded: unilog has no model-graph record (TensorBoard's own logger does)."""

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Called by ``ModelCheckpoint`` after each save: log it per ``log_checkpoints``."""
        self._checkpoints.after_save(self.experiment, checkpoint_callback)

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: ``"success"`` -> finished, ``"failed"`` -> failed (killed on
        Ctrl-C); any other status only flushes (see the module docstring)."""
        if self._run is None or self._run.finished:
            return
        self._checkpoints.at_end(self._run)
        if status not in _FINAL_STATUS:
            self._run.flush()
            return
        unilog_status, code = _FINAL_STATUS[status]
        if status == "success":
            self._run.finish(exit_code=code, status=unilog_status)
            return
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):  # Lightning calls us in its except
            unilog_status, code = "killed", 130
        try:
            self._run.finish(exit_code=code, status=unilog_status)
        except UnilogError:
            pass  # an exception is already on its way up: never replace it

    def __getstate__(self) -> dict[str, Any]:
        # Spawn-based strategies pickle the trainer; a run (threads, files) cannot travel.
        state = self.__dict__.copy()
        state["_run"] = None
        return state


_INIT_ARGUMENTS = {"name", "dir", "tags", "notes", "group", "mode", "id", "resume", "on_error"}


def _as_step(step: Any) -> int:
    """Lightning's step as an int; a float or tensor step (``self.log("step", ...)``) is rounded."""
    if isinstance(step, float) or hasattr(step, "item"):
        step = float(step)
        if not step.is_integer():
            raise ConfigError(f"Lightning passed step {step}, which is not a whole number")
        return int(step)
    return step
