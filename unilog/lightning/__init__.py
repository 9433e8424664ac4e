"""unilog for Lightning: ``UnilogLogger`` and callbacks (``pip install 'unilog-ml[lightning]'``).

    from unilog.lightning import UnilogLogger, LogPredictions, LogHistograms

    logger = UnilogLogger(project="digits", backends=["csv", "tensorboard"],
                          log_checkpoints="best")
    trainer = lightning.Trainer(logger=logger, callbacks=[LogPredictions(), LogHistograms()])

Never imported by ``import unilog``; see docs/lightning.md.
"""

from __future__ import annotations

try:
    import lightning.pytorch  # noqa: F401
except ImportError as exc:  # name the extra, as a missing backend SDK does
    raise ImportError(f"unilog.lightning needs Lightning: pip install 'unilog-ml[lightning]' "
                      f"({exc})") from exc

from unilog.lightning.callbacks import (
    LogHistograms,
    LogPredictions,
    StopWhenPruned,
    find_unilog_logger,
    trainer_step,
)
from unilog.lightning.logger import UnilogLogger

__all__ = ["LogHistograms", "LogPredictions", "StopWhenPruned", "UnilogLogger",
           "find_unilog_logger", "trainer_step"]
