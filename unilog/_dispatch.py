"""Workers, and the run's fan-out to them: the only place backend code is reached after ``init``.

A :class:`Worker` only moves batches: an unbounded C-level ``SimpleQueue``
whose bound unilog enforces itself (so the hot path, ``put``, is a counter
comparison and one C call), a daemon thread that takes batches off it after a
linger, timed flushes, and one control-message type (:class:`Control`: a flush
barrier, the close, or a request). What a batch becomes is its subclass's
business:

- :class:`BackendWorker` serves one backend through a
  :class:`unilog._delivery.BackendAdapter` (which shapes values and isolates
  failures), in this process: the local record always, and backends run with
  ``isolation="thread"``;
- :class:`unilog._logging_process.Forwarder` ships batches to the logging
  process, where every other backend runs on a ``BackendWorker`` of its own.

The run's members (its ``BackendWorker`` s and, when some of its backends run
in the logging process, one :class:`unilog._logging_process.RemoteBackends`)
are registered on the run's own pluggy manager; :class:`Dispatcher` resolves
each ``unilog_dispatch_*`` hook's implementations once, so a row costs one
plain call per member.

When a backend's queue is full, that backend alone misses the record (it is
counted); the local record's worker instead makes the caller wait, because the
local record must keep everything.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from queue import Empty, SimpleQueue
from types import SimpleNamespace
from typing import Any, Callable

import pluggy

from unilog.backend import Backend, Row, RunInfo
from unilog._delivery import BackendAdapter
from unilog.hookspecs import hookimpl
from unilog.plugins import new_manager
from unilog._policy import ErrorPolicy

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


# Backends open (import and start their SDKs) one at a time in a process. SDK
# imports build ASTs (pydantic and others), and CPython keeps the AST
# constructor's recursion depth per interpreter, not per thread: two threads
# importing at once can fail with "SystemError: AST constructor recursion depth
# mismatch" (CPython gh-106905; seen here on 3.11.7, wandb failing to open beside
# five other SDKs). Opening in turn cost nothing measurable (six backends' first
# row 4.2 s instead of 4.5 s: docs/performance.md); a backend whose open hangs
# holds the others back this long at most.
_OPENING = threading.Lock()
OPEN_ALONE_S = float(os.environ.get("UNILOG_OPEN_ALONE_S", "10"))


#: The record that marks where records were dropped (see Worker._note_gap).
GAP = ("gap", None)


class Control:
    """The one control message: ``kind`` is "flush" (a barrier), "close" or "request".

    Control messages bypass the queue bound, wake a lingering worker, and are
    answered with :meth:`answer` (a close is answered once the backend closed).
    """

    __slots__ = ("kind", "args", "event", "result", "error")

    def __init__(self, kind: str, *args: Any):
        self.kind = kind
        self.args = args
        self.event = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def answer(self, result: Any = None, error: BaseException | None = None) -> None:
        """Give the result (or error) and release whoever waits."""
        self.result, self.error = result, error
        self.event.set()


class Worker:
    """A queue and a thread that moves batches of records to :meth:`_take`.

    Subclasses implement ``_open``, ``_take``, ``_control``, ``_skip``,
    ``_stopped`` and ``_timed_flush``; the queue, its bound, the linger, the
    timed flushes and the end of the thread are here.
    """

    def __init__(self, name: str, *, queue_size: int = DEFAULT_QUEUE_SIZE,
                 blocking: bool = False, flush_interval: float | None = None):
        self.name = name
        self.blocking = blocking
        self._maxsize = max(1, queue_size)
        self._flush_interval = flush_interval
        self._queue: SimpleQueue = SimpleQueue()
        self._enqueue = self._queue.put
        # The queue bound compares records put with records *taken* off the queue
        # (a batch being written no longer counts against it).
        self._put_count = 0  # written by producers only (under the run's lock)
        self._taken_count = 0  # written by the worker only
        self._dropped = 0  # records refused by a full queue
        self._gap_at = -1  # _put_count when the last gap marker was queued
        self._room = threading.Event()
        self._wake = threading.Event()  # ends a linger early: a control message
        #: Held while the subclass's code runs: a fork waits for it (see Dispatcher.pause),
        #: so no SDK lock is held mid-call in the child (Neptune's fork handler
        #: deadlocked on one).
        self.busy = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"unilog-{name}", daemon=True)

    def start(self) -> None:
        """Start the thread; it opens before taking records."""
        self._thread.start()

    def alive(self) -> bool:
        """True while the thread runs (it may be stuck in a backend)."""
        return self._thread.is_alive()

    # -- producer side --------------------------------------------------------------

    def put(self, item: Any) -> bool:
        """Queue a record within the bound; False when it was dropped (counted)."""
        if self._put_count - self._taken_count >= self._maxsize:
            if not (self.blocking and self._wait_for_room()):
                self._dropped += 1
                self._note_gap()
                return False
        self._put_count += 1
        self._enqueue(item)
        return True

    def _note_gap(self) -> None:
        """A record was just dropped (the queue was full). Nothing here; a
        :class:`BackendWorker` tells its backend's ledger."""

    def force(self, item: Any) -> None:
        """Queue a record past the bound (a gap marker: one per run of drops)."""
        self._put_count += 1
        self._enqueue(item)

    def send_control(self, control: Control) -> None:
        """Queue a control message, bypassing the bound, and wake the worker."""
        self._queue.put(control)
        self._wake.set()

    def _wait_for_room(self) -> bool:
        """Back-pressure for the local record: wait while its worker makes progress."""
        while self._put_count - self._taken_count >= self._maxsize:
            if not self._thread.is_alive() or self._refuses():
                return False
            self._room.clear()
            # A full queue needs no more piling up: end the worker's linger, which
            # would otherwise hold the caller a whole LINGER_S per batch.
            self._wake.set()
            self._room.wait(0.05)
        return True

    def _refuses(self) -> bool:
        """True when records would only be counted as missed (no point waiting)."""
        return False

    # -- consumer side: the thread --------------------------------------------------

    def _loop(self) -> None:
        try:
            with self.busy:
                opened = self._open()
            if opened:
                self._serve()
                return
        except BaseException as exc:  # a bug of ours or an SDK killing its thread
            self._stopped(exc)
        self._drain_disabled()

    def _serve(self) -> None:
        interval = self._flush_interval
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
                return  # closed: nothing may reach the backend after close()
            dirty = dirty or bool(batch)
            if batch and len(batch) < _BATCH and LINGER_S > 0:
                self._wake.wait(LINGER_S)
                self._wake.clear()  # a message that set it is in the queue: taken next
            if next_flush is not None and time.monotonic() >= next_flush:
                if dirty:
                    with self.busy:
                        self._timed_flush()
                dirty = False
                next_flush = time.monotonic() + interval

    def _process(self, batch: list[Any]) -> bool:
        """Records to ``_take`` in order, control messages between them; True once closed."""
        records: list[Any] = []
        for item in batch:
            if type(item) is not Control:
                records.append(item)
                continue
            if records:
                self._take(records)
                records = []
            if self._control(item):
                return True
        if records:
            self._take(records)
        return False

    def _drain_disabled(self) -> None:
        """Nothing can be delivered any more: count what is missed, answer control
        messages, and end with the close."""
        while True:
            item = self._queue.get()
            self._mark_taken([item])
            if type(item) is not Control:
                self._skip(1)
            elif item.kind == "close":
                self._closed_unopened(item)
                return
            else:
                item.answer()

    def _mark_taken(self, batch: list[Any]) -> None:
        self._taken_count += sum(1 for item in batch if type(item) is not Control)
        if self._put_count - self._taken_count < self._maxsize // 2 + 1:
            self._room.set()

    # -- what a subclass does -----------------------------------------------------

    def _open(self) -> bool:
        raise NotImplementedError

    def _take(self, records: list[Any]) -> None:
        raise NotImplementedError

    def _control(self, control: Control) -> bool:
        """Act on a control message; True when it was the close."""
        raise NotImplementedError

    def _skip(self, n: int) -> None:
        """``n`` records that will never be delivered."""

    def _stopped(self, exc: BaseException) -> None:
        """The thread died of ``exc``."""

    def _closed_unopened(self, control: Control) -> None:
        control.answer()

    def _timed_flush(self) -> None:
        """Called every ``flush_interval`` seconds while records arrive."""


