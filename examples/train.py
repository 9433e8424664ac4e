"""A plain PyTorch training loop logged with unilog.

    python examples/train.py                  # $UNILOG_BACKENDS, else csv + tensorboard + mlflow
    python examples/train.py --backends csv --epochs 3

Trains a small MLP on a synthetic two-spirals problem (no download), on CUDA
when available. Per step it logs the loss and accuracy as *tensors*: no
``.item()`` in the loop, so logging never waits for the GPU. Per epoch it logs
validation metrics, a weight histogram and an image of the decision surface,
saves the best checkpoint as an artifact, and at the end reloads it through
``use_artifact(...).download()`` and evaluates it.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

import unilog
import unilog.plugins


def spirals(n: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals: points (n, 2) and labels (n,)."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    t = torch.rand(n, generator=generator) * 3 * math.pi + 0.5
    angle = t + labels * math.pi
    points = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1) / 10
    return points + noise * torch.randn(n, 2, generator=generator), labels


#: Backends that keep their data on this machine and need no account.
LOCAL_BACKENDS = ("csv", "tensorboard", "mlflow")


def default_backends() -> list[str]:
    """$UNILOG_BACKENDS if set, else every local backend that is registered and installed."""
    if os.environ.get("UNILOG_BACKENDS"):
        return os.environ["UNILOG_BACKENDS"].split(",")
    usable = []
    for name in LOCAL_BACKENDS:
        try:
            unilog.plugins.get_backend_class(name)
        except (unilog.BackendNotFound, unilog.BackendNotInstalled):
            continue
        usable.append(name)
    return usable


def make_model() -> nn.Module:
    """A small MLP classifier."""
    return nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                         nn.Linear(64, 2))


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loss and accuracy as device tensors (no sync)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()


@torch.no_grad()
def decision_surface(model: nn.Module, device: torch.device, size: int = 64) -> torch.Tensor:
    """The model's class-1 probability over the plane, as a (1, size, size) image tensor."""
    axis = torch.linspace(-1.2, 1.2, size, device=device)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), dim=-1).reshape(-1, 2)
    return model(grid).softmax(1)[:, 1].reshape(1, size, size)


def main(argv: list[str] | None = None) -> Path:
    """Train, log, reload the best checkpoint; returns the run directory."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--backends", default=None, help="comma-separated, e.g. csv,tensorboard")
    parser.add_argument("--project", default="examples")
    parser.add_argument("--dir", default=None)
    args = parser.parse_args(argv)

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    generator = torch.Generator().manual_seed(0)
    x_train, y_train = (t.to(device) for t in spirals(4000, 0.02, generator))
    x_val, y_val = (t.to(device) for t in spirals(1000, 0.02, generator))
    model = make_model().to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    config = {"epochs": args.epochs, "lr": args.lr, "batch_size": args.batch_size,
              "device": device.type, "model": {"hidden": 64, "layers": 3}}

    backends = args.backends.split(",") if args.backends else default_backends()
    with unilog.init(project=args.project, config=config, dir=args.dir,
                     backends=backends, tags=["example"]) as run:
        best_acc, checkpoint_dir = -1.0, Path(tempfile.mkdtemp())
        for epoch in range(args.epochs):
            model.train()
            order = torch.randperm(len(x_train), device=device)
            for batch in order.split(args.batch_size):
                logits = model(x_train[batch])
                loss = nn.functional.cross_entropy(logits, y_train[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                acc = (logits.argmax(1) == y_train[batch]).float().mean()
                run.log({"train/loss": loss, "train/acc": acc})  # tensors: no .item()
            model.eval()
            val_loss, val_acc = evaluate(model, x_val, y_val)
            run.log({"epoch": epoch, "val/loss": val_loss, "val/acc": val_acc,
                     "weights/layer0": unilog.Histogram(model[0].weight),
                     "val/surface": unilog.Image(decision_surface(model, device),
                                                 caption=f"P(class 1), epoch {epoch}")})
            # The one host read per epoch, to choose the best checkpoint.
            if (acc_value := float(val_acc)) > best_acc:
                best_acc = acc_value
                path = checkpoint_dir / "model.pt"
                torch.save(model.state_dict(), path)
                run.log_artifact(path, name="model", type="model", aliases=["best"],
                                 metadata={"epoch": epoch, "val_acc": acc_value})
        run.summary["best_val_acc"] = best_acc

        best = run.use_artifact("model:best")
        reloaded = make_model().to(device)
        reloaded.load_state_dict(torch.load(best.file(), map_location=device))
        _, reloaded_acc = evaluate(reloaded.eval(), x_val, y_val)
        run.summary["reloaded_val_acc"] = float(reloaded_acc)
        print(f"best checkpoint {best.ref} (epoch {best.metadata['epoch']}): "
              f"val acc {float(reloaded_acc):.3f}")

    print_where_to_look(run, backends)
    return run.dir


def print_where_to_look(run: unilog.Run, backends: list[str]) -> None:
    """Tell the user how to open what each backend wrote."""
    print(f"run {run.id} logged to {run.dir} with {', '.join(backends)}")
    print(f"  local record:  unilog show {run.dir}")
    print(f"                 python -c \"import unilog; print(unilog.read_run('{run.dir}')"
          ".metrics.tail())\"")
    info = unilog.read_run(run.dir).manifest.get("backends", {})
    if "tensorboard" in info:
        print(f"  TensorBoard:   tensorboard --logdir {run.dir / 'tensorboard'}")
    if "mlflow" in info:
        uri = info["mlflow"].get("info", {}).get("tracking_uri", "")
        print(f"  MLflow:        mlflow ui --backend-store-uri {uri}")


if __name__ == "__main__":
    main()
