"""The TensorBoard backend, read back with tensorboard's own EventAccumulator:
scalars, every media type, config as hparams and text, tags, artifacts, summary,
a crash mid-run, a killed run, resume, and no torch import for users who log
floats; and served by the real ``tensorboard`` command (both loaders): image
captions and one HParams row per run."""

from __future__ import annotations

import hashlib
import io
import json
import re
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

import unilog

from .conftest import subprocess_env
from .readers import read_tensorboard

np = pytest.importorskip("numpy")
pytest.importorskip("tensorboard")
from PIL import Image as PILImage  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from tensorboard.plugins.hparams import metadata as hparams_metadata  # noqa: E402

SECRET = "tb-secret-value-4711"
STEPS = 120
CONFIG = {
    "lr": 0.001,
    "epochs": 12,
    "use_amp": True,
    "model": {"name": "resnet", "depth": 18, "dims": [64, 128], "head": {"dropout": 0.5}},
    "api_key": SECRET,
    "comment": None,
}
SIZE = {"scalars": 0, "images": 0, "tensors": 0, "histograms": 0}


def accumulator(path: Path) -> EventAccumulator:
    acc = EventAccumulator(str(path), size_guidance=SIZE)
    acc.Reload()
    return acc


def text(acc: EventAccumulator, tag: str) -> list[str]:
    return [e.tensor_proto.string_val[0].decode() for e in acc.Tensors(f"{tag}/text_summary")]


def hparams_of(logdir: Path) -> tuple[dict, dict]:
    """(hparams, plugin content by tag) from the hparams sub-folder."""
    content = accumulator(logdir / "hparams").PluginTagToContent(hparams_metadata.PLUGIN_NAME)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG])
    values = {k: getattr(v, v.WhichOneof("kind")) for k, v in start.hparams.items()}
    return values, content


def record_starts(data: bytes) -> list[int]:
    """Where each TFRecord of an event file starts (length u64, its crc, data, crc)."""
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        at += 16 + struct.unpack("<Q", data[at:at + 8])[0]
    return starts


