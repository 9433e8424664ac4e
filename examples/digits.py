"""The 8x8 handwritten digits, a small CNN, and a plain training loop logged with unilog.

Shared by ``train.py`` (argparse), ``hydra_app.py`` (Hydra) and
``train_lightning.py`` (the same data and model under Lightning). The data is
scikit-learn's bundled copy of the UCI digits (1,797 images): no download.

The loop logs per-step loss and accuracy as *tensors* (never ``.item()``-ed,
so on a GPU logging never waits for the device), per-epoch validation
metrics, sample predictions as captioned images and as a table, weight
histograms, and the best checkpoint as an artifact, which it reloads through
``run.use_artifact("model:best")`` and evaluates at the end. Under
``torch.distributed`` each rank trains on its own shard of every epoch and
only rank 0's run logs (the others get a disabled run from ``unilog.init``).
"""

from __future__ import annotations

import math
import tempfile
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

import unilog

#: How many validation images the sample-prediction panel shows.
NUM_SAMPLES = 8
#: Sample images are scaled up by this factor: 8x8 pixels are hard to see.
SAMPLE_ZOOM = 4


def load_digits_split(seed: int = 0, val_fraction: float = 0.2
                      ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``x_train, y_train, x_val, y_val`` as CPU tensors: x float32 (N, 1, 8, 8) in [0, 1], y int64.

    The split is a seeded permutation, so the same ``seed`` gives the same split
    on every machine and every rank.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction!r}")
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0  # pixels are 0..16
    y = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = round(len(y) * val_fraction)
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def make_model() -> nn.Module:
    """A small CNN for 1x8x8 images that returns logits (N, 10)."""
    return nn.Sequential(OrderedDict(
        conv1=nn.Conv2d(1, 16, 3, padding=1), relu1=nn.ReLU(),
        conv2=nn.Conv2d(16, 32, 3, padding=1), relu2=nn.ReLU(),
        pool=nn.MaxPool2d(2), flatten=nn.Flatten(),
        fc=nn.Linear(32 * 4 * 4, 10),
    ))


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Loss and accuracy of ``model`` on ``(x, y)`` as device tensors (no host sync)."""
    logits = model(x)
    return nn.functional.cross_entropy(logits, y), (logits.argmax(1) == y).float().mean()


def steps_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps per epoch on each rank (the training set is cut to a
    multiple of ``world_size`` so that every rank takes the same number of steps)."""
    return math.ceil(n_train // world_size / batch_size)


def train(config: Mapping, run: unilog.Run, device: torch.device) -> float:
    """Train on the digits with ``config``, logging to ``run``; returns the best val accuracy.

    Config keys: ``epochs``, ``batch_size``, ``optim.lr`` (and ``optim.name``:
    "adam" or "sgd", default adam), ``seed``, ``samples_every`` (epochs between
    sample-prediction images), ``hist_every`` (steps between weight histograms).
    Under an initialised ``torch.distributed`` process group the model is
    wrapped in DDP and each rank trains on its shard of the batches.
    """
    check_config(config)
    torch.manual_seed(int(config["seed"]))  # the same initial weights on every rank
    # The whole dataset is a few hundred KB: move it to the device once.
    x_train, y_train, x_val, y_val = (
        t.to(device) for t in load_digits_split(seed=int(config["seed"])))
    net = make_model().to(device)
    model = _distribute(net, device)
    optimizer = _optimizer(config, model)
    rank, world = _rank_and_world()
    run.config.update({"runtime": {"device": device.type, "world_size": world}})

    best_acc, step = -1.0, 0
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        checkpoint = Path(checkpoint_dir) / "model.pt"
        for epoch in range(int(config["epochs"])):
            model.train()
            for batch in _shard(len(x_train), int(config["batch_size"]), int(config["seed"]),
                                epoch, rank, world, device):
                _train_step(model, optimizer, x_train[batch], y_train[batch], run, net,
                            histograms=step % int(config["hist_every"]) == 0)
                step += 1
            net.eval()
            val_loss, val_acc = evaluate(net, x_val, y_val)
            record = {"epoch": epoch, "val/loss": val_loss, "val/acc": val_acc}
            if epoch % int(config["samples_every"]) == 0:
                record.update(sample_predictions(net, x_val, y_val))
            run.log(record)
            # The one host read per epoch: choosing the best checkpoint needs the number.
            if (acc := float(val_acc)) > best_acc:
                best_acc = acc
                _save_best(net, checkpoint, run, epoch, acc)
        run.summary["best_val_acc"] = best_acc
    if run.dir is not None:  # rank 0 (other ranks' runs are disabled and hold no artifacts)
        run.summary["reloaded_val_acc"] = reload_and_evaluate(run, device, x_val, y_val)
    return best_acc


def check_config(config: Mapping) -> None:
    """Raise ValueError naming the first key that is missing or not a positive int
    (``seed`` may be 0), before any work is done."""
    for key in ("epochs", "batch_size", "samples_every", "hist_every", "seed"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (key != "seed"):
            rule = "an int >= 0" if key == "seed" else "a positive int"
            raise ValueError(f"config key {key!r} must be {rule}, not {value!r}")
    if not isinstance(config.get("optim"), Mapping) or "lr" not in config["optim"]:
        raise ValueError("config key 'optim' must be a mapping with an 'lr'")


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: Tensor, y: Tensor,
                run: unilog.Run, net: nn.Module, histograms: bool) -> None:
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    acc = (logits.argmax(1) == y).float().mean()
    record = {"train/loss": loss, "train/acc": acc}  # tensors: unilog reads them off-thread
    if histograms:
        record.update(weight_histograms(net))
    run.log(record)


def weight_histograms(net: nn.Module) -> dict[str, unilog.Histogram]:
    """``{"weights/<layer>": Histogram}`` for every layer that has a weight."""
    return {f"weights/{name}": unilog.Histogram(module.weight)
            for name, module in net.named_children() if getattr(module, "weight", None) is not None}


@torch.no_grad()
def sample_predictions(net: nn.Module, x: Tensor, y: Tensor) -> dict[str, object]:
    """The first validation images with "pred P / true T" captions, and a table of them."""
    x, y = x[:NUM_SAMPLES], y[:NUM_SAMPLES]
    preds = net(x).argmax(1)
    # Captions need the numbers on the host: one small read every samples_every
    # epochs, outside the step loop.
    pairs = torch.stack([preds, y], 1).tolist()
    big = nn.functional.interpolate(x, scale_factor=SAMPLE_ZOOM, mode="nearest")
    record: dict[str, object] = {
        f"val/samples/{i}": unilog.Image(big[i], caption=f"pred {p} / true {t}")
        for i, (p, t) in enumerate(pairs)}
    record["val/predictions"] = unilog.Table(
        columns=["sample", "pred", "true", "correct"],
        data=[[i, p, t, p == t] for i, (p, t) in enumerate(pairs)])
    return record


def reload_and_evaluate(run: unilog.Run, device: torch.device, x_val: Tensor, y_val: Tensor
                        ) -> float:
    """Fetch ``model:best`` through ``run.use_artifact``, load it and return its val accuracy."""
    best = run.use_artifact("model:best")
    folder = Path(best.download())
    model = make_model().to(device)
    model.load_state_dict(torch.load(folder / "model.pt", map_location=device,
                                     weights_only=True))
    _, acc = evaluate(model.eval(), x_val, y_val)
    acc_value = float(acc)
    print(f"best checkpoint {best.ref} (epoch {best.metadata['epoch']}): "
          f"val acc {acc_value:.4f}")
    return acc_value


def _save_best(net: nn.Module, path: Path, run: unilog.Run, epoch: int, acc: float) -> None:
    if run.dir is None:  # not rank 0: nothing would record the file
        return
    torch.save(net.state_dict(), path)
    # log_artifact copies the file before returning, so the next save may overwrite it.
    run.log_artifact(path, name="model", type="model", aliases=["best"],
                     metadata={"epoch": epoch, "val_acc": acc})


def _optimizer(config: Mapping, model: nn.Module) -> torch.optim.Optimizer:
    optim = config["optim"]
    name, lr = optim.get("name", "adam"), float(optim["lr"])
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    raise ValueError(f"optim.name must be 'adam' or 'sgd', not {name!r}")


def _rank_and_world() -> tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _distribute(net: nn.Module, device: torch.device) -> nn.Module:
    """``net`` wrapped in DDP when a process group is up, else ``net`` itself."""
    if _rank_and_world()[1] == 1:
        return net
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)


def _shard(n: int, batch_size: int, seed: int, epoch: int, rank: int, world: int,
           device: torch.device) -> list[Tensor]:
    """This rank's batches of one epoch: one shuffle shared by all ranks (same seed),
    cut to a multiple of ``world`` so every rank takes the same number of steps
    (DDP's all-reduce needs every rank at every step), then dealt out by rank."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 10_000 + epoch))
    mine = order[: n - n % world][rank::world]
    return list(mine.to(device).split(batch_size))
