"""unilog: one experiment-logging API in front of every tracking backend.

    run = unilog.init(project="demo", backends=["csv", "tensorboard"], config=cfg)
    run.log({"train/loss": loss})          # tensors welcome: no device sync
    run.log_artifact("model.pt", type="model", aliases=["best"])
    run.finish()

``import unilog`` is cheap: it imports no backend SDK, no torch, no numpy, no
omegaconf, and loads its own machinery (pluggy included) on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from unilog.errors import (
    ArtifactError,
    BackendError,
    BackendNotFound,
    BackendNotInstalled,
    ConfigError,
    InvalidValue,
    KeyCollisionError,
    StepError,
    UnilogError,
    UnilogWarning,
)
from unilog.media import Histogram, Image, Media, Table, Text
from unilog import _current as _current_api
from unilog._current import ConfigView as _ConfigView, SummaryView as _SummaryView, login

if TYPE_CHECKING:
    from unilog.artifacts import Artifact
    from unilog.backend import Backend, Capabilities, KeyRule, Row, RunInfo
    from unilog.hookspecs import hookimpl
    from unilog.read import RunData, read_run
    from unilog.runs import Run

__all__ = [
    "Artifact",
    "ArtifactError",
    "Backend",
    "BackendError",
    "BackendNotFound",
    "BackendNotInstalled",
    "Capabilities",
    "ConfigError",
    "Histogram",
    "Image",
    "InvalidValue",
    "KeyCollisionError",
    "KeyRule",
    "Media",
    "Row",
    "Run",
    "RunData",
    "RunInfo",
    "StepError",
    "Table",
    "Text",
    "UnilogError",
    "UnilogWarning",
    "__version__",
    "agent",
    "config",
    "define_metric",
    "finish",
    "hookimpl",
    "import_run",
    "import_runs",
    "init",
    "log",
    "log_artifact",
    "login",
    "read_run",
    "read_sweep",
    "run",
    "summary",
    "sweep",
    "sync",
    "unwatch",
    "use_artifact",
    "watch",
]

#: The current run: the one the latest ``init`` returned, until it finishes.
run: Run | None = None
#: ``unilog.config.lr``, ``unilog.config["lr"]``: the current run's config, as ``wandb.config``.
config = _ConfigView("config", lambda: run)
#: ``unilog.summary["best"] = x``: the current run's summary, as ``wandb.summary``.
summary = _SummaryView("summary", lambda: run)

_LAZY = {
    "Artifact": "unilog.artifacts",
    "Backend": "unilog.backend",
    "Capabilities": "unilog.backend",
    "KeyRule": "unilog.backend",
    "Row": "unilog.backend",
    "RunInfo": "unilog.backend",
    "hookimpl": "unilog.hookspecs",
    "Run": "unilog.runs",
    "RunData": "unilog.read",
    "read_run": "unilog.read",
    "sweep": "unilog.sweeps",
    "agent": "unilog.sweeps",
    "read_sweep": "unilog.sweeps",
    "sync": "unilog._sync",
    "import_run": "unilog.importers",
    "import_runs": "unilog.importers",
}


def __getattr__(name: str) -> Any:
    # Loaded on first use so that `import unilog` stays within its 50 ms budget.
    if name == "__version__":
        from importlib import metadata

        try:
            return metadata.version("unilog-ml")
        except metadata.PackageNotFoundError:
            return "0+unknown"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'unilog' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def init(project: str | None = None, name: str | None = None, config: Any = None,
         backends: Any = None, dir: str | None = None, tags: list[str] | None = None,
         notes: str | None = None, group: str | None = None, mode: str | None = None,
         id: str | None = None, resume: str | None = None, on_error: str = "warn",
         *, rank_zero_only: bool = True, isolation: str | None = None,
         save_code: bool | None = None, source_files: list[str] | None = None,
         entity: str | None = None, **other_trackers: Any) -> Run:
    """Start a run that logs to every backend in ``backends``; it becomes ``unilog.run``.

    :param project: groups runs; a folder under ``dir`` (``$UNILOG_PROJECT``, else "default").
    :param name: display name (default: the run id).
    :param config: dict, argparse.Namespace, dataclass or OmegaConf DictConfig;
        secret-looking keys are redacted before any backend sees them.
    :param backends: ``["wandb", "csv"]``, ``[{"name": "wandb", **options}]`` or
        ``{"wandb": {...}}``; None reads ``$UNILOG_BACKENDS`` (comma-separated),
        else ``["csv"]``. The CSV local record is always added.
    :param dir: root of local files (``$UNILOG_DIR``, else ``./runs``); the run
        lives in ``<dir>/<project>/<id>/``.
    :param tags: labels for the run. :param notes: free text. :param group: groups related runs.
    :param mode: "online", "offline" (no network anywhere) or "disabled" (no-ops);
        None reads ``$UNILOG_MODE``, else "online".
    :param id: the run id (default: 8 random characters); with ``resume`` it
        continues an existing run.
    :param resume: None (the id must be new), "allow" (continue if it exists)
        or "must" (it must exist).
    :param on_error: what a failing backend does: "warn", "raise" or "disable"
        (see docs/errors.md).
    :param rank_zero_only: under torch.distributed, ranks other than 0 get a
        disabled run (pass False to log from every rank).
    :param isolation: where the backends' SDKs run: "process" (one logging process
        beside the training process, the default) or "thread" (worker threads of
        the training process); None reads ``$UNILOG_ISOLATION``. Per backend, the
        ``isolation`` option wins. The local record always stays in the training
        process (docs/performance.md).
    :param save_code: keep the entry script as the run's ``code`` artifact, as
        W&B's ``save_code`` (None reads ``$UNILOG_SAVE_CODE``, else False).
    :param source_files: glob patterns, relative to the working directory, of
        files to keep in that artifact too, as Neptune's (``["*.py", "src/**/*.py"]``).
    :param entity: W&B's entity (team or user): the default of the wandb
        backend's ``entity`` option (other backends do not get it).
    :param other_trackers: W&B's and SwanLab's other ``init`` keywords, so their
        calls run unchanged: ``job_type`` (the wandb backend's option),
        ``workspace`` (SwanLab's), ``experiment_name`` (``name``), ``description``
        (``notes``), ``logdir``/``log_dir`` (``dir``), and ``reinit``: what to do about a
        current run. None or "default": a second, concurrent run that becomes
        current (unilog's own way; wandb returns the current run in a script);
        "create_new": a concurrent run, the current one stays current;
        "finish_previous" (or True): finish the current run first;
        "return_previous" (or False): return the current run;
        ``config_include_keys``/``config_exclude_keys`` keep only (or leave out)
        those top-level config keys. Keywords of their clients that change
        nothing logged (``allow_val_change``, ``anonymous``, ``settings``,
        ``sync_tensorboard``, SwanLab's ``color``, ``public``, ``callbacks``...:
        ``unilog._current.IGNORED``) are taken and ignored. Any other keyword
        is a TypeError. ``mode`` and ``resume`` take wandb's and SwanLab's values
        too ("dryrun", "cloud", "local"; True, "auto", "never").
    :raises BackendNotFound: for an unknown backend name.
    :raises BackendNotInstalled: when a backend's SDK is missing (names the pip extra).
    :raises ConfigError: for any other invalid argument.
    """
    global run
    from unilog import _code, _settings as settings
    from unilog import _sweep_link
    from unilog.runs import Run

    save_code, patterns = _code.check(save_code, source_files)
    args = dict(project=project, name=name, config=config, backends=backends, dir=dir,
                tags=tags, notes=notes, group=group, mode=mode, id=id, resume=resume,
                on_error=on_error, rank_zero_only=rank_zero_only, isolation=isolation,
                entity=entity)
    reinit, backend_options = _current_api.init_keywords(args, other_trackers)
    policy = _current_api.reinit_policy(reinit)
    if run is not None and policy == "return_previous":
        return run
    if run is not None and policy == "finish_previous":
        run.finish()
    args["config"] = _current_api.take_pending_config(args["config"])
    trial = _sweep_link.take() if _sweep_link.pending() else None
    if trial is not None:  # this run is a sweep's trial (docs/sweeps.md)
        args = _sweep_link.apply(trial, args)
    resolved = settings.resolve(**args, **backend_options)
    resolved.trial = trial
    new = Run(resolved)
    if policy != "create_new" or run is None:
        run = new
    if trial is not None:
        trial.run = new
    _code.capture(new, save_code, patterns)  # after the run exists: a code artifact
    return new


def define_metric(name: str, step_metric: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """``run.define_metric`` on the current run (W&B's ``wandb.define_metric``)."""
    return _current_run().define_metric(name, step_metric, **kwargs)


def watch(models: Any, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
    """``run.watch`` on the current run (W&B's ``wandb.watch``)."""
    _current_run().watch(models, criterion, log, log_freq, idx, log_graph)


def unwatch(models: Any = None) -> None:
    """``run.unwatch`` on the current run."""
    _current_run().unwatch(models)


def _current_run() -> Run:
    if run is None:
        raise UnilogError("no active run: call unilog.init() first")
    return run


def _finished(finished: Run) -> None:
    """``finished`` has ended: it is no longer the current run (if it was).
    ``unilog.run`` is written here and in ``init`` only."""
    global run
    if run is finished:
        run = None


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """``unilog.run.log(...)`` on the current run."""
    _current_run().log(data, step=step, commit=commit)


def log_artifact(path: Any, name: str | None = None, type: str = "artifact",
                 aliases: list[str] | None = None,
                 metadata: dict[str, Any] | None = None) -> Artifact | None:
    """``unilog.run.log_artifact(...)`` on the current run."""
    return _current_run().log_artifact(path, name=name, type=type, aliases=aliases,
                                   metadata=metadata)


def use_artifact(ref: str, timeout: float | None = None, *, type: str | None = None) -> Any:
    """``unilog.run.use_artifact(ref)`` on the current run."""
    return _current_run().use_artifact(ref, timeout=timeout, type=type)


def finish(exit_code: int = 0, timeout: float | None = None) -> dict[str, Any] | None:
    """Finish the current run (a no-op when there is none)."""
    if run is None:
        return None
    return run.finish(exit_code=exit_code, timeout=timeout)


# ``unilog.config = {...}`` updates the run (or the next run) instead of replacing
# the view, as ``wandb.config = ...`` before ``wandb.init`` does (_current.UnilogModule).
import sys as _sys  # noqa: E402

_sys.modules[__name__].__class__ = _current_api.UnilogModule