def loss(i: int) -> float:
    return 1.0 / (i + 1)


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict:
    """One run through csv + tensorboard with everything a run can hold."""
    root = tmp_path_factory.mktemp("tb")
    rgb = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    gray = np.linspace(0, 1, 6 * 4).reshape(6, 4)
    values = np.random.default_rng(0).normal(size=1000)
    table = unilog.Table(columns=["a", "b"], data=[[1, "x|y"], [2, None]])
    weights = root / "weights.bin"
    weights.write_bytes(b"\x00weights" * 100)
    with unilog.init(project="p", dir=root / "runs", backends=["csv", "tensorboard"],
                     config=CONFIG, tags=["baseline", "tb"], notes="first *try*",
                     group="sweep-1", name="resnet-run", on_error="raise") as run:
        for i in range(STEPS):
            row = {"train/loss": loss(i), "train/acc": i / STEPS, "lr": 1e-3 * 0.99 ** i}
            if i % 10 == 0:
                row["val"] = {"metrics": {"acc": 0.5 + i / 1000}, "epoch": i // 10}
            if i in (50, 51):  # beyond a double: infinite in float32
                row["huge"] = 10**400 if i == 50 else -(10**400)
            run.log(row)
        run.log({"media/rgb": unilog.Image(rgb, caption="ramp"),
                 "media/gray": unilog.Image(gray),
                 "media/hist": unilog.Histogram(values, num_bins=20),
                 "media/np_hist": unilog.Histogram(np_histogram=([1, 3, 2], [0.0, 1.0, 2.0, 4.0])),
                 "media/note": unilog.Text("hello **TensorBoard**"),
                 "media/table": table})
        artifact = run.log_artifact(weights, name="model", type="model", aliases=["best"])
        run.summary["best_acc"] = 0.97
        run.summary["best_name"] = "epoch-3"
    return {"run": run, "logdir": run.dir / "tensorboard", "rgb": rgb, "gray": gray,
            "values": values, "table": table, "artifact": artifact,
            "weights_sha": hashlib.sha256(weights.read_bytes()).hexdigest()}


@pytest.fixture(scope="module")
def acc(logged) -> EventAccumulator:
    return accumulator(logged["logdir"])


def test_event_files_sit_in_the_run_directory(logged):
    logdir = logged["logdir"]
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 1
    assert len(list((logdir / "hparams").glob("events.out.tfevents.*"))) == 1
    info = unilog.read_run(logged["run"].dir).manifest["backends"]["tensorboard"]
    assert info["info"]["logdir"] == str(logdir)
    assert not any(info[k] for k in ("errors", "failed", "dropped", "fallback", "undelivered"))


def test_scalars_at_unilogs_steps(acc):
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == list(range(STEPS))
    assert [e.value for e in events] == pytest.approx([loss(i) for i in range(STEPS)], rel=1e-6)
    assert [e.value for e in acc.Scalars("lr")] == pytest.approx(
        [1e-3 * 0.99 ** i for i in range(STEPS)], rel=1e-6)
    nested = acc.Scalars("val/metrics/acc")
    assert [e.step for e in nested] == list(range(0, STEPS, 10))
    assert [e.value for e in nested] == pytest.approx([0.5 + i / 1000 for i in range(0, STEPS, 10)])
    assert [e.value for e in acc.Scalars("val/epoch")] == list(range(STEPS // 10))
    assert [e.value for e in acc.Scalars("huge")] == [float("inf"), float("-inf")]


def test_images_decode_to_the_logged_pixels(acc, logged):
    (rgb,) = acc.Images("media/rgb")
    assert rgb.step == STEPS and (rgb.width, rgb.height) == (7, 5)
    pixels = np.asarray(PILImage.open(io.BytesIO(rgb.encoded_image_string)))
    np.testing.assert_array_equal(pixels, logged["rgb"])
    assert acc.SummaryMetadata("media/rgb").summary_description == "ramp"
    (gray,) = acc.Images("media/gray")
    decoded = np.asarray(PILImage.open(io.BytesIO(gray.encoded_image_string)))
    np.testing.assert_array_equal(decoded, np.rint(logged["gray"] * 255).astype(np.uint8))


def test_histograms_keep_counts_and_edges(acc, logged):
    (event,) = acc.Histograms("media/hist")
    hist = event.histogram_value
    counts, edges = np.histogram(logged["values"], bins=20)
    assert hist.bucket[0] == 0 and list(hist.bucket[1:]) == counts.tolist()
    assert list(hist.bucket_limit) == pytest.approx(edges.tolist())
    assert hist.num == 1000
    assert (hist.min, hist.max) == pytest.approx((logged["values"].min(), logged["values"].max()))
    assert hist.sum == pytest.approx(logged["values"].sum())
    assert hist.sum_squares == pytest.approx((logged["values"] ** 2).sum())
    (given,) = acc.Histograms("media/np_hist")
    assert list(given.histogram_value.bucket) == [0, 1, 3, 2]
    assert list(given.histogram_value.bucket_limit) == [0.0, 1.0, 2.0, 4.0]


def test_text_and_table_as_text(acc, logged):
    assert text(acc, "media/note") == ["hello **TensorBoard**"]
    assert text(acc, "media/table") == [logged["table"].to_markdown()]


def test_config_as_text_and_hparams_without_losing_scalars(acc, logged):
    (config_text,) = text(acc, "config")
    assert json.loads(config_text) == {**CONFIG, "api_key": "***REDACTED***"}
    hparams, content = hparams_of(logged["logdir"])
    assert hparams == {
        "lr": 0.001, "epochs": 12.0, "use_amp": True, "model/name": "resnet",
        "model/depth": 18.0, "model/dims": "[64, 128]", "model/head/dropout": 0.5,
        "api_key": "***REDACTED***", "comment": "None",
    }
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG])
    assert end.status == 1  # STATUS_SUCCESS
    assert len(acc.Scalars("train/loss")) == STEPS  # the hparams clobbered nothing
    summary = accumulator(logged["logdir"] / "hparams").Scalars("summary/best_acc")
    assert [e.value for e in summary] == pytest.approx([0.97])


def test_no_secret_in_any_event_file(logged):
    files = [p for p in logged["logdir"].rglob("*") if p.is_file()]
    assert len(files) == 2
    assert all(SECRET.encode() not in p.read_bytes() for p in files)


def test_run_fields_summary_and_artifact(acc, logged):
    assert text(acc, "run/notes") == ["first *try*"]
    assert text(acc, "run/group") == ["sweep-1"]
    assert text(acc, "run/name") == ["resnet-run"]
    assert [e.value for e in acc.Scalars("summary/best_acc")] == pytest.approx([0.97])
    assert text(acc, "summary/best_name") == ["epoch-3"]
    (record,) = (json.loads(t) for t in text(acc, "artifacts/model"))
    artifact = logged["artifact"]
    assert record["digest"] == artifact.digest and record["aliases"] == ["best", "latest"]
    (file,) = record["files"]
    assert file["path"] == "weights.bin" and file["sha256"] == logged["weights_sha"]
    assert (logged["run"].dir / file["blob"]).read_bytes() == artifact.files[0].blob.read_bytes()


def test_reader(logged):
    data = read_tensorboard(logged["run"].dir)
    assert data["config"] == {
        "lr": "0.001", "epochs": "12", "use_amp": "True", "model/name": "resnet",
        "model/depth": "18", "model/dims": "[64, 128]", "model/head/dropout": "0.5",
        "api_key": "***REDACTED***", "comment": "None",
    }
    assert data["tags"] == {"baseline", "tb"}
    assert data["artifacts"] == {"model:v0": {"weights.bin": logged["weights_sha"]}}
    series = data["series"]
    assert set(series) == {"train/loss", "train/acc", "lr", "val/metrics/acc", "val/epoch",
                           "huge"}
    assert [s for s, _ in series["train/loss"]] == list(range(STEPS))
    assert [v for _, v in series["train/loss"]] == pytest.approx([loss(i) for i in range(STEPS)])
    local = unilog.read_run(logged["run"].dir)
    assert [s for s, _ in local.series("train/acc")] == [s for s, _ in series["train/acc"]]


def test_config_update_rewrites_the_hparams(runs_dir):
    with unilog.init(project="p", backends=["tensorboard"], config={"lr": 0.1},
                     on_error="raise") as run:
        run.log({"x": 1.0})
        assert run.flush()
        run.config.update({"lr": 0.2, "batch": 64})
        run.log({"x": 2.0})
    logdir = run.dir / "tensorboard"
    assert hparams_of(logdir)[0] == {"lr": 0.2, "batch": 64.0}
    assert len(list((logdir / "hparams").iterdir())) == 1
    configs = [json.loads(t) for t in text(accumulator(logdir), "config")]
    assert configs == [{"lr": 0.1}, {"lr": 0.2, "batch": 64}]


def test_resume_appends_a_new_event_file(runs_dir):
    with unilog.init(project="p", id="again", backends=["tensorboard"], tags=["one"]) as run:
        for i in range(5):
            run.log({"x": float(i)})
    with unilog.init(project="p", id="again", resume="must", backends=["tensorboard"],
                     tags=["two"]) as run:
        for i in range(3):
            run.log({"x": 10.0 + i})
    logdir = run.dir / "tensorboard"
    assert len(list(logdir.glob("events.out.tfevents.*"))) == 2
    data = read_tensorboard(run.dir)
    assert data["series"]["x"] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0),
                                   (5, 10.0), (6, 11.0), (7, 12.0)]
    assert data["tags"] == {"one", "two"}