class RecordHooks:
    """The hooks of a run's member for what is not a row: each queues a
    ``(kind, payload)`` record through the member's ``put_record``."""

    def put_record(self, record: tuple[str, Any]) -> None:
        raise NotImplementedError

    @hookimpl
    def unilog_dispatch_config(self, config: dict[str, Any]) -> None:
        """Queue the config (never raises)."""
        self.put_record(("config", config))

    @hookimpl
    def unilog_dispatch_summary(self, summary: dict[str, Any]) -> None:
        """Queue summary values (never raises)."""
        self.put_record(("summary", summary))

    @hookimpl
    def unilog_dispatch_tags(self, tags: tuple[str, ...]) -> None:
        """Queue the run's tags (never raises)."""
        self.put_record(("tags", tuple(tags)))

    @hookimpl
    def unilog_dispatch_description(self, name: str, notes: str | None) -> None:
        """Queue the run's name and notes (never raises)."""
        self.put_record(("description", (name, notes)))

    @hookimpl
    def unilog_dispatch_artifact(self, artifact: Any) -> None:
        """Queue an artifact (never raises)."""
        self.put_record(("artifact", artifact))


class BackendWorker(RecordHooks, Worker):
    """One backend in this process: its queue and thread, delivering through its adapter."""

    def __init__(self, backend: Backend, run: RunInfo, policy: ErrorPolicy, *,
                 queue_size: int = DEFAULT_QUEUE_SIZE, blocking: bool = False,
                 on_open: Callable[[str, dict[str, Any]], None] | None = None):
        super().__init__(backend.name, queue_size=queue_size, blocking=blocking,
                         flush_interval=backend.flush_interval)
        self.backend = backend
        self.adapter = BackendAdapter(backend, run, policy, blocking=blocking, on_open=on_open)
        self.names = [self.name]
        self._out_of_order = backend.capabilities.out_of_order_steps
        self._regressed = 0  # rows at a step it cannot take (counted on the caller's thread)

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
            self.put(row)

    def put_record(self, record: tuple[str, Any]) -> None:
        """Queue a config, summary, tags, description or artifact record (never raises)."""
        self.put(record)

    def _note_gap(self) -> None:
        """Tell the consumer, in order, once per run of drops, that records are
        missing here, so the backend's ledger does not claim them (unilog._ledger).
        The marker goes past the bound (one per gap) and counts as a record."""
        if self._gap_at == self._put_count:
            return  # no record got through since the last drop: the same gap
        self.force(GAP)
        self._gap_at = self._put_count

    # -- the run's calls -----------------------------------------------------------

    def barrier(self, timeout: float) -> Control | None:
        """Queue a flush barrier (None when the thread is gone: nothing would answer)."""
        if not self.alive():
            return None
        control = Control("flush")
        self.send_control(control)
        return control

    def late(self, control: Control) -> list[str]:
        """The names a flush barrier not answered in time stands for."""
        return [self.name]

    def close(self, status: str, exit_code: int, timeout: float) -> None:
        """Queue the close message (``wait`` bounds how long it may take)."""
        self.send_control(Control("close", status, exit_code))

    def fetch(self, backend: str, name: str, alias: str, root: Path,
              timeout: float) -> Path | None:
        """Ask the backend for artifact ``name:alias`` (on its thread, at most ``timeout``).

        For explicit, blocking user calls only (``use_artifact``). None when the
        worker is gone, disabled or late; re-raises what the backend raised.
        """
        if not self.alive() or self.adapter.disabled:
            return None
        control = Control("request", self.backend.download_artifact, (name, alias, root))
        self.send_control(control)
        if not control.event.wait(timeout):
            return None
        if control.error is not None:
            raise control.error
        return control.result

    def wait(self, deadline: float) -> bool:
        """Wait until the backend is closed, or the deadline passes.

        The local record is waited on for as long as it keeps making progress
        (a long backlog still lands on disk); it gives up only once it has
        stalled past the deadline.
        """
        done = self.adapter.done
        while True:
            if done.wait(max(0.0, deadline - time.monotonic())):
                return True
            if not self.blocking or not self._thread.is_alive():
                return False
            before = self.adapter.counts.done
            if done.wait(1.0):
                return True
            if self.adapter.counts.done == before:
                return False

    def reports(self) -> dict[str, dict[str, Any]]:
        """This backend's counts and state, for the manifest and the finish report."""
        report = self.adapter.report()
        report["dropped"] = self._dropped
        report["skipped"] += self._regressed
        report["undelivered"] = max(0, self._put_count - self.adapter.counts.done)
        report["timed_out"] = not self.adapter.done.is_set()
        return {self.name: report}

    # -- the thread's work -----------------------------------------------------------

    def _refuses(self) -> bool:
        return bool(self.adapter.disabled)

    def _open(self) -> bool:
        # One backend opens at a time in a process (see _OPENING), but one whose open
        # hangs holds the others back for OPEN_ALONE_S at most.
        alone = _OPENING.acquire(timeout=OPEN_ALONE_S)
        try:
            # A backend skipped at open (its own choice) takes nothing, like one that failed.
            return self.adapter.open() and not self.adapter.disabled
        finally:
            if alone:
                _OPENING.release()

    def _take(self, records: list[Any]) -> None:
        adapter = self.adapter
        rows: list[Row] = []
        for item in records:
            if type(item) is Row:
                rows.append(item)
                continue
            if rows:
                adapter.deliver_rows(rows)
                rows = []
            adapter.deliver(*item)
        if rows:
            adapter.deliver_rows(rows)

    def _control(self, control: Control) -> bool:
        if control.kind == "flush":
            self.adapter.flush()
            control.answer()
        elif control.kind == "close":
            self.adapter.close(*control.args)
            control.answer()
            return True
        else:
            fn, args = control.args
            try:
                control.answer(self.adapter.call(fn, args))
            except BaseException as exc:  # the caller re-raises it
                control.answer(error=exc)
        return False

    def _skip(self, n: int) -> None:
        self.adapter.skip(n)

    def _stopped(self, exc: BaseException) -> None:
        self.adapter.stopped(exc)

    def _closed_unopened(self, control: Control) -> None:
        self.adapter.done.set()
        control.answer()

    def _timed_flush(self) -> None:
        self.adapter.flush()


