"""The public API end to end with the CSV local record, read back raw and through read_run."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import threading
import sys
from pathlib import Path

import numpy as np
import pytest

import unilog
from unilog import plugins
from unilog._config import REDACTED
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
    with pytest.raises(BackendNotInstalled, match=r"pip install 'unilog-ml\[nosuchsdk\]'"):
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
    # Internal modules carry a leading underscore, so they are not in this set.
    modules = {"errors", "media", "tensors", "runs", "read", "artifacts", "backend",
               "hookspecs", "plugins", "annotations", "importlib", "TYPE_CHECKING",
               "Any", "cli", "testing",
               # optional integrations: attributes only once another test imported them
               "hydra", "lightning", "sweeps", "importers", "compat"}
    assert public - set(unilog.__all__) - modules == set()


# -- resume ------------------------------------------------------------------------


def test_resume_keeps_the_config_merged_with_the_new_one_and_the_summary():
    run = unilog.init(id="again", config={"lr": 0.1, "model": {"depth": 3}})
    run.log({"x": 1})
    run.summary["best"] = 5
    run.finish()

    again = unilog.init(id="again", resume="allow",
                        config={"model": {"width": 8}, "epochs": 2})
    merged = {"lr": 0.1, "model": {"depth": 3, "width": 8}, "epochs": 2}
    assert again.config.lr == 0.1 and again.config.model.depth == 3
    assert again.summary["best"] == 5
    again.log({"x": 2})
    again.finish()
    data = unilog.read_run(run.dir)
    assert data.config == merged
    assert data.summary["best"] == 5 and data.summary["x"] == 2
    assert data.series("x") == [(0, 1), (1, 2)]


def test_resume_with_no_config_keeps_the_previous_one():
    unilog.init(id="again", config={"lr": 0.1}).finish()
    again = unilog.init(id="again", resume="must")
    assert dict(again.config.items()) == {"lr": 0.1}
    again.finish()
    assert unilog.read_run(again.dir).config == {"lr": 0.1}


@pytest.mark.parametrize("backends", [{"csv": {"flush_every": 1}},
                                      {"slow": {"no_such_option": 1}}])
def test_failed_init_writes_no_run_dir_and_the_id_stays_free(runs_dir, backends):
    with pytest.raises(ConfigError, match="rejected its options"):
        unilog.init(id="exp1", backends=backends)
    assert not (runs_dir / "default" / "exp1").exists()
    assert unilog.run is None
    run = unilog.init(id="exp1")  # not "already exists"
    run.log({"x": 1})
    run.finish()
    assert unilog.read_run(run.dir).series("x") == [(0, 1)]


# -- summary and config values ---------------------------------------------------------


def test_summary_tensor_and_numpy_scalars_are_stored_as_numbers():
    torch = pytest.importorskip("torch")
    from unilog.tensors import PendingScalar

    run = unilog.init()
    run.summary["best_acc"] = torch.tensor(0.5)
    run.summary["best_epoch"] = torch.tensor(7)
    run.summary.update({"np_loss": np.float32(0.25), "np_steps": np.int64(3)})
    # What a CUDA scalar becomes (CI has no GPU): read on the workers, not here.
    run.summary["gpu_loss"] = PendingScalar(torch.tensor(1.5))
    run.finish()

    expected = {"best_acc": 0.5, "best_epoch": 7, "np_loss": 0.25, "np_steps": 3,
                "gpu_loss": 1.5}
    stored = json.loads((run.dir / "summary.json").read_text())
    assert {k: stored[k] for k in expected} == expected
    assert {k: type(stored[k]) for k in expected} == {k: type(v) for k, v in expected.items()}
    assert unilog.read_run(run.dir).summary == stored


def test_summary_bool_stays_a_bool():
    run = unilog.init()
    run.summary["converged"] = True
    run.summary["flags"] = [True, False]
    run.finish()
    stored = json.loads((run.dir / "summary.json").read_text())
    assert stored["flags"] == [True, False]
    assert stored["converged"] is True


def test_config_with_cpu_tensors_stores_their_values():
    torch = pytest.importorskip("torch")
    run = unilog.init(config={"scale": torch.tensor(2.5), "steps": torch.tensor(3),
                              "weights": torch.tensor([1.0, 0.5]), "np": np.float64(0.1)})
    run.finish()
    assert json.loads((run.dir / "config.json").read_text()) == {
        "scale": 2.5, "steps": 3, "weights": [1.0, 0.5], "np": 0.1}


def test_run_config_does_not_write_into_the_callers_dict():
    given = {"lr": 0.1, "optim": {"beta": 0.9}, "layers": [1, 2]}
    run = unilog.init(config=given)
    run.config.update({"lr": 0.2, "optim": {"eps": 1e-8}})
    run.config.optim.beta = 0.5
    run.config.layers.append(3)
    run.config.batch = 32
    run.finish()
    assert given == {"lr": 0.1, "optim": {"beta": 0.9}, "layers": [1, 2]}
    assert unilog.read_run(run.dir).config == {
        "lr": 0.2, "optim": {"beta": 0.5, "eps": 1e-8}, "layers": [1, 2, 3], "batch": 32}


# -- after finish, disabled runs -----------------------------------------------------------


def test_summary_config_and_artifacts_after_finish_warn_once(tmp_path):
    f = tmp_path / "late.txt"
    f.write_text("late")
    run = unilog.init(config={"lr": 1})
    run.log({"acc": 0.5})
    run.summary["best"] = 0.5
    run.finish()
    summary = (run.dir / "summary.json").read_text()
    config = (run.dir / "config.json").read_text()

    with pytest.warns(unilog.UnilogWarning) as caught:
        for i in range(3):
            run.summary["best"] = 0.9 + i
            run.config.update({"note": f"late {i}"})
            run.config.epochs = i
            run.log_artifact(f, name="late")
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 3, messages
    assert [m.split(" after finish")[0] for m in messages] == [
        "config update", "log_artifact", "summary update"]
    assert all("reaches no backend" in m for m in messages)
    assert (run.dir / "summary.json").read_text() == summary
    assert (run.dir / "config.json").read_text() == config


def test_disabled_run_has_no_dir_and_is_released_at_finish():
    run = unilog.init(mode="disabled")
    assert run.dir is None
    assert unilog.run is run
    run.finish()
    assert unilog.run is None
    with pytest.raises(unilog.UnilogError, match="init"):
        unilog.log({"x": 1})


# -- secrets on the command line ------------------------------------------------------------


def test_secret_flags_on_the_command_line_are_redacted_in_the_manifest(monkeypatch):
    argv = ["train.py", "--api_key", "s3cr3t-A", "--lr", "0.1", "--hf-token=s3cr3t-B",
            "db.password=s3cr3t-C", "+trainer.apiKey=s3cr3t-D", "--password", "s3cr3t-E",
            "--tokenizer", "bpe", "max_tokens=5", "positional"]
    monkeypatch.setattr(sys, "argv", argv)
    run = unilog.init()
    run.finish()
    command = json.loads((run.dir / "run.json").read_text())["provenance"]["command"]
    assert command == [sys.executable, "train.py", "--api_key", REDACTED, "--lr", "0.1",
                       f"--hf-token={REDACTED}", f"db.password={REDACTED}",
                       f"+trainer.apiKey={REDACTED}", "--password", REDACTED,
                       "--tokenizer", "bpe", "max_tokens=5", "positional"]
    for path in run.dir.rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path


# -- the local record cannot be switched off --------------------------------------------------


@pytest.fixture
def fresh_plugins():
    """The plugin manager is cached: load it anew under this test's environment, and after."""
    plugins.reset()
    yield
    plugins.reset()