def test_a_torn_last_record_is_skipped_and_resume_goes_on(runs_dir):
    with unilog.init(project="p", id="torn", backends=["tensorboard"]) as run:
        for i in range(50):
            run.log({"x": float(i)})
    (events,) = (run.dir / "tensorboard").glob("events.out.tfevents.*")
    # Killed in the middle of writing x at step 49: what close wrote after it (the
    # run's status) never happened, and the last 7 bytes of that record are missing.
    data = events.read_bytes()
    starts = record_starts(data)
    events.write_bytes(data[:starts[-1] - 7])
    # As if written by a process whose name sorts last (host, pid), in this second:
    # the resumed run's file must still sort after it, or TensorBoard skips one.
    stamp = events.name.split(".")[3]
    events.rename(events.with_name(f"events.out.tfevents.{stamp}.zzzz.99999.99"))
    assert [s for s, _ in read_tensorboard(run.dir)["series"]["x"]] == list(range(49))
    with unilog.init(project="p", id="torn", resume="must", backends=["tensorboard"]) as run:
        run.log({"x": 100.0})
    assert read_tensorboard(run.dir)["series"]["x"][-2:] == [(48, 48.0), (50, 100.0)]


def test_logdir_option_and_out_of_order_rows(tmp_path, runs_dir):
    target = tmp_path / "tb" / "{project}" / "{id}"
    with unilog.init(project="p", id="r7", backends={"tensorboard": {"logdir": target}}) as run:
        run.log({"x": 1.0}, step=10)
        with pytest.warns(unilog.UnilogWarning, match="step"):
            run.log({"x": 2.0}, step=3)  # regressed: TensorBoard still takes it
    logdir = tmp_path / "tb" / "p" / "r7"
    scalars = accumulator(logdir).Scalars("x")
    assert sorted((e.step, e.value) for e in scalars) == [(3, 2.0), (10, 1.0)]
    assert not (run.dir / "tensorboard").exists()
    info = unilog.read_run(run.dir).manifest["backends"]["tensorboard"]["info"]
    assert info["logdir"] == str(logdir)


