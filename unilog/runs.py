"""``unilog.init`` and :class:`Run`: lifecycle, step, config, summary.

``Run.log`` runs on the caller's thread and only normalises, merges into the
current step's row and makes one hook call when a row is committed; backends
run on their workers (:mod:`unilog._dispatch`).

Step semantics follow wandb (see docs/logging.md): ``log(d)`` writes at the
current step and advances it; ``commit=False`` accumulates; ``step=s`` with
``s`` >= current writes at ``s`` and keeps the row open until a later step or a
commit; ``s`` < current is a :class:`StepError` under ``on_error="raise"``,
otherwise a one-time warning and the row goes only to the local record (and to
backends that declare ``out_of_order_steps``).
"""

from __future__ import annotations

import copy
import os
import shutil
import sys
import threading
import time
import warnings
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable

from unilog import _lifecycle as lifecycle, _settings as settings
from unilog.artifacts import (
    Artifact,
    ArtifactStore,
    FetchedArtifact,
    find_artifact,
    parse_ref,
)
from unilog.backend import Row, RunInfo
from unilog._config import Config, redact, to_dict, to_plain
from unilog._dispatch import BackendWorker, Dispatcher
from unilog.errors import (ArtifactError, ConfigError, KeyCollisionError, StepError,
                           UnilogError, UnilogWarning)
from unilog.media import Text
from unilog._manifest import Manifest, provenance
from unilog._normalize import Issues, flatten, normalize_value
from unilog.plugins import get_plugin_manager
from unilog._policy import ErrorPolicy
from unilog.tensors import PendingScalar

STATUSES = ("finished", "failed", "killed")
_MAX_STEP = 2**63 - 1


class Summary(dict):
    """``run.summary``: final values of the run (``run.summary["best_acc"] = 0.97``).

    Each assignment is sent to every backend. Values: numbers, strings, bools,
    None, lists/dicts of those, and one-element tensors (read on the worker side).
    """

    def __init__(self, on_change, initial: dict[str, Any] | None = None):
        super().__init__(initial or {})
        self._on_change = on_change

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Any = (), **kwargs: Any) -> None:
        """Set several summary values at once."""
        new = dict(values, **kwargs)
        plain = {str(k): _summary_value(v) for k, v in new.items()}
        super().update(plain)
        self._on_change(plain)


def _summary_value(value: Any) -> Any:
    """A number (a device tensor stays a PendingScalar, read by the workers), or plain JSON."""
    if isinstance(value, (dict, list, tuple, bool)):
        return to_plain(value)  # a bool summary stays a bool (unlike a logged metric)
    try:
        converted = normalize_value(value)
    except Exception:  # not a number (or its conversion raised): kept as plain JSON
        return to_plain(value)
    if isinstance(converted, Text):
        return converted.text
    return converted if isinstance(converted, (int, float, PendingScalar)) else to_plain(value)


def _initial_config(s: settings.Settings) -> dict[str, Any]:
    """The user's config, copied (``run.config`` must not write into the caller's
    dict), merged over the config of the run being resumed."""
    given = to_dict(s.config)
    try:
        given = copy.deepcopy(given)
    except Exception:  # an uncopyable value: a shallow copy still protects the top level
        given = dict(given)
    if not s.previous_config:
        return given
    merged = copy.deepcopy(s.previous_config)
    Config(merged).update(given)
    return merged


