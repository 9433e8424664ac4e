"""UnilogLogger against Lightning's own logger contract.

The scenarios of Lightning's generic logger tests (``tests_pytorch/loggers/
test_all.py`` and ``test_logger.py``, Lightning 2.6), written again for
UnilogLogger: a second ``fit`` with the same logger, ``validate``/``test``
after ``fit``, pickling (also under ``ddp_spawn``), ``prefix``, LightningCLI.
Where Lightning's CSVLogger keeps something, UnilogLogger must keep it too:
those tests run both loggers in the same scenario and compare. Everything is
read back from real backends (the local record and TensorBoard).
"""

from __future__ import annotations

import csv
import inspect
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("lightning")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.loggers import CSVLogger  # noqa: E402

import unilog  # noqa: E402
from unilog.lightning import UnilogLogger  # noqa: E402

from .conftest import REPO, subprocess_env  # noqa: E402
from .lightning_model import STEPS_PER_EPOCH, TinyClassifier, loaders, trainer  # noqa: E402
from .readers import read_tensorboard  # noqa: E402

pytestmark = [
    # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API,
    # and about the few workers a test DataLoader has: neither is ours to fix.
    pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning"),
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval.*"),
]


def fit(logger, epochs=2, **kwargs):
    """Fit TinyClassifier with a new Trainer; returns (trainer, model, val loader)."""
    torch.manual_seed(0)
    train, val = loaders()
    model = TinyClassifier()
    t = trainer(logger, epochs=epochs, **kwargs)
    t.fit(model, train, val)
    return t, model, val


def csv_logger_rows(logger: CSVLogger) -> list[dict[str, str]]:
    """What Lightning's CSVLogger wrote: one dict per row of its metrics.csv."""
    logger.save()
    with open(Path(logger.log_dir) / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def csv_series(rows: list[dict[str, str]], key: str) -> list[tuple[int, float]]:
    """``[(step, value), ...]`` of one key in CSVLogger's rows."""
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def tb_event_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.rglob("*tfevents*"))


# -- B1: a second fit with the same logger keeps every value ---------------------------


