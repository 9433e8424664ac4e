"""On a CUDA device: logging tensors never syncs the device (skipped without one).

CI has no GPU; this runs on the device machine when one is lent:
``pytest tests/test_gpu.py``.
"""

from __future__ import annotations

import pytest

import unilog

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_logging_cuda_scalars_and_media_never_syncs():
    device = torch.device("cuda")
    run = unilog.init(backends=["csv"])
    losses = []
    torch.cuda.set_sync_debug_mode("error")  # any synchronising call raises
    try:
        for step in range(50):
            loss = (torch.randn(256, device=device) ** 2).mean()
            losses.append(loss)
            run.log({"loss": loss, "flag": loss > 0, "weights": unilog.Histogram(
                torch.randn(1000, device=device)) if step % 10 == 0 else None,
                "image": unilog.Image(torch.rand(3, 8, 8, device=device)) if step == 0 else None})
    finally:
        torch.cuda.set_sync_debug_mode("default")
    run.finish()
    series = unilog.read_run(run.dir).series("loss")
    assert [v for _, v in series] == pytest.approx([float(x) for x in losses], rel=1e-6)
    assert unilog.read_run(run.dir).series("flag") == [(i, 1) for i in range(50)]


def test_lightning_logger_and_histograms_never_sync():
    pytest.importorskip("lightning")
    from unilog.lightning import UnilogLogger

    logger = UnilogLogger(backends=["csv"])
    weights = torch.nn.Linear(64, 64).cuda().weight
    run = logger.experiment  # created (files opened) before the sync check starts
    torch.cuda.set_sync_debug_mode("error")
    try:
        for step in range(20):
            loss = (weights.sum() * step).abs()
            logger.log_metrics({"loss": loss, "w": unilog.Histogram(weights.detach())},
                               step=step)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    logger.finalize("success")
    assert len(unilog.read_run(run.dir).series("loss")) == 20