class Run:
    """One experiment run, logging to several backends at once. Create it with :func:`unilog.init`."""

    def __init__(self, s: settings.Settings):
        self.id = s.id
        self._name: str = s.name
        self.project = s.project
        self.group = s.group
        self._tags: tuple[str, ...] = tuple(s.tags)
        self._notes: str | None = s.notes
        self.mode = s.mode
        #: True when this run continues one that existed (``resume=``).
        self.resumed = s.resumed
        self.dir: Path | None = s.run_dir
        self._settings = s
        self._policy = ErrorPolicy(s.on_error)
        self._lock = threading.RLock()  # re-entrant: a signal handler may run mid-log
        self._finish_lock = threading.Lock()
        self._step = s.start_step
        self._pending: dict[str, Any] = {}
        self._finished = False
        self._report: dict[str, Any] | None = None
        self._warned: set[tuple[str, str]] = set()
        self._failed_plugins: set[str] = set()
        self.config = Config(_initial_config(s), on_change=self._config_changed)
        self.summary = Summary(self._summary_changed, s.previous_summary)
        self._disabled = s.mode == "disabled"
        self._forked = False  # True in a forked child: the run is its parent's
        self._should_stop = False
        self._stop_seen = False  # should_stop was read as True: the trial obeyed it
        self._quiet = False  # no closing lines (a run written by an importer)
        self._metric_definitions: list[dict[str, Any]] = []  # define_metric's
        self._watches: list[Any] = []  # watch()'s hooks, taken off at finish
        if self._disabled:
            self.dir = None  # a disabled run writes nothing
            return
        backends = self._make_backends()  # bad options fail here, before anything is written
        self._artifacts = ArtifactStore(self.dir, self.id)
        self._manifest = self._start_manifest()
        self._dispatcher = self._start_dispatch(backends)
        self._hook = self._dispatcher.hook
        self._dispatch = self._dispatcher.dispatch_row
        self._row_hooks = get_plugin_manager().hook.unilog_process_row
        self._process_rows = bool(self._row_hooks.get_hookimpls())
        lifecycle.register(self)
        self._notify("unilog_run_started", run=self)

    # -- start ----------------------------------------------------------------

    def _info(self) -> RunInfo:
        return RunInfo(
            id=self.id, name=self.name, project=self.project, dir=self.dir, mode=self.mode,
            config=self._redacted_config(), tags=self.tags, notes=self.notes,
            group=self.group, resumed=self._settings.resumed,
            previous=self._settings.previous.get("backends", {}), start_time=time.time(),
            start_step=self._step,
        )

    def _start_manifest(self) -> Manifest:
        import unilog

        s = self._settings
        data = dict(s.previous) if s.resumed else {}
        data.update(
            id=self.id, name=self.name, project=self.project, group=self.group,
            tags=list(self.tags), notes=self.notes, mode=self.mode, status="running",
            unilog_version=unilog.__version__, step=self._step,
            backend_names=[name for name, _ in s.backends],
        )
        data.setdefault("created", time.time())
        if s.resumed:
            data.setdefault("resumes", []).append({"time": time.time(), **provenance()})
        else:
            data["provenance"] = provenance()
        self.dir.mkdir(parents=True, exist_ok=True)
        manifest = Manifest(self.dir / "run.json", data)
        manifest.update(started=time.time(), ended=None)
        return manifest

    def _make_backends(self) -> list[tuple[str, Any, dict[str, Any], int | None]]:
        return make_backends(self._settings.backend_classes, self._settings.isolation)

    def _start_dispatch(self, backends: list[tuple[str, Any, dict[str, Any], int | None]]
                        ) -> Dispatcher:
        info = self._info()
        extra: list[Any] = []
        if self._settings.trial is not None:  # a sweep's trial: its metric feeds the pruner
            from unilog.sweeps._reporter import TrialReporter

            extra.append(TrialReporter(self._settings.trial, info, self._stop_asked,
                                       lambda: self._stop_seen))
        # Reports and closing lines list the backends in the order the user gave.
        return start_dispatcher(backends, info, self._policy, self._backend_opened,
                                order=list(self._settings.backend_classes), extra=extra)

    def _backend_opened(self, name: str, info: dict[str, Any]) -> None:
        self._manifest.set_backend(name, info=info)

    def _stop_asked(self) -> None:
        self._should_stop = True

    @property
    def should_stop(self) -> bool:
        """True once a sweep's pruner has stopped this trial: the training loop should
        end (it is then marked pruned, not failed). Always False outside a sweep."""
        if self._should_stop:
            self._stop_seen = True
        return self._should_stop

    # -- logging ----------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once ``finish`` has begun: the run takes no more records."""
        return self._finished

    @property
    def step(self) -> int:
        """The step the next ``log`` writes at (unless given ``step=``)."""
        return self._step

    def log(self, data: dict[str, Any], step: int | None = None,
            commit: bool | None = None) -> None:
        """Log a mapping of values at the current step (or at ``step``).

        Cheap on the caller's thread: values are normalised and handed over;
        backends run on their own threads. See the module docstring for steps.
        """
        if self._disabled:
            if self._forked:
                self._warn_once("fork", "log", f"run {self.id} belongs to the process that "
                                "forked this one: what a forked child logs is dropped")
            return
        issues = Issues()
        values = flatten(data, issues)
        if issues.errors:
            self._bad_input(issues.errors)
        with self._lock:
            if self._finished:
                self._warn_once("finished", "log", "log() after finish() is ignored")
                return
            if step is not None:
                step = self._check_step(step)
                if step < self._step:
                    self._regressed(step, values)
                    return
                if step > self._step:
                    self._commit()
                    self._step = step
            elif self._step > _MAX_STEP:
                self._overflowed(values)
                return
            if issues.nonfinite:
                self._flag_nonfinite(issues.nonfinite, values)
            self._pending.update(values)
            if commit or (commit is None and step is None):
                self._commit()
                self._step += 1
        # Raised after the values are recorded: a caller that catches the
        # backend's error loses nothing from the local record.
        self._policy.raise_pending()

    def _write_row(self, step: int, data: dict[str, Any], when: float | None) -> None:
        """One whole row at ``step`` with the time a source recorded (importers: see
        :mod:`unilog.importers`). The same rules as ``log`` for keys and values; a
        step lower than the current one reaches the local record only, as in ``log``."""
        issues = Issues()
        values = flatten(data, issues)
        if issues.errors:
            self._bad_input(issues.errors)
        step = self._check_step(step)
        with self._lock:
            self._commit()
            if values:
                row = Row(step, MappingProxyType(values), time.time() if when is None else when)
                self._dispatch(row, step < self._step)
            self._step = max(self._step, step + 1)

    def _check_step(self, step: Any) -> int:
        if type(step) is not int:
            if (isinstance(step, bool) or not hasattr(step, "__index__")
                    or "bool" in str(getattr(step, "dtype", ""))):  # numpy/torch bools
                raise StepError(f"step must be an int >= 0, not {type(step).__name__} {step!r}")
            try:
                step = step.__index__()  # numpy and torch integers
            except TypeError as exc:  # float tensors, arrays of several elements
                raise StepError(f"step must be an int >= 0, not {type(step).__name__} "
                                f"{step!r}") from exc
        if step < 0:
            raise StepError(f"step must be an int >= 0, not {step}")
        if step > _MAX_STEP:
            raise StepError(f"step must be at most 2**63 - 1 (backends store steps as "
                            f"64-bit integers), not {step}")
        return step

    def _regressed(self, step: int, values: dict[str, Any]) -> None:
        self._local_only("regression", step, values, f"step {step} is lower than the "
                         f"current step {self._step}: steps may not go backwards")

    def _overflowed(self, values: dict[str, Any]) -> None:
        """A log with no step after one at step 2**63 - 1: there is no next step."""
        self._local_only("overflow", self._step, values, f"the step after {_MAX_STEP} "
                         "(2**63 - 1, the largest step backends store) does not exist")
        self._step += 1

    def _local_only(self, kind: str, step: int, values: dict[str, Any], problem: str) -> None:
        """A row at a step backends cannot take: a StepError under "raise", otherwise
        one warning per run and the row goes to the local record only."""
        message = f"{problem} (keys: {', '.join(list(values)[:5])})"
        if self._settings.on_error == "raise":
            raise StepError(message)
        self._warn_once("step", kind, message + "; rows like this go to the local record "
                        "only (warned once per run)")
        if values:
            self._dispatch_row(step, values, local_only=True)

    def _commit(self) -> None:
        if self._pending:
            values, self._pending = self._pending, {}
            self._dispatch_row(self._step, values, local_only=False)

    def _dispatch_row(self, step: int, values: dict[str, Any], local_only: bool) -> None:
        if self._process_rows:
            values = self._run_row_hooks(step, values)
        # Read-only: every backend shares these values, none may change them for the others.
        self._dispatch(Row(step, MappingProxyType(values), time.time()), local_only)

    def _run_row_hooks(self, step: int, values: dict[str, Any]) -> dict[str, Any]:
        for impl in self._row_hooks.get_hookimpls():
            if impl.plugin_name in self._failed_plugins:
                continue
            kwargs = {"run": self, "step": step, "values": dict(values)}
            try:
                impl.function(**{k: kwargs[k] for k in impl.argnames})
            except Exception as exc:
                # Skipped from now on; this row goes on as it was before the call.
                self._failed_plugins.add(impl.plugin_name)
                self._warn_once("plugin", impl.plugin_name,
                                f"plugin {impl.plugin_name!r} failed in unilog_process_row "
                                f"and is skipped for the rest of the run: "
                                f"{type(exc).__name__}: {exc}")
                continue
            values = kwargs["values"]
        # What plugins added goes through the same rules as what the user logs.
        issues = Issues()
        values = flatten(values, issues)
        for error in issues.errors:
            self._warn_once("input", error.key, f"{error} (added by a unilog_process_row "
                            "plugin); the key is left out (warned once)")
        return values

    def _bad_input(self, errors: list) -> None:
        if self._settings.on_error == "raise":
            raise errors[0]
        for error in errors:
            left_out = "" if isinstance(error, KeyCollisionError) else "; the key is left out"
            self._warn_once("input", error.key, f"{error}{left_out} (warned once)")

    def _flag_nonfinite(self, keys: list[str], values: dict[str, Any]) -> None:
        for key in keys:
            self._warn_once("nonfinite", key, f"key {key!r} is {values[key]} at step "
                            f"{self._step}; kept as a float (warned once per key)")

    def _warn_once(self, category: str, key: str, message: str) -> None:
        if (category, key) not in self._warned:
            self._warned.add((category, key))
            warnings.warn(message, UnilogWarning, stacklevel=4)

    # -- config and summary -------------------------------------------------------

    def _redacted_config(self) -> dict[str, Any]:
        return redact(to_plain(self.config._data))

    def _config_changed(self, _data: dict[str, Any]) -> None:
        if not self._disabled and not self._after_finish("config update"):
            with self._lock:
                self._hook.unilog_dispatch_config(config=self._redacted_config())

    def _summary_changed(self, values: dict[str, Any]) -> None:
        if not self._disabled and not self._after_finish("summary update"):
            with self._lock:
                self._hook.unilog_dispatch_summary(summary=redact(values))

    # -- watching a model --------------------------------------------------------

    def watch(self, models: Any, criterion: Any = None, log: str | None = "gradients",
              log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
        """W&B's ``watch``: histograms of a torch model's parameters and/or gradients
        (``log``: "gradients", "parameters", "all" or None) every ``log_freq``
        training steps, as ``parameters/<name>`` and ``gradients/<name>`` (with
        several models, ``<i>/`` before them). See :mod:`unilog._watch`."""
        from unilog import _watch

        _watch.check(log, log_freq)
        models = list(models) if isinstance(models, (list, tuple)) else [models]
        for i, model in enumerate(models):
            prefix = f"{i if idx is None else idx + i}/" if len(models) > 1 else ""
            self._watches.append(_watch.Watch(self, model, log, log_freq, prefix))

    def unwatch(self, models: Any = None) -> None:
        """Take ``watch``'s hooks off ``models`` (default: every watched model)."""
        chosen = (None if models is None
                  else list(models) if isinstance(models, (list, tuple)) else [models])
        for watch in list(self._watches):
            if chosen is None or any(watch.model is m for m in chosen):
                watch.remove()
                self._watches.remove(watch)

    # -- metric definitions ------------------------------------------------------

    def define_metric(self, name: str, step_metric: str | None = None, *,
                      summary: str | None = None, goal: str | None = None,
                      hidden: bool | None = None, step_sync: bool | None = None,
                      overwrite: bool | None = None) -> dict[str, Any]:
        """W&B's ``define_metric``: ``summary="min"`` (also ``max``, ``mean``,
        ``first``, ``last``, ``best`` with ``goal``, comma-separated) makes the
        run's summary hold ``{key: {"min": ...}}`` for each key ``name`` matches (a
        glob: ``"val/*"``), computed at ``finish`` from the local record and sent
        to every backend. Definitions of one key add up, as W&B's do, unless
        ``overwrite=True``. The other keywords are recorded in ``run.json``
        (``metrics``) only (see :mod:`unilog._metrics`). Returns the definition."""
        from unilog import _metrics

        found = _metrics.definition(name, step_metric, summary, goal, hidden=hidden,
                                    step_sync=step_sync, overwrite=overwrite)
        if self._disabled:
            return found
        with self._lock:
            self._metric_definitions.append(found)
            self._manifest.update(metrics=list(self._metric_definitions))
        return found

    def _send_metric_summaries(self, timeout: float) -> None:
        """The summaries ``define_metric`` asked for, once the local record holds
        every row: to every backend, before they close."""
        from unilog import _metrics

        if not any(d["summary"] for d in self._metric_definitions):
            return
        local = [m for m in self._dispatcher.members if settings.LOCAL_RECORD in m.names]
        barriers = [(m, c) for m in local if (c := m.barrier(timeout)) is not None]
        self._dispatcher.wait_flush(barriers, timeout)
        try:
            values = _metrics.summaries(self._metric_definitions, self.dir)
        except (OSError, ValueError) as exc:  # a damaged record: the run still ends
            self._policy.report(settings.LOCAL_RECORD, exc, "define_metric summary")
            return
        if values:
            with self._lock:
                self._hook.unilog_dispatch_summary(summary=values)

    # -- tags -------------------------------------------------------------------

    @property
    def tags(self) -> tuple[str, ...]:
        """The run's tags, in order: those given to ``init``, then those added since.

        Assignable as wandb's ``run.tags`` is, to add tags: ``run.tags = run.tags +
        ("new",)`` adds those not there yet, like :meth:`add_tags`. Tags cannot be
        removed: a new value that leaves out a current tag is a ConfigError naming
        it (and changes nothing)."""
        return self._tags

    @tags.setter
    def tags(self, tags: str | Iterable[str]) -> None:
        given = _tag_list("run.tags = ...", (tags,))
        missing = [tag for tag in self._tags if tag not in given]
        if missing:
            raise ConfigError(
                f"run.tags = ...: tags cannot be removed from a run, and the new value "
                f"leaves out {', '.join(map(repr, missing))}; assign the current tags plus "
                "new ones (run.tags = run.tags + ('new',)) or call run.add_tags('new')")
        self.add_tags(given)

    def add_tags(self, *tags: str | Iterable[str]) -> None:
        """Add tags to the run, as Neptune's ``run["sys/tags"].add([...])`` and
        wandb's ``run.tags += ("x",)`` do: ``run.add_tags("best")``,
        ``run.add_tags(["a", "b"])`` or ``run.add_tags("a", "b")``.

        Each tag must be a non-empty str (else a ConfigError naming it, and no tag
        is added). Tags the run has already are left out, the order is kept.
        The new tags go into ``run.json`` at once and to every backend, in order
        with the rows logged before and after the call (each backend's
        :meth:`unilog.Backend.set_tags` gets the whole set; what each backend
        makes of it: docs/backends.md). On a disabled run only ``run.tags``
        changes. After ``finish`` the call is ignored, with one warning.
        """
        given = _tag_list("add_tags", tags)
        if self._forked:  # the run is the parent's: a child changes nothing of it
            self._warn_once("fork", "add_tags", f"run {self.id} belongs to the process that "
                            "forked this one: add_tags in a forked child is ignored")
            return
        if self._disabled:
            self._tags = (*self._tags, *[t for t in given if t not in self._tags])
            return
        with self._lock:
            if self._finished:
                self._warn_once("finished", "add_tags", "add_tags() after finish() is "
                                "ignored: the run's tags stay as they were")
                return
            new = [tag for tag in given if tag not in self._tags]
            if not new:
                return
            self._tags = (*self._tags, *new)
            try:
                self._manifest.update(tags=list(self._tags))
            except OSError as exc:  # a full disk: the backends still get the tags
                self._policy.report(settings.LOCAL_RECORD, exc, "add_tags")
            self._hook.unilog_dispatch_tags(tags=self._tags)

    # -- name and notes -----------------------------------------------------------

    @property
    def name(self) -> str:
        """The run's display name. Assignable after ``init``, as wandb's
        ``run.name = "..."`` is: a non-empty str (else a ConfigError), written to
        ``run.json`` and sent to every backend (docs/logging.md, *Name and notes*)."""
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError(f"run.name = ...: a run's name must be a non-empty str, not "
                              f"{type(name).__name__} {name!r}")
        self._describe("name", name, self._notes)

    @property
    def notes(self) -> str | None:
        """The run's notes (a description), or None. Assignable after ``init``, as
        wandb's ``run.notes = "..."`` is: a str or None (else a ConfigError),
        written to ``run.json`` and sent to every backend (docs/logging.md)."""
        return self._notes

    @notes.setter
    def notes(self, notes: str | None) -> None:
        if notes is not None and not isinstance(notes, str):
            raise ConfigError(f"run.notes = ...: a run's notes must be a str or None, not "
                              f"{type(notes).__name__} {notes!r}")
        self._describe("notes", self._name, notes)

    def _describe(self, what: str, name: str, notes: str | None) -> None:
        """Set the run's name and notes: into ``run.json`` at once and to every
        backend, in order with the rows logged before and after
        (:meth:`unilog.Backend.describe` gets both; what each backend makes of
        them: docs/backends.md). On a disabled run only the attribute changes.
        After ``finish``, or in a forked child, it is ignored with one warning."""
        if self._forked:  # the run is the parent's: a child changes nothing of it
            self._warn_once("fork", f"run.{what}", f"run {self.id} belongs to the process "
                            f"that forked this one: run.{what} = ... in a forked child is "
                            "ignored")
            return
        if self._disabled:
            self._name, self._notes = name, notes
            return
        with self._lock:
            if self._finished:
                self._warn_once("finished", f"run.{what}", f"run.{what} = ... after finish() "
                                f"is ignored: the run keeps its {what}")
                return
            if (name, notes) == (self._name, self._notes):
                return
            self._name, self._notes = name, notes
            try:
                self._manifest.update(name=name, notes=notes)
            except OSError as exc:  # a full disk: the backends still get them
                self._policy.report(settings.LOCAL_RECORD, exc, f"run.{what}")
            self._hook.unilog_dispatch_description(name=name, notes=notes)

    def _after_finish(self, what: str) -> bool:
        """True (with a one-time warning) when the run has already finished."""
        if self._finished:
            self._warn_once("finished", what, f"{what} after finish() reaches no backend")
        return self._finished

    # -- artifacts --------------------------------------------------------------

    def log_artifact(self, path: str | os.PathLike | Artifact, name: str | None = None,
                     type: str = "artifact", aliases: list[str] | None = None,
                     metadata: dict[str, Any] | None = None) -> Artifact | None:
        """Version a file or directory as an artifact and send it to every backend.

        ``path`` may also be a :class:`unilog.Artifact` built with ``add_file`` /
        ``add_dir`` / ``add_reference`` (as ``wandb.Artifact``): its own name, type
        and metadata are used (giving them here too is an error), and it becomes
        the stored version.

        The files are copied into the run directory (content-addressed, so an
        identical file is stored once) before this returns, so the caller may
        overwrite them at once. Returns the stored :class:`Artifact` (None for
        a disabled run).
        """
        if self._disabled:
            if self._forked:
                self._warn_once("fork", "artifact", f"run {self.id} belongs to the process "
                                "that forked this one: log_artifact in a forked child stores "
                                "nothing")
            return None
        self._policy.raise_pending()
        if isinstance(path, Artifact):
            if name is not None or type != "artifact" or metadata is not None:
                raise ArtifactError(f"log_artifact({path.name!r} artifact): its name, type "
                                    "and metadata are the artifact's own; give only aliases")
            artifact = self._artifacts.add_built(path, aliases=aliases)
        else:
            artifact = self._artifacts.add(path, name=name, type=type, aliases=aliases,
                                           metadata=metadata)
        if not self._after_finish("log_artifact"):  # still stored in the run directory
            with self._lock:
                self._hook.unilog_dispatch_artifact(artifact=artifact)
        return artifact

    def use_artifact(self, ref: str, timeout: float | None = None, *,
                     type: str | None = None) -> Artifact | FetchedArtifact:
        """Find an artifact by ``"name"``, ``"name:v3"``, ``"name:<alias>"`` or
        ``"<run id>/name:alias"``: in this run first, then in the project's other
        runs, newest first, then in the run's backends (each asked on its own
        worker, at most ``timeout`` seconds, default the finish timeout). Call
        ``.download()`` on the result for its files.

        A reference resolves exactly or fails: ``"<run id>/name:alias"`` names
        that run's artifact only. Backends fetch by name from whichever of
        their runs has it, so they are not asked for a reference pinned to a
        run; when the run is not found locally, that is an ArtifactError
        naming the reference and what was searched. ``type`` (as wandb's): the
        artifact found must be of that type, else an ArtifactError naming both."""
        project_dir = self._settings.dir / self.project
        try:
            found = find_artifact(ref, None if self._disabled else self.dir, project_dir)
        except ArtifactError as not_local:
            found = (None if self._disabled
                     else self._fetch_from_backends(ref, timeout, not_local))
            if found is None:
                raise not_local
        kind = getattr(found, "type", None)
        if type is not None and kind is not None and kind != type:
            raise ArtifactError(f"artifact {ref!r} is of type {kind!r}, not {type!r} as "
                                "use_artifact was asked")
        return found

    def _fetch_from_backends(self, ref: str, timeout: float | None,
                             not_local: ArtifactError) -> FetchedArtifact | None:
        """The artifact from the first backend that has it, or None. A reference
        pinned to a run raises ``not_local`` completed with why no backend was asked."""
        if not isinstance(ref, str):  # find_artifact said what a reference is
            return None
        remote = [n for n in self._dispatcher.names if n != settings.LOCAL_RECORD]
        pinned, _, rest = ref.rpartition("/")
        if pinned and remote:
            # download_artifact(name, alias, root) cannot be told the run: asked,
            # a backend would answer with any run's copy (issue 10 A13).
            raise ArtifactError(
                f"{not_local}; the backends ({', '.join(remote)}) were not asked: they "
                f"fetch an artifact by name from any of their runs, not from run {pinned!r}"
            ) from None
        name, alias = parse_ref(rest)
        timeout = settings.finish_timeout() if timeout is None else timeout
        for backend in remote:  # the local record was searched already
            root = self.dir / "artifacts" / ".fetched" / backend / name / alias
            if root.exists():
                shutil.rmtree(root)
            root.mkdir(parents=True)
            path = self._dispatcher.fetch(backend, name, alias, root, timeout)
            if path is not None:
                return FetchedArtifact(name, alias, Path(path), backend)
        return None

    # -- flush and finish ----------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every backend has stored what was logged so far (rows
        still open at the current step stay open), at most ``timeout`` seconds
        (default: the finish timeout). True if all made it in time."""
        if self._disabled:
            return True
        late = self._dispatcher.flush(settings.finish_timeout() if timeout is None else timeout)
        self._policy.raise_pending()
        return not late

    def finish(self, exit_code: int = 0, timeout: float | None = None, *,
               status: str | None = None) -> dict[str, Any]:
        """End the run everywhere; idempotent.

        Commits the open row, closes every backend in parallel, each bounded by
        ``timeout`` seconds (default ``$UNILOG_FINISH_TIMEOUT`` or 60), writes
        the final manifest and returns the per-backend report (what each
        delivered, dropped, skipped or failed). ``status`` defaults to
        ``finished`` for ``exit_code == 0``, else ``failed``.
        """
        if self._forked:
            return {}  # the parent finishes it
        with self._finish_lock:
            if self._report is not None:
                return self._report
            self.unwatch()  # a model outlives its run: no hook may log to a finished one
            status = status or ("finished" if exit_code == 0 else "failed")
            if status not in STATUSES:
                raise UnilogError(f"status must be one of {STATUSES}, not {status!r}")
            self._report = self._finish(status, exit_code, timeout)
        self._release()
        if self._settings.on_error == "raise":
            pending = self._policy.clear_pending()
            if pending and not self._disabled:
                raise pending[0]
        return self._report

    def _finish(self, status: str, exit_code: int, timeout: float | None) -> dict[str, Any]:
        with self._lock:
            self._finished = True
            if self._disabled:
                return {}
            self._commit()
        timeout = settings.finish_timeout() if timeout is None else timeout
        self._send_metric_summaries(timeout)
        report = self._dispatcher.close(status, exit_code, timeout)
        totals = _add_counts(self._settings.previous.get("totals")
                             or self._settings.previous.get("backends") or {}, report)
        try:
            self._manifest.update(status=status, exit_code=exit_code, ended=time.time(),
                                  step=self._step, backends=report, totals=totals)
        except OSError as exc:  # a full disk: the report still comes back, and says so
            local = report.setdefault(settings.LOCAL_RECORD, {})
            local["errors"] = local.get("errors", 0) + 1
            local["manifest"] = f"run.json not written: {type(exc).__name__}: {exc}"
            self._policy.report(settings.LOCAL_RECORD, exc, "finish")
        _log_problems(self.id, report)
        _print_summary(self, status, report)
        self._notify("unilog_run_finished", run=self, status=status, report=report)
        return report

    def _release(self) -> None:
        if not self._disabled:
            lifecycle.unregister(self)
        import unilog

        unilog._finished(self)

    def _notify(self, hook_name: str, **kwargs: Any) -> None:
        """Call an observer hook, one implementation at a time so one failure stays local."""
        for impl in getattr(get_plugin_manager().hook, hook_name).get_hookimpls():
            try:
                impl.function(**{k: v for k, v in kwargs.items() if k in impl.argnames})
            except Exception as exc:
                self._warn_once("plugin", impl.plugin_name,
                                f"plugin {impl.plugin_name!r} failed in {hook_name}: "
                                f"{type(exc).__name__}: {exc}")

    # -- fork (unilog._lifecycle's handlers) --------------------------------------------

    def _pause_backends(self, timeout: float) -> list:
        return self._dispatcher.pause(timeout)

    def _resume_backends(self, held: list) -> None:
        self._dispatcher.resume(held)

    def _forked_away(self) -> None:
        """In a forked child: this run is the parent's; it takes nothing more here.

        No lock is taken: another thread of the parent may have held one at the fork.
        """
        self._forked = True
        self._disabled = True
        self._finished = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self._finish_quietly(130, "killed")
        elif issubclass(exc_type, SystemExit):
            self._finish_quietly(*lifecycle.system_exit_status(exc))
        else:
            self._finish_quietly(1, "failed")

    def _finish_quietly(self, exit_code: int, status: str) -> None:
        # An exception is already propagating: never replace it with a backend error.
        try:
            self.finish(exit_code=exit_code, status=status)
        except UnilogError:
            pass

    def __repr__(self) -> str:
        return f"<unilog.Run id={self.id!r} name={self.name!r} dir={str(self.dir)!r}>"


def make_backends(backend_classes: dict[str, tuple[type, dict[str, Any]]], isolation: str
                  ) -> list[tuple[str, Any, dict[str, Any], int | None]]:
    """Each backend as (isolation, the instance (its name when it runs in the
    logging process), options, queue size).

    Every backend is built here, so bad options fail before anything is written;
    one that runs in the logging process is built again there from the same
    options (``isolation``, ``process`` and ``queue_size`` are the core's
    options, not the backend's). Used by ``init`` and by ``unilog sync``."""
    made = []
    for cls, options in backend_classes.values():
        options = dict(options)
        queue_size = options.pop("queue_size", None)
        where = settings.backend_isolation(cls, options, isolation)
        backend = settings.construct_backend(cls, options)  # bad options fail here
        if where == "process" and not _sendable_options(cls.name, options):
            where = "thread"
        if where == "process":
            made.append((where, cls.name, options, queue_size))
        else:
            made.append((where, backend, options, queue_size))
    return made


def _sendable_options(name: str, options: dict[str, Any]) -> bool:
    """True when ``options`` can be sent to the logging process; else warns, naming
    the option (the backend then runs on a thread of this process)."""
    import pickle

    for key, value in options.items():
        try:
            if b"__main__" in pickle.dumps(value):  # the logging process has another
                raise TypeError("it refers to the script's own __main__ module")
        except Exception as exc:
            warnings.warn(f"backend {name!r}: option {key!r} cannot be sent to the logging "
                          f"process ({type(exc).__name__}: {exc}), so this backend runs on "
                          "a thread of this process; isolation='thread' says so and "
                          "silences this", UnilogWarning, stacklevel=5)
            return False
    return True


def start_dispatcher(backends: list[tuple[str, Any, dict[str, Any], int | None]],
                     info: RunInfo, policy: ErrorPolicy,
                     on_open: Callable[[str, dict[str, Any]], None], *,
                     order: list[str] | None = None, extra: list[Any] = ()) -> Dispatcher:
    """The members serving ``backends`` (from :func:`make_backends`) for the run
    ``info``, started, with the config sent: the same for a live run and a sync.
    ``extra`` members (a sweep's reporter) join them."""
    from unilog._dispatch import DEFAULT_QUEUE_SIZE

    members: list[Any] = []
    remote_specs = []
    for isolation, backend, options, queue_size in backends:
        if isolation == "process":
            remote_specs.append((backend, options, queue_size or DEFAULT_QUEUE_SIZE))
            continue
        members.append(BackendWorker(
            backend, info, policy, blocking=backend.name == settings.LOCAL_RECORD,
            on_open=on_open, queue_size=queue_size or DEFAULT_QUEUE_SIZE))
    members.extend(extra)
    if remote_specs:
        from unilog._logging_process import LoggingProcess

        members.append(LoggingProcess.get().attach(remote_specs, info, policy, on_open))
    dispatcher = Dispatcher(members, order=order)
    dispatcher.start()
    dispatcher.hook.unilog_dispatch_config(config=info.config)
    return dispatcher


def _tag_list(where: str, given: tuple[Any, ...]) -> list[str]:
    """The tags in ``given`` (each a str or an iterable of str), each once, in order;
    a ConfigError naming the first that is not a non-empty str."""
    tags: list[str] = []
    for item in given:
        if isinstance(item, str):
            items: Iterable[Any] = (item,)
        elif isinstance(item, (bytes, bytearray)):
            raise ConfigError(f"{where}: tags are a str or an iterable of str, not "
                              f"{type(item).__name__} {item!r}")
        else:
            try:
                items = list(item)
            except TypeError:
                raise ConfigError(f"{where}: tags are a str or an iterable of str, not "
                                  f"{type(item).__name__} {item!r}") from None
        for tag in items:
            if not isinstance(tag, str) or not tag:
                kind = "" if isinstance(tag, str) else f" ({type(tag).__name__})"
                raise ConfigError(f"{where}: tag {tag!r}{kind} is not allowed: each tag "
                                  "must be a non-empty str")
            if tag not in tags:
                tags.append(str(tag))
    return tags


#: The counts of a finish report that add up over the sessions of a resumed run.
COUNTS = ("delivered", "dropped", "skipped", "failed", "failed_values", "errors",
          "fallback", "collisions")


def _add_counts(before: dict[str, dict[str, Any]],
                report: dict[str, dict[str, Any]]) -> dict[str, dict[str, int]]:
    """``totals`` in run.json: each backend's counts over every session of the run
    (``backends`` holds the latest session's report)."""
    totals: dict[str, dict[str, int]] = {}
    for name in {**before, **report}:
        old, new = before.get(name) or {}, report.get(name) or {}
        totals[name] = {key: int(old.get(key) or 0) + int(new.get(key) or 0) for key in COUNTS}
    return totals


def _problems(counts: dict[str, Any]) -> dict[str, Any]:
    """What one backend's report says it missed (nothing for a clean report)."""
    problems = {k: counts[k] for k in ("errors", "dropped", "failed", "failed_values",
                                       "undelivered", "collisions", "manifest", "missing")
                if counts.get(k)}
    if counts.get("timed_out"):
        problems["timed_out"] = True
    disabled = counts.get("disabled")
    if disabled and not disabled.startswith("skipped:"):  # a chosen skip was warned about
        problems["disabled"] = disabled
    return problems


def _log_problems(run_id: str, report: dict[str, dict[str, Any]]) -> None:
    import logging

    logger = logging.getLogger("unilog")
    local = _problems(report.get(settings.LOCAL_RECORD, {}))
    for name, counts in report.items():
        problems = _problems(counts)
        if not problems:
            continue
        if name == settings.LOCAL_RECORD:
            logger.warning("unilog run %s: the local record (%r) did not store everything: "
                           "%s", run_id, name, problems)
        else:
            # Only a clean local record may be said to have it all (a full disk).
            where = ("the local record missed some too" if local
                     else "the local record has it all")
            logger.warning("unilog run %s: backend %r did not receive everything: %s (%s)",
                           run_id, name, problems, where)


def _print_summary(run: Run, status: str, report: dict[str, dict[str, Any]]) -> None:
    """Where each backend wrote and the command to look at it, on stderr, like
    wandb's closing lines; ``UNILOG_SILENT=true`` keeps it quiet."""
    if run._quiet or os.environ.get("UNILOG_SILENT", "").lower() in ("1", "true", "yes"):
        return
    lines = [f"unilog: run {run.id} {status}: {run.dir}"]
    width = max((len(name) for name in report), default=0)
    for name, counts in report.items():
        info = counts.get("info") or {}
        view = info.get("view") or info.get("location")
        if counts.get("disabled") and not view:
            view = f"(nothing: {counts['disabled']})"
        if view:
            lines.append(f"  {name:<{width}}  {view}")
    try:
        print("\n".join(lines), file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed or full: the summary is only a courtesy
        pass
