"""Looking at several runs at once: the runs that arguments name, a table of how they
differ (``unilog compare``) and a plot of their series (``unilog plot``).

Both read only the local record (``run.json``, ``config.json``, ``summary.json``,
``metrics.csv``), so they work the same whatever backends a run logged to.
matplotlib is imported by :func:`figure` only: the ``unilog`` command imports
this module's command wiring at every start.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unilog.cli import CliError, _common_numbers, _default_root, find_runs, resolve_run
from unilog._config import flatten_config

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from unilog.read import RunData

#: How wide a cell of the text table may be before it is cut (``--csv`` never cuts).
CELL_WIDTH = 40
#: How many of the runs' keys a "no such key" error lists.
KEYS_SHOWN = 8
#: ``--x`` choices of :func:`figure`: unilog's step, the wall clock, seconds since
#: each run's first value (runs started hours apart share one axis).
X_AXES = ("step", "time", "relative")


# -- which runs -------------------------------------------------------------------------


def select_runs(refs: Sequence[str]) -> list[Path]:
    """The run directories that ``refs`` name, each once, in the order given: a run's
    directory, id or ``project/id`` (as ``unilog show``), or a folder standing for
    every run in it (a project's, a runs root). No ``refs``: every run under
    ``$UNILOG_DIR`` (else ./runs), as ``unilog ls``. Raises ``CliError`` for a ref
    that names nothing, or a folder holding no run."""
    if not refs and not _default_root().is_dir():
        raise CliError(f"no runs under {_default_root()} (set $UNILOG_DIR, or name runs "
                       "or folders of runs)")
    found: dict[Path, Path] = {}
    for ref in refs or [str(_default_root())]:
        for run_dir in _runs_of(ref):
            found.setdefault(run_dir.resolve(), run_dir)
    return list(found.values())


def _runs_of(ref: str) -> list[Path]:
    path = Path(ref)
    if path.is_dir() and not (path / "run.json").is_file():
        runs = find_runs(path)
        if not runs:
            raise CliError(f"no runs in {ref} (no run.json in it, nor in its "
                           "sub-folders or theirs)")
        return runs
    return [resolve_run(ref)]


def read_runs(run_dirs: Iterable[Path]) -> list[RunData]:
    """Each run read back (:func:`unilog.read_run`)."""
    from unilog.read import read_run

    return [read_run(run_dir) for run_dir in run_dirs]


def label(data: RunData) -> str:
    """How a run is named in tables and legends: its name, with its id when the
    name is not the id."""
    run_id = str(data.manifest.get("id", data.path.name))
    name = data.manifest.get("name")
    return run_id if not name or str(name) == run_id else f"{name} ({run_id})"


# -- compare ----------------------------------------------------------------------------


def compare(runs: Sequence[RunData], metrics: Sequence[str] | None = None, *,
            all_config: bool = False) -> list[dict[str, Any]]:
    """One row per run: ``run`` (its id), ``name``, the config keys (flattened with
    ``/``) whose values differ between the runs, then the summary values of
    ``metrics`` (default: the numbers most runs have, as ``unilog ls``).

    Every row has every column, in the same order; a run without a key has None.
    ``all_config`` (or a single run, which differs from nothing) keeps every
    config key. A config key named like another column is prefixed ``config:``,
    a metric ``summary:``, so no column hides another.
    """
    configs = [_flat_config(run.config) for run in runs]
    summaries = [run.summary if isinstance(run.summary, dict) else {} for run in runs]
    keys = list(dict.fromkeys(key for config in configs for key in config))
    if not all_config and len(runs) > 1:
        keys = [key for key in keys if _differs(configs, key)]
    metrics = list(metrics) if metrics else _common_numbers(summaries)
    taken = {"run", "name"}
    config_columns = [(_column(key, taken, "config:"), key) for key in keys]
    metric_columns = [(_column(key, taken, "summary:"), key) for key in metrics]
    rows = []
    for run, config, summary in zip(runs, configs, summaries):
        row: dict[str, Any] = {"run": run.manifest.get("id", run.path.name),
                               "name": run.manifest.get("name")}
        row.update((column, config.get(key)) for column, key in config_columns)
        row.update((column, summary.get(key)) for column, key in metric_columns)
        rows.append(row)
    return rows


def _column(key: str, taken: set[str], prefix: str) -> str:
    """``key``, or ``prefix + key`` when another column has that name already."""
    column = key
    while column in taken:  # "config:x" may itself be a config key
        column = prefix + column
    taken.add(column)
    return column


def _flat_config(config: Any) -> dict[str, Any]:
    # config.json is written by unilog as an object; one edited by hand may hold
    # anything JSON, which still gets a column rather than a crash.
    if not isinstance(config, dict):
        return {"config": config}
    return flatten_config(config, sep="/")


_MISSING = object()


def _differs(configs: list[dict[str, Any]], key: str) -> bool:
    """Whether ``key`` has two values among the runs (a run without it counts as one:
    the key was added between them)."""
    return len({_identity(config.get(key, _MISSING)) for config in configs}) > 1


def _identity(value: Any) -> str:
    # JSON text tells 1, 1.0 and True apart (Python's == does not) and makes lists
    # and NaN comparable; config values come from JSON, so each has one.
    if value is _MISSING:
        return "\0missing"
    return json.dumps(value, sort_keys=True, default=repr)


def text_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` as aligned columns under a header; None is a blank cell."""
    if not rows:
        return ""
    columns = list(rows[0])
    cells = [[_one_line(c) for c in columns]]
    cells += [[_cell(row.get(c), CELL_WIDTH) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in cells)


def csv_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV with a header: numbers in full, None as an empty field,
    lists and mappings as JSON."""
    table = [list(rows[0])] if rows else []
    table += [[_cell(value, None) for value in row.values()] for row in rows]
    # Python < 3.12 leaves a lone \r unquoted when lines end in \n, and a reader
    # then splits the row there: such a table is quoted whole.
    lone_cr = any("\r" in cell for line in table for cell in line)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n",
               quoting=csv.QUOTE_ALL if lone_cr else csv.QUOTE_MINIMAL).writerows(table)
    return out.getvalue()


def _cell(value: Any, width: int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or isinstance(value, (list, dict)):
        text = json.dumps(value, ensure_ascii=False, default=repr)
    elif isinstance(value, float):
        text = repr(value) if width is None else f"{value:.6g}"
    else:
        text = str(value)
    if width is None:
        return text
    text = _one_line(text)
    return text if len(text) <= width else text[: width - 3] + "..."


# What str.splitlines splits at, other control characters, and the escape itself.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\\]")


def _one_line(text: str) -> str:
    """``text`` with control characters escaped as Python writes them (``\\n``,
    ``\\x1e``): one row of the text table stays one line, its columns aligned."""
    return _UNPRINTABLE.sub(lambda m: m[0].encode("unicode_escape").decode("ascii"), text)


# -- plot -------------------------------------------------------------------------------


@dataclass
class Plotted:
    """What :func:`figure` drew: the figure, and how many values it skipped."""

    figure: Figure
    #: Values of the plotted keys that are not numbers (text, media paths), per key.
    skipped: dict[str, int]


def figure(runs: Sequence[RunData], keys: Sequence[str], *, x: str = "step",
           logy: bool = False) -> Plotted:
    """One panel per key, one line per run that has the key (labelled by
    :func:`label`), against ``x`` (one of :data:`X_AXES`). A key no run has a
    number for raises ``CliError`` naming it and keys the runs do have."""
    if x not in X_AXES:
        raise CliError(f"--x {x!r}: choose one of {', '.join(X_AXES)}")
    series, skipped = _series(runs, keys)
    for key in keys:
        if not any(points for _, points in series[key]):
            raise CliError(_no_key(key, runs, skipped.get(key, 0)))
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A Figure of its own with the Agg canvas, not pyplot: no global backend or
    # figure registry is touched in a process that imports this as a library.
    fig = Figure(figsize=(7, 3.2 * len(keys)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(keys), 1, squeeze=False)[:, 0]
    for ax, key in zip(axes, keys):
        _panel(ax, key, series[key], x=x, logy=logy)
    return Plotted(fig, {k: n for k, n in skipped.items() if n})


def _series(runs: Sequence[RunData], keys: Sequence[str]):
    """Per key, per run: its label and ``[(step, time, value)]`` of its numbers; and per
    key how many values were not numbers."""
    from unilog.read import NUMBER

    wanted = set(keys)
    series: dict[str, list[tuple[str, list]]] = {key: [] for key in keys}
    skipped = dict.fromkeys(keys, 0)
    for run in runs:
        points: dict[str, dict[int, tuple]] = {key: {} for key in keys}
        for (step, stamp, key, value), kind in zip(run.history, run.kinds):
            if key not in wanted:
                continue
            if kind != NUMBER:
                skipped[key] += 1
                continue
            points[key][step] = (step, stamp, float(value))  # the last value wins
        for key in keys:
            series[key].append((label(run), sorted(points[key].values(), key=lambda p: p[0])))
    return series, skipped


def _no_key(key: str, runs: Sequence[RunData], skipped: int) -> str:
    if skipped:
        return f"key {key!r} holds no numbers in these runs (only text or media)"
    have = list(dict.fromkeys(k for run in runs for _, _, k, _ in run.history))
    near = difflib.get_close_matches(key, have, n=KEYS_SHOWN, cutoff=0.5)
    shown = list(dict.fromkeys(near + have))[:KEYS_SHOWN]
    more = f", ... ({len(have)} keys)" if len(have) > len(shown) else ""
    listed = f"; keys they have: {', '.join(shown)}{more}" if have else "; they logged nothing"
    return f"no run has key {key!r}{listed}"


def _panel(ax: Any, key: str, lines: list[tuple[str, list]], *, x: str, logy: bool) -> None:
    for index, (name, points) in enumerate(lines):
        if not points:
            continue
        # A run keeps its colour in every panel, also where another run lacks the key;
        # a one-point series is a marker (a line of one point draws nothing).
        ax.plot(_x_values(points, x), [value for _, _, value in points], label=name,
                color=f"C{index % 10}", marker="o" if len(points) == 1 else None)
    ax.set_title(key)
    ax.set_xlabel({"step": "step", "time": "wall time",
                   "relative": "seconds since the run's first value"}[x])
    if x == "step":
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def _x_values(points: list[tuple], x: str) -> list:
    if x == "step":
        return [step for step, _, _ in points]
    if x == "relative":
        first = min(stamp for _, stamp, _ in points)
        return [stamp - first for _, stamp, _ in points]
    from datetime import datetime

    return [datetime.fromtimestamp(stamp) for _, stamp, _ in points]


def plot(runs: Sequence[RunData], keys: Sequence[str], path: Path, *, x: str = "step",
         logy: bool = False) -> Plotted:
    """:func:`figure` saved as a PNG (or any format matplotlib knows by the suffix)
    at ``path``; its folder is created."""
    plotted = figure(runs, keys, x=x, logy=logy)
    path.parent.mkdir(parents=True, exist_ok=True)
    plotted.figure.savefig(path, dpi=100)
    return plotted

