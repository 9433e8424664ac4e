"""The ``unilog`` command: list backends and runs, show a run.

    unilog backends            every registered backend and whether its SDK is installed
    unilog ls [DIR]            the runs under DIR: a runs root (default $UNILOG_DIR,
                               else ./runs), one project's folder, or one run's
    unilog show RUN            one run: RUN is its directory, or its id (or
                               project/id) under $UNILOG_DIR or ./runs
    unilog sweep CONFIG.yaml   create a sweep from a W&B sweep configuration
    unilog sweep show ID       a sweep's trials, best first, and a plot
    unilog agent ID            run a sweep's trials (docs/sweeps.md)
    unilog --version
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

MANIFEST = "run.json"
#: How many characters of a summary value ``show`` prints before it says how long
#: the value is (``--full`` prints every value whole).
VALUE_WIDTH = 200
#: Summary keys ``show`` prints without ``--full`` (a run may have thousands).
SUMMARY_LINES = 50
#: How many summary numbers ``ls`` shows as columns when ``--metric`` names none.
DEFAULT_METRICS = 3


#: Modules that add subcommands of their own (each has ``add_commands(subparsers)``).
COMMAND_MODULES = ("unilog.sweeps._cli", "unilog._sync_cli", "unilog.importers._cli",
                   "unilog._views_cli")


class CliError(Exception):
    """A message for the user: printed as ``unilog <command>: <message>``, exit status 1."""


# -- finding runs ------------------------------------------------------------------------


def _default_root() -> Path:
    """Where ``init`` writes runs by default: $UNILOG_DIR, else ./runs."""
    return Path(os.environ.get("UNILOG_DIR") or "runs")


def _search_roots() -> list[Path]:
    """Where ``show`` looks for a run id: $UNILOG_DIR, and ./runs too (a run made
    with the default in this folder, while $UNILOG_DIR points elsewhere)."""
    return list(dict.fromkeys([_default_root(), Path("runs")]))


def find_runs(folder: Path) -> list[Path]:
    """The run directories in ``folder``: the folder itself when it is one, else its
    children (a project's folder) and grandchildren (a runs root) that are."""
    if (folder / MANIFEST).is_file():
        return [folder]
    found = {p.parent for pattern in (f"*/{MANIFEST}", f"*/*/{MANIFEST}")
             for p in folder.glob(pattern) if p.is_file()}
    return sorted(found, key=_started)


def resolve_run(ref: str) -> Path:
    """The run directory that ``ref`` names: a path to one, else a run id or
    ``project/id`` under the default roots. Raises ``CliError`` when there is no
    such run, or several (the same id in two projects)."""
    path = Path(ref)
    if (path / MANIFEST).is_file():
        return path
    roots = _search_roots()
    matches: list[Path] = []
    if "/" not in ref.strip("/") and os.sep not in ref:
        for root in roots:
            matches += [p.parent for p in sorted(root.glob(f"*/{ref}/{MANIFEST}"))]
    else:
        matches += [root / ref for root in roots if (root / ref / MANIFEST).is_file()]
    # $UNILOG_DIR may be ./runs itself: one run found twice is one run.
    unique: dict[Path, Path] = {}
    for match in matches:
        unique.setdefault(match.resolve(), match)
    matches = list(unique.values())
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise CliError(f"{ref!r} names several runs; give one's directory:\n"
                       + "\n".join(f"  {m}" for m in matches))
    where = ", ".join(str(r) for r in roots)
    if path.exists():
        raise CliError(f"{ref} is not a run directory (no {MANIFEST} in it)")
    raise CliError(f"no run {ref!r}: not a run directory, and no run with that id under "
                   f"{where} (set $UNILOG_DIR, or give the run's directory)")


def _read_json(path: Path) -> Any:
    """A JSON file's content, or None when it is missing or unreadable (a run being
    written, or one whose process was killed mid-write)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _started(run_dir: Path) -> float:
    manifest = _read_json(run_dir / MANIFEST) or {}
    stamp = manifest.get("created") or manifest.get("started")
    if isinstance(stamp, (int, float)):
        return float(stamp)
    try:
        return (run_dir / MANIFEST).stat().st_mtime
    except OSError:
        return 0.0


# -- commands ---------------------------------------------------------------------------


def _backends(_args: argparse.Namespace) -> int:
    from unilog.plugins import available_backends

    for name, cls in sorted(available_backends().items()):
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        state = f"missing {', '.join(missing)}: pip install 'unilog-ml[{cls.extra}]'" if missing \
            else "ready"
        print(f"{name:<20} {cls.__module__:<40} {state}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    root = Path(args.dir) if args.dir else _default_root()
    if args.dir and not root.is_dir():
        raise CliError(f"{args.dir} is not a folder")
    runs = find_runs(root) if root.is_dir() else []
    if not runs:
        print(f"no runs under {root}", file=sys.stderr)
        return 0
    rows = []
    for run_dir in runs:
        manifest = _read_json(run_dir / MANIFEST) or {}
        summary = _read_json(run_dir / "summary.json")
        rows.append((run_dir, manifest, summary if isinstance(summary, dict) else {}))
    metrics = args.metric or _common_numbers([summary for _, _, summary in rows])
    header = ["PROJECT", "ID", "NAME", "GROUP", "STATUS", "STEP", "STARTED", *metrics, "PATH"]
    table = [header]
    for run_dir, manifest, summary in rows:
        started = _started(run_dir)
        table.append([
            _text(manifest.get("project")), _text(manifest.get("id", run_dir.name)),
            _text(manifest.get("name")), _text(manifest.get("group")),
            _text(manifest.get("status", "running")), _text(manifest.get("step", 0)),
            time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "-",
            *[_number(summary.get(key)) for key in metrics], str(run_dir),
        ])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0


def _common_numbers(summaries: list[dict[str, Any]]) -> list[str]:
    """The summary keys holding a number in the most runs (``ls``'s default metric
    columns): ties go to the name that sorts first."""
    counts = Counter(key for summary in summaries for key, value in summary.items()
                     if isinstance(value, (int, float)) and not isinstance(value, bool))
    ranked = sorted(counts, key=lambda key: (-counts[key], key))
    return ranked[:DEFAULT_METRICS]


def _text(value: Any) -> str:
    return "-" if value is None or value == "" else str(value)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _show(args: argparse.Namespace) -> int:
    from unilog.read import read_run

    data = read_run(resolve_run(args.run))
    m = data.manifest
    name = f" ({m['name']})" if m.get("name") and m.get("name") != m.get("id") else ""
    group = f", group {m['group']}" if m.get("group") else ""
    print(f"run {m.get('id')}{name} in project {m.get('project')}{group}: {data.status}, "
          f"step {m.get('step', 0)}")
    print(f"  directory: {data.path}")
    if m.get("tags"):
        print(f"  tags: {', '.join(map(str, m['tags']))}")
    resumes = m.get("resumes") or []
    backends = m.get("backends") or {}
    if resumes:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(resumes[-1].get("time", 0)))
        print(f"  sessions: {len(resumes) + 1} (resumed {len(resumes)} time"
              f"{'s' if len(resumes) > 1 else ''}, last at {when})")
        if m.get("totals"):
            # Totals over every session, as the history below: the latest session's
            # counts alone would read as lost records.
            print(f"  backends, counts over all {len(resumes) + 1} sessions (a session "
                  "ended by SIGKILL reported none):")
            backends = {name: {**backends.get(name, {}), **counts}
                        for name, counts in m["totals"].items()}
        else:  # written before run.json kept totals
            print("  backends, counts of the latest session only (since the resume at "
                  f"{when}; earlier sessions' counts are not kept):")
    else:
        print("  backends:")
    for backend, report in backends.items():
        counts = {k: v for k, v in report.items()
                  if isinstance(v, int) and not isinstance(v, bool) and v}
        synced = report.get("synced") if isinstance(report.get("synced"), dict) else None
        state = ", ".join(f"{k} {v}" for k, v in counts.items()) or (
            "" if synced else "nothing delivered")
        if synced:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(synced.get("time") or 0))
            state += (f"{'; ' if state else ''}synced {when}: {synced.get('sent', 0)} rows sent, "
                      f"closed {synced.get('status')}"
                      f"{'' if synced.get('complete') else ', INCOMPLETE'}")
        if report.get("disabled"):
            state += f"; disabled: {report['disabled']}"
        print(f"    {backend:<12} {state}")
    keys = list(dict.fromkeys(k for _, _, k, _ in data.history))
    scope = " (all sessions)" if resumes else ""
    print(f"  history{scope}: {_count(len(data.history), 'value')}, "
          f"{_count(len(keys), 'key')}: {', '.join(keys[:10])}{' ...' if len(keys) > 10 else ''}")
    for artifact in data.artifacts:
        print(f"  artifact {artifact.ref} ({artifact.type}) aliases={artifact.aliases}")
    print("  summary:" if data.summary else "  summary: (empty)")
    shown = list(data.summary.items())
    if not args.full:
        shown = shown[:SUMMARY_LINES]
    for key, value in shown:
        print(f"    {key}: {_value(value, args.full)}")
    if len(shown) < len(data.summary):
        print(f"    ... {len(data.summary) - len(shown)} more (--full prints them all)")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _value(value: Any, full: bool) -> str:
    """A summary value as JSON; a long one cut at a character, saying how long it is."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    if full or len(text) <= VALUE_WIDTH:
        return text
    return f"{text[:VALUE_WIDTH]}... ({len(text)} characters; --full prints it whole)"


def _version() -> str:
    import unilog

    return f"unilog {unilog.__version__}"


class _VersionAction(argparse.Action):
    """``--version``: the version is read only when asked (importing unilog's metadata
    costs time that ``unilog ls`` need not spend)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        print(_version())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``unilog`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="unilog", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[2:]))
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list registered backends").set_defaults(func=_backends)
    ls = sub.add_parser("ls", help="list runs")
    ls.add_argument("dir", nargs="?",
                    help="a runs root, a project's folder or a run's (default: $UNILOG_DIR, "
                         "else ./runs)")
    ls.add_argument("--metric", action="append", metavar="KEY",
                    help="a summary value to show as a column (repeatable; default: the "
                         f"{DEFAULT_METRICS} numbers most runs have)")
    ls.set_defaults(func=_ls)
    show = sub.add_parser("show", help="show one run")
    show.add_argument("run", metavar="RUN",
                      help="the run's directory, or its id (or project/id) under "
                           "$UNILOG_DIR or ./runs")
    show.add_argument("--full", action="store_true",
                      help="print long summary values whole, and every summary key")
    show.set_defaults(func=_show)
    for module in COMMAND_MODULES:  # each adds its subcommands; imports nothing heavy
        importlib.import_module(module).add_commands(sub)
    args = parser.parse_args(argv)
    from unilog.errors import UnilogError

    try:
        return args.func(args)
    except (CliError, UnilogError) as exc:
        print(f"unilog {args.command}: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # an optional dependency (Optuna for sweeps)
        print(f"unilog {args.command}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``unilog ls | head``): not an error of ours. Point
        # stdout at nothing so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
