"""The logging process's side (see :mod:`unilog._logging_process`).

``python -m unilog._logging_host <read fd> <write fd>``. Each message from the
training process is a pickled list of ``("open", token, spec)``,
``("records", token, records)``, ``("flush", token, id, deadline)``,
``("close", token, id, status, exit_code, deadline)`` and
``("request", token, id, backend, name, alias, root, timeout)`` (deadlines are
``time.monotonic()`` values: one clock for both processes). Each run gets a
:class:`unilog._dispatch.Dispatcher` of :class:`unilog._dispatch.BackendWorker` s
here, exactly as a run with ``isolation="thread"`` has in the training
process, so batching, isolation of bad values, the error policy and the
counts are the same code. What goes back: ``("opened", token, name, info)``,
``("open_failed", token, reason)``,
``("policy", token, backend, error, phase, site)``, ``("log", level, text)``,
``("progress", token, {name: (done, delivered, disabled)})`` and
``("answer", id, result, error)``.

EOF on the pipe, or the training process gone (its pid no longer this
process's parent), closes every open run as killed, then the process exits.
Ctrl-C and SIGTERM are ignored: the training process decides when runs end.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from unilog._policy import ErrorPolicy, raise_site

_PROGRESS_S = 1.0  # how often the training process hears how far each backend got
_PLUGIN_VARIABLES = ("UNILOG_PLUGINS", "UNILOG_DISABLE_PLUGINS")
#: Variables naming a service of the training process, which this process must not
#: share: wandb's WANDB_SERVICE (set once wandb ran there) would make wandb here
#: write through the training process's wandb-core, which dies with it.
_NOT_ADOPTED = ("WANDB_SERVICE",)


def sendable(value: Any) -> Any:
    """``value`` if it survives pickling, else its text (an exception: a RuntimeError
    naming its type, message and where it was raised)."""
    try:
        pickle.loads(pickle.dumps(value))
        return value
    except Exception:
        if isinstance(value, BaseException):
            where = "".join(traceback.format_exception(value)[-3:]).strip()
            return RuntimeError(f"{type(value).__name__}: {value} (in the logging process: "
                                f"{where})")
        if isinstance(value, dict):
            return {str(k): sendable(v) for k, v in value.items()}
        return repr(value)


class _Channel:
    """The way back to the training process (several threads answer)."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close this copy of the connection (in a forked child; takes no lock)."""
        self._connection.close()

    def send(self, *message: Any) -> None:
        try:
            payload = pickle.dumps([message], protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            payload = pickle.dumps([tuple(sendable(part) for part in message)])
        with self._lock:
            try:
                self._connection.send_bytes(payload)
            except OSError:
                pass  # the training process is gone: the runs are being closed


class _ForwardingPolicy(ErrorPolicy):
    """The run's policy, deciding here (disable after N failures...) but reporting
    every error to the training process, which logs it and raises it there."""

    def __init__(self, channel: _Channel, token: int, mode: str, max_consecutive: int):
        super().__init__(mode, max_consecutive)
        self._channel = channel
        self._token = token
        self._described: set[tuple[str, str, str]] = set()

    def report(self, backend: str, exc: BaseException, phase: str,
               site: str | None = None, details: str | None = None) -> None:
        site = site or raise_site(exc)
        signature = (backend, type(exc).__name__, site)
        if signature not in self._described:  # the traceback travels once: only it is logged
            self._described.add(signature)
            details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            details += "(raised in unilog's logging process)\n"
        self._channel.send("policy", self._token, backend, sendable(exc), phase, site, details)


class _LogForwarder(logging.Handler):
    """unilog's log lines (a backend disabled, media kept as files...) go to the
    training process's ``unilog`` logger, where the user looks for them."""

    def __init__(self, channel: _Channel):
        super().__init__(logging.DEBUG)
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            self._channel.send("log", record.levelno, text)
        except Exception:
            self.handleError(record)


class Host:
    """Every run the training process has open here."""

    def __init__(self, channel: _Channel):
        self.channel = channel
        self.runs: dict[int, Any] = {}  # token -> Dispatcher
        self._plugin_settings = {v: os.environ.get(v) for v in _PLUGIN_VARIABLES}
        self._adopted: dict[str, str] = dict(os.environ)  # the training process's, last seen
        self._ending = threading.Lock()
        self._ended = False

    def handle(self, message: tuple) -> None:
        kind, token = message[0], message[1]
        if kind == "records":
            self._records(self.runs.get(token), message[2])
        elif kind == "open":
            self._open(token, message[2])
        elif kind == "flush":
            self._in_thread(self._flush, token, *message[2:])
        elif kind == "close":
            self._in_thread(self._close, token, *message[2:])
        elif kind == "request":
            self._in_thread(self._request, token, *message[2:])

    def _open(self, token: int, spec: dict[str, Any]) -> None:
        from unilog import plugins
        from unilog._dispatch import BackendWorker, Dispatcher

        self._adopt(spec["environ"], spec["cwd"])
        current = {v: os.environ.get(v) for v in _PLUGIN_VARIABLES}
        if current != self._plugin_settings:  # the user changed which plugins load
            plugins.reset()
            self._plugin_settings = current
        try:
            policy = _ForwardingPolicy(self.channel, token, spec["on_error"],
                                       spec["max_consecutive"])
            workers = []
            for name, options, queue_size in spec["backends"]:
                backend = _build(name, options)
                workers.append(BackendWorker(
                    backend, spec["run"], policy, queue_size=queue_size,
                    on_open=lambda n, info: self.channel.send("opened", token, n,
                                                              sendable(info))))
            dispatcher = Dispatcher(workers)
            dispatcher.start()
        except Exception as exc:  # a bug of ours: the run's backends are reported failed
            self.channel.send("open_failed", token, f"{type(exc).__name__}: {exc}")
            raise
        self.runs[token] = dispatcher

    def _adopt(self, environ: dict[str, str], cwd: str) -> None:
        """The training process's environment and folder as they were at its ``init``:
        only what changed there since the last run is applied, so what the backends
        set here for themselves (MLflow's HTTP bounds) stays."""
        environ = {k: v for k, v in environ.items() if k not in _NOT_ADOPTED}
        for key, value in environ.items():
            if self._adopted.get(key) != value:
                os.environ[key] = value
        for key in self._adopted.keys() - environ.keys():  # unset there since
            if os.environ.get(key) == self._adopted[key]:
                del os.environ[key]
        self._adopted = dict(environ)
        if os.getcwd() != cwd:
            try:
                os.chdir(cwd)
            except OSError:
                pass

    @staticmethod
    def _records(dispatcher: Any, records: list[Any]) -> None:
        if dispatcher is None:
            return
        hook = dispatcher.hook
        row = dispatcher.dispatch_row
        for record in records:
            if type(record) is not tuple:
                row(record, False)
            elif record[0] == "local_only":
                row(record[1], True)
            elif record[0] == "config":
                hook.unilog_dispatch_config(config=record[1])
            elif record[0] == "summary":
                hook.unilog_dispatch_summary(summary=record[1])
            elif record[0] == "tags":
                hook.unilog_dispatch_tags(tags=record[1])
            elif record[0] == "description":
                hook.unilog_dispatch_description(name=record[1][0], notes=record[1][1])
            elif record[0] == "gap":  # records were dropped before the child got them
                for member in dispatcher.members:
                    member.put_record(record)
            else:
                hook.unilog_dispatch_artifact(artifact=record[1])

    def _in_thread(self, fn: Any, *args: Any) -> None:
        # Flushes, closes and downloads wait on backends: never on the reading thread,
        # which must keep taking records (and other runs' messages) meanwhile.
        threading.Thread(target=fn, args=args, daemon=True,
                         name=f"unilog-host-{fn.__name__.strip('_')}").start()

    def _flush(self, token: int, control_id: int, deadline: float) -> None:
        dispatcher = self.runs.get(token)
        # Bounded by the caller's own deadline (time.monotonic is one clock for both).
        late = (dispatcher.flush(max(0.0, deadline - time.monotonic()))
                if dispatcher is not None else [])
        self.channel.send("answer", control_id, late, None)

    def _close(self, token: int, control_id: int, status: str, exit_code: int,
               deadline: float) -> None:
        dispatcher = self.runs.get(token)
        timeout = max(0.0, deadline - time.monotonic())
        reports = dispatcher.close(status, exit_code, timeout) if dispatcher else {}
        self.channel.send("answer", control_id, sendable(reports), None)
        self.runs.pop(token, None)

    def _request(self, token: int, control_id: int, backend: str, name: str, alias: str,
                 root: str, timeout: float) -> None:
        dispatcher = self.runs.get(token)
        try:
            path = (dispatcher.fetch(backend, name, alias, Path(root), timeout)
                    if dispatcher else None)
            self.channel.send("answer", control_id, path, None)
        except BaseException as exc:
            self.channel.send("answer", control_id, None, sendable(exc))

    def report_progress(self) -> None:
        """Every second: how many records each backend of each run finished."""
        last: dict[int, dict[str, tuple]] = {}
        while True:
            time.sleep(_PROGRESS_S)
            for token, dispatcher in list(self.runs.items()):
                done = {m.name: (m.adapter.counts.done, m.adapter.counts.delivered,
                                 m.adapter.disabled) for m in dispatcher.members}
                if done != last.get(token):
                    last[token] = done
                    self.channel.send("progress", token, done)

    def end(self, why: str) -> bool:
        """The training process is gone: close every open run as killed, once. A
        second caller waits for the first to be done, then gets False."""
        with self._ending:
            if self._ended:
                return False
            self._ended = True
            self._close_all()
        return True

    def _close_all(self) -> None:
        for token, dispatcher in list(self.runs.items()):
            try:
                dispatcher.close("killed", -1, 30.0)
            except Exception:
                pass
            self.runs.pop(token, None)


def _build(name: str, options: dict[str, Any]) -> Any:
    """The backend, or a stand-in whose open fails with the reason it could not be built."""
    from unilog import _settings as settings
    from unilog.backend import Backend
    from unilog.plugins import get_backend_class

    try:
        return settings.construct_backend(get_backend_class(name), options)
    except Exception as exc:
        error = exc

        class Unbuildable(Backend):
            def open(self, run):
                raise error

        Unbuildable.name = name
        return Unbuildable()


def _watch_parent(host: Host, parent: int) -> None:
    """A training process that died while something else holds its end of the pipe
    (a process it forked that outlives it) still ends its runs here."""
    while os.getppid() == parent:
        time.sleep(1.0)
    if host.end("the training process is gone"):
        os._exit(0)


def _import_shared_packages() -> None:
    """Import numpy here, before any backend opens, when it is installed.

    This thread unpickles what the training process sends: a histogram or image
    holds numpy arrays, whose unpickling imports numpy. Done while a backend's
    worker imports its SDK (mlflow -> scipy -> numpy.testing), each thread could
    meet numpy half-initialised ("module 'numpy._core' has no attribute
    '_multiarray_umath'", mlflow failing to open in about one run in five with
    histograms). Every SDK unilog ships a backend for imports numpy anyway."""
    from importlib.util import find_spec

    if find_spec("numpy") is not None:  # before the workers start: no other import runs
        import numpy  # noqa: F401


def main(argv: list[str]) -> int:
    """Serve the training process until EOF."""
    for variable in _NOT_ADOPTED:
        os.environ.pop(variable, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    receive = Connection(int(argv[0]), writable=False)
    channel = _Channel(Connection(int(argv[1]), readable=False))
    unilog_logger = logging.getLogger("unilog")
    unilog_logger.addHandler(_LogForwarder(channel))
    unilog_logger.propagate = False
    host = Host(channel)
    threading.Thread(target=host.report_progress, daemon=True,
                     name="unilog-host-progress").start()
    threading.Thread(target=_watch_parent, args=(host, os.getppid()), daemon=True,
                     name="unilog-host-watch").start()
    # An SDK that forks here (not exec) must not keep the pipe open in its child:
    # the training process would never see this process end.
    os.register_at_fork(after_in_child=lambda: (receive.close(), channel.close()))
    _import_shared_packages()
    while True:
        try:
            data = receive.recv_bytes()
        except (EOFError, OSError):
            host.end("its pipe closed")
            return 0
        try:
            messages = pickle.loads(data)
        except Exception as exc:  # costs this message only; the other runs go on
            logging.getLogger("unilog").error(
                "unilog's logging process could not read a message from the training "
                "process (%s: %s); the records in it are lost to the backends (the local "
                "record has them)", type(exc).__name__, exc)
            continue
        for message in messages:
            try:
                host.handle(message)
            except Exception:  # a bug of ours: reported, and the other runs go on
                logging.getLogger("unilog").exception(
                    "unilog's logging process could not handle %r", message[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