@pytest.mark.parametrize("blocked", ["csv_backend", "unilog_plugins.csv_backend",
                                     "csv_backend,faults"])
def test_disabling_the_csv_plugin_still_keeps_a_local_record(monkeypatch, fresh_plugins,
                                                             blocked):
    monkeypatch.setenv("UNILOG_DISABLE_PLUGINS", blocked)
    run = unilog.init()
    for i in range(3):
        run.log({"x": i})
    report = run.finish()
    assert report["csv"]["delivered"] >= 3
    assert unilog.read_run(run.dir).series("x") == [(0, 0), (1, 1), (2, 2)]


def test_use_artifact_falls_back_to_a_backend_that_has_it(recorded, tmp_path):
    """An artifact missing from the local record is fetched by a backend, on its worker."""
    run = unilog.init(backends={"recorder": {"label": "fetcher", "fetchable": {"remote": "x"}}})
    fetched = run.use_artifact("remote:best")
    assert fetched.source == "recorder" and fetched.ref == "remote:best"
    assert Path(fetched.file()).read_text() == "x"
    assert recorded["fetcher"]["fetch_thread"] != threading.get_ident()
    with pytest.raises(unilog.ArtifactError, match="nothing-here"):
        run.use_artifact("nothing-here")
    run.finish()
