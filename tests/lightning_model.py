"""A tiny Lightning classifier on fixed random 4x4 "images", for the Lightning tests.

Importable by a test and runnable as a script: the DDP test starts it with
``python tests/lightning_model.py <dir>``, and Lightning's launcher re-runs the
same command for rank 1.
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

#: Training samples; with BATCH they make STEPS_PER_EPOCH optimizer steps per epoch.
SAMPLES, BATCH = 64, 16
STEPS_PER_EPOCH = SAMPLES // BATCH


def loaders(seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Train and validation loaders: 1x4x4 inputs, two classes (the sign of the mean)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(SAMPLES + BATCH, 1, 4, 4, generator=generator)
    y = (x.mean(dim=(1, 2, 3)) > 0).long()
    train = TensorDataset(x[:SAMPLES], y[:SAMPLES])
    val = TensorDataset(x[SAMPLES:], y[SAMPLES:])
    return DataLoader(train, batch_size=BATCH), DataLoader(val, batch_size=BATCH)


class TinyClassifier(pl.LightningModule):
    """Linear 16 -> hidden -> 2; ``fail_at_step`` raises in ``training_step`` there."""

    def __init__(self, hidden: int = 8, lr: float = 0.1, fail_at_step: int = -1,
                 interrupt: bool = False):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        if self.global_step == self.hparams.fail_at_step:
            raise KeyboardInterrupt() if self.hparams.interrupt else RuntimeError("boom")
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.log("val/loss", nn.functional.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(1) == y).float().mean())
        # Falls every epoch: a monitor under which epoch 0 is always the best.
        self.log("val/falling", -float(self.current_epoch))

    def test_step(self, batch, batch_idx):
        x, y = batch
        self.log("test/acc", (self(x).argmax(1) == y).float().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class TinyData(pl.LightningDataModule):
    """``loaders()`` as a datamodule, for LightningCLI (which builds the data from a class)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        return loaders(self.seed)[0]

    def val_dataloader(self) -> DataLoader:
        return loaders(self.seed)[1]

    def test_dataloader(self) -> DataLoader:
        return loaders(self.seed)[1]


def trainer(logger, epochs: int = 2, callbacks=(), **kwargs) -> pl.Trainer:
    """A quiet CPU trainer that logs every step."""
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=logger,
                      callbacks=list(callbacks), log_every_n_steps=1,
                      enable_progress_bar=False, enable_model_summary=False, **kwargs)


def main(root: str) -> None:
    """Fit on two CPU processes (DDP, gloo) with a UnilogLogger over csv."""
    from unilog.lightning import UnilogLogger

    torch.manual_seed(0)
    logger = UnilogLogger(project="ddp", backends=["csv"], dir=root, log_checkpoints="best")
    train, val = loaders()
    trainer(logger, devices=2, strategy="ddp").fit(TinyClassifier(), train, val)


if __name__ == "__main__":
    main(sys.argv[1])
