# SwanLab's Hydra guide (https://docs.swanlab.cn/guide_cloud/integration/integration-hydra.html),
# as written there, with one line changed: `import swanlab` -> `import unilog as swanlab`.
import hydra
from omegaconf import DictConfig

import unilog as swanlab


@hydra.main(version_base=None, config_path="configs", config_name="defaults")
def main(cfg: DictConfig):
    swanlab.init(project=cfg.swanlab.project, experiment_name=cfg.swanlab.experiment_name,
                 config=cfg)
    for epoch in range(cfg.epochs):
        swanlab.log({"acc": 1 - 0.5 ** (epoch + 1) * cfg.lr}, step=epoch)
    swanlab.finish()


if __name__ == "__main__":
    main()
