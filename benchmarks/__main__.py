"""``python -m benchmarks [--quick] [--out DIR] [--only NAME ...]``: run the benchmarks,
print the report and write it (markdown, plus PNG plots) under ``--out``.

``--out`` defaults to ``benchmarks/results`` (the committed report and plots) for a
full run, and to a temporary folder (``<tmp>/unilog-benchmarks-quick``) for
``--quick``: a smoke pass's figures must never replace the committed ones, so
``--quick`` refuses ``benchmarks/results`` as its ``--out``.

Each benchmark is a module with ``run(quick, out) -> rows`` (rows of figure,
measured, target); it may write PNG plots into ``out``. Every figure is a
median with [min-max] beside its direct equivalent measured in the same run.
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

Rows = list[tuple[str, str, str]]

#: Where a full run's report and plots go: committed, quoted by docs/performance.md.
RESULTS = Path(__file__).resolve().parent / "results"

#: Benchmarks of single backends (issues 3 and 4), each a module with ``run(quick) -> rows``.
BACKEND_BENCHMARKS = ("tensorboard", "mlflow", "wandb", "neptune", "swanlab")

#: The sections of the report, in order: (name for --only, title, module).
SECTIONS = (
    ("core", "Core: import, caller-side cost, CSV throughput, stalled backend", "core"),
    *((name, f"Backend: {name}", name) for name in BACKEND_BENCHMARKS),
    ("all_backends", "All six backends at once: caller-side cost", "all_backends"),
    ("fanout", "1. Caller-side cost against direct fan-out and Lightning's loggers", "fanout"),
    ("end_to_end", "2. End to end with all six backends; overlap; threads or processes",
     "end_to_end"),
    ("interference", "2b. What the backends' work costs a CPU training loop: threads or a "
     "process", "interference"),
    ("user_loop", "2c. What a user feels: a DataLoader loop with and without logging",
     "user_loop"),
    ("tensors", "3. Tensors: no device sync", "tensors"),
    ("startup", "4. Start-up: import, and init + finish per backend", "startup"),
    ("scale", "5. Scale: distinct keys, steps, memory", "scale"),
    ("lightning", "6. Lightning: epoch time with UnilogLogger", "lightning_bench"),
    ("sweeps", "7. Sweeps: cost per trial against Optuna's own loop; agents sharing a sweep",
     "sweeps"),
    ("sync", "8. Sync and import: throughput against the SDK itself", "sync"),
)


def _runner(module_name: str) -> Callable[[bool, Path], Rows] | None:
    """The module's ``run``, adapted to ``(quick, out)``; None when the module is absent."""
    try:
        module = importlib.import_module(f"benchmarks.{module_name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"benchmarks.{module_name}":
            raise
        return None
    if module_name == "core":
        return lambda quick, out: module.run_all(quick)
    if module_name in BACKEND_BENCHMARKS or module_name == "all_backends":
        return lambda quick, out: module.run(quick)
    return module.run


def _skip_reason(module_name: str) -> str | None:
    """Why a single-backend benchmark cannot run here (its SDK is missing), else None."""
    if module_name not in BACKEND_BENCHMARKS:
        return None
    import importlib.util

    from unilog.plugins import available_backends

    if importlib.util.find_spec(module_name) is None or module_name not in available_backends():
        return f"{module_name} is not installed"
    return None


def output_folder(quick: bool, out: str | None) -> Path:
    """The folder of the report and plots: ``out``, else ``benchmarks/results`` for a
    full run and a temporary folder for ``--quick``. Raises ``ValueError`` when a
    quick run would write into ``benchmarks/results``."""
    if out is None:
        return Path(tempfile.gettempdir()) / "unilog-benchmarks-quick" if quick else RESULTS
    folder = Path(out)
    if quick and folder.resolve() == RESULTS:
        raise ValueError(f"--quick would overwrite the committed figures in {out}; "
                         "leave --out out (a temporary folder) or name another folder")
    return folder


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks and write a markdown report (and plots) under ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke pass)")
    parser.add_argument("--out", default=None,
                        help="default: benchmarks/results; with --quick, a temporary folder")
    parser.add_argument("--only", nargs="*", choices=[name for name, _, _ in SECTIONS],
                        help="run only these sections")
    args = parser.parse_args(argv)
    try:
        out = output_folder(args.quick, args.out)
    except ValueError as exc:
        parser.error(str(exc))
    out.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    failed: list[str] = []
    lines = [
        f"# unilog benchmarks ({'quick' if args.quick else 'full'})",
        "",
        f"`python -m benchmarks{' --quick' if args.quick else ''}` on {platform.node()}, "
        f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
        f"{_cpus()} CPUs, {started}",
    ]
    for name, title, module_name in SECTIONS:
        if args.only and name not in args.only:
            continue
        section_start = time.time()
        runner, reason = _runner(module_name), _skip_reason(module_name)
        if runner is None:
            reason = f"benchmarks/{module_name}.py is not there"
        started_section = time.perf_counter()
        try:
            rows = [(title, f"skipped: {reason}", "-")] if reason else runner(args.quick, out)
        except Exception as exc:  # one broken section must not cost the others' figures
            import traceback

            traceback.print_exc()
            failed.append(f"{name} ({type(exc).__name__}: {exc})")
            rows = [(title, f"FAILED: {type(exc).__name__}: {exc}", "-")]
        section = [
            "", f"## {title}", "",
            "| figure | measured (median [min-max]) | target |", "|---|---|---|",
            *[f"| {fig} | {value} | {target} |" for fig, value, target in rows],
        ]
        plots = sorted(p for p in out.glob("*.png") if p.stat().st_mtime >= section_start)
        section += [f"\n![{p.stem}]({p.name})" for p in plots]
        section.append(f"\n({time.perf_counter() - started_section:.0f} s)")
        print("\n".join(section), flush=True)
        lines += section
    report = "\n".join(lines) + "\n"
    report_path = out / ("report-quick.md" if args.quick else "report.md")
    report_path.write_text(report)
    print(f"\nreport and plots written to {out}: {report_path.name}", flush=True)
    if failed:
        # Last, with why: a caller that keeps only the end of stderr still sees it.
        print(f"sections that failed: {'; '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
