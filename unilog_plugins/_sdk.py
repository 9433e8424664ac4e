"""Helpers the SDK backends share: what an SDK must not record, and keeping an
SDK's informational console lines out of the user's terminal.

Not a backend: it registers nothing.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

from unilog.backend import redact_argv


def argv_has_secrets() -> bool:
    """True when ``sys.argv`` holds a value unilog redacts (``--api-key=...``,
    ``--hf_token X``, ``db.password=...``): an SDK that records the command line
    verbatim must not record this one."""
    return redact_argv(sys.argv) != sys.argv


def git_remote_has_credentials(timeout: float = 2.0) -> bool:
    """True when the working directory's ``remote.origin.url`` carries a user or
    password (``https://user:token@host/...``), which some SDKs record verbatim.
    A missing or slow git counts as no remote."""
    try:
        url = subprocess.run(["git", "config", "--get", "remote.origin.url"],
                             capture_output=True, text=True, timeout=timeout).stdout.strip()
        parts = urlsplit(url)
        return bool(parts.scheme and (parts.username or parts.password))
    except (OSError, subprocess.SubprocessError, ValueError):
        return False


class _ThisThreadBelowWarning(logging.Filter):
    """Drops the records below WARNING that one thread emits."""

    def __init__(self, thread: int):
        super().__init__()
        self.thread = thread

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or record.thread != self.thread


@contextlib.contextmanager
def quiet_info(*names: str) -> Iterator[None]:
    """While inside, the named loggers drop the INFO/DEBUG lines that this thread
    emits (an SDK's "initialized", "creating tables"...). Warnings and errors still
    show, and other threads (the user's own use of the SDK) are untouched."""
    quiet = _ThisThreadBelowWarning(threading.get_ident())
    loggers = [logging.getLogger(name) for name in names]
    for log in loggers:
        log.addFilter(quiet)
    try:
        yield
    finally:
        for log in loggers:
            log.removeFilter(quiet)
