"""``UnilogLogger``: a Lightning logger whose experiment is a unilog :class:`~unilog.Run`.

Lightning drives it like any of its own loggers; every record then reaches
all of the run's backends, each on its own worker thread. Choices (see
docs/lightning.md):

- The run is created lazily, on rank zero only, the first time Lightning (or
  the user) touches ``experiment``; other ranks get Lightning's do-nothing
  experiment. The run id, project and folder are fixed in the constructor, so
  ``version``, ``log_dir`` and the checkpoint folder are known at once.
- ``save_dir`` is the run directory: Lightning makes it ``trainer.log_dir``
  (for any logger but its CSV and TensorBoard ones), where LightningCLI saves
  its ``config.yaml`` and profilers write; the runs root would be shared by
  every run.
- ``finalize("success")`` finishes the run (``finished``), ``finalize("failed")``
  finishes it as ``failed`` (``killed`` for a KeyboardInterrupt). Any other
  status (Lightning's SLURM requeue handler sends ``"finished"`` before the
  job is requeued) only flushes: the training goes on elsewhere.
- After ``finalize``, reading ``experiment`` gives the finished run: it never
  reopens it. Logging through the logger (a ``validate``/``test``/second
  ``fit``) resumes the same run.
- Steps: Lightning's own step whenever it does not go back. A new Trainer
  restarts Lightning's count at 0; from then on its steps are shifted to
  follow everything already written (nothing is overwritten), Lightning's
  own step kept as ``trainer/global_step``.
- Pickling (spawn-based strategies pickle the trainer) hands the run over:
  an open run is finished, and the copy resumes it on first use, so two
  processes never write one run at once.
"""

from __future__ import annotations

import sys
from argparse import Namespace
from typing import Any

from lightning.pytorch.loggers.logger import Logger, rank_zero_experiment
from lightning.pytorch.utilities.rank_zero import rank_zero_only

import unilog
from unilog import _settings as settings
from unilog._config import to_plain
from unilog.errors import ConfigError, UnilogError
# Imports neither hydra nor omegaconf: both answer "not under Hydra" unless the app runs it.
from unilog.hydra import hydra_names, log_hydra_config
from unilog.lightning.checkpoints import CHECKPOINT_MODES, CheckpointLogger

#: Lightning's status names, mapped to unilog's ``(status, exit_code)``.
_FINAL_STATUS = {"success": ("finished", 0), "failed": ("failed", 1)}

#: The key that keeps Lightning's own step on rows written at another step.
GLOBAL_STEP_KEY = "trainer/global_step"


