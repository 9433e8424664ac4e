"""The module-level API wandb and SwanLab users write: ``wandb.config.lr``,
``swanlab.config["lr"]``, ``wandb.summary[...]``, ``wandb.login()``, with
``import unilog as wandb`` as the only change (issue 14, first part)."""

from __future__ import annotations

import logging
from pathlib import Path

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


def test_the_wandb_artifact_builder_logs_and_reloads(tmp_path, recorded):
    """The W&B tutorial's save-and-reload, with ``import unilog as wandb``."""
    import unilog as wandb

    (tmp_path / "model_9.pt").write_bytes(b"weights")
    (tmp_path / "tok").mkdir()
    (tmp_path / "tok" / "vocab.txt").write_text("a\nb\n")
    run = wandb.init(project="art", backends={"csv": {}, "recorder": {"label": "a"}})
    artifact = wandb.Artifact("model", type="model", description="the best",
                              metadata={"epochs": 9})
    assert not artifact.logged
    artifact.add_file(tmp_path / "model_9.pt")
    artifact.add_file(tmp_path / "model_9.pt", name="weights/copy.pt")
    artifact.add_dir(tmp_path / "tok", name="tokenizer")
    artifact.add_reference("s3://bucket/train.csv")
    stored = run.log_artifact(artifact, aliases=["best"])
    assert artifact.logged and artifact.ref == "model:v0" == stored.ref
    assert sorted(f.path for f in artifact.files) == ["model_9.pt", "tokenizer/vocab.txt",
                                                      "weights/copy.pt"]
    assert artifact.metadata == {"epochs": 9, "description": "the best",
                                 "references": [{"uri": "s3://bucket/train.csv",
                                                 "name": "train.csv"}]}
    with pytest.raises(unilog.ArtifactError, match="is logged: its content cannot change"):
        artifact.add_file(tmp_path / "model_9.pt")
    with pytest.raises(unilog.ArtifactError, match="logged already"):
        run.log_artifact(artifact)
    reloaded = wandb.use_artifact("model:best", type="model")
    folder = Path(reloaded.download(tmp_path / "out"))
    assert (folder / "model_9.pt").read_bytes() == b"weights"
    assert (folder / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"
    wandb.finish()
    (sent,) = recorded["a"]["artifacts"]  # the backend got the stored version
    assert sent.ref == "model:v0" and "best" in sent.aliases


def test_a_built_artifact_refuses_what_it_cannot_hold(tmp_path):
    with pytest.raises(unilog.ArtifactError, match="invalid artifact name"):
        unilog.Artifact("../model")
    artifact = unilog.Artifact("data", type="dataset")
    with pytest.raises(unilog.ArtifactError, match="add_file needs a file"):
        artifact.add_file(tmp_path / "missing.csv")
    with pytest.raises(unilog.ArtifactError, match="add_dir needs a folder"):
        artifact.add_dir(tmp_path / "missing")
    with pytest.raises(unilog.ArtifactError, match="unsafe file path"):
        (tmp_path / "x").write_text("x")
        artifact.add_file(tmp_path / "x", name="../escape")
    run = unilog.init(project="art")
    with pytest.raises(unilog.ArtifactError, match="give only aliases"):
        run.log_artifact(artifact, type="model")
    artifact.add_reference("https://example.invalid/data.csv")  # references alone are fine
    assert run.log_artifact(artifact).metadata["references"][0]["name"] == "data.csv"
    run.finish()


def test_project_references_resolve_exactly_or_fail_clearly(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"v1")
    producer = unilog.init(project="pretrain", id="prod1")
    producer.log_artifact(weights, name="model", type="model", aliases=["best"])
    producer.finish()
    consumer = unilog.init(project="finetune", id="cons1")
    got = consumer.use_artifact("pretrain/model:best", type="model")  # W&B's project/name
    assert (got.run_id, got.ref) == ("prod1", "model:v0")
    assert consumer.use_artifact("pretrain/prod1/model:v0").run_id == "prod1"
    with pytest.raises(unilog.ArtifactError, match="no run 'nope'"):
        consumer.use_artifact("pretrain/nope/model:v0")
    with pytest.raises(unilog.ArtifactError, match="in project 'pretrain'"):
        consumer.use_artifact("pretrain/tokenizer:latest")
    with pytest.raises(unilog.ArtifactError, match="has 4 parts"):
        consumer.use_artifact("a/b/c/model")
    with pytest.raises(unilog.ArtifactError, match="no run 'ghost'"):
        consumer.use_artifact("ghost/model:best")  # neither a run here nor a project
    consumer.finish()
    # A run of this project named like another project: the short form is ambiguous.
    clash = unilog.init(project="finetune", id="pretrain")
    clash.log_artifact(weights, name="model", type="model")
    with pytest.raises(unilog.ArtifactError, match="names both run 'pretrain'"):
        clash.use_artifact("pretrain/model:latest")
    assert clash.use_artifact("finetune/pretrain/model:latest").run_id == "pretrain"
    clash.finish()
