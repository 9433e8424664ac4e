"""``unilog.compat.neptune``: Neptune's quickstart, with only its import changed, logs
the same run to every backend, read back through each backend's own reader; and
the rules of the field API (docs/compat-neptune.md), on the local record."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unilog
import unilog.compat.neptune as neptune
from unilog.compat.neptune.types import File

from .conftest import subprocess_env
from .test_contract import READERS, _reader, read_csv

BACKENDS = ["csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune"]
MODEL = b"weights " * 500
PNG = b"\x89PNG\r\n\x1a\n"
#: Each series of the quickstart below: [(row, value)], by the row rule.
SERIES = {
    "train/loss": [(e, 0.9 ** e) for e in range(10)],       # alternating with train/acc
    "train/acc": [(e, 0.1 * e) for e in range(10)],
    "batch/loss": [(9 + i, 1.0 / (i + 1)) for i in range(100)],  # joins row 9, then 10..
    "val/acc": [(108 + i, i / 10) for i in range(10)],      # joins batch/loss's last row
    "eval/loss": [(117, 0.5), (118, 0.4), (119, 0.3)],      # extend: a row each
    "train/lr": [(130, 0.01)],                              # step= given
}
CONFIG = {"learning_rate": "0.001", "optimizer": "Adam", "dataset/version": "v2"}


def _quickstart(root: Path) -> neptune.Run:
    """Neptune's quickstart and tutorial calls, import swapped, in ``root``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    (root / "train.py").write_text("print('training')\n")
    (root / "model.pt").write_bytes(MODEL)
    (root / "a.csv").write_text("x\n1\n")
    (root / "b.csv").write_text("x\n2\n")
    run = neptune.init_run(
        project="common/quickstarts", api_token=neptune.ANONYMOUS_API_TOKEN,
        tags=["quickstart", "script"], source_files=["*.py"], name="quickstart",
        description="the Neptune quickstart", dependencies="infer",
        capture_hardware_metrics=False, backends=BACKENDS, mode="offline",
        dir=root / "runs", on_error="raise")
    run["parameters"] = {"learning_rate": 0.001, "optimizer": "Adam"}
    run["dataset/version"] = "v2"
    run["sys/tags"].add(["best"])  # after init_run: reaches the live backends too
    for epoch in range(10):
        run["train/loss"].append(0.9 ** epoch)
        run["train/acc"].log(0.1 * epoch)
    for i in range(100):
        run["batch/loss"].append(1.0 / (i + 1))
    for i in range(10):
        run["val/acc"].append(i / 10)
    run["eval/loss"].extend([0.5, 0.4, 0.3])
    fig = plt.figure()
    plt.plot([1, 2, 3])
    run["predictions"].append(File.as_image(fig), description="a line")
    plt.close(fig)
    run["train/lr"].append(0.01, step=130)
    run["model"].upload("model.pt")
    run["data"].upload_files(["a.csv", "b.csv"])
    run["eval/f1_score"] = 0.66
    run.wait()
    run.sync()
    run.stop()
    return run


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> Path:
    """The run directory of one quickstart logged to all six backends, offline."""
    root = tmp_path_factory.mktemp("neptune-quickstart")
    with pytest.MonkeyPatch.context() as mp:  # what conftest's autouse fixture does per test
        for var in [v for v in os.environ if v.startswith("UNILOG_")]:
            mp.delenv(var)
        mp.setenv("MLFLOW_TRACKING_URI", "")
        mp.delenv("MLFLOW_TRACKING_URI")
        mp.setenv("UNILOG_FINISH_TIMEOUT", "60")
        mp.chdir(root)
        run = _quickstart(root)
    assert run.get_state() == "stopped"
    return run.unilog_run.dir


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_quickstart_reaches_every_backend(quickstart, backend):
    assert set(READERS) >= set(BACKENDS)
    got = _reader(backend)(quickstart)
    for key, expected in SERIES.items():
        assert [s for s, _ in got["series"][key]] == [s for s, _ in expected], (backend, key)
        assert [v for _, v in got["series"][key]] == pytest.approx(
            [v for _, v in expected], rel=1e-6), (backend, key)
    assert {k: got["config"].get(k) for k in CONFIG} == CONFIG
    # SwanLab 0.10.3 cannot change a run's tags once it started (docs/backends.md).
    added = set() if backend == "swanlab" else {"best"}
    assert got["tags"] == {"quickstart", "script"} | added
    assert got["artifacts"] == read_csv(quickstart)["artifacts"]
    assert got["artifacts"]["model:v0"] == {"model.pt": hashlib.sha256(MODEL).hexdigest()}
    assert set(got["artifacts"]["data:v0"]) == {"a.csv", "b.csv"}
    assert got["artifacts"]["code:v0"] == {
        "train.py": hashlib.sha256(b"print('training')\n").hexdigest()}


