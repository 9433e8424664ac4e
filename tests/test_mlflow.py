"""The MLflow backend against real stores, read back with ``MlflowClient``: SQLite
(the default location and a shared one), and a real ``mlflow server`` (round
trip, killed mid-run, down, skipped offline), and several processes creating
one SQLite store at once. No mocks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import unilog

from .conftest import subprocess_env
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
        first.summary["best"] = 5.0  # at the last step, 9
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unilog"):
        with unilog.init(project="resume", id="resumed-run", resume="allow", backends=options,
                         config={"lr": 0.3, "extra": 1}) as second:
            second.summary["best"] = 7.0  # before any row: at the run's last step, not 0
            for _ in range(5):
                second.log({"loss": -1.0})
    assert not [r for r in caplog.records if "changed" in r.getMessage()]  # warned before
    info = mlflow_info(second)
    assert info["id"] == mlflow_info(first)["id"]
    client = client_for(store)
    assert [m.step for m in client.get_metric_history(info["id"], "loss")] == list(range(15))
    got = client.get_run(info["id"])
    assert got.info.status == "FINISHED" and got.data.params == {"lr": "0.1", "extra": "1"}
    best = client.get_metric_history(info["id"], "summary/best")
    assert [(m.step, m.value) for m in best] == [(9, 5.0), (9, 7.0)]
    assert got.data.metrics["summary/best"] == 7.0  # MLflow's latest: highest step wins
    assert got.data.tags["unilog.param_changed.lr"] == "0.3"
    same = client.search_runs([got.info.experiment_id],
                              filter_string="tags.`unilog.run_id` = 'resumed-run'")
    assert len(same) == 1


# -- keys, params ------------------------------------------------------------------


#: key -> the name MLflow gets, spelled out (not computed with the rule under test).
ADAPTED = {"a b": "a b", "a!b": "a_b", "..": "__", "../x": "__/x", "x/..": "x/__",
           "a/./b": "a/_/b", "//x": "x", "/lead": "lead", "trail/": "trail", "...": "__.",
           "..x": "__x", "a//b///c": "a/b/c", "é/ü": "é/ü", "tab\tkey": "tab_key", "": "_",
           "/": "_", ".": "_", "a:b": "a:b", "ok/key": "ok/key", "\ud800bad": "_bad",
           "a/" * 100: "/".join(["a"] * 100)}
LONG_KEYS = ["x" * 300, "x" * 301, "y/" * 200]  # over 250 characters: shortened


def test_key_rule_gives_names_mlflow_accepts():
    from mlflow.utils.validation import (_validate_metric_name, _validate_param_name,
                                         _validate_tag_name)

    from unilog_plugins.mlflow_backend import KEY_RULE

    for key, expected in ADAPTED.items():
        assert KEY_RULE.adapt(key) == expected, key
    shortened = [KEY_RULE.adapt(key) for key in LONG_KEYS]
    digest = [hashlib.sha256(key.encode()).hexdigest()[:8] for key in LONG_KEYS]
    assert shortened[0] == "x" * 241 + "_" + digest[0]
    assert shortened[1] == "x" * 241 + "_" + digest[1] != shortened[0]
    assert shortened[2] == ("y/" * 121)[:241] + "_" + digest[2]
    for name in [*ADAPTED.values(), *shortened]:
        assert len(name) <= 250  # MLflow's limit, checked when a batch is logged
        for validate in (_validate_metric_name, _validate_param_name, _validate_tag_name):
            validate(name)  # raises on a name MLflow refuses
    for refused in ("a!b", "../x", "//x", "x/.."):  # the validators do refuse names
        with pytest.raises(Exception, match="Invalid value"):
            _validate_metric_name(refused)


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
    # "a!b" (metrics, the core's) and "p_q" (config: one error from log_config)
    assert report["collisions"] == 1 and report["errors"] == 1
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
    assert any("config keys 'p!q' and 'p_q' both become 'p_q'" in r.getMessage()
               for r in caplog.records)
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
    assert report["mlflow"]["errors"] == 0 and report["mlflow"]["delivered"] == 0
    assert report["mlflow"]["skipped"] > 100  # counted as skipped, not as errors
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


def test_an_unreachable_server_is_one_short_message(caplog):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="unilog"):
        run = unilog.init(project="down", backends={"mlflow": {"tracking_uri": uri}})
        run.log({"loss": 1.0})
        report = run.finish(timeout=8)
    assert report["mlflow"]["disabled"].startswith("failed to open")
    failures = [r.getMessage() for r in caplog.records if "failed in open" in r.getMessage()]
    assert len(failures) == 1, [r.getMessage() for r in caplog.records]
    assert f"cannot reach the MLflow tracking server {uri} (connection refused)" in failures[0]
    assert len(failures[0].splitlines()) < 12, failures[0]  # was 109 lines of urllib3


def stopped(server):
    """SIGSTOP the server's process group: it accepts connections and never answers."""
    import signal

    @contextlib.contextmanager
    def hung():
        os.killpg(server.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(server.process.pid, signal.SIGCONT)
    return hung()


def test_a_hung_server_outage_is_recovered_and_one_at_finish_is_reported(tmp_path, caplog):
    with running_server(tmp_path / "server") as server:
        options = {"csv": {}, "mlflow": {"tracking_uri": server.uri, "max_retries": 0,
                                         "request_timeout": 2, "retry_interval": 1}}
        # 1. A ~10 s outage mid-run: nothing is lost and the backend stays enabled.
        run = unilog.init(project="hang", backends=options)
        for step in range(20):
            run.log({"loss": float(step)})
        assert run.flush(timeout=60)
        with stopped(server):
            start = time.monotonic()
            for step in range(20, 60):
                run.log({"loss": float(step)})
                time.sleep(0.25)
            assert time.monotonic() - start < 15  # the loop never waits for the server
        for step in range(60, 80):
            run.log({"loss": float(step)})
        report = run.finish(timeout=30)["mlflow"]
        assert report["disabled"] is None and report["errors"] == 0, report
        client = client_for(server.uri)
        got = client.get_run(report["info"]["id"])
        assert got.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(got.info.run_id, "loss")]
        assert sorted(steps) == list(range(80))
        assert not (run.dir / "mlflow" / "undelivered.json").exists()

        # 2. Hung through finish: finish stays bounded and names what the server lacks.
        run = unilog.init(project="hang", backends=options)
        for step in range(10):
            run.log({"loss": float(step)})
        run.log_artifact(__file__, name="code")
        assert run.flush(timeout=60)
        with stopped(server), caplog.at_level(logging.WARNING, logger="unilog"):
            for step in range(10, 20):
                run.log({"loss": float(step), "acc": 0.5})
            start = time.monotonic()
            report = run.finish(timeout=20)["mlflow"]
            assert time.monotonic() - start < 20
        assert report["errors"] == 1 and not report["timed_out"], report
        undelivered = json.loads((run.dir / "mlflow" / "undelivered.json").read_text())
        missing = undelivered["missing"]
        assert missing["metrics"] == {"count": 20, "keys": ["acc", "loss"], "steps": [10, 19]}
        assert missing["status"] == {"count": 1, "names": ["FINISHED"]}
        assert report["missing"]["metrics"]["count"] == 20  # in the finish report too
        assert undelivered["mlflow_run_id"] == report["info"]["id"]
        said = [r.getMessage() for r in caplog.records if "is missing" in r.getMessage()]
        assert len(said) == 1 and "20 metrics (acc, loss; steps 10-19)" in said[0], said
        assert "still shows RUNNING, not FINISHED" in said[0]
        assert client.get_run(report["info"]["id"]).info.status == "RUNNING"
        assert len(unilog.read_run(run.dir).series("loss")) == 20  # the local record has it


