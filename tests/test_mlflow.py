"""The MLflow backend against real stores, read back with ``MlflowClient``: SQLite
(the default location and a shared one), and a real ``mlflow server`` (round
trip, killed mid-run, down, skipped offline). No mocks."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from pathlib import Path

import pytest

import unilog

from .mlflow_server import free_port, mlflow_server, running_server  # noqa: F401

np = pytest.importorskip("numpy")
pytest.importorskip("mlflow")

SECRET = "mlflow-secret-value-0451"
STEPS = 130
CONFIG = {"lr": 0.01, "model": {"depth": 3, "act": "relu", "dims": [8, 16]},
          "db": {"password": SECRET}, "api_key": SECRET, "comment": None}


def client_for(uri: str):
    import warnings

    with warnings.catch_warnings():  # SQLAlchemy's, when this process opens the store first
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy")
        from mlflow.tracking import MlflowClient

        return MlflowClient(uri)


def mlflow_info(run: unilog.Run) -> dict:
    return unilog.read_run(run.dir).manifest["backends"]["mlflow"]["info"]


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A SQLite store shared by this module's tests (creating one costs ~2 s)."""
    return "sqlite:///" + (tmp_path_factory.mktemp("store") / "mlflow.db").as_posix()


# -- the full round trip, on SQLite and over HTTP ------------------------------------


def log_full_run(tmp_path: Path, options: dict) -> unilog.Run:
    (tmp_path / "data" / "split").mkdir(parents=True)
    (tmp_path / "data" / "split" / "train.txt").write_text("a\nb\n")
    (tmp_path / "data" / "README").write_bytes(b"\x00\x01 readme")
    (tmp_path / "model.bin").write_bytes(os.urandom(4096))
    with unilog.init(project="full", name="full-run", backends={"csv": {}, "mlflow": options},
                     config=CONFIG, tags=["baseline", "v 2"], notes="round trip",
                     group="grp", mode="online", on_error="raise") as run:
        for step in range(STEPS):
            run.log({"train/loss": 1.0 / (step + 1), "train/acc": step / STEPS,
                     "val": {"deep": {"score": float(step % 7)}}, "epoch": step // 10})
        run.log({"media/img": unilog.Image(np.full((6, 5, 3), 200, dtype=np.uint8)),
                 "media/gray": unilog.Image(np.zeros((4, 4), dtype=np.float32)),
                 "media/img:colon": unilog.Image(np.zeros((2, 2, 4), dtype=np.uint8)),
                 "media/hist": unilog.Histogram(np.arange(50.0), num_bins=5),
                 "media/txt": unilog.Text("some text"),
                 "media/tab": unilog.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])},
                step=STEPS)
        run.summary["best_acc"] = 0.97
        run.summary["note"] = "done"
        run.log_artifact(tmp_path / "model.bin", name="model", type="model", aliases=["best"])
        run.log_artifact(tmp_path / "data", name="dataset", type="dataset")
    return run


