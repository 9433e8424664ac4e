"""One backend's adapter: it shapes values for the backend and delivers them, a
failure costing only what caused it.

A :class:`BackendAdapter` is what a :class:`unilog._dispatch.Worker` hands its
batches to when the worker serves one backend (in the training process, or in
the logging process, :mod:`unilog._logging_process`). It knows nothing of
queues or threads; the worker knows nothing of values:

- **shaping**: device tensors read (their copies were started on the caller's
  thread), media the backend cannot store left to the local record's files
  (counted as ``fallback``), keys renamed by the backend's key rule through a
  :class:`unilog.backend.KeyMapper` (a collision costs the later key);
- **delivery with isolation**: see the comment above :meth:`_send_rows`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Callable

from unilog.backend import Backend, KeyMapper, KeyRule, PartialBatch, Row, RunInfo
from unilog._ledger import Ledger, LedgerError, path_of
from unilog._policy import ErrorPolicy
from unilog.tensors import PendingScalar

logger = logging.getLogger("unilog")

#: Held while a backend imports its SDK (``Backend.import_sdk``): one at a time.
#: Backends open on threads of their own, all at once; two threads importing, at
#: once, a package two SDKs share (numpy: mlflow's scipy and tensorboard both
#: import it) can each meet it half-initialised, since the import system hands a
#: module still being imported to the second thread rather than deadlock. mlflow
#: then failed to open ("module 'numpy._core' has no attribute '_multiarray_umath'")
#: in about one run in five with wandb, tensorboard and histograms beside it.
_SDK_IMPORT = threading.Lock()

# Everything a backend can throw stays in its worker: SystemExit from an SDK,
# a leaked asyncio.CancelledError... (a worker thread never gets Ctrl-C).
_CAUGHT = BaseException
_INFINITIES = (float("inf"), float("-inf"))
# Values sent one at a time to tell a backend that is down from one refusing a value.
_PROBES = 3
# Batches for which a key refused twice is left out before it is tried again.
_REFUSAL_BATCHES = 100


@dataclass
class Counts:
    """What happened to one backend's records (the finish report's counts)."""

    delivered: int = 0  # records the backend took
    skipped: int = 0  # records it was not sent: disabled, skipped at open, steps it cannot take
    failed: int = 0  # records lost to its errors (rows whose every value failed)
    failed_values: int = 0  # values lost from rows that otherwise landed
    errors: int = 0  # calls that raised
    fallback: int = 0  # media values it cannot store, kept as files by the local record
    collisions: int = 0  # keys not sent because another key takes their name
    done: int = 0  # records finished with, whatever their fate (for progress checks)

    def as_dict(self) -> dict[str, int]:
        """The counts the report shows (``done`` is bookkeeping)."""
        counts = asdict(self)
        del counts["done"]
        return counts


def _part(row: Row, items: Any) -> Row:
    """Some of ``row``'s values, at its step and time."""
    return Row(row.step, MappingProxyType(dict(items)), row.time)


