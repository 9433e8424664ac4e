# Source: SwanLab "Create an Experiment", "Best Practices":
#   https://docs.swanlab.cn/en/guide_cloud/experiment_track/create-experiment.html
#   (github.com/SwanHubX/SwanLab-Docs, en/guide_cloud/experiment_track/create-experiment.md),
#   verbatim.
# Changed line: `import swanlab` -> `import unilog as swanlab` (the only change).
import unilog as swanlab

config = dict(
    learning_rate=1e-4, optimizer="Adam", architecture="Transformer", dataset_id="cats-dogs-2024"
)

swanlab.init(
    project="cats-dogs-classification",
    experiment_name="ViT-Adam-1e-4",
    description="An experiment on cat-dog classification using the ViT model and Adam optimizer with a learning rate of 1e-4.",
    config=config,
)