def check_full_run(run: unilog.Run, tmp_path: Path) -> None:
    info = mlflow_info(run)
    client = client_for(info["tracking_uri"])
    got = client.get_run(info["id"])
    assert got.info.status == "FINISHED" and got.info.run_name == "full-run"
    assert client.get_experiment(got.info.experiment_id).name == "full"
    params = got.data.params
    assert params["lr"] == "0.01" and params["model/depth"] == "3"
    assert params["model/dims"] == "[8, 16]" and params["comment"] == "None"
    assert params["api_key"] == params["db/password"] != SECRET
    tags = got.data.tags
    assert tags["mlflow.note.content"] == "round trip" and tags["unilog.group"] == "grp"
    assert tags["unilog.run_id"] == run.id and tags["unilog.run_dir"] == str(run.dir)
    assert json.loads(tags["unilog.tags"]) == ["baseline", "v 2"]
    assert tags["unilog.tag.baseline"] == "baseline" and tags["unilog.tag.v 2"] == "v 2"

    history = client.get_metric_history(info["id"], "train/loss")
    assert [m.step for m in history] == list(range(STEPS))
    assert [m.value for m in history] == pytest.approx([1 / (s + 1) for s in range(STEPS)])
    deep = client.get_metric_history(info["id"], "val/deep/score")
    assert [(m.step, m.value) for m in deep] == [(s, float(s % 7)) for s in range(STEPS)]
    assert got.data.metrics["epoch"] == (STEPS - 1) // 10
    assert got.data.metrics["summary/best_acc"] == 0.97
    assert json.loads(tags["unilog.summary.note"]) == "done"

    everything = Path(client.download_artifacts(info["id"], "", str(tmp_path / "all")))
    media = {p.relative_to(everything).as_posix() for p in everything.rglob("*") if p.is_file()}
    assert {"media/media/hist/step_130.json", "media/media/txt/step_130.txt",
            "media/media/tab/step_130.csv", "unilog/config.json",
            "media/media/img_colon/step_130.png"} <= media  # log_image refuses ':' in keys
    assert (everything / "media/media/txt/step_130.txt").read_text() == "some text"
    images = [p for p in media if p.startswith("images/") and p.endswith(".png")]
    assert len(images) == 2 and any("media~img+step+130" in p for p in images)
    for path in everything.rglob("*"):  # the redacted secret is stored nowhere
        assert path.is_dir() or SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in json.dumps([params, tags])

    config = json.loads((everything / "unilog/config.json").read_text())
    assert config["model"] == CONFIG["model"] and config["api_key"] != SECRET
    assert sha(everything / "model/v0/model.bin") == sha(tmp_path / "model.bin")
    for rel in ("README", "split/train.txt"):
        assert sha(everything / "dataset/v0" / rel) == sha(tmp_path / "data" / rel)
    manifest = json.loads((everything / "model/v0/unilog-artifact.json").read_text())
    assert manifest["type"] == "model" and sorted(manifest["aliases"]) == ["best", "latest"]
    assert json.loads(tags["unilog.artifact.model"]) == {"aliases": {"best": 0, "latest": 0}}
    report = unilog.read_run(run.dir).manifest["backends"]["mlflow"]
    assert report["errors"] == 0 and report["delivered"] > 0 and not report["timed_out"]


def test_sqlite_round_trip_at_the_default_location(tmp_path, runs_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run = log_full_run(tmp_path, {})
    info = mlflow_info(run)
    assert info["tracking_uri"] == f"sqlite:///{runs_dir.as_posix()}/mlflow/mlflow.db"
    assert info["url"] is None and info["experiment_id"]
    check_full_run(run, tmp_path)
    assert list(cwd.iterdir()) == []  # nothing in the user's working directory
    assert (runs_dir / "mlflow" / "artifacts" / "full").is_dir()
    assert not (run.dir / "mlflow").exists()  # staging folders are cleaned up


def test_http_round_trip(tmp_path, mlflow_server):  # noqa: F811
    run = log_full_run(tmp_path, {"tracking_uri": mlflow_server.uri})
    info = mlflow_info(run)
    assert info["url"] == f"{mlflow_server.uri}/#/experiments/{info['experiment_id']}" \
                          f"/runs/{info['id']}"
    check_full_run(run, tmp_path)


# -- endings and resume ------------------------------------------------------------


def status_of(run: unilog.Run) -> str:
    info = mlflow_info(run)
    return client_for(info["tracking_uri"]).get_run(info["id"]).info.status


def test_failed_and_killed_endings(store):
    options = {"mlflow": {"tracking_uri": store}}
    with pytest.raises(RuntimeError):
        with unilog.init(project="endings", backends=options) as failing:
            failing.log({"x": 1.0})
            raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt):
        with unilog.init(project="endings", backends=options) as interrupted:
            interrupted.log({"x": 1.0})
            raise KeyboardInterrupt
    killed = unilog.init(project="endings", backends=options)
    killed.log({"x": 1.0})
    killed.finish(status="killed")
    assert [status_of(r) for r in (failing, interrupted, killed)] == ["FAILED", "KILLED",
                                                                       "KILLED"]