def test_bad_options_fail_at_init():
    for options in ({"max_retries": 11}, {"request_timeout": 0}, {"tracking_uir": "x"},
                    {"retry_interval": 0}):
        with pytest.raises(unilog.ConfigError):
            unilog.init(project="opts", backends={"mlflow": options})


def test_which_stores_need_the_network():
    from unilog_plugins.mlflow_backend import is_remote

    assert not any(map(is_remote, ["sqlite:///a.db", "file:///x", "/abs/path", "rel",
                                   "C:\\runs"]))
    assert all(map(is_remote, ["http://h:5000", "https://h", "databricks",
                               "postgresql://u@h/db"]))


# -- several processes, telemetry, credentials ----------------------------------------

#: A child that imports everything first, says so, then opens its run at the parent's
#: signal: the opens of several children coincide, as in a sweep started at once.
PARALLEL_CHILD = """
import json, sys, time
from pathlib import Path
import mlflow.tracking  # the slow import, before the start line
import unilog
root, me = Path(sys.argv[1]), sys.argv[2]
(root / f"ready-{me}").touch()
while not (root / "go").exists():
    time.sleep(0.005)
with unilog.init(project="sweep", dir=str(root / "runs"), backends=["mlflow"],
                 config={"child": me}) as run:
    for step in range(20):
        run.log({"loss": float(step)})
report = unilog.read_run(run.dir).manifest["backends"]["mlflow"]
print(json.dumps({k: report[k] for k in ("errors", "delivered", "disabled", "info")}))
"""


