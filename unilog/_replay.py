"""The local record read back as what its run logged: rows, config, summary, artifacts.

``unilog sync`` feeds backends from here, through the same workers as a live
run. A row is the consecutive lines of ``metrics.csv`` with one step and one
time (the local record writes a row's values together, with the row's time to
the millisecond). Values come back as they were logged: numbers as numbers,
text as :class:`unilog.Text`, media from their files (PNG/JPEG images,
histograms from their JSON, tables from their CSV).

:class:`RecordReader` also follows a file that is still being written (``--watch``):
it reads whole lines only, and holds the last row back until a line of another
row (or the end of the run) says it is complete.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator

from unilog.backend import Row
from unilog.read import MEDIA, _kind, _number, unescape

#: Read at most this much of ``metrics.csv`` at a time (bounded memory for big runs).
CHUNK_BYTES = 8 * 1024 * 1024


def media_from_file(run_dir: Path, relative: str) -> Any:
    """The media value saved at ``relative`` (under ``run_dir``) by the local record."""
    from unilog.media import Histogram, Image, Table, Text

    path = run_dir / relative
    suffix = path.suffix.lower()
    if suffix in (".png", ".jpg", ".jpeg"):
        return Image(path)
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return Histogram(np_histogram=(data["counts"], data["edges"]))
    if suffix == ".csv":
        with open(path, encoding="utf-8", newline="") as f:
            lines = list(csv.reader(f))
        return Table(columns=lines[0] if lines else [], data=lines[1:])
    if suffix == ".txt":
        return Text(path.read_text(encoding="utf-8"))
    raise ValueError(f"no media type is saved as {suffix!r} files ({relative})")


def _value(run_dir: Path, mark: str, text: str) -> Any:
    if not mark:  # a number (in files written before marks, maybe text)
        # int() and float() first: what the local record writes (str of an int, repr
        # of a float) they read exactly, at a fraction of the pattern's cost. float()
        # also takes "1_0" and spaces, which the record never writes: the pattern then.
        if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
            return int(text)
        if "_" not in text and text == text.strip():
            try:
                return float(text)
            except ValueError:
                pass
    from unilog.media import Text

    kind = _kind(mark, text)
    if kind == MEDIA:
        return media_from_file(run_dir, text)
    if kind == "text":
        return Text(text)
    return _number(text)


class RecordReader:
    """Rows of a run's ``metrics.csv`` in order, each with whether its step went
    backwards (such rows reach only backends that take them, as when logged)."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.csv"
        self._offset = 0  # bytes of whole lines read so far
        # The last row's lines, (step, time, key, value, mark) as written: step and time
        # stay text until the row is whole (a row's lines share both).
        self._held: list[tuple[str, str, str, str, str]] = []
        self._high = -1  # the highest step of a row read so far
        self._keys: dict[str, str] = {}  # each key's unescaped text (keys repeat)
        self._wanted: Callable[[int], bool] | None = None
        self.failed_media: list[tuple[str, int, str]] = []  # (key, step, why)

    def rows(self, final: bool = True, wanted: Callable[[int], bool] | None = None
             ) -> Iterator[tuple[Row | None, int, bool]]:
        """``(row, step, went_backwards)`` for every row not read yet. ``final``: the
        file is complete, so its last row is too (else it is held for the next call).
        ``wanted(step)`` False: the row's values are not read (``row`` is None), as
        for rows every backend has; rows that went backwards are always read."""
        self._wanted = wanted
        while True:
            lines = self._read_lines()
            if not lines:
                break
            yield from self._rows_of(lines)
        if final and self._held:
            held, self._held = self._held, []
            yield self._row(held)

    def _read_lines(self) -> list[tuple[str, str, str, str, str]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                data = f.read(CHUNK_BYTES)
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1  # a line without its newline is still being written
        if end == 0:
            return []
        self._offset += end
        text = data[:end].decode("utf-8", errors="replace")
        out = []
        keys = self._keys
        for record in csv.reader(io.StringIO(text, newline="")):
            n = len(record)
            if (n != 4 and n != 5) or record[0] == "step":
                continue
            key = keys.get(record[2])
            if key is None:
                key = keys[record[2]] = unescape(record[2])
            out.append((record[0], record[1], key, record[3], record[4] if n == 5 else ""))
        return out

    def _rows_of(self, lines: list[tuple[str, str, str, str, str]]
                 ) -> Iterator[tuple[Row | None, int, bool]]:
        held = self._held
        for line in lines:
            if held and (line[0] != held[0][0] or line[1] != held[0][1]):
                yield self._row(held)
                held = []
            held.append(line)
        self._held = held

    def _row(self, lines: list[tuple[str, str, str, str, str]]
             ) -> tuple[Row | None, int, bool]:
        try:
            step, when = int(lines[0][0]), float(lines[0][1])
        except ValueError:  # not a line the local record wrote: skipped, as read_run does
            return Row(-1, MappingProxyType({}), 0.0), -1, True
        backwards = step <= self._high
        self._high = max(self._high, step)
        if not backwards and self._wanted is not None and not self._wanted(step):
            return None, step, False
        values: dict[str, Any] = {}
        run_dir = self.run_dir
        for _, _, key, text, mark in lines:
            try:
                values[key] = _value(run_dir, mark, unescape(text))
            except Exception as exc:  # a media file gone or unreadable: said, not fatal
                self.failed_media.append((key, step, f"{type(exc).__name__}: {exc}"))
        return Row(step, MappingProxyType(values), when), step, backwards


def steps_of(path: Path) -> set[int]:
    """The steps of every whole line of ``metrics.csv``, read fast (the first field of
    each line: a record is always one line, and a step is never quoted)."""
    steps: set[int] = set()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return steps
    with f:
        rest = b""
        while True:
            data = f.read(CHUNK_BYTES)
            if not data:
                break
            data = rest + data
            end = data.rfind(b"\n") + 1
            rest = data[end:]
            steps.update(int(field) for field in
                         (line.split(b",", 1)[0] for line in data[:end].split(b"\n"))
                         if field.isdigit())
    return steps


def read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
