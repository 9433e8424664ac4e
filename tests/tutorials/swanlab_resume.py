# Source: SwanLab API, swanlab.init, "Resume Training" test code:
#   https://docs.swanlab.cn/en/api/py-init.html (github.com/SwanHubX/SwanLab-Docs,
#   en/api/py-init.md), verbatim.
# Changed line: `import swanlab` -> `import unilog as swanlab` (the only change).
import unilog as swanlab

run = swanlab.init()
swanlab.log({"loss": 2, "acc": 0.4})
run.finish()

run = swanlab.init(resume=True, id=run.id)
swanlab.log({"loss": 0.2, "acc": 0.9})
