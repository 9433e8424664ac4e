"""The Neptune backend with the real ``neptune`` 1.x client, no network, no mocks:
read back from the offline operation log (``data-1.log``) and through debug mode's
fetch API; a crash mid-run; a forgotten offline mode that must fail fast."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import unilog

from .conftest import subprocess_env
from .readers_neptune import read_neptune

np = pytest.importorskip("numpy")
pytest.importorskip("neptune")

SECRET = "neptune-secret-value-7731"
STEPS = 120
CONFIG = {"lr": 0.01, "model": {"depth": 3, "act": "relu", "dims": [8, 16]},
          "api_key": SECRET, "flag": True, "comment": None}


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def log_run(tmp_path: Path, options: dict, backends=("csv",)) -> unilog.Run:
    (tmp_path / "model.bin").write_bytes(os.urandom(2048))
    (tmp_path / "data" / "split").mkdir(parents=True)
    (tmp_path / "data" / "split" / "train.txt").write_text("a\nb\n")
    with unilog.init(project="nep", name="nep-run", config=CONFIG, tags=["baseline", "v2"],
                     notes="round trip", group="grp", mode="offline", on_error="raise",
                     backends={**{b: {} for b in backends}, "neptune": options}) as run:
        for step in range(STEPS):
            run.log({"train/loss": 1.0 / (step + 1), "train/acc": step / STEPS,
                     "val": {"score": float(step % 7)}, "epoch": step // 10,
                     "sys/evil": 1.0})
        with pytest.warns(unilog.UnilogWarning, match="nan"):
            run.log({"nan": float("nan")}, step=STEPS)
        run.log({"media/img": unilog.Image(np.full((6, 5, 3), 200, dtype=np.uint8),
                                           caption="cap"),
                 "media/hist": unilog.Histogram(np.arange(50.0), num_bins=5),
                 "media/txt": unilog.Text("some text"),
                 "media/tab": unilog.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])},
                step=STEPS + 1)
        run.summary["best_acc"] = 0.97
        run.summary["note"] = "done"
        run.log_artifact(tmp_path / "model.bin", name="model", type="model",
                         aliases=["best"], metadata={"epochs": 3})
        run.log_artifact(tmp_path / "data", name="dataset", type="dataset")
    return run


def test_offline_round_trip_from_the_operation_log(tmp_path, monkeypatch):
    monkeypatch.delenv("NEPTUNE_DATA_DIRECTORY", raising=False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    run = log_run(tmp_path, {})
    assert list(cwd.iterdir()) == []  # nothing in the user's working directory
    assert "NEPTUNE_DATA_DIRECTORY" not in os.environ  # restored after init
    report = unilog.read_run(run.dir).manifest["backends"]["neptune"]
    assert report["errors"] == 0 and report["delivered"] > 0, report
    assert report["info"]["mode"] == "offline"
    logs = list((run.dir / "neptune" / "offline").glob(f"run__{report['info']['id']}__*/data-1.log"))
    assert len(logs) == 1

    got = read_neptune(run.dir)
    assert got["series"]["train/loss"] == [(s, pytest.approx(1 / (s + 1))) for s in range(STEPS)]
    assert got["series"]["val/score"] == [(s, float(s % 7)) for s in range(STEPS)]
    assert got["series"]["epoch"][-1] == (STEPS - 1, (STEPS - 1) // 10)
    assert "_sys/evil" in got["series"] and "nan" not in got["series"]  # NaN left out
    assert got["config"]["lr"] == "0.01" and got["config"]["model/depth"] == "3"
    assert got["config"]["model/dims"] == "[8, 16]" and got["config"]["flag"] == "True"
    assert got["config"]["comment"] == "None" and got["config"]["api_key"] != SECRET
    assert got["tags"] == {"baseline", "v2"}
    png = got["images"]["media/img"]
    assert png[0][0] == STEPS + 1 and png[0][1].startswith(b"\x89PNG")
    assert got["uploads"][f"media/tab/step_{STEPS + 1}"] == b"a,b\r\n1,x\r\n2,y\r\n" or \
        b"1,x" in got["uploads"][f"media/tab/step_{STEPS + 1}"]
    assert got["artifacts"]["model:v0"] == {"model.bin": sha(tmp_path / "model.bin")}
    assert got["artifacts"]["dataset:v0"] == {
        "split/train.txt": sha(tmp_path / "data" / "split" / "train.txt")}
    manifest = json.loads(got["uploads"]["artifacts/model/v0/manifest"])
    assert manifest["type"] == "model" and manifest["metadata"] == {"epochs": 3}
    assert sorted(manifest["aliases"]) == ["best", "latest"]

    ops = [json.loads(line)["obj"] for line in logs[0].read_text().splitlines()]
    assigned = {"/".join(o["path"]): o.get("value") for o in ops if o["type"].startswith("Assign")}
    assert assigned["sys/name"] == "nep-run" and assigned["sys/description"] == "round trip"
    assert assigned["summary/best_acc"] == 0.97 and assigned["summary/note"] == '"done"'
    assert assigned["unilog/run_id"] == run.id and assigned["unilog/status"] == "finished"
    assert assigned["artifacts/model/aliases/best"] == 0
    assert assigned["artifacts/model/v0/type"] == "model"
    assert {"type": "AddStrings", "path": ["sys", "group_tags"], "values": ["grp"]} in ops
    texts = [o for o in ops if o["type"] == "LogStrings"]
    assert texts[0]["path"] == ["media", "txt"] and texts[0]["values"][0]["value"] == "some text"
    for path in (run.dir / "neptune").rglob("*"):  # the secret is in none of its files
        assert path.is_dir() or SECRET.encode() not in path.read_bytes(), path


def test_debug_mode_fetch_api_and_failed_ending():
    from unilog_plugins.neptune_backend import DEBUG_RUNS

    with pytest.raises(RuntimeError):
        with unilog.init(project="nep", config=CONFIG, tags=["t1"], mode="offline",
                         # debug mode keeps the run in the memory of the process that
                         # runs the SDK: this one, to read it here
                         backends={"neptune": {"sdk_mode": "debug",
                                               "isolation": "thread"}}) as run:
            for step in range(30):
                run.log({"train/loss": float(step), "acc": step / 30})
            raise RuntimeError("boom")
    nrun = DEBUG_RUNS.pop(run.id)
    try:
        values = nrun["train/loss"].fetch_values()
        assert list(values["step"]) == list(range(30))
        assert list(values["value"]) == [float(s) for s in range(30)]
        params = nrun["parameters"].fetch()
        assert params["model"] == {"depth": 3, "act": "relu", "dims": "[8, 16]"}
        assert params["api_key"] != SECRET
        assert nrun["sys/tags"].fetch() == {"t1"}
        assert nrun["sys/failed"].fetch() is True
        assert nrun["unilog/status"].fetch() == "failed"
    finally:
        nrun.stop()


CRASH = """
import os, signal, unilog
run = unilog.init(project="crash", mode="offline", backends=["csv", "neptune"],
                  config={"lr": 0.5})
