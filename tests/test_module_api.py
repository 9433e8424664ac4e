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
    assert unilog.login(api_key="s-456") is True  # SwanLab's keyword for the key
    assert os.environ["SWANLAB_API_KEY"] == "s-456"


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
    weights.write_bytes(b"v2")
    consumer.log_artifact(weights, name="model", type="model")
    # this run's own project, as W&B code writes it: f"{project}/model:latest"
    assert consumer.use_artifact("finetune/model:latest").run_id == "cons1"
    # W&B's entity/project/name:alias, as its Usage tab copies it
    assert consumer.use_artifact("my-team/pretrain/model:best").run_id == "prod1"
    consumer.finish()
    # A run of this project named like another project: the short form is ambiguous.
    clash = unilog.init(project="finetune", id="pretrain")
    clash.log_artifact(weights, name="model", type="model")
    with pytest.raises(unilog.ArtifactError, match="names both run 'pretrain'"):
        clash.use_artifact("pretrain/model:latest")
    assert clash.use_artifact("finetune/pretrain/model:latest").run_id == "pretrain"
    clash.finish()


# -- other trackers' init keywords, reinit, and `unilog.config = {...}` ----------------


def test_wandb_config_assigned_before_init_becomes_the_runs_config(recorded):
    import unilog as wandb

    # W&B's Hydra guide: wandb.config = OmegaConf.to_container(cfg) before wandb.init
    wandb.config = {"model": {"configs": {"hidden": 8}}, "lr": 0.1}
    assert isinstance(unilog.config, unilog._ConfigView)  # still the view, not the dict
    run = wandb.init(project="p", config={"lr": 0.2}, mode="offline",
                     backends={"recorder": {"label": "assigned"}})
    assert wandb.config.model.configs.hidden == 8 and wandb.config.lr == 0.2  # init's wins
    wandb.config = {"epochs": 3}  # with a run current: an update of its config
    assert run.config.as_dict() == {"model": {"configs": {"hidden": 8}}, "lr": 0.2,
                                    "epochs": 3}
    wandb.summary = {"best": 1.0}
    wandb.finish()
    assert recorded["assigned"]["config"][-1]["epochs"] == 3
    assert recorded["assigned"]["summary"] == {"best": 1.0}
    assert unilog.init(project="p", mode="offline").config.as_dict() == {}  # taken once
    unilog.finish()
    with pytest.raises(unilog.UnilogError, match=r"unilog.summary: .*unilog.init\(\) first"):
        unilog.summary = {"best": 2.0}


def test_wandb_and_swanlab_init_keywords_are_taken(tmp_path):
    import unilog as swanlab

    run = swanlab.init(project="p", experiment_name="exp", description="about",
                       workspace="team", log_dir=str(tmp_path / "elsewhere"), mode="local")
    assert (run.name, run.notes, run.mode) == ("exp", "about", "offline")
    assert run.dir.parent.parent == tmp_path / "elsewhere"
    swanlab.finish()
    with pytest.raises(unilog.ConfigError, match="both name= and experiment_name="):
        unilog.init(name="a", experiment_name="b")
    with pytest.raises(TypeError, match="unexpected keyword argument 'antonymous'"):
        unilog.init(antonymous="allow")  # a typo is not taken
    run = unilog.init(project="p", config={"lr": 0.1, "seed": 3, "data_dir": "/x"},
                      config_exclude_keys=["data_dir"], anonymous="allow",
                      allow_val_change=True, settings={"x": 1}, mode="offline")
    assert run.config.as_dict() == {"lr": 0.1, "seed": 3}
    run.finish()
    run = unilog.init(project="p", config={"lr": 0.1, "seed": 3}, mode="offline",
                      config_include_keys=["lr"])
    assert run.config.as_dict() == {"lr": 0.1}
    run.finish()
    with pytest.raises(unilog.ConfigError, match="reinit must be one of"):
        unilog.init(reinit="sometimes")
    with pytest.raises(unilog.ConfigError, match="mode must be one of .*dryrun.*not 'shared'"):
        unilog.init(mode="shared")
    assert unilog.run is None  # nothing was started by the refused calls


