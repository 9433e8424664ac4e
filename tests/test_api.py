"""The public API end to end with the CSV local record, read back raw and through read_run."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import unilog
from unilog.errors import BackendNotFound, BackendNotInstalled, ConfigError


def test_run_round_trip_raw_files_and_read_run(runs_dir):
    run = unilog.init(project="proj", name="first", config={"lr": 0.1, "model": {"depth": 4}},
                      tags=["a", "b"], notes="n", group="g")
    assert run.dir == runs_dir / "proj" / run.id
    for i in range(120):
        run.log({"train/loss": 1.0 / (i + 1), "train": {"acc": i / 120}})
    run.summary["best_acc"] = 0.97
    run.finish()

    with open(run.dir / "metrics.csv", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["step", "time", "key", "value"]
    assert len(lines) == 1 + 240
    assert lines[1][0] == "0" and lines[1][2] == "train/loss" and float(lines[1][3]) == 1.0
    assert json.loads((run.dir / "config.json").read_text()) == {"lr": 0.1, "model": {"depth": 4}}

    manifest = json.loads((run.dir / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["exit_code"] == 0
    assert (manifest["name"], manifest["tags"], manifest["notes"], manifest["group"]) == (
        "first", ["a", "b"], "n", "g")
    assert manifest["provenance"]["command"] and "python" in manifest["provenance"]
    assert manifest["backends"]["csv"]["delivered"] >= 120

    data = unilog.read_run(run.dir)
    assert data.status == "finished"
    assert data.config["model"]["depth"] == 4
    assert list(data.metrics.columns) == ["train/loss", "train/acc"]
    assert len(data.metrics) == 120
    assert data.metrics["train/loss"].iloc[9] == pytest.approx(0.1)
    assert data.summary["best_acc"] == 0.97
    assert data.summary["train/acc"] == pytest.approx(119 / 120)


def test_values_are_stored_exactly():
    run = unilog.init()
    values = [0.1, 1e-300, 123456789.123456789, -0.0, 2**53 + 1]
    for v in values:
        run.log({"x": v})
    run.finish()
    assert [v for _, v in unilog.read_run(run.dir).series("x")] == values


def test_config_forms(tmp_path):
    @dataclasses.dataclass
    class Cfg:
        lr: float = 0.01
        layers: tuple = (1, 2)

    ns = argparse.Namespace(lr=0.5, name="x")
    for given, expected in [
        (Cfg(), {"lr": 0.01, "layers": [1, 2]}),
        (ns, {"lr": 0.5, "name": "x"}),
        ({"path": tmp_path}, {"path": str(tmp_path)}),
    ]:
        run = unilog.init(config=given)
        run.finish()
        assert unilog.read_run(run.dir).config == expected


def test_omegaconf_config_is_resolved():
    omegaconf = pytest.importorskip("omegaconf")
    cfg = omegaconf.OmegaConf.create({"a": 2, "b": "${a}", "optim": {"lr": 0.1}})
    run = unilog.init(config=cfg)
    assert run.config.optim.lr == 0.1
    run.finish()
    assert unilog.read_run(run.dir).config == {"a": 2, "b": 2, "optim": {"lr": 0.1}}


def test_config_access_and_update():
    run = unilog.init(config={"lr": 0.1, "optim": {"beta": 0.9}})
    assert run.config.lr == 0.1 and run.config["lr"] == 0.1
    assert run.config.get("missing", 7) == 7 and run.config.optim.beta == 0.9
    with pytest.raises(AttributeError):
        run.config.missing
    run.config.update({"epochs": 3, "optim": {"eps": 1e-8}})
    run.config.batch = 32
    run.finish()
    assert unilog.read_run(run.dir).config == {
        "lr": 0.1, "optim": {"beta": 0.9, "eps": 1e-8}, "epochs": 3, "batch": 32}


@pytest.mark.parametrize("key", ["api_key", "HF_TOKEN", "db_password", "passwd", "clientSecret",
                                 "aws_credentials", "apiKey", "credential"])
def test_secrets_are_redacted_everywhere(key):
    run = unilog.init(config={"nested": {key: "s3cr3t-value"}, "max_tokens": 5,
                              "tokenizer": "bpe"}, backends=["csv", "recorder"])
    assert run.config.nested[key] == "s3cr3t-value"  # the user's own process keeps it
    run.config.update({"late": {key: "s3cr3t-value"}})
    run.finish()
    for path in run.dir.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-value" not in path.read_bytes(), path
    config = unilog.read_run(run.dir).config
    assert config["nested"][key] == "***REDACTED***"
    assert config["max_tokens"] == 5 and config["tokenizer"] == "bpe"


def test_secrets_never_reach_a_backend(recorded):
    run = unilog.init(config={"token": "abc"}, backends=["recorder"])
    run.finish()
    assert recorded["default"]["open"].config == {"token": "***REDACTED***"}
    assert all(c == {"token": "***REDACTED***"} for c in recorded["default"]["config"])


def test_media_go_to_files_in_the_run_dir():
    run = unilog.init()
    run.log({"img": unilog.Image(np.zeros((8, 8, 3), dtype=np.uint8), caption="c"),
             "hist": unilog.Histogram(np.arange(10.0), num_bins=5),
             "note": unilog.Text("hello, world\nline 2"),
             "plain": "a string",
             "table": unilog.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
    run.finish()
    row = unilog.read_run(run.dir).metrics.iloc[0]
    assert (run.dir / row["img"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run.dir / row["hist"]).read_text())["counts"] == [2, 2, 2, 2, 2]
    assert row["note"] == "hello, world\nline 2" and row["plain"] == "a string"
    assert (run.dir / row["table"]).read_text().splitlines()[0] == "a,b"


def test_artifacts_log_and_use(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"weights-1")
    run = unilog.init(project="p")
    first = run.log_artifact(model, name="model", type="model", metadata={"acc": 0.5})
    model.write_bytes(b"weights-2")  # overwriting right after log_artifact is safe
    second = run.log_artifact(model, name="model", type="model", aliases=["best"])
    assert (first.ref, second.ref) == ("model:v0", "model:v1")
    assert Path(run.use_artifact("model:v0").file()).read_bytes() == b"weights-1"
    assert Path(run.use_artifact("model:best").file()).read_bytes() == b"weights-2"
    run.finish()
    later = unilog.init(project="p")  # another run of the project finds it
    assert Path(later.use_artifact("model:latest").file()).read_bytes() == b"weights-2"
    later.finish()
    arts = unilog.read_run(run.dir).artifacts
    assert [(a.name, a.version, a.type) for a in arts] == [("model", 0, "model"),
                                                           ("model", 1, "model")]


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", ".."])
def test_artifact_names_cannot_escape(tmp_path, name):
    f = tmp_path / "f.txt"
    f.write_text("x")
    run = unilog.init()
    with pytest.raises(unilog.ArtifactError, match="name"):
        run.log_artifact(f, name=name)
    run.finish()
    assert not (run.dir.parent / "escape").exists()


def test_module_level_functions(tmp_path):
    run = unilog.init()
    assert unilog.run is run
    unilog.log({"x": 1})
    f = tmp_path / "a.txt"
    f.write_text("a")
    assert unilog.log_artifact(f).name == "a.txt"
    unilog.finish()
    assert unilog.run is None
    assert unilog.read_run(run.dir).series("x") == [(0, 1)]
    with pytest.raises(unilog.UnilogError, match="init"):
        unilog.log({"x": 1})
    assert unilog.finish() is None


def test_context_manager_sets_status():
    with unilog.init() as run:
        run.log({"x": 1})
    assert unilog.read_run(run.dir).status == "finished"
    with pytest.raises(ZeroDivisionError):
        with unilog.init() as run:
            1 / 0
    assert unilog.read_run(run.dir).status == "failed"
    with pytest.raises(KeyboardInterrupt):
        with unilog.init() as run:
            raise KeyboardInterrupt
    assert unilog.read_run(run.dir).status == "killed"


def test_finish_is_idempotent():
    run = unilog.init()
    report = run.finish()
    assert run.finish() is report
    with pytest.warns(unilog.UnilogWarning, match="after finish"):
        run.log({"x": 1})


def test_disabled_mode_writes_nothing(runs_dir):
    run = unilog.init(mode="disabled", config={"lr": 1})
    run.log({"x": 1})
    assert run.config.lr == 1
    assert run.log_artifact("does-not-matter") is None
    run.finish()
    assert not runs_dir.exists()


@pytest.mark.parametrize("backends", [
    ["csv", "recorder"],
    [{"name": "recorder", "label": "default"}],
    {"recorder": {"label": "default"}, "csv": {}},
    "recorder",
])
def test_backend_forms(backends, recorded):
    run = unilog.init(backends=backends)
    run.log({"x": 1})
    run.finish()
    assert recorded["default"]["rows"] == [(0, {"x": 1})]
    assert set(json.loads((run.dir / "run.json").read_text())["backends"]) == {"csv", "recorder"}


def test_backends_from_environment(monkeypatch, recorded):
    monkeypatch.setenv("UNILOG_BACKENDS", "recorder, csv")
    run = unilog.init()
    run.finish()
    assert recorded["default"]["close"] == ("finished", 0)


def test_backend_identity_goes_into_manifest(recorded):
    run = unilog.init(backends=["recorder"])
    run.finish()
    info = json.loads((run.dir / "run.json").read_text())["backends"]["recorder"]["info"]
    assert info == {"id": f"rec-{run.id}", "url": "memory://default"}


def test_unknown_backend_lists_available():
    with pytest.raises(BackendNotFound, match="available backends:.*csv"):
        unilog.init(backends=["no-such-backend"])


def test_missing_sdk_names_the_pip_extra():
    with pytest.raises(BackendNotInstalled, match=r"pip install 'unilog\[nosuchsdk\]'"):
        unilog.init(backends=["needs_missing_sdk"])
    assert issubclass(BackendNotInstalled, ImportError)


@pytest.mark.parametrize("kwargs, match", [
    ({"mode": "sometimes"}, "mode must be"),
    ({"on_error": "ignore"}, "on_error must be"),
    ({"resume": "yes"}, "resume must be"),
    ({"project": "../up"}, "project"),
    ({"id": "bad id!"}, "run id"),
    ({"backends": ["csv", "csv"]}, "listed twice"),
    ({"backends": [{"label": "x"}]}, "'name' key"),
    ({"backends": {"slow": {"no_such_option": 1}}}, "rejected its options"),
    ({"config": 42}, "config must be"),
])
def test_bad_init_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        unilog.init(**kwargs)


def test_resume_continues_the_same_run():
    run = unilog.init(id="resumable")
    for i in range(3):
        run.log({"x": i})
    run.finish()
    with pytest.raises(ConfigError, match="already exists"):
        unilog.init(id="resumable")
    again = unilog.init(id="resumable", resume="must")
    assert again.step == 3
    again.log({"x": 3})
    again.finish()
    assert [s for s, _ in unilog.read_run(run.dir).series("x")] == [0, 1, 2, 3]
    with pytest.raises(ConfigError, match="resume='must'"):
        unilog.init(id="nothing-here", resume="must")


def test_rank_nonzero_gets_a_noop_run(monkeypatch, runs_dir):
    monkeypatch.setenv("RANK", "1")
    run = unilog.init()
    run.log({"x": 1})
    run.finish()
    assert not runs_dir.exists()
    per_rank = unilog.init(rank_zero_only=False)
    per_rank.finish()
    assert per_rank.dir.exists()


def test_all_is_complete_and_sorted():
    public = {n for n in dir(unilog) if not n.startswith("_")} | {"__version__"}
    for name in unilog.__all__:
        assert getattr(unilog, name, None) is not None or name == "run", name
    assert unilog.__all__ == sorted(unilog.__all__)
    modules = {"errors", "media", "tensors", "settings", "runs", "read", "artifacts", "backend",
               "hookspecs", "plugins", "config", "dispatch", "normalize", "policy", "lifecycle",
               "manifest", "annotations", "importlib", "TYPE_CHECKING", "Any", "cli", "testing"}
    assert public - set(unilog.__all__) - modules == set()
