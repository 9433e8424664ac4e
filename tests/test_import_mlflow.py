"""``unilog import mlflow``: runs written with ``MlflowClient`` into a SQLite store,
imported and read back with ``unilog.read_run``. No mocks: MLflow writes and reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import unilog
from unilog.cli import main
from unilog.errors import ConfigError

pytest.importorskip("mlflow")

T0 = 1_700_000_000_000  # ms, as MLflow stores times
PARAMS = {"lr": "0.01", "optimizer/name": "adam", "optimizer/beta": "0.9", "epochs": "3"}


def client_for(uri: str):
    import warnings

    with warnings.catch_warnings():  # SQLAlchemy's, when this process opens the store first
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy")
        from mlflow.tracking import MlflowClient

        return MlflowClient(uri)


def write_run(client, experiment_id: str, files: Path, name: str, status: str = "FAILED",
              start: int = T0):
    """A run with params, metric histories at explicit steps and times, tags, a note,
    a file and a folder as artifacts; ended with ``status``."""
    from mlflow.entities import Metric, Param

    run = client.create_run(experiment_id, run_name=name, start_time=start,
                            tags={"team": "vision", "mlflow.note.content": "a note"})
    rid = run.info.run_id
    metrics = [Metric("loss", 1.0 / (s + 1), T0 + 1000 * s + 250, 10 * s) for s in range(4)]
    metrics += [Metric("acc", s / 10, T0 + 1000 * s + 125, 10 * s) for s in (1, 3)]
    client.log_batch(rid, metrics=metrics, params=[Param(k, v) for k, v in PARAMS.items()])
    (files / "notes.txt").write_text("hello")
    (files / "model").mkdir(exist_ok=True)
    (files / "model" / "weights.bin").write_bytes(b"\x00\x01\x02")
    client.log_artifact(rid, str(files / "notes.txt"))
    client.log_artifacts(rid, str(files / "model"), "model")
    if status != "RUNNING":
        client.set_terminated(rid, status, end_time=T0 + 60_000)
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A SQLite store (first use costs ~2 s) with experiment "exp" of two runs, and
    "live" with a run still RUNNING: ``(uri, {name: run id})``."""
    root = tmp_path_factory.mktemp("mlflow")
    uri = "sqlite:///" + (root / "mlflow.db").as_posix()
    client = client_for(uri)
    exp = client.create_experiment("exp", artifact_location=str(root / "artifacts"))
    live = client.create_experiment("live", artifact_location=str(root / "artifacts-live"))
    ids = {"first": write_run(client, exp, root, "first"),
           "second": write_run(client, exp, root, "second", status="FINISHED", start=T0 + 1),
           "running": write_run(client, live, root, "running", status="RUNNING")}
    return uri, ids


@pytest.mark.slow
def test_run_comes_back(store, runs_dir):
    uri, ids = store
    path = unilog.import_run(uri, source="mlflow", run_id=ids["first"], project="ml")
    run = unilog.read_run(path)
    assert path.parent == runs_dir / "ml"
    assert path.name != ids["first"]  # a fresh unilog id
    manifest = run.manifest
    assert run.status == "failed"
    assert manifest["name"] == "first"
    assert manifest["notes"] == "a note"
    assert manifest["tags"] == ["team=vision"]
    # Params are strings (MLflow keeps no types), nested at "/".
    assert run.config == {"lr": "0.01", "epochs": "3",
                          "optimizer": {"name": "adam", "beta": "0.9"}}
    assert run.series("loss") == [(10 * s, 1.0 / (s + 1)) for s in range(4)]
    assert run.series("acc") == [(10, 0.1), (30, 0.3)]
    times = {step: when for step, when, _, _ in run.history}
    assert times == {0: T0 / 1000 + 0.25, 10: T0 / 1000 + 1.125,  # acc is earlier in its step
                     20: T0 / 1000 + 2.25, 30: T0 / 1000 + 3.125}
    assert manifest["created"] == T0 / 1000 and manifest["ended"] == T0 / 1000 + 60
    assert manifest["imported"]["source"] == "mlflow"
    assert manifest["imported"]["from"] == f"{uri} run {ids['first']}"
    artifacts = {a.name: a for a in run.artifacts}
    assert sorted(artifacts) == ["model", "notes.txt"]
    assert artifacts["model"].metadata == {"mlflow_path": "model"}
    assert (Path(artifacts["model"].download()) / "weights.bin").read_bytes() == b"\x00\x01\x02"
    assert (Path(artifacts["notes.txt"].download()) / "notes.txt").read_text() == "hello"


@pytest.mark.slow
def test_experiment_imports_every_run(store):
    uri, ids = store
    paths = unilog.import_runs(tracking_uri=uri, source="mlflow", experiment="exp")
    runs = [unilog.read_run(p) for p in paths]
    assert [r.manifest["name"] for r in runs] == ["first", "second"]
    assert [r.status for r in runs] == ["failed", "finished"]
    assert [r.manifest["imported"]["from"].rsplit(" ", 1)[1] for r in runs] == \
        [ids["first"], ids["second"]]


