"""``unilog sync``: the command line of :func:`unilog.sync` (docs/sync.md).

    unilog sync RUN_OR_DIR... --to mlflow,wandb [--option mlflow.tracking_uri=URI]
                [--watch] [--jobs N] [--mode offline] [--isolation thread]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_commands(sub: Any) -> None:
    """Add ``sync`` to the ``unilog`` command's subparsers."""
    p = sub.add_parser("sync", help="replay runs' local records into backends",
                       description="Replay runs' local records into backends: only what "
                                   "each backend lacks, so running it again is safe.")
    p.add_argument("runs", nargs="+", metavar="RUN_OR_DIR",
                   help="a run's directory or id (or project/id), or a folder of runs")
    p.add_argument("--to", required=True, metavar="BACKENDS",
                   help="comma-separated backends to sync into (e.g. mlflow,wandb)")
    p.add_argument("--option", "-o", action="append", default=[], metavar="BACKEND.KEY=VALUE",
                   help="a backend option, as in init (repeatable; VALUE is read as JSON "
                        "when it parses, else as text)")
    p.add_argument("--watch", action="store_true",
                   help="follow runs still being written, until they end")
    p.add_argument("--jobs", "-j", type=int, default=4, help="runs synced at once (default 4)")
    p.add_argument("--mode", choices=("online", "offline"),
                   help="the backends' mode (default $UNILOG_MODE, else online)")
    p.add_argument("--isolation", choices=("process", "thread"),
                   help="where backends run (default: the logging process, as in init)")
    p.add_argument("--timeout", type=float, help="seconds each backend may take to flush "
                                                 "or close (default $UNILOG_FINISH_TIMEOUT, "
                                                 "else 60)")
    p.add_argument("--full", action="store_true",
                   help="send everything, whatever the backends' ledgers say they have "
                        "(after a backend's store was wiped)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_sync)


def parse_options(names: list[str], options: list[str]) -> dict[str, dict[str, Any]]:
    """``{backend: {key: value}}`` from ``backend.key=value`` options; a ``CliError``
    naming the option that is malformed or names a backend not synced to."""
    from unilog.cli import CliError

    out: dict[str, dict[str, Any]] = {name: {} for name in names}
    for option in options:
        target, sep, text = option.partition("=")
        backend, dot, key = target.partition(".")
        if not (sep and dot and backend and key):
            raise CliError(f"option {option!r} must read BACKEND.KEY=VALUE "
                           "(e.g. mlflow.tracking_uri=http://127.0.0.1:5000)")
        if backend not in out:
            raise CliError(f"option {option!r} is for backend {backend!r}, which is not in "
                           f"--to {','.join(names)}")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[backend][key] = value
    return out


def _sync(args: argparse.Namespace) -> int:
    from unilog._sync import sync

    names = [n.strip() for n in args.to.split(",") if n.strip()]
    if not names:
        from unilog.cli import CliError

        raise CliError("--to names no backend: give one or more, e.g. --to mlflow,tensorboard")
    report = sync(args.runs, parse_options(names, args.option), watch=args.watch,
                  mode=args.mode, isolation=args.isolation, jobs=args.jobs,
                  timeout=args.timeout, progress=False if args.no_progress else None,
                  full=args.full)
    print(report)
    if not report.ok:
        hint = "; run the same command again to resume" if report.resumable else ""
        print(f"unilog sync: not everything was delivered (see above){hint}", file=sys.stderr)
        return 1
    return 0
