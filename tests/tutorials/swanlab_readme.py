# Source: SwanLab README, "Integrate SwanLab into your code":
#   https://github.com/SwanHubX/SwanLab#readme, verbatim.
# Changed line: `import swanlab` -> `import unilog as swanlab` (the only change).
import unilog as swanlab

# Initialize a new SwanLab experiment
swanlab.init(
    project="my-first-ml",
    config={'learning-rate': 0.003},
)

# Log metrics
for i in range(10):
    swanlab.log({"loss": i, "acc": i})
