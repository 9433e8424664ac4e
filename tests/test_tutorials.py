"""The vendors' own tutorials, with one line changed: ``import wandb`` becomes
``import unilog as wandb`` (``import swanlab`` becomes ``import unilog as swanlab``).

Each script in ``tests/tutorials/`` is the tutorial's code as its documentation has
it; its first lines say where it comes from and which line changed. Each runs as a
real script (``python <script>``) in a child process, with every backend at once
(``UNILOG_BACKENDS=csv,tensorboard,mlflow,wandb,swanlab,neptune``), offline, in a
temporary working directory, MLflow in its default store under the runs folder.
The test then reads every run back through each backend's own reader
(``tests/readers*.py``; the local record through ``unilog.read_run``) and checks
the tutorial's config, series (steps and values) and artifacts in all six.

The tutorials draw from ``random`` without seeding it: the child seeds the global
``random`` with :data:`SEED` at start-up (a ``sitecustomize`` module, so the script
itself stays untouched) and each test recomputes the values the tutorial logged.

Adding a tutorial: drop the script in ``tests/tutorials/`` (first lines: a comment
with its source and the changed line), then write one test::

    @tutorial("vendor_page.py", files={"data.csv": b"..."})   # files: in its cwd
    def test_vendor_page(runs):          # runs: its run directories, oldest first
        (run_dir,) = runs
        assert_run(run_dir, project="p", config={...}, series={"loss": [(0, 1.0)]})

``runs`` comes from the module's runner, which runs the selected tests' tutorials
two at a time (each starts a logging process that imports five SDKs: seconds of
CPU). ``run_tutorial(script, tmp_path)`` runs one directly, and
``read_all(run_dir)`` gives every backend's reader output.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import unilog

from .conftest import REPO
from .readers import flat_config

pytestmark = pytest.mark.slow

TUTORIALS = Path(__file__).parent / "tutorials"
#: Every built-in backend, in the order unilog lists them.
BACKENDS = ("csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune")
#: The child's global ``random`` starts from this seed.
SEED = 20240607
#: A tutorial that runs longer than this fails (a hang must not block the suite).
TIMEOUT = 240
#: Tutorials running at once (CI has two cores; each one keeps about one busy);
#: $TUTORIALS_PARALLEL overrides.
PARALLEL = int(os.environ.get("TUTORIALS_PARALLEL") or min(2, os.cpu_count() or 1))

#: Each backend's reader: "module:function" under tests/.
READERS = {"csv": "test_contract:read_csv", "tensorboard": "readers:read_tensorboard",
           "mlflow": "readers:read_mlflow", "wandb": "readers_wandb:read_wandb",
           "swanlab": "readers_swanlab:read_swanlab", "neptune": "readers_neptune:read_neptune"}


@functools.cache
def no_network() -> tuple[str, ...]:
    """``("unshare", "-n")`` where this machine lets a process have a network of its
    own (none: not even loopback), so a tutorial that tried to reach a server would
    fail here; else nothing (offline mode alone keeps the backends off the network)."""
    unshare = shutil.which("unshare")
    try:
        ok = unshare is not None and subprocess.run(
            [unshare, "-n", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (unshare, "-n") if ok else ()


SITECUSTOMIZE = """\
import os
import random

