# Source: W&B Quickstart as it read in 2024, "Assemble the components" (train.py):
#   https://docs.wandb.ai/quickstart (github.com/wandb/docs, content/en/guides/quickstart.md
#   before the move to models/quickstart.mdx), verbatim.
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
# train.py
import unilog as wandb
import random

wandb.login()

epochs = 10
lr = 0.01

run = wandb.init(
    project="my-awesome-project",    # Specify your project
    config={                         # Track hyperparameters and metadata
        "learning_rate": lr,
        "epochs": epochs,
    },
)

offset = random.random() / 5
print(f"lr: {lr}")

# Simulate a training run
for epoch in range(2, epochs):
    acc = 1 - 2**-epoch - random.random() / epoch - offset
    loss = 2**-epoch + random.random() / epoch + offset
    print(f"epoch={epoch}, accuracy={acc}, loss={loss}")
    wandb.log({"accuracy": acc, "loss": loss})

# run.log_code()
