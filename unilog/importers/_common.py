"""What the importers share: rows gathered per step, nested config, a progress line.

Sources hand values over one key at a time (TensorBoard per tag, MLflow per
metric history), while a unilog row is one step with all its keys: :class:`Rows`
gathers them and writes each step once, in increasing order, at the earliest
time the source recorded for that step.
"""

from __future__ import annotations

import sys
import tempfile
from typing import Any

#: The kinds of loss :class:`Rows` reports (``ImportTarget.unrepresented``).
REPEATED = "values given twice at one step (the later one is kept)"
NEGATIVE_STEP = "values at negative steps"


class Rows:
    """Values gathered per step: ``{step: [earliest time, {key: value}]}``."""

    def __init__(self) -> None:
        self._steps: dict[int, list[Any]] = {}
        self._order: dict[tuple[int, str], float] = {}  # (step, key) -> time of the value kept
        self.lost: dict[str, dict[str, int]] = {}  # kind -> {key: count}

    def add(self, step: int, when: float, key: str, value: Any) -> None:
        """One value of ``key`` at ``step``, recorded at ``when`` (seconds)."""
        if step < 0:  # a unilog step is an int >= 0
            self._lose(NEGATIVE_STEP, key)
            return
        entry = self._steps.setdefault(step, [when, {}])
        entry[0] = min(entry[0], when)
        values = entry[1]
        if key in values:
            if _same(values[key], value):
                return
            self._lose(REPEATED, key)
            if when < self._order[(step, key)]:  # the later write wins, as in the source
                return
        values[key] = value
        self._order[(step, key)] = when

    def _lose(self, kind: str, key: str) -> None:
        counts = self.lost.setdefault(kind, {})
        counts[key] = counts.get(key, 0) + 1

    def __len__(self) -> int:
        return len(self._steps)

    @property
    def first_time(self) -> float | None:
        """The earliest time of any value gathered (None when there is none)."""
        return min((entry[0] for entry in self._steps.values()), default=None)

    def write(self, target: Any, progress: Any = None) -> None:
        """Each step once, ascending, through ``target.row``; losses to ``target.unrepresented``."""
        for step in sorted(self._steps):
            when, values = self._steps[step]
            target.row(step, values, when)
            if progress is not None:
                progress.update(1)
        for kind, counts in self.lost.items():
            for key, count in counts.items():
                target.unrepresented(kind, key, count)


def _same(a: Any, b: Any) -> bool:
    # Numbers only: two media values are never taken for one another.
    return type(a) in (int, float) and type(b) in (int, float) and a == b


def scratch_dir() -> tempfile.TemporaryDirectory:
    """A temporary folder for an import's scratch files (downloads, encoded images)."""
    return tempfile.TemporaryDirectory(prefix="unilog-import-")


def unflatten(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"a/b": 1}`` -> ``{"a": {"b": 1}}``, the inverse of how unilog flattens a
    config for MLflow params and TensorBoard hparams. A key that would clash
    (``"a"`` and ``"a/b"`` both given, or an empty segment) stays flat."""
    nested: dict[str, Any] = {}
    for key in sorted(flat, key=lambda k: k.count("/")):  # leaves of "a" before "a/b"
        parts = key.split("/")
        if "" in parts or not _place(nested, parts, flat[key]):
            nested[key] = flat[key]
    return nested


def _place(nested: dict[str, Any], parts: list[str], value: Any) -> bool:
    node = nested
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return False
        node = child
    if parts[-1] in node:
        return False
    node[parts[-1]] = value
    return True


#: Fewer steps than this import in about a second: no progress shown.
LONG_IMPORT = 2000


class Progress:
    """Progress on stderr for a long import: tqdm's bar on a terminal when tqdm is
    installed, else a plain line every 10% (a bar's carriage returns make a log
    file unreadable).

    Disabled (``enabled=False``, or a short import) it does nothing, so importers
    call it either way.
    """

    def __init__(self, total: int, desc: str, enabled: bool):
        self.total, self.desc, self.done = total, desc, 0
        self._bar = None
        self._shown = -1
        if not enabled or total < LONG_IMPORT:
            self.update = self._nothing  # type: ignore[method-assign]
            return
        if not (sys.stderr is not None and sys.stderr.isatty()):
            return
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is optional: plain lines instead
            return
        self._bar = tqdm(total=total, desc=desc, unit="step", file=sys.stderr, leave=False)

    def update(self, n: int = 1) -> None:
        """``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        tenth = self.done * 10 // max(self.total, 1)
        if tenth != self._shown:
            self._shown = tenth
            print(f"unilog import: {self.desc}: {self.done}/{self.total}", file=sys.stderr)

    def close(self) -> None:
        """Remove the bar."""
        if self._bar is not None:
            self._bar.close()

    def _nothing(self, n: int = 1) -> None:
        pass

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
