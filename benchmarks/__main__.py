"""``python -m benchmarks [--quick] [--out DIR]``: run the benchmarks, print and save a report."""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from benchmarks import all_backends, core


#: Benchmarks of single backends, each a module with ``run(quick) -> rows``.
BACKEND_BENCHMARKS = ("tensorboard", "mlflow", "wandb", "neptune", "swanlab")


def _backend_rows(name: str, quick: bool) -> list[tuple[str, str, str]]:
    """A backend's rows, or one row saying why it was skipped (its SDK is missing)."""
    import importlib
    import importlib.util

    from unilog.plugins import available_backends

    if importlib.util.find_spec(name) is None or name not in available_backends():
        return [(f"{name} backend", f"skipped: {name} is not installed", "-")]
    return importlib.import_module(f"benchmarks.{name}").run(quick)


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and write a markdown report under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke pass)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    rows = core.run_all(args.quick)
    for name in BACKEND_BENCHMARKS:
        rows.extend(_backend_rows(name, args.quick))
    rows.extend(all_backends.run(args.quick))
    lines = [
        f"# unilog benchmarks ({'quick' if args.quick else 'full'})",
        "",
        f"`python -m benchmarks{' --quick' if args.quick else ''}` on {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{started}",
        "",
        "| figure | measured (median [min-max]) | target |",
        "|---|---|---|",
        *[f"| {name} | {value} | {target} |" for name, value, target in rows],
    ]
    report = "\n".join(lines)
    print(report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / ("report-quick.md" if args.quick else "report.md")).write_text(report + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
