"""Ending runs when the process ends: normal exit, uncaught exception, Ctrl-C, SIGTERM.

Installed on the first ``init``, never at import:

- a ``sys.excepthook`` wrapper remembers an uncaught exception (failed, or
  killed for KeyboardInterrupt) and then calls the previous hook;
- a ``sys.exit`` wrapper remembers a non-zero exit code called on the main
  thread (failed), as wandb does. Known limits: ``raise SystemExit(n)``
  written out by hand is not seen (finished), and a ``sys.exit(n)`` whose
  SystemExit the program catches and survives still ends the run as failed;
- a SIGTERM handler, only when the process has none of its own (SIG_DFL) and
  ``init`` runs on the main thread: it marks the process as killed and raises
  ``SystemExit(143)``, so the training loop unwinds through its ``finally``
  blocks and the process still exits with 128 + SIGTERM (a SIGTERM that
  arrives while the exit callback is finishing the runs is ignored, so they
  do not stay "running"), and given back (SIG_DFL) once they are;
- fork handlers (``os.register_at_fork``): a fork waits for backends that
  are mid-call, and in the child every run of the parent becomes inert (what
  it logs is dropped with one warning; it is never finished from the child);
- an exit callback that finishes every run still open. It is registered with
  ``threading._register_atexit`` when available, which runs before ordinary
  ``atexit`` callbacks, so runs are flushed before backend SDKs (which
  register their own ``atexit`` handlers on import) shut themselves down.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unilog.runs import Run

logger = logging.getLogger("unilog")

_lock = threading.Lock()
_active: list[Run] = []
_installed = False
_ending_status: str | None = None  # set by the excepthook / SIGTERM handler
_ending_code: int | None = None  # the exit code that goes with it
_exiting = False  # set while the exit callback finishes the runs
# A fork waits at most this long for backends that are in a call (see _before_fork).
try:
    _FORK_PAUSE_S = float(os.environ.get("UNILOG_FORK_PAUSE", "0.5"))
except ValueError:  # a bad value must not make `import unilog` fail
    _FORK_PAUSE_S = 0.5
_paused: list = []  # what _before_fork holds, released after the fork


def register(run: Run) -> None:
    """Track ``run`` so it is finished when the process ends."""
    global _installed
    with _lock:
        _active.append(run)
        if not _installed:
            _installed = True
            _install()


def unregister(run: Run) -> None:
    """Stop tracking a finished run."""
    with _lock:
        if run in _active:
            _active.remove(run)


def _install() -> None:
    previous_hook = sys.excepthook

    def excepthook(exc_type, exc, tb):
        global _ending_status, _ending_code
        if _ending_status is None:
            interrupted = issubclass(exc_type, KeyboardInterrupt)
            _ending_status = "killed" if interrupted else "failed"
            _ending_code = 130 if interrupted else 1
        previous_hook(exc_type, exc, tb)

    sys.excepthook = excepthook
    _wrap_sys_exit()
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                            after_in_child=_after_fork_in_child)
    register_exit = getattr(threading, "_register_atexit", None)
    try:
        if register_exit is None:
            raise RuntimeError
        register_exit(_finish_all)
    except RuntimeError:
        atexit.register(_finish_all)
    _install_sigterm()


def _before_fork() -> None:
    """Hold the runs still across ``fork``: no backend mid-call, no run registering.

    A child forked while a worker thread is inside an SDK inherits that SDK's
    locks held by a thread that does not exist there; Neptune's own fork
    handler then blocked on one in every DataLoader worker. Workers are waited
    for (at most ``UNILOG_FORK_PAUSE`` seconds in all, 0.5 by default) and
    kept out of their backends until the fork is done.
    """
    global _deferred
    _lock.acquire()
    _deferred = _defer_signals()  # handlers noting the signals: the wait below is safe
    deadline = time.monotonic() + _FORK_PAUSE_S
    for run in _active:
        _paused.append((run, run._pause_backends(max(0.0, deadline - time.monotonic()))))


def _after_fork_in_parent() -> None:
    for run, held in _paused:
        run._resume_backends(held)
    _paused.clear()
    _lock.release()
    _redeliver(_deferred)


# Ctrl-C or SIGTERM while a fork waits for the backends must not be lost: an
# exception raised in a fork handler is printed and dropped by Python, and it
# would leave the backends paused. While the fork waits, those signals are
# only noted; they are raised again once the fork is done (in the parent).
_DEFERRED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM")
                          if hasattr(signal, name))
_deferred: tuple[dict, list] | None = None  # set by _before_fork for the fork's two halves


def _defer_signals() -> tuple[dict, list] | None:
    """Note SIGINT/SIGTERM instead of handling them (main thread only); returns
    what to restore and the signals noted."""
    if threading.current_thread() is not threading.main_thread():
        return None  # signal handlers run on the main thread only: nothing to defer
    noted: list[int] = []
    previous = {}
    try:
        for signum in _DEFERRED_SIGNALS:
            previous[signum] = signal.signal(signum, lambda n, _frame: noted.append(n))
    except (ValueError, OSError):
        _restore_handlers(previous)
        return None
    return previous, noted


def _restore_handlers(previous: dict) -> None:
    for signum, handler in previous.items():
        try:
            signal.signal(signum, handler)
        except (ValueError, OSError, TypeError):
            pass


def _redeliver(deferred: tuple[dict, list] | None) -> None:
    """Put the handlers back and send again each signal noted meanwhile.

    Sent a moment later from another thread: a signal raised now would be
    handled inside this fork handler (or a later one), where Python drops the
    exception; sent once the fork has returned, it interrupts the caller."""
    if deferred is None:
        return
    previous, noted = deferred
    _restore_handlers(previous)
    for signum in dict.fromkeys(noted):
        timer = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        timer.daemon = True
        timer.start()


def _after_fork_in_child() -> None:
    """The child (a DataLoader worker, a multiprocessing fork) leaves its parent's
    runs alone: it never logs to, finishes, blocks on or writes them."""
    global _lock
    _lock = threading.Lock()  # the parent's is held by _before_fork
    for run, held in _paused:
        run._resume_backends(held)
    _paused.clear()
    if _deferred is not None:  # the child gets the handlers back; the signal was the parent's
        _restore_handlers(_deferred[0])
    for run in _active:
        run._forked_away()
    _active.clear()


def system_exit_status(exc: SystemExit) -> tuple[int, str]:
    """(exit code, status) for a SystemExit: SIGTERM's is killed, a non-zero code failed."""
    if _ending_status == "killed" and _ending_code is not None:
        return _ending_code, "killed"
    code = exc.code
    if code is None or code == 0:
        return 0, "finished"
    return (code if isinstance(code, int) else 1), "failed"


