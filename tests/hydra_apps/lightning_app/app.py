# A Lightning + Hydra app in the style of the lightning-hydra-template: the
# logger is a config node with a `_target_`, built by `hydra.utils.instantiate`.
# No version_base: Hydra changes the working directory to each job's folder.
import sys
from pathlib import Path

import hydra
import lightning.pytorch as pl
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/ for the tiny model
from lightning_model import TinyClassifier, loaders  # noqa: E402


@hydra.main(config_path="configs", config_name="train")
def main(cfg):
    logger = instantiate(cfg.logger)
    trainer = pl.Trainer(max_epochs=1, logger=logger, enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=1)
    trainer.fit(TinyClassifier(lr=cfg.lr), *loaders())
    print("LOG_DIR", logger.log_dir, "CKPT", trainer.checkpoint_callback.best_model_path)


if __name__ == "__main__":
    main()