@pytest.mark.slow
def test_running_run_is_imported_as_killed_and_said_so(store):
    uri, ids = store
    run = unilog.read_run(unilog.import_run(uri, source="mlflow", experiment="live"))
    assert run.status == "killed"
    lost = run.manifest["imported"]["unrepresented"]
    [what] = [w for w in lost if "RUNNING" in w]
    assert lost[what]["examples"] == [ids["running"]]


@pytest.mark.slow
def test_bad_inputs_name_what_was_asked(store, tmp_path):
    uri, _ = store
    with pytest.raises(ConfigError, match=r"no MLflow run 'f00d' in sqlite:///"):
        unilog.import_runs(uri, source="mlflow", run_id="f00d")
    with pytest.raises(ConfigError, match=r"no MLflow experiment named 'nope' .*'exp'"):
        unilog.import_runs(uri, source="mlflow", experiment="nope")
    with pytest.raises(ConfigError, match="--run-id.*--experiment"):
        unilog.import_runs(uri, source="mlflow")
    missing = "sqlite:///" + (tmp_path / "none.db").as_posix()
    with pytest.raises(ConfigError, match="no MLflow database at .*none.db"):
        unilog.import_runs(missing, source="mlflow", experiment="exp")
    assert not (tmp_path / "none.db").exists()  # MLflow was not let to create it


@pytest.mark.slow
def test_cli(store, runs_dir, capsys):
    uri, _ = store
    assert main(["import", "mlflow", "--tracking-uri", uri, "--experiment", "exp"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert all(line.split("  ", 1)[1].startswith("4 rows, 2 keys, 2 artifacts, ")
               for line in lines)
    assert main(["import", "mlflow", uri, "--run-id", "f00d"]) == 1
    assert f"unilog import: no MLflow run 'f00d' in {uri}" in capsys.readouterr().err


@pytest.mark.slow
def test_a_run_unilog_wrote_round_trips(tmp_path):
    uri = "sqlite:///" + (tmp_path / "mlflow.db").as_posix()
    (tmp_path / "model.bin").write_bytes(b"weights")
    config = {"lr": 0.1, "model": {"depth": 3, "act": "relu"}, "flag": True}
    with unilog.init(project="orig", name="written", backends={"mlflow": {"tracking_uri": uri}},
                     config=config, tags=["baseline", "v 2"], notes="round trip",
                     group="grp", on_error="raise") as original:
        for step in range(3):
            original.log({"loss": 1.0 / (step + 1)})
        original.log({"img": unilog.Image(np.zeros((2, 2, 3), dtype=np.uint8))})
        original.summary["best"] = 0.5
        original.summary["note"] = "done"
        original.log_artifact(tmp_path / "model.bin", name="model", type="model",
                              aliases=["best"])
    mlflow_id = unilog.read_run(original.dir).manifest["backends"]["mlflow"]["info"]["id"]
    run = unilog.read_run(unilog.import_run(uri, source="mlflow", run_id=mlflow_id))
    assert run.config == config  # typed, from the run's unilog/config.json
    assert run.manifest["name"] == "written"
    assert run.manifest["tags"] == ["baseline", "v 2"]
    assert run.manifest["notes"] == "round trip" and run.manifest["group"] == "grp"
    # The last values, best and note; the image's path is no summary MLflow got.
    expected = {k: v for k, v in unilog.read_run(original.dir).summary.items() if k != "img"}
    assert run.summary == expected
    assert run.summary["best"] == 0.5 and run.summary["note"] == "done"
    assert run.series("loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert run.status == "finished"
    [model] = [a for a in run.artifacts if a.name == "model"]
    assert model.type == "model" and "best" in model.aliases
    assert (Path(model.download()) / "model.bin").read_bytes() == b"weights"
    # MLflow's stepped images (log_image) come as its artifact folder "images"; the
    # config file unilog/config.json was read as the config, not kept as an artifact.
    assert sorted(a.name for a in run.artifacts) == ["images", "model"]
    assert json.dumps(run.manifest["imported"]["unrepresented"]) == "{}"


@pytest.mark.slow
def test_an_imported_run_syncs_to_tensorboard_and_reads_back(store):
    """MLflow -> unilog -> TensorBoard, failed status kept."""
    from .readers import read_tensorboard

    uri, ids = store
    path = unilog.import_run(uri, source="mlflow", run_id=ids["first"], project="ml2tb")
    report = unilog.sync(path, backends=["tensorboard"])
    assert report.ok and report.runs[0].backends["tensorboard"].status == "failed", str(report)
    got = read_tensorboard(path)
    assert got["series"]["loss"] == [(10 * s, pytest.approx(1.0 / (s + 1))) for s in range(4)]
    assert got["series"]["acc"] == [(10, pytest.approx(0.1)), (30, pytest.approx(0.3))]
    assert got["config"]["optimizer/name"] == "adam"
    assert set(got["artifacts"]) == {"model:v0", "notes.txt:v0"}
