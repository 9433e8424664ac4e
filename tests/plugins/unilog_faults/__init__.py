"""Fault-injection backends for unilog's tests.

Installed through a real ``unilog`` entry point (the dist-info beside this
package), exactly like a third-party plugin. They fake failures, never a real
backend: "raising" raises on every call, "hanging" blocks, "slow" sleeps,
"recorder" keeps what it receives so tests can see what the core sent,
"exits" ends its call the way some SDKs do (``sys.exit()``, or a leaked
``asyncio.CancelledError``), "mutating" changes the rows it is given.

Those whose state the tests read or set in this process ("recorder",
"per_row": what they received; "hanging", "exits": the RELEASE event) run on
threads of the training process by default (``isolation = "thread"``); the
others run in the logging process, like any plugin. A test moves any of them
with the ``isolation`` option.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import unilog
from unilog.backend import MEDIA_KINDS, Backend, Capabilities, KeyRule

#: What every "recorder" instance received, by the ``label`` option.
RECORDED: dict[str, dict] = {}
#: Set it to release every "hanging" backend.
RELEASE = threading.Event()


class Raising(Backend):
    """Opens fine, then raises on every call."""

    name = "raising"

    def log_rows(self, rows):
        raise RuntimeError("raising backend: log failed")

    def log_config(self, config):
        raise RuntimeError("raising backend: config failed")

    def log_artifact(self, artifact):
        raise RuntimeError("raising backend: artifact failed")

    def close(self, status, exit_code):
        raise RuntimeError("raising backend: close failed")


class FailsToOpen(Backend):
    """Raises in open, like an SDK that cannot reach its service."""

    name = "fails_to_open"

    def open(self, run):
        raise ConnectionError("fails_to_open: service unreachable")


class Hanging(Backend):
    """Blocks in every log call and at close until RELEASE is set (or 600 s)."""

    name = "hanging"
    isolation = "thread"

    def log_rows(self, rows):
        RELEASE.wait(600)

    def close(self, status, exit_code):
        RELEASE.wait(600)


class Slow(Backend):
    """Takes ``delay`` seconds (option, default 0.005) per call of log_rows."""

    name = "slow"

    def __init__(self, delay: float = 0.005, **options):
        super().__init__(**options)
        self.delay = delay

    def log_rows(self, rows):
        time.sleep(self.delay)


class Noop(Backend):
    """Accepts everything and does nothing (for cost measurements)."""

    name = "noop"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=True)
    flush_interval = None


class Recorder(Backend):
    """Keeps everything it receives in RECORDED[label]; options set its capabilities,
    ``fail_every`` fails every n-th call, ``refuse_keys`` fails any call whose
    rows hold one of those keys, ``refuse_steps`` any call holding one of those steps,
    ``open_delay`` makes ``open`` take that long (its start and end in RECORDED[label]
    ["opening"])."""

    name = "recorder"
    isolation = "thread"

    def __init__(self, label: str = "default", media=(), out_of_order: bool = False,
                 allowed: str | None = None, max_length: int | None = None,
                 fail_every: int = 0, fetchable: dict | None = None,
                 refuse_keys: tuple = (), refuse_steps: tuple = (), open_delay: float = 0.0,
                 **options):
        super().__init__(**options)
        self.label = label
        self.open_delay = open_delay
        self.fail_every = fail_every
        self.refuse_keys = set(refuse_keys)  # also RECORDED[label]["refuse_keys"]: tests change it
        self.refuse_steps = frozenset(refuse_steps)
        self.fetchable = fetchable or {}
        self.calls = 0
        # Capabilities are per instance here so one plugin can play many backends.
        self.capabilities = Capabilities(
            media=frozenset(media), out_of_order_steps=out_of_order,
            key_rule=KeyRule(allowed=allowed, max_length=max_length),
        )
        RECORDED[label] = self.data = {"rows": [], "config": [], "summary": {}, "artifacts": [],
                                       "tags": [], "description": [], "open": None, "close": None, "flushes": 0,
                                       "refuse_keys": self.refuse_keys}

    def open(self, run):
        started = time.monotonic()
        time.sleep(self.open_delay)
        self.data["opening"] = (started, time.monotonic())
        self.data["open"] = run
        return {"id": f"rec-{run.id}", "url": f"memory://{self.label}"}

    def log_rows(self, rows):
        self.calls += 1
        self.data["calls"] = self.calls
        if self.fail_every and self.calls % self.fail_every == 0:
            raise ValueError(f"recorder {self.label}: injected failure #{self.calls}")
        refused = [k for r in rows for k in r.values if k in self.refuse_keys]
        if refused:  # like an SDK that rejects a whole batch for one key it cannot take
            raise ValueError(f"recorder {self.label}: refuses key {refused[0]!r}")
        if any(r.step in self.refuse_steps for r in rows):  # or for one step
            raise ValueError(f"recorder {self.label}: refuses a step")
        self.data["rows"].extend((r.step, dict(r.values)) for r in rows)

    def log_config(self, config):
        self.data["config"].append(config)

    def log_summary(self, summary):
        self.data["summary"].update(summary)

    def set_tags(self, tags):
        """Kept as (rows received before them, the tags): the tests check the order."""
        self.data["tags"].append((len(self.data["rows"]), tuple(tags)))

    def describe(self, name, notes):
        """Kept as (rows received before them, name, notes), like the tags."""
        self.data["description"].append((len(self.data["rows"]), name, notes))

    def log_artifact(self, artifact):
        self.data["artifacts"].append(artifact)

    def flush(self):
        self.data["flushes"] += 1

    def download_artifact(self, name, alias, root):
        """Serves artifacts named in the ``fetchable`` option: {name: file content}."""
        self.data["fetch_thread"] = threading.get_ident()
        if name not in self.fetchable:
            return None
        (root / f"{name}.txt").write_text(self.fetchable[name])
        return root

    def close(self, status, exit_code):
        self.data["close"] = (status, exit_code)


class PerRow(Backend):
    """A third-party backend written the simple way: ``log_row`` only, storing row by
    row (the base class's ``log_rows`` loops over it), refusing ``refuse_keys``."""

    name = "per_row"
    isolation = "thread"

    def __init__(self, label: str = "per_row", refuse_keys: tuple = (), **options):
        super().__init__(**options)
        self.refuse_keys = frozenset(refuse_keys)
        RECORDED[label] = self.data = {"rows": [], "calls": 0}

    def log_rows(self, rows):
        self.data["calls"] += 1
        super().log_rows(rows)

    def log_row(self, row):
        if any(k in self.refuse_keys for k in row.values):
            raise ValueError("per_row: refuses a key")
        self.data["rows"].append((row.step, dict(row.values)))


class Exits(Backend):
    """Its SDK gives up with ``sys.exit(3)`` (SystemExit, a BaseException) in every
    log call, or, with ``cancel=True``, leaks its event loop's
    ``asyncio.CancelledError`` (also a BaseException). With ``hold=True``,
    log_config waits for RELEASE, so what is logged meanwhile reaches the worker
    as one batch."""

    name = "exits"
    isolation = "thread"

    def __init__(self, cancel: bool = False, hold: bool = False, **options):
        super().__init__(**options)
        self.cancel = cancel
        self.hold = hold

    def log_config(self, config):
        if self.hold:
            RELEASE.wait(600)

    def log_rows(self, rows):
        if self.cancel:
            raise asyncio.CancelledError("sdk event loop cancelled")
        sys.exit(3)


class Mutating(Backend):
    """Moves "epoch" out of each row it receives (as a backend with its own epoch
    field might): the rows are shared with every other backend, so this must fail."""

    name = "mutating"

    def log_rows(self, rows):
        for row in rows:
            row.values.pop("epoch", None)


class SkipsItself(Backend):
    """Declines to run at open (as MLflow does for a remote store in offline mode)."""

    name = "skips_itself"

    def open(self, run):
        return {"skipped": "not needed in this test"}

    def log_rows(self, rows):
        raise AssertionError("a skipped backend must not be called")


class NeedsMissingSDK(Backend):
    """A backend whose SDK is not installed."""

    name = "needs_missing_sdk"
    requires = ("unilog_no_such_sdk_xyz",)
    extra = "nosuchsdk"


@unilog.hookimpl
def unilog_register_backends(register):
    for cls in (Raising, FailsToOpen, Hanging, Slow, Noop, Recorder, PerRow, Exits, Mutating,
                NeedsMissingSDK, SkipsItself):
        register(cls)
