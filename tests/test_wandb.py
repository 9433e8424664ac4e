"""The wandb backend with the real ``wandb`` SDK, offline, no mocks: read back
from the run's ``.wandb`` file (``readers_wandb``), every value type, config,
summary, artifacts, exit codes, several runs in one process, resume, a crash,
no network offline, and a forgotten offline mode that fails fast without a
prompt even in a terminal."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import unilog
from unilog.backend import program

from .conftest import subprocess_env
from .readers_wandb import read_wandb, wandb_records

np = pytest.importorskip("numpy")
pytest.importorskip("wandb")
from PIL import Image as PILImage  # noqa: E402

SECRET = "wandb-secret-value-5150"
STEPS = 120
CONFIG = {"lr": 0.001, "epochs": 12, "use_amp": True,
          "model": {"name": "resnet", "depth": 18, "dims": [64, 128], "head": {"dropout": 0.5}},
          "api_key": SECRET, "comment": None}


def loss(i: int) -> float:
    return 1.0 / (i + 1)


def offline_dir(run_dir: Path) -> Path:
    (folder,) = (Path(run_dir) / "wandb").glob("offline-run-*")
    return folder


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict:
    """One offline run through csv + wandb with everything a run can hold."""
    root = tmp_path_factory.mktemp("wandb")
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    gray = np.linspace(0, 1, 6 * 4).reshape(6, 4)
    values = np.random.default_rng(0).normal(size=1000)
    weights = root / "weights.bin"
    weights.write_bytes(b"\x00weights" * 100)
    with unilog.init(project="p", dir=root / "runs", backends=["csv", "wandb"], config=CONFIG,
                     tags=["baseline", "t" * 70], notes="first *try*", group="sweep-1",
                     name="resnet-run", mode="offline", on_error="raise") as run:
        for i in range(STEPS):
            row = {"train/loss": loss(i), "train/acc": i / STEPS}
            if i % 10 == 0:
                row["val"] = {"metrics": {"acc": 0.5 + i / 1000}, "epoch": i // 10}
            if i in (50, 51):
                row["huge"] = 10**400 if i == 50 else -(10**400)
            if i == 7:
                row["_step"] = 1234  # wandb's own key: sent as _step_
            run.log(row)
        run.log({"media/rgb": unilog.Image(rgb, caption="ramp"),
                 "media/gray": unilog.Image(gray),
                 "media/hist": unilog.Histogram(values, num_bins=20),
                 "media/np_hist": unilog.Histogram(np_histogram=([1, 3, 2], [0.0, 1.0, 2.0, 4.0])),
                 "media/note": unilog.Text("hello **wandb**"),
                 "media/table": unilog.Table(columns=["a", "b"], data=[[1, "x|y"], [2, None]])})
        run.config.update({"lr": 0.002, "batch": 64})
        artifact = run.log_artifact(weights, name="model", type="model", aliases=["best"],
                                    metadata={"epochs": 3})
        run.summary["best_acc"] = 0.97
        run.summary["best_name"] = "epoch-3"
    return {"run": run, "data": read_wandb(run.dir), "rgb": rgb, "gray": gray,
            "values": values, "artifact": artifact,
            "weights_sha": hashlib.sha256(weights.read_bytes()).hexdigest()}


def test_the_offline_run_sits_in_the_run_directory(logged):
    run = logged["run"]
    folder = offline_dir(run.dir)
    assert (folder / f"run-{run.id}.wandb").is_file()
    report = unilog.read_run(run.dir).manifest["backends"]["wandb"]
    sync = f"{program('wandb')} sync {folder}"  # wandb as the shell finds it
    assert report["info"] == {"id": run.id, "mode": "offline", "project": "p",
                              "dir": str(folder), "sync": sync, "view": sync}
    assert not any(report[k] for k in ("errors", "failed", "dropped", "fallback", "undelivered"))
    assert report["key_map"] == {"_step": "_step_"}
    assert logged["data"]["exit_code"] == 0


def test_history_at_unilogs_steps(logged):
    series = logged["data"]["series"]
    assert series["train/loss"] == [(i, pytest.approx(loss(i))) for i in range(STEPS)]
    assert [s for s, _ in series["val/metrics/acc"]] == list(range(0, STEPS, 10))
    assert [v for _, v in series["val/epoch"]] == list(range(STEPS // 10))
    assert series["huge"] == [(50, float("inf")), (51, float("-inf"))]
    assert series["_step_"] == [(7, 1234.0)]
    history = logged["data"]["history"]
    assert [row["_step"] for row in history] == list(range(STEPS + 1))  # one row per step
    times = unilog.read_run(logged["run"].dir).history  # (step, time, key, value)
    first = next(t for s, t, k, _ in times if s == 0 and k == "train/loss")
    assert history[0]["_timestamp"] == pytest.approx(first, abs=1e-3)  # the row's own time


def test_images_are_wandb_images_of_the_logged_pixels(logged):
    row = logged["data"]["history"][-1]
    files = offline_dir(logged["run"].dir) / "files"
    rgb = row["media/rgb"]
    assert (rgb["_type"], rgb["width"], rgb["height"], rgb["caption"]) == \
        ("image-file", 7, 5, "ramp")
    np.testing.assert_array_equal(np.asarray(PILImage.open(files / rgb["path"])), logged["rgb"])
    gray = np.asarray(PILImage.open(files / row["media/gray"]["path"]))
    np.testing.assert_array_equal(gray, np.rint(logged["gray"] * 255).astype(np.uint8))


def test_histograms_keep_the_local_records_bins(logged):
    row = logged["data"]["history"][-1]
    counts, edges = np.histogram(logged["values"], bins=20)
    assert row["media/hist"]["_type"] == "histogram"
    assert row["media/hist"]["values"] == counts.tolist()
    assert row["media/hist"]["bins"] == pytest.approx(edges.tolist())
    assert row["media/np_hist"] == {"_type": "histogram", "values": [1, 3, 2],
                                    "bins": [0.0, 1.0, 2.0, 4.0]}


def test_text_is_a_string_and_a_table_a_wandb_table(logged):
    row = logged["data"]["history"][-1]
    assert row["media/note"] == "hello **wandb**"
    table = row["media/table"]
    assert table["_type"] == "table-file"
    stored = json.loads((offline_dir(logged["run"].dir) / "files" / table["path"]).read_text())
    assert stored["columns"] == ["a", "b"] and stored["data"] == [[1, "x|y"], [2, None]]


def test_config_nested_redacted_and_updated(logged):
    data = logged["data"]
    assert data["config"] == {
        "lr": "0.002", "epochs": "12", "use_amp": "True", "model/name": "resnet",
        "model/depth": "18", "model/dims": "[64, 128]", "model/head/dropout": "0.5",
        "api_key": "***REDACTED***", "comment": "None", "batch": "64"}


def test_tags_name_notes_group(logged):
    run = logged["run"]
    (record,) = [r.run for r in wandb_records(offline_dir(run.dir) / f"run-{run.id}.wandb")
                 if r.WhichOneof("record_type") == "run"]
    assert (record.display_name, record.notes, record.run_group, record.project) == \
        ("resnet-run", "first *try*", "sweep-1", "p")
    long = "t" * 70
    assert list(record.tags) == ["baseline", long[:55] + "_" +
                                 hashlib.sha256(long.encode()).hexdigest()[:8]]


def test_summary(logged):
    summary = logged["data"]["summary"]
    assert summary["best_acc"] == 0.97 and summary["best_name"] == "epoch-3"


def test_artifact_files_are_the_run_directorys_blobs(logged):
    (art,) = logged["data"]["raw_artifacts"]
    artifact = logged["artifact"]
    assert (art["name"], art["type"], art["metadata"]) == ("model", "model", {"epochs": 3})
    assert sorted(art["aliases"]) == ["best", "latest"]
    assert art["description"] == f"unilog artifact model:v0 (digest {artifact.digest})"
    assert logged["data"]["artifacts"] == {"model:v0": {"weights.bin": logged["weights_sha"]}}
    run = logged["run"]
    (record,) = [r.artifact for r in wandb_records(offline_dir(run.dir) / f"run-{run.id}.wandb")
                 if r.WhichOneof("record_type") == "artifact" and r.artifact.name == "model"]
    (entry,) = record.manifest.contents
    assert Path(entry.local_path) == artifact.files[0].blob  # no staging copy


def test_no_secret_in_any_wandb_file(logged):
    files = [p for p in (logged["run"].dir / "wandb").rglob("*") if p.is_file()]
    assert files and all(SECRET.encode() not in p.read_bytes() for p in files)


def test_reader_matches_the_local_record(logged):
    local = unilog.read_run(logged["run"].dir)
    series = logged["data"]["series"]
    for key in ("train/loss", "train/acc", "val/metrics/acc"):
        assert [s for s, _ in series[key]] == [s for s, _ in local.series(key)]


# -- endings, several runs, resume -------------------------------------------------


def finished_with(body) -> int | None:
    """The exit code wandb recorded for a run ended by ``body(run)``."""
    run = unilog.init(project="p", backends=["wandb"], mode="offline")
    try:
        body(run)
    except (RuntimeError, KeyboardInterrupt):
        pass
    return read_wandb(run.dir)["exit_code"]


def test_failed_and_killed_runs_get_wandbs_exit_codes(runs_dir):
    def fail(run):
        with run:
            raise RuntimeError("boom")

    def interrupt(run):
        with run:
            raise KeyboardInterrupt

    assert finished_with(fail) == 1
    assert finished_with(interrupt) == 255  # wandb's own code for Ctrl-C
    assert finished_with(lambda run: run.finish(exit_code=3)) == 3
    assert finished_with(lambda run: run.finish()) == 0


def test_several_runs_in_one_process_each_keep_their_own(tmp_path, runs_dir):
    import wandb

    mine = wandb.init(project="mine", dir=tmp_path, mode="offline",  # the user's own run
                      settings=wandb.Settings(silent=True, console="off"))
    dirs = []
    for k in range(3):  # one after another
        with unilog.init(project="p", backends=["wandb"], mode="offline",
                         config={"k": k}) as run:
            for i in range(5):
                run.log({"x": 10 * k + i})
        dirs.append(run.dir)
    first = unilog.init(project="p", backends=["wandb"], mode="offline", config={"k": "a"})
    second = unilog.init(project="p", backends=["wandb"], mode="offline", config={"k": "b"})
    for i in range(5):  # two at once, interleaved
        first.log({"x": 100 + i})
        second.log({"x": 200 + i})
    second.finish()
    first.finish()
    # The user's own wandb run is neither replaced nor finished by unilog's.
    assert wandb.run is mine
    mine.log({"mine": 1.0})  # raises if it was finished
    mine.finish()
    for k, run_dir in enumerate(dirs):
        data = read_wandb(run_dir)
        assert data["series"]["x"] == [(i, 10.0 * k + i) for i in range(5)]
        assert data["config"] == {"k": str(k)} and data["exit_code"] == 0
    assert read_wandb(first.dir)["series"]["x"] == [(i, 100.0 + i) for i in range(5)]
    assert read_wandb(second.dir)["series"]["x"] == [(i, 200.0 + i) for i in range(5)]


def test_resume_adds_an_offline_run_with_the_same_id(runs_dir):
    with unilog.init(project="p", id="again", backends=["wandb"], mode="offline",
                     tags=["one"]) as run:
        for i in range(5):
            run.log({"x": float(i)})
    with unilog.init(project="p", id="again", resume="must", backends=["wandb"],
                     mode="offline", tags=["two"]) as run:
        for i in range(3):
            run.log({"x": 10.0 + i})
        run.summary["best"] = 7.0
    folders = sorted((run.dir / "wandb").glob("offline-run-*"))
    assert len(folders) == 2 and all((f / "run-again.wandb").is_file() for f in folders)
    data = read_wandb(run.dir)
    assert data["series"]["x"] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0),
                                   (5, 10.0), (6, 11.0), (7, 12.0)]
    assert data["tags"] == {"one", "two"} and data["summary"]["best"] == 7.0


def test_rows_whose_step_went_back_stay_in_the_local_record(runs_dir):
    with unilog.init(project="p", backends=["wandb"], mode="offline") as run:
        run.log({"x": 1.0}, step=10)
        with pytest.warns(unilog.UnilogWarning, match="step"):
            run.log({"x": 2.0}, step=3)
    assert read_wandb(run.dir)["series"]["x"] == [(10, 1.0)]
    report = unilog.read_run(run.dir).manifest["backends"]["wandb"]
    assert report["skipped"] == 1 and report["errors"] == 0


def test_options(tmp_path, runs_dir):
    with pytest.raises(unilog.ConfigError, match="mode"):
        unilog.init(backends={"wandb": {"mode": "disabled"}})
    with pytest.raises(unilog.ConfigError, match="init_timeout"):
        unilog.init(backends={"wandb": {"init_timeout": 0}})
    with pytest.raises(unilog.ConfigError, match="settings"):
        unilog.init(backends={"wandb": {"settings": "quiet"}})
    with pytest.raises(unilog.ConfigError, match="entity_name"):
        unilog.init(backends={"wandb": {"entity_name": "me"}})
    # An online unilog run whose wandb backend is told to stay offline; a dir of its own.
    with unilog.init(project="p", id="r7", backends={"wandb": {
            "mode": "offline", "dir": tmp_path / "wb" / "{project}" / "{id}",
            "job_type": "train", "settings": {"x_disable_meta": True}}}) as run:
        run.log({"x": 1.0})
    info = unilog.read_run(run.dir).manifest["backends"]["wandb"]["info"]
    assert info["mode"] == "offline"
    assert Path(info["dir"]).parent == tmp_path / "wb" / "p" / "r7" / "wandb"
    assert not (run.dir / "wandb").exists()
    assert read_wandb(tmp_path / "wb" / "p" / "r7")["series"]["x"] == [(0, 1.0)]


# -- child processes -------------------------------------------------------------------

CRASHING = """
    import os, signal, time
    import unilog
    run = unilog.init(project="p", id="crash", backends=["wandb"], mode="offline",
                      config={"lr": 0.5})
    for i in range(200):
        run.log({"loss": 1.0 / (i + 1)})
    assert run.flush(timeout=20)
    time.sleep(3)  # wandb-core writes its file every second (DEFAULT_SETTINGS)
    members = run._dispatcher.members  # the logging process's pid, if wandb runs there
    print(getattr(getattr(members[-1], "process", None), "pid_of_child", None), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_a_killed_process_keeps_what_wandb_core_wrote(tmp_path, runs_dir, isolation):
    """wandb on a thread of the killed process: what wandb-core wrote stays, and the
    run never ended. In the logging process: the run is ended there, as killed."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASHING)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir),
                                             UNILOG_ISOLATION=isolation))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    if isolation == "process":  # it ends the run once its pipe closes, then exits
        child, deadline = int(proc.stdout.split()[-1]), time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            with open(f"/proc/{child}/stat") as f:
                if f.read().split()[2] == "Z":
                    break
            time.sleep(0.2)
    data = read_wandb(runs_dir / "p" / "crash")
    deadline = time.monotonic() + (30 if isolation == "process" else 0)
    while len(data["series"].get("loss", ())) < 200 and time.monotonic() < deadline:
        time.sleep(0.5)  # wandb-core may still be writing what wandb.finish handed it
        data = read_wandb(runs_dir / "p" / "crash")
    assert data["series"]["loss"] == [(i, pytest.approx(1 / (i + 1))) for i in range(200)]
    assert data["config"] == {"lr": "0.5"}
    if isolation == "thread":
        assert data["exit_code"] is None  # it never ended
    else:
        assert data["exit_code"] not in (None, 0)  # ended, as killed


UNCAUGHT = """
    import unilog
    run = unilog.init(project="p", id="boom", backends=["wandb"], mode="offline")
    run.log({"x": 1.0})
    assert run.flush(timeout=20)
    raise RuntimeError("boom-4711")
"""


@pytest.mark.slow
def test_an_uncaught_exception_prints_one_traceback_and_fails_the_run(tmp_path, runs_dir):
    """wandb's own exit hook would print the traceback a second time (see _keep_excepthook)."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(UNCAUGHT)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == 1
    assert proc.stderr.count("RuntimeError: boom-4711") == 1, proc.stderr
    assert read_wandb(runs_dir / "p" / "boom")["exit_code"] == 1
    assert unilog.read_run(runs_dir / "p" / "boom").manifest["status"] == "failed"


NETWORK_GUARD = """
    # sitecustomize: every Python process of the test (the training process and
    # unilog's logging process) records and refuses any network call.
    import os, socket
    CALLS = os.path.join(os.environ["GUARD_DIR"], "network-calls.txt")
    def record(what):  # at once, to a file: wandb's analytics would export at exit
        with open(CALLS, "a") as f:
            f.write(repr(what) + "\\n")
        raise OSError("no network in this test")
    def refuse(name):
        setattr(socket, name, lambda *args, **kwargs: record((name, args[:2])))
    for name in ("getaddrinfo", "gethostbyname", "create_connection"):
        refuse(name)
    real_connect = socket.socket.connect
    def connect(self, address):
        if self.family != socket.AF_UNIX:
            record(("connect", address))
        return real_connect(self, address)
    socket.socket.connect = connect
"""

NO_NETWORK = """
    import os
    import numpy as np
    import unilog
    with unilog.init(project="p", backends=["wandb"], mode="offline", on_error="raise") as run:
        for i in range(20):
            run.log({"loss": 1.0 / (i + 1)})
        run.log({"t": unilog.Table(columns=["a"], data=[[1]]),
                 "i": unilog.Image(np.zeros((4, 4, 3), np.uint8))})
        with open("f.txt", "w") as f:
            f.write("x")
        run.log_artifact("f.txt", name="f")
    print(os.environ.get("WANDB_ERROR_REPORTING"))
"""


@pytest.mark.slow
@pytest.mark.parametrize("isolation", ["process", "thread"])
@pytest.mark.parametrize("reporting", [None, "true"], ids=["default", "user-enabled"])
def test_offline_makes_no_network_call(tmp_path, runs_dir, reporting, isolation):
    """No call from Python (in the training process or the logging process), nor
    (where strace runs) from wandb-core; with the user's WANDB_ERROR_REPORTING=true,
    wandb's analytics do call out, as the user chose."""
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(textwrap.dedent(NETWORK_GUARD))
    env = subprocess_env(UNILOG_DIR=str(runs_dir), UNILOG_ISOLATION=isolation,
                         GUARD_DIR=str(tmp_path))
    env["PYTHONPATH"] = os.pathsep.join([str(guard), env["PYTHONPATH"]])
    env.pop("WANDB_ERROR_REPORTING", None)
    if reporting:
        env["WANDB_ERROR_REPORTING"] = reporting
    command = [sys.executable, "-c", textwrap.dedent(NO_NETWORK)]
    trace = tmp_path / "strace.txt"
    if shutil.which("strace") and subprocess.run(["strace", "-o", os.devnull, "true"],
                                                 capture_output=True).returncode == 0:
        command = ["strace", "-f", "-e", "trace=connect", "-o", str(trace), *command]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    calls = tmp_path / "network-calls.txt"
    # The backend sets WANDB_ERROR_REPORTING=false where wandb runs, unless the user
    # set it; in the logging process, the training process's environment is untouched.
    where_wandb_ran = reporting or ("false" if isolation == "thread" else "None")
    if reporting:  # the control: the guard does see wandb's analytics
        assert "forge.coreweave.com" in calls.read_text()
        assert proc.stdout.strip() == reporting
        return
    assert proc.stdout.strip() == where_wandb_ran
    assert not calls.exists(), calls.read_text()
    if trace.exists():  # wandb-core is a Go process: its syscalls, not Python's socket
        assert [line for line in trace.read_text().splitlines()
                if "connect(" in line and "AF_UNIX" not in line] == []


@pytest.mark.slow
def test_a_users_error_reporting_setting_is_kept(tmp_path, runs_dir):
    code = ("import os, unilog\n"
            "with unilog.init(backends=['wandb'], mode='offline') as run:\n"
            "    run.log({'x': 1})\n"
            "print(os.environ['WANDB_ERROR_REPORTING'])\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir),
                                             WANDB_ERROR_REPORTING="True"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "True"


ONLINE = """
    import json, time, unilog
    start = time.monotonic()
    run = unilog.init(project="p", id="online", backends=["wandb"])  # mode: online
    for i in range(5):
        run.log({{"loss": 1.0 / (i + 1)}})
    report = run.finish()["wandb"]
    print("RESULT", json.dumps({{"seconds": time.monotonic() - start,
                                 "disabled": report["disabled"]}}))
"""


def run_in_a_terminal(code: str, env: dict, cwd: Path, timeout: float) -> tuple[int, str]:
    """Run ``python -c code`` with stdin, stdout and stderr on a pseudo-terminal, as
    in an interactive shell (where wandb would prompt); returns (exit code, output)."""
    import pty
    import select

    primary, secondary = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=secondary, stdout=secondary,
                            stderr=secondary, env=env, cwd=cwd)
    os.close(secondary)
    output, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(primary, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
    finally:
        os.close(primary)
    return proc.wait(), output.decode("utf-8", "replace")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_forgotten_offline_mode_fails_fast_and_never_prompts(tmp_path, runs_dir):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in subprocess_env(UNILOG_DIR=str(runs_dir)).items()
           if not k.startswith("WANDB_")}
    env.update(HOME=str(home), WANDB_CONFIG_DIR=str(home / "wandb"),
               NETRC=str(home / "netrc"), XDG_CONFIG_HOME=str(home / "config"))
    code, output = run_in_a_terminal(textwrap.dedent(ONLINE.format()), env, tmp_path, 60)
    assert code == 0, output
    assert "Enter your choice" not in output and "API key" not in output
    result = json.loads(output.split("RESULT", 1)[1])
    assert result["seconds"] < 20
    assert result["disabled"].startswith("failed to open: ConfigError: wandb: no credentials")
    local = unilog.read_run(runs_dir / "p" / "online")
    assert [v for _, v in local.series("loss")] == pytest.approx([1 / (i + 1) for i in range(5)])
    # WANDB_MODE=offline, as wandb users set it, is honoured for a unilog run left online.
    env["WANDB_MODE"] = "offline"
    code, output = run_in_a_terminal(textwrap.dedent(ONLINE.format()).replace(
        '"online"', '"online2"'), env, tmp_path, 60)
    assert code == 0, output
    assert json.loads(output.split("RESULT", 1)[1])["disabled"] is None
    assert read_wandb(runs_dir / "p" / "online2")["series"]["loss"][-1] == (4, 0.2)


UNREACHABLE = """
    import json, time, unilog
    start = time.monotonic()
    run = unilog.init(project="p", id="far", backends={"wandb": {"init_timeout": 5}})
    run.log({"loss": 1.0})
    report = run.finish(timeout=60)["wandb"]
    print("RESULT", json.dumps({"seconds": time.monotonic() - start,
                                "disabled": report["disabled"]}))
"""


@pytest.mark.slow
def test_an_unreachable_server_fails_within_init_timeout(tmp_path, runs_dir):
    import socket

    with socket.socket() as sock:  # a local port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in subprocess_env(UNILOG_DIR=str(runs_dir)).items()
           if not k.startswith("WANDB_")}
    env.update(HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wandb"),
               WANDB_API_KEY="x" * 86, WANDB_BASE_URL=f"http://127.0.0.1:{port}")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(UNREACHABLE)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.split("RESULT", 1)[1])
    assert result["seconds"] < 30
    assert result["disabled"].startswith("failed to open: CommError")
    assert unilog.read_run(runs_dir / "p" / "far").series("loss") == [(0, 1.0)]


