# W&B's Hydra guide (https://docs.wandb.ai/guides/integrations/hydra), as written
# there, with one line changed: `import wandb` -> `import unilog as wandb`.
# No version_base: Hydra changes the working directory to each job's folder.
import hydra
import omegaconf

import unilog as wandb


class Model:
    def __init__(self, hidden, layers):
        self.hidden, self.layers = hidden, layers


@hydra.main(config_path="configs/", config_name="defaults")
def run_experiment(cfg):
    wandb.config = omegaconf.OmegaConf.to_container(
        cfg, resolve=True, throw_on_missing=True
    )
    wandb.init(entity=cfg.wandb.entity, project=cfg.wandb.project)
    model = Model(**wandb.config.model.configs)
    for step in range(cfg.steps):
        loss = 1.0 / (step + 1) / model.hidden
        wandb.log({"loss": loss})
    wandb.finish()


if __name__ == "__main__":
    run_experiment()
