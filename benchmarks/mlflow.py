"""Benchmarks of the MLflow backend (issue 3): steps of 4 metrics per second into a
fresh SQLite store through unilog, until ``finish`` returns, beside the same
records sent with ``MlflowClient`` directly in the same process: one
``log_metric`` per value, one ``log_batch`` per step, and full 1,000-metric
``log_batch`` requests (the most the store takes, whoever calls it).

``run(quick)`` returns (figure, measured, target) rows like ``benchmarks.core``.
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import unilog

KEYS = ("loss", "acc", "lr", "grad_norm")
TARGET = 2000  # steps/s


def _values(i: int) -> dict[str, float]:
    return {"loss": 1.0 / (i + 1), "acc": i % 100 / 100, "lr": 1e-3, "grad_norm": 2.0 + i % 7}


def _stats(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _quiet_mlflow() -> None:
    # Schema creation logs at INFO on every fresh database: noise in a report.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


def unilog_steps_per_s(steps: int, root: Path) -> dict:
    """unilog with ["mlflow"] (and the CSV record) on a fresh default SQLite store.

    ``sustained``: from the first ``log`` (backend opened, store created) until
    ``finish`` returns. ``total``: from ``init`` on a store that does not exist
    yet (schema creation included) until ``finish`` returns.
    """
    shutil.rmtree(root, ignore_errors=True)
    start = time.perf_counter()
    run = unilog.init(project="bench", dir=root, backends=["mlflow"])
    assert run.flush(timeout=120), "the mlflow backend did not open"
    opened = time.perf_counter()
    for i in range(steps):
        run.log(_values(i))
    loop = time.perf_counter() - opened
    report = run.finish(timeout=600)["mlflow"]
    end = time.perf_counter()
    problems = {k: report[k] for k in ("errors", "dropped", "failed", "undelivered") if report[k]}
    assert not problems and not report["timed_out"], report
    client = _client(report["info"]["tracking_uri"])
    stored = sum(len(client.get_metric_history(report["info"]["id"], k)) for k in KEYS)
    assert stored == 4 * steps, f"{stored} metrics stored, {4 * steps} logged"
    return {"sustained": steps / (end - opened), "total": steps / (end - start),
            "open_s": opened - start, "loop_us": loop / steps * 1e6}


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def _fresh_run(root: Path):
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    client = _client("sqlite:///" + (root / "mlflow.db").as_posix())
    experiment = client.create_experiment("bench", artifact_location=str(root / "artifacts"))
    return client, client.create_run(experiment).info.run_id


def direct_log_metric(steps: int, root: Path) -> float:
    """Seconds per step with one ``MlflowClient.log_metric`` per value."""
    client, run_id = _fresh_run(root)
    start = time.perf_counter()
    for i in range(steps):
        for key, value in _values(i).items():
            client.log_metric(run_id, key, value, step=i, synchronous=True)
    return (time.perf_counter() - start) / steps


def direct_log_batch(steps: int, root: Path, steps_per_call: int) -> float:
    """Seconds per step with one ``log_batch`` per ``steps_per_call`` steps."""
    from mlflow.entities import Metric

    client, run_id = _fresh_run(root)
    start = time.perf_counter()
    for first in range(0, steps, steps_per_call):
        stamp = int(time.time() * 1000)
        metrics = [Metric(k, v, stamp, i) for i in range(first, min(steps, first + steps_per_call))
                   for k, v in _values(i).items()]
        client.log_batch(run_id, metrics=metrics, synchronous=True)
    return (time.perf_counter() - start) / steps


def run(quick: bool) -> list[tuple[str, str, str]]:
    """Run the MLflow benchmarks; returns (figure, measured, target) rows."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow  # noqa: F401  (imported once, outside every timing)

    _quiet_mlflow()  # after the import, which sets mlflow's own levels

    base = Path(tempfile.mkdtemp(prefix="unilog-bench-mlflow-"))
    steps = 500 if quick else 10_000
    ours = [unilog_steps_per_s(steps, base / f"unilog{i}") for i in range(2 if quick else 3)]
    sustained = _stats([r["sustained"] for r in ours])
    total = _stats([r["total"] for r in ours])
    per_metric = direct_log_metric(50 if quick else 200, base / "direct-metric")
    per_step = direct_log_batch(100 if quick else 500, base / "direct-step", 1)
    ceiling = 1 / direct_log_batch(steps, base / "direct-full", 250)
    shutil.rmtree(base, ignore_errors=True)
    median = sustained[0]
    return [
        (f"unilog [\"mlflow\"], SQLite, {steps:,} steps x 4 metrics, first log until finish "
         "returns (steps/s)",
         f"{median:,.0f} [{sustained[1]:,.0f}-{sustained[2]:,.0f}]; caller loop mean "
         f"{statistics.median(r['loop_us'] for r in ours):.1f} us/step (shares the GIL "
         "with MLflow's ORM on the worker)",
         f">= {TARGET:,} steps/s"),
        ("same, from init on a store not yet created (schema ~2 s included)",
         f"{total[0]:,.0f} [{total[1]:,.0f}-{total[2]:,.0f}] steps/s; backend opened in "
         f"{statistics.median(r['open_s'] for r in ours):.1f} s", "-"),
        ("MlflowClient directly, one log_metric per value (4 calls a step)",
         f"{per_metric * 1e3:.1f} ms/step = {1 / per_metric:,.0f} steps/s; {steps:,} steps "
         f"would take {per_metric * steps:,.0f} s; unilog {median * per_metric:,.0f}x faster",
         "-"),
        ("MlflowClient directly, one log_batch per step (4 metrics)",
         f"{per_step * 1e3:.1f} ms/step = {1 / per_step:,.0f} steps/s; unilog "
         f"{median * per_step:,.1f}x faster", "-"),
        ("MlflowClient directly, log_batch of 1,000 metrics (the store's ceiling)",
         f"{ceiling:,.0f} steps/s; unilog reaches {median / ceiling:.0%} of it", "-"),
    ]


if __name__ == "__main__":
    for figure, measured, target in run(quick="--quick" in sys.argv):
        print(f"| {figure} | {measured} | {target} |")
