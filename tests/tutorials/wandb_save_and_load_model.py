# Source: composed (not one page) from the W&B docs' artifact snippets, each call as
#   they write it: wandb.Artifact(name=, type=), add_file(local_path=) and
#   run.log_artifact from https://docs.wandb.ai/models/artifacts/construct-an-artifact;
#   run.use_artifact("name:latest"), artifact.download() and use_artifact("<project>/
#   <name>:<alias>", type=) ("Use an artifact from a different project") from
#   https://docs.wandb.ai/models/artifacts/download-and-use-an-artifact; the model saved
#   and loaded as PyTorch's "Saving and loading models" tutorial does (state_dict).
# Changed line: `import wandb` -> `import unilog as wandb` (the only change from W&B code).
import os

import torch
import torch.nn as nn
import unilog as wandb

# Train (here: create) a model and save its weights.
model = nn.Linear(4, 2)
torch.save(model.state_dict(), "model.pt")

# Log the model as an artifact.
run = wandb.init(project="model-training", job_type="train")
artifact = wandb.Artifact(name="my_model", type="model")
artifact.add_file(local_path="model.pt")
run.log_artifact(artifact)
run.finish()

# Reload it in a later run of the same project.
run = wandb.init(project="model-training", job_type="evaluate")
artifact = run.use_artifact("my_model:latest")
path = artifact.download()
reloaded = nn.Linear(4, 2)
reloaded.load_state_dict(torch.load(os.path.join(path, "model.pt")))
run.finish()

# And from another project, by its project and version.
run = wandb.init(project="model-evaluation", job_type="evaluate")
artifact = run.use_artifact("model-training/my_model:v0", type="model")
path = artifact.download()
reloaded = nn.Linear(4, 2)
reloaded.load_state_dict(torch.load(os.path.join(path, "model.pt")))
run.finish()
