"""A sweep's Optuna study: where it is stored, its sampler and pruner, asking for a
trial and telling its outcome.

The study is the sweep's one source of truth: its configuration is a study
attribute, each trial's config, run and final status are trial attributes, so
an agent on another machine needs only the storage and the sweep id.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from unilog.errors import ConfigError, UnilogError
from unilog.sweeps._space import SweepSpec, parse

logger = logging.getLogger("unilog")

JOURNAL = "journal.log"
STORAGE_ENV = "UNILOG_SWEEP_STORAGE"
# Study and trial attributes unilog keeps in Optuna's storage.
SWEEP_ATTR = "unilog:sweep"  # the configuration as given
PROJECT_ATTR = "unilog:project"
# One attribute per write: each is a locked append to a journal, or a transaction.
RUN_ATTR = "unilog:run"  # {"id", "dir"} of the trial's run, when it started
ENDED_ATTR = "unilog:ended"  # {"status", "value", "id", "dir"}: how the trial's run ended
PRUNED_ATTR = "unilog:pruned"  # the iteration at which the pruner stopped the trial
STATE_ATTR = "unilog:state"  # failed or killed (complete and pruned are Optuna's states)
ERROR_ATTR = "unilog:error"
DUPLICATE_ATTR = "unilog:duplicate"  # a trial another agent had already asked for


def sweep_dir(root: Path, project: str, sweep_id: str) -> Path:
    """``<dir>/<project>/sweeps/<id>/``: the sweep's configuration, journal and plot."""
    return root / project / "sweeps" / sweep_id


def storage_url(folder: Path, storage: str | None) -> str:
    """The storage as a string a trial's process can be given: the URL given (or
    ``$UNILOG_SWEEP_STORAGE``), else ``journal:<folder>/journal.log``."""
    storage = storage or os.environ.get(STORAGE_ENV)
    if storage:
        return str(storage)
    return "journal:" + str(folder / JOURNAL)


def journal_path(url: str) -> Path | None:
    """The journal file of a ``journal:<path>`` storage URL (None for a database URL)."""
    return Path(url[len("journal:"):]) if url.startswith("journal:") else None


def open_storage(url: str) -> Any:
    """Optuna's storage for ``url``: a journal file, or any SQLAlchemy URL Optuna takes."""
    import optuna

    path = journal_path(url)
    if path is not None:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError as exc:
        raise ConfigError(f"sweep storage {redact_url(url)!r} needs a database driver: "
                          f"{exc} (for postgresql:// URLs: pip install psycopg2-binary)"
                          ) from exc
    except Exception as exc:  # bad URL, server down: say which storage
        raise ConfigError(f"sweep storage {redact_url(url)!r} cannot be opened: "
                          f"{type(exc).__name__}: {exc}") from exc


def redact_url(url: str) -> str:
    """``url`` with the password of ``user:password@host`` hidden."""
    import re

    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines repeat what unilog prints; its warnings stay."""
    import optuna

    if optuna.logging.get_verbosity() == optuna.logging.INFO:  # Optuna's default, not DEBUG
        optuna.logging.set_verbosity(optuna.logging.WARNING)


def create(spec: SweepSpec, url: str, sweep_id: str, project: str) -> None:
    """Create the sweep's study, holding its configuration."""
    import optuna

    quiet_optuna()
    storage = open_storage(url)
    direction = "maximize" if spec.goal == "maximize" else "minimize"
    study = optuna.create_study(storage=storage, study_name=sweep_id, direction=direction)
    study.set_user_attr(SWEEP_ATTR, spec.raw)
    study.set_user_attr(PROJECT_ATTR, project)


def load(sweep_id: str, url: str, seed: int | None = None, *, for_agent: bool = True,
         storage: Any = None) -> tuple[Any, SweepSpec]:
    """The sweep's study, with the sampler and pruner its configuration asks for
    (``for_agent=False``: to read it or report to its pruner, so no sampler is
    built). ``storage``: the storage of ``url`` when it is already open."""
    import optuna

    quiet_optuna()
    storage = storage if storage is not None else open_storage(url)
    try:
        study_id = storage.get_study_id_from_name(sweep_id)
    except KeyError:
        raise UnilogError(f"no sweep {sweep_id!r} in {redact_url(url)}") from None
    spec = parse(storage.get_study_user_attrs(study_id)[SWEEP_ATTR])
    sampler = make_sampler(spec, seed) if for_agent else optuna.samplers.RandomSampler()
    study = optuna.load_study(study_name=sweep_id, storage=storage, sampler=sampler,
                              pruner=make_pruner(spec))
    return study, spec


def make_sampler(spec: SweepSpec, seed: int | None = None) -> Any:
    """grid: GridSampler; random: RandomSampler; bayes: GPSampler (a Gaussian process,
    as W&B's bayes), or TPESampler where torch or scipy is missing (docs/sweeps.md)."""
    import optuna

    if spec.method == "grid":
        # Every agent must map grid ids to the same points: GridSampler shuffles its
        # grid with its seed, so the seed is fixed (the grid is run whole anyway).
        return _grid_sampler()(spec.grid_space(), seed=0)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    try:
        import scipy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        logger.warning("sweep method bayes: Optuna's GPSampler needs torch and scipy (%s), "
                       "so this agent uses its TPESampler", exc)
        return optuna.samplers.TPESampler(seed=seed)
    return optuna.samplers.GPSampler(seed=seed)


