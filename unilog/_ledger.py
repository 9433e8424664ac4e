"""Each backend's delivery ledger: what of the local record it has for certain.

``<run dir>/sync/<backend>.json``, kept by the backend's adapter (in whichever
process the backend runs) for live runs and for ``unilog sync`` alike, so a
sync sends a backend exactly what it lacks, never a row twice:

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

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Iterable

FOLDER = "sync"


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
    """True when ``step`` lies in one of the sorted ``ranges``."""
    import bisect

    i = bisect.bisect_right(ranges, [step, float("inf")]) - 1
    return i >= 0 and ranges[i][0] <= step <= ranges[i][1]


class Ledger:
    """One backend's ledger of one run (see the module docstring)."""

    def __init__(self, path: Path, data: dict[str, Any] | None = None):
        data = data or {}
        self.path = path
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
    def load(cls, run_dir: Path, backend: str) -> Ledger:
        """The ledger as last written (empty when there is none or it is unreadable)."""
        path = path_of(run_dir, backend)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = None
        return cls(path, data if isinstance(data, dict) else None)

    @property
    def exists(self) -> bool:
        """True when the backend has ever been opened for this run."""
        return self.path.exists()

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
        data = {"info": self.info, "rows": rows, "config": self.config, "summary": self.summary,
                "artifacts": self.artifacts, "status": self.status}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data, default=str), encoding="utf-8")
        os.replace(tmp, self.path)
