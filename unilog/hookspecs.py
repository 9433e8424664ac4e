"""The hooks a unilog plugin can implement, grouped by lifecycle.

Plugins implement them with ``@unilog.hookimpl``. unilog always calls hooks with
keyword arguments, so an implementation may accept fewer arguments than the spec
lists and keep working when arguments are added.

Two plugin managers use these specs:

- the **global** one (``unilog.plugins``) holds the built-in and third-party
  plugins: it asks them to register backends and tells observers about runs;
- each **run** has its own, on which only that run's backends are registered:
  a worker per backend that runs in this process, and one member standing for
  all of the run's backends in the logging process (:mod:`unilog._dispatch`). The dispatch hooks
  (``unilog_dispatch_*``) are called there, once per record, so one hook call
  reaches exactly the run's backends. Their implementations must never raise:
  pluggy stops at the first exception of a hook call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import pluggy

if TYPE_CHECKING:
    from unilog.artifacts import Artifact
    from unilog.backend import Backend, Row
    from unilog.runs import Run

hookspec = pluggy.HookspecMarker("unilog")
hookimpl = pluggy.HookimplMarker("unilog")


# -- registration (global manager) -------------------------------------------


@hookspec
def unilog_register_backends(register: Callable[[type[Backend]], None]) -> None:
    """Register backend classes by calling ``register(BackendSubclass)``.

    Called once, the first time unilog needs the backend registry (never at
    ``import unilog``). A raise is reported as a warning naming the plugin, and
    the backends it registered before raising are kept.

    :param register: call it with each :class:`unilog.Backend` subclass; the
        class's ``name`` is what users put in ``backends=[...]``.
    """


# -- run lifecycle (global manager, caller's thread) --------------------------


@hookspec
def unilog_run_started(run: Run) -> None:
    """Called at the end of ``unilog.init``, on the caller's thread.

    For observers (e.g. a plugin that prints the run directory). Keep it cheap.
    A raise is reported as a warning naming the plugin; the run goes on.
    """


@hookspec
def unilog_process_row(run: Run, step: int, values: dict[str, Any]) -> None:
    """Transform the values of a row before it is dispatched, in place.

    Called on the caller's thread for each committed row, so it must be cheap.
    ``values`` is the flattened, normalised ``{key: value}`` mapping; add
    derived metrics or delete keys by mutating it. A raise is reported once as
    a warning naming the plugin, the plugin is skipped for the rest of the run,
    and the row goes on unchanged by it.
    """


@hookspec
def unilog_run_finished(run: Run, status: str, report: dict[str, Any]) -> None:
    """Called once at the end of ``finish`` with the final status and report.

    ``report`` maps each backend's name to its counts (errors, dropped,
    skipped, ...). A raise is reported as a warning naming the plugin.
    """


# -- dispatch (per-run manager: the run's backend adapters) --------------------


@hookspec
def unilog_dispatch_row(row: Row, local_only: bool) -> None:
    """Hand one committed row to every backend of the run.

    ``local_only`` is True for a row whose step went backwards: only the
    local record and backends declaring ``out_of_order_steps`` take it.
    Must not raise.
    """


@hookspec
def unilog_dispatch_config(config: dict[str, Any]) -> None:
    """Hand the run's whole (redacted) config to every backend. Must not raise."""


@hookspec
def unilog_dispatch_summary(summary: dict[str, Any]) -> None:
    """Hand summary values to every backend. Must not raise."""


@hookspec
def unilog_dispatch_tags(tags: tuple[str, ...]) -> None:
    """Hand the run's tags to every backend after ``run.add_tags`` added some.

    ``tags`` is all of the run's tags, in order (those given to ``init`` first),
    not only the new ones. Queued in order with the rows, so a backend gets them
    between the rows logged before and after the call. Must not raise.
    """


@hookspec
def unilog_dispatch_description(name: str, notes: str | None) -> None:
    """Hand the run's name and notes to every backend after ``run.name = ...`` or
    ``run.notes = ...`` changed one of them.

    Both are the current values (``notes`` may be None). Queued in order with the
    rows, so a backend gets them between the rows logged before and after the
    change. Must not raise.
    """


@hookspec
def unilog_dispatch_artifact(artifact: Artifact) -> None:
    """Hand a stored artifact to every backend. Must not raise."""


@hookspec
def unilog_dispatch_control(message: Any) -> None:
    """Hand a flush barrier or the close message to every backend's worker.

    Control messages bypass the queue bound so ``flush``/``finish`` always
    reach the worker. Must not raise.
    """


__all__ = ["hookimpl", "hookspec"]
