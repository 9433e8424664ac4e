"""Each backend's delivery ledger: what of the local record it has for certain.

``<run dir>/sync/<backend>.json``, kept by the backend's adapter (in whichever
process the backend runs) for live runs and for ``unilog sync`` alike, so a
sync sends a backend exactly what it lacks, never a row twice:

- ``destination``: where the backend keeps the run (a tracking URI, a folder,
  a W&B project online: :meth:`unilog.backend.Backend.destination`); a backend
  sent somewhere else starts from nothing there, and the ledger of each other
  destination is kept under ``others``, for when it is sent there again;
- ``info``: the backend's own identity of the run (its ``open`` answer), so a
  later sync continues the same run there;
- ``rows``: ``[[low, high], ...]``, step ranges of rows the backend stored and
  flushed. A range says every row of the local record with a step in it is
  there; a row the backend never got (a full queue dropped it, the backend was
  down, disabled, or still holds it in an outage buffer) ends a range;
  Rows whose step went backwards (they share a step with an earlier row) are
  not ranged: a sync sends one when the backend lacks the row that follows it;
- ``config`` / ``summary``: digests of the last config and summary it stored;
- ``artifacts``: the artifact versions it stored (``"name:v3"``);
- ``status``: the status it was closed with (None while open).

Written atomically after each successful flush and at close: what is in the
file was flushed by the backend. Rows stored after the last write and before a
crash of the process the backend runs in are not in it (at most one flush
interval, a second by default); see docs/sync.md.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

from unilog.errors import UnilogError

FOLDER = "sync"
_FIELDS = ("destination", "info", "rows", "config", "summary", "artifacts", "status")


class LedgerError(UnilogError):
    """A ledger file that cannot be read: it names the file and what is wrong."""


def path_of(run_dir: Path, backend: str) -> Path:
    """Where ``backend``'s ledger of the run in ``run_dir`` is kept."""
    return Path(run_dir) / FOLDER / f"{backend}.json"


def digest(value: Any) -> str:
    """A short digest of a JSON-able value (the config or summary a backend has)."""
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def subtract(ranges: list[list[int]], holes: Iterable[tuple[int, int]]) -> list[list[int]]:
    """``ranges`` without the steps of ``holes`` (both inclusive ``[low, high]`` pairs)."""
    out = [list(r) for r in ranges]
    for low, high in holes:
        kept = []
        for a, b in out:
            if b < low or a > high:
                kept.append([a, b])
                continue
            if a < low:
                kept.append([a, low - 1])
            if b > high:
                kept.append([high + 1, b])
        out = kept
    return out


def _check(path: Path, data: Any) -> None:
    """A LedgerError naming ``path`` and the rule ``data`` breaks."""
    def bad(rule: str) -> LedgerError:
        return LedgerError(f"the sync ledger {path} is damaged: {rule}; remove it to send "
                           "everything again")

    if not isinstance(data, dict):
        raise bad(f"it must hold a JSON object, not {type(data).__name__}")
    rows = data.get("rows") or []
    if not isinstance(rows, list) or not all(
            isinstance(r, list) and len(r) == 2 and all(type(v) is int for v in r)
            and r[0] <= r[1] for r in rows):
        raise bad("'rows' must be a list of [low, high] step pairs with low <= high")
    for key, kind in (("info", dict), ("artifacts", list), ("others", dict)):
        if data.get(key) is not None and not isinstance(data[key], kind):
            raise bad(f"{key!r} must be a JSON {'object' if kind is dict else 'array'}")
    for key in ("destination", "config", "summary", "status"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise bad(f"{key!r} must be a string or null")


def merge(ranges: Iterable[list[int]]) -> list[list[int]]:
    """Sorted ranges, overlapping or touching ones joined (steps are integers, so
    ``[0, 4]`` and ``[5, 9]`` leave no step out)."""
    out: list[list[int]] = []
    for low, high in sorted([int(a), int(b)] for a, b in ranges):
        if out and low <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], high)
        else:
            out.append([low, high])
    return out


def covers(ranges: list[list[int]], step: int) -> bool:
    """True when ``step`` lies in one of the sorted ``ranges`` (called per row and
    backend by a sync)."""
    i = bisect.bisect_right(ranges, [step, float("inf")]) - 1
    return i >= 0 and ranges[i][0] <= step <= ranges[i][1]