def test_tracking_uri_from_the_environment(store, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    with unilog.init(project="from-env", backends=["mlflow"]) as run:
        run.log({"x": 1.0})
    assert mlflow_info(run)["tracking_uri"] == store and status_of(run) == "FINISHED"


def test_resume_continues_the_same_mlflow_run(store, caplog):
    options = {"mlflow": {"tracking_uri": store}}
    with unilog.init(project="resume", id="resumed-run", backends=options,
                     config={"lr": 0.1}) as first:
        for step in range(10):
            first.log({"loss": float(step)})
        first.config.update({"lr": 0.2})
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unilog"):
        with unilog.init(project="resume", id="resumed-run", resume="allow", backends=options,
                         config={"lr": 0.3, "extra": 1}) as second:
            for _ in range(5):
                second.log({"loss": -1.0})
    assert not [r for r in caplog.records if "changed" in r.getMessage()]  # warned before
    info = mlflow_info(second)
    assert info["id"] == mlflow_info(first)["id"]
    client = client_for(store)
    assert [m.step for m in client.get_metric_history(info["id"], "loss")] == list(range(15))
    got = client.get_run(info["id"])
    assert got.info.status == "FINISHED" and got.data.params == {"lr": "0.1", "extra": "1"}
    assert got.data.tags["unilog.param_changed.lr"] == "0.3"
    same = client.search_runs([got.info.experiment_id],
                              filter_string="tags.`unilog.run_id` = 'resumed-run'")
    assert len(same) == 1


# -- keys, params ------------------------------------------------------------------


NASTY_KEYS = ["a b", "a!b", "..", "../x", "x/..", "a/./b", "//x", "/lead", "trail/", "...",
              "..x", "a//b///c", "é/ü", "tab\tkey", "", "/", ".", "a:b", "x" * 300,
              "a/" * 200, "ok/key", "\ud800bad"]


def test_key_rule_gives_names_mlflow_accepts():
    from mlflow.utils.validation import _validate_metric_name

    from unilog_plugins.mlflow_backend import KEY_RULE

    for key in NASTY_KEYS:
        name = KEY_RULE.adapt(key)
        _validate_metric_name(name)  # raises on a name MLflow refuses
        assert len(name) <= 250 and name == KEY_RULE.adapt(key)
    assert KEY_RULE.adapt("ok/key") == "ok/key" and KEY_RULE.adapt("a b") == "a b"
    assert KEY_RULE.adapt("x" * 300) != KEY_RULE.adapt("x" * 301)


def test_collisions_long_and_changed_params(store, caplog):
    long_value = "v" * 7000
    keys = {"a_b": 1.0, "a!b": 2.0, "..": 3.0, "//x": 4.0, "/lead": 5.0, "x" * 300: 6.0,
            "ok/key": 7.0}
    with caplog.at_level(logging.WARNING, logger="unilog"):
        with unilog.init(project="keys", backends={"mlflow": {"tracking_uri": store}},
                         config={"lr": 0.1, "long": long_value, "p!q": 1, "p_q": 2}) as run:
            for _ in range(3):
                run.log(keys)
            run.config.update({"lr": 0.2})  # MLflow params cannot change: no exception
            run.config.update({"lr": 0.3})
    report = unilog.read_run(run.dir).manifest["backends"]["mlflow"]
    assert report["collisions"] == 1 and report["failed"] == 0
    assert "a!b" not in report["key_map"]  # not sent, so not mapped
    assert report["key_map"]["//x"] == "x" and report["key_map"][".."] == "__"
    assert report["key_map"]["/lead"] == "lead" and len(report["key_map"]["x" * 300]) == 250
    assert any("'a_b' and 'a!b' both become 'a_b'" in r.getMessage() for r in caplog.records)

    info = mlflow_info(run)
    client = client_for(store)
    got = client.get_run(info["id"])
    assert [m.value for m in client.get_metric_history(info["id"], "a_b")] == [1.0] * 3
    assert set(got.data.metrics) == {"a_b", "__", "x", "lead", "ok/key",
                                     report["key_map"]["x" * 300]}
    params = got.data.params
    assert len(params["long"]) == 6000 and params["long"].endswith(
        "...[truncated; full value in unilog/config.json]")
    assert params["lr"] == "0.1" and got.data.tags["unilog.param_changed.lr"] == "0.3"
    assert params["p_q"] == "1"  # "p!q" came first; "p_q" collides and is not sent
    changed = [r for r in caplog.records if "changed after it was logged" in r.getMessage()]
    assert len(changed) == 1  # one warning per param, however often it changes
    local = Path(client.download_artifacts(info["id"], "unilog/config.json"))
    assert json.loads(local.read_text())["long"] == long_value


# -- use_artifact through MLflow -------------------------------------------------------


def test_use_artifact_fetches_from_another_machines_run(tmp_path, store):
    import shutil

    options = {"mlflow": {"tracking_uri": store}}
    weights = tmp_path / "weights.bin"
    with unilog.init(project="share", backends=options) as producer:
        weights.write_bytes(b"first" * 100)
        producer.log_artifact(weights, name="model", aliases=["best"])
        weights.write_bytes(b"second" * 100)
        producer.log_artifact(weights, name="model")
    shutil.rmtree(producer.dir)  # the producing run's files are on another machine

    with unilog.init(project="share", backends=options) as consumer:
        best = consumer.use_artifact("model:best")
        assert best.source == "mlflow"
        assert (Path(best.download()) / "weights.bin").read_bytes() == b"first" * 100
        assert sorted(os.listdir(best.download())) == ["weights.bin"]
        latest = Path(consumer.use_artifact("model").download())
        assert (latest / "weights.bin").read_bytes() == b"second" * 100
        assert (Path(consumer.use_artifact("model:v0").file())).read_bytes() == b"first" * 100
        with pytest.raises(unilog.ArtifactError):
            consumer.use_artifact("model:v7")
        with pytest.raises(unilog.ArtifactError):
            consumer.use_artifact("absent:latest")


# -- a server that dies, one that is down, and offline ---------------------------------


def test_server_killed_mid_run(tmp_path):
    with running_server(tmp_path / "server") as server:
        options = {"mlflow": {"tracking_uri": server.uri, "max_retries": 0,
                              "request_timeout": 2}}
        run = unilog.init(project="crash", backends=options)
        for step in range(50):
            run.log({"loss": float(step)})
        assert run.flush(timeout=30)
        server.kill()
        start = time.perf_counter()
        for step in range(50, 1050):
            run.log({"loss": float(step)})
        assert time.perf_counter() - start < 2.0  # the loop never waits for the server
        start = time.perf_counter()
        report = run.finish(timeout=10)
        assert time.perf_counter() - start < 12
    mlflow = report["mlflow"]
    assert mlflow["errors"] > 0 and mlflow["failed"] > 0, mlflow
    assert unilog.read_run(run.dir).manifest["backends"]["mlflow"]["errors"] > 0
    assert [s for s, _ in unilog.read_run(run.dir).series("loss")] == list(range(1050))


def test_offline_skips_a_remote_server_with_one_warning(caplog):
    uri = f"http://127.0.0.1:{free_port()}"
    with caplog.at_level(logging.WARNING, logger="unilog"):
        start = time.perf_counter()
        run = unilog.init(project="offline", backends={"mlflow": {"tracking_uri": uri}},
                          mode="offline")
        for step in range(100):
            run.log({"loss": float(step)})
        run.log_artifact(__file__, name="code")
        report = run.finish(timeout=10)
        assert time.perf_counter() - start < 5
    warnings = [r for r in caplog.records if "mlflow" in r.getMessage()]
    assert len(warnings) == 1 and "offline" in warnings[0].getMessage()
    assert report["mlflow"]["info"] == {"skipped": "offline", "tracking_uri": uri}
    assert report["mlflow"]["errors"] == 0
    data = unilog.read_run(run.dir)
    assert len(data.series("loss")) == 100 and data.artifacts[0].name == "code"


def test_a_down_server_never_stalls_the_run():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.perf_counter()
    run = unilog.init(project="down", backends={"mlflow": {"tracking_uri": uri}})
    assert time.perf_counter() - start < 2
    for step in range(200):
        run.log({"loss": float(step)})
    assert time.perf_counter() - start < 3
    report = run.finish(timeout=8)
    assert time.perf_counter() - start < 11
    mlflow = report["mlflow"]
    assert mlflow["errors"] > 0 or mlflow["timed_out"], mlflow
    assert len(unilog.read_run(run.dir).series("loss")) == 200


def test_bad_options_fail_at_init():
    for options in ({"max_retries": 11}, {"request_timeout": 0}, {"tracking_uir": "x"}):
        with pytest.raises(unilog.ConfigError):
            unilog.init(project="opts", backends={"mlflow": options})


def test_which_stores_need_the_network():
    from unilog_plugins.mlflow_backend import is_remote

    assert not any(map(is_remote, ["sqlite:///a.db", "file:///x", "/abs/path", "rel",
                                   "C:\\runs"]))
    assert all(map(is_remote, ["http://h:5000", "https://h", "databricks",
                               "postgresql://u@h/db"]))
