"""The logging process: every SDK backend runs there, away from the training loop.

A backend's SDK is Python code: on a thread of the training process it takes
the interpreter lock from the training thread for up to the switch interval
(5 ms) at each hand-over, which slowed a CPU training loop logging to six
backends 3-5x (docs/performance.md). So by default (``isolation="process"``)
each training process starts one child, ``python -m unilog._logging_host``,
and runs there every backend except the local record, which stays in the
training process as the crash-safe truth. Concurrent runs share the child.

Parent side (this module):

- :class:`RemoteBackends` is a run's member on its pluggy manager, standing
  for all of the run's backends in the child: a row costs one bounded put on
  the forwarder's queue, never a wake-up.
- :class:`Forwarder` is the one :class:`unilog._dispatch.Worker` of the
  process that ships what the runs queued: after each linger, everything
  waiting becomes one pickled message on the pipe (device tensors read and
  media settled here, on the forwarder's thread, never on the caller's).
- A reader thread takes the child's answers: a backend opened (its id goes to
  the manifest), an error to report under the run's policy, a log line, the
  answer to a flush, close or download, and progress counts.

Faults: the child's death (a crash, the OOM killer, ``kill -9``) never reaches
the training loop. Its backends are reported as failed, counting the records
they miss (those not yet confirmed), and the local record has everything. A
child that hangs fills its pipe; then the forwarder's queue drops what is over
its bound (counted), and ``finish`` reports those backends as timed out.
Ctrl-C and SIGTERM reach only the training process (the child runs in its own
session and ignores both), which then closes the child's backends in order; a
child whose training process dies closes its runs as killed and exits.
A forked child of the training process closes its copy of the pipe at once
(so the logging process still sees its parent's end) and starts its own
logging process if it starts runs of its own.
"""

from __future__ import annotations

import atexit
import io
import itertools
import logging
import os
import pickle
import subprocess
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

from unilog.backend import Row, RunInfo
from unilog._dispatch import DEFAULT_QUEUE_SIZE, GAP, Control, RecordHooks, Worker
from unilog.hookspecs import hookimpl
from unilog._policy import ErrorPolicy
from unilog.tensors import PendingScalar

logger = logging.getLogger("unilog")

#: Seconds the child gets to exit once the training process is done with it.
EXIT_WAIT_S = 3.0
#: Share of a close's time limit the child uses, so its answer arrives in time.
_CLOSE_SHARE = 0.9


def _readonly(values: dict[str, Any]) -> MappingProxyType:
    return MappingProxyType(values)


