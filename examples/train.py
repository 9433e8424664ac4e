"""A plain PyTorch training loop on the 8x8 handwritten digits, logged with unilog.

    python examples/train.py                  # $UNILOG_BACKENDS, else csv + tensorboard + mlflow
    python examples/train.py --backends csv --epochs 3
    python -m torch.distributed.run --standalone --nproc_per_node 2 examples/train.py --epochs 1

Trains the small CNN of ``digits.py`` on CUDA when available, else on the CPU,
and logs per-step loss and accuracy (tensors, no ``.item()``), per-epoch
validation metrics, captioned sample predictions, weight histograms, the
config and the best checkpoint, which it reloads through
``use_artifact("model:best").download()`` and evaluates. Under torchrun each
process trains on its shard; only rank 0 logs, so there is one run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch

import unilog
import unilog.plugins
from digits import train  # examples/ is on sys.path when this file is run as a script

#: Backends that keep their data on this machine and need no account.
LOCAL_BACKENDS = ("csv", "tensorboard", "mlflow")


def split_names(text: str) -> list[str]:
    """Backend names from a comma-separated list, as ``unilog.init`` reads one:
    blanks around the names (``"csv, tensorboard"``) and empty entries ignored."""
    return [name.strip() for name in text.split(",") if name.strip()]


def default_backends() -> list[str]:
    """$UNILOG_BACKENDS if set, else every local backend that is registered and installed."""
    if os.environ.get("UNILOG_BACKENDS", "").strip():
        return split_names(os.environ["UNILOG_BACKENDS"])
    usable = []
    for name in LOCAL_BACKENDS:
        try:
            unilog.plugins.get_backend_class(name)
        except (unilog.BackendNotFound, unilog.BackendNotInstalled):
            continue
        usable.append(name)
    return usable


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; the defaults keep a CPU run under a minute."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--samples-every", type=int, default=2,
                        help="epochs between sample-prediction images")
    parser.add_argument("--hist-every", type=int, default=50,
                        help="steps between weight histograms")
    parser.add_argument("--backends", default=None, help="comma-separated, e.g. csv,tensorboard")
    parser.add_argument("--project", default="examples")
    parser.add_argument("--dir", default=None, help="root of the runs ($UNILOG_DIR, else ./runs)")
    return parser.parse_args(argv)


def setup_distributed() -> torch.device:
    """Join the torchrun process group when there is one; returns this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1:
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        if cuda:
            torch.cuda.set_device(local_rank)
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
        return torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    return torch.device("cuda" if cuda else "cpu")


def main(argv: list[str] | None = None) -> Path | None:
    """Train, log, reload the best checkpoint; returns the run directory (None on ranks > 0)."""
    args = parse_args(argv)
    device = setup_distributed()
    config = {"epochs": args.epochs, "batch_size": args.batch_size, "seed": args.seed,
              "optim": {"name": "adam", "lr": args.lr},
              "samples_every": args.samples_every, "hist_every": args.hist_every}
    backends = split_names(args.backends) if args.backends else default_backends()
    try:
        # Under torchrun, init gives ranks > 0 a disabled run (rank_zero_only=True).
        with unilog.init(project=args.project, config=config, dir=args.dir,
                         backends=backends, tags=["example"]) as run:
            train(config, run, device)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if run.dir is not None:
        print_where_to_look(run, backends)
    return run.dir


def command(name: str) -> str:
    """How to call the console script ``name`` from the user's shell.

    ``make run`` runs this file with ``.venv/bin/python`` from a shell where the
    virtualenv is not activated, so ``unilog`` or ``tensorboard`` alone would be
    "command not found" there: when the script that sits beside this Python is not
    the one the shell's PATH finds, print its path (relative to the current folder
    when under it) instead of its bare name.
    """
    script = Path(sys.executable).with_name(name)
    found = shutil.which(name)
    # The same folder, not the same file: the virtualenv's python is a link to the
    # system's, which a bare "python" would run without unilog installed.
    if not script.exists() or (found and Path(found).parent.resolve() == script.parent.resolve()):
        return name
    try:
        return str(script.relative_to(Path.cwd()))
    except ValueError:
        return str(script)


def print_where_to_look(run: unilog.Run, backends: list[str]) -> None:
    """Tell the user how to open what each backend wrote, with commands that work
    as printed in the shell this was started from."""
    python = command(Path(sys.executable).name)
    print(f"run {run.id} logged to {run.dir} with {', '.join(backends)}")
    print(f"  local record:  {command('unilog')} show {run.dir}")
    print(f"                 {python} -c \"import unilog; print(unilog.read_run('{run.dir}')"
          ".metrics.tail())\"")
    info = unilog.read_run(run.dir).manifest.get("backends", {})
    if "tensorboard" in info:
        print(f"  TensorBoard:   {command('tensorboard')} --logdir {run.dir / 'tensorboard'}")
    if "mlflow" in info:
        uri = info["mlflow"].get("info", {}).get("tracking_uri", "")
        print(f"  MLflow:        {command('mlflow')} ui --backend-store-uri {uri}")
    activate = Path(python).with_name("activate")
    if python != Path(sys.executable).name and activate.exists():
        print(f"  (or activate the virtualenv first: source {activate}, then the bare names)")


if __name__ == "__main__":
    main()
