"""Hydra and OmegaConf: settings from a config node, the example app's logger group,
overrides that reach every backend, single runs and sweeps of the real app."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import unilog
import unilog.hydra
from unilog._settings import construct_backend, parse_backends
from unilog.plugins import get_backend_class

from .conftest import REPO, subprocess_env
from .readers import read_mlflow, read_tensorboard

hydra = pytest.importorskip("hydra")
OmegaConf = pytest.importorskip("omegaconf").OmegaConf

APP = REPO / "examples" / "hydra_app.py"
CONF = REPO / "examples" / "conf"
OFFLINE = {"wandb", "swanlab", "neptune", "all"}


def compose(*overrides: str):
    """The example app's config, composed by Hydra with ``overrides``."""
    from hydra import compose as hydra_compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return hydra_compose(config_name="config", overrides=list(overrides))


def assert_plain(value, where="options"):
    """Fails on anything but plain dicts, lists and scalars, naming where it is."""
    if isinstance(value, dict):
        assert type(value) is dict, where
        for key, item in value.items():
            assert_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        assert type(value) in (list, tuple), where
        for i, item in enumerate(value):
            assert_plain(item, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), (where, type(value))


@pytest.mark.parametrize("option, backends", [
    ("default", ["csv", "tensorboard", "mlflow"]),
    ("csv", ["csv"]),
    ("tensorboard", ["tensorboard"]),
    ("mlflow", ["mlflow"]),
    ("wandb", ["wandb"]),
    ("swanlab", ["swanlab"]),
    ("neptune", ["neptune"]),
    ("all", ["csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune"]),
])
def test_each_logger_option_selects_its_backends(option, backends, runs_dir):
    settings = unilog.hydra.settings_from_hydra(compose(f"logger={option}"))
    assert settings["project"] == "digits-hydra"
    assert settings["dir"] == str(runs_dir)  # ${oc.env:UNILOG_DIR,runs}, resolved
    assert settings.get("mode") == ("offline" if option in OFFLINE else None)
    assert_plain(settings, "settings")
    parsed = parse_backends(settings["backends"])
    assert [name for name, _ in parsed] == backends
    for name, options in parsed:  # every option the file sets is one the backend takes
        construct_backend(get_backend_class(name), options)


def test_overrides_reach_the_config_of_every_backend(runs_dir):
    cfg = compose("logger=default", "optim.lr=0.05", "batch_size=16",
                  "+peak_lr=${optim.lr}", "+logger.tags=[hydra,lr_${optim.lr}]")
    run = unilog.hydra.init(cfg)
    run.log({"x": 1})
    run.finish()
    assert unilog.hydra.log_hydra_config(run) is None  # Hydra is not running here
    data = unilog.read_run(run.dir)
    assert data.config["optim"] == {"name": "adam", "lr": 0.05}
    assert data.config["batch_size"] == 16
    assert data.config["peak_lr"] == 0.05  # an interpolation is logged as its value
    assert data.config["logger"]["project"] == "digits-hydra"
    assert data.manifest["tags"] == ["hydra", "lr_0.05"]
    assert [a.name for a in data.artifacts] == []
    for reader in (read_tensorboard, read_mlflow):
        config = reader(run.dir)["config"]
        assert (config["optim/lr"], config["peak_lr"], config["batch_size"]) == (
            "0.05", "0.05", "16"), reader.__name__


def test_settings_from_hydra_names_an_unknown_key_and_a_missing_node():
    with pytest.raises(unilog.ConfigError, match=r"logger\.bakends is not a unilog\.init "
                                                 r"setting.*backends"):
        unilog.hydra.settings_from_hydra(compose("+logger.bakends=[csv]"))
    # instantiate's keys are not unilog settings, but one node may serve both
    settings = unilog.hydra.settings_from_hydra(compose("+logger._target_=x.Logger"))
    assert "_target_" not in settings and settings["backends"] == ["csv", "tensorboard", "mlflow"]
    with pytest.raises(unilog.ConfigError, match="no 'tracker' node"):
        unilog.hydra.settings_from_hydra(compose(), node="tracker")
    with pytest.raises(unilog.ConfigError, match="'epochs' node must be a mapping"):
        unilog.hydra.settings_from_hydra(compose(), node="epochs")


def test_init_takes_a_logger_node_with_listconfig_backends_and_options(tmp_path, recorded):
    cfg = OmegaConf.create({
        "lr": 0.1,
        "logger": {
            "project": "omega",
            "tags": ["a", "lr=${lr}"],
            "backends": [
                {"name": "recorder", "label": "omega", "fetchable": {"m:v0": {"lr": "${lr}"}}},
                {"name": "tensorboard", "logdir": str(tmp_path / "tb-${logger.project}")},
            ],
        },
    })
    run = unilog.init(**cfg.logger, config=cfg)
    run.log({"loss": 0.5})
    run.finish()
    data = unilog.read_run(run.dir)
    assert data.status == "finished" and data.manifest["tags"] == ["a", "lr=0.1"]
    assert recorded["omega"]["rows"] == [(0, {"loss": 0.5})]
    assert list((tmp_path / "tb-omega").glob("events.out.tfevents.*"))  # option resolved
    # Options reach each backend as plain dicts and lists, interpolations resolved.
    parsed = parse_backends(cfg.logger.backends)
    assert_plain(parsed)
    assert parsed[0] == ("recorder", {"label": "omega", "fetchable": {"m:v0": {"lr": 0.1}}})


