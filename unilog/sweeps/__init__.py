"""Hyperparameter sweeps: W&B's sweep configuration, run on Optuna, logged to any backend.

    sweep_id = unilog.sweep(sweep={"method": "grid", "metric": {"name": "acc", "goal": "maximize"},
                                   "parameters": {"a": {"values": [1, 2, 3]}}}, project="p")
    unilog.agent(sweep_id, function=train, count=3, project="p")   # train() calls unilog.init()
    best = unilog.read_sweep(sweep_id, project="p").best           # .params, .value, .run_dir

A sweep lives in ``<dir>/<project>/sweeps/<id>/`` (its configuration and an
Optuna journal file, shared by every agent that sees that folder) or, with
``storage="postgresql://..."`` (any SQLAlchemy URL Optuna takes, or
``$UNILOG_SWEEP_STORAGE``), in a database that agents on many machines share.
Needs ``pip install 'unilog-ml[sweeps]'``; ``import unilog`` never imports Optuna.
See docs/sweeps.md.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from unilog.errors import ConfigError
from unilog.sweeps._results import SweepData, TrialData

__all__ = ["SweepData", "TrialData", "agent", "read_sweep", "sweep"]


def _require_optuna() -> None:
    try:
        import optuna  # noqa: F401
    except ImportError as exc:
        raise ImportError("unilog sweeps run on Optuna, which is not installed: "
                          "pip install 'unilog-ml[sweeps]'") from exc


#: Sweeps this process created: id -> (project, runs root, storage). ``agent`` and
#: ``read_sweep`` find them without being told again, as wandb's do.
_created: dict[str, tuple[str, Path, str | None]] = {}


def _where(sweep_id: str, project: str | None, dir: str | os.PathLike | None,
           storage: str | None) -> tuple[str, str | None, Path, str]:
    """(sweep id, project, runs root, storage URL) for a sweep id, which may be
    written ``project/id`` (as W&B's ``entity/project/id``, without the entity).
    The project is None when neither says it and the sweep is in a database (its
    study then knows it)."""
    from unilog._settings import _ID_RULE, check_project, default_project, resolve_dir
    from unilog.sweeps import _engine as engine

    if not isinstance(sweep_id, str) or not sweep_id:
        raise ConfigError(f"a sweep id is a string such as 'ab12cd34', not {sweep_id!r}")
    parts = sweep_id.split("/")
    if len(parts) > 2 or "" in parts:
        raise ConfigError(f"sweep id {sweep_id!r}: write it 'ID' or 'PROJECT/ID' "
                          "(unilog has no entities)")
    if len(parts) == 2:
        if project is not None and project != parts[0]:
            raise ConfigError(f"sweep id {sweep_id!r} names project {parts[0]!r} but "
                              f"project={project!r} was given")
        project = parts[0]
    sweep_id = parts[-1]
    made_here = _created.get(sweep_id)  # created by this process: its place is known
    if made_here is not None:
        project = project or made_here[0]
        dir = dir or made_here[1]
        storage = storage or made_here[2]
    if not _ID_RULE.match(sweep_id):
        raise ConfigError(f"sweep id {'/'.join(parts)!r}: write it 'ID' or 'PROJECT/ID', the id "
                          "being 1-64 letters, digits, '_' or '-'")
    root = resolve_dir(dir)
    url = engine.storage_url(engine.sweep_dir(root, project or default_project(), sweep_id),
                             storage)
    journal = engine.journal_path(url)
    if journal is not None:
        project = project or default_project()
    if project is not None:
        check_project(project)
    if journal is not None and not journal.exists():
        raise ConfigError(f"no sweep {sweep_id!r} in project {project!r}: {journal} does not "
                          "exist (a sweep in a database needs storage=... or "
                          "$UNILOG_SWEEP_STORAGE)")
    return sweep_id, project, root, url


def sweep(sweep: Any, project: str | None = None, *, dir: str | os.PathLike | None = None,
          storage: str | None = None) -> str:
    """Create a sweep from W&B's sweep configuration; returns its id.

    :param sweep: the configuration: a dict, or the path of a YAML file
        (docs/sweeps.md lists every key).
    :param project: where the trials' runs go (default: the configuration's
        ``project``, else ``$UNILOG_PROJECT``, else "default").
    :param dir: the runs root (``$UNILOG_DIR``, else ``./runs``): the sweep lives
        in ``<dir>/<project>/sweeps/<id>/``.
    :param storage: a database URL for Optuna (``postgresql://...``, ``sqlite:///...``;
        default ``$UNILOG_SWEEP_STORAGE``, else a journal file in the sweep's folder).
    :raises ConfigError: naming the key and the rule, for a configuration unilog
        cannot honour.
    """
    from unilog._settings import check_project, default_project, new_run_id, resolve_dir
    from unilog.sweeps import _engine as engine
    from unilog.sweeps._space import parse

    spec = parse(sweep)  # a bad configuration fails before Optuna is needed
    _require_optuna()
    project = check_project(project or spec.project or default_project())
    sweep_id = new_run_id()
    folder = engine.sweep_dir(resolve_dir(dir), project, sweep_id)
    folder.mkdir(parents=True)
    import yaml

    (folder / "sweep.yaml").write_text(yaml.safe_dump(spec.raw, sort_keys=False),
                                       encoding="utf-8")
    engine.create(spec, engine.storage_url(folder, storage), sweep_id, project)
    _created[sweep_id] = (project, resolve_dir(dir), storage)
    return sweep_id


def agent(sweep_id: str, function: Callable[[], Any] | None = None, count: int | None = None,
          project: str | None = None, *, dir: str | os.PathLike | None = None,
          storage: str | None = None, seed: int | None = None) -> list[int]:
    """Run the sweep's trials: ``function()`` in this process, or, without a function,
    the configuration's ``program`` in a child process per trial.

    Each trial's ``unilog.init()`` gets the trial's parameters as ``run.config``,
    the sweep as its ``group`` and ``trial:<n>`` in its tags. Stops after
    ``count`` trials (None: until the grid is done, ``run_cap``, the metric's
    ``target``, or Ctrl-C, which ends the running trial as killed and raises
    ``KeyboardInterrupt``). A trial that raises is recorded as failed and the
    agent goes on. ``seed`` seeds this agent's sampler (unilog's own addition).

    :returns: the numbers of the trials this agent ran.
    """
    from unilog.sweeps import _engine as engine
    from unilog.sweeps._agent import run_agent

    if count is not None and (not isinstance(count, int) or isinstance(count, bool)
                              or count < 1):
        raise ConfigError(f"count must be an int >= 1 or None, not {count!r}")
    if function is not None and not callable(function):
        raise ConfigError(f"function must be callable, not {function!r}")
    _require_optuna()
    sweep_id, project, root, url = _where(sweep_id, project, dir, storage)
    study, spec = engine.load(sweep_id, url, seed)
    project = project or study.user_attrs[engine.PROJECT_ATTR]
    if function is None:
        from unilog.sweeps._agent import check_command

        if spec.program is None and "${program}" in spec.command:
            raise ConfigError(f"sweep {sweep_id!r} has no 'program' to run: give agent() a "
                              "function, or the configuration a program")
        check_command(spec)
    return run_agent(study, spec, url, project, root, function, count)


def read_sweep(sweep_id: str, project: str | None = None, *,
               dir: str | os.PathLike | None = None, storage: str | None = None) -> SweepData:
    """A sweep's trials (``.trials``: params, value, state, run_dir) and ``.best``."""
    from unilog.sweeps import _engine as engine
    from unilog.sweeps._results import read

    _require_optuna()
    sweep_id, project, _root, url = _where(sweep_id, project, dir, storage)
    study, spec = engine.load(sweep_id, url, for_agent=False)
    return read(study, spec, project or study.user_attrs[engine.PROJECT_ATTR])