def test_bad_options_fail_at_init():
    with pytest.raises(unilog.ConfigError, match="logdir"):
        unilog.init(backends={"tensorboard": {"logdir": 3}})
    with pytest.raises(unilog.ConfigError, match="flush_every"):
        unilog.init(backends={"tensorboard": {"flush_every": 3}})


# -- child processes -------------------------------------------------------------------

CRASHING = """
    import os, signal, sys
    import unilog
    run = unilog.init(project="p", id="crash", backends=["tensorboard"],
                      config={{"lr": 0.5}})
    for i in range({n}):
        run.log({{"loss": 1.0 / (i + 1)}})
    {wait}
    {end}
"""


@pytest.mark.slow
@pytest.mark.parametrize("end", ["os._exit(1)", "os.kill(os.getpid(), signal.SIGKILL)"])
@pytest.mark.parametrize("wait", ["assert run.flush(timeout=20)",
                                  "import time; time.sleep(3)"],
                         ids=["explicit-flush", "periodic-flush"])
def test_a_crash_keeps_what_was_flushed(tmp_path, runs_dir, end, wait):
    """Killed after an explicit flush, or after only waiting for the periodic one,
    with TensorBoard on a thread of the process that dies (with the logging
    process, the run is even ended: next test)."""
    n = 200
    code = textwrap.dedent(CRASHING.format(n=n, end=end, wait=wait))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=subprocess_env(
                              UNILOG_DIR=str(runs_dir), UNILOG_ISOLATION="thread"))
    assert proc.returncode in (1, -signal.SIGKILL), proc.stderr
    run_dir = runs_dir / "p" / "crash"
    data = read_tensorboard(run_dir)
    assert [s for s, _ in data["series"]["loss"]] == list(range(n))
    assert [v for _, v in data["series"]["loss"]] == pytest.approx([1 / (i + 1) for i in range(n)])
    assert data["config"] == {"lr": "0.5"}
    hparams, content = hparams_of(run_dir / "tensorboard")
    assert hparams == {"lr": 0.5}
    assert hparams_metadata.SESSION_END_INFO_TAG not in content  # it never ended


@pytest.mark.slow
def test_a_killed_training_process_has_its_run_ended_by_the_logging_process(tmp_path, runs_dir):
    n = 200
    code = textwrap.dedent(CRASHING.format(n=n, wait="assert run.flush(timeout=20)",
                                           end="os.kill(os.getpid(), signal.SIGKILL)"))
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_dir = runs_dir / "p" / "crash"
    deadline = time.monotonic() + 30  # the logging process sees its pipe close, then ends it
    while time.monotonic() < deadline:
        hparams, content = hparams_of(run_dir / "tensorboard")
        if hparams_metadata.SESSION_END_INFO_TAG in content:
            break
        time.sleep(0.2)
    assert hparams_metadata.SESSION_END_INFO_TAG in content
    data = read_tensorboard(run_dir)
    assert [s for s, _ in data["series"]["loss"]] == list(range(n))
    assert hparams == {"lr": 0.5}


