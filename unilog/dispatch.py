"""Per-backend workers: the only place backend code runs after ``init``.

Each backend of a run gets a :class:`BackendWorker`: a daemon thread fed by an
unbounded C-level ``SimpleQueue`` whose bound unilog enforces itself, so the
hot path (``put``) is a counter comparison and one C call. The workers are
registered on the run's own pluggy manager, so one ``unilog_dispatch_*`` hook
call reaches exactly the run's backends (see :mod:`unilog.hookspecs`).

When a backend's queue is full, that backend alone misses the record (it is
counted); the local record's worker instead makes the caller wait, because the
local record must keep everything.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from queue import Empty, SimpleQueue
from types import MappingProxyType
from typing import Any, Callable

import pluggy

from unilog.backend import Backend, KeyRule, PartialBatch, Row, RunInfo
from unilog.errors import KeyCollisionError
from unilog.hookspecs import hookimpl
from unilog.plugins import new_manager
from unilog.policy import ErrorPolicy
from unilog.tensors import PendingScalar

logger = logging.getLogger("unilog")

# Records a backend may have waiting. Big enough that a burst of logging while a
# backend is still opening (MLflow's first SQLite use takes ~2 s) loses nothing;
# a backend stalled for a whole run holds at most this many (~35 MB of 4-scalar
# rows, measured by `python -m benchmarks`).
DEFAULT_QUEUE_SIZE = int(os.environ.get("UNILOG_QUEUE_SIZE", "100000"))
_BATCH = 1024
# After a batch that emptied its queue, a worker waits this long before taking
# more, so rows pile up meanwhile: the caller's put() then wakes no sleeping
# thread (a futex wake per row per backend otherwise), each backend call gets a
# bigger batch, and the workers contend for the interpreter lock once per
# interval instead of once per row. In a CPU training loop with six backends
# this cut the loop's slowdown from 11x to 3x (docs/performance.md). A row waits at most
# this much longer; flush, finish and requests wake the worker at once.
LINGER_S = float(os.environ.get("UNILOG_WORKER_LINGER", "0.1"))
_COLLIDED = object()
# Everything a backend can throw stays in its worker: SystemExit from an SDK,
# a leaked asyncio.CancelledError... (a worker thread never gets Ctrl-C).
_CAUGHT = BaseException
_INFINITIES = (float("inf"), float("-inf"))
# Values sent one at a time to tell a backend that is down from one refusing a value.
_PROBES = 3
# Batches for which a key refused twice is left out before it is tried again.
_REFUSAL_BATCHES = 100


def _part(row: Row, items: Any) -> Row:
    """Some of ``row``'s values, at its step and time."""
    return Row(row.step, MappingProxyType(dict(items)), row.time)


class _Barrier:
    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event = threading.Event()


class _Request:
    """Run ``fn`` on the worker, in order with the records before it (e.g. a download)."""

    __slots__ = ("fn", "args", "event", "result", "error")

    def __init__(self, fn: Callable[..., Any], args: tuple) -> None:
        self.fn, self.args = fn, args
        self.event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class _Close:
    __slots__ = ("status", "exit_code")

    def __init__(self, status: str, exit_code: int):
        self.status = status
        self.exit_code = exit_code


_CONTROL = (_Barrier, _Close, _Request)


