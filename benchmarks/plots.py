"""PNG plots for the benchmark report (matplotlib, headless), one function per plot kind.

Every plot is optional: without matplotlib the benchmark still prints and
writes its table, and the report says the plot was skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # no display on these machines
    import matplotlib.pyplot as plt

    return plt


def line_plot(path: Path, title: str, xlabel: str, ylabel: str,
              series: dict[str, tuple[Sequence[float], Sequence[float]]],
              logx: bool = False, logy: bool = False) -> Path | None:
    """One line per ``label: (xs, ys)``; returns the PNG's path, or None without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for label, (xs, ys) in series.items():
        ax.plot(xs, ys, marker="o", label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, plt, path)


def bar_plot(path: Path, title: str, ylabel: str, labels: Sequence[str],
             medians: Sequence[float], lows: Sequence[float] | None = None,
             highs: Sequence[float] | None = None, logy: bool = False) -> Path | None:
    """Bars of medians with [min, max] whiskers; returns the PNG's path, or None."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    errors = None
    if lows is not None and highs is not None:
        errors = [[m - lo for m, lo in zip(medians, lows)],
                  [hi - m for m, hi in zip(medians, highs)]]
    ax.bar(range(len(labels)), medians, yerr=errors, capsize=4, color="#4c72b0")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set(title=title, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
