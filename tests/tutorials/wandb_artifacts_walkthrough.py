# Source: W&B "Tutorial: Create, track, and use a dataset artifact":
#   https://docs.wandb.ai/models/artifacts/artifacts-walkthrough (github.com/wandb/docs,
#   models/artifacts/artifacts-walkthrough.mdx). The page's script ("Putting this
#   together") then its "Download and use the artifact" snippet, verbatim. As the page
#   says, dataset.h5 is a file you have in the working directory.
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
import unilog as wandb

wandb.login()

with wandb.init(project="artifacts-example", job_type="upload-dataset") as run:
    artifact = wandb.Artifact(name="bicycle-dataset", type="dataset")
    artifact.add_file(local_path="dataset.h5")
    run.log_artifact(artifact)

# Create a W&B Run. Here you specify 'training' for 'type'
# because you use this run to track training.
with wandb.init(project="artifacts-example", job_type="training") as run:

  # Query W&B for an artifact and mark it as input to this run
  artifact = run.use_artifact("bicycle-dataset:latest")

  # Download the artifact's contents
  artifact_dir = artifact.download()
