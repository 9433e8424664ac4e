"""Issue 6, item 3: a training loop that logs 4 scalar tensors per step.

Three variants of the same loop, alternated and repeated: no logging at all;
``run.log`` of the 4 tensors as they are (unilog reads them off the device on
its workers); and ``.item()`` on each before logging (what the other wrappers
do, one host read per value per step). Reported as steps/s and ratios to the
no-logging loop.

On the CPU (CI) there is no device to wait for: the figures show unilog's
cost against a real step. On a CUDA device the loop also runs under
``torch.cuda.set_sync_debug_mode("error")``, which raises on any call that
synchronises the device: proof that logging never syncs. No GPU: the report
says the GPU rows were skipped (``python -m benchmarks --only tensors`` on a
machine with one runs them).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import unilog
from benchmarks import plots

VARIANTS = ("no logging", "unilog, tensors", ".item() per value")


def _model_and_data(device):
    import torch
    from torch import nn

    torch.manual_seed(0)
    width = 512 if device.type == "cuda" else 256
    model = nn.Sequential(nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width),
                          nn.ReLU(), nn.Linear(width, 10)).to(device)
    x = torch.randn(128, width, device=device)
    y = torch.randint(0, 10, (128,), device=device)
    return model, torch.optim.SGD(model.parameters(), lr=0.01), x, y


def loop_steps_per_s(variant: str, steps: int, device, root: Path,
                     check_sync: bool = False) -> float:
    """Steps per second of ``steps`` training steps, logging as ``variant`` says."""
    import torch
    from torch import nn

    model, optimizer, x, y = _model_and_data(device)
    run = unilog.init(project="bench-tensors", dir=root, backends=["csv"], mode="offline")
    run.flush(timeout=60)
    lr = torch.tensor(0.01, device=device)

    def one_step() -> dict:
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        acc = (logits.argmax(1) == y).float().mean()
        grad_norm = torch.linalg.vector_norm(model[0].weight.grad)
        return {"loss": loss.detach(), "acc": acc, "grad_norm": grad_norm, "lr": lr}

    for _ in range(20):  # warm-up: allocator, kernels, the run's first row
        one_step()
    _sync(device)
    if check_sync:
        torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises from here
    try:
        start = time.perf_counter()
        for _ in range(steps):
            record = one_step()
            if variant == "unilog, tensors":
                run.log(record)
            elif variant == ".item() per value":
                run.log({k: v.item() for k, v in record.items()})
        if check_sync:
            torch.cuda.set_sync_debug_mode("default")
        _sync(device)
        elapsed = time.perf_counter() - start
    finally:
        if check_sync:
            torch.cuda.set_sync_debug_mode("default")
    report = run.finish(timeout=120)["csv"]
    if report["errors"] or report["dropped"]:
        raise RuntimeError(f"the CSV record lost rows: {report}")
    return steps / elapsed


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _compare(device, steps: int, repeats: int, root: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for rep in range(repeats):
        order = VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))
        for variant in order:
            results[variant].append(loop_steps_per_s(variant, steps, device,
                                                     root / f"{device.type}-{rep}"))
    return results


def _rows(label: str, results: dict[str, list[float]], target: str) -> list[tuple[str, str, str]]:
    med = statistics.median
    floor = med(results["no logging"])
    return [(f"{label}: {variant}, steps/s",
             f"{med(v):,.0f} [{min(v):,.0f}-{max(v):,.0f}]; {med(v) / floor:.3f}x the loop "
             "without logging", target if variant == "unilog, tensors" else "-")
            for variant, v in results.items()]


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target); writes tensors_cpu.png (and tensors_gpu.png)."""
    import torch

    root = Path(tempfile.mkdtemp(prefix="unilog-bench-tensors-"))
    steps, repeats = (200, 2) if quick else (3000, 5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two OpenMP threads on a shared 2-core box make the floor swing 10x
    try:
        cpu = _compare(torch.device("cpu"), steps, repeats, root)
    finally:
        torch.set_num_threads(threads)
    rows = _rows(f"CPU (1 torch thread), MLP 256-256-10, batch 128, {steps:,} steps", cpu, "-")
    med = statistics.median
    plots.bar_plot(out / "tensors_cpu.png", "CPU training loop, steps/s (median)", "steps/s",
                   list(cpu), [med(v) for v in cpu.values()],
                   [min(v) for v in cpu.values()], [max(v) for v in cpu.values()])
    if not torch.cuda.is_available():
        rows.append(("GPU: the same loop on a CUDA device (>= 0.98x without logging, above "
                     ".item(), no sync under set_sync_debug_mode('error'))",
                     "skipped: no CUDA device here", ">= 0.98x"))
        return rows
    gpu_device = torch.device("cuda")
    gpu = _compare(gpu_device, steps * 2, repeats, root)
    loop_steps_per_s("unilog, tensors", 200, gpu_device, root / "sync-check", check_sync=True)
    rows += _rows(f"GPU {torch.cuda.get_device_name()}, MLP 512-512-10, batch 128, "
                  f"{steps * 2:,} steps", gpu, ">= 0.98x, above .item()")
    rows.append(("GPU: 200 steps logging tensors under set_sync_debug_mode('error')",
                 "no synchronising call (it would have raised)", "no sync"))
    plots.bar_plot(out / "tensors_gpu.png", "GPU training loop, steps/s (median)", "steps/s",
                   list(gpu), [med(v) for v in gpu.values()],
                   [min(v) for v in gpu.values()], [max(v) for v in gpu.values()])
    return rows