class BackendWorker:
    """One backend, its queue, its thread, and its counts."""

    def __init__(self, backend: Backend, run: RunInfo, policy: ErrorPolicy, *,
                 queue_size: int = DEFAULT_QUEUE_SIZE, blocking: bool = False,
                 on_open: Callable[[str, dict[str, Any]], None] | None = None):
        self.backend = backend
        self.name = backend.name
        self.capabilities = backend.capabilities
        self.blocking = blocking
        self.info: dict[str, Any] = {}
        self.key_map: dict[str, str] = {}
        #: Keys this backend refused alone, twice, while it took others (for the report).
        self.refused_keys: set[str] = set()
        self._refused: dict[str, int] = {}  # key -> batches it is still left out for
        self._suspects: set[str] = set()  # keys that failed alone once
        self._own_report: dict[str, Any] = {}  # what the backend's report() added
        # Worker-side counts; the caller's thread keeps its own two (dropped,
        # regressed) so no counter is written by two threads.
        self.counts = {"delivered": 0, "skipped": 0, "failed": 0, "failed_values": 0,
                       "errors": 0, "fallback": 0, "collisions": 0}
        self._dropped = 0
        self._regressed = 0
        self.disabled: str | None = None
        self._run = run
        self._policy = policy
        self._on_open = on_open
        self._maxsize = max(1, queue_size)
        self._queue: SimpleQueue = SimpleQueue()
        self._enqueue = self._queue.put
        self._out_of_order = self.capabilities.out_of_order_steps
        # The queue bound compares records put with records *taken* off the queue
        # (a batch being written no longer counts against it); "done" counts what
        # the backend has finished with, for the report and finish's progress check.
        self._put_count = 0  # written by producers only (under the run's lock)
        self._taken_count = 0  # written by the worker only
        self._done_count = 0  # written by the worker only
        self._room = threading.Event()
        self._done = threading.Event()
        self._wake = threading.Event()  # ends a linger early: a barrier, close or request
        self._consecutive = 0
        self._keys: dict[str, Any] = {}
        self._owners: dict[str, str] = {}
        self._warned_kinds: set[Any] = set()
        # Only the default rule leaves keys alone; a subclass may override adapt().
        self._identity_keys = self.capabilities.key_rule == KeyRule()
        #: Held while the backend's code runs: a fork waits for it (see Dispatcher.pause),
        #: so no SDK lock is held mid-call in the child (Neptune's fork handler
        #: deadlocked on one).
        self.busy = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"unilog-{self.name}",
                                        daemon=True)

    def start(self) -> None:
        """Start the thread; it opens the backend before taking records."""
        self._thread.start()

    def alive(self) -> bool:
        """True while the worker thread runs (it may be stuck in its backend)."""
        return self._thread.is_alive()

    # -- producer side: hook implementations, called on the caller's thread ----

    @hookimpl
    def unilog_dispatch_row(self, row: Row, local_only: bool) -> None:
        """Queue a row (never raises)."""
        if local_only and not self._out_of_order:
            self._regressed += 1
        elif self._put_count - self._taken_count < self._maxsize:
            # The common case inlined: this runs once per backend per row.
            self._put_count += 1
            self._enqueue(row)
        else:
            self._put(row)

    @hookimpl
    def unilog_dispatch_config(self, config: dict[str, Any]) -> None:
        """Queue the config (never raises)."""
        self._put(("config", config))

    @hookimpl
    def unilog_dispatch_summary(self, summary: dict[str, Any]) -> None:
        """Queue summary values (never raises)."""
        self._put(("summary", summary))

    @hookimpl
    def unilog_dispatch_artifact(self, artifact: Any) -> None:
        """Queue an artifact (never raises)."""
        self._put(("artifact", artifact))

    @hookimpl
    def unilog_dispatch_control(self, message: Any) -> None:
        """Queue a barrier or the close message, bypassing the bound (never raises)."""
        self._queue.put(message)
        self._wake.set()

    def _put(self, item: Any) -> None:
        if self._put_count - self._taken_count >= self._maxsize:
            if not (self.blocking and self._wait_for_room()):
                self._dropped += 1
                return
        self._put_count += 1
        self._queue.put(item)

    def _wait_for_room(self) -> bool:
        """Back-pressure for the local record: wait while its worker makes progress."""
        while self._put_count - self._taken_count >= self._maxsize:
            if not self._thread.is_alive() or self.disabled:
                return False
            self._room.clear()
            self._room.wait(0.05)
        return True

    # -- consumer side: the worker thread ---------------------------------------

    def _loop(self) -> None:
        try:
            with self.busy:
                opened = self._open()
            if opened:
                self._serve()
                return
        except BaseException as exc:  # a bug of ours or an SDK killing its thread
            self.counts["errors"] += 1
            self._policy.report(self.name, exc, "worker")
            self.disabled = f"its worker stopped: {type(exc).__name__}: {exc}"
        self._drain_disabled()

    def _serve(self) -> None:
        if self.disabled:  # skipped at open
            self._drain_disabled()
            return
        interval = self.backend.flush_interval
        next_flush = time.monotonic() + interval if interval else None
        dirty = False
        while True:
            timeout = None if next_flush is None else max(0.0, next_flush - time.monotonic())
            try:
                batch = [self._queue.get(timeout=timeout)]
            except Empty:
                batch = []
            while len(batch) < _BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except Empty:
                    break
            self._mark_taken(batch)
            with self.busy:
                closed = self._process(batch)
            if closed:
                return  # closed: the backend must not be flushed after close()
            dirty = dirty or bool(batch)
            if batch and len(batch) < _BATCH and LINGER_S > 0:
                self._wake.wait(LINGER_S)
                self._wake.clear()  # a message that set it is in the queue: taken next
            if next_flush is not None and time.monotonic() >= next_flush:
                if dirty and not self.disabled:
                    with self.busy:
                        self._call("flush", self.backend.flush)
                dirty = False
                next_flush = time.monotonic() + interval

    def _open(self) -> bool:
        try:
            self.info = dict(self.backend.open(self._run) or {})
        except _CAUGHT as exc:
            self.counts["errors"] += 1
            self._policy.report(self.name, exc, "open")
            self.disabled = f"failed to open: {type(exc).__name__}: {exc}"
            return False
        if self.info.get("skipped"):
            # The backend chose not to run (e.g. a remote store in offline mode):
            # what it misses is counted as skipped, and it is no error.
            self.disabled = f"skipped: {self.info['skipped']}"
        if self._on_open is not None:
            # The backend's own run id reaches the manifest now, not at finish,
            # so a run killed mid-way can still be resumed everywhere.
            try:
                self._on_open(self.name, self.info)
            except Exception as exc:
                self._policy.report(self.name, exc, "manifest")
        return True

    def _drain_disabled(self) -> None:
        """A backend that cannot take records: count what it misses, release
        flush barriers, and end when the run closes."""
        while True:
            item = self._queue.get()
            self._mark_taken([item])
            if isinstance(item, (_Barrier, _Request)):
                item.event.set()
            elif isinstance(item, _Close):
                self._done.set()
                return
            else:
                self.counts["skipped"] += 1
                self._mark_done(1)

    def _process(self, batch: list[Any]) -> bool:
        rows: list[Row] = []
        for item in batch:
            if type(item) is Row:
                rows.append(item)
                continue
            if rows:
                self._deliver_rows(rows)
                rows = []
            if isinstance(item, _Barrier):
                if not self.disabled:
                    self._call("flush", self.backend.flush)
                item.event.set()
            elif isinstance(item, _Close):
                self._close(item)
                return True
            elif isinstance(item, _Request):
                self._answer(item)
            else:
                self._deliver_other(item)
        if rows:
            self._deliver_rows(rows)
        return False

    def _answer(self, request: _Request) -> None:
        try:
            if not self.disabled:
                request.result = request.fn(*request.args)
        except _CAUGHT as exc:
            request.error = exc
        request.event.set()

    def request(self, fn: Callable[..., Any], *args: Any, timeout: float) -> Any:
        """Run ``fn(*args)`` on this worker and wait for its result (at most ``timeout``).

        For explicit, blocking user calls only (``use_artifact``): the backend's
        code still runs on its own thread. Returns None if the worker is gone,
        disabled or late; re-raises what ``fn`` raised.
        """
        if not self.alive() or self.disabled:
            return None
        request = _Request(fn, args)
        self._queue.put(request)
        self._wake.set()
        if not request.event.wait(timeout):
            return None
        if request.error is not None:
            raise request.error
        return request.result

    def _deliver_rows(self, rows: list[Row]) -> None:
        n = len(rows)
        if self.disabled:
            self.counts["skipped"] += n
        else:
            if self._refused:
                self._age_refusals()
            adapted, lost = self._adapt_rows(rows)
            if adapted:
                lost += self._send_rows(adapted)
            self.counts["delivered"] += n - lost
            self.counts["failed"] += lost
        self._mark_done(n)

    def _adapt_rows(self, rows: list[Row]) -> tuple[list[Row], int]:
        """The rows adapted to the backend, without refused keys, leaving out those
        left empty; and how many rows were lost whole (a key rule that raised, or
        every value failed or refused)."""
        adapted, lost = [], 0
        for row in rows:
            before = self.counts["failed_values"]
            try:
                adapted_row = self._adapt(row)
            except _CAUGHT as exc:
                lost += 1
                self._consecutive += 1
                self._failed("log", exc)
                continue
            if self._refused:
                adapted_row, dropped = self._without_refused(adapted_row)
                self.counts["failed_values"] += dropped
            if adapted_row.values:
                adapted.append(adapted_row)
            elif self.counts["failed_values"] > before:  # emptied by failures, not fallbacks
                self.counts["failed_values"] = before
                lost += 1
        return adapted, lost

    def _without_refused(self, row: Row) -> tuple[Row, int]:
        """``row`` without the keys refused now, and how many values that left out."""
        kept = [(k, v) for k, v in row.values.items() if k not in self._refused]
        if len(kept) == len(row.values):
            return row, 0
        return _part(row, kept), len(row.values) - len(kept)

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

    def _send_rows(self, rows: list[Row]) -> int:
        """Send one batch; return how many rows were lost entirely (values lost
        from rows that otherwise landed are counted in ``failed_values``)."""
        stored, error = self._try_log(rows)
        if error is None:
            self._consecutive = 0
            return 0
        self._consecutive = 1 if stored else self._consecutive + 1
        parts = list(enumerate(rows))[stored:]
        lost: dict[int, int] = {}
        if (self._policy.mode == "disable" or self._consecutive >= self._policy.max_consecutive
                or (len(parts) == 1 and len(parts[0][1].values) == 1)):
            self._failed("log", error)
            return len(parts)
        if self._probe(parts, lost):
            self._deliver(parts, lost)
        else:
            self._failed("log", error)  # down: the rest of the batch, one error
            return len(parts)
        whole = [i for i, n in lost.items() if n == len(rows[i].values)]
        self.counts["failed_values"] += sum(lost.values()) - sum(len(rows[i].values)
                                                                 for i in whole)
        return len(whole)

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

    def _deliver_other(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "summary" and any(type(v) is PendingScalar for v in payload.values()):
            payload = {k: v.resolve() if type(v) is PendingScalar else v
                       for k, v in payload.items()}
        if self.disabled:
            self.counts["skipped"] += 1
        else:
            method = {"config": self.backend.log_config, "summary": self.backend.log_summary,
                      "artifact": self.backend.log_artifact}[kind]
            if self._call(kind, method, payload):
                self.counts["delivered"] += 1
        self._mark_done(1)

    def _mark_done(self, n: int) -> None:
        self._done_count += n

    def _mark_taken(self, batch: list[Any]) -> None:
        self._taken_count += sum(1 for item in batch if not isinstance(item, _CONTROL))
        if self._put_count - self._taken_count < self._maxsize // 2 + 1:
            self._room.set()

    def _close(self, message: _Close) -> None:
        if self.disabled is None or not self.disabled.startswith("failed to open"):
            self._call("close", self.backend.close, message.status, message.exit_code)
            try:
                self._own_report = dict(self.backend.report() or {})
            except Exception as exc:
                self._policy.report(self.name, exc, "report")
        self._done.set()

    def _call(self, phase: str, fn: Any, *args: Any, records: int = 1) -> bool:
        """Call the backend; on failure apply the policy. True when it succeeded."""
        try:
            fn(*args)
        except _CAUGHT as exc:
            self.counts["failed"] += records
            self._consecutive += 1
            self._failed(phase, exc)
            return False
        if phase != "flush":  # a flush delivers nothing: it must not hide failing log calls
            self._consecutive = 0
        return True

    def _failed(self, phase: str, exc: BaseException) -> None:
        """Count and report one failure; the policy may disable the backend."""
        self.counts["errors"] += 1
        reason = self._policy.failed(self.name, exc, phase, self._consecutive)
        # The local record is never disabled: it is what everything else
        # falls back on, and a bad value must not cost it the rest of the run.
        if reason and not self.disabled and not self.blocking:
            self.disabled = reason
            logger.error("unilog backend %r is %s; the local record keeps everything",
                         self.name, reason)

    # -- adaptation to the backend's capabilities --------------------------------

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
                    self.counts["failed_values"] += 1
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
                mapped = self._map_key(key)
                if mapped is _COLLIDED:
                    changed = True
                    continue
                if mapped != key:
                    changed = True
                    key = mapped
            out[key] = value
        return Row(row.step, MappingProxyType(out), row.time) if changed else row

    def _flag_nonfinite(self, key: str, value: float, step: int) -> None:
        # A device tensor's value is first known here, on the local record's
        # worker: flag it through the logger (the caller flags plain floats).
        if ("nonfinite", key) not in self._warned_kinds:
            self._warned_kinds.add(("nonfinite", key))
            logger.warning("key %r is %s at step %d; kept as a float (warned once per key)",
                           key, value, step)

    def _fallback(self, key: str, media_kind: str | None) -> None:
        self.counts["fallback"] += 1
        if media_kind not in self._warned_kinds:
            self._warned_kinds.add(media_kind)
            logger.warning("backend %r does not support %s values (first: key %r); they are "
                           "kept as files in the run directory", self.name, media_kind, key)

    def _map_key(self, key: str) -> Any:
        mapped = self._keys.get(key)
        if mapped is not None:
            return mapped
        mapped = self.capabilities.key_rule.adapt(key)
        owner = self._owners.setdefault(mapped, key)
        if owner != key:
            self._keys[key] = _COLLIDED
            self.counts["collisions"] += 1
            self._policy.report(self.name, KeyCollisionError(
                self.name, f"keys {owner!r} and {key!r} both become {mapped!r} under this "
                f"backend's key rules; {key!r} is not sent to it (the local record has it)"),
                "log")
            return _COLLIDED
        self._keys[key] = mapped
        if mapped != key:
            self.key_map[key] = mapped
        return mapped

    # -- end of run ---------------------------------------------------------------

    def wait(self, deadline: float) -> bool:
        """Wait until the worker has closed its backend, or the deadline passes.

        The local record is waited on for as long as it keeps making progress
        (a long backlog still lands on disk); it gives up only once it has
        stalled past the deadline.
        """
        while True:
            if self._done.wait(max(0.0, deadline - time.monotonic())):
                return True
            if not self.blocking or not self._thread.is_alive():
                return False
            before = self._done_count
            if self._done.wait(1.0):
                return True
            if self._done_count == before:
                return False

    def report(self) -> dict[str, Any]:
        """This backend's counts and state, for the manifest and the finish report."""
        report: dict[str, Any] = dict(self.counts)
        report["dropped"] = self._dropped
        report["skipped"] += self._regressed
        report["undelivered"] = max(0, self._put_count - self._done_count)
        report["timed_out"] = not self._done.is_set()
        report["disabled"] = self.disabled
        report["info"] = self.info
        report["key_map"] = dict(self.key_map)
        report["refused_keys"] = sorted(self.refused_keys)
        for key, value in self._own_report.items():
            report.setdefault(key, value)
        return report


class Dispatcher:
    """The run's backends behind one pluggy manager."""

    def __init__(self, workers: list[BackendWorker]):
        self.workers = workers
        self.manager: pluggy.PluginManager = new_manager()
        for worker in workers:
            self.manager.register(worker, name=worker.name)
        self.hook = self.manager.hook
        # Guards _closed so a flush barrier is never queued behind the close
        # message, where no worker would ever release it.
        self._lock = threading.Lock()
        self._closed = False

    def start(self) -> None:
        """Start every worker thread (each opens its backend)."""
        for worker in self.workers:
            worker.start()

    def flush(self, timeout: float) -> list[str]:
        """Wait until every backend has taken and flushed what was queued.

        Returns the names of the backends that did not make it in time. After
        ``close`` there is nothing left to flush (and no worker to answer).
        """
        barriers = {}
        with self._lock:
            if self._closed:
                return []
            for worker in self.workers:
                if worker.alive():
                    barrier = _Barrier()
                    worker.unilog_dispatch_control(barrier)
                    barriers[worker.name] = barrier
        deadline = time.monotonic() + timeout
        return [name for name, barrier in barriers.items()
                if not barrier.event.wait(max(0.0, deadline - time.monotonic()))]

    def pause(self, timeout: float) -> list[threading.Lock]:
        """Wait (at most ``timeout`` seconds in all) until no backend is in a call,
        and keep them out of one until :meth:`resume`; for ``os.fork``."""
        deadline = time.monotonic() + timeout
        held = []
        for worker in self.workers:
            if worker.busy.acquire(timeout=max(0.0, deadline - time.monotonic())):
                held.append(worker.busy)
        return held

    @staticmethod
    def resume(held: list[threading.Lock]) -> None:
        """Let the backends paused by :meth:`pause` go on."""
        for lock in held:
            lock.release()

    def close(self, status: str, exit_code: int, timeout: float) -> dict[str, dict[str, Any]]:
        """Close every backend in parallel (each on its own thread), bounded by ``timeout``."""
        with self._lock:
            self._closed = True
            self.hook.unilog_dispatch_control(message=_Close(status, exit_code))
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            worker.wait(deadline)
        return {worker.name: worker.report() for worker in self.workers}
