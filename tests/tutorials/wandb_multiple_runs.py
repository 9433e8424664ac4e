# Source: W&B support, "How do I launch multiple runs from one script?":
#   https://docs.wandb.ai/support/launch_multiple_runs_one_script (github.com/wandb/docs,
#   content/en/support/kb-articles/launch_multiple_runs_one_script.md). Its two snippets,
#   one after the other, verbatim.
# Changed line: `import wandb` -> `import unilog as wandb` (the only change).
import unilog as wandb

for x in range(10):
    run = wandb.init(reinit=True)
    for y in range(100):
        wandb.log({"metric": x + y})
    run.finish()

for x in range(10):
    run = wandb.init(reinit=True)
    with run:
        for y in range(100):
            run.log({"metric": x + y})
