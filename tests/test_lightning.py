"""UnilogLogger and the callbacks, driven by real Lightning fits on CPU and read
back from each backend's own storage (local record, TensorBoard, MLflow)."""

from __future__ import annotations

import signal
import subprocess
import sys
from argparse import Namespace

import pytest

pytest.importorskip("lightning")

import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

import unilog  # noqa: E402
from unilog.lightning import LogHistograms, LogPredictions, UnilogLogger  # noqa: E402

from .conftest import REPO, subprocess_env  # noqa: E402
from .lightning_model import STEPS_PER_EPOCH, TinyClassifier, loaders, trainer  # noqa: E402
from .readers import read_mlflow, read_tensorboard  # noqa: E402

pytestmark = [
    # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API,
    # and about the few workers a test DataLoader has: neither is ours to fix.
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval.*"),
]


def fit(logger, epochs=2, callbacks=(), model=None, **kwargs):
    """Fit TinyClassifier; returns the trainer."""
    torch.manual_seed(0)
    train, val = loaders()
    t = trainer(logger, epochs=epochs, callbacks=callbacks, **kwargs)
    t.fit(model or TinyClassifier(), train, val)
    return t


def checkpoint(**kwargs):
    return ModelCheckpoint(monitor="val/acc", mode="max", **kwargs)


def test_fit_reaches_every_backend_at_lightnings_steps(runs_dir):
    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard", "mlflow"],
                          config={"data": "random"}, log_checkpoints="best", tags=["lt"])
    fit(logger, epochs=2, callbacks=[checkpoint()])
    run_dir = runs_dir / "lit" / logger.version
    assert logger.log_dir == str(run_dir) and logger.name == "lit"
    # save_dir is the run directory: Lightning makes it trainer.log_dir.
    assert logger.save_dir == str(run_dir) and logger.root_dir == str(runs_dir / "lit")

    data = unilog.read_run(run_dir)
    assert data.status == "finished" and data.manifest["exit_code"] == 0
    # The constructor's config and the module's hparams, merged.
    assert data.config == {"data": "random", "hidden": 8, "lr": 0.1, "fail_at_step": -1,
                           "interrupt": False}
    steps = 2 * STEPS_PER_EPOCH
    loss = data.metrics["train/loss"].dropna()
    assert list(loss.index) == list(range(steps))  # one record per optimizer step
    val_steps = list(data.metrics["val/acc"].dropna().index)
    assert len(val_steps) == 2
    # The checkpoints went inside the run directory, where Lightning puts them for any
    # logger: <save_dir>/<name>/<version>/checkpoints.
    assert (run_dir / "lit" / logger.version / "checkpoints").is_dir()

    tb = read_tensorboard(run_dir)
    assert [s for s, _ in tb["series"]["train/loss"]] == list(range(steps))
    assert [s for s, _ in tb["series"]["val/acc"]] == val_steps
    assert tb["config"]["hidden"] == "8" and tb["config"]["data"] == "random"

    ml = read_mlflow(run_dir)
    assert [s for s, _ in ml["series"]["train/loss"]] == list(range(steps))
    assert [v for _, v in ml["series"]["train/loss"]] == pytest.approx(list(loss))
    assert ml["config"]["lr"] == "0.1" and ml["tags"] == {"lt"}
    assert set(ml["artifacts"]) == set(tb["artifacts"]) == {
        f"model:v{a.version}" for a in data.artifacts}
    best = next(a for a in data.artifacts if "best" in a.aliases)
    # MLflow keeps the aliases in a run tag: "best" points at the same version there.
    import json

    from mlflow.tracking import MlflowClient

    info = data.manifest["backends"]["mlflow"]["info"]
    tags = MlflowClient(info["tracking_uri"]).get_run(info["id"]).data.tags
    assert json.loads(tags["unilog.artifact.model"])["aliases"]["best"] == best.version
    assert best.metadata["monitor"] == "val/acc"
    assert best.metadata["score"] == pytest.approx(data.metrics["val/acc"].max())


def test_mlflow_status_follows_the_fit(runs_dir):
    from mlflow.tracking import MlflowClient

    def mlflow_status(logger):
        info = unilog.read_run(logger.log_dir).manifest["backends"]["mlflow"]["info"]
        return MlflowClient(info["tracking_uri"]).get_run(info["id"]).info.status

    ok = UnilogLogger(project="lit", backends=["mlflow"])
    fit(ok, epochs=1)
    assert mlflow_status(ok) == "FINISHED"

    broken = UnilogLogger(project="lit", backends=["mlflow"])
    with pytest.raises(RuntimeError, match="boom"):
        fit(broken, epochs=2, model=TinyClassifier(fail_at_step=STEPS_PER_EPOCH + 1))
    data = unilog.read_run(broken.log_dir)
    assert data.status == "failed" and data.manifest["exit_code"] == 1
    # Everything before the exception is kept.
    assert data.metrics["train/loss"].notna().sum() == STEPS_PER_EPOCH + 1
    assert mlflow_status(broken) == "FAILED"


