"""``unilog sweep``, ``unilog sweep show`` and ``unilog agent``, as ``wandb sweep`` /
``wandb agent`` are used."""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import sys
from pathlib import Path

from unilog.errors import ConfigError


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the sweep commands to the ``unilog`` command line."""
    sweep = sub.add_parser(
        "sweep", help="create a sweep from a W&B sweep configuration (YAML), or show one",
        description="unilog sweep CONFIG.yaml creates a sweep and prints its id on the last "
                    "line; unilog sweep show SWEEP_ID prints its trials, best first, and "
                    "writes a plot.")
    sweep.add_argument("config", metavar="CONFIG|show",
                       help="the sweep configuration's YAML file, or 'show'")
    sweep.add_argument("sweep_id", nargs="?", metavar="SWEEP_ID",
                       help="with show: the sweep's id (or PROJECT/ID)")
    sweep.add_argument("-o", "--output", metavar="PNG",
                       help="with show: where the plot goes (default: the sweep's folder, "
                            "trials.png)")
    _where_options(sweep)
    sweep.set_defaults(func=_sweep)
    agent = sub.add_parser("agent", help="run a sweep's trials: its program, once per trial",
                           description="Runs the configuration's program (or command) once "
                                       "per trial until --count trials, the grid's end, "
                                       "run_cap or Ctrl-C.")
    agent.add_argument("sweep_id", metavar="SWEEP_ID", help="the sweep's id (or PROJECT/ID)")
    agent.add_argument("--count", type=int, help="run at most this many trials")
    _where_options(agent)
    agent.set_defaults(func=_agent)


def _where_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--project", help="the project (default: the configuration's, else "
                                          "$UNILOG_PROJECT, else 'default')")
    parser.add_argument("--dir", help="the runs root (default: $UNILOG_DIR, else ./runs)")
    parser.add_argument("--storage", help="a database URL for the sweep (default: "
                                          "$UNILOG_SWEEP_STORAGE, else a journal file in the "
                                          "sweep's folder)")


def _show_progress() -> None:
    """The agent's per-trial lines on stderr (a library leaves logging to its user;
    a command line is the user)."""
    logger = logging.getLogger("unilog")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("unilog: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def _sweep(args: argparse.Namespace) -> int:
    import unilog.sweeps as sweeps

    if args.config == "show":
        if not args.sweep_id:
            raise ConfigError("show needs the sweep's id: unilog sweep show SWEEP_ID")
        return _show(args)
    if args.sweep_id:
        raise ConfigError(f"unexpected argument {args.sweep_id!r} (to show a sweep: "
                          "unilog sweep show SWEEP_ID)")
    sweep_id = sweeps.sweep(Path(args.config), project=args.project, dir=args.dir,
                            storage=args.storage)
    project = sweeps._created[sweep_id][0]
    print(f"unilog: created sweep {sweep_id} in project {project}; run its trials with: "
          f"unilog agent {sweep_id} --project {shlex.quote(project)}", file=sys.stderr)
    print(sweep_id)
    return 0


def _show(args: argparse.Namespace) -> int:
    import unilog.sweeps as sweeps
    from unilog._settings import resolve_dir
    from unilog.sweeps import _engine as engine
    from unilog.sweeps._results import plot, table

    data = sweeps.read_sweep(args.sweep_id, project=args.project, dir=args.dir,
                             storage=args.storage)
    print(table(data))
    if any(t.value is not None for t in data.trials):
        out = Path(args.output) if args.output else (
            engine.sweep_dir(resolve_dir(args.dir), data.project, data.id) / "trials.png")
        print(f"plot: {plot(data, out)}")
    return 0


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM: unwind as Ctrl-C does; the running trial's program gets SIGTERM too."""
    raise SystemExit(143)


def _agent(args: argparse.Namespace) -> int:
    import unilog.sweeps as sweeps

    _show_progress()
    signal.signal(signal.SIGTERM, _terminated)
    try:
        ran = sweeps.agent(args.sweep_id, count=args.count, project=args.project,
                           dir=args.dir, storage=args.storage)
    except KeyboardInterrupt:
        print("unilog agent: stopped by Ctrl-C (the running trial is marked killed)",
              file=sys.stderr)
        return 130
    except SystemExit as exc:
        if exc.code != 143:
            raise
        print("unilog agent: stopped by SIGTERM (the running trial is marked killed)",
              file=sys.stderr)
        return 143
    print(f"unilog agent: ran {len(ran)} trial{'s' if len(ran) != 1 else ''}; see them with: "
          f"unilog sweep show {args.sweep_id}"
          + (f" --project {shlex.quote(args.project)}" if args.project else ""),
          file=sys.stderr)
    data = sweeps.read_sweep(args.sweep_id, project=args.project, dir=args.dir,
                             storage=args.storage)
    states = [t.state for t in data.trials if t.number in ran]
    from unilog.sweeps._agent import MAX_INITIAL_FAILURES

    if len(states) >= MAX_INITIAL_FAILURES and set(states) == {"failed"}:
        return 1  # stopped because every trial failed: scripts and CI must see it
    return 0
