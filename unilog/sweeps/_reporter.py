"""The trial run's reporter: a member of the run's dispatcher that feeds the sweep.

On the caller's thread it only looks the metric up in each row (one dict lookup)
and queues the value. Its own thread opens the sweep's storage, reports each
value to Optuna's pruner (the n-th value logged under the metric is iteration
n, as W&B's hyperband counts), asks whether the trial should stop (the run's
``should_stop`` then turns True), and at the run's close leaves the run's
status and the metric's value (``run.summary[metric]`` if set, else the last
value logged) in the trial's attributes, where the agent reads them.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable

from unilog._dispatch import DEFAULT_QUEUE_SIZE, Control, Worker
from unilog._sweep_link import TrialLink
from unilog.backend import Row, RunInfo
from unilog.hookspecs import hookimpl
from unilog.sweeps import _engine as engine

logger = logging.getLogger("unilog")


def metric_keys(metric: str | None) -> tuple[str, ...]:
    """The logged keys a W&B metric name matches: as written, and with W&B's nesting
    dots as unilog's ``/`` (``val.loss`` is ``run.log({"val": {"loss": x}})``)."""
    if metric is None:
        return ()
    return (metric,) if "." not in metric else (metric, metric.replace(".", "/"))


def _number(value: Any) -> float | None:
    resolve = getattr(value, "resolve", None)  # a device tensor's PendingScalar
    try:
        value = resolve() if resolve is not None else value
    except Exception:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class TrialReporter(Worker):
    """Feeds a trial run's metric to the sweep (see the module docstring)."""

    #: Not a backend: no report of its own, no closing line.
    names: list[str] = []

    def __init__(self, link: TrialLink, info: RunInfo, on_prune: Callable[[], None],
                 stop_seen: Callable[[], bool]):
        super().__init__("sweep-trial", queue_size=DEFAULT_QUEUE_SIZE)
        self.link = link
        self._keys = metric_keys(link.metric)
        self._run_id, self._run_dir = info.id, str(info.dir)
        self._on_prune = on_prune
        self._stop_seen = stop_seen
        self._not_number: str | None = None  # the type of a value that was no number
        self._storage: Any = None
        self._trial: Any = None
        self._last: float | None = None
        self._summary: float | None = None
        self._iterations = 0
        self._pruned = False
        self._close: Control | None = None

    # -- the caller's thread ------------------------------------------------------------

    @hookimpl
    def unilog_dispatch_row(self, row: Row, local_only: bool) -> None:
        """Queue the metric's value when the row has it."""
        for key in self._keys:
            value = row.values.get(key)
            if value is not None:
                self.put(("row", value))
                return

    @hookimpl
    def unilog_dispatch_summary(self, summary: dict[str, Any]) -> None:
        """Queue ``run.summary[metric]`` when it is set."""
        for key in self._keys:
            if key in summary:
                self.put(("summary", summary[key]))
                return

    def barrier(self, timeout: float) -> None:
        """``run.flush`` does not wait for the sweep: nothing to return."""
        return None

    def late(self, control: Control) -> list[str]:
        """Never late for a flush (it takes part in none)."""
        return []

    def close(self, status: str, exit_code: int, timeout: float) -> None:
        """Leave the run's ending in the trial (answered by the thread)."""
        self._close = Control("close", status, exit_code)
        self.send_control(self._close)

    def wait(self, deadline: float) -> bool:
        """Wait until the close was written to the storage, at most until ``deadline``."""
        import time

        if self._close is None:
            return True
        return self._close.event.wait(max(0.0, deadline - time.monotonic()))

    def reports(self) -> dict[str, dict[str, Any]]:
        """No backend report: the trial's outcome lives in the sweep."""
        return {}

    def fetch(self, *args: Any) -> None:
        """Never asked: it holds no artifacts."""
        return None

    # -- its own thread -----------------------------------------------------------------

    def _open(self) -> bool:
        import optuna

        try:
            self._storage = self.link.opened or engine.open_storage(self.link.storage)
            if self.link.opened is None:
                # In a program's process: say where the run is now, in case the process
                # is killed before its close (in the agent's own process, the close
                # says it, one write fewer per trial).
                self._set(engine.RUN_ATTR, {"id": self._run_id, "dir": self._run_dir})
            if self.link.prune:
                study, _spec = engine.load(self.link.sweep_id, self.link.storage,
                                           for_agent=False, storage=self._storage)
                self._trial = optuna.trial.Trial(study, self.link.trial_id)
        except Exception as exc:
            logger.warning("sweep %s, trial %d: cannot reach the sweep's storage (%s: %s); "
                           "the trial's outcome is not recorded", self.link.sweep_id,
                           self.link.number, type(exc).__name__, exc)
            return False
        return True

    def _set(self, key: str, value: Any) -> None:
        self._storage.set_trial_user_attr(self.link.trial_id, key, value)

    def _take(self, records: list[Any]) -> None:
        for kind, value in records:
            number = _number(value)
            if number is None:
                self._not_number = type(value).__name__.lower()  # text, image, ...
                continue
            if kind == "summary":
                self._summary = number
                continue
            self._last = number
            self._iterations += 1
            if self._trial is not None and not self._pruned and math.isfinite(number):
                self._report(number)

    def _report(self, value: float) -> None:
        try:
            self._trial.report(value, self._iterations)
            if not self._trial.should_prune():
                return
            self._pruned = True
            self._set(engine.PRUNED_ATTR, self._iterations)
        except Exception as exc:  # the storage went away: the run goes on unpruned
            logger.warning("sweep %s, trial %d: reporting to the pruner failed (%s: %s)",
                           self.link.sweep_id, self.link.number, type(exc).__name__, exc)
            self._trial = None
            return
        logger.info("sweep %s, trial %d: pruned at iteration %d (run.should_stop is True)",
                    self.link.sweep_id, self.link.number, self._iterations)
        self._on_prune()

    def _control(self, control: Control) -> bool:
        if control.kind != "close":
            control.answer()
            return False
        status, _exit_code = control.args
        value = self._summary if self._summary is not None else self._last
        try:
            self._set(engine.ENDED_ATTR, {
                "status": status, "value": value, "id": self._run_id, "dir": self._run_dir,
                "obeyed": self._stop_seen(),  # the run read should_stop as True
                "not_number": self._not_number if value is None else None})
        except Exception as exc:
            logger.warning("sweep %s, trial %d: its ending could not be recorded (%s: %s)",
                           self.link.sweep_id, self.link.number, type(exc).__name__, exc)
        control.answer()
        return True
