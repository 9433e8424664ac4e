"""The MLflow backend's way through a tracking server that is down or hung.

Every call that reaches the server goes through :meth:`Outage.send` with a
:class:`Held` describing it. While the server answers, ``send`` just calls.
When a call fails because the server cannot be reached (refused, timed out,
5xx after MLflow's own retries), the outage starts: that call and every later
one are held in order, in memory (bounded), and nothing is raised, so the
run's error policy never disables the backend for an outage. Every
``retry_interval`` seconds the next call first asks the server's ``/health``
(a short, bounded request, so a hung server costs seconds, not MLflow's
minutes of retries); when it answers, the held calls are sent in order, then
the new one. At ``close`` one last attempt is made; whatever is still held is
then described exactly (metric values, keys, steps, params, tags, artifacts,
the run's status), written to ``<run dir>/mlflow/undelivered.json`` and raised
as one short :class:`~unilog.errors.BackendError`.

Only unreachability is held: an error the server returns (a bad value, a
missing experiment) is raised at once, as before.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger("unilog")

#: Metric values, params and tags held at most during an outage (then dropped, counted).
MAX_HELD_VALUES = 1_000_000
# Transport failures as MLflow's REST client words them (MlflowException messages).
_UNREACHABLE = ("failed with exception", "failed with timeout exception")
_REASONS = (("Connection refused", "connection refused"),
            ("timed out", "timed out"), ("Read timed out", "timed out"),
            ("Name or service not known", "unknown host"),
            ("Temporary failure in name resolution", "unknown host"),
            ("too many", "server errors (5xx) after retries"),
            ("Connection reset", "connection reset"),
            ("RemoteDisconnected", "connection closed by the server"))


@dataclass
class Held:
    """One call to the server: what it carries, and how to make it again."""

    kind: str  # metrics | params | tags | config | media | artifact | status
    count: int
    send: Callable[[], Any]
    keys: set[str] = field(default_factory=set)
    steps: tuple[int, int] | None = None
    name: str | None = None  # an artifact's reference, or the status


def is_unreachable(exc: BaseException) -> bool:
    """True when ``exc`` says the server was not reached (not that it refused a request)."""
    text = str(exc)
    if type(exc).__name__ == "MlflowException":
        return text.startswith("API request to") and any(u in text for u in _UNREACHABLE)
    import requests

    return isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError,
                            TimeoutError))


def short_reason(exc: BaseException) -> str:
    """A few words for why the server was not reached."""
    text = str(exc)
    for needle, words in _REASONS:
        if needle in text:
            return words
    return text.splitlines()[0][:120] if text else type(exc).__name__


class Outage:
    """Holds the server's calls while it cannot be reached; see the module docstring."""

    def __init__(self, uri: str, shown: str, retry_interval: float, probe_timeout: float):
        self.uri, self.shown = uri, shown
        self.retry_interval = retry_interval
        self.probe_timeout = probe_timeout
        self.since: float | None = None  # wall time the outage began (None: none now)
        self.reason = ""
        self.held: list[Held] = []
        self.probe_error = ""  # why the last /health check got no answer
        self.lost: list[Held] = []  # held past MAX_HELD_VALUES: never sent
        self.refused: list[Held] = []  # held, then refused by the server when it came back
        self._held_values = 0
        self._next_try = 0.0

    def send(self, item: Held) -> None:
        """Make the call, or hold it while the server cannot be reached."""
        if self.since is not None and not self._recovered(force=False):
            self._hold(item)
            return
        try:
            item.send()
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            self.begin(short_reason(exc))
            self._hold(item)

    def retry(self) -> None:
        """Send what is held if the retry interval has passed and the server answers."""
        if self.since is not None:
            self._recovered(force=False)

    def settle(self) -> None:
        """One last bounded attempt to send what is held (at ``close``)."""
        if self.since is not None:
            self._recovered(force=True)

    def reachable(self) -> bool:
        """True unless the server's ``/health`` gives no answer in ``probe_timeout``.

        A store that is not http(s) (databricks, a database) has no such check:
        True, and the real call decides."""
        parts = urlsplit(self.uri)
        if parts.scheme not in ("http", "https"):
            return True
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        netloc += f":{parts.port}" if parts.port else ""
        health = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
        try:
            with urllib.request.urlopen(health, timeout=self.probe_timeout):
                return True
        except urllib.error.HTTPError:  # it answered, even if not with 200
            return True
        except (OSError, ValueError) as exc:
            cause = getattr(exc, "reason", exc)
            self.probe_error = ("connection refused" if isinstance(cause, ConnectionRefusedError)
                                else "timed out" if isinstance(cause, TimeoutError)
                                else short_reason(cause))
            return False

    # -- internals ---------------------------------------------------------------

    def begin(self, reason: str) -> None:
        """The server stopped answering: hold calls from now on (one warning)."""
        self.since, self.reason = time.time(), reason
        self._next_try = time.monotonic() + self.retry_interval
        logger.warning("unilog backend 'mlflow': the tracking server %s cannot be reached "
                       "(%s); what it misses is held and sent again when it answers "
                       "(checked every %.0f s); the local record has everything",
                       self.shown, self.reason, self.retry_interval)

    def _hold(self, item: Held) -> None:
        if item.kind in ("metrics", "params", "tags"):
            if self._held_values + item.count > MAX_HELD_VALUES:
                self.lost.append(item)
                return
            self._held_values += item.count
        self.held.append(item)

    def _recovered(self, force: bool) -> bool:
        """Send what is held if the server answers again; True when nothing is left."""
        if not force and time.monotonic() < self._next_try:
            return False
        self._next_try = time.monotonic() + self.retry_interval
        if not self.reachable():
            return False
        while self.held:
            try:
                self.held[0].send()
            except Exception as exc:
                if is_unreachable(exc):
                    self.reason = short_reason(exc)
                    return False
                # Refused now, it belongs to no batch of the caller's: raising it
                # would fail an unrelated one. It is said once and kept in `missing`.
                self.refused.append(self.held[0])
                if len(self.refused) == 1:
                    logger.warning("unilog backend 'mlflow': the tracking server refused a "
                                   "call held during its outage (%s); it is listed as missing "
                                   "in the run's report", short_reason(exc))
            self._drop_first()
        down = time.time() - (self.since or time.time())
        self.since = None
        logger.warning("unilog backend 'mlflow': the tracking server %s answers again after "
                       "%.0f s; everything held meanwhile was sent", self.shown, down)
        return True

    def _drop_first(self) -> None:
        item = self.held.pop(0)
        if item.kind in ("metrics", "params", "tags"):
            self._held_values -= item.count

    # -- what the server is missing ---------------------------------------------------

    def missing(self) -> dict[str, Any]:
        """What did not reach the server, by kind (JSON-able)."""
        out: dict[str, Any] = {}
        for item in self.held + self.lost + self.refused:
            entry = out.setdefault(item.kind, {"count": 0})
            entry["count"] += item.count
            if item.keys:
                entry.setdefault("keys", set()).update(item.keys)
            if item.steps is not None:
                low, high = entry.get("steps", item.steps)
                entry["steps"] = (min(low, item.steps[0]), max(high, item.steps[1]))
            if item.name is not None:
                entry.setdefault("names", []).append(item.name)
        for entry in out.values():
            if "keys" in entry:
                entry["keys"] = sorted(entry["keys"])
        if self.lost:
            out["not_held"] = sum(i.count for i in self.lost)
        if self.refused:
            out["refused"] = sum(i.count for i in self.refused)
        return out

    def describe(self, missing: dict[str, Any]) -> str:
        """One sentence of what the server is missing."""
        parts = []
        for kind, entry in missing.items():
            if kind in ("not_held", "refused"):
                continue
            text = f"{entry['count']} {kind}"
            if "keys" in entry:
                keys = entry["keys"]
                text += f" ({', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
                text += f"; steps {entry['steps'][0]}-{entry['steps'][1]})" \
                    if "steps" in entry else ")"
            elif "names" in entry:
                text += f" ({', '.join(entry['names'][:5])})"
            parts.append(text)
        return "; ".join(parts)

    def write(self, path: Path, missing: dict[str, Any], run_id: str) -> None:
        """``undelivered.json``: what the server is missing, for the user and for a replay."""
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {"tracking_uri": self.shown, "mlflow_run_id": run_id,
                  "unreachable_since": self.since, "reason": self.reason,
                  "missing": missing}
        path.write_text(json.dumps(record, indent=2, default=list), encoding="utf-8")