def test_the_quickstart_local_record_has_the_image_summary_and_added_tag(quickstart):
    data = unilog.read_run(quickstart)
    assert data.manifest["project"] == "quickstarts" and data.manifest["name"] == "quickstart"
    assert data.manifest["notes"] == "the Neptune quickstart"
    assert data.manifest["tags"] == ["quickstart", "script", "best"]
    assert data.status == "finished" and data.summary["eval/f1_score"] == 0.66
    assert data.config == {"learning_rate": 0.001, "optimizer": "Adam",
                           "dataset": {"version": "v2"}}
    ((step, image),) = data.series("predictions")
    assert step == 119 and (quickstart / image).read_bytes().startswith(PNG)
    assert [kind for kind, (_, _, key, _) in zip(data.kinds, data.history)
            if key == "predictions"] == ["media"]
    artifacts = {a.name: a.type for a in data.artifacts}
    assert artifacts == {"model": "model", "data": "file", "code": "code"}
    images = _reader("neptune")(quickstart)["images"]["predictions"]
    assert [s for s, _ in images] == [119] and images[0][1].startswith(PNG)


# -- csv-only: the rules ------------------------------------------------------------


def _run(**kwargs) -> neptune.Run:
    options = {"project": "ws/compat", "backends": ["csv"], "mode": "offline",
               "on_error": "raise", **kwargs}
    return neptune.init_run(**options)


def test_rows_follow_the_append_rule_and_explicit_steps():
    run = _run()
    run["a"].append(1)
    run["b"].append(2)          # joins row 0
    run["a"].append(3)          # a is in row 0: row 0 is sent, row 1 begins
    run["pair"].append({"x": 1, "y": 2})  # one row: pair/x and pair/y in row 1
    run["a"].append(4, step=5.0)  # an integral float step is that row
    run["b"].append(5)          # joins the open row 5
    run["c"].extend([7, 8], steps=[6, 9])
    run["d"].log([1, 2])        # log of a list is extend: rows 9 (open) and 10
    with pytest.raises(unilog.StepError, match=r"run\['a'\]: step must be a whole number"):
        run["a"].append(1, step=2.5)
    with pytest.raises(unilog.StepError, match=r"run\['a'\]: step must be"):
        run["a"].append(1, step=True)
    with pytest.raises(unilog.StepError, match="lower than the current step"):
        run["a"].append(1, step=3)  # steps never go back (on_error="raise")
    run.stop()
    data = unilog.read_run(run.unilog_run.dir)
    assert data.series("a") == [(0, 1), (1, 3), (5, 4)]
    assert data.series("b") == [(0, 2), (5, 5)]
    assert data.series("pair/x") == [(1, 1)] and data.series("pair/y") == [(1, 2)]
    assert data.series("c") == [(6, 7), (9, 8)]
    assert data.series("d") == [(9, 1), (10, 2)]


def test_with_id_continues_the_run_and_custom_run_id_allows_a_new_one():
    first = _run(custom_run_id="RUN-12", tags=["a"])  # new: the id is free
    first["parameters"] = {"lr": 0.1}
    first["loss"].extend([3.0, 2.0])
    first.stop()
    again = _run(with_id="RUN-12")
    assert again["parameters/lr"].fetch() == 0.1 and again["sys/tags"].fetch() == {"a"}
    again["loss"].append(1.0)
    again.stop()
    assert unilog.read_run(again.unilog_run.dir).series("loss") == [(0, 3.0), (1, 2.0),
                                                                     (2, 1.0)]
    with pytest.raises(unilog.ConfigError, match="resume='must'"):
        _run(with_id="NOPE-1")
    with pytest.raises(unilog.ConfigError, match="not both"):
        _run(with_id="RUN-12", custom_run_id="RUN-12")


