# Source: W&B "Sweeps walkthrough" (the sweeps quickstart) as it read in 2024, with
#   wandb.init, wandb.config and wandb.log: https://docs.wandb.ai/guides/sweeps/walkthrough
#   (github.com/wandb/docs; today models/sweeps/walkthrough.mdx, written with run.config),
#   verbatim.
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
# Import the W&B Python Library and log into W&B
import unilog as wandb

wandb.login()

# 1: Define objective/training function
def objective(config):
    score = config.x**3 + config.y
    return score

def main():
    wandb.init(project="my-first-sweep")
    score = objective(wandb.config)
    wandb.log({"score": score})

# 2: Define the search space
sweep_configuration = {
    "method": "random",
    "metric": {"goal": "minimize", "name": "score"},
    "parameters": {
        "x": {"max": 0.1, "min": 0.01},
        "y": {"values": [1, 3, 7]},
    },
}

# 3: Start the sweep
sweep_id = wandb.sweep(sweep=sweep_configuration, project="my-first-sweep")

wandb.agent(sweep_id, function=main, count=10)