class BackendAdapter:
    """Shapes values for one backend and calls it; every failure goes to the policy."""

    def __init__(self, backend: Backend, run: RunInfo, policy: ErrorPolicy, *,
                 blocking: bool = False,
                 on_open: Callable[[str, dict[str, Any]], None] | None = None):
        self.backend = backend
        self.name = backend.name
        self.capabilities = backend.capabilities
        self.flush_interval = backend.flush_interval
        self.blocking = blocking  # the local record: never disabled, flags non-finite values
        self.counts = Counts()
        self.info: dict[str, Any] = {}
        self.disabled: str | None = None
        #: Set once the backend is closed (or was never opened and the run closed).
        self.done = threading.Event()
        self.keys = KeyMapper(self.capabilities.key_rule)
        #: Keys this backend refused alone, twice, while it took others (for the report).
        self.refused_keys: set[str] = set()
        self._refused: dict[str, int] = {}  # key -> batches it is still left out for
        self._suspects: set[str] = set()  # keys that failed alone once
        self._own_report: dict[str, Any] = {}  # what the backend's report() added
        self._run = run
        self._policy = policy
        self._on_open = on_open
        self._consecutive = 0
        self._warned_kinds: set[Any] = set()
        # Only the default rule leaves keys alone; a subclass may override adapt().
        self._identity_keys = self.capabilities.key_rule == KeyRule()
        #: What the backend has for certain (unilog._ledger), for `unilog sync`; the
        #: local record keeps none: it is what a sync reads.
        self.ledger: Ledger | None = None
        self._fresh = False

    # -- the worker's calls -----------------------------------------------------

    def open(self) -> bool:
        """Open the backend; False when it failed (the worker then only counts what it misses)."""
        try:
            with _SDK_IMPORT:
                self.backend.import_sdk(self._run)
            self.info = dict(self.backend.open(self._run) or {})
            # "fresh": the backend's run is new, holding nothing (for the ledger only).
            self._fresh = bool(self.info.pop("fresh", False))
        except _CAUGHT as exc:
            self.counts.errors += 1
            self._policy.report(self.name, exc, "open")
            self.disabled = f"failed to open: {type(exc).__name__}: {exc}"
            return False
        if self.info.get("skipped"):
            # The backend chose not to run (e.g. a remote store in offline mode):
            # what it misses is counted as skipped, and it is no error.
            self.disabled = f"skipped: {self.info['skipped']}"
        elif not self.blocking and self._run.dir is not None:
            self._open_ledger()
        if self._on_open is not None:
            # The backend's own run id reaches the manifest now, not at finish,
            # so a run killed mid-way can still be resumed everywhere.
            try:
                self._on_open(self.name, self.info)
            except Exception as exc:
                self._policy.report(self.name, exc, "manifest")
        return True

    def stopped(self, exc: BaseException) -> None:
        """The worker's thread died of ``exc`` (a bug of ours or an SDK killing its thread)."""
        self.counts.errors += 1
        self._policy.report(self.name, exc, "worker")
        self.disabled = f"its worker stopped: {type(exc).__name__}: {exc}"

    def deliver_rows(self, rows: list[Row]) -> None:
        """Deliver a batch of rows (those the backend cannot take cost only their values)."""
        n = len(rows)
        if self.disabled:
            self.counts.skipped += n
            if self.ledger is not None:
                self.ledger.gap()
        else:
            if self._refused:
                self._age_refusals()
            adapted, outcome = self._adapt_rows(rows)
            lost_sent = self._send_rows(adapted) if adapted else set()
            lost = outcome.count(None) + len(lost_sent)
            self.counts.delivered += n - lost
            self.counts.failed += lost
            ledger = self.ledger
            if ledger is not None:
                for row, at in zip(rows, outcome):
                    ledger.row(row.step, at is not None and at not in lost_sent)
        self.counts.done += n

    def deliver(self, kind: str, payload: Any) -> None:
        """Deliver the config, summary values, the run's tags, its name and notes
        (``description``: a ``(name, notes)`` pair) or an artifact (or note
        a ``gap``: rows lost before they reached this worker)."""
        if kind == "gap":
            if self.ledger is not None:
                self.ledger.gap()
            self.counts.done += 1
            return
        if kind == "summary" and any(type(v) is PendingScalar for v in payload.values()):
            payload = {k: v.resolve() if type(v) is PendingScalar else v
                       for k, v in payload.items()}
        if self.disabled:
            self.counts.skipped += 1
        else:
            method = {"config": self.backend.log_config, "summary": self.backend.log_summary,
                      "tags": self.backend.set_tags, "description": self.backend.describe,
                      "artifact": self.backend.log_artifact}[kind]
            args = payload if kind == "description" else (payload,)
            if self._call(kind, method, *args):
                self.counts.delivered += 1
                if self.ledger is not None:
                    self.ledger.stored(kind, payload)
        self.counts.done += 1

    def skip(self, n: int) -> None:
        """``n`` records the backend will never see (it failed to open)."""
        self.counts.skipped += n
        self.counts.done += n

    def flush(self) -> None:
        """Ask the backend to push what it buffered."""
        if not self.disabled and self._call("flush", self.backend.flush):
            self._save_ledger()

    def call(self, fn: Callable[..., Any], args: tuple) -> Any:
        """Run a request's ``fn`` (a download) unless the backend is disabled."""
        return None if self.disabled else fn(*args)

    def close(self, status: str, exit_code: int) -> None:
        """Close the backend (unless it never opened) and collect its own report."""
        if self.disabled is None or not self.disabled.startswith("failed to open"):
            closed = self._call("close", self.backend.close, status, exit_code)
            try:
                self._own_report = dict(self.backend.report() or {})
            except Exception as exc:
                self._policy.report(self.name, exc, "report")
            if self.ledger is not None:
                self.ledger.status = status if closed else None
                self._save_ledger()
        self.done.set()

    def _open_ledger(self) -> None:
        """The backend's ledger at its destination (unilog._ledger), emptied when the
        backend says its run there is new (``"fresh"`` in its open answer)."""
        try:
            destination = self.backend.destination(self._run)
        except Exception as exc:  # a backend's bug: the ledger is kept without one
            self._policy.report(self.name, exc, "destination")
            destination = None
        try:
            ledger = Ledger.load(self._run.dir, self.name, destination)
        except LedgerError as exc:  # damaged: a new one replaces it (the sync resends)
            self._policy.report(self.name, exc, "ledger")
            ledger = Ledger(path_of(self._run.dir, self.name))
        if self._fresh:
            ledger.reset()
        ledger.destination = destination
        ledger.info = self.info
        ledger.status = None  # open again: no status until it is closed
        self.ledger = ledger
        self._save_ledger()

    def _save_ledger(self) -> None:
        """Write the ledger, leaving out what the backend still holds unstored."""
        if self.ledger is None:
            return
        try:
            self.ledger.save(self.backend.unconfirmed_steps())
        except Exception as exc:  # a full disk: the sync will resend, never lose
            self._policy.report(self.name, exc, "ledger")

    def report(self) -> dict[str, Any]:
        """The adapter's part of the backend's report."""
        report: dict[str, Any] = self.counts.as_dict()
        report["disabled"] = self.disabled
        report["info"] = self.info
        report["key_map"] = self.keys.renamed()
        report["refused_keys"] = sorted(self.refused_keys)
        for key, value in self._own_report.items():
            report.setdefault(key, value)
        return report

    # -- shaping ------------------------------------------------------------------

    def _adapt_rows(self, rows: list[Row]) -> tuple[list[Row], list[int | None]]:
        """The rows adapted to the backend, without refused keys, leaving out those
        left empty; and for each row given, its index among them, -1 when nothing
        of it was left to send (media the backend falls back on), or None when it
        was lost whole (a key rule that raised, or every value failed or refused)."""
        adapted: list[Row] = []
        outcome: list[int | None] = []
        for row in rows:
            before = self.counts.failed_values
            try:
                adapted_row = self._adapt(row)
            except _CAUGHT as exc:
                outcome.append(None)
                self._consecutive += 1
                self._failed("log", exc)
                continue
            if self._refused:
                adapted_row, dropped = self._without_refused(adapted_row)
                self.counts.failed_values += dropped
            if adapted_row.values:
                outcome.append(len(adapted))
                adapted.append(adapted_row)
            elif self.counts.failed_values > before:  # emptied by failures, not fallbacks
                self.counts.failed_values = before
                outcome.append(None)
            else:
                outcome.append(-1)
        return adapted, outcome

    def _adapt(self, row: Row) -> Row:
        values = row.values
        media = self.capabilities.media
        out: dict[str, Any] = {}
        changed = False
        for key, value in values.items():
            kind = type(value)
            if kind is PendingScalar:
                changed = True
                try:
                    value = value.resolve()
                except _CAUGHT as exc:  # the device copy failed: this value alone is lost
                    self.counts.failed_values += 1
                    self._failed("log", exc)
                    continue
                if self.blocking and (value != value or value in _INFINITIES):
                    self._flag_nonfinite(key, value, row.step)
            elif kind is not float and kind is not int:
                media_kind = getattr(value, "kind", None)
                if media_kind not in media:
                    self._fallback(key, media_kind)
                    changed = True
                    continue
            if not self._identity_keys:
                mapped = self.keys.map(key)
                if mapped is None:
                    self._collided(key)
                    changed = True
                    continue
                if mapped != key:
                    changed = True
                    key = mapped
            out[key] = value
        return Row(row.step, MappingProxyType(out), row.time) if changed else row

    def _collided(self, key: str) -> None:
        from unilog.errors import KeyCollisionError

        for owner, later, name in self.keys.take_collisions():  # empty after the first time
            self.counts.collisions += 1
            self._policy.report(self.name, KeyCollisionError(
                self.name, f"keys {owner!r} and {later!r} both become {name!r} under this "
                f"backend's key rules; {later!r} is not sent to it (the local record has it)"),
                "log")

    def _flag_nonfinite(self, key: str, value: float, step: int) -> None:
        # A device tensor's value is first known here, on the local record's
        # worker: flag it through the logger (the caller flags plain floats).
        if ("nonfinite", key) not in self._warned_kinds:
            self._warned_kinds.add(("nonfinite", key))
            logger.warning("key %r is %s at step %d; kept as a float (warned once per key)",
                           key, value, step)

    def _fallback(self, key: str, media_kind: str | None) -> None:
        self.counts.fallback += 1
        if media_kind not in self._warned_kinds:
            self._warned_kinds.add(media_kind)
            logger.warning("backend %r does not support %s values (first: key %r); they are "
                           "kept as files in the run directory", self.name, media_kind, key)

    def _without_refused(self, row: Row) -> tuple[Row, int]:
        """``row`` without the keys refused now, and how many values that left out."""
        kept = [(k, v) for k, v in row.values.items() if k not in self._refused]
        if len(kept) == len(row.values):
            return row, 0
        return _part(row, kept), len(row.values) - len(kept)

    # -- delivery with isolation ------------------------------------------------------
    #
    # A record or key the backend cannot take costs only itself. When a batch
    # fails, rows the backend says it stored (PartialBatch) are done; then one
    # value from each of up to _PROBES rows is sent alone: a backend that takes
    # none is down (a dead server: the batch is failed at once, a few calls,
    # never one per row). A backend that takes one is up, so the rest is split
    # in halves and sent again, down to one row and then to one key of it: one
    # bad key among 1,000 rows costs one value in about 2*log2(1000) calls, and
    # no row is sent twice. A key that fails alone twice with no success between
    # (so not one bad step or value) is refused for the next _REFUSAL_BATCHES
    # batches without a call (counted, named in the report), so a bad key
    # logged at every step costs nothing more; then it is tried again.

    def _send_rows(self, rows: list[Row]) -> set[int]:
        """Send one batch; return the indices of the rows lost entirely (values lost
        from rows that otherwise landed are counted in ``failed_values``)."""
        stored, error = self._try_log(rows)
        if error is None:
            self._consecutive = 0
            return set()
        self._consecutive = 1 if stored else self._consecutive + 1
        parts = list(enumerate(rows))[stored:]
        lost: dict[int, int] = {}
        if (self._policy.mode == "disable" or self._consecutive >= self._policy.max_consecutive
                or (len(parts) == 1 and len(parts[0][1].values) == 1)):
            self._failed("log", error)
            return {i for i, _ in parts}
        if self._probe(parts, lost):
            self._deliver(parts, lost)
        else:
            self._failed("log", error)  # down: the rest of the batch, one error
            return {i for i, _ in parts}
        whole = [i for i, n in lost.items() if n == len(rows[i].values)]
        self.counts.failed_values += sum(lost.values()) - sum(len(rows[i].values)
                                                              for i in whole)
        return set(whole)

    def _probe(self, parts: list[tuple[int, Row]], lost: dict[int, int]) -> bool:
        """Send one value of each of a few rows alone (taking it out of ``parts``);
        True once one gets through: the backend is up, the others' failures were theirs."""
        failures = []
        picks = sorted({0, len(parts) // 2, len(parts) - 1}) if len(parts) > 1 else [0] * _PROBES
        for at in picks[:_PROBES]:
            index, row = parts[at]
            if not row.values:
                continue
            key, value = next(iter(row.values.items()))
            parts[at] = (index, _part(row, [(k, v) for k, v in row.values.items() if k != key]))
            _, failure = self._try_log([_part(row, [(key, value)])])
            if failure is None:
                self._consecutive = 0
                for bad_index, bad_key, error in failures:
                    self._refuse(bad_key, error)
                    lost[bad_index] = lost.get(bad_index, 0) + 1
                parts[:] = [p for p in parts if p[1].values]
                return True
            failures.append((index, key, failure))
        return False

    def _deliver(self, parts: list[tuple[int, Row]], lost: dict[int, int]) -> None:
        """Send (row index, row) parts, splitting what fails; count lost values in ``lost``."""
        if self._refused:  # refused meanwhile: leave them out of the rest of the batch
            kept = []
            for index, row in parts:
                row, dropped = self._without_refused(row)
                if dropped:
                    lost[index] = lost.get(index, 0) + dropped
                if row.values:
                    kept.append((index, row))
            parts = kept
        if not parts:
            return
        stored, error = self._try_log([row for _, row in parts])
        if error is None:
            return
        parts = parts[stored:]
        if stored or len(parts) == 1:  # parts[0] is the one that failed
            self._deliver_values(parts[0], error, lost)
            self._deliver(parts[1:], lost)
            return
        half = len(parts) // 2
        self._deliver(parts[:half], lost)
        self._deliver(parts[half:], lost)

    def _deliver_values(self, part: tuple[int, Row], error: BaseException,
                        lost: dict[int, int]) -> None:
        """One row the backend refused: its values in halves, down to the one at fault."""
        index, row = part
        items = list(row.values.items())
        if len(items) == 1:
            self._refuse(items[0][0], error)
            lost[index] = lost.get(index, 0) + 1
            return
        half = len(items) // 2
        self._deliver([(index, _part(row, items[:half]))], lost)
        self._deliver([(index, _part(row, items[half:]))], lost)

    def _refuse(self, key: str, error: BaseException) -> None:
        """``key`` failed alone while the backend took other values: the second time
        (the first may have been that step's or that value's fault), it is refused
        for the next _REFUSAL_BATCHES batches."""
        if key in self._suspects:
            self._refused[key] = _REFUSAL_BATCHES + 1  # aged at the start of each next batch
            self.refused_keys.add(key)
        self._suspects.add(key)
        self._failed(f"log of key {key!r}", error)  # under "raise", the error names the key

    def _age_refusals(self) -> None:
        """A refusal lasts _REFUSAL_BATCHES batches; then the key is tried again,
        refused at once if it fails alone again."""
        for key, left in list(self._refused.items()):
            if left <= 1:
                del self._refused[key]
            else:
                self._refused[key] = left - 1

    def _try_log(self, rows: list[Row]) -> tuple[int, BaseException | None]:
        """(rows stored, the error or None) of one call of the backend."""
        try:
            self.backend.log_rows(rows)
        except PartialBatch as partial:
            stored, error = partial.stored, partial.__cause__ or partial
        except _CAUGHT as exc:
            stored, error = 0, exc
        else:
            stored, error = len(rows), None
        if self._suspects:  # a key that got through is no longer suspected
            for row in rows[:stored]:
                self._suspects.difference_update(row.values)
        return stored, error

    # -- failures -------------------------------------------------------------------

    def _call(self, phase: str, fn: Any, *args: Any) -> bool:
        """Call the backend; on failure apply the policy. True when it succeeded."""
        try:
            fn(*args)
        except _CAUGHT as exc:
            self.counts.failed += 1
            self._consecutive += 1
            self._failed(phase, exc)
            return False
        if phase != "flush":  # a flush delivers nothing: it must not hide failing log calls
            self._consecutive = 0
        return True

    def _failed(self, phase: str, exc: BaseException) -> None:
        """Count and report one failure; the policy may disable the backend."""
        self.counts.errors += 1
        reason = self._policy.failed(self.name, exc, phase, self._consecutive)
        # The local record is never disabled: it is what everything else
        # falls back on, and a bad value must not cost it the rest of the run.
        if reason and not self.disabled and not self.blocking:
            self.disabled = reason
            logger.error("unilog backend %r is %s; the local record keeps everything",
                         self.name, reason)