# Stage 2 saves into the same checkpoint folder as stage 1, as it does with any logger.
@pytest.mark.filterwarnings("ignore:Checkpoint directory .* exists and is not empty")
def test_second_fit_with_the_same_logger_keeps_every_value(tmp_path):
    """Two-stage training, a new Trainer for stage 2: nothing overwrites stage 2's rows."""
    reference = CSVLogger(tmp_path / "pl")
    fit(reference)
    fit(reference)
    expected = csv_series(csv_logger_rows(reference), "train/loss")
    assert len(expected) == 2 * 2 * STEPS_PER_EPOCH  # Lightning's own logger keeps them all

    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard"])
    fit(logger)
    fit(logger)
    data = unilog.read_run(logger.log_dir)
    assert data.status == "finished"
    loss = data.series("train/loss")
    assert [v for _, v in loss] == pytest.approx([v for _, v in expected])
    steps = [s for s, _ in loss]
    # Stage 2 restarts Lightning's count at 0: its rows go after stage 1's, in order.
    assert steps == list(range(len(expected)))
    assert data.metrics["train/loss"].notna().sum() == len(expected)
    # Lightning's own step is kept beside the shifted rows.
    stage2 = data.metrics["trainer/global_step"].dropna()
    assert list(stage2.loc[steps[len(steps) // 2]:].astype(int).unique()) == list(
        range(2 * STEPS_PER_EPOCH))
    tb = read_tensorboard(Path(logger.log_dir))
    assert [s for s, _ in tb["series"]["train/loss"]] == steps


# -- B2: reading experiment after fit never reopens the run ----------------------------


def test_reading_experiment_after_fit_does_not_reopen_the_run():
    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard"])
    fit(logger, epochs=1)
    run_dir = Path(logger.log_dir)
    files = tb_event_files(run_dir)
    assert files

    experiment = logger.experiment
    assert experiment is logger.run and experiment.finished
    data = unilog.read_run(run_dir)
    assert data.status == "finished" and "resumes" not in data.manifest
    assert tb_event_files(run_dir) == files  # no backend opened a new run
    assert unilog.run is None  # nothing was made the current run either
    # The name and the folders are read without a run too.
    assert logger.name == "lit" and logger.version == run_dir.name

    # Logging through the logger is what continues the run.
    logger.log_metrics({"extra": 1.0}, step=100)
    assert unilog.read_run(run_dir).status == "running"
    logger.finalize("success")
    data = unilog.read_run(run_dir)
    assert data.status == "finished" and len(data.manifest["resumes"]) == 1
    assert data.series("extra") == [(100, 1.0)]


@pytest.mark.slow
@pytest.mark.parametrize("ending", ["raise", "os._exit"])
def test_after_fit_a_later_crash_leaves_the_run_finished(tmp_path, ending):
    """The training succeeded: what the script does after fit cannot change that."""
    end = {"raise": "raise RuntimeError('unrelated, after training')",
           "os._exit": "os._exit(3)"}[ending]
    script = textwrap.dedent(f"""
        import os, sys
        import torch
        from tests.lightning_model import TinyClassifier, loaders, trainer
        from unilog.lightning import UnilogLogger

        logger = UnilogLogger(project="crash", backends=["csv", "tensorboard"],
                              dir={str(tmp_path)!r})
        train, val = loaders()
        trainer(logger, epochs=1).fit(TinyClassifier(), train, val)
        print(logger.experiment.id, flush=True)  # read after finalize
        {end}
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == (1 if ending == "raise" else 3), proc.stderr[-3000:]
    (run_dir,) = (tmp_path / "crash").iterdir()
    data = unilog.read_run(run_dir)
    assert data.status == "finished", proc.stderr[-3000:]
    assert "resumes" not in data.manifest
    assert proc.stdout.strip() == run_dir.name


# -- B3: validate / test after fit log at Lightning's step ------------------------------


def test_validate_and_test_after_fit_log_at_the_fits_last_step(tmp_path):
    def stages(logger):
        t, model, val = fit(logger)
        t.validate(model, val, verbose=False)
        t.test(model, val, verbose=False)

    reference = CSVLogger(tmp_path / "pl")
    stages(reference)
    rows = csv_logger_rows(reference)
    val_steps = [s for s, _ in csv_series(rows, "val/acc")]
    test_steps = [s for s, _ in csv_series(rows, "test/acc")]
    last = 2 * STEPS_PER_EPOCH  # Lightning's step once fit is done
    assert val_steps == [STEPS_PER_EPOCH - 1, last - 1, last] and test_steps == [last]

    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard"])
    stages(logger)
    data = unilog.read_run(logger.log_dir)
    assert data.status == "finished" and len(data.manifest["resumes"]) == 2
    assert [s for s, _ in data.series("val/acc")] == val_steps
    assert [s for s, _ in data.series("test/acc")] == test_steps
    assert "trainer/global_step" not in data.metrics  # nothing was moved
    tb = read_tensorboard(Path(logger.log_dir))
    assert [s for s, _ in tb["series"]["val/acc"]] == val_steps
    assert [s for s, _ in tb["series"]["test/acc"]] == test_steps


def test_fit_then_test_records_lightnings_steps():
    """test_all.py's fit-and-test scenario: one batch each, the test at step 1."""
    logger = UnilogLogger(project="lit")
    t, model, val = fit(logger, epochs=1, limit_train_batches=1, limit_val_batches=1)
    t.test(model, val, verbose=False)
    data = unilog.read_run(logger.log_dir)
    assert [s for s, _ in data.series("train/loss")] == [0]
    assert [s for s, _ in data.series("val/acc")] == [0]
    assert [s for s, _ in data.series("test/acc")] == [1]
    assert data.status == "finished"


class StepKeyModel(TinyClassifier):
    """test_logger.py's step-key scenario: the module logs its own ``step`` at epoch ends."""

    logged = 0

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        pass

    def on_train_epoch_end(self):
        self.logged += 1
        self.log_dict({"step": float(self.logged), "train_acc": self.logged / 10})

    def on_validation_epoch_end(self):
        self.logged += 1
        self.log_dict({"step": float(self.logged), "val_acc": self.logged / 10})


def test_a_logged_step_key_is_the_step(tmp_path):
    def steps(logger):
        train, val = loaders()
        trainer(logger, epochs=3, num_sanity_val_steps=0).fit(StepKeyModel(), train, val)

    reference = CSVLogger(tmp_path / "pl")
    steps(reference)
    rows = csv_logger_rows(reference)
    logger = UnilogLogger(project="lit")
    steps(logger)
    data = unilog.read_run(logger.log_dir)
    for key in ("train_acc", "val_acc"):
        assert data.series(key) == csv_series(rows, key)
    assert [s for s, _ in data.series("val_acc")] == [1, 3, 5]


class QuietHparams(TinyClassifier):
    """test_logger.py's scenario: ``save_hyperparameters(logger=False)``."""

    def __init__(self):
        super().__init__()
        self.save_hyperparameters(logger=False)


def test_hyperparameters_saved_without_the_logger_stay_out_of_the_run():
    logger = UnilogLogger(project="lit", config={"data": "random"})
    train, val = loaders()
    trainer(logger, epochs=1).fit(QuietHparams(), train, val)
    assert unilog.read_run(logger.log_dir).config == {"data": "random"}


# -- B4: pickling --------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "unilog"])
def test_logger_and_trainer_pickle(tmp_path, kind):
    """test_all.py's pickle scenario: a used logger, pickled alone and in a Trainer."""
    logger = CSVLogger(tmp_path / "pl") if kind == "csv" else UnilogLogger(project="pkl")
    _ = logger.experiment
    logger.log_metrics({"a": 1})
    logger.save()
    pickle.dumps(logger)
    t = pl.Trainer(max_epochs=1, logger=logger, enable_progress_bar=False,
                   enable_model_summary=False)
    copy = pickle.loads(pickle.dumps(t)).logger
    copy.log_metrics({"acc": 1.0})
    assert copy.name == logger.name and copy.save_dir == logger.save_dir
    assert copy.version == logger.version and copy.log_dir == logger.log_dir
    copy.finalize("success")
    if kind == "unilog":
        # The copy continued the very run the original had started.
        data = unilog.read_run(logger.log_dir)
        assert data.status == "finished"
        assert [k for k in ("a", "acc") if k in data.metrics] == ["a", "acc"]
        assert len(list(Path(logger.log_dir).parent.iterdir())) == 1


@pytest.mark.slow
def test_ddp_spawn_after_the_parent_used_the_logger():
    """log_hyperparams in the parent, then a ddp_spawn fit: rank 0 continues the run."""
    logger = UnilogLogger(project="spawn", backends=["csv", "tensorboard"])
    logger.log_hyperparams({"stage": "before fit"})
    fit(logger, epochs=1, devices=2, strategy="ddp_spawn")
    run_dir = Path(logger.log_dir)
    assert [p.name for p in run_dir.parent.iterdir()] == [run_dir.name]
    data = unilog.read_run(run_dir)
    assert data.status == "finished", data.manifest
    assert data.config["stage"] == "before fit" and data.config["hidden"] == 8
    # Each rank sees half of the data; rank 0 alone logs.
    assert data.metrics["train/loss"].notna().sum() == STEPS_PER_EPOCH // 2
    assert logger.run.finished  # the parent's run was handed over, not left open


# -- B5: prefix ----------------------------------------------------------------------


def test_prefix_like_the_built_in_loggers(tmp_path):
    reference = CSVLogger(tmp_path / "pl", prefix="tmp")
    reference.log_metrics({"test": 1.0}, step=0)
    assert "tmp-test" in csv_logger_rows(reference)[0]

    logger = UnilogLogger(project="lit", backends=["csv", "tensorboard"], prefix="tmp")
    logger.log_metrics({"test": 1.0}, step=0)
    logger.log_hyperparams({"lr": 0.1})  # hyperparameters keep their names
    logger.finalize("success")
    data = unilog.read_run(logger.log_dir)
    assert data.series("tmp-test") == [(0, 1.0)] and "test" not in data.metrics
    assert data.config == {"lr": 0.1}
    assert read_tensorboard(Path(logger.log_dir))["series"]["tmp-test"] == [(0, 1.0)]


def test_prefix_in_a_fit():
    logger = UnilogLogger(project="lit", prefix="stage1")
    fit(logger, epochs=1)
    keys = set(unilog.read_run(logger.log_dir).metrics)
    assert {"stage1-train/loss", "stage1-val/acc", "stage1-epoch"} <= keys
    assert not any(k.startswith(("train", "val")) for k in keys)


# -- B6: the constructor's signature and LightningCLI ------------------------------------


def test_constructor_names_every_init_argument():
    init = inspect.signature(unilog.init).parameters
    own = inspect.signature(UnilogLogger).parameters
    assert all(p.kind is not p.VAR_KEYWORD for p in own.values())  # no **kwargs
    for name, param in init.items():
        if name == "rank_zero_only" or param.kind is param.VAR_KEYWORD:
            continue  # Lightning decides the rank; other trackers' spellings are init's
        assert name in own, name
        assert own[name].default == param.default, name
    with pytest.raises(TypeError, match="bogus"):
        UnilogLogger(bogus=1)


# Lightning 2.6.6's CLI calls jsonargparse's add_instantiator, deprecated since 4.49.
@pytest.mark.filterwarnings("ignore::jsonargparse._deprecated.JsonargparseDeprecationWarning")
def test_lightning_cli_twice_in_one_folder(tmp_path, monkeypatch):
    pytest.importorskip("jsonargparse")
    from lightning.pytorch.cli import LightningCLI

    from .lightning_model import TinyData

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["cli"])  # pytest's own arguments are not for the CLI
    args = ["fit", "--trainer.logger=unilog.lightning.UnilogLogger",
            "--trainer.logger.dir=runs", "--trainer.logger.project=cli",
            "--trainer.logger.backends=[csv,tensorboard]", "--trainer.logger.tags=[a,b]",
            "--trainer.logger.mode=offline", "--trainer.max_epochs=1",
            "--trainer.accelerator=cpu", "--trainer.enable_progress_bar=false",
            "--trainer.enable_model_summary=false", "--trainer.log_every_n_steps=1",
            "--model.lr=0.05", "--seed_everything=0"]
    dirs = []
    for _ in range(2):
        cli = LightningCLI(TinyClassifier, TinyData, args=args)
        logger = cli.trainer.logger
        assert isinstance(logger, UnilogLogger)
        assert cli.trainer.log_dir == logger.log_dir  # not the runs root
        dirs.append(Path(logger.log_dir))
    assert dirs[0] != dirs[1] and dirs[0].parent == tmp_path / "runs" / "cli"
    assert not (tmp_path / "runs" / "config.yaml").exists()
    for run_dir in dirs:
        data = unilog.read_run(run_dir)
        assert data.status == "finished" and data.manifest["tags"] == ["a", "b"]
        assert data.config["lr"] == 0.05
        assert "lr: 0.05" in (run_dir / "config.yaml").read_text()  # LightningCLI's copy
        assert read_tensorboard(run_dir)["series"]["train/loss"]