def test_processes_creating_the_default_store_at_once(tmp_path):
    children = [subprocess.Popen([sys.executable, "-c", PARALLEL_CHILD, str(tmp_path), str(i)],
                                 env=subprocess_env(), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for i in range(4)]
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("ready-*"))) < 4 and time.monotonic() < deadline:
            assert all(c.poll() is None for c in children), [c.communicate() for c in children]
            time.sleep(0.02)
        (tmp_path / "go").touch()
        outputs = [c.communicate(timeout=90) for c in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    reports = []
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-3000:]
        reports.append(json.loads(out.strip().splitlines()[-1]))
    for report in reports:  # before the lock: "table ... already exists", alembic errors
        assert report["errors"] == 0 and report["disabled"] is None, report
        assert report["delivered"] > 0
    assert (tmp_path / "runs" / "mlflow" / "mlflow.db.lock").exists()
    client = client_for(reports[0]["info"]["tracking_uri"])
    runs = client.search_runs([reports[0]["info"]["experiment_id"]])
    assert sorted(r.data.params["child"] for r in runs) == ["0", "1", "2", "3"]


#: Records every name lookup; logs offline to the default SQLite store.
TELEMETRY_CHILD = """
import json, socket, sys, threading
hosts = []
real = socket.getaddrinfo
def spy(host, *args, **kwargs):
    hosts.append(host)
    return real(host, *args, **kwargs)
socket.getaddrinfo = spy
import unilog
with unilog.init(project="quiet", dir=sys.argv[1], backends=["mlflow"], mode="offline") as run:
    for step in range(5):
        run.log({"loss": float(step)})
for thread in threading.enumerate():  # mlflow's telemetry fetches its config on a thread
    if "telemetry" in thread.name.lower():
        thread.join(10)
report = unilog.read_run(run.dir).manifest["backends"]["mlflow"]
print(json.dumps({"hosts": [str(h) for h in hosts], "errors": report["errors"],
                  "delivered": report["delivered"]}))
"""
#: What mlflow reads as "telemetry off" or "this is CI/a test" (which also turns it off).
TELEMETRY_OFF = ("MLFLOW_DISABLE_TELEMETRY", "DO_NOT_TRACK", "MLFLOW_TRACKING_URI",
                 "PYTEST_CURRENT_TEST", "CI", "GITHUB_ACTIONS", "CIRCLECI", "GITLAB_CI",
                 "JENKINS_URL", "TRAVIS", "TF_BUILD", "BITBUCKET_BUILD_NUMBER",
                 "CODEBUILD_BUILD_ARN", "BUILDKITE", "TEAMCITY_VERSION", "CLOUD_RUN_EXECUTION",
                 "RUNBOT_HOST_URL", "RUNBOT_BUILD_NAME", "RUNBOT_WORKER_ID")