def test_assignments_go_to_config_or_summary_and_fetch_reads_them():
    import numpy as np

    run = _run(name="n", description="d", tags="one")
    run["np/score"] = np.float32(0.25)    # a numpy number: summary
    run["np/flag"] = np.bool_(True)       # a numpy bool, as a bool: config
    run["parameters"] = {"lr": 0.1, "optim": {"name": "adam"}}
    run["parameters/epochs"] = 10          # under parameters: config, number or not
    run["model"] = {"name": "mlp", "depth": 3}  # leaf by leaf: str config, number summary
    run["eval/f1"] = 0.5
    run["eval/passed"] = True
    run["labels"].add(["x", "y"])
    run["labels"].add("x")
    run.assign({"notes": "free text"})
    assert run["parameters"].fetch() == {"lr": 0.1, "optim": {"name": "adam"}, "epochs": 10,
                                         "model": {"name": "mlp"}, "eval": {"passed": True},
                                         "labels": ["x", "y"], "notes": "free text",
                                         "np": {"flag": True}}
    assert run["eval"].fetch() == {"passed": True, "f1": 0.5}
    assert run["model/depth"].fetch() == 3 and run["parameters/optim/name"].fetch() == "adam"
    assert run["sys/name"].fetch() == "n" and run["sys/description"].fetch() == "d"
    assert run["sys/id"].fetch() == run.unilog_run.id and run["sys/tags"].fetch() == {"one"}
    run["sys/name"] = "renamed"  # the unilog run's name and notes: run.json, every backend
    run["sys/description"].assign("about")
    assert (run.unilog_run.name, run.unilog_run.notes) == ("renamed", "about")
    assert run["sys/name"].fetch() == "renamed" and run["sys/description"].fetch() == "about"
    run["s"].append(1.0)
    assert run.exists("s") and run.exists("eval/f1") and not run.exists("nothing")
    with pytest.raises(neptune.NotSupported, match=r"series: read it with unilog.read_run"):
        run["s"].fetch()
    with pytest.raises(KeyError, match="no such field"):
        run["nothing"].fetch()
    run.stop()
    data = unilog.read_run(run.unilog_run.dir)
    assert (data.manifest["name"], data.manifest["notes"]) == ("renamed", "about")
    assert data.summary["eval/f1"] == 0.5 and data.summary["model/depth"] == 3
    assert data.summary["np/score"] == 0.25
    assert data.config["model"] == {"name": "mlp"} and data.config["epochs"] == 10


def test_bad_fields_name_the_path_and_lose_nothing_logged():
    import numpy as np

    run = _run()
    run["loss"].append(1.0)
    with pytest.raises(unilog.InvalidValue, match="cannot log key 'loss'") as caught:
        run["loss"].append([1, 2])
    assert caught.value.key == "loss"
    with pytest.raises(unilog.InvalidValue, match="'acc/top1'.*None"):
        run["acc"].append({"top1": None})
    with pytest.raises(unilog.InvalidValue, match="cannot log key 'loss'"):
        run["loss"].extend([2.0, object()])  # checked before any is logged
    with pytest.raises(TypeError, match=r"run\['weights'\]: an array of shape \(2, 2\)"):
        run["weights"] = np.zeros((2, 2))
    with pytest.raises(TypeError, match=r"run\['parameters/img'\]: a File"):
        run["parameters"] = {"img": File("x.png")}
    with pytest.raises(TypeError, match=r"run\['parameters'\] is the whole config"):
        run["parameters"] = "adam"
    with pytest.raises(neptune.NotSupported, match=r"run\['sys/id'\].*only sys/name and"):
        run["sys/id"] = "other"
    with pytest.raises(unilog.ConfigError, match="non-empty str"):
        run["sys/name"] = ""
    with pytest.raises(FileNotFoundError, match=r"run\['ckpt'\].upload: no such file"):
        run["ckpt"].upload("missing.pt")
    with pytest.raises(FileNotFoundError, match="matches no file"):
        run["files"].upload_files("missing/*.csv")
    with pytest.raises(unilog.InvalidValue, match="a series of files holds images"):
        run["preds"].append(File("notes.txt"))
    with pytest.raises(TypeError, match="a field path is a str"):
        run[3]
    with pytest.raises(neptune.NotSupported, match="fetch_values"):
        run["loss"].fetch_values()
    run.stop()
    assert unilog.read_run(run.unilog_run.dir).series("loss") == [(0, 1.0)]


def test_uploads_become_artifacts_named_after_the_path(tmp_path):
    (tmp_path / "data" / "sub").mkdir(parents=True)
    (tmp_path / "data" / "x.csv").write_text("1")
    (tmp_path / "data" / "sub" / "y.csv").write_text("2")
    (tmp_path / "best.ckpt").write_bytes(b"ckpt")
    run = _run()
    run["checkpoints/best"].upload(str(tmp_path / "best.ckpt"))
    run["checkpoints/best"].upload(File.from_content(b"other", extension="ckpt"))
    run["notes"].upload(File.from_content("hello"))
    run["data"].upload_files(str(tmp_path / "data" / "**" / "*.csv"))
    with pytest.raises(unilog.ArtifactError, match="'checkpoints-best' is already taken"):
        run["checkpoints-best"].upload(str(tmp_path / "best.ckpt"))
    run.stop()
    coded = _run(source_files=[str(tmp_path / "best.ckpt")])
    with pytest.raises(unilog.ArtifactError, match=r"taken by init_run\(source_files"):
        coded["code"].upload(str(tmp_path / "best.ckpt"))
    coded.stop()
    stored = {a.ref: (a.type, sorted(f.path for f in a.files))
              for a in unilog.read_run(run.unilog_run.dir).artifacts}
    assert stored == {"checkpoints-best:v0": ("model", ["best.ckpt"]),
                      "checkpoints-best:v1": ("model", ["best.ckpt"]),
                      "notes:v0": ("file", ["notes.txt"]),
                      "data:v0": ("file", ["sub/y.csv", "x.csv"])}