class Ledger:
    """One backend's ledger of one run (see the module docstring)."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None,
                 others: dict[str, dict[str, Any]] | None = None):
        data = data or {}
        self.path = path
        self.destination: str | None = data.get("destination")
        self.others = dict(others or {})  # the ledgers of the backend's other destinations
        self.info: dict[str, Any] = dict(data.get("info") or {})
        self.rows: list[list[int]] = merge([int(a), int(b)] for a, b in data.get("rows") or [])
        self.config: str | None = data.get("config")
        self.summary: str | None = data.get("summary")
        self.artifacts: list[str] = list(data.get("artifacts") or [])
        self.status: str | None = data.get("status")
        self._summary_values: dict[str, Any] = {}  # set this session (a digest is of them all)
        # This session's ranges, in the order the rows came (a sync sends only what
        # the ledger lacks, so they interleave with the loaded ones): merged at save.
        self._session: list[list[int]] = []
        self._high = -1  # the highest step seen this session: a row at or below went back
        self._open_range = False  # the last row seen was stored and ends _session[-1]

    @classmethod
    def load(cls, run_dir: Path, backend: str, destination: str | None = None) -> Ledger:
        """The ledger of ``backend`` at ``destination`` as last written (empty when the
        backend never had the run there). ``destination`` None: the latest one.
        A file that is not a ledger raises :class:`LedgerError` naming it."""
        path = path_of(run_dir, backend)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except OSError as exc:
            raise LedgerError(f"the sync ledger {path} cannot be read: {exc}") from None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise LedgerError(f"the sync ledger {path} is not JSON ({exc}); remove it to "
                              "send everything again") from None
        _check(path, data)
        others = dict(data.get("others") or {})
        current = {k: data.get(k) for k in _FIELDS}
        if destination is None or current["destination"] in (None, destination):
            return cls(path, current, others)
        if current["destination"] is not None:  # the latest destination joins the others
            others[current["destination"]] = current
        found = others.pop(destination, None)
        if found is not None:
            _check(path, found)
        return cls(path, found or {"destination": destination}, others)

    def reset(self) -> None:
        """The backend's run at this destination holds nothing (it was new at open)."""
        self.rows, self._session, self._open_range = [], [], False
        self.config = self.summary = self.status = None
        self.artifacts, self._summary_values = [], {}

    @property
    def exists(self) -> bool:
        """True when the backend has been opened for this run at this destination."""
        return bool(self.info)

    # -- what the adapter saw --------------------------------------------------------

    def row(self, step: int, stored: bool) -> None:
        """The next row the backend was handed, in order, and whether it stored it."""
        if step <= self._high:  # went backwards: never ranged
            return
        self._high = step
        if not stored:
            self._open_range = False
        elif self._open_range:
            self._session[-1][1] = step
        else:
            self._session.append([step, step])
            self._open_range = True

    def gap(self) -> None:
        """Rows were lost before reaching the backend: the next stored row starts a range."""
        self._open_range = False

    def stored(self, kind: str, payload: Any) -> None:
        """A config, summary or artifact the backend stored."""
        if kind == "config":
            self.config = digest(payload)
        elif kind == "summary":
            self._summary_values.update(payload)
            self.summary = digest(self._summary_values)
        elif kind == "artifact":
            ref = f"{payload.name}:v{payload.version}"
            if ref not in self.artifacts:
                self.artifacts.append(ref)

    # -- on disk -----------------------------------------------------------------------

    def save(self, unconfirmed: Iterable[tuple[int, int]] = ()) -> None:
        """Write the ledger atomically; ``unconfirmed`` step ranges (rows the backend
        took but holds, not yet stored) are left out of ``rows``."""
        rows = subtract(merge(self.rows + self._session), unconfirmed)
        data = {"destination": self.destination, "info": self.info, "rows": rows,
                "config": self.config, "summary": self.summary, "artifacts": self.artifacts,
                "status": self.status}
        if self.others:
            data["others"] = {d: o for d, o in self.others.items() if d != self.destination}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
        os.replace(tmp, self.path)