def test_entity_and_job_type_reach_the_wandb_run(tmp_path):
    from .readers_wandb import wandb_records

    run = unilog.init(project="p", backends=["wandb"], entity="my-team", job_type="train",
                      mode="dryrun", resume="never")
    run.log({"x": 1.0})
    run.finish()
    (file,) = Path(run.dir, "wandb").rglob("*.wandb")
    (record,) = [r.run for r in wandb_records(file) if r.WhichOneof("record_type") == "run"]
    assert (record.entity, record.job_type) == ("my-team", "train")
    with pytest.raises(unilog.ConfigError):  # the backend's own option still wins, and is checked
        unilog.init(backends={"wandb": {"entity": "mine", "mode": "bogus"}}, entity="team")
    # a W&B team is no SwanLab workspace (SwanLab refuses "<Team_Entity>"); workspace= is
    from unilog import _settings

    backends = [("wandb", {}), ("swanlab", {})]
    _settings._backend_defaults(backends, entity="t", job_type=None, workspace="ws")
    assert backends == [("wandb", {"entity": "t"}), ("swanlab", {"workspace": "ws"})]


@pytest.mark.parametrize("reinit, returns_current, finished_first, becomes_current", [
    (None, False, False, True),                 # unilog's own: concurrent, current
    ("default", False, False, True),
    ("create_new", False, False, False),        # wandb: concurrent, current unchanged
    ("finish_previous", False, True, True),
    (True, False, True, True),                  # wandb's older spelling
    ("return_previous", True, False, True),
    (False, True, False, True),
])
def test_reinit_decides_what_a_second_init_does(reinit, returns_current, finished_first,
                                                becomes_current):
    first = unilog.init(project="p", mode="offline")
    second = unilog.init(project="p", mode="offline", reinit=reinit)
    assert (second is first) == returns_current
    assert first.finished == finished_first
    assert (unilog.run is second) == becomes_current
    for run in {first, second}:
        run.finish()
    assert unilog.run is None


def test_wandb_call_shapes_config_update_add_reference_and_table_add_data(tmp_path):
    import unilog as wandb

    run = wandb.init(project="p", config={"lr": 0.1}, mode="offline")
    wandb.config.update({"lr": 0.2}, allow_val_change=True)  # wandb's keyword, not a key
    assert run.config.as_dict() == {"lr": 0.2}
    table = wandb.Table(columns=["x", "pred"])
    table.add_data(1, "cat")
    table.add_data(2, "dog")
    wandb.log({"preds": table})
    table.add_data(3, "cow")  # after the log: reaches the next log only
    wandb.log({"preds": table})
    with pytest.raises(ValueError, match="add_data got 1 cells but the table has 2 columns"):
        table.add_data(4)
    art = wandb.Artifact("data", type="dataset")
    art.add_reference("s3://bucket/data", checksum=False, max_objects=10)
    run.log_artifact(art)
    wandb.finish()
    data = unilog.read_run(run.dir)
    files = [Path(run.dir, value) for _, value in data.series("preds")]
    assert [len(f.read_text().splitlines()) for f in files] == [3, 4]  # header + rows
    (logged,) = data.artifacts
    assert logged.metadata["references"][0]["uri"] == "s3://bucket/data"


def test_swanlab_config_set_and_wandb_artifact_save(tmp_path):
    import unilog as wandb

    model = tmp_path / "model.pt"
    model.write_bytes(b"weights")
    art = wandb.Artifact("model", type="model")
    art.add_file(str(model))
    with pytest.raises(unilog.ArtifactError, match="save\\(\\) logs to the current run, and "
                                                   "there is none"):
        art.save()
    run = wandb.init(project="p", config={"lr": 0.1}, mode="offline")
    wandb.config.set("batch_size", 32)  # SwanLab's config.set
    assert art.save() is art and art.ref == "model:v0" and art.logged
    wandb.finish()
    data = unilog.read_run(run.dir)
    assert data.config == {"lr": 0.1, "batch_size": 32}
    assert [a.ref for a in data.artifacts] == ["model:v0"]