class _Pickler(pickle.Pickler):
    """Pickles the rows' read-only views as dicts (read-only again on arrival), and
    device tensors as their values (read here, on the forwarder's thread)."""

    def reducer_override(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is MappingProxyType:
            return _readonly, (dict(obj),)
        if kind is PendingScalar:
            try:
                return obj.resolve().__reduce__()
            except Exception as exc:  # the device copy failed: the child counts it lost
                return PendingScalar.failed, (f"{type(exc).__name__}: {exc}",)
        return NotImplemented


def dumps(message: Any) -> bytes:
    """``message`` pickled for the child."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


class RemoteBackends(RecordHooks):
    """A run's backends in the logging process, as one member of its dispatcher."""

    name = "unilog-logging-process"
    blocking = False

    def __init__(self, process: LoggingProcess, specs: list[tuple[str, dict[str, Any], int]],
                 run: RunInfo, policy: ErrorPolicy,
                 on_open: Callable[[str, dict[str, Any]], None] | None = None):
        self.process = process
        self.token = next(process.tokens)
        self.names = [name for name, _, _ in specs]
        self.specs = specs
        self.run = run
        self.policy = policy
        self.on_open = on_open
        self.forwarder = process.forwarder
        # A fork need not wait for the forwarder: the forked child never uses the
        # pipe (it closes its copy) and has no SDK in it. So this is never held.
        self.busy = threading.Lock()
        self.put_count = 0  # records put, per backend (each gets every record)
        self.dropped = 0  # records the forwarder's full queue refused
        self.lost = 0  # records that could not be shipped (the child is gone)
        # Per backend, from the child every second: (records finished with, delivered,
        # disabled reason); what a report says if the child dies before the close.
        self.progress: dict[str, tuple[int, int, str | None]] = {}
        self.infos: dict[str, dict[str, Any]] = {}
        self.reports_from_child: dict[str, dict[str, Any]] | None = None
        self.unopened: str | None = None  # why the child never got the run (else None)
        # The environment and folder the SDKs see: this process's at init, taken
        # here on the caller's thread (not later, when the forwarder ships the open).
        self.environ, self.cwd = dict(os.environ), os.getcwd()
        self._closing: Control | None = None
        self._gap_at = -1  # put_count after the last drop (a later drop in a row: same gap)

    # -- producer side: hook implementations, called on the caller's thread ----

    @hookimpl
    def unilog_dispatch_row(self, row: Row, local_only: bool) -> None:
        """Queue a row for the child (never raises); the child's workers decide what
        a backend does with a row whose step went backwards."""
        self.put_count += 1
        if not self.forwarder.put((self, ("local_only", row) if local_only else row)):
            self._dropped_one()

    def put_record(self, record: tuple[str, Any]) -> None:
        """Queue a config, summary or artifact record for the child (never raises)."""
        self.put_count += 1
        if not self.forwarder.put((self, record)):
            self._dropped_one()

    def _dropped_one(self) -> None:
        """The forwarder's full queue refused a record: counted, and once per run of
        drops a gap marker goes to the child past the bound, so each backend's ledger
        knows rows are missing there (unilog._ledger)."""
        self.dropped += 1
        if self._gap_at != self.put_count - 1:  # else: no record got through since
            self.put_count += 1
            self.forwarder.force((self, GAP))
        self._gap_at = self.put_count

    # -- the run's calls --------------------------------------------------------------

    def start(self) -> None:
        """Ask the child to open the run's backends (they open there, in parallel)."""
        self.process.start()
        self.forwarder.send_control(Control("open", self))

    def barrier(self, timeout: float) -> Control | None:
        """Queue a flush of the run's backends; its answer lists those late in the child."""
        if self.process.ended or not self.forwarder.alive():
            return None
        control = Control("flush", self, time.monotonic() + timeout)
        self.forwarder.send_control(control)
        return control

    def late(self, control: Control) -> list[str]:
        """All of them: the forwarder or the child did not answer in time."""
        return list(self.names)

    def fetch(self, backend: str, name: str, alias: str, root: Path,
              timeout: float) -> Path | None:
        """Artifact ``name:alias`` from ``backend`` in the child, written under ``root``."""
        if self.process.ended:
            return None
        control = Control("request", self, backend, name, alias, root, timeout)
        self.forwarder.send_control(control)
        if not control.event.wait(timeout):
            return None
        if control.error is not None:
            raise control.error
        return control.result

    def close(self, status: str, exit_code: int, timeout: float) -> None:
        """Queue the close of the run's backends, to be done by a deadline taken now
        (``time.monotonic`` is one clock for both processes), so a backlog on the way
        does not make the child answer after the caller stopped waiting."""
        deadline = time.monotonic() + max(0.0, timeout * _CLOSE_SHARE - 0.1)
        self._closing = Control("close", self, status, exit_code, deadline)
        if self.process.ended or not self.forwarder.alive():
            self._closing.answer()  # nothing would answer it: reported from what is known
            return
        self.forwarder.send_control(self._closing)

    def wait(self, deadline: float) -> bool:
        """Wait until the child answered the close (or the deadline passes)."""
        return self._closing is not None and self._closing.event.wait(
            max(0.0, deadline - time.monotonic()))

    def reports(self) -> dict[str, dict[str, Any]]:
        """Each backend's report: the child's, with what never reached the child added."""
        reports = {}
        from_child = self.reports_from_child or {}
        for name in self.names:
            report = dict(from_child.get(name) or self._unanswered(name))
            report["dropped"] = report.get("dropped", 0) + self.dropped
            report["failed"] = report.get("failed", 0) + self.lost
            report["process"] = self.process.pid_of_child  # where it ran
            reports[name] = report
        self.process.detach(self)
        return reports

    def _unanswered(self, name: str) -> dict[str, Any]:
        """The report of a backend whose close the child never answered."""
        done, delivered, disabled = self.progress.get(name, (0, 0, None))
        missing = max(0, self.put_count - self.dropped - self.lost - done)
        report = {"delivered": delivered, "skipped": 0, "failed": 0, "failed_values": 0,
                  "errors": 0, "fallback": 0, "collisions": 0, "undelivered": 0,
                  "timed_out": True, "disabled": disabled,
                  "info": dict(self.infos.get(name, {})), "key_map": {}, "refused_keys": []}
        if self.process.ended or self.unopened:
            report["timed_out"] = False
            report["disabled"] = (f"failed to open: {self.unopened}" if self.unopened else
                                  disabled or f"its logging process ended "
                                              f"({self.process.ended})")
            report["failed"] = missing  # not confirmed by the child: taken as lost
            report["errors"] = 1
        else:
            report["undelivered"] = missing
        return report

    def opened(self, name: str, info: dict[str, Any]) -> None:
        """The child opened ``name`` (reader thread)."""
        self.infos[name] = info
        if self.on_open is not None:
            try:
                self.on_open(name, info)
            except Exception as exc:
                self.policy.report(name, exc, "manifest")


class Forwarder(Worker):
    """The thread that ships every run's records to the logging process."""

    def __init__(self, process: LoggingProcess):
        super().__init__("forwarder", queue_size=DEFAULT_QUEUE_SIZE)
        self.process = process
        self._controls = itertools.count(1)

    def _open(self) -> bool:
        return True

    def _process(self, batch: list[Any]) -> bool:
        messages: list[Any] = []
        try:
            current: list[Any] | None = None
            for item in batch:
                if type(item) is Control:
                    messages.append(self.process.control_message(next(self._controls), item))
                    current = None
                    continue
                remote, record = item
                if current is None or current[1] != remote.token:
                    current = ["records", remote.token, []]
                    messages.append(current)
                current[2].append(record)
            self.process.send(messages)
        except Exception as exc:  # a bug of ours: counted, and the forwarder goes on
            logger.error("unilog could not ship records to its logging process: %s: %s",
                         type(exc).__name__, exc)
            self.process.count_lost(batch)
        return False

    def _stopped(self, exc: BaseException) -> None:
        # Its thread died (nothing caught it): the logging process is unusable.
        self.process._child_gone(f"its forwarder stopped: {type(exc).__name__}: {exc}")


class LoggingProcess:
    """This training process's logging process, and the threads that talk to it."""

    _current: LoggingProcess | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> LoggingProcess:
        """The logging process of this process (a forked child gets its own)."""
        with cls._lock:
            current = cls._current
            if current is None or current.pid != os.getpid() or current.ended:
                current = cls._current = LoggingProcess()
            return current

    def __init__(self):
        self.pid = os.getpid()
        self.tokens = itertools.count(1)
        self.forwarder = Forwarder(self)
        self.ended: str | None = None  # why the child is gone (None while it runs)
        self.pid_of_child: int | None = None
        self._runs: dict[int, RemoteBackends] = {}
        self._pending: dict[int, Control] = {}  # control id -> control awaiting the child
        self._child: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None
        self._started = False
        self._start_lock = threading.Lock()

    # -- start -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the child and the threads, once (cheap: the child imports SDKs on
        its own time, while training runs)."""
        with self._start_lock:
            if self._started:
                return
            self._started = True
            try:
                self._spawn()
            except OSError as exc:  # no memory or no process left: the runs go on locally
                self.ended = f"could not start: {type(exc).__name__}: {exc}"
                logger.error("unilog's logging process %s; backends other than the local "
                             "record miss this run", self.ended)
            self.forwarder.start()
            if self._receive is not None:
                threading.Thread(target=self._read, name="unilog-logging-process-reader",
                                 daemon=True).start()

    def _spawn(self) -> None:
        from unilog._process_backend import spawn

        self._child, self._send, self._receive = spawn("unilog._logging_host")
        self.pid_of_child = self._child.pid
        _alive.add(self)

    # -- runs ------------------------------------------------------------------------

    def attach(self, specs: list[tuple[str, dict[str, Any], int]], run: RunInfo,
               policy: ErrorPolicy,
               on_open: Callable[[str, dict[str, Any]], None] | None) -> RemoteBackends:
        """A new run's backends ``specs`` ((name, options, queue size), options checked)."""
        remote = RemoteBackends(self, specs, run, policy, on_open)
        self._runs[remote.token] = remote
        return remote

    def detach(self, remote: RemoteBackends) -> None:
        """The run is done with the child."""
        self._runs.pop(remote.token, None)

    # -- the forwarder's side -----------------------------------------------------------

    def control_message(self, control_id: int, control: Control) -> tuple:
        """The message for ``control``; it is answered when the child answers."""
        remote = control.args[0]
        if control.kind == "open":  # answered by the backends' "opened" messages
            return ("open", remote.token, _open_spec(remote))
        self._pending[control_id] = control
        if control.kind == "flush":
            return ("flush", remote.token, control_id, control.args[1])
        if control.kind == "close":
            _, status, exit_code, deadline = control.args
            return ("close", remote.token, control_id, status, exit_code, deadline)
        _, backend, name, alias, root, timeout = control.args
        return ("request", remote.token, control_id, backend, name, alias, str(root),
                timeout)

    def send(self, messages: list[Any]) -> None:
        """Ship ``messages`` (forwarder thread). A record that cannot be pickled costs
        only itself; a child that is gone costs what was being sent (counted)."""
        if self.ended is None:
            try:
                payload = dumps(messages)
            except Exception:
                messages = self._picklable(messages)  # what cannot go is counted there
                payload = dumps(messages)
            try:
                self._send.send_bytes(payload)
                return
            except (OSError, ValueError, AttributeError, TypeError) as exc:  # closed at exit
                self._child_gone(f"{type(exc).__name__}: {exc}")
        self._undeliverable(messages)

    def _picklable(self, messages: list[Any]) -> list[Any]:
        """``messages`` without what cannot be pickled: a record costs only itself
        (reported under its run's policy); a control message is answered with the error."""
        kept = []
        for message in messages:
            if message[0] != "records":
                try:
                    dumps(message)
                    kept.append(message)
                except Exception as exc:
                    self._unsendable(message, exc)
                continue
            remote = self._runs.get(message[1])
            records = []
            for record in message[2]:
                try:
                    dumps(record)
                    records.append(record)
                except Exception as exc:
                    if remote is not None:
                        remote.lost += 1
                        for name in remote.names:
                            remote.policy.report(name, exc, "log (to the logging process)")
            kept.append(["records", message[1], records])
        return kept

    def _unsendable(self, message: tuple, exc: Exception) -> None:
        """A control message that cannot be pickled (a download's folder, a run's
        options): answered with the error; a run that cannot open there is reported."""
        control = self._pending.pop(message[2], None) if message[0] != "open" else None
        if control is not None:
            control.answer(error=exc)
        remote = self._runs.get(message[1])
        if message[0] == "open" and remote is not None:
            for name in remote.names:
                remote.policy.report(name, exc, "open (in the logging process)")
            remote.unopened = f"could not be sent to the logging process: {exc}"

    def count_lost(self, batch: list[Any]) -> None:
        """The records of ``batch`` (forwarder items) never reached the child; its
        control messages are answered as if the child had not answered."""
        for item in batch:
            if type(item) is Control:
                item.answer(list(item.args[0].names) if item.kind == "flush" else None)
            else:
                item[0].lost += 1

    def _undeliverable(self, messages: list[Any]) -> None:
        for message in messages:
            if message[0] == "records":
                remote = self._runs.get(message[1])
                if remote is not None:
                    remote.lost += len(message[2])
        self._answer_all()

    def _answer_all(self) -> None:
        """The child is gone: nothing it was asked will be answered. A flush is
        answered with every backend of its run (none made it)."""
        for control_id in list(self._pending):
            control = self._pending.pop(control_id, None)
            if control is not None:
                control.answer(list(control.args[0].names) if control.kind == "flush" else None)

    # -- the reader's side ------------------------------------------------------------

    def _read(self) -> None:
        while True:
            try:
                messages = pickle.loads(self._receive.recv_bytes())
            except (EOFError, OSError):
                code = self._child.wait() if self._child is not None else None
                self._child_gone(f"exit code {code}")
                return
            except Exception as exc:  # an answer that cannot be read: reported, not fatal
                logger.error("unilog could not read a message of its logging process: %s: %s",
                             type(exc).__name__, exc)
                continue
            for message in messages:
                try:
                    self._handle(message)
                except Exception as exc:
                    logger.error("unilog could not handle %r from its logging process: %s: %s",
                                 message[0], type(exc).__name__, exc)

    def _handle(self, message: tuple) -> None:
        kind = message[0]
        if kind == "log":
            _, level, text = message
            logger.log(level, "%s", text)
            return
        if kind == "answer":
            _, control_id, result, error = message
            control = self._pending.pop(control_id, None)
            if control is not None:
                if control.kind == "close":
                    control.args[0].reports_from_child = result
                    result = None
                control.answer(result, error)
            return
        remote = self._runs.get(message[1])
        if remote is None:
            return
        if kind == "opened":
            remote.opened(message[2], message[3])
        elif kind == "open_failed":
            remote.unopened = message[2]
        elif kind == "policy":
            _, _, backend, exc, phase, site, details = message
            remote.policy.report(backend, exc, phase, site=site, details=details)
        elif kind == "progress":
            remote.progress.update(message[2])

    def _child_gone(self, why: str) -> None:
        if self.ended is None:
            self.ended = why
            if self._runs:
                logger.error("unilog's logging process ended (%s): backends other than the "
                             "local record miss the rest of their runs; the local record "
                             "keeps everything", why)
        self._answer_all()

    # -- end -----------------------------------------------------------------------------

    def _forget_in_fork(self) -> None:
        """In a forked child: close this copy of the pipe, touching no lock."""
        for connection in (self._send, self._receive):
            if connection is not None:
                try:
                    connection.close()  # takes no lock; closes the descriptor once
                except OSError:
                    pass
        self._send = self._receive = None
        self.ended = "it belongs to the process that forked this one"

    def stop(self) -> None:
        """At exit: close the pipe, give the child ``EXIT_WAIT_S`` to exit, then kill it."""
        if self._send is not None:
            try:
                self._send.close()
            except OSError:
                pass
        if self._child is not None and os.getpid() == self.pid:
            from unilog._process_backend import end_child

            end_child(self._child, EXIT_WAIT_S)


def _open_spec(remote: RemoteBackends) -> dict[str, Any]:
    """What the child needs to open a run's backends: the same environment and
    folder as the training process had at ``init`` (SDKs read settings at open)."""
    policy = remote.policy
    return {"backends": remote.specs, "run": remote.run, "on_error": policy.mode,
            "max_consecutive": policy.max_consecutive, "environ": remote.environ,
            "cwd": remote.cwd}


_alive: set[LoggingProcess] = set()


@atexit.register
def _stop_all() -> None:
    # Runs after unilog's exit callback has finished (or given up on) every run.
    for process in list(_alive):
        process.stop()


def _after_fork_in_child() -> None:
    LoggingProcess._lock = threading.Lock()  # another thread may have held it at the fork
    for process in list(_alive):
        process._forget_in_fork()
    _alive.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
