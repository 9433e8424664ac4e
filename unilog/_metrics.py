"""``run.define_metric``: W&B's metric definitions, and the summaries they ask for.

``define_metric("val/loss", summary="min")`` (a name, or a glob such as
``"val/*"``) asks for the run's summary to hold ``{"min": <lowest value>}``
under that key once the run finishes, as W&B's does. The aggregations are
computed at ``finish`` from the local record, so nothing is added to the
training thread's work, and every backend receives them as one summary
update before it closes. ``step_metric``, ``goal``, ``hidden`` and the other
keywords are recorded in ``run.json`` (``metrics``) and otherwise not acted
on: unilog's x-axis is its step, and each backend shows every series.
"""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from unilog.errors import ConfigError

#: W&B's summary aggregations unilog computes ("none" and "copy" are taken, and
#: leave the summary alone).
AGGREGATIONS = ("min", "max", "mean", "first", "last", "best")
IGNORED = ("none", "copy")
GOALS = (None, "minimize", "maximize")


def definition(name: Any, step_metric: Any = None, summary: Any = None, goal: Any = None,
               **flags: Any) -> dict[str, Any]:
    """One checked definition, as ``run.json`` keeps it."""
    if not isinstance(name, str) or not name:
        raise ConfigError(f"define_metric: name must be a non-empty str (a key or a glob "
                          f"such as 'val/*'), not {name!r}")
    parts = [p.strip() for p in summary.split(",")] if isinstance(summary, str) else []
    if summary is not None and not isinstance(summary, str):
        raise ConfigError(f"define_metric({name!r}): summary must be a str such as "
                          f"'min' or 'min,max', not {summary!r}")
    unknown = [p for p in parts if p not in AGGREGATIONS + IGNORED]
    if unknown:
        raise ConfigError(f"define_metric({name!r}): summary {unknown[0]!r} is not one of "
                          f"{', '.join(AGGREGATIONS + IGNORED)}")
    if goal not in GOALS:
        raise ConfigError(f"define_metric({name!r}): goal must be 'minimize' or 'maximize', "
                          f"not {goal!r}")
    if "best" in parts and goal is None:
        raise ConfigError(f"define_metric({name!r}): summary 'best' needs goal='minimize' "
                          "or goal='maximize'")
    return {"name": name, "step_metric": step_metric, "summary": parts, "goal": goal,
            **{k: v for k, v in flags.items() if v is not None}}


def summaries(definitions: list[dict[str, Any]], run_dir: Path) -> dict[str, dict[str, float]]:
    """``{key: {"min": ..., ...}}`` for every numeric series of the local record
    that definitions with a summary name (see :func:`_merged`)."""
    from unilog.read import read_run

    wanted = [d for d in definitions if set(d["summary"]) & set(AGGREGATIONS)]
    if not wanted:
        return {}
    data = read_run(run_dir)
    keys = dict.fromkeys(key for _, _, key, _ in data.history)
    out: dict[str, dict[str, float]] = {}
    for key in keys:
        how = _merged([d for d in definitions if fnmatchcase(key, d["name"])])
        if not set(how["summary"]) & set(AGGREGATIONS):
            continue
        values = [float(v) for _, v in data.series(key)
                  if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
        if values:
            out[key] = _aggregate(values, how)
    return out


def _merged(definitions: list[dict[str, Any]]) -> dict[str, Any]:
    """The definitions that name one key, in order, as one: their summaries add up
    (W&B's ``define_metric("loss", summary="min")`` then ``summary="max"``: both),
    unless a later one says ``overwrite=True``; the last goal given wins."""
    parts: list[str] = []
    goal = None
    for found in definitions:
        if found.get("overwrite"):
            parts, goal = [], None
        parts += [p for p in found["summary"] if p not in parts]
        goal = found["goal"] or goal
    return {"summary": parts, "goal": goal}


def _aggregate(values: list[float], how: dict[str, Any]) -> dict[str, float]:
    """The aggregations ``how["summary"]`` asks for, over ``values``."""
    result: dict[str, float] = {}
    for part in how["summary"]:
        if part == "min":
            result["min"] = min(values)
        elif part == "max":
            result["max"] = max(values)
        elif part == "mean":
            result["mean"] = sum(values) / len(values)
        elif part == "first":
            result["first"] = values[0]
        elif part == "last":
            result["last"] = values[-1]
        elif part == "best":
            result["best"] = min(values) if how["goal"] == "minimize" else max(values)
    return result