def _grid_sampler() -> type:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's GridSampler, except that the last grid point does not call
        ``study.stop()``, which only works inside ``study.optimize``: agents ask and
        tell, and see the grid's end themselves (:func:`next_trial`)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler


def make_pruner(spec: SweepSpec) -> Any:
    """Optuna's HyperbandPruner for ``early_terminate: {type: hyperband}``, else none."""
    import optuna

    if spec.hyperband is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.HyperbandPruner(**spec.hyperband)


# -- asking and telling ------------------------------------------------------------------


def _live(study: Any) -> list[Any]:
    trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
    return [t for t in trials if not t.user_attrs.get(DUPLICATE_ATTR)]


def _grid_size(spec: SweepSpec) -> int:
    return math.prod(len(values) for values in spec.grid_space().values())


def _exhausted(study: Any, spec: SweepSpec) -> str | None:
    """Why no more trial may start (run_cap, target, a grid all taken), else None."""
    if spec.run_cap is None and spec.target is None and spec.method != "grid":
        return None  # nothing to check: no need to read every trial
    live = _live(study)
    if spec.run_cap is not None and len(live) >= spec.run_cap:
        return f"run_cap {spec.run_cap} reached"
    from optuna.trial import TrialState

    for t in live:
        if t.state == TrialState.COMPLETE and t.value is not None and spec.reached_target(t.value):
            return f"trial {t.number} reached the target {spec.target}"
    if spec.method == "grid":
        taken = {t.system_attrs.get("grid_id") for t in live} - {None}
        if len(taken) >= _grid_size(spec):
            return "every grid point has been run (or is running)"
    return None


def _duplicate(study: Any, spec: SweepSpec, trial: Any) -> str | None:
    """Why the trial just asked for must not run: another agent asked for the same
    grid point first, or the run cap was reached meanwhile. Agents ask without a
    common lock (a database has none to share), so this is decided after asking,
    the same way in every agent: the trial with the lower number wins."""
    if spec.run_cap is None and spec.method != "grid":
        return None
    live = _live(study)
    earlier = [t for t in live if t.number < trial.number]
    if spec.run_cap is not None and len(earlier) >= spec.run_cap:
        return "run_cap"
    if spec.method == "grid":
        mine = study._storage.get_trial(trial._trial_id).system_attrs.get("grid_id")
        if any(t.system_attrs.get("grid_id") == mine for t in earlier):
            return "grid"
    return None


def next_trial(study: Any, spec: SweepSpec) -> tuple[Any, dict[str, Any]] | tuple[None, str]:
    """Ask Optuna for the next trial: ``(trial, config)``, or ``(None, why)`` when the
    sweep is done."""
    from optuna.trial import TrialState

    distributions = spec.distributions()
    while True:
        why = _exhausted(study, spec)
        if why:
            return None, why
        trial = study.ask(fixed_distributions=distributions)
        reason = _duplicate(study, spec, trial)
        if reason is None:
            return trial, spec.config_for(trial.params)
        study._storage.set_trial_user_attr(trial._trial_id, DUPLICATE_ATTR, reason)
        study.tell(trial, state=TrialState.FAIL)


def settle(study: Any, spec: SweepSpec, trial: Any, ended: str, error: str | None = None,
           link_run: Any = None) -> tuple[str, str | None]:
    """Tell Optuna how ``trial`` ended; returns its state (complete, pruned, failed or
    killed) and why it failed. ``ended`` is what the agent saw ("finished", "failed",
    "killed"); the trial run's reporter left the run's status, the metric's value and
    the pruner's verdict in the trial's attributes. ``link_run``: the trial's run,
    when it ran in this process.

    A trial is pruned when the pruner said so *and* the trial stopped for it: its
    run read ``should_stop`` as True, or its program was sent SIGTERM. A verdict
    that came after the run had ended (the reporter's thread is behind the loop)
    leaves a complete trial complete."""
    from optuna.trial import TrialState

    attrs = study._storage.get_trial(trial._trial_id).user_attrs
    ended_as = attrs.get(ENDED_ATTR) or {}
    status, value = ended_as.get("status"), ended_as.get("value")
    if attrs.get(PRUNED_ATTR) and (ended_as.get("obeyed") or status == "killed"):
        state = "pruned"
    elif ended == "killed" or status == "killed":
        state = "killed"
    elif ended == "failed" or status == "failed":
        state = "failed"
    elif status is None:
        state, error = "failed", ("the trial started no unilog run: call unilog.init() in it"
                                  if RUN_ATTR not in attrs and link_run is None else
                                  "the trial's run never reported how it ended")
    elif spec.metric is not None and value is None:
        kind = ended_as.get("not_number")
        state, error = "failed", (
            f"the metric {spec.metric!r} was logged as {kind}, not a number" if kind else
            f"the metric {spec.metric!r} was never logged nor put in the run's summary")
    elif value is not None and not math.isfinite(value):
        state, error = "failed", f"the metric {spec.metric!r} ended as {value}"
    else:
        state = "complete"
    if error:
        trial.set_user_attr(ERROR_ATTR, error)
    if state in ("failed", "killed"):  # both are Optuna's FAIL
        trial.set_user_attr(STATE_ATTR, state)
    if state == "complete":
        # A sweep without a metric still records its trials; their value means nothing.
        study.tell(trial, float(value) if value is not None else 0.0)
    elif state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)
    return state, error
