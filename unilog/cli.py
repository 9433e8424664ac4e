"""The ``unilog`` command: list backends and runs, show a run.

    unilog backends            every registered backend and whether its SDK is installed
    unilog ls [DIR]            the runs under DIR (default $UNILOG_DIR or ./runs)
    unilog show RUN_DIR        a run's manifest, summary, metrics and artifacts
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from pathlib import Path


def _backends(_args: argparse.Namespace) -> int:
    from unilog.plugins import available_backends

    for name, cls in sorted(available_backends().items()):
        missing = [m for m in cls.requires if importlib.util.find_spec(m) is None]
        state = f"missing {', '.join(missing)}: pip install 'unilog[{cls.extra}]'" if missing \
            else "ready"
        print(f"{name:<20} {cls.__module__:<40} {state}")
    return 0


def _ls(args: argparse.Namespace) -> int:
    root = Path(args.dir or os.environ.get("UNILOG_DIR") or "runs")
    manifests = sorted(root.glob("*/*/run.json"), key=lambda p: p.stat().st_mtime)
    for path in manifests:
        data = json.loads(path.read_text(encoding="utf-8"))
        print(f"{data.get('project', '?'):<20} {data.get('id', '?'):<12} "
              f"{data.get('status', '?'):<9} step={data.get('step', 0):<8} {path.parent}")
    if not manifests:
        print(f"no runs under {root}", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace) -> int:
    from unilog.read import read_run

    data = read_run(args.run_dir)
    m = data.manifest
    print(f"run {m.get('id')} ({m.get('name')}) in project {m.get('project')}: {data.status}")
    for name, report in (m.get("backends") or {}).items():
        counts = {k: v for k, v in report.items() if isinstance(v, int) and v}
        print(f"  backend {name}: {counts}")
    keys = list(dict.fromkeys(k for _, _, k, _ in data.history))
    print(f"  {len(data.history)} values, {len(keys)} keys: {', '.join(keys[:10])}"
          f"{' ...' if len(keys) > 10 else ''}")
    for artifact in data.artifacts:
        print(f"  artifact {artifact.ref} ({artifact.type}) aliases={artifact.aliases}")
    print(f"  summary: {json.dumps(data.summary)[:500]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``unilog`` console script."""
    parser = argparse.ArgumentParser(prog="unilog", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("backends", help="list registered backends").set_defaults(func=_backends)
    ls = sub.add_parser("ls", help="list runs")
    ls.add_argument("dir", nargs="?")
    ls.set_defaults(func=_ls)
    show = sub.add_parser("show", help="show one run")
    show.add_argument("run_dir")
    show.set_defaults(func=_show)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
