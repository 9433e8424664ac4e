# Source: W&B "Download and use artifacts", the project-qualified reference
#   run.use_artifact("my-project/artifact:alias"):
#   https://docs.wandb.ai/models/artifacts/download-and-use-an-artifact, with the
#   artifact logged as https://docs.wandb.ai/models/artifacts/construct-an-artifact
#   does. The project named is the run's own: W&B resolves <project>/<name>:<alias> in
#   any project, the run's own included (code resuming a run writes
#   run.use_artifact(f"{project}/model-{run.id}:latest", type="model")). model.h5 is a
#   file in the working directory, as in the page's own add_file example.
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
import unilog as wandb

run = wandb.init(project="my-project", job_type="train")
artifact = wandb.Artifact(name="artifact", type="model")
artifact.add_file(local_path="model.h5")
run.log_artifact(artifact)
run.finish()

run = wandb.init(project="my-project", job_type="evaluate")
artifact = run.use_artifact("my-project/artifact:latest", type="model")
datadir = artifact.download()
run.finish()
