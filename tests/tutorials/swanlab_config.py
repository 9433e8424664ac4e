# Source: SwanLab "Set Experiment Configuration":
#   https://docs.swanlab.cn/en/guide_cloud/experiment_track/set-experiment-config.html
#   (github.com/SwanHubX/SwanLab-Docs, en/guide_cloud/experiment_track/set-experiment-config.md).
#   Its "Set in init", value access and "Set at Different Locations in the Script"
#   snippets, in page order, as one script (one init: both snippets' init is the same
#   call). Two of the page's lines are typos that fail with SwanLab itself (0.10.3:
#   TypeError, a method is not subscriptable): `swanlab.config.get["activation"]` and
#   `swanlab.config.set["batch_size", 32]`; they are written here as SwanLab's config
#   spells those methods, `get("activation")` and `set("batch_size", 32)`.
# Changed line: `import swanlab` -> `import unilog as swanlab` (the only change otherwise).
import unilog as swanlab

# Define a config dictionary
config = {
  "hidden_layer_sizes": [64, 128],
  "activation": "ELU",
  "dropout": 0.5,
  "num_classes": 10,
  "optimizer": "Adam",
  "batch_normalization": True,
  "seq_length": 100,
}

# Pass the config dictionary when you initialize SwanLab
run = swanlab.init(project="config_example", config=config)

hidden_layer_sizes = swanlab.config["hidden_layer_sizes"]

activation = swanlab.config.get("activation")

dropout = swanlab.config.dropout

# Update config after initializing SwanLab
swanlab.config["dropout"] = 0.8
swanlab.config.epochs = 20
swanlab.config.set("batch_size", 32)