def test_ctrl_c_in_training_ends_the_run_as_killed(runs_dir):
    logger = UnilogLogger(project="lit")
    previous = signal.getsignal(signal.SIGINT)
    try:
        # Lightning turns Ctrl-C into a graceful shutdown and sys.exit(1).
        with pytest.raises(SystemExit):
            fit(logger, model=TinyClassifier(fail_at_step=2, interrupt=True))
    finally:
        signal.signal(signal.SIGINT, previous)  # Lightning ignores SIGINT from then on
    data = unilog.read_run(logger.log_dir)
    assert data.status == "killed" and data.manifest["exit_code"] == 130


@pytest.mark.parametrize("mode, expected", [
    # (version, aliases) of the "model" artifact after two epochs where epoch 0 is best.
    ("best", [(0, ["best", "latest"])]),  # the newest version is always "latest"
    ("last", [(0, ["best"]), (1, ["latest"])]),
    ("all", [(0, ["best"]), (1, ["latest"])]),
    (False, []),
])
def test_checkpoint_modes(runs_dir, mode, expected):
    logger = UnilogLogger(project="ckpt", log_checkpoints=mode)
    fit(logger, epochs=2,
        callbacks=[ModelCheckpoint(monitor="val/falling", mode="max", save_top_k=2)])
    data = unilog.read_run(logger.log_dir)
    got = [(a.version, sorted(a.aliases)) for a in data.artifacts if a.name == "model"]
    assert got == expected
    for artifact in data.artifacts:
        # The artifact is the checkpoint itself: Lightning can load it back.
        ckpt = artifact.file()
        assert torch.load(ckpt, weights_only=False)["epoch"] == artifact.metadata["epoch"]


def test_best_mode_logs_each_new_best_as_it_is_saved(runs_dir):
    logger = UnilogLogger(project="ckpt", log_checkpoints="best")
    fit(logger, epochs=3, callbacks=[checkpoint()])
    data = unilog.read_run(logger.log_dir)
    acc = data.metrics["val/acc"].dropna().tolist()
    improvements = sum(1 for i, a in enumerate(acc) if a > max(acc[:i], default=-1))
    versions = [a for a in data.artifacts if a.name == "model"]
    assert len(versions) == improvements
    assert "best" in versions[-1].aliases
    scores = [a.metadata["score"] for a in versions]
    assert scores == sorted(set(scores))  # each version beat the one before