NO_TORCH = """
    import sys
    import unilog
    assert "tensorboard" not in sys.modules
    run = unilog.init(project="p", backends=["tensorboard"])
    for i in range(10):
        run.log({"loss": 1.0 / (i + 1)})
    run.finish()
    assert "tensorboard" in sys.modules
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "tensorboardX")))
"""


@pytest.mark.slow
def test_logging_floats_never_imports_torch(tmp_path, runs_dir):
    # On a thread of this process: in the logging process (the default) the
    # training process never even imports tensorboard.
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(NO_TORCH)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir),
                                             UNILOG_ISOLATION="thread"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    (run_dir,) = (runs_dir / "p").iterdir()
    assert len(read_tensorboard(run_dir)["series"]["loss"]) == 10


def test_summary_after_resume_goes_at_the_latest_step_and_huge_ints_fit():
    run = unilog.init(project="p", id="again", backends=["tensorboard"])
    for i in range(10):
        run.log({"x": i})
    run.summary["best"] = 5.0
    run.finish()
    run = unilog.init(project="p", id="again", resume="must", backends=["tensorboard"])
    run.summary["best"] = 7.0
    run.summary["big"] = 10**400
    report = run.finish()
    assert report["tensorboard"]["errors"] == 0
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run.dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    best = [(e.step, e.value) for e in acc.Scalars("summary/best")]
    assert best == [(9, 5.0), (9, 7.0)]  # not (0, 7.0): the resumed run's latest step
    assert acc.Scalars("summary/big")[0].value == float("inf")