def test_wandb_mode_disabled_is_honoured(runs_dir, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with unilog.init(project="p", backends=["wandb"]) as run:
        run.log({"x": 1.0})
    report = unilog.read_run(run.dir).manifest["backends"]["wandb"]
    assert report["info"] == {"skipped": "WANDB_MODE=disabled"}
    assert report["skipped"] == 2 and report["errors"] == 0  # the config and the row
    assert not (run.dir / "wandb").exists()


def test_import_unilog_imports_no_wandb(tmp_path):
    code = ("import sys, unilog.plugins; assert 'wandb' in unilog.plugins.available_backends(); "
            "print('wandb' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=subprocess_env())
    assert proc.stdout.strip() == "False", proc.stderr


def test_runs_one_after_another_leave_no_threads_behind(runs_dir):
    import threading

    def names():
        return sorted(t.name for t in threading.enumerate())

    with unilog.init(project="p", backends=["wandb"], mode="offline") as run:
        run.log({"x": 1.0})
    # wandb's service threads (wandb-AsyncioManager-main, wandb-ServiceFinalizer)
    # serve every run of the process and end with it: started once, never again.
    after_one = names()
    for _ in range(2):
        with unilog.init(project="p", backends=["wandb"], mode="offline") as run:
            run.log({"x": 1.0})
    assert names() == after_one
