"""What happens when a backend fails: the run's ``on_error`` policy.

- ``"warn"`` (default): the first traceback of each distinct error (same
  backend, exception type and raising line) is logged
  (logger ``unilog``) with the backend's name; repeats are only counted. A
  backend that fails ``max_consecutive`` times in a row is disabled for the
  rest of the run.
- ``"raise"``: as ``warn``, and the error is also raised, as a
  :class:`~unilog.errors.BackendError`, on the caller's thread at its next
  ``log``/``log_artifact``/``flush`` call and at ``finish`` (after every backend
  has been closed).
- ``"disable"``: the first error disables that backend for the rest of the run.

Failures are reported on the worker threads through :mod:`logging`, not
:mod:`warnings`, because a warnings filter set to "error" would turn the
report itself into a new exception on a thread nobody watches.
"""

from __future__ import annotations

import logging
import os
import threading
import traceback

from unilog.errors import BackendError, ConfigError

logger = logging.getLogger("unilog")

POLICIES = ("warn", "raise", "disable")


def _default_max_consecutive() -> int:
    return int(os.environ.get("UNILOG_MAX_CONSECUTIVE_FAILURES", "10"))


def raise_site(exc: BaseException) -> str:
    """Where the error was raised: its identity even when its message varies
    ("HTTP 503 at step 17", "... step 18")."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return str(exc)[:200]
    return f"{frames[-1].filename}:{frames[-1].lineno}"


class ErrorPolicy:
    """One run's policy; shared by its workers (thread-safe)."""

    def __init__(self, mode: str, max_consecutive: int | None = None):
        if mode not in POLICIES:
            raise ConfigError(f"on_error must be one of {', '.join(POLICIES)}, not {mode!r}")
        self.mode = mode
        self.max_consecutive = max_consecutive or _default_max_consecutive()
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str, str]] = set()
        self._pending: list[BackendError] = []

    def failed(self, backend: str, exc: BaseException, phase: str, consecutive: int) -> str | None:
        """Report a failure of ``backend`` during ``phase``.

        Returns a reason to disable the backend, or None to keep it.
        """
        self.report(backend, exc, phase)
        if self.mode == "disable":
            return f"disabled after its first error ({type(exc).__name__}) by on_error='disable'"
        if consecutive >= self.max_consecutive:
            return f"disabled after {consecutive} consecutive failures"
        return None

    def report(self, backend: str, exc: BaseException, phase: str,
               site: str | None = None, details: str | None = None) -> None:
        """Log the first occurrence of each distinct error; queue it for raising under 'raise'.

        ``site`` (where it was raised) and ``details`` (its traceback) are given
        for an error that lost its traceback on its way from the logging process.
        """
        signature = (backend, type(exc).__name__, site or raise_site(exc))
        with self._lock:
            first = signature not in self._seen
            self._seen.add(signature)
            if self.mode == "raise":
                error = exc if isinstance(exc, BackendError) else BackendError(
                    backend, f"{phase} failed: {type(exc).__name__}: {exc}"
                )
                if error is not exc:
                    error.__cause__ = exc
                self._pending.append(error)
        if first:
            details = details or "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__))
            logger.warning(
                "unilog backend %r failed in %s: %s: %s (further identical errors are only "
                "counted)\n%s", backend, phase, type(exc).__name__, exc, details,
            )

    def raise_pending(self) -> None:
        """Under 'raise', raise the oldest unreported backend error on the caller's thread."""
        if not self._pending:
            return
        with self._lock:
            if not self._pending:
                return
            error = self._pending.pop(0)
        raise error

    def clear_pending(self) -> list[BackendError]:
        """Take every error not yet raised (used by ``finish``)."""
        with self._lock:
            pending, self._pending = self._pending, []
        return pending