KILLED = """
    import time
    import unilog
    run = unilog.init(project="p", id="killed", backends=["csv", "tensorboard"],
                      config={"lr": 0.5})
    for i in range(20):
        run.log({"loss": 1.0 / (i + 1)})
    assert run.flush(timeout=20)
    print("ready", flush=True)
    time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_killed_run_ends_its_session(tmp_path, runs_dir, sig):
    """Ctrl-C or SIGTERM: the backend closes cleanly (TensorBoard's hparams Status has
    no ABORTED), the session ends as a failure and ``run/status`` says killed."""
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert "STATUS_ABORTED" not in err and "Traceback" not in err.split("KeyboardInterrupt")[-1]
    run_dir = runs_dir / "p" / "killed"
    local = unilog.read_run(run_dir)
    assert local.status == "killed"
    report = local.manifest["backends"]["tensorboard"]
    assert not any(report[k] for k in ("errors", "failed", "dropped", "undelivered")), report
    logdir = run_dir / "tensorboard"
    assert len(list((logdir / "hparams").glob("events.out.tfevents.*"))) == 1
    hparams, content = hparams_of(logdir)
    assert hparams == {"lr": 0.5}
    end = hparams_metadata.parse_session_end_info_plugin_data(
        content[hparams_metadata.SESSION_END_INFO_TAG])
    from tensorboard.plugins.hparams import api_pb2

    assert end.status == api_pb2.Status.Value("STATUS_FAILURE")
    assert text(accumulator(logdir), "run/status") == ["killed"]
    assert [v for _, v in read_tensorboard(run_dir)["series"]["loss"]] == pytest.approx(
        [1 / (i + 1) for i in range(20)])


# -- served by the tensorboard command ----------------------------------------------------


@contextmanager
def tensorboard_server(logdir: Path, load_fast: str | None):
    """``tensorboard --logdir`` on a free local port, as a user starts it (``load_fast``
    None: the default, the Rust data server); yields a ``get(path, body=None)`` that
    returns the JSON answer."""
    exe = Path(sys.executable).with_name("tensorboard")
    args = [str(exe), "--logdir", str(logdir), "--host", "127.0.0.1", "--port", "0"]
    if load_fast is not None:
        args.append(f"--load_fast={load_fast}")
    log_path = logdir.parent / f"tensorboard-{load_fast}.log"
    with open(log_path, "w") as log:  # a file, not a pipe: a full pipe would block it
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                env=subprocess_env())
    watchdog = threading.Timer(120, proc.kill)
    watchdog.start()
    try:
        deadline = time.monotonic() + 60
        while not (match := re.search(r"http://127\.0\.0\.1:(\d+)/", log_path.read_text())):
            assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        url = f"http://127.0.0.1:{match.group(1)}"

        def get(path: str, body: dict | None = None) -> dict:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(url + path, data=data,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)

        yield get
    finally:
        watchdog.cancel()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def sweep_runs(tmp_path_factory) -> Path:
    """Two runs of one group, as a Hydra sweep makes them, with a captioned image each."""
    root = tmp_path_factory.mktemp("sweep") / "runs"
    for lr in (0.1, 0.01):
        with unilog.init(project="sweep", dir=root, backends=["tensorboard"], group="lr-sweep",
                         config={"lr": lr}, on_error="raise") as run:
            run.log({"acc": 10 * lr,
                     "samples": unilog.Image(np.zeros((4, 6, 3), np.uint8),
                                             caption=f"pred *{lr}*")})
            run.summary["best_acc"] = 10 * lr
    return root


def wait_for(get, path: str, ready, timeout: float = 30) -> dict:
    """The answer at ``path`` once ``ready(answer)``: the loader reads files in the background."""
    deadline = time.monotonic() + timeout
    while not ready(answer := get(path)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return answer


LOADERS = pytest.mark.parametrize("load_fast", [None, "false"],
                                  ids=["default-loader", "python-loader"])


@pytest.mark.slow
@LOADERS
def test_tensorboard_shows_image_captions(sweep_runs, load_fast):
    """As the docs launch it (the Rust loader) and with ``--load_fast=false``."""
    with tensorboard_server(sweep_runs, load_fast) as get:
        tags = wait_for(get, "/data/plugin/images/tags", lambda t: len(t) == 2)
    descriptions = sorted(info["samples"]["description"] for info in tags.values())
    assert descriptions == ["<p>pred <em>0.01</em></p>", "<p>pred <em>0.1</em></p>"]


@pytest.mark.slow
@LOADERS
def test_tensorboard_hparams_show_one_row_per_run_of_a_group(sweep_runs, load_fast):
    with tensorboard_server(sweep_runs, load_fast) as get:
        wait_for(get, "/data/plugin/scalars/tags", lambda t: len(t) == 4)
        groups = get("/data/plugin/hparams/session_groups", {
            "experimentName": "", "startIndex": 0, "sliceSize": 100,
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                                "STATUS_RUNNING"],
            "colParams": [{"hparam": "lr"}, {"metric": {"group": "", "tag": "summary/best_acc"}}],
        })["sessionGroups"]
    # One row per run, each with its own lr and metric, not one row averaging both.
    assert len(groups) == 2 and all(len(g["sessions"]) == 1 for g in groups)
    rows = {g["hparams"]["lr"]: [m["value"] for m in g["metricValues"]] for g in groups}
    assert rows == {0.1: [pytest.approx(1.0)], 0.01: [pytest.approx(0.1)]}


def test_the_c_checksum_writer_writes_the_bytes_tensorboards_own_writes():
    """With google-crc32c, records are framed with a C CRC32C: byte for byte what
    TensorBoard's pure-Python RecordWriter writes, for any payload."""
    import io

    pytest.importorskip("google_crc32c")
    from tensorboard.summary.writer.record_writer import RecordWriter

    from unilog_plugins.tensorboard_backend import _load_sdk, record_writer

    fast_file, slow_file = io.BytesIO(), io.BytesIO()
    fast = record_writer(_load_sdk(), fast_file)
    assert type(fast) is not RecordWriter  # the C one was taken
    slow = RecordWriter(slow_file)
    for payload in (b"", b"x", bytes(range(256)) * 40, "é".encode() * 1000):
        fast.write(payload)
        slow.write(payload)
    assert fast_file.getvalue() == slow_file.getvalue()
