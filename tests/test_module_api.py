"""The module-level API wandb and SwanLab users write: ``wandb.config.lr``,
``swanlab.config["lr"]``, ``wandb.summary[...]``, ``wandb.login()``, with
``import unilog as wandb`` as the only change (issue 14, first part)."""

from __future__ import annotations

import logging

import pytest

import unilog


def test_the_wandb_tutorial_style_runs_with_its_import_swapped(recorded):
    import unilog as wandb

    wandb.login()
    wandb.init(project="tutorial", config={"learning_rate": 0.01, "epochs": 3,
                                           "model": {"depth": 2}},
               backends={"csv": {}, "recorder": {"label": "wb"}}, mode="offline")
    lr, epochs = wandb.config.learning_rate, wandb.config["epochs"]
    assert (lr, epochs, wandb.config.get("dropout", 0.5)) == (0.01, 3, 0.5)
    assert wandb.config.model.depth == 2 and "epochs" in wandb.config
    wandb.config.update({"batch_size": 32})
    wandb.config.seed = 7
    for epoch in range(epochs):
        wandb.log({"loss": lr / (epoch + 1)})
    wandb.summary["best_loss"] = lr / 3
    wandb.summary.update({"epochs_run": epochs})
    run = wandb.run
    wandb.finish()
    got = recorded["wb"]
    assert got["config"][-1] == {"learning_rate": 0.01, "epochs": 3, "model": {"depth": 2},
                                 "batch_size": 32, "seed": 7}  # updates reach the backends
    assert got["summary"] == {"best_loss": pytest.approx(0.01 / 3), "epochs_run": 3}
    data = unilog.read_run(run.dir)
    assert data.config["batch_size"] == 32 and data.summary["best_loss"] == pytest.approx(0.01 / 3)
    assert [s for s, _ in data.series("loss")] == [0, 1, 2]


def test_swanlab_style_item_access():
    import unilog as swanlab

    run = swanlab.init(project="sl", config={"lr": 0.1}, mode="offline")
    assert swanlab.config["lr"] == 0.1 and swanlab.config.get("lr") == 0.1
    swanlab.config["momentum"] = 0.9
    assert run.config.momentum == 0.9 and len(swanlab.config) == 2
    assert sorted(swanlab.config) == ["lr", "momentum"]
    swanlab.finish()


def test_before_init_and_after_finish_there_is_no_current_run():
    for touch in (lambda: unilog.config.lr, lambda: unilog.config["lr"],
                  lambda: unilog.config.update({"a": 1}), lambda: unilog.summary["x"],
                  lambda: unilog.summary.__setitem__("x", 1)):
        with pytest.raises(unilog.UnilogError, match=r"call unilog.init\(\) first"):
            touch()
    assert repr(unilog.config) == "<unilog.config: no active run>"
    run = unilog.init(project="x", config={"a": 1})
    assert unilog.config.a == 1
    run.finish()
    with pytest.raises(unilog.UnilogError, match="no active run"):
        unilog.config.a
    with pytest.raises(AttributeError):  # a missing key is an AttributeError, as in wandb
        unilog.init(project="x", config={"a": 1}) and unilog.config.nope
    unilog.finish()


def test_login_is_a_no_op_offline_and_checks_keys_online(monkeypatch, caplog, tmp_path):
    for var in ("WANDB_API_KEY", "SWANLAB_API_KEY", "NEPTUNE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert unilog.login(backends=["wandb"], mode="offline") is True
    assert unilog.login(backends=["csv", "tensorboard", "mlflow"]) is True  # no keys needed
    with caplog.at_level(logging.WARNING, logger="unilog"):
        assert unilog.login(backends=["wandb", "neptune"]) is False
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "'wandb'" in said and "WANDB_API_KEY" in said and "NEPTUNE_API_TOKEN" in said
    assert unilog.login("k-123", backends=["wandb"]) is True
    import os

    assert os.environ["WANDB_API_KEY"] == "k-123"
    monkeypatch.setenv("UNILOG_BACKENDS", "swanlab")
    assert unilog.login(relogin=True, host="https://example.invalid") is False  # ignored kwargs


def test_use_artifact_checks_the_type_when_given(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"w")
    run = unilog.init(project="art")
    run.log_artifact(model, name="model", type="model")
    assert unilog.use_artifact("model:latest", type="model").type == "model"
    with pytest.raises(unilog.ArtifactError, match="of type 'model', not 'dataset'"):
        run.use_artifact("model:v0", type="dataset")
    run.finish()