def test_define_metric_summaries_reach_every_backend(recorded, tmp_path):
    import unilog as wandb

    run = wandb.init(project="p", mode="offline", backends={"recorder": {"label": "dm"}})
    wandb.define_metric("val/*", summary="min")
    wandb.define_metric("val/loss", summary="max,mean")  # adds up, as W&B's
    wandb.define_metric("loss", summary="max")
    wandb.define_metric("loss", summary="first", overwrite=True)  # starts over
    wandb.define_metric("acc", step_metric="epoch", summary="best", goal="maximize")
    wandb.define_metric("epoch")  # recorded only: no summary asked for
    for step, (loss, acc) in enumerate([(0.9, 0.5), (0.4, 0.8), (0.6, 0.7)]):
        wandb.log({"val/loss": loss, "acc": acc, "loss": loss, "epoch": step})
    wandb.finish()
    expected = {"val/loss": {"min": 0.4, "max": 0.9, "mean": pytest.approx(19 / 30)},
                "acc": {"best": 0.8}, "loss": {"first": 0.9}}
    assert recorded["dm"]["summary"] == expected  # a backend got it before closing
    data = unilog.read_run(run.dir)
    assert data.summary["val/loss"]["min"] == 0.4 and data.summary["acc"] == {"best": 0.8}
    assert [m["name"] for m in data.manifest["metrics"]] == ["val/*", "val/loss", "loss",
                                                             "loss", "acc", "epoch"]
    assert data.manifest["metrics"][4]["step_metric"] == "epoch"
    checked = unilog.init(project="p", mode="offline")
    for bad, rule in ((dict(summary="median"), "not one of"), (dict(summary="best"), "needs goal"),
                      (dict(goal="up"), "goal must be")):
        with pytest.raises(unilog.ConfigError, match=rule):
            checked.define_metric("x", **bad)
    checked.finish()


def test_a_list_of_images_is_logged_one_key_per_image(recorded):
    import numpy as np

    import unilog as wandb

    run = wandb.init(project="p", mode="offline",
                     backends={"recorder": {"label": "gallery", "media": ["image"]}})
    images = [wandb.Image(np.full((4, 4, 3), i / 3), caption=f"c{i}") for i in range(3)]
    wandb.log({"examples": images, "loss": 0.5})
    with pytest.warns(unilog.UnilogWarning, match="'mixed'"):  # a list of anything else
        wandb.log({"mixed": [images[0], 1.0]})
    wandb.finish()
    data = unilog.read_run(run.dir)
    assert [k for k in ("examples/0", "examples/1", "examples/2") if data.series(k)] == [
        "examples/0", "examples/1", "examples/2"]
    (step, row), *_ = recorded["gallery"]["rows"]
    assert (step, sorted(row)) == (0, ["examples/0", "examples/1", "examples/2", "loss"])


def test_an_image_in_a_table_cell_is_said_not_silently_dropped():
    import numpy as np

    from unilog import media

    media._WARNED.discard("cell-image")
    with pytest.warns(unilog.UnilogWarning, match="Image in a Table cell: tables keep plain "
                                                  "cells"):
        table = unilog.Table(columns=["img", "label"],
                             data=[[unilog.Image(np.zeros((2, 2))), "cat"]])
    assert table.rows[0][1] == "cat" and table.rows[0][0].startswith("Image(")


def test_wandb_and_swanlab_media_keywords_are_taken():
    import numpy as np

    from unilog import media

    pixels = np.zeros((4, 4, 3))
    image = unilog.Image(pixels, caption="c", mode="RGB", file_type="png", size=32)
    assert image.caption == "c" and len(image.png_bytes()) > 0
    media._WARNED.discard("overlays")
    with pytest.warns(unilog.UnilogWarning, match="overlays are not kept"):
        unilog.Image(pixels, masks={"pred": {"mask_data": np.zeros((4, 4))}})
    assert unilog.Histogram(sequence=[1.0, 2.0, 2.5]).to_json()["count"] == 3
    table = unilog.Table(columns=["a"], rows=[[1], [2]], allow_mixed_types=True)
    assert table.rows == [[1], [2]]
    with pytest.raises(ValueError, match="data or rows"):
        unilog.Table(columns=["a"], data=[[1]], rows=[[2]])


def test_watch_logs_parameter_and_gradient_histograms_every_log_freq_steps():
    torch = pytest.importorskip("torch")

    import unilog as wandb

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = wandb.init(project="p", mode="offline")
    wandb.watch(model, log="all", log_freq=2)  # W&B's PyTorch tutorial
    for _ in range(5):
        optimizer.zero_grad()
        loss = model(torch.randn(8, 3)).pow(2).mean()
        loss.backward()
        optimizer.step()
        wandb.log({"loss": loss})
    wandb.finish()
    model(torch.randn(2, 3)).sum().backward()  # after finish: the hooks are gone, no warning
    data = unilog.read_run(run.dir)
    for key in ("parameters/0.weight", "parameters/2.bias", "gradients/0.weight",
                "gradients/2.bias"):
        assert [step for step, _ in data.series(key)] == [0, 2, 4], key
    with pytest.raises(unilog.ConfigError, match="log=...\\) must be"):
        unilog.init(project="p", mode="offline").watch(model, log="weights")
    unilog.finish()
