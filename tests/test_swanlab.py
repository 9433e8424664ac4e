"""The SwanLab backend (swanlab 0.10.3, offline), read back from what SwanLab wrote:
its record stream and files/config.yaml (tests/readers_swanlab.py). Scalars,
media, config, tags, notes, artifact copies, summary, no secret in its files, a
crash mid-run, and a forgotten offline mode that fails fast without prompting."""

from __future__ import annotations

import hashlib
import io
import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import unilog

from .conftest import subprocess_env
from .readers_swanlab import read_swanlab, swanlab_records, swanlab_run_folders

np = pytest.importorskip("numpy")
pytest.importorskip("swanlab")
from PIL import Image as PILImage  # noqa: E402

SECRET = "swanlab-secret-value-0815"
STEPS = 120
CONFIG = {"lr": 0.001, "epochs": 12, "use_amp": True,
          "model": {"name": "resnet", "depth": 18, "dims": [64, 128], "head": {"dropout": 0.5}},
          "api_key": SECRET}


def loss(i: int) -> float:
    return 1.0 / (i + 1)


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict:
    """One run through csv + swanlab with everything a run can hold."""
    root = tmp_path_factory.mktemp("swanlab")
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    gray = (np.arange(6 * 4, dtype=np.uint8) * 10).reshape(6, 4)
    weights = root / "weights.bin"
    weights.write_bytes(b"\x00weights" * 100)
    with unilog.init(project="p", dir=root / "runs", backends=["csv", "swanlab"],
                     config=CONFIG, tags=["baseline", "sw"], notes="first try",
                     group="sweep-1", name="resnet-run", mode="offline",
                     on_error="raise") as run:
        for i in range(STEPS):
            row = {"train/loss": loss(i), "train/acc": i / STEPS, "lr": 1e-3 * 0.99 ** i}
            if i % 10 == 0:
                row["val"] = {"acc": 0.5 + i / 1000, "epoch": i // 10}
            run.log(row)
        run.log({"media/rgb": unilog.Image(rgb, caption="ramp"),
                 "media/gray": unilog.Image(gray),
                 "media/note": unilog.Text("hello **SwanLab**"),
                 "media/hist": unilog.Histogram(np.arange(100.0), num_bins=10),
                 "media/table": unilog.Table(columns=["a", "b"], data=[[1, "x"]])})
        artifact = run.log_artifact(weights, name="model", type="model", aliases=["best"])
        run.summary["best_acc"] = 0.97
    folders = swanlab_run_folders(run.dir)
    assert len(folders) == 1
    return {"run": run, "folder": folders[0], "records": swanlab_records(folders[0]),
            "rgb": rgb, "gray": gray, "artifact": artifact,
            "weights_sha": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_files_sit_in_the_run_directory_and_the_manifest_has_swanlabs_id(logged):
    run = logged["run"]
    info = unilog.read_run(run.dir).manifest["backends"]["swanlab"]
    assert info["errors"] == 0 and info["failed"] == 0
    assert info["info"]["location"] == str(logged["folder"])
    assert logged["folder"].name.endswith("-" + info["info"]["id"])
    assert (logged["folder"] / f"run-{info['info']['id']}.swanlab").is_file()
    assert not Path("swanlog").exists()  # nothing in the working directory


def test_scalars_config_and_tags_read_back(logged):
    data = read_swanlab(logged["run"].dir)
    series = data["series"]
    assert [s for s, _ in series["train/loss"]] == list(range(STEPS))
    assert [v for _, v in series["train/loss"]] == pytest.approx([loss(i) for i in range(STEPS)])
    assert series["val/epoch"] == [(i, float(i // 10)) for i in range(0, STEPS, 10)]
    assert data["config"] == {"lr": "0.001", "epochs": "12", "use_amp": "True",
                              "model/name": "resnet", "model/depth": "18",
                              "model/dims": "[64, 128]", "model/head/dropout": "0.5",
                              "api_key": "***REDACTED***"}
    assert data["tags"] == {"baseline", "sw"}


def test_start_record_has_name_notes_group(logged):
    start = next(r.start for r in logged["records"] if r.WhichOneof("record_type") == "start")
    assert (start.project, start.name, start.description, start.group) == (
        "p", "resnet-run", "first try", "sweep-1")
    finish = [r.finish for r in logged["records"] if r.WhichOneof("record_type") == "finish"]
    assert len(finish) == 1 and "RUN_STATE_FINISHED" in str(finish[0])


def test_no_secret_in_any_swanlab_file(logged):
    files = [p for p in (logged["run"].dir / "swanlab").rglob("*") if p.is_file()]
    assert files and not [p for p in files if SECRET.encode() in p.read_bytes()]


def test_images_and_text_are_native_histograms_and_tables_fall_back(logged):
    media = {r.media.key: r.media for r in logged["records"]
             if r.WhichOneof("record_type") == "media"}
    assert set(media) == {"media/rgb", "media/gray", "media/note"}
    rgb = media["media/rgb"]
    assert rgb.step == STEPS and rgb.value.items[0].caption == "ramp"
    png = next((logged["folder"] / "media").rglob(rgb.value.items[0].filename))
    assert np.array_equal(np.asarray(PILImage.open(io.BytesIO(png.read_bytes())).convert("RGB")),
                          logged["rgb"])
    gray = next((logged["folder"] / "media").rglob(media["media/gray"].value.items[0].filename))
    assert np.array_equal(np.asarray(PILImage.open(gray).convert("L")), logged["gray"])
    note = next((logged["folder"] / "media").rglob(media["media/note"].value.items[0].filename))
    assert note.read_text(encoding="utf-8") == "hello **SwanLab**"
    report = unilog.read_run(logged["run"].dir).manifest["backends"]["swanlab"]
    assert report["fallback"] == 2  # the histogram and the table: files in the local record


def test_artifact_is_a_real_copy_with_its_manifest(logged):
    data = read_swanlab(logged["run"].dir)
    assert data["artifacts"] == {"model:v0": {"weights.bin": logged["weights_sha"]}}
    folder = logged["folder"] / "files" / "artifacts" / "model" / "v0"
    assert not (folder / "weights.bin").is_symlink()
    meta = json.loads((folder / "unilog-artifact.json").read_text(encoding="utf-8"))
    assert meta["type"] == "model" and "best" in meta["aliases"]
    assert meta["digest"] == logged["artifact"].digest
    saves = {r.save.name for r in logged["records"] if r.WhichOneof("record_type") == "save"}
    assert "artifacts/model/v0/weights.bin" in saves  # swanlab sync uploads it


def test_summary_at_the_last_step(logged):
    summary = [(r.scalar.step, r.scalar.value.number) for r in logged["records"]
               if r.WhichOneof("record_type") == "scalar" and r.scalar.key == "summary/best_acc"]
    assert summary == [(STEPS, 0.97)]


def test_bad_options_fail_at_init():
    with pytest.raises(unilog.errors.ConfigError, match="bogus"):
        unilog.init(backends={"swanlab": {"bogus": 1}}, mode="offline")


# -- child processes -------------------------------------------------------------------

CRASHING = """
    import os, time
    import unilog
    run = unilog.init(project="p", id="crash", backends=["swanlab"], mode="offline",
                      config={"lr": 0.5})
    for i in range(200):
        run.log({"loss": 1.0 / (i + 1)})
    assert run.flush(timeout=20)
    time.sleep(2.5)  # SwanLab's queue (~0.5 s) and one timed flush of its file
    os.kill(os.getpid(), 9)
"""


@pytest.mark.slow
def test_a_crash_keeps_what_was_flushed(tmp_path, runs_dir):
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    data = read_swanlab(runs_dir / "p" / "crash")
    assert data["series"]["loss"] == [(i, pytest.approx(1 / (i + 1))) for i in range(200)]
    assert data["config"] == {"lr": "0.5"}
    assert not list(tmp_path.glob("swanlog"))


FORGOTTEN = """
    import json, time
    import unilog
    t = time.monotonic()
    run = unilog.init(project="p", id="online", backends=["csv", "swanlab"], mode="online")
    for i in range(50):
        run.log({"loss": 1.0 / (i + 1)})
    run.finish(timeout=30)
    print(json.dumps({"seconds": time.monotonic() - t}))
"""


@pytest.mark.slow
def test_a_forgotten_offline_mode_fails_fast_without_prompting(tmp_path, runs_dir):
    """mode="online" with no API key anywhere and no terminal: SwanLab's init
    raises at once, the backend is reported, the local record is complete."""
    env = {k: v for k, v in subprocess_env(UNILOG_DIR=str(runs_dir)).items()
           if not k.startswith("SWANLAB_")}
    env["HOME"] = str(tmp_path / "home")  # no ~/.swanlab/.netrc with a saved key
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(FORGOTTEN)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - start < 60
    assert "Enter your choice" not in proc.stdout + proc.stderr
    run = unilog.read_run(runs_dir / "p" / "online")
    report = run.manifest["backends"]["swanlab"]
    assert report["errors"] or report["disabled"], report
    assert [s for s, _ in run.series("loss")] == list(range(50))
    assert run.manifest["status"] == "finished"
    assert not (tmp_path / "swanlog").exists()


def test_resume_offline_adds_a_folder_with_the_same_id(runs_dir):
    for resume in (None, "must"):
        with unilog.init(project="p", id="rr", resume=resume, backends=["swanlab"],
                         mode="offline", on_error="raise") as run:
            for _ in range(5):
                run.log({"x": 1.0})
    folders = swanlab_run_folders(runs_dir / "p" / "rr")
    assert len(folders) == 2 and folders[0].name[-8:] == folders[1].name[-8:]
    assert [s for s, _ in read_swanlab(runs_dir / "p" / "rr")["series"]["x"]] == list(range(10))


def thread_names() -> list[str]:
    import threading

    return sorted(t.name for t in threading.enumerate())


def test_several_runs_in_one_process_each_get_swanlab(runs_dir, monkeypatch):
    import swanlab

    # SwanLab in this process, where the test can see its runs (in the logging
    # process, the default, the same happens there).
    monkeypatch.setenv("UNILOG_ISOLATION", "thread")

    # Sequential runs: SwanLab's per-run file-watcher thread is ended with its run.
    with unilog.init(project="multi", backends=["swanlab"], mode="offline") as run:
        run.log({"x": 0.0})
    after_one = thread_names()
    for k in range(2):
        with unilog.init(project="multi", backends=["swanlab"], mode="offline") as run:
            run.log({"x": float(k)})
    assert thread_names() == after_one

    # A run left open (or a user's own SwanLab run) holds the process's one SwanLab
    # run: the next unilog run gets SwanLab in a child process instead of none.
    first = unilog.init(project="multi", backends=["swanlab"], mode="offline",
                        on_error="raise")
    second = unilog.init(project="multi", backends=["swanlab"], mode="offline",
                         on_error="raise")
    for i in range(5):
        first.log({"x": float(i)})
        second.log({"x": 100.0 + i})
    assert second.flush(timeout=60)
    assert swanlab.has_run()  # the first run's, in this process
    reports = {"second": second.finish()["swanlab"], "first": first.finish()["swanlab"]}
    for report in reports.values():
        assert report["errors"] == 0 and not report["disabled"], report
    assert "process" in reports["second"]["info"] and "process" not in reports["first"]["info"]
    assert read_swanlab(first.dir)["series"]["x"] == [(i, float(i)) for i in range(5)]
    assert read_swanlab(second.dir)["series"]["x"] == [(i, 100.0 + i) for i in range(5)]
    assert not swanlab.has_run()
