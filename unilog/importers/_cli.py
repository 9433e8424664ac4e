"""``unilog import tensorboard|wandb|mlflow [LOCATION]``: another tracker's runs as unilog runs.

Prints one line per new run: its directory, then rows, keys and what could not
be represented. Imports nothing heavy at module level: the ``unilog`` command
imports this module at every start.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

SOURCES = ("tensorboard", "wandb", "mlflow")  # the keys of unilog.importers.SOURCES


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add ``unilog import`` to the ``unilog`` command line."""
    parser = sub.add_parser(
        "import", help="import TensorBoard, wandb or MLflow runs as unilog runs",
        description="Reads another tracker's runs with that tracker's own reader and writes "
                    "each as a new unilog run directory (then unilog show / sync work on it). "
                    "LOCATION: a TensorBoard log folder, a wandb offline run folder, or an "
                    "MLflow tracking URI with --run-id or --experiment. What a unilog run "
                    "cannot hold is listed, never dropped silently. See docs/import.md.")
    parser.add_argument("source", choices=SOURCES, metavar="SOURCE",
                        help="tensorboard, wandb or mlflow")
    parser.add_argument("location", nargs="?", metavar="LOCATION",
                        help="the log folder, run folder or tracking URI")
    parser.add_argument("--project", help="the project of the new runs (default: "
                                          "$UNILOG_PROJECT, else 'default')")
    parser.add_argument("--dir", help="the runs root (default: $UNILOG_DIR, else ./runs)")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="mlflow: the tracking URI (instead of LOCATION)")
    parser.add_argument("--run-id", metavar="ID", help="mlflow: the one run to import")
    parser.add_argument("--experiment", metavar="NAME",
                        help="mlflow: import every run of this experiment")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress lines on stderr")
    parser.set_defaults(func=_import)


def _import(args: argparse.Namespace) -> int:
    from unilog.importers import import_runs

    paths = import_runs(args.location, args.source, dir=args.dir, project=args.project,
                        run_id=args.run_id, tracking_uri=args.tracking_uri,
                        experiment=args.experiment, progress=not args.quiet)
    for path in paths:
        print(f"{path}  {describe(path)}")
    return 0


def describe(path: str | Path) -> str:
    """One line about an imported run: rows, keys, status, what was not represented."""
    from unilog.read import read_run

    run = read_run(path)
    steps = {step for step, _, _, _ in run.history}
    keys = {key for _, _, key, _ in run.history}
    lost = (run.manifest.get("imported") or {}).get("unrepresented") or {}
    line = f"{len(steps)} rows, {len(keys)} keys, {len(run.artifacts)} artifacts, {run.status}"
    if lost:
        line += "; not represented: " + ", ".join(_lost(what, entry)
                                                  for what, entry in lost.items())
    return line


def _lost(what: str, entry: dict[str, Any]) -> str:
    examples = entry.get("examples") or []
    shown = f" ({', '.join(examples[:2])}{', ...' if entry['count'] > 2 else ''})" \
        if examples else ""
    return f"{entry['count']} {what}{shown}"