def test_offline_never_reaches_the_network(tmp_path):
    env = {k: v for k, v in subprocess_env().items() if k not in TELEMETRY_OFF}
    done = subprocess.run([sys.executable, "-c", TELEMETRY_CHILD, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["errors"] == 0 and result["delivered"] > 0
    remote = [h for h in result["hosts"] if h not in ("None", "", "localhost", "127.0.0.1", "::1")]
    assert remote == []  # before: config.mlflow-telemetry.io, from mlflow's telemetry


def test_redact_uri():
    from unilog_plugins.mlflow_backend import _redact_uri

    assert _redact_uri("https://alice:hunter2@h.example.com:5000/p") == \
        "https://alice:***@h.example.com:5000/p"
    assert _redact_uri("https://tok3n@h.example.com") == "https://***@h.example.com"
    assert _redact_uri("postgresql://u:p%40ss@db/mlflow?sslmode=require&password=x") == \
        "postgresql://u:***@db/mlflow?sslmode=require&password=***"
    assert _redact_uri("https://h/?token=abc&access_token=d&api_key=e&x=1") == \
        "https://h/?token=***&access_token=***&api_key=***&x=1"
    for plain in ("sqlite:////tmp/a@b/mlflow.db", "http://127.0.0.1:5000", "databricks",
                  "file:///x", "C:\\runs"):
        assert _redact_uri(plain) == plain


def test_credentials_in_the_uri_stay_out_of_the_record(caplog, mlflow_server):  # noqa: F811
    offline_uri = f"https://alice:{SECRET}@mlflow.example.com/?token={SECRET}x&x=1"
    online_uri = mlflow_server.uri.replace("http://", f"http://bob:{SECRET}@")
    with caplog.at_level(logging.DEBUG, logger="unilog"):
        with unilog.init(project="creds", backends={"mlflow": {"tracking_uri": offline_uri}},
                         mode="offline") as offline:
            offline.log({"x": 1.0})
        with unilog.init(project="creds", backends={"mlflow": {"tracking_uri": online_uri}},
                         on_error="raise") as online:
            online.log({"x": 1.0})
    assert mlflow_info(offline)["tracking_uri"] == \
        "https://alice:***@mlflow.example.com/?token=***&x=1"
    info = mlflow_info(online)
    shown = mlflow_server.uri.replace("http://", "http://bob:***@")
    assert info["tracking_uri"] == shown and info["url"].startswith(shown + "/#/experiments/")
    for run in (offline, online):
        assert SECRET not in (run.dir / "run.json").read_text()
    assert SECRET not in caplog.text
    assert status_of_id(mlflow_server.uri, info["id"]) == "FINISHED"


def status_of_id(uri: str, run_id: str) -> str:
    return client_for(uri).get_run(run_id).info.status


# -- many aliases, collisions outside metrics ----------------------------------------


def test_many_aliases_keep_the_alias_tag_valid_json(tmp_path, store, caplog):
    from unilog_plugins.mlflow_backend import MAX_TAG_VALUE

    options = {"mlflow": {"tracking_uri": store}}
    blob = tmp_path / "ckpt.bin"
    with caplog.at_level(logging.WARNING, logger="unilog"):
        with unilog.init(project="aliases", id="many-aliases", backends=options,
                         on_error="raise") as producer:
            for i in range(520):
                blob.write_bytes(b"%d" % i)
                producer.log_artifact(blob, name="ckpt", aliases=[f"epoch-{i}"])
    cut = [r for r in caplog.records if "too many aliases" in r.getMessage()]
    assert len(cut) == 1  # one warning however many versions follow
    info = mlflow_info(producer)
    client = client_for(store)
    tag = client.get_run(info["id"]).data.tags["unilog.artifact.ckpt"]
    assert len(tag) <= MAX_TAG_VALUE
    aliases = json.loads(tag)["aliases"]  # before: cut mid-JSON at 8,000 characters
    assert aliases["latest"] == 519 and aliases["epoch-519"] == 519
    assert "epoch-0" not in aliases and 400 < len(aliases) < 521
    kept = sorted(v for a, v in aliases.items() if a != "latest")
    assert kept == list(range(520 - len(kept), 520))  # the newest versions, in a row
    manifest = json.loads(Path(client.download_artifacts(
        info["id"], "ckpt/v0/unilog-artifact.json", str(tmp_path / "v0"))).read_text())
    assert "epoch-0" in manifest["aliases"]  # each version keeps its own aliases

    # Resume (it reads the tag back), then a tag no longer JSON (cut by an older version).
    with unilog.init(project="aliases", id="many-aliases", backends=options,
                     resume="must", on_error="raise") as again:
        again.log({"x": 1.0})
    client.set_tag(info["id"], "unilog.artifact.ckpt", tag[:4000] + "...[truncated]")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="unilog"):
        with unilog.init(project="aliases", id="many-aliases", backends=options,
                         resume="must", on_error="raise") as third:
            third.log({"x": 2.0})
    assert any("not a valid alias index" in r.getMessage() for r in caplog.records)
    assert mlflow_info(third)["id"] == info["id"]
    assert unilog.read_run(third.dir).manifest["backends"]["mlflow"]["disabled"] is None

    shutil.move(str(producer.dir), str(tmp_path / "elsewhere"))  # another machine's run
    with unilog.init(project="aliases", backends=options, on_error="raise") as consumer:
        with pytest.raises(unilog.ArtifactError):  # the invalid index is skipped, no crash
            consumer.use_artifact("ckpt:epoch-519")


def test_collisions_in_config_tags_and_summary_raise(store):
    options = {"mlflow": {"tracking_uri": store}}
    run = unilog.init(project="collide", backends=options, tags=["a!b", "a_b"],
                      config={"p!q": 1, "p_q": 2, "other": 3}, on_error="raise")
    try:
        with pytest.raises(unilog.KeyCollisionError) as raised:
            run.flush(timeout=30)
            run.log({"x": 1.0})
        message = str(raised.value)
        assert "config keys 'p!q' and 'p_q' both become 'p_q'" in message
        assert "tags 'a!b' and 'a_b' both become 'unilog.tag.a_b'" in message
        assert "key rule" in message
        run.summary["s!1"] = 1.0
        run.summary["s_1"] = 2.0
        run.summary["t!1"] = "first"
        run.summary["t_1"] = "second"
        run.summary["fine"] = 3.0
        run.log({"x": 2.0})
    finally:
        with pytest.raises(unilog.BackendError, match="summary keys 's!1' and 's_1'"):
            run.finish()
    client = client_for(store)
    got = client.get_run(mlflow_info(run)["id"])
    assert got.info.status == "FINISHED"
    assert got.data.params == {"p_q": "1", "other": "3"}  # the first key's value
    assert got.data.tags["unilog.tag.a_b"] == "a!b"
    assert [m.value for m in client.get_metric_history(got.info.run_id, "summary/s_1")] == [1.0]
    assert got.data.tags["unilog.summary.t_1"] == '"first"'
    assert got.data.metrics["summary/fine"] == 3.0 and got.data.metrics["x"] == 2.0
