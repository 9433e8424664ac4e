"""The digits example as a Hydra app: backends and hyperparameters from the command line.

    python examples/hydra_app.py                              # logger=default: csv, tensorboard, mlflow
    python examples/hydra_app.py logger=wandb optim.lr=0.01   # another backend, another lr
    python examples/hydra_app.py -m optim.lr=0.1,0.01         # a sweep: one run per job, one group
    python examples/hydra_app.py logger.dir=/tmp/runs         # the unilog dir (or dir=... for
                                                              # Hydra's folders too)

The config is ``conf/config.yaml``; the ``logger`` group (``conf/logger/``)
holds unilog's settings. ``unilog.hydra.init`` starts the run with them, logs
the whole resolved config, and logs this job's ``.hydra/`` folder as the
``hydra-config`` artifact. See docs/hydra.md.
"""

from __future__ import annotations

import hydra
import torch
from omegaconf import DictConfig

import unilog.hydra
from digits import train  # examples/ is on sys.path when this file is run as a script


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    """Train the digits CNN with ``cfg``; returns the best val accuracy (what a sweeper
    such as Optuna's would optimise)."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with unilog.hydra.init(cfg) as run:
        best = train(cfg, run, device)
    print(f"run {run.id} ({run.name}) in {run.dir}: best val acc {best:.4f}")
    return best


if __name__ == "__main__":
    main()
