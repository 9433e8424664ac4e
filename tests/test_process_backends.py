"""``process: True`` (now ``isolation="process"``, the default): a backend's SDK in
unilog's logging process, read back as any backend is."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unilog

from .conftest import subprocess_env
from .readers import read_mlflow, read_tensorboard


def gone(pid: int) -> bool:
    """True when no process ``pid`` is left (the child exited and was reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_tensorboard_in_a_child_process_receives_everything(tmp_path):
    run = unilog.init(project="proc", backends=[{"name": "tensorboard", "process": True}],
                      config={"lr": 0.1, "api_key": "hidden"}, mode="offline")
    for i in range(200):
        run.log({"loss": 1.0 / (i + 1),
                 "hist": unilog.Histogram(np.arange(i + 1)) if i % 50 == 0 else None,
                 "img": unilog.Image(np.full((4, 4, 3), i, dtype=np.uint8)) if i == 7 else None})
    run.summary["best"] = 0.5
    (tmp_path / "model.pt").write_bytes(b"weights")
    run.log_artifact(tmp_path / "model.pt", name="model", aliases=["best"])
    report = run.finish()["tensorboard"]

    assert report["delivered"] == 203 and report["errors"] == 0  # rows, config, summary, artifact
    child = report["process"]
    assert child != os.getpid() and not gone(child)  # it ran elsewhere, which serves on
    tb = read_tensorboard(run.dir)
    assert tb["series"]["loss"] == [(i, pytest.approx(1.0 / (i + 1))) for i in range(200)]
    assert tb["config"]["lr"] == "0.1" and tb["config"]["api_key"] != "hidden"
    assert list(tb["artifacts"]) == ["model:v0"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run.dir / "tensorboard"), size_guidance={"images": 0,
                                                                        "histograms": 0})
    acc.Reload()
    assert [e.step for e in acc.Histograms("hist")] == [0, 50, 100, 150]
    assert [e.step for e in acc.Images("img")] == [7]


def test_mlflow_in_a_child_process_and_use_artifact_through_it(tmp_path):
    run = unilog.init(project="proc", backends=[{"name": "mlflow", "process": True}],
                      mode="offline")
    for i in range(30):
        run.log({"acc": i / 30})
    (tmp_path / "w.bin").write_bytes(b"\x00\x01")
    run.log_artifact(tmp_path / "w.bin", name="weights", aliases=["best"])
    run.flush()
    # The local copy is gone: the file comes back from MLflow, asked in the child.
    shutil.rmtree(run.dir / "artifacts")
    fetched = run.use_artifact("weights:best", timeout=60)
    assert fetched.source == "mlflow"
    with open(fetched.file(), "rb") as f:
        assert f.read() == b"\x00\x01"
    run.finish()
    ml = read_mlflow(run.dir)
    assert [s for s, _ in ml["series"]["acc"]] == list(range(30))
    assert list(ml["artifacts"]) == ["weights:v0"]


def test_a_failing_backend_in_a_process_is_reported_and_training_goes_on():
    run = unilog.init(backends=["csv", {"name": "raising", "process": True}])
    for i in range(100):
        run.log({"x": i})
    report = run.finish(timeout=30)
    assert report["raising"]["errors"] >= 1 and report["raising"]["delivered"] == 0
    assert unilog.read_run(run.dir).series("x") == [(i, i) for i in range(100)]


def test_the_local_record_and_bad_options_are_refused_at_init():
    with pytest.raises(unilog.ConfigError, match="local record"):
        unilog.init(backends=[{"name": "csv", "process": True}])
    with pytest.raises(unilog.ConfigError, match="logdri"):
        unilog.init(backends=[{"name": "tensorboard", "process": True, "logdri": "x"}])


@pytest.mark.slow
def test_a_child_hung_in_its_sdk_is_killed_when_the_training_process_exits(tmp_path):
    script = textwrap.dedent("""
        import unilog
        run = unilog.init(dir=%r, backends=["csv", {"name": "hanging", "process": True}])
        run.log({"x": 1})
        report = run.finish(timeout=2)
        print(report["hanging"]["process"], report["hanging"]["timed_out"])
    """ % str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", script], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    pid, timed_out = proc.stdout.split()
    assert timed_out == "True"
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        pass  # killed at exit (a child is not ours to reap here, so it may linger as a zombie)
    else:
        with open(f"/proc/{pid}/stat") as f:
            assert f.read().split()[2] == "Z", "the hung child is still running"


def test_a_backend_that_fails_to_open_in_a_process_costs_no_other_backend(tmp_path):
    run = unilog.init(backends=["csv", {"name": "fails_to_open", "process": True},
                                "tensorboard"])
    run.log({"x": 1})
    report = run.finish(timeout=30)
    assert report["fails_to_open"]["errors"] == 1
    assert report["fails_to_open"]["disabled"].startswith("failed to open")
    assert report["tensorboard"]["delivered"] == 2 and report["tensorboard"]["errors"] == 0
    # The logging process serves the next run as well.
    second = unilog.init(backends=["tensorboard"])
    second.log({"y": 2})
    assert second.finish(timeout=30)["tensorboard"]["process"] == report["tensorboard"]["process"]
    assert read_tensorboard(second.dir)["series"]["y"] == [(0, 2)]
