"""The digits CNN of ``digits.py`` trained with Lightning, logged through ``UnilogLogger``.

    python examples/train_lightning.py                   # $UNILOG_BACKENDS, else csv + tensorboard + mlflow
    python examples/train_lightning.py --backends csv --epochs 3

Lightning's ``self.log`` metrics reach every backend at Lightning's global
step; the module's hyperparameters become the run's config; ModelCheckpoint's
best file becomes the ``model`` artifact (alias ``best``) as soon as it is
saved; ``LogPredictions`` and ``LogHistograms`` add captioned sample
predictions and weight/gradient histograms. After ``fit`` the best checkpoint
is fetched back through ``use_artifact`` and validated, which continues the
same run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from digits import load_digits_split, make_model  # examples/ is on sys.path as a script
from train import default_backends, print_where_to_look, split_names
from unilog.lightning import LogHistograms, LogPredictions, UnilogLogger


class DigitsClassifier(pl.LightningModule):
    """``digits.make_model()`` with cross-entropy and Adam."""

    def __init__(self, lr: float = 3e-3):
        super().__init__()
        self.save_hyperparameters()  # UnilogLogger puts these into the run's config
        self.net = make_model()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _loss_and_acc(self, batch):
        x, y = batch
        logits = self(x)
        return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()

    def training_step(self, batch, batch_idx):
        loss, acc = self._loss_and_acc(batch)
        self.log_dict({"train/loss": loss, "train/acc": acc})
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc = self._loss_and_acc(batch)
        self.log_dict({"val/loss": loss, "val/acc": acc})

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def main(argv: list[str] | None = None) -> Path:
    """Fit, then validate the best checkpoint fetched through unilog; returns the run directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--backends", default=None, help="comma-separated, e.g. csv,tensorboard")
    parser.add_argument("--project", default="examples")
    parser.add_argument("--dir", default=None, help="root of the runs ($UNILOG_DIR, else ./runs)")
    args = parser.parse_args(argv)

    pl.seed_everything(0, verbose=False)
    x_train, y_train, x_val, y_val = load_digits_split(seed=0)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=args.batch_size,
                              shuffle=True)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=256)

    backends = split_names(args.backends) if args.backends else default_backends()
    logger = UnilogLogger(project=args.project, backends=backends, dir=args.dir,
                          config={"epochs": args.epochs, "batch_size": args.batch_size},
                          tags=["example", "lightning"], log_checkpoints="best")
    trainer = pl.Trainer(
        max_epochs=args.epochs, logger=logger, log_every_n_steps=1,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelCheckpoint(monitor="val/acc", mode="max"),
                   LogPredictions(every_n_epochs=2), LogHistograms(every_n_steps=50)],
    )
    trainer.fit(DigitsClassifier(lr=args.lr), train_loader, val_loader)  # ends the run

    # The best checkpoint, fetched through unilog (from any backend that has it).
    best = logger.run.use_artifact("model:best")
    reloaded = DigitsClassifier.load_from_checkpoint(best.file())
    # Its metrics continue the same run, at the step after the last one.
    (result,) = trainer.validate(reloaded, val_loader, verbose=False)
    print(f"best checkpoint {best.ref} ({best.metadata['filename']}): "
          f"val acc {result['val/acc']:.3f}")
    print_where_to_look(logger.run, backends)
    return Path(logger.log_dir)


if __name__ == "__main__":
    main()