def test_init_run_arguments(monkeypatch):
    with pytest.raises(TypeError, match="unexpected keyword argument 'capture_everything'"):
        _run(capture_everything=True)
    with pytest.raises(neptune.NotSupported, match="read-only"):
        _run(mode="read-only")
    with pytest.raises(unilog.ConfigError, match="mode must be one of Neptune's"):
        neptune.init_run(mode="online")
    with pytest.raises(unilog.ConfigError, match="Neptune project 'ws/no/way!'"):
        _run(project="ws/no/way!")
    with pytest.raises(neptune.NotSupported, match="runs only"):
        neptune.init_model(key="MOD")
    monkeypatch.setenv("NEPTUNE_API_TOKEN", "")  # set then deleted: gone again after the test
    monkeypatch.delenv("NEPTUNE_API_TOKEN")
    monkeypatch.setenv("NEPTUNE_PROJECT", "team/from-env")
    debug = neptune.init_run(mode="debug", api_token=neptune.ANONYMOUS_API_TOKEN,
                             flush_period=1, git_ref=False, proxies=None)
    assert "NEPTUNE_API_TOKEN" not in os.environ
    assert debug.unilog_run.mode == "disabled" and debug.get_url() is None
    assert debug.unilog_run.project == "from-env"
    debug["x"].append(1)  # a disabled run takes everything and writes nothing
    debug.stop()
    run = neptune.init_run(mode="offline", api_token="secret-token")
    assert os.environ["NEPTUNE_API_TOKEN"] == "secret-token"
    assert run.get_url() == run.unilog_run.dir.as_uri()
    run.stop()
    assert "secret-token" not in (run.unilog_run.dir / "run.json").read_text()
    from unilog.compat.neptune._options import _with_neptune_project

    assert _with_neptune_project(["csv", {"name": "neptune", "x": 1}], "ws/p") == [
        {"name": "csv"}, {"name": "neptune", "x": 1, "project": "ws/p"}]
    assert _with_neptune_project(["csv"], "ws/p") == ["csv"]


def test_a_with_block_that_raises_ends_the_run_failed():
    with pytest.raises(RuntimeError):
        with _run() as run:
            run["loss"].append(1.0)
            raise RuntimeError("boom")
    assert unilog.read_run(run.unilog_run.dir).status == "failed"


def test_file_and_the_types_module_import_like_neptunes():
    import unilog.compat.neptune.types as types_module
    from unilog.compat.neptune.utils import stringify_unsupported

    assert neptune.types.File is File is types_module.File is neptune.File
    assert stringify_unsupported({"a": [1], "b": {"c": Path("p")}, "d": 1}) == {
        "a": "[1]", "b": {"c": "p"}, "d": 1}
    assert stringify_unsupported({"t": ("hi", Path("p"))}, expand=True) == {
        "t": {"0": "hi", "1": "p"}}
    with pytest.raises(neptune.NotSupported, match="no HTML media"):
        File.as_html("<p>")
    with pytest.raises(AttributeError, match="run API only"):
        neptune.management  # noqa: B018
    assert File.from_content("x").extension == "txt" and File("a/b.png").extension == "png"


def test_importing_it_imports_no_sdk_numpy_torch_or_matplotlib():
    code = ("import sys, unilog.compat.neptune\n"
            "heavy = {'neptune', 'numpy', 'torch', 'matplotlib', 'wandb', 'mlflow'}\n"
            "print(' '.join(sorted(heavy & set(sys.modules))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=subprocess_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == []


_PATHS = st.text(min_size=1, max_size=30).filter(
    lambda p: p.split("/")[0] not in ("sys", "parameters"))
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=_PATHS, values=st.lists(_FLOATS, min_size=1, max_size=4), final=_FLOATS)
def test_any_path_and_float_come_back_from_the_local_record_unchanged(path, values, final):
    run = _run()
    for value in values:
        run[path].append(value)
    run[path + "/final"] = final
    run.stop()
    data = unilog.read_run(run.unilog_run.dir)
    assert data.series(path) == list(enumerate(values))
    assert data.summary[path + "/final"] == final
