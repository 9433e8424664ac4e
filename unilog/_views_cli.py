"""``unilog compare``, ``unilog plot`` and ``unilog open`` (docs/looking-at-runs.md).

Only argparse here: the work is in :mod:`unilog._views` and :mod:`unilog._viewer`,
imported when a command runs, since the ``unilog`` command imports this module at
every start.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

RUNS_HELP = ("runs: a run's directory, id or project/id, or a folder (a project's, a runs "
             "root) for every run in it (default: every run under $UNILOG_DIR, else ./runs)")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``compare``, ``plot`` and ``open`` to the ``unilog`` command line."""
    _add_compare(sub)
    _add_plot(sub)
    _add_open(sub)


def _add_compare(sub: argparse._SubParsersAction) -> None:
    compare = sub.add_parser(
        "compare", help="a table of runs: the config keys that differ, and final metrics",
        description="One row per run: the config keys whose values differ between the "
                    "runs (flattened with /), then summary values. Blank: the run lacks it.")
    compare.add_argument("runs", nargs="*", metavar="RUN_OR_DIR", help=RUNS_HELP)
    compare.add_argument("--metric", action="append", metavar="KEY",
                         help="a summary value to show as a column (repeatable; default: "
                              "the numbers most runs have, as unilog ls)")
    compare.add_argument("--all", action="store_true", dest="all_config",
                         help="every config key, also those all runs share")
    compare.add_argument("--csv", action="store_true", help="CSV instead of aligned text")
    compare.set_defaults(func=_compare)


def _add_plot(sub: argparse._SubParsersAction) -> None:
    plot = sub.add_parser(
        "plot", help="plot metrics of runs against step into a PNG",
        description="One panel per key, one line per run. Keys are named with -k, so "
                    "that every positional argument is a run or a folder of runs.")
    plot.add_argument("runs", nargs="*", metavar="RUN_OR_DIR", help=RUNS_HELP)
    plot.add_argument("-k", "--key", action="append", required=True, metavar="KEY",
                      help="a logged key to plot (repeatable: one panel each)")
    plot.add_argument("-o", "--output", default="plot.png", metavar="FILE",
                      help="where the image goes (default: plot.png; .svg, .pdf also work)")
    plot.add_argument("--logy", action="store_true", help="a logarithmic y axis")
    plot.add_argument("--x", default="step", choices=("step", "time", "relative"),
                      help="the x axis: unilog's step (default), wall time, or seconds "
                           "since each run's first value")
    plot.set_defaults(func=_plot)


def _add_open(sub: argparse._SubParsersAction) -> None:
    opened = sub.add_parser(
        "open", help="show a run in TensorBoard or MLflow's UI until Ctrl-C",
        description="Starts the tracker's own viewer on the run (syncing the run to that "
                    "backend first when it never logged there), prints its URL, and stops "
                    "it on Ctrl-C. A run on a remote MLflow server: prints its page.")
    opened.add_argument("run", metavar="RUN",
                        help="the run's directory, or its id (or project/id)")
    opened.add_argument("--with", dest="viewer", required=True, metavar="VIEWER",
                        help="tensorboard or mlflow")
    opened.add_argument("--port", type=int,
                        help="default: the viewer's own (6006, 5000), else the next free one")
    opened.add_argument("--host", default="127.0.0.1",
                        help="the interface to listen on (default: 127.0.0.1, this machine "
                             "only)")
    opened.add_argument("--print-command", action="store_true",
                        help="print the viewer's command line instead of running it")
    opened.set_defaults(func=_open)


def _compare(args: argparse.Namespace) -> int:
    from unilog import _views

    runs = _views.read_runs(_views.select_runs(args.runs))
    rows = _views.compare(runs, args.metric, all_config=args.all_config)
    if args.csv:
        sys.stdout.write(_views.csv_table(rows))
    else:
        print(_views.text_table(rows))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from unilog import _views

    runs = _views.read_runs(_views.select_runs(args.runs))
    keys = list(dict.fromkeys(args.key))
    plotted = _views.plot(runs, keys, Path(args.output), x=args.x, logy=args.logy)
    if plotted.skipped:
        skipped = ", ".join(f"{key} ({n})" for key, n in plotted.skipped.items())
        print(f"unilog plot: skipped values that are not numbers (text, media): {skipped}",
              file=sys.stderr)
    print(f"{args.output}: {', '.join(keys)} of {len(runs)} run{'s' * (len(runs) != 1)}")
    return 0


def _open(args: argparse.Namespace) -> int:
    from unilog._viewer import open_run
    from unilog.cli import resolve_run

    return open_run(resolve_run(args.run), args.viewer, host=args.host, port=args.port,
                    print_command=args.print_command)