for step in range(60):
    run.log({"loss": float(step)})
assert run.flush(timeout=30)
print(run.dir, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_crash_mid_run_leaves_a_readable_log(tmp_path, runs_dir):
    proc = subprocess.run([sys.executable, "-c", CRASH], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == -9, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    got = read_neptune(run_dir)
    assert got["series"]["loss"] == [(s, float(s)) for s in range(60)]
    assert got["config"] == {"lr": "0.5"}
    assert not list(tmp_path.glob(".neptune"))


FORGOTTEN = """
import json, time, unilog
start = time.monotonic()
run = unilog.init(project="forgot", mode="online", backends=["csv", "neptune"])
for step in range(50):
    run.log({"loss": float(step)})
report = run.finish(timeout=30)
print(json.dumps({"seconds": time.monotonic() - start, "dir": str(run.dir),
                  "neptune": {k: report["neptune"][k] for k in ("errors", "disabled")}}))
"""


def test_a_forgotten_offline_mode_fails_fast(tmp_path, runs_dir):
    env = {k: v for k, v in subprocess_env(UNILOG_DIR=str(runs_dir)).items()
           if not k.startswith("NEPTUNE_")}
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", FORGOTTEN], cwd=tmp_path, capture_output=True,
                          text=True, timeout=90, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 60
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["seconds"] < 30, result
    assert result["neptune"]["errors"] > 0 or result["neptune"]["disabled"], result
    assert "API token" in proc.stderr or "api_token" in proc.stderr.lower(), proc.stderr
    assert len(unilog.read_run(result["dir"]).series("loss")) == 50
    assert [p.name for p in tmp_path.iterdir()] == ["runs"]  # nothing in the working dir


def test_bad_sdk_mode_fails_at_init():
    with pytest.raises(unilog.ConfigError):
        unilog.init(project="opts", backends={"neptune": {"sdk_mode": "online"}})


FORKED = """
import os, sys, time
from pathlib import Path
from unilog.backend import RunInfo
from unilog_plugins.neptune_backend import NeptuneBackend

run_dir = Path(sys.argv[1])
backend = NeptuneBackend()
backend.open(RunInfo(id="forkrun", name="f", project="p", dir=run_dir, mode="offline",
                     config={}))
backend.neptune_run["parent/x"] = 1.0
backend.flush()
# Another thread of the user's process resets the environment (a patched environ in
# a test fixture, say): the run's files must stay where they are.
os.environ["NEPTUNE_DATA_DIRECTORY"] = "elsewhere"
os.environ.pop("NEPTUNE_DATA_DIRECTORY")
pid = os.fork()
if pid == 0:  # a DataLoader-like worker that touches the inherited run
    backend.neptune_run["child/x"] = 2.0
    backend.neptune_run.stop()
    os._exit(0)
os.waitpid(pid, 0)
backend.close("finished", 0)
print("OK")
"""


def test_files_stay_in_the_run_directory_from_another_cwd_and_in_forked_children(tmp_path):
    cwd, run_dir = tmp_path / "cwd", tmp_path / "runs" / "p" / "forkrun"
    cwd.mkdir()
    run_dir.mkdir(parents=True)
    env = {k: v for k, v in subprocess_env().items() if k != "NEPTUNE_DATA_DIRECTORY"}
    proc = subprocess.run([sys.executable, "-c", FORKED, str(run_dir)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr
    assert list(cwd.iterdir()) == []  # no ./.neptune in the working directory
    folders = sorted((run_dir / "neptune" / "offline").glob("run__*"))
    assert len(folders) == 2  # the parent's and the forked child's (neptune's own layout)
    written = "".join(p.read_text() for f in folders for p in f.glob("data-*.log"))
    assert '"path": ["child", "x"]' in written and '"path": ["parent", "x"]' in written


def test_a_key_neptune_refuses_costs_only_that_key_and_nothing_twice():
    """``a`` beside ``a/b`` (a field and a namespace of the same path): Neptune
    refuses the later one; unilog resends the batch split, and the points the
    first try stored are not stored again."""
    run = unilog.init(project="nep", backends=["neptune"], mode="offline",
                      isolation="thread")
    for step in range(3):
        run.log({"x": float(step), "a": 1.0} if step == 0 else
                {"x": float(step), "a/b": 2.0} if step == 1 else {"x": float(step)})
    report = run.finish()
    got = read_neptune(run.dir)["series"]
    assert got["x"] == [(0, 0.0), (1, 1.0), (2, 2.0)]  # each point once
    assert got["a"] == [(0, 1.0)] and "a/b" not in got
    assert report["neptune"]["failed_values"] == 1
