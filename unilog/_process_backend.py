"""A backend in a child process of its own, driven call by call over a pipe.

unilog's logging process (:mod:`unilog._logging_process`) hosts every SDK
backend by default; this older mechanism remains for one case: the SwanLab
backend, whose SDK holds one run per process, runs a second concurrent
SwanLab run in a child of its own. Every backend method is a round trip; an
error raised in the child is raised again in the caller (one that cannot be
pickled arrives as a RuntimeError naming its type and message).

- The child is ``python -m unilog._process_child``, with this process's
  ``sys.path``, so it finds the backend the same way (built in or an installed
  plugin's entry point).
- It runs in its own session, so Ctrl-C or a SIGTERM to the job's process
  group reaches only the training process.
- A child that outlives its backend (it hangs past ``finish``'s time limit) is
  killed when this process exits; one whose parent dies exits when its pipe
  closes.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from unilog.backend import Backend, Row, RunInfo

#: Children still running, killed at exit (a child hung in its SDK never reads EOF).
_children: set[subprocess.Popen] = set()
_children_lock = threading.Lock()
_CLOSE_WAIT_S = 30.0  # for the child to exit after its backend closed


def spawn(module: str) -> tuple[subprocess.Popen, Connection, Connection]:
    """``python -m <module> <read fd> <write fd>`` with this process's ``sys.path``, in
    a session of its own (so Ctrl-C or a SIGTERM to the job's process group reaches
    only this process, which then ends the child's work in order); returns the
    child and the connections to it and from it. Also the logging process's start."""
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", module, str(to_child_r), str(from_child_w)],
            pass_fds=(to_child_r, from_child_w), env=env, stdin=subprocess.DEVNULL,
            start_new_session=True)
    except BaseException:
        for fd in (to_child_w, from_child_r):
            os.close(fd)
        raise
    finally:
        os.close(to_child_r)
        os.close(from_child_w)
    return (child, Connection(to_child_w, readable=False),
            Connection(from_child_r, writable=False))


def end_child(child: subprocess.Popen, timeout: float) -> None:
    """Wait ``timeout`` seconds for ``child`` to exit (its pipe is closed), then kill it."""
    try:
        child.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


class ProcessBackend(Backend):
    """Runs ``cls(**options)`` in a child process; every method is a round trip."""

    def __init__(self, cls: type[Backend], options: dict[str, Any]):
        super().__init__()
        # Instance attributes: the worker reads these as it reads any backend's.
        self.name = cls.name
        self.capabilities = cls.capabilities
        self.flush_interval = cls.flush_interval
        self._options = options
        self._child: subprocess.Popen | None = None
        self._send: Connection | None = None
        self._receive: Connection | None = None

    def open(self, run: RunInfo) -> dict[str, Any] | None:
        """Start the child, then open the backend there; adds the child's ``pid`` to its info."""
        self._start_child()
        try:
            info = dict(self._ask("open", {"name": self.name, "options": self._options,
                                           "run": run}) or {})
        except BaseException:
            self._stop_child()  # a backend that failed to open is never closed: end it now
            raise
        info.setdefault("process", self._child.pid)
        return info

    def log_rows(self, rows: list[Row]) -> None:
        """One round trip per batch (rows' read-only value views become dicts)."""
        self._ask("log_rows", [Row(r.step, dict(r.values), r.time) for r in rows])

    def log_config(self, config: dict[str, Any]) -> None:
        """Forwarded."""
        self._ask("log_config", config)

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Forwarded."""
        self._ask("log_summary", summary)

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """Forwarded."""
        self._ask("set_tags", tuple(tags))

    def describe(self, name: str, notes: str | None) -> None:
        """Forwarded."""
        self._ask("describe", name, notes)

    def log_artifact(self, artifact: Any) -> None:
        """Forwarded (the files are read from the run directory by the child)."""
        self._ask("log_artifact", artifact)

    def download_artifact(self, name: str, alias: str, root: Path) -> Path | None:
        """Forwarded; the child writes the files under ``root``."""
        return self._ask("download_artifact", name, alias, root)

    def flush(self) -> None:
        """Forwarded."""
        self._ask("flush")

    def close(self, status: str, exit_code: int) -> None:
        """Close the backend in the child, then let the child exit (killed if it will not)."""
        try:
            if self._child is not None and self._child.poll() is None:
                self._ask("close", status, exit_code)
        finally:
            self._stop_child()

    # -- the child ------------------------------------------------------------------

    def _start_child(self) -> None:
        self._child, self._send, self._receive = spawn("unilog._process_child")
        with _children_lock:
            _children.add(self._child)

    def _ask(self, method: str, *args: Any) -> Any:
        if self._send is None:
            raise RuntimeError(f"the {self.name!r} backend's process was never started")
        self._send.send((method, args))
        try:
            kind, value = self._receive.recv()
        except EOFError:
            code = self._child.wait()
            raise RuntimeError(f"the {self.name!r} backend's process ended (exit code "
                               f"{code}) during {method}") from None
        if kind == "error":
            raise value
        return value

    def _stop_child(self) -> None:
        for connection in (self._send, self._receive):
            if connection is not None:
                connection.close()  # the child reads EOF and exits
        child, self._child = self._child, None
        if child is None:
            return
        end_child(child, _CLOSE_WAIT_S)
        with _children_lock:
            _children.discard(child)


@atexit.register
def _kill_children() -> None:
    # Runs after unilog's own exit callback has finished (or given up on) every run.
    with _children_lock:
        for child in list(_children):
            if child.poll() is None:
                child.kill()