class UnilogLogger(Logger):
    """A Lightning logger that logs through unilog to every backend at once.

    ``UnilogLogger(project="digits", backends=["csv", "tensorboard"], config=cfg,
    log_checkpoints="best")``. Every argument of :func:`unilog.init` is a
    parameter of its own (``name``, ``dir``, ``tags``, ``notes``, ``group``,
    ``mode``, ``id``, ``resume``, ``on_error``, ``isolation``, ``save_code``,
    ``source_files``), so LightningCLI and Hydra can
    set each one (``--trainer.logger.dir=runs``).

    :param log_checkpoints: which of ``ModelCheckpoint``'s files become
        artifacts: ``False``; ``"best"`` (after each save that changes the best,
        alias ``best``); ``"last"`` (the latest and the best checkpoint, once,
        when training ends, aliases ``latest`` and ``best``); ``"all"`` (every
        file, right after it is saved; ``latest`` on the newest, ``best`` on
        the best).
    :param checkpoint_name: the artifact name checkpoints are versions of.
    :param resume: as in :func:`unilog.init`, for the first start of the run;
        the logger resumes its own run later (after ``finalize``, in a copy)
        by itself.
    :param prefix: put before every metric key, joined by ``LOGGER_JOIN_CHAR``
        (``prefix="tmp"``: ``loss`` -> ``tmp-loss``), as Lightning's own loggers do;
        hyperparameters keep their names.
    """

    #: What joins ``prefix`` and a key: ``"-"``, as in Lightning's CSV, TensorBoard,
    #: MLflow and wandb loggers. A subclass may set ``"/"`` to nest the keys instead.
    LOGGER_JOIN_CHAR = "-"

    def __init__(self, project: str | None = None, backends: Any = None, config: Any = None,
                 log_checkpoints: bool | str = False, checkpoint_name: str = "model", *,
                 name: str | None = None, dir: str | None = None,
                 tags: list[str] | None = None, notes: str | None = None,
                 group: str | None = None, mode: str | None = None, id: str | None = None,
                 resume: str | None = None, on_error: str = "warn", prefix: str = "",
                 isolation: str | None = None, save_code: bool | None = None,
                 source_files: list[str] | None = None, entity: str | None = None):
        super().__init__()
        if log_checkpoints not in CHECKPOINT_MODES:
            raise ConfigError(f"log_checkpoints must be one of {CHECKPOINT_MODES}, "
                              f"not {log_checkpoints!r}")
        # Resolved now, not at the first use: log_dir, the checkpoint folder and a
        # pickled copy in another process all name the same folder.
        self._project = project or settings.default_project()
        self._dir = settings.resolve_dir(dir)
        self._id = str(id or settings.new_run_id())
        self._disabled = settings.resolve_mode(mode) == "disabled"
        job = hydra_names()  # under Hydra: a multirun's group, the job's overrides
        self._init_kwargs = dict(project=self._project, name=name or job.get("name"),
                                 config=config, backends=backends, dir=str(self._dir),
                                 tags=tags, notes=notes,
                                 group=group or job.get("group"), mode=mode,
                                 id=self._id, on_error=on_error, isolation=isolation,
                                 save_code=save_code, source_files=source_files,
                                 entity=entity)
        self._resume = resume
        # A run under an id this logger made up can only be this logger's (or a
        # copy's): it is resumed if it exists. The user's own id follows their resume.
        self._may_exist = id is None
        self._prefix = prefix
        self._run: unilog.Run | None = None
        self._checkpoints = CheckpointLogger(log_checkpoints, checkpoint_name)
        # The step mapping, kept across finalize, resume and pickling:
        self._offset = 0  # added to Lightning's step once a new Trainer restarted its count
        self._high = -1  # the highest step written through this logger
        self._end_step: int | None = None  # the run's step when this logger last ended it
        self._fresh = False  # resumed, and nothing written since

    # -- where things are ------------------------------------------------------

    @property
    def name(self) -> str:
        """The unilog project (Lightning's experiment name)."""
        return self._project

    @property
    def version(self) -> str:
        """The unilog run id."""
        return self._id

    @property
    def save_dir(self) -> str | None:
        """The run directory, as ``log_dir``: Lightning makes it ``trainer.log_dir``.

        Lightning's ``ModelCheckpoint`` (without ``dirpath``) saves into
        ``<save_dir>/<name>/<version>/checkpoints``, which is inside the run
        directory too. None for a disabled run (``mode="disabled"``), which
        writes nothing under unilog's ``dir``: Lightning then uses the
        Trainer's ``default_root_dir``.
        """
        return self.log_dir

    @property
    def root_dir(self) -> str:
        """``<dir>/<project>``: the folder of the project's runs."""
        return str(self._dir / self._project)

    @property
    def log_dir(self) -> str | None:
        """The run directory, ``<dir>/<project>/<id>``; None for a disabled run."""
        if self._disabled:
            return None
        return str(self._dir / self._project / self._id)

    # -- the run -----------------------------------------------------------------

    @property
    def run(self) -> unilog.Run | None:
        """The unilog Run if one was created (None before first use and on ranks
        other than zero); never creates or resumes one (``logger.run.use_artifact(...)``)."""
        return self._run

    @property
    @rank_zero_experiment
    def experiment(self) -> unilog.Run:
        """The unilog Run: created (or, in a pickled copy, resumed) on first use.

        After ``finalize`` it is the finished run, as it is: reading it never
        reopens the run (its backends, its status). Logging through the logger
        does; ``logger.experiment.log(...)`` on a finished run is ignored with a warning.
        """
        if self._run is None:
            self._start()
        return self._run

    def _start(self) -> None:
        resume = "allow" if self._may_exist else self._resume
        self._run = unilog.init(**self._init_kwargs, resume=resume,
                                rank_zero_only=False)  # Lightning decides the rank
        if not self._run.resumed:
            log_hydra_config(self._run)  # the job's .hydra/ folder, as unilog.hydra.init
        self._may_exist = True  # from now on, every start continues this run
        self._fresh = True

    def _writable(self) -> unilog.Run:
        """The run to write to: a run that ``finalize`` ended is resumed (same id)."""
        if self._run is not None and self._run.finished:
            self._run = None
        return self.experiment

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace | Any, *args: Any,
                        **kwargs: Any) -> None:
        """Merge ``params`` (dict, Namespace, DictConfig, a LightningModule's
        ``hparams``) into the run's config; later keys win, as in ``run.config.update``.

        After ``finalize``, hyperparameters the run already has are not a reason
        to reopen it (Lightning logs them again at every ``validate``/``test``/``predict``).
        """
        if (self._run is not None and self._run.finished
                and _contained(to_plain(params), self._run.config.as_dict())):
            return
        self._writable().config.update(params)

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Log ``metrics`` at Lightning's step (see the module docstring). Tensors
        are passed through as they are (no ``.item()``, no device sync); media
        values are welcome too."""
        if self._prefix:
            metrics = {f"{self._prefix}{self.LOGGER_JOIN_CHAR}{k}": v for k, v in metrics.items()}
        run = self._writable()
        if step is None:
            run.log(metrics)
            self._high = max(self._high, run.step - 1)
        else:
            lightning_step = _as_step(step)
            step = self._step_for(run, lightning_step)
            if self._offset:
                metrics = {**metrics, GLOBAL_STEP_KEY: lightning_step}
            run.log(metrics, step=step)
            self._high = max(self._high, step)
        self._fresh = False

    def _step_for(self, run: unilog.Run, lightning_step: int) -> int:
        """The run's step for Lightning's ``lightning_step``."""
        step = lightning_step + self._offset
        if step >= run.step:
            return step
        if self._fresh and step == self._end_step and _reopen_last_row(run, step):
            # validate/test after fit (or test after validate): Lightning logs at the
            # step the run ended at, as CSVLogger does; the resumed run starts after it.
            return step
        # Lightning's count went back: a new Trainer. Continue after all that was written.
        target = max(run.step, self._high + 1)
        self._offset = target - lightning_step
        return target

    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """Not recorded: unilog has no model-graph record (TensorBoard's own logger does)."""

    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Called by ``ModelCheckpoint`` after each save: log it per ``log_checkpoints``."""
        if self._checkpoints.mode:
            self._checkpoints.after_save(self._writable(), checkpoint_callback)

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
        if status == "failed" and isinstance(sys.exc_info()[1], KeyboardInterrupt):
            unilog_status, code = "killed", 130  # Lightning calls us in its except
        self._end(status=unilog_status, exit_code=code, quiet=status != "success")

    def _end(self, status: str = "finished", exit_code: int = 0, quiet: bool = False) -> None:
        self._end_step = self._run.step
        try:
            self._run.finish(exit_code=exit_code, status=status)
        except UnilogError:
            if not quiet:
                raise
            # an exception is already on its way up: never replace it

    def __getstate__(self) -> dict[str, Any]:
        """What a pickled copy gets: everything but the run.

        A run (threads, open files, SDK clients) cannot travel to another process;
        spawn-based strategies (``ddp_spawn``) pickle the trainer. Pickling hands
        the run over: an open run is finished here, and the copy resumes it on
        first use, so two processes never write one run at once.
        """
        if self._run is not None and not self._run.finished:
            self._end()
        self._may_exist = True  # the copy may start the run: this logger then resumes it
        state = self.__dict__.copy()
        state["_run"] = None
        return state


def _contained(new: Any, current: Any) -> bool:
    """True if every key of ``new`` (nested) has the same value in ``current``."""
    if isinstance(new, dict) and isinstance(current, dict):
        return all(k in current and _contained(v, current[k]) for k, v in new.items())
    return new == current


def _reopen_last_row(run: unilog.Run, step: int) -> bool:
    """Make a run that was just resumed write its next row at ``step``, its last
    step before it ended, instead of the step after it; False if it cannot.

    A workaround: unilog's public API resumes a run at the step after its last
    row (``unilog.init(resume=...)`` has no way to say otherwise), while
    Lightning logs ``validate`` and ``test`` after ``fit`` at the step ``fit``
    ended at. Until unilog's resume can continue at the run's own last step,
    this sets the run's step under its lock, only right after the resume,
    before anything was written, and only back by exactly one step.
    """
    lock = getattr(run, "_lock", None)
    if lock is None or run.mode == "disabled":
        return False
    with lock:
        if getattr(run, "_step", None) != step + 1 or getattr(run, "_pending", True):
            return False
        run._step = step
    return True


def _as_step(step: Any) -> int:
    """Lightning's step as an int; a float or tensor step (``self.log("step", ...)``) is rounded."""
    if isinstance(step, float) or hasattr(step, "item"):
        step = float(step)
        if not step.is_integer():
            raise ConfigError(f"Lightning passed step {step}, which is not a whole number")
        return int(step)
    return step
