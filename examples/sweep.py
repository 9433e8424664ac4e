"""The W&B sweeps tutorial's exercise with unilog: the digits CNN, searched with Optuna.

    python examples/sweep.py                       # bayes, 6 trials, csv backend
    python examples/sweep.py --count 3 --method random --backends csv,tensorboard
    unilog sweep show SWEEP_ID --project digits-sweep   # the table, best first, and a plot

The configuration is W&B's, as the tutorial writes it: minimise ``val_loss``
(the digits example logs it as ``val/loss``, the last value of a run being the
trial's), over the batch size, the number of epochs, and a learning rate drawn
log-uniformly between exp(min) and exp(max). Every trial is an ordinary unilog
run in ``runs/digits-sweep/`` (grouped under the sweep's id); the sweep itself
lives in ``runs/digits-sweep/sweeps/<id>/``. See docs/sweeps.md.
"""

from __future__ import annotations

import argparse
import math

import torch

import unilog
from digits import train  # examples/ is on sys.path when this file is run as a script

PROJECT = "digits-sweep"


def sweep_configuration(method: str) -> dict:
    """The tutorial's sweep, on the digits example's keys."""
    return {
        "name": "digits-sweep",
        "method": method,
        "metric": {"name": "val/loss", "goal": "minimize"},
        "parameters": {
            "batch_size": {"values": [16, 32, 64]},
            "epochs": {"values": [2, 3, 5]},
            # log_uniform takes exponents: lr between exp(-9.21) = 1e-4 and exp(-2.30) = 0.1
            "lr": {"distribution": "log_uniform", "min": math.log(1e-4), "max": math.log(0.1)},
        },
    }


def make_trial(backends: list[str] | None, device: torch.device):
    """The function the agent calls once per trial."""

    def trial() -> None:
        defaults = {"seed": 0, "samples_every": 100, "hist_every": 1000, "optimizer": "adam"}
        with unilog.init(config=defaults, backends=backends) as run:  # the trial's config
            c = run.config
            train({"epochs": c.epochs, "batch_size": c.batch_size, "seed": c.seed,
                   "samples_every": c.samples_every, "hist_every": c.hist_every,
                   "optim": {"name": c.optimizer, "lr": c.lr}}, run, device)

    return trial


def main(argv: list[str] | None = None) -> None:
    """Create the sweep, run ``--count`` trials in this process, print the best one."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=6, help="trials to run (default 6)")
    parser.add_argument("--method", default="bayes", choices=("bayes", "random", "grid"))
    parser.add_argument("--backends", help="comma-separated (default: $UNILOG_BACKENDS, "
                                           "else csv)")
    args = parser.parse_args(argv)
    backends = args.backends.split(",") if args.backends else None
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = sweep_configuration(args.method)
    if args.method == "grid":  # a grid enumerates values: the learning rate gets a few
        config["parameters"]["lr"] = {"values": [1e-3, 3e-3, 1e-2]}
    sweep_id = unilog.sweep(sweep=config, project=PROJECT)
    unilog.agent(sweep_id, function=make_trial(backends, device), count=args.count,
                 project=PROJECT)
    best = unilog.read_sweep(sweep_id, project=PROJECT).best
    print(f"sweep {sweep_id}: best trial {best.number}, val_loss {best.value:.4f} with "
          f"{best.params}\n  its run: {best.run_dir}\n  all trials: unilog sweep show "
          f"{sweep_id} --project {PROJECT}")


if __name__ == "__main__":
    main()
