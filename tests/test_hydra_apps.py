"""Hydra apps as users write them, with only their import changed.

- W&B's and SwanLab's Hydra guides (``tests/hydra_apps/*_tutorial``): a ``wandb:``
  or ``swanlab:`` group read by the app itself, ``import unilog as wandb``; run
  on all six backends offline and read back through each backend's own reader.
- Apps without ``version_base`` (Hydra changes directory into each job's
  folder) still put every run in one ``runs/`` beside where they were launched.
- ``unilog.hydra.init`` with no ``logger`` node, or with a ``wandb:``/``swanlab:``
  group (known keys mapped, unknown keys named).
- A Lightning app whose logger node has ``_target_: unilog.lightning.UnilogLogger``:
  a multirun's group and job names, ``.hydra/`` kept, and a disabled logger
  writing nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import unilog
import unilog.hydra

from .conftest import subprocess_env
from .test_contract import READERS, _reader

hydra = pytest.importorskip("hydra")
OmegaConf = pytest.importorskip("omegaconf").OmegaConf

APPS = Path(__file__).parent / "hydra_apps"
SIX = ",".join(READERS)  # csv, tensorboard, mlflow, wandb, swanlab, neptune


def run_app(app: str, launch: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """``python tests/hydra_apps/<app>/app.py ARGS`` launched from ``launch``."""
    launch.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, str(APPS / app / "app.py"), *args], cwd=launch,
                          env=subprocess_env(UNILOG_MODE="offline", **env),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def runs_under(root: Path) -> list[Path]:
    """Every run directory (a folder with run.json) anywhere under ``root``."""
    return sorted(m.parent for m in root.rglob("run.json"))


# -- the settings node ------------------------------------------------------------------


def test_without_a_logger_node_every_setting_takes_its_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = OmegaConf.create({"lr": 0.1, "model": {"hidden": 4}})
    assert unilog.hydra.settings_from_hydra(cfg) == {}
    with unilog.hydra.init(cfg, mode="offline") as run:
        run.log({"loss": 1.0})
    data = unilog.read_run(run.dir)
    assert data.config == {"lr": 0.1, "model": {"hidden": 4}}
    assert set(data.manifest["backends"]) == {"csv"} and run.dir.parent.parent == tmp_path / "runs"
    with pytest.raises(unilog.ConfigError, match="no 'logger' node"):  # named: must exist
        unilog.hydra.settings_from_hydra(cfg, node="logger")


def test_a_wandb_group_maps_wandbs_keys_and_names_an_unknown_one(monkeypatch):
    cfg = OmegaConf.create({"wandb": {"entity": "team", "project": "p", "name": "n",
                                      "job_type": "train", "tags": ["a"], "mode": "dryrun",
                                      "group": None, "notes": "${lr}"}, "lr": 0.5})
    assert unilog.hydra.settings_from_hydra(cfg) == {
        "entity": "team", "project": "p", "name": "n", "job_type": "train", "tags": ["a"],
        "mode": "dryrun", "notes": 0.5, "backends": ["wandb"]}
    monkeypatch.setenv("UNILOG_BACKENDS", "csv,tensorboard")  # the user's choice wins
    assert "backends" not in unilog.hydra.settings_from_hydra(cfg)
    bad = OmegaConf.create({"wandb": {"project": "p", "anonymous": "allow", "log_model": True}})
    with pytest.raises(unilog.ConfigError, match=r"wandb\.anonymous, wandb\.log_model are not "
                                                 r"a unilog\.init setting.*job_type"):
        unilog.hydra.settings_from_hydra(bad)
    # a logger node is unilog's own, and wins over a tracker's group
    both = OmegaConf.create({"logger": {"project": "mine"}, "wandb": {"project": "theirs"}})
    assert unilog.hydra.settings_from_hydra(both) == {"project": "mine"}
    with pytest.raises(unilog.ConfigError, match=r"logger\.job_type is not"):
        unilog.hydra.settings_from_hydra(OmegaConf.create({"logger": {"job_type": "x"}}))


def test_a_swanlab_group_starts_a_run_with_swanlabs_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = OmegaConf.create({"swanlab": {"project": "sl", "experiment_name": "exp",
                                        "description": "about", "backends": ["csv"]}})
    with unilog.hydra.init(cfg, mode="local") as run:  # SwanLab's "local" is offline
        run.log({"acc": 0.5})
    data = unilog.read_run(run.dir)
    assert (data.manifest["name"], data.manifest["notes"], run.mode) == ("exp", "about",
                                                                        "offline")
    assert run.project == "sl"


# -- the W&B and SwanLab Hydra guides, import swapped, on six backends ------------------


def assert_series_in_every_backend(run_dir: Path, key: str, expected: list[tuple[int, float]]):
    for name in READERS:
        got = _reader(name)(run_dir)["series"][key]
        assert [step for step, _ in got] == [step for step, _ in expected], name
        assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6), name


def test_wandbs_hydra_guide_puts_every_job_in_one_runs_folder_on_six_backends(tmp_path):
    launch = tmp_path / "launch"
    run_app("wandb_tutorial", launch, UNILOG_BACKENDS=SIX)
    run_app("wandb_tutorial", launch, "-m", "model.configs.hidden=8,16", "steps=3",
            UNILOG_BACKENDS="csv")
    runs = runs_under(tmp_path)
    assert len(runs) == 3 and {r.parent for r in runs} == {launch / "runs" / "hydra-tutorial"}
    assert (launch / "outputs").is_dir() and (launch / "multirun").is_dir()  # Hydra's own
    (single,) = [r for r in runs if set(unilog.read_run(r).manifest["backends"]) != {"csv"}]
    data = unilog.read_run(single)
    # wandb.config = OmegaConf.to_container(cfg) before init became the run's config
    assert data.config["model"] == {"configs": {"hidden": 32, "layers": 2}}
    assert data.config["wandb"] == {"entity": "my-team", "project": "hydra-tutorial"}
    assert_series_in_every_backend(single, "loss", [(s, 1 / (s + 1) / 32) for s in range(5)])
    for name in READERS:
        assert _reader(name)(single)["config"]["model/configs/hidden"] == "32", name
    hidden = sorted(unilog.read_run(r).config["model"]["configs"]["hidden"]
                    for r in runs if r != single)
    assert hidden == [8, 16]


def test_swanlabs_hydra_guide_on_six_backends(tmp_path):
    launch = tmp_path / "launch"
    run_app("swanlab_tutorial", launch, "lr=0.2", UNILOG_BACKENDS=SIX)
    (run_dir,) = runs_under(tmp_path)
    assert run_dir.parent == launch / "runs" / "hydra-swanlab"
    data = unilog.read_run(run_dir)
    assert data.manifest["name"] == "baseline" and data.config["lr"] == 0.2
    assert_series_in_every_backend(run_dir, "acc",
                                   [(e, 1 - 0.5 ** (e + 1) * 0.2) for e in range(4)])


# -- UnilogLogger built by hydra.utils.instantiate ---------------------------------------


@pytest.mark.slow
def test_an_instantiated_lightning_logger_gets_the_multiruns_group_names_and_hydra_config(
        tmp_path):
    pytest.importorskip("lightning")
    launch = tmp_path / "launch"
    run_app("lightning_app", launch, "-m", "lr=0.1,0.2",
            "hydra.sweep.dir=multirun/day/time")
    run_dirs = runs_under(tmp_path)
    assert {r.parent for r in run_dirs} == {launch / "runs" / "lit-hydra"}
    runs = [unilog.read_run(r) for r in run_dirs]
    assert {r.manifest["group"] for r in runs} == {"app-day-time"}
    assert {r.manifest["name"] for r in runs} == {"lr=0.1", "lr=0.2"}
    for data in runs:
        lr = float(data.manifest["name"].split("=")[1])
        assert data.status == "finished" and data.config["lr"] == lr  # the model's hparams
        (artifact,) = [a for a in data.artifacts if a.name == unilog.hydra.HYDRA_ARTIFACT]
        job = OmegaConf.load(Path(artifact.download()) / "config.yaml")
        assert job.lr == lr  # this job's own .hydra/config.yaml


@pytest.mark.slow
def test_a_disabled_lightning_logger_writes_nothing(tmp_path):
    pytest.importorskip("lightning")
    launch = tmp_path / "launch"
    proc = run_app("lightning_app", launch, "logger.mode=disabled")
    assert not (launch / "runs").exists() and runs_under(tmp_path) == []
    checkpoint = Path(proc.stdout.split("CKPT ")[1].split()[0])
    assert checkpoint.is_file() and (launch / "outputs") in checkpoint.parents