def _hooks_of(member: Any) -> SimpleNamespace:
    """Only ``member``'s ``unilog_dispatch_*`` methods, for pluggy to register: pluggy
    inspects every attribute of what it registers, and a worker has dozens (this
    halves the registration, paid by every run's ``init``)."""
    return SimpleNamespace(**{name: getattr(member, name) for name in dir(type(member))
                              if name.startswith("unilog_dispatch_")})


class Dispatcher:
    """The run's members (its workers, and its backends in the logging process)
    behind one pluggy manager."""

    def __init__(self, members: list[Any], order: list[str] | None = None):
        self.members = members
        self._order = order
        self.manager: pluggy.PluginManager = new_manager()
        for member in members:
            self.manager.register(_hooks_of(member), name=member.name)
        self.hook = self.manager.hook
        # pluggy's hook call costs ~1 µs of bookkeeping per call; a row goes to
        # the same implementations every time, so they are resolved once.
        self.dispatch_row = self._fanout(self.hook.unilog_dispatch_row)
        # Guards _closed so a flush barrier is never queued behind the close
        # message, where no worker would ever release it.
        self._lock = threading.Lock()
        self._closed = False

    @staticmethod
    def _fanout(caller: Any) -> Callable[..., None]:
        functions = tuple(impl.function for impl in reversed(caller.get_hookimpls()))
        if len(functions) == 1:
            return functions[0]

        def call(row: Row, local_only: bool) -> None:
            for function in functions:
                function(row, local_only)

        return call

    @property
    def names(self) -> list[str]:
        """Every backend's name: in ``order`` when given, else member by member."""
        names = [name for member in self.members for name in member.names]
        if self._order is None:
            return names
        return sorted(names, key=lambda n: self._order.index(n) if n in self._order else len(names))

    def start(self) -> None:
        """Start every member (each opens its backends)."""
        for member in self.members:
            member.start()

    def flush(self, timeout: float) -> list[str]:
        """Wait until every backend has taken and flushed what was queued.

        Returns the names of the backends that did not make it in time. After
        ``close`` there is nothing left to flush (and no worker to answer).
        """
        return self.wait_flush(self.begin_flush(timeout), timeout)

    def begin_flush(self, timeout: float) -> list[tuple[Any, Control]]:
        """Queue a flush barrier to every member, without waiting (see :meth:`wait_flush`)."""
        barriers = []
        with self._lock:
            if self._closed:
                return []
            for member in self.members:
                control = member.barrier(timeout)
                if control is not None:
                    barriers.append((member, control))
        return barriers

    @staticmethod
    def wait_flush(barriers: list[tuple[Any, Control]], timeout: float) -> list[str]:
        """Wait for barriers from :meth:`begin_flush`; the names of the backends late."""
        deadline = time.monotonic() + timeout
        late = []
        for member, control in barriers:
            if not control.event.wait(max(0.0, deadline - time.monotonic())):
                late.extend(member.late(control))
            elif control.result:  # backends of the logging process that were late there
                late.extend(control.result)
        return late

    def fetch(self, backend: str, name: str, alias: str, root: Path,
              timeout: float) -> Path | None:
        """Artifact ``name:alias`` from ``backend``'s store into ``root`` (None: not there)."""
        for member in self.members:
            if backend in member.names:
                return member.fetch(backend, name, alias, root, timeout)
        return None

    def pause(self, timeout: float) -> list[threading.Lock]:
        """Wait (at most ``timeout`` seconds in all) until no backend is in a call,
        and keep them out of one until :meth:`resume`; for ``os.fork``."""
        deadline = time.monotonic() + timeout
        held = []
        for member in self.members:
            if member.busy.acquire(timeout=max(0.0, deadline - time.monotonic())):
                held.append(member.busy)
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
            for member in self.members:
                member.close(status, exit_code, timeout)
        deadline = time.monotonic() + timeout
        for member in self.members:
            member.wait(deadline)
        reports: dict[str, dict[str, Any]] = {}
        for member in self.members:
            reports.update(member.reports())
        return {name: reports[name] for name in self.names if name in reports}
