"""What a user feels: a training loop with ``DataLoader(num_workers=2)``, timed with
and without logging (issue 11's outside check).

A small MLP on 4,096 random samples, batches of 32, one torch thread, two
DataLoader workers (forked at each epoch), logging the loss tensor and the
epoch at every step to csv, TensorBoard, MLflow and wandb. Each variant runs
in a fresh interpreter, alternated over repetitions: no logging; unilog with
the SDKs in the logging process (the default); unilog with them on threads.
The time is the loop's, from before ``init`` until the last step, so the
SDKs starting during the loop are in it; ``finish`` is reported apart.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = ["csv", "tensorboard", "mlflow", "wandb"]
VARIANTS = (("no logging", ""), ("logging process", "process"), ("threads", "thread"))


def measure(isolation: str, epochs: int) -> dict:
    """One variant in this interpreter: loop seconds (``init`` included), finish seconds."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(4096, 64)
    y = (x.sum(1) > 0).long()
    loader = DataLoader(TensorDataset(x, y), batch_size=32, num_workers=2, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(),
                                torch.nn.Linear(256, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = None
    start = time.perf_counter()
    if isolation:
        import unilog
        from benchmarks.common import finish_complete

        run = unilog.init(project="bench-user-loop", mode="offline", backends=BACKENDS,
                          dir=tempfile.mkdtemp(prefix="unilog-bench-user-"),
                          isolation=isolation)
    steps = 0
    for epoch in range(epochs):
        for xb, yb in loader:
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if run is not None:
                run.log({"train/loss": loss.detach(), "epoch": epoch})
            steps += 1
    loop = time.perf_counter() - start
    finish = 0.0
    if run is not None:
        before = time.perf_counter()
        finish_complete(run, 300)
        finish = time.perf_counter() - before
    return {"loop_s": loop, "finish_s": finish, "steps": steps}


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target)."""
    epochs_list = (2,) if quick else (20, 60)
    repeats = 1 if quick else 3
    med = statistics.median
    rows = []
    for epochs in epochs_list:
        results: dict[str, list[dict]] = {label: [] for label, _ in VARIANTS}
        for rep in range(repeats):
            order = VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))
            for label, isolation in order:
                proc = subprocess.run(
                    [sys.executable, "-m", "benchmarks.user_loop", isolation or "-",
                     str(epochs)], capture_output=True, text=True, timeout=1800,
                    cwd=Path(__file__).resolve().parent.parent,
                    env={**os.environ, "UNILOG_SILENT": "true"})
                if proc.returncode != 0:
                    raise RuntimeError(f"{label} failed: {proc.stderr[-2000:]}")
                results[label].append(json.loads(proc.stdout.strip().splitlines()[-1]))
        floor = med(r["loop_s"] for r in results["no logging"])
        steps = results["no logging"][0]["steps"]
        for label, measured in results.items():
            loops = [r["loop_s"] for r in measured]
            rows.append((f"DataLoader(num_workers=2) loop, {steps:,} steps, csv + tensorboard + "
                         f"mlflow + wandb: {label}",
                         f"{med(loops):.2f} s [{min(loops):.2f}-{max(loops):.2f}], "
                         f"**{med(loops) / floor:.2f}x** the loop without logging; finish "
                         f"{med(r['finish_s'] for r in measured):.2f} s", "-"))
    return rows


if __name__ == "__main__":
    isolation_arg, epochs_arg = sys.argv[1:3]
    print(json.dumps(measure("" if isolation_arg == "-" else isolation_arg, int(epochs_arg))))