random.seed(int(os.environ["TUTORIAL_SEED"]))
"""


# -- running a tutorial ---------------------------------------------------------------------


def tutorial_env(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: this one without unilog's settings or an MLflow
    tracking URI, then every backend, offline, under ``root / "runs"``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UNILOG_", "MLFLOW_TRACKING_", "WANDB_", "SWANLAB_",
                                "NEPTUNE_"))}
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE, encoding="utf-8")
    env.update({
        "UNILOG_BACKENDS": ",".join(BACKENDS), "UNILOG_MODE": "offline",
        "UNILOG_DIR": str(root / "runs"), "TUTORIAL_SEED": str(SEED),
        "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]),
        # nothing leaves this machine: telemetry off in every SDK that has it
        "DO_NOT_TRACK": "1", "MLFLOW_DISABLE_TELEMETRY": "true",
    })
    env.update(extra or {})
    return env


def run_tutorial(script: str, tmp_path: Path, env: dict[str, str] | None = None,
                 files: dict[str, bytes] | None = None,
                 timeout: float = TIMEOUT) -> list[Path]:
    """Run ``tests/tutorials/<script>`` as ``python <script>`` in ``tmp_path / "work"``
    (holding ``files`` first), every backend offline, runs under ``tmp_path / "runs"``.

    Fails (AssertionError, with the child's output) on a non-zero exit or a timeout.
    Returns the run directories the tutorial made, oldest first.
    """
    work = tmp_path / "work"
    work.mkdir(parents=True)
    for name, data in (files or {}).items():
        (work / name).write_bytes(data)
    started = time.monotonic()
    try:
        proc = subprocess.run([*no_network(), sys.executable, str(TUTORIALS / script)],
                              cwd=work, env=tutorial_env(tmp_path, env),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{script} ran past {timeout}s:\n{exc.stdout}\n{exc.stderr}")
    took = time.monotonic() - started
    (tmp_path / "output.txt").write_text(
        f"{script}: exit {proc.returncode} after {took:.1f}s\n{proc.stdout}\n{proc.stderr}",
        encoding="utf-8")
    assert proc.returncode == 0, (f"{script} exited {proc.returncode} after {took:.1f}s:\n"
                                  f"{proc.stdout}\n{proc.stderr}")
    return run_dirs(tmp_path / "runs")


def run_dirs(root: Path) -> list[Path]:
    """Every run directory under ``root``, by creation time."""
    manifests = [(json.loads(p.read_text(encoding="utf-8")), p.parent)
                 for p in root.glob("*/*/run.json")]
    return [path for _, path in sorted(manifests, key=lambda found: found[0]["created"])]


def manifest(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "run.json").read_text(encoding="utf-8"))


def read_all(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{backend: its reader's output}`` for every backend the run had:
    ``{"config", "series", "artifacts", "tags", ...}`` each (tests/readers.py)."""
    out = {}
    for name in manifest(run_dir)["backend_names"]:
        module, function = READERS[name].split(":")
        out[name] = getattr(importlib.import_module(f"tests.{module}"), function)(run_dir)
    return out


# -- the runner: each selected test's tutorial, two at a time ---------------------------------


@dataclass(frozen=True)
class Tutorial:
    script: str
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def tutorial(script: str, files: dict[str, bytes] | None = None,
             env: dict[str, str] | None = None):
    """This test checks ``tests/tutorials/<script>``: its runs come in the ``runs`` fixture."""
    def mark(test):
        test.tutorial = Tutorial(script, dict(files or {}), dict(env or {}))
        return test
    return mark


@pytest.fixture(scope="module")
def runner(request, tmp_path_factory):
    """``{script: Future of its run directories}``: the tutorials of this module's
    selected tests, started at once in test order, :data:`PARALLEL` at a time."""
    module = sys.modules[__name__]
    wanted = {}
    for item in request.session.items:
        spec = getattr(getattr(item, "function", None), "tutorial", None)
        if getattr(item, "module", None) is module and spec is not None:
            wanted.setdefault(spec.script, spec)
    pool = ThreadPoolExecutor(PARALLEL, thread_name_prefix="tutorial")
    futures: dict[str, Future] = {
        spec.script: pool.submit(run_tutorial, spec.script,
                                 tmp_path_factory.mktemp(Path(spec.script).stem),
                                 env=spec.env, files=spec.files)
        for spec in wanted.values()}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def runs(request, runner) -> list[Path]:
    """The run directories of this test's tutorial (``@tutorial(...)``), oldest first."""
    return runner[request.function.tutorial.script].result()


# -- what a run must hold -------------------------------------------------------------------

#: Counts in a backend's finish report that must stay 0 for a clean run.
PROBLEMS = ("skipped", "failed", "failed_values", "errors", "fallback", "collisions",
            "dropped", "undelivered")
def assert_finished(run_dir: Path, project: str, name: str | None = None) -> dict[str, Any]:
    """The run ended well, every backend had all of it; returns its manifest."""
    m = manifest(run_dir)
    assert (m["project"], m["status"], m["exit_code"], m["mode"]) == (
        project, "finished", 0, "offline"), m
    assert m["backend_names"] == list(BACKENDS)
    for backend in BACKENDS:
        report = m["backends"][backend]
        problems = {k: report[k] for k in PROBLEMS if report.get(k)}
        assert not problems and not report["disabled"] and not report["timed_out"], (
            f"run {run_dir} backend {backend}: {problems}, disabled={report['disabled']!r}, "
            f"timed_out={report['timed_out']}; what unilog said:\n{said(run_dir)}")
    if name is not None:
        assert m["name"] == name
    return m


def said(run_dir: Path) -> str:
    """unilog's own lines in the output of the tutorial that made ``run_dir``."""
    output = run_dir.parents[2] / "output.txt"
    if not output.is_file():
        return "(no output.txt)"
    text = output.read_text(encoding="utf-8", errors="replace")
    return "\n".join(line for line in text.splitlines() if "unilog" in line) or text[-3000:]


def assert_run(run_dir: Path, project: str, config: dict[str, Any] | None = None,
               series: dict[str, list[tuple[int, float]]] | None = None,
               artifacts: dict[str, dict[str, str]] | None = None,
               name: str | None = None, mlflow_config: dict[str, Any] | None = None,
               unordered: frozenset[str] = frozenset()) -> dict[str, dict[str, Any]]:
    """``run_dir`` finished cleanly and every backend's own reader gives back
    ``config`` (exactly, flattened as the readers compare it), ``series`` (each
    ``[(step, value)]``, exactly these steps) and ``artifacts`` (``{"name:vN":
    {path: sha256}}``, exactly these). ``mlflow_config``: keys whose MLflow param
    keeps its first value (MLflow params cannot change; the new value goes to a tag).
    ``unordered``: backends whose reader returns a series' points in no set order
    (compared sorted by step). Returns every reader's output."""
    assert_finished(run_dir, project, name)
    data = read_all(run_dir)
    assert set(data) == set(BACKENDS)
    data_csv = unilog.read_run(run_dir)
    for backend, got in data.items():
        if config is not None:
            want = flat_config({**config, **(mlflow_config or {})} if backend == "mlflow"
                               else config)
            assert got["config"] == want, backend
        for key, points in (series or {}).items():
            assert key in got["series"], (backend, key, sorted(got["series"]))
            logged = got["series"][key]
            if backend in unordered:
                logged = sorted(logged, key=lambda point: point[0])
            steps = [s for s, _ in logged]
            assert steps == [s for s, _ in points], (backend, key)
            assert [v for _, v in logged] == pytest.approx(
                [v for _, v in points], rel=1e-6), (backend, key)
        if series is not None:
            assert set(got["series"]) == set(series), backend
        if artifacts is not None:
            assert got["artifacts"] == artifacts, backend
    if config is not None:  # the local record keeps the values themselves, not strings
        assert data_csv.config == config
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seeded() -> random.Random:
    """The child's global ``random``, as it starts."""
    return random.Random(SEED)


def wandb_run_record(run_dir: Path):
    """The run record of the run's wandb offline file (entity, project, job type...)."""
    from .readers_wandb import wandb_records

    (path,) = Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb")
    return next(r.run for r in wandb_records(path) if r.WhichOneof("record_type") == "run")


def simulated_training(rng: random.Random, epochs: int, divisor=None):
    """acc and loss of the quickstarts' loop (``offset`` drawn first, then two draws
    an epoch); ``divisor(epoch)`` is what the tutorial divides by (default: epoch)."""
    divisor = divisor or (lambda epoch: epoch)
    offset = rng.random() / 5
    acc, loss = [], []
    for step, epoch in enumerate(range(2, epochs)):
        d = divisor(epoch)
        acc.append((step, 1 - 2**-d - rng.random() / d - offset))
        loss.append((step, 2**-d + rng.random() / d + offset))
    return acc, loss


# -- W&B ------------------------------------------------------------------------------------


@tutorial("wandb_quickstart.py")
def test_wandb_quickstart(runs):
    """wandb.login(), ``with wandb.init(...) as run``, run.log (docs.wandb.ai quickstart)."""
    (run_dir,) = runs
    # The page computes with config['epochs'] (10) where it means epoch: kept as written.
    acc, loss = simulated_training(seeded(), 10, divisor=lambda epoch: 10)
    assert_run(run_dir, "my-awesome-project", config={"epochs": 10, "lr": 0.01},
               series={"accuracy": acc, "loss": loss}, artifacts={})


@tutorial("wandb_quickstart_2024.py")
def test_wandb_quickstart_2024(runs):
    """run = wandb.init(...), module-level wandb.log, no finish: it ends with the script."""
    (run_dir,) = runs
    acc, loss = simulated_training(seeded(), 10)
    assert_run(run_dir, "my-awesome-project", config={"learning_rate": 0.01, "epochs": 10},
               series={"accuracy": acc, "loss": loss}, artifacts={})


@tutorial("wandb_quickstart_2023.py")
def test_wandb_quickstart_2023(runs):
    """Module-level wandb.init, wandb.log and wandb.finish."""
    (run_dir,) = runs
    acc, loss = simulated_training(seeded(), 10)
    assert_run(run_dir, "my-awesome-project",
               config={"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100",
                       "epochs": 10},
               series={"acc": acc, "loss": loss}, artifacts={})


@tutorial("wandb_starter_snippet.py")
def test_wandb_starter_snippet(runs):
    """``wandb.init(entity=..., project=..., config=...)``, run.log, run.finish()."""
    (run_dir,) = runs
    acc, loss = simulated_training(seeded(), 10)
    assert_run(run_dir, "my-awesome-project",
               config={"learning_rate": 0.02, "architecture": "CNN", "dataset": "CIFAR-100",
                       "epochs": 10},
               series={"acc": acc, "loss": loss}, artifacts={})
    record = wandb_run_record(run_dir)
    assert (record.entity, record.project) == ("my-awesome-team-name", "my-awesome-project")


@tutorial("wandb_registry_quickstart.py")
def test_wandb_registry_quickstart(runs):
    """``with wandb.init(project=, entity=, config=)``, run.log, then a model file as
    wandb.Artifact(..., description=) + add_file(local_path=) + artifact.save()."""
    (run_dir,) = runs
    rng = seeded()
    weights = rng.random()
    noise = rng.random() / 5
    epochs, losses = [], []
    for epoch in range(10):
        y_pred = (weights + noise) * 2 + rng.randint(-1, 1)
        epochs.append((epoch, epoch))
        losses.append((epoch, (weights + noise * 2 - y_pred) ** 2))
    assert_run(run_dir, "my-awesome-project", config={"epochs": 10, "learning_rate": 0.01},
               series={"epoch": epochs, "loss": losses},
               artifacts={"model-demo:v0": {"model.txt": sha256(str(weights).encode())}})
    assert wandb_run_record(run_dir).entity == "<Team_Entity>"
    (stored,) = unilog.read_run(run_dir).artifacts
    assert (stored.type, stored.metadata["description"]) == ("model", "My trained model")


@tutorial("wandb_config_experiment.py")
def test_wandb_config_experiment(runs):
    """argparse Namespace as config, wandb.config["key"], numpy ints logged, no finish."""
    (run_dir,) = runs
    rng = seeded()
    rows = {k: [] for k in ("epoch", "train_acc", "train_loss", "val_acc", "val_loss")}
    for step, epoch in enumerate(range(1, 50)):
        rows["epoch"].append((step, epoch))
        rows["train_acc"].append((step, 0.25 + ((epoch / 30) + (rng.random() / 10))))
        rows["train_loss"].append((step, 0.2 + (1 - ((epoch - 1) / 10 + rng.random() / 5))))
        rows["val_acc"].append((step, 0.1 + ((epoch / 20) + (rng.random() / 10))))
        rows["val_loss"].append((step, 0.25 + (1 - ((epoch - 1) / 10 + rng.random() / 6))))
    assert_run(run_dir, "config_example",
               config={"batch_size": 32, "epochs": 50, "learning_rate": 0.001},
               series=rows, artifacts={})


@tutorial("wandb_config_snippets.py")
def test_wandb_config_snippets(runs):
    """wandb.config[...] = and .attr = after init, then a second wandb.init and
    wandb.config.update on it: two runs (unilog's second init is a second run, as
    wandb's is; the first ends with the script)."""
    first, second = runs
    config = {"hidden_layer_sizes": [32, 64], "kernel_sizes": [3], "activation": "ReLU",
              "pool_sizes": [2], "dropout": 0.2, "num_classes": 10, "epochs": 4,
              "batch_size": 32}
    assert_run(first, "config_example", config=config, series={}, artifacts={},
               mlflow_config={"dropout": 0.5})  # MLflow params keep their first value
    assert_run(second, "default",
               config={"epochs": 4, "batch_size": 32, "lr": 0.1, "channels": 16},
               series={}, artifacts={})


@tutorial("wandb_define_metric.py")
def test_wandb_define_metric(runs):
    """wandb.define_metric(key, summary="min"/"max") (the page seeds random itself)."""
    (run_dir,) = runs
    rng = random.Random(1)
    loss, acc = [], []
    for i in range(10):
        loss.append((i, rng.uniform(0, 1 / (i + 1))))
        acc.append((i, rng.uniform(1 / (i + 1), 1)))
    assert_run(run_dir, "default", config={}, series={"loss": loss, "acc": acc},
               artifacts={})
    summary = unilog.read_run(run_dir).summary  # both definitions of each key add up
    assert summary["loss"] == {"min": min(v for _, v in loss), "max": max(v for _, v in loss)}
    assert summary["acc"] == {"min": min(v for _, v in acc), "max": max(v for _, v in acc)}


@tutorial("wandb_multiple_runs.py")
def test_wandb_multiple_runs(runs):
    """``run = wandb.init(reinit=True)`` ten times, logging through wandb.log then
    through ``with run:``: twenty runs, each finished before the next starts."""
    assert len(runs) == 20
    for i, run_dir in enumerate(runs):
        x = i % 10
        data = assert_run(run_dir, "default", config={},
                          series={"metric": [(y, x + y) for y in range(100)]}, artifacts={})
        assert len(data["csv"]["series"]["metric"]) == 100
    manifests = [manifest(r) for r in runs]
    for earlier, later in zip(manifests, manifests[1:]):
        assert earlier["ended"] <= later["created"]  # reinit=True finished the previous one


@tutorial("wandb_sweeps_walkthrough.py")
def test_wandb_sweeps_walkthrough(runs):
    """wandb.sweep + wandb.agent(count=10); each trial reads wandb.config as an object
    (config.x, config.y) and logs its score: ten runs, each its own parameters."""
    assert len(runs) == 10
    for run_dir in runs:
        params = unilog.read_run(run_dir).config
        assert set(params) == {"x", "y"}, params
        assert 0.01 <= params["x"] <= 0.1 and params["y"] in (1, 3, 7), params
        assert_run(run_dir, "my-first-sweep", config=params,
                   series={"score": [(0, params["x"] ** 3 + params["y"])]}, artifacts={})


@tutorial("wandb_concurrent_runs.py")
def test_wandb_concurrent_runs(runs):
    """reinit="create_new": a primary run stays open while two sub-runs come and go."""
    tracking, training_1, training_2 = runs
    assert_run(tracking, "my_project", name="tracking_run", config={},
               series={"eval_loss": [(0, 0.27), (1, 0.27)],
                       "eval_accuracy": [(0, 0.91), (1, 0.91)]}, artifacts={})
    for run_dir, name in ((training_1, "training_1"), (training_2, "training_2")):
        assert_run(run_dir, "my_project", name=name, config={},
                   series={"train_loss": [(0, 0.42)]}, artifacts={})
    m = {r: manifest(r) for r in runs}
    assert m[tracking]["created"] < m[training_1]["ended"] <= m[training_2]["created"]
    assert m[training_2]["ended"] <= m[tracking]["ended"]  # open all along


DATASET = b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 8  # stands in for dataset.h5


@tutorial("wandb_artifacts_walkthrough.py", files={"dataset.h5": DATASET})
def test_wandb_artifacts_walkthrough(runs):
    """wandb.Artifact + add_file(local_path=) + run.log_artifact in one run (job_type
    "upload-dataset"); run.use_artifact("bicycle-dataset:latest").download() in the next."""
    upload, training = runs
    assert_run(upload, "artifacts-example", config={}, series={},
               artifacts={"bicycle-dataset:v0": {"dataset.h5": sha256(DATASET)}})
    assert_run(training, "artifacts-example", config={}, series={}, artifacts={})
    assert wandb_run_record(upload).job_type == "upload-dataset"
    assert wandb_run_record(training).job_type == "training"
    (stored,) = unilog.read_run(upload).artifacts
    assert (stored.name, stored.type, stored.aliases) == ("bicycle-dataset", "dataset",
                                                          ["latest"])
    downloaded = upload / "artifacts" / "bicycle-dataset" / "v0" / "files" / "dataset.h5"
    assert downloaded.read_bytes() == DATASET  # what artifact.download() gave the 2nd run


@tutorial("wandb_save_and_load_model.py")
def test_wandb_save_and_load_model(runs):
    """A torch state_dict logged as artifact my_model, then reloaded through
    use_artifact("my_model:latest") and, from another project, through
    use_artifact("model-training/my_model:v0", type="model")."""
    train, evaluate, other_project = runs
    weights = (train.parent.parent.parent / "work" / "model.pt").read_bytes()
    assert weights[:2] == b"PK"  # torch.save's zip format
    assert_run(train, "model-training", config={}, series={},
               artifacts={"my_model:v0": {"model.pt": sha256(weights)}})
    assert_run(evaluate, "model-training", config={}, series={}, artifacts={})
    assert_run(other_project, "model-evaluation", config={}, series={}, artifacts={})
    downloaded = train / "artifacts" / "my_model" / "v0" / "files" / "model.pt"
    assert downloaded.read_bytes() == weights
    for backend, got in read_all(train).items():  # each backend holds the same bytes
        assert got["artifacts"]["my_model:v0"]["model.pt"] == sha256(weights), backend


@tutorial("wandb_use_artifact_own_project.py", files={"model.h5": b"weights"})
def test_wandb_use_artifact_own_project(runs):
    """run.use_artifact("my-project/artifact:latest", type="model") in project my-project."""
    logged, used = runs
    assert_run(logged, "my-project", config={}, series={},
               artifacts={"artifact:v0": {"model.h5": sha256(b"weights")}})
    assert_run(used, "my-project", config={}, series={}, artifacts={})


# -- SwanLab --------------------------------------------------------------------------------


@tutorial("swanlab_quickstart.py")
def test_swanlab_quickstart(runs):
    """run = swanlab.init(...), run.config.learning_rate / .epochs, swanlab.log, no finish."""
    (run_dir,) = runs
    acc, loss = simulated_training(seeded(), 10)
    assert_run(run_dir, "my-project", config={"learning_rate": 0.01, "epochs": 10},
               series={"accuracy": acc, "loss": loss}, artifacts={})


@tutorial("swanlab_readme.py")
def test_swanlab_readme(runs):
    """A config key that is no identifier ('learning-rate'), ints logged."""
    (run_dir,) = runs
    assert_run(run_dir, "my-first-ml", config={"learning-rate": 0.003},
               series={"loss": [(i, i) for i in range(10)],
                       "acc": [(i, i) for i in range(10)]}, artifacts={})


@tutorial("swanlab_experiment.py")
def test_swanlab_experiment(runs):
    """swanlab.init(experiment_name=..., description=...): unilog's name and notes."""
    (run_dir,) = runs
    assert_run(run_dir, "cats-dogs-classification", name="ViT-Adam-1e-4",
               config={"learning_rate": 1e-4, "optimizer": "Adam",
                       "architecture": "Transformer", "dataset_id": "cats-dogs-2024"},
               series={}, artifacts={})
    assert manifest(run_dir)["notes"] == (
        "An experiment on cat-dog classification using the ViT model and Adam optimizer "
        "with a learning rate of 1e-4.")


@tutorial("swanlab_config.py")
def test_swanlab_config(runs):
    """swanlab.config[...], .get(), .attr, then [...] =, .attr = and .set() after init."""
    (run_dir,) = runs
    assert_run(run_dir, "config_example",
               config={"hidden_layer_sizes": [64, 128], "activation": "ELU", "dropout": 0.8,
                       "num_classes": 10, "optimizer": "Adam", "batch_normalization": True,
                       "seq_length": 100, "epochs": 20, "batch_size": 32},
               mlflow_config={"dropout": 0.5}, series={}, artifacts={})


@tutorial("swanlab_resume.py")
def test_swanlab_resume(runs):
    """run.finish(), then swanlab.init(resume=True, id=run.id): the same run goes on,
    its steps after the first session's."""
    (run_dir,) = runs
    # Each session is a Neptune offline run folder, run__<random uuid>__...: the
    # reader (tests/readers_neptune.py) reads them in name order, so in no set order.
    assert_run(run_dir, "default", config={},
               series={"loss": [(0, 2), (1, 0.2)], "acc": [(0, 0.4), (1, 0.9)]},
               artifacts={}, unordered=frozenset({"neptune"}))
    assert len(list((run_dir / "neptune" / "offline").glob("run__*"))) == 2
    assert manifest(run_dir)["step"] == 2
