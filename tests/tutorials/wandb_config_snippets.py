# Source: W&B "Configure experiments" as the page read in 2024 (wandb.config):
#   https://docs.wandb.ai/guides/track/config. Its snippets, in page order, verbatim:
#   "Set the configuration at initialization" (and reading the values back), "Set the
#   configuration throughout your script" (from its wandb.config lines, the page's init
#   being the same call as the first snippet's), and "update multiple values at a time".
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
import unilog as wandb

# Define a config dictionary object
config = {
    "hidden_layer_sizes": [32, 64],
    "kernel_sizes": [3],
    "activation": "ReLU",
    "pool_sizes": [2],
    "dropout": 0.5,
    "num_classes": 10,
}

# Pass the config dictionary when you initialize W&B
run = wandb.init(project="config_example", config=config)

# Access values with the key as the index value
hidden_layer_sizes = wandb.config["hidden_layer_sizes"]
kernel_sizes = wandb.config["kernel_sizes"]
activation = wandb.config["activation"]

# Python dictionary get() method
hidden_layer_sizes = wandb.config.get("hidden_layer_sizes")
kernel_sizes = wandb.config.get("kernel_sizes")
activation = wandb.config.get("activation")

# Update config after you initialize W&B
wandb.config["dropout"] = 0.2
wandb.config.epochs = 4
wandb.config["batch_size"] = 32

wandb.init(config={"epochs": 4, "batch_size": 32})
# later
wandb.config.update({"lr": 0.1, "channels": 16})