def _wrap_sys_exit() -> None:
    """Remember the code of ``sys.exit(code)``: SystemExit never reaches the
    excepthook, and ``sys.exit(3)`` should end the run as failed with code 3."""
    original = sys.exit

    def exit(status=None):
        global _ending_status, _ending_code
        # Only the main thread's exit ends the process: a backend SDK calling
        # sys.exit on a worker thread is that backend's error, not the run's end.
        on_main = threading.current_thread() is threading.main_thread()
        if on_main and _ending_status is None and status not in (None, 0):
            _ending_status = "failed"
            _ending_code = status if isinstance(status, int) else 1
        original(status)

    exit.__doc__ = original.__doc__
    sys.exit = exit


def _install_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            return  # the user (or a framework) handles SIGTERM: do not override it
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):
        pass


def _restore_sigterm() -> None:
    """SIGTERM's default again once the runs are finished at exit: ignoring it for
    the rest of the process's life would leave only SIGKILL to stop a process
    held up by a leftover thread (``docker stop`` and ``scancel`` send SIGTERM)."""
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGTERM) is _on_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    except (ValueError, OSError):
        pass


def _on_sigterm(signum, frame) -> None:
    global _ending_status, _ending_code
    if _exiting:
        return  # already finishing the runs at exit: raising would leave them "running"
    _ending_status = "killed"
    _ending_code = 128 + signum
    raise SystemExit(128 + signum)


def _finish_all() -> None:
    """Finish every open run with the status the process is ending with, then
    give SIGTERM back to whoever had it."""
    global _exiting
    _exiting = True
    status = _ending_status or "finished"
    exit_code = _ending_code if _ending_code is not None else 0
    with _lock:
        runs = list(_active)
    with _atexit_registration_reopened():
        for run in reversed(runs):
            try:
                run.finish(exit_code=exit_code, status=status)
            except Exception:
                logger.exception("unilog could not finish run %s at exit", run.id)
    _restore_sigterm()


@contextlib.contextmanager
def _atexit_registration_reopened():
    """Let backends still opening import their SDKs while the runs are finished.

    This callback runs inside ``threading._shutdown``, after threading has
    started refusing ``_register_atexit``; ``concurrent.futures`` (imported by
    wandb, MLflow, TensorBoard...) calls it on import, so an SDK imported now
    fails with "can't register atexit after shutdown", and a run that crashed
    in its first batch reached none of them. Registration is reopened while
    the runs finish, and what was registered meanwhile runs right after, as
    threading would have run it.
    """
    callbacks = getattr(threading, "_threading_atexits", None)
    if getattr(threading, "_SHUTTING_DOWN", None) is not True or not isinstance(callbacks, list):
        yield
        return
    before = len(callbacks)
    threading._SHUTTING_DOWN = False
    try:
        yield
    finally:
        threading._SHUTTING_DOWN = True
        added = callbacks[before:]
        del callbacks[before:]
        for callback in reversed(added):
            try:
                callback()
            except Exception:
                logger.exception("unilog: an exit callback registered while finishing failed")