def test_beside_lightnings_own_logger(runs_dir, tmp_path):
    ours = UnilogLogger(project="lit")
    theirs = CSVLogger(tmp_path / "pl")
    fit([ours, theirs], epochs=1)
    import csv

    with open(theirs.log_dir + "/metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    their_loss = [float(r["train/loss"]) for r in rows if r["train/loss"]]
    our_loss = unilog.read_run(ours.log_dir).metrics["train/loss"].dropna().tolist()
    assert our_loss == pytest.approx(their_loss) and len(our_loss) == STEPS_PER_EPOCH


def test_fit_then_test_continues_the_same_run(runs_dir):
    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard"])
    t = fit(logger, epochs=1)
    assert unilog.read_run(logger.log_dir).status == "finished"
    _, val = loaders()
    t.test(t.lightning_module, val)
    data = unilog.read_run(logger.log_dir)
    assert data.status == "finished" and len(data.manifest["resumes"]) == 1
    # Lightning tests at its step count after fit: the step after the last one logged.
    assert list(data.metrics["test/acc"].dropna().index) == [STEPS_PER_EPOCH]
    assert "test/acc" in read_tensorboard(logger.log_dir)["series"]

    # A record behind the run's step (a new fit with this logger) is written at the
    # current step, Lightning's own step kept beside it: steps only go forward.
    logger.log_metrics({"late": 1.0}, step=1)
    logger.finalize("success")
    metrics = unilog.read_run(logger.log_dir).metrics
    (row,) = metrics["late"].dropna().index
    assert row > STEPS_PER_EPOCH and metrics.loc[row, "trainer/global_step"] == 1


@pytest.mark.parametrize("params", [
    {"lr": 0.5, "layers": {"n": 2}},
    Namespace(lr=0.5, layers={"n": 2}),
    "omegaconf",
    "attributedict",
])
def test_log_hyperparams_takes_every_form(runs_dir, params):
    if params == "omegaconf":
        from omegaconf import OmegaConf

        params = OmegaConf.create({"lr": 0.5, "base": 2, "layers": {"n": "${base}"}})
    elif params == "attributedict":
        from lightning.fabric.utilities.data import AttributeDict

        params = AttributeDict(lr=0.5, layers=AttributeDict(n=2))
    logger = UnilogLogger(project="hp", config={"seed": 1})
    logger.log_hyperparams(params)
    logger.experiment.finish()
    config = unilog.read_run(logger.log_dir).config
    assert config["seed"] == 1 and config["lr"] == 0.5 and config["layers"] == {"n": 2}


def test_log_metrics_takes_tensors_media_and_lightnings_float_step(runs_dir):
    logger = UnilogLogger(project="lm")
    logger.log_metrics({"loss": torch.tensor(0.25), "hist": unilog.Histogram([1, 2, 3])},
                       step=3)
    logger.log_metrics({"acc": torch.tensor(0.75)}, step=3.0)  # self.log("step", ...)
    with pytest.raises(unilog.ConfigError, match="whole number"):
        logger.log_metrics({"acc": 1.0}, step=3.5)
    logger.finalize("success")
    metrics = unilog.read_run(logger.log_dir).metrics
    assert metrics.loc[3, "loss"] == 0.25 and metrics.loc[3, "acc"] == 0.75
    assert metrics.loc[3, "hist"].endswith(".json")


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(unilog.ConfigError, match="log_checkpoints"):
        UnilogLogger(log_checkpoints="every")
    with pytest.raises(TypeError, match="backend_list"):
        UnilogLogger(backend_list=["csv"])


def test_callbacks_log_predictions_and_histograms(runs_dir):
    logger = UnilogLogger(project="cb", backends=["csv", "tensorboard"])
    fit(logger, epochs=2, callbacks=[LogPredictions(every_n_epochs=2, num_samples=3),
                                     LogHistograms(every_n_steps=3)])
    data = unilog.read_run(logger.log_dir)
    metrics = data.metrics
    # Epoch 0 only (every 2 epochs, sanity check skipped): 3 images and one table.
    images = [metrics[f"val/predictions/{i}"].dropna() for i in range(3)]
    assert [len(i) for i in images] == [1, 1, 1] and "val/predictions/3" not in metrics
    assert (data.path / images[0].iloc[0]).read_bytes()[:4] == b"\x89PNG"
    table = (data.path / metrics["val/predictions/table"].dropna().iloc[0]).read_text()
    assert table.splitlines()[0] == "sample,prediction,target,correct"
    assert len(table.splitlines()) == 4
    # Histograms at global steps 0, 3, 6 for each parameter and its gradient.
    for kind in ("weights", "gradients"):
        hist = metrics[f"{kind}/net.1.weight"].dropna()
        assert list(hist.index) == [0, 3, 6]
    tb = read_tensorboard(data.path)
    assert "val/predictions/0" not in tb["series"]  # images are not scalars


def test_callbacks_without_a_unilog_logger_warn_once(tmp_path):
    with pytest.warns(UserWarning, match="has none"):
        fit(CSVLogger(tmp_path), epochs=1, callbacks=[LogHistograms(every_n_steps=1)])


def test_hydra_instantiate_builds_the_logger(runs_dir):
    hydra_utils = pytest.importorskip("hydra.utils")
    from omegaconf import OmegaConf

    cfg = OmegaConf.create({
        "optim": {"lr": 0.01},
        "logger": {"_target_": "unilog.lightning.UnilogLogger", "project": "hy",
                   "backends": ["csv", {"name": "tensorboard", "queue_size": 1000}],
                   "tags": ["a", "b"], "log_checkpoints": "best"},
    })
    # instantiate's own first parameter is named config: the config goes in afterwards.
    logger = hydra_utils.instantiate(cfg.logger)
    assert isinstance(logger, UnilogLogger)
    logger.log_hyperparams(cfg)
    logger.log_metrics({"x": 1.0}, step=0)
    logger.finalize("success")
    data = unilog.read_run(logger.log_dir)
    assert data.config["optim"] == {"lr": 0.01} and data.manifest["tags"] == ["a", "b"]
    assert data.config["logger"]["backends"][1] == {"name": "tensorboard", "queue_size": 1000}
    assert read_tensorboard(logger.log_dir)["series"]["x"] == [(0, 1.0)]


@pytest.mark.slow
def test_ddp_on_two_processes_logs_one_run(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "lightning_model.py"),
                           str(tmp_path)], env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "ddp").iterdir())
    assert len(runs) == 1, runs  # rank 1 created nothing
    data = unilog.read_run(runs[0])
    assert data.status == "finished"
    # Each rank sees half the data: 2 steps per epoch each, logged once, by rank 0.
    assert data.metrics["train/loss"].notna().sum() == 2 * STEPS_PER_EPOCH // 2
    assert data.artifacts and "best" in data.artifacts[-1].aliases


@pytest.mark.slow
def test_lightning_example_end_to_end(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train_lightning.py"),
                           "--epochs", "2", "--backends", "csv,tensorboard", "--dir",
                           str(tmp_path)], env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "examples").iterdir()
    data = unilog.read_run(run_dir)
    assert data.status == "finished" and data.config["lr"] == 0.003
    steps_per_epoch = -(-1438 // 64)  # 1,438 training digits in batches of 64
    assert data.metrics["train/acc"].notna().sum() == 2 * steps_per_epoch
    # Two validations during fit, and one of the best checkpoint fetched back.
    val = data.metrics["val/acc"].dropna()
    assert len(val) == 3 and val.iloc[-1] == pytest.approx(val.iloc[:2].max())
    assert "best" in data.artifacts[-1].aliases
    assert (run_dir / data.metrics["val/predictions/0"].dropna().iloc[0]).exists()
    assert "tensorboard --logdir" in proc.stdout
