# Source: SwanLab Quick Start, "5. Complete code":
#   https://docs.swanlab.cn/en/guide_cloud/general/quick-start.html
#   (github.com/SwanHubX/SwanLab-Docs, en/guide_cloud/general/quick-start.md), verbatim.
# Changed line: `import swanlab` -> `import unilog as swanlab` (the only change).
import unilog as swanlab
import random

# Initialize SwanLab
run = swanlab.init(
    # Set project
    project="my-project",
    # Track hyperparameters and experiment metadata
    config={
        "learning_rate": 0.01,
        "epochs": 10,
    },
)

print(f"Learning rate is {run.config.learning_rate}")

offset = random.random() / 5

# Simulate training process
for epoch in range(2, run.config.epochs):
    acc = 1 - 2**-epoch - random.random() / epoch - offset
    loss = 2**-epoch + random.random() / epoch + offset
    print(f"epoch={epoch}, accuracy={acc}, loss={loss}")
    # Record metrics
    swanlab.log({"accuracy": acc, "loss": loss})
