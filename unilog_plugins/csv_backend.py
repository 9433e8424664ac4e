"""The CSV backend: the run's local record, kept for every run that is not disabled.

Files in the run directory:

- ``metrics.csv``: one line per value, ``step,time,key,value``, appended and
  flushed at least every half second, so a killed process leaves a valid file
  holding everything logged up to about a second before. One line per value
  keeps the cost of a ``log`` flat however many rows or distinct keys the run
  has (a wide file would have to be rewritten for each new key).
  ``unilog.read_run(path).metrics`` pivots it to one column per metric.
- A number's line has those four fields. A text's line has a fifth, ``text``,
  and a media file's line a fifth, ``media``: so text that reads as a number
  (``"007"``, ``"1e3"``) is read back as text, and a text is never taken for a
  media path. Lines of runs written before the mark have four fields; a
  reader takes their value for a number when it reads as one.
- ``media/<key>/step_<step>.<ext>``: images (PNG), histograms (JSON), tables
  (CSV); the metrics line holds the file's path relative to the run directory.
  A key too long for a path becomes ``media/<first part>/<hash of the key>/``.
  Text values are stored inline in the ``value`` column. In keys and text,
  ``\\``, newline and carriage return are written ``\\\\``, ``\\n`` and ``\\r``
  (``unilog.read_run`` reads them back), so every line is exactly one record:
  a crash can tear only the last line, and a reader can split on newlines.
- ``config.json``: the resolved, redacted config.
- ``summary.json``: the last value of every metric (a number, the text itself,
  or a media file's path), overridden by what the user set in ``run.summary``.
- ``summary_set.json``: only what the user set in ``run.summary`` (what every
  other backend was sent as the summary; ``unilog sync`` sends it the same way).
"""

from __future__ import annotations

import csv
import json
import os
import logging
from pathlib import Path
from typing import Any

import unilog
from unilog.backend import media_stem, program
from unilog.read import escape
from unilog.backend import MEDIA_KINDS, Backend, Capabilities, Row, RunInfo

METRICS_HEADER = ("step", "time", "key", "value")
#: The fifth field of a line whose value is text, or the path of a media file.
#: A number's line has four fields, as every line had before text was marked.
KIND_TEXT = "text"
KIND_MEDIA = "media"
#: The summary values set through ``run.summary`` alone.
SUMMARY_SET = "summary_set.json"
logger = logging.getLogger("unilog")


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON through a temporary file so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


class CSVBackend(Backend):
    """The local record: metrics as CSV, media as files, config and summary as JSON."""

    name = "csv"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=True, artifacts=True)
    flush_interval = 0.5

    def open(self, run: RunInfo) -> dict[str, Any]:
        """Open (or, on resume, append to) ``metrics.csv``."""
        self.dir = Path(run.dir)
        path = self.dir / "metrics.csv"
        fresh = not path.exists() or path.stat().st_size == 0
        if not fresh:
            _cut_torn_line(path)
        # backslashreplace: a key or text that is not valid Unicode (a lone surrogate,
        # e.g. from a file name) is written escaped instead of failing the whole batch.
        self._file = open(path, "a", newline="", encoding="utf-8",  # noqa: SIM115 (kept open)
                          errors="backslashreplace")
        self._write = csv.writer(self._file).writerow
        if fresh:
            self._write(METRICS_HEADER)
        self._last: dict[str, Any] = {}
        self._summary: dict[str, Any] = {}
        self._escaped_keys: dict[str, str] = {}
        summary_path = self.dir / "summary.json"
        if run.resumed and summary_path.exists():
            self._last = json.loads(summary_path.read_text(encoding="utf-8"))
            set_path = self.dir / SUMMARY_SET
            if set_path.exists():
                self._summary = json.loads(set_path.read_text(encoding="utf-8"))
        return {"id": run.id, "location": str(path), "view": _show_command(run.dir)}

    def log_rows(self, rows: list[Row]) -> None:
        """Append one line per value."""
        write = self._write
        last = self._last
        keys = self._escaped_keys
        for row in rows:
            step, when = row.step, round(row.time, 3)
            for key, value in row.values.items():
                cell_key = keys.get(key)
                if cell_key is None:
                    cell_key = keys[key] = escape(key)
                kind = type(value)
                if kind is float or kind is int:
                    last[key] = value
                    write((step, when, cell_key, value))
                else:
                    last[key], cell, mark = self._media_cell(key, step, value)
                    write((step, when, cell_key, cell, mark))

    def _media_cell(self, key: str, step: int, media: Any) -> tuple[str, str, str]:
        """``(summary value, cell, kind mark)`` for a non-number value; a value
        that cannot be saved costs only its own cell."""
        if isinstance(media, unilog.Text):
            # The summary holds the text itself; only the CSV cell is escaped.
            return media.text, escape(media.text), KIND_TEXT

        def saved(m: Any) -> tuple[str, str, str]:
            path = self._save_media(key, step, m)
            return path, path, KIND_MEDIA

        def unsaved(exc: BaseException) -> tuple[str, str, str]:
            # No file: the line says why, as text, so no reader looks for the file.
            note = f"<unsaved {media.kind}: {type(exc).__name__}>"
            return note, note, KIND_TEXT

        return self.convert_media(saved, key, step, media, fallback=unsaved)

    def _save_media(self, key: str, step: int, media: Any) -> str:
        stem = media_stem(key, step)
        target = self.dir / stem
        n = 0
        while target.with_suffix(media.suffix).exists():  # the same key twice at one step
            n += 1
            target = self.dir / stem.with_name(f"{stem.name}_{n}")
        saved = media.save(target)
        return saved.relative_to(self.dir).as_posix()

    def log_config(self, config: dict[str, Any]) -> None:
        """Write ``config.json``."""
        write_json_atomic(self.dir / "config.json", config)

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Merge into ``summary.json``."""
        self._summary.update(summary)
        write_json_atomic(self.dir / SUMMARY_SET, self._summary)
        self._write_summary()

    def _write_summary(self) -> None:
        write_json_atomic(self.dir / "summary.json", {**self._last, **self._summary})

    def flush(self) -> None:
        """Hand buffered lines to the operating system (enough to survive SIGKILL)."""
        if not self._file.closed:  # a timed flush may still come after close
            self._file.flush()

    def close(self, status: str, exit_code: int) -> None:
        """Flush, close the file and write the final summary.

        Each step is tried even if one before it failed (a full disk may refuse
        the metrics but take the small summary); the first error is raised after.
        """
        errors = []
        for step in (self._file.flush, lambda: os.fsync(self._file.fileno()),
                     self._file.close, self._write_summary):
            try:
                step()
            except OSError as exc:
                errors.append(exc)
        if not self._file.closed:  # close() itself failed: drop the unwritable buffer
            try:
                self._file.close()
            except OSError:
                pass
        if errors:
            raise errors[0]


def _show_command(run_dir: Path) -> str:
    """The command that summarises this run."""
    import shlex

    return f"{program('unilog')} show {shlex.quote(str(run_dir))}"


def _cut_torn_line(path: Path) -> None:
    """A process killed mid-write can leave a last line with no newline: cut it
    off, so it is neither kept with a truncated value nor glued to the next line."""
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(0, size - 65536))
        tail = f.read()
        if tail.endswith(b"\n"):
            return
        cut = tail.rfind(b"\n")
        f.truncate(size - len(tail) + cut + 1 if cut >= 0 else size)


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the CSV backend."""
    register(CSVBackend)
