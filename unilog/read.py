"""``unilog.read_run(path)``: read a run directory back.

Works on a finished run, a running one and one whose process was killed: a
last line cut off mid-write is ignored. ``metrics`` needs pandas; everything
else is the standard library.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unilog.artifacts import Artifact, ArtifactStore


@dataclass
class RunData:
    """A run read back from its directory."""

    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    summary: dict[str, Any]
    artifacts: list[Artifact]
    history: list[tuple[int, float, str, str]] = field(repr=False)

    @property
    def status(self) -> str:
        """finished, failed, killed, or running (also for a process killed with SIGKILL)."""
        return self.manifest.get("status", "running")

    @property
    def metrics(self):
        """A pandas DataFrame: one row per step (the index), one column per key.

        Numeric columns are numbers; media columns hold file paths relative to
        the run directory; text columns hold the text. A key logged twice at
        one step keeps its last value.
        """
        import pandas as pd

        frame = pd.DataFrame(self.history, columns=["step", "time", "key", "value"])
        if frame.empty:
            return pd.DataFrame(index=pd.Index([], name="step"))
        frame = frame.drop_duplicates(["step", "key"], keep="last")
        order = list(dict.fromkeys(frame["key"]))
        steps = pd.Index(sorted(frame["step"].unique()), name="step")
        # Decided per key on the long table, not column by column (a run may
        # have tens of thousands of keys). NaN is written "nan": a number too.
        key, text = frame["key"], frame["value"]
        numbers = pd.to_numeric(text, errors="coerce")
        numeric = (numbers.notna() | text.eq("nan")).groupby(key).transform("all")
        # Integers stay int64 (exact) in columns without gaps, as pandas would.
        exact = (text.str.fullmatch(r"-?\d{1,18}").groupby(key).transform("all")
                 & key.map(key.value_counts()).eq(len(steps)))
        parts = []
        for mask, parse in ((numeric & exact, pd.to_numeric),
                            (numeric & ~exact, lambda v: pd.to_numeric(v, errors="coerce")),
                            (~numeric, lambda v: v)):
            if mask.any():
                part = frame[mask].assign(value=lambda f, parse=parse: parse(f["value"]))
                parts.append(part.pivot(index="step", columns="key", values="value")
                             .reindex(steps))
        wide = pd.concat(parts, axis=1)
        wide.columns.name = None
        return wide[order]

    def series(self, key: str) -> list[tuple[int, Any]]:
        """``[(step, value), ...]`` of one key, numbers parsed, without pandas."""
        return [(step, _parse(value)) for step, _, k, value in self.history if k == key]


def _parse(value: str) -> Any:
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def read_run(path: str | os.PathLike) -> RunData:
    """Read the run directory at ``path`` (``<dir>/<project>/<id>``)."""
    root = Path(path)
    manifest = _read_json(root / "run.json")
    if manifest is None:
        raise FileNotFoundError(f"{root} is not a unilog run directory (no run.json)")
    return RunData(
        path=root,
        manifest=manifest,
        config=_read_json(root / "config.json") or {},
        summary=_read_json(root / "summary.json") or {},
        artifacts=ArtifactStore(root, manifest.get("id", root.name)).list(),
        history=read_history(root / "metrics.csv"),
    )


_ESCAPES = {"\\": "\\\\", "\n": "\\n", "\r": "\\r"}
_UNESCAPE = re.compile(r"\\(\\|n|r)")
_UNESCAPES = {"\\": "\\", "n": "\n", "r": "\r"}


def escape(text: str) -> str:
    """Write backslash, newline and carriage return as two characters each, so a
    value never spans lines in ``metrics.csv``."""
    if "\\" in text or "\n" in text or "\r" in text:
        return "".join(_ESCAPES.get(ch, ch) for ch in text)
    return text


def unescape(text: str) -> str:
    """The inverse of :func:`escape`."""
    if "\\" not in text:
        return text
    return _UNESCAPE.sub(lambda m: _UNESCAPES[m.group(1)], text)


def read_history(path: Path) -> list[tuple[int, float, str, str]]:
    """The lines of ``metrics.csv`` as ``(step, time, key, value)``; a torn last line is dropped."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    text = text[: text.rfind("\n") + 1]  # a line with no newline was torn by a crash
    rows = []
    # A long text is one field: lift csv's 128 KiB field limit while reading.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text)))
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(limit)
    for record in records:
        if len(record) != 4 or record[0] == "step":
            continue
        try:
            rows.append((int(record[0]), float(record[1]), unescape(record[2]),
                         unescape(record[3])))
        except ValueError:
            continue
    return rows


def last_step(run_dir: Path) -> int | None:
    """The highest step in a run's ``metrics.csv`` (reads only its tail), or None.

    Every record is one line (see :func:`escape`), so the tail can be split on
    newlines; only the first field of each whole line is read.
    """
    path = run_dir / "metrics.csv"
    if not path.exists():
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        f.seek(max(0, f.tell() - 65536))
        tail = f.read()
    lines = tail[: tail.rfind(b"\n") + 1].split(b"\n")[1:]  # first: maybe partial
    steps = [int(field) for field in (line.split(b",", 1)[0] for line in lines)
             if field.isdigit()]
    if not steps and len(tail) == 65536:  # the last records are longer than the window
        steps = [step for step, *_ in read_history(path)]
    return max(steps) if steps else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
