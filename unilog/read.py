"""``unilog.read_run(path)``: read a run directory back.

Works on a finished run, a running one and one whose process was killed: a
last line cut off mid-write is ignored. ``metrics`` needs pandas; everything
else is the standard library.

Values keep their kind: a number logged comes back as a number, a text as the
same text, even when it reads as a number (``"007"``), because the local
record marks the lines of text and media (a fifth field). Lines written before
that mark have four fields; their value is taken for a number when it reads as
one, as it always was.
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
    #: Every line of ``metrics.csv`` as ``(step, time, key, value)``, the value
    #: as written (unescaped text; a number's decimal text).
    history: list[tuple[int, float, str, str]] = field(repr=False)
    #: The mark of each line of ``history`` as written: ``"text"``, ``"media"``,
    #: or ``""`` for a line without one (a number; in an old file, anything).
    marks: list[str] = field(default_factory=list, repr=False)

    @property
    def status(self) -> str:
        """finished, failed, killed, or running (also for a process killed with SIGKILL)."""
        return self.manifest.get("status", "running")

    @property
    def metrics(self):
        """A pandas DataFrame: one row per step (the index), one column per key.

        A key that only ever held numbers is a numeric column (int64 when every
        value is an integer and no step is missing, else float64). Any other
        key is an object column holding each value as logged: text as str
        (also text that reads as a number), numbers as int or float, media as
        file paths relative to the run directory. A key logged twice at one
        step keeps its last value.
        """
        import pandas as pd

        frame = pd.DataFrame(self.history, columns=["step", "time", "key", "value"])
        if frame.empty:
            return pd.DataFrame(index=pd.Index([], name="step"))
        frame["mark"] = self._line_marks()
        frame = frame.drop_duplicates(["step", "key"], keep="last")
        order = list(dict.fromkeys(frame["key"]))
        steps = pd.Index(sorted(frame["step"].unique()), name="step")
        # Decided per key on the long table, not column by column (a run may
        # have tens of thousands of keys).
        key, text = frame["key"], frame["value"]
        # Vectorised: an unmarked line is a number if it reads as one (always, but
        # in files written before marks).
        number = frame["mark"].eq("") & text.str.fullmatch(_NUMBER_RE.pattern)
        numeric = number.groupby(key).transform("all")
        # Integers stay int64 (exact) in columns without gaps, as pandas would.
        exact = ((number & text.str.fullmatch(r"-?\d{1,18}")).groupby(key).transform("all")
                 & key.map(key.value_counts()).eq(len(steps)))
        parts = []
        for mask, parse in ((numeric & exact, pd.to_numeric),
                            (numeric & ~exact, lambda v: pd.to_numeric(v, errors="coerce")),
                            (~numeric, None)):
            if not mask.any():
                continue
            part = frame[mask]
            if parse is None:  # each value by its own kind, kept as a Python object
                values = [_number(v) if n else v
                          for v, n in zip(part["value"], number[mask])]
                part = part.assign(value=pd.Series(values, index=part.index, dtype=object))
            else:
                part = part.assign(value=parse(part["value"]))
            parts.append(part.pivot(index="step", columns="key", values="value").reindex(steps))
        wide = pd.concat(parts, axis=1)
        wide.columns.name = None
        return wide[order]

    @property
    def kinds(self) -> list[str]:
        """The kind of each line of ``history``: ``"number"``, ``"text"`` or
        ``"media"`` (the value is a file path relative to the run directory)."""
        return [_kind(mark, value) for mark, (_, _, _, value)
                in zip(self._line_marks(), self.history)]

    def series(self, key: str) -> list[tuple[int, Any]]:
        """``[(step, value), ...]`` of one key, without pandas: numbers as int or
        float, text as str."""
        return [(step, _number(value) if _kind(mark, value) == NUMBER else value)
                for (step, _, k, value), mark in zip(self.history, self._line_marks())
                if k == key]

    def _line_marks(self) -> list[str]:
        # A RunData made by hand may come without marks: read as an old file.
        if len(self.marks) == len(self.history):
            return self.marks
        return [""] * len(self.history)


NUMBER, TEXT, MEDIA = "number", "text", "media"
# What Python's str() of an int and repr() of a float write; nothing else is
# taken for a number in a line without a kind mark.
_NUMBER_RE = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"
                        r"|[-+]?(?:inf|nan)")
_INT_RE = re.compile(r"[-+]?[0-9]+")


def _kind(mark: str, value: str) -> str:
    if not mark:
        return NUMBER if _NUMBER_RE.fullmatch(value) else TEXT
    return MEDIA if mark == MEDIA else TEXT  # an unknown mark is still not a number


def _number(value: str) -> int | float:
    return int(value) if _INT_RE.fullmatch(value) else float(value)


def read_run(path: str | os.PathLike) -> RunData:
    """Read the run directory at ``path`` (``<dir>/<project>/<id>``)."""
    root = Path(path)
    manifest = _read_json(root / "run.json")
    if manifest is None:
        raise FileNotFoundError(f"{root} is not a unilog run directory (no run.json)")
    history, marks = read_lines(root / "metrics.csv")
    return RunData(
        path=root,
        manifest=manifest,
        config=_read_json(root / "config.json") or {},
        summary=_read_json(root / "summary.json") or {},
        artifacts=ArtifactStore(root, manifest.get("id", root.name)).list(),
        history=history,
        marks=marks,
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
    return read_lines(path)[0]


def read_lines(path: Path) -> tuple[list[tuple[int, float, str, str]], list[str]]:
    """:func:`read_history` and the mark of each line: ``"text"``, ``"media"``, or
    ``""`` for a line of four fields (a number; in a file written before marks,
    a number only if it reads as one: see :attr:`RunData.kinds`)."""
    if not path.exists():
        return [], []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        text = f.read()
    text = text[: text.rfind("\n") + 1]  # a line with no newline was torn by a crash
    rows, marks = [], []
    # A long text is one field: lift csv's 128 KiB field limit while reading.
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text)))
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    finally:
        csv.field_size_limit(limit)
    for record in records:
        n = len(record)
        if (n != 4 and n != 5) or record[0] == "step":
            continue
        try:
            row = (int(record[0]), float(record[1]), unescape(record[2]), unescape(record[3]))
        except ValueError:
            continue
        rows.append(row)
        marks.append(record[4] if n == 5 else "")
    return rows, marks


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