def test_backends_as_a_dictconfig_mapping_and_wandb_settings_as_a_plain_dict():
    cfg = OmegaConf.create({"backends": {"csv": None, "wandb": {
        "mode": "offline", "settings": {"x_disable_stats": True}}}})
    parsed = parse_backends(cfg.backends)
    assert parsed == [("csv", {}), ("wandb", {"mode": "offline",
                                              "settings": {"x_disable_stats": True}})]
    assert_plain(parsed)
    # wandb checks that settings is a dict: a DictConfig would be refused here.
    backend = construct_backend(get_backend_class("wandb"), parsed[1][1])
    assert backend.settings == {"x_disable_stats": True}


def test_log_hydra_config_is_none_when_hydra_writes_no_output_subdir():
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = hydra_compose(config_name="config", overrides=["hydra.output_subdir=null"],
                            return_hydra_config=True)
    run = unilog.init(backends=["csv"])
    HydraConfig.instance().set_config(cfg)  # what Hydra does when it starts a job
    try:
        assert HydraConfig.initialized()
        assert unilog.hydra.log_hydra_config(run) is None
    finally:
        HydraConfig.instance().cfg = None
        run.finish()
    assert unilog.read_run(run.dir).artifacts == []


def test_instantiate_a_lightning_logger_from_the_logger_node(runs_dir):
    pytest.importorskip("lightning")
    from hydra.utils import instantiate

    cfg = compose("logger=csv", "optim.lr=0.04", "+logger._target_=unilog.lightning.UnilogLogger")
    settings = unilog.hydra.settings_from_hydra(cfg)
    loggers = [instantiate({"_target_": "unilog.lightning.UnilogLogger", **settings},
                           _partial_=True)(config=cfg),
               instantiate(cfg.logger, _partial_=True)(config=cfg)]
    for logger in loggers:
        assert type(logger).__name__ == "UnilogLogger"
        logger.log_metrics({"loss": 0.5}, step=0)
        run_dir = logger.experiment.dir
        logger.finalize("success")
        data = unilog.read_run(run_dir)
        assert data.status == "finished" and data.config["optim"]["lr"] == 0.04
        assert data.manifest["project"] == "digits-hydra"


def test_import_unilog_imports_neither_hydra_nor_omegaconf(tmp_path):
    code = textwrap.dedent("""
        import json, sys
        import unilog
        run = unilog.init(project="p", backends=[{"name": "csv"}], tags=["t"], config={"a": 1})
        run.finish()
        print(json.dumps([m for m in ("unilog.hydra", "hydra", "omegaconf") if m in sys.modules]))
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=subprocess_env(UNILOG_DIR=str(
        tmp_path)), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def run_app(*args: str) -> subprocess.CompletedProcess:
    """The example Hydra app in a child process; fails the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, str(APP), *args], env=subprocess_env(),
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def hydra_files(data) -> dict[str, str]:
    """The run's hydra-config artifact, downloaded: ``{file name: text}``."""
    (artifact,) = [a for a in data.artifacts if a.name == "hydra-config"]
    assert artifact.type == "config"
    folder = Path(artifact.download())
    return {p.name: p.read_text() for p in folder.iterdir()}


@pytest.mark.slow
def test_app_single_run_with_a_logger_option_and_an_override(tmp_path):
    run_app("logger=csv", "optim.lr=0.02", "epochs=1", f"dir={tmp_path}",
            f"hydra.run.dir={tmp_path / 'hydra-run'}")
    (manifest,) = (tmp_path / "digits-hydra").glob("*/run.json")
    data = unilog.read_run(manifest.parent)
    assert data.status == "finished"
    assert set(data.manifest["backends"]) == {"csv"}
    assert data.config["optim"]["lr"] == 0.02 and data.config["logger"]["backends"] == ["csv"]
    assert data.manifest["name"] == "epochs=1,logger=csv,optim.lr=0.02"  # dir= is excluded
    assert data.manifest.get("group") is None
    files = hydra_files(data)
    assert set(files) == {"config.yaml", "hydra.yaml", "overrides.yaml"}
    assert OmegaConf.create(files["config.yaml"]).optim.lr == 0.02
    assert "optim.lr=0.02" in files["overrides.yaml"]
    assert (tmp_path / "hydra-run" / ".hydra" / "config.yaml").exists()
    assert data.summary["reloaded_val_acc"] == pytest.approx(data.summary["best_val_acc"])


@pytest.mark.slow
def test_app_multirun_makes_one_finished_run_per_job_in_one_group(tmp_path):
    sweep = tmp_path / "sweep"
    proc = run_app("-m", "optim.lr=0.1,0.01", "epochs=1", "logger=csv", f"dir={tmp_path}",
                   f"hydra.sweep.dir={sweep}")
    assert "Launching 2 jobs" in proc.stdout + proc.stderr
    runs = [unilog.read_run(m.parent) for m in (tmp_path / "digits-hydra").glob("*/run.json")]
    assert len(runs) == 2
    assert all(r.status == "finished" for r in runs)
    assert {r.manifest["group"] for r in runs} == {f"hydra_app-{tmp_path.name}-sweep"}
    assert {r.manifest["name"] for r in runs} == {"epochs=1,logger=csv,optim.lr=0.1",
                                                  "epochs=1,logger=csv,optim.lr=0.01"}
    lrs = set()
    for data in runs:
        job_config = OmegaConf.create(hydra_files(data)["config.yaml"])
        assert job_config.optim.lr == data.config["optim"]["lr"]  # this job's own config
        lrs.add(job_config.optim.lr)
    assert lrs == {0.1, 0.01}
