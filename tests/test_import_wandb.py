"""``unilog import wandb``: offline runs written by the real wandb SDK (in a child
process, as a user's script would) and by unilog's own wandb backend, imported
and read back with ``unilog.read_run``; no mocks, nothing reaches the network."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import unilog
from unilog.errors import ConfigError
from unilog.importers import _wandb_log

from .conftest import subprocess_env
from .readers_wandb import wandb_records

np = pytest.importorskip("numpy")
pytest.importorskip("wandb")
from PIL import Image as PILImage  # noqa: E402

RGB = np.arange(6 * 5 * 3, dtype=np.uint8).reshape(6, 5, 3)
LOSS_STEPS = list(range(0, 20, 2))
CONFIG = {"lr": 0.01, "model": {"depth": 4, "act": "relu"}, "layers": [1, 2]}
ARTIFACT_BYTES = b"\x00weights" * 50

# Written as a user would: wandb's own API, offline, in a process of its own.
NATIVE = textwrap.dedent("""
    import json, sys, wave
    import numpy as np
    import wandb

    root = sys.argv[1]
    wav = root + "/tone.wav"
    with wave.open(wav, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
        w.writeframes(b"\\0\\1" * 800)
    with open(root + "/weights.bin", "wb") as f:
        f.write(ARTIFACT_BYTES)
    run = wandb.init(mode="offline", dir=root, project="wbproj", id="native1",
                     name="native-run", notes="notes *md*", tags=["alpha", "beta"],
                     group="grp", config=CONFIG)
    for i, step in enumerate(LOSS_STEPS):
        run.log({"loss": 1 / (i + 1), "train": {"acc": i / 10}}, step=step)
    run.log({"img": wandb.Image(RGB, caption="cap"),
             "hist": wandb.Histogram(np_histogram=([1, 2, 3], [0.0, 1.0, 2.0, 4.0])),
             "table": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]]),
             "page": wandb.Html("<b>hi</b>"), "sound": wandb.Audio(wav),
             "note": "plain text", "pair": [wandb.Image(RGB), wandb.Image(RGB[::-1])]},
            step=30)
    run.config.update({"batch": 32})
    run.summary["loss"] = 0.001
    run.summary["best_acc"] = 0.95
    artifact = wandb.Artifact("weights", type="model", metadata={"epochs": 3})
    artifact.add_file(root + "/weights.bin")
    run.log_artifact(artifact, aliases=["best"])
    run.finish(exit_code=1)

    second = wandb.init(mode="offline", dir=root, project="wbproj", id="native2")
    second.log({"x": 1.5}, step=0)
    second.finish()
""")


def wandb_env(root: Path) -> dict[str, str]:
    """A child's environment: wandb offline, quiet, every wandb folder under root."""
    env = {k: v for k, v in subprocess_env().items() if not k.startswith("WANDB_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_CONSOLE="off",
               WANDB_X_DISABLE_STATS="true", WANDB_ERROR_REPORTING="false",
               WANDB_DIR=str(root), WANDB_CONFIG_DIR=str(root / "config"),
               WANDB_CACHE_DIR=str(root / "cache"), WANDB_DATA_DIR=str(root / "data"))
    return env


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> dict:
    """Two offline runs written by the wandb SDK, and the first one imported."""
    root = tmp_path_factory.mktemp("native")
    script = (f"ARTIFACT_BYTES = {ARTIFACT_BYTES!r}\nCONFIG = {CONFIG!r}\n"
              f"LOSS_STEPS = {LOSS_STEPS!r}\nimport numpy\n"
              f"RGB = numpy.arange(90, dtype=numpy.uint8).reshape(6, 5, 3)\n{NATIVE}")
    subprocess.run([sys.executable, "-c", script, str(root)], env=wandb_env(root),
                   check=True, timeout=120)
    (folder,) = (root / "wandb").glob("offline-run-*-native1")
    path = unilog.import_run(folder, "wandb", dir=root / "runs", project="imported")
    records = list(wandb_records(next(folder.glob("run-*.wandb"))))
    history = [{i.nested_key[0] if i.nested_key else i.key: i for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    return {"root": root, "folder": folder, "data": unilog.read_run(path), "history": history}


def test_scalars_keep_their_steps_and_wandbs_timestamps(native):
    data = native["data"]
    assert data.series("loss") == [(s, pytest.approx(1 / (i + 1)))
                                   for i, s in enumerate(LOSS_STEPS)]
    assert data.series("train/acc") == [(s, pytest.approx(i / 10))
                                        for i, s in enumerate(LOSS_STEPS)]
    assert data.series("note") == [(30, "plain text")]
    stamps = {int(json.loads(row["_step"].value_json)):
              json.loads(row["_timestamp"].value_json) for row in native["history"]}
    times = {step: when for step, when, _, _ in data.history}
    assert set(times) == set(LOSS_STEPS) | {30}
    for step, when in times.items():
        assert when == pytest.approx(stamps[step], abs=1e-3)
    assert not {k for _, _, k, _ in data.history} & {"_step", "_runtime", "_timestamp",
                                                     "_wandb"}


def test_media_files_exist_and_decode(native):
    data = native["data"]
    media = {key: data.path / value for (_, _, key, value), kind in zip(data.history, data.kinds)
             if kind == "media"}
    assert set(media) == {"img", "hist", "table", "pair/0", "pair/1"}
    for key, pixels in (("img", RGB), ("pair/0", RGB), ("pair/1", RGB[::-1])):
        with PILImage.open(media[key]) as img:
            assert np.array_equal(np.asarray(img.convert("RGB")), pixels), key
    hist = json.loads(media["hist"].read_text())
    assert (hist["counts"], hist["edges"]) == ([1, 2, 3], [0.0, 1.0, 2.0, 4.0])
    assert media["table"].read_text() == "a,b\n1,x\n2,y\n"


def test_identity_config_summary_and_status(native):
    data = native["data"]
    manifest = data.manifest
    assert (manifest["name"], manifest["notes"], manifest["group"]) == \
        ("native-run", "notes *md*", "grp")
    assert manifest["tags"] == ["alpha", "beta"]
    assert "wbproj/native1" in manifest["imported"]["from"]
    (run_record,) = [r.run for r in wandb_records(next(native["folder"].glob("*.wandb")))
                     if r.WhichOneof("record_type") == "run"]
    assert manifest["created"] == pytest.approx(run_record.start_time.ToMicroseconds() / 1e6)
    assert data.config == {**CONFIG, "batch": 32}
    assert data.summary["loss"] == 0.001 and data.summary["best_acc"] == 0.95
    assert data.status == "failed"


def test_audio_and_html_are_reported_not_dropped(native):
    report = native["data"].manifest["imported"]["unrepresented"]
    assert report["audio"] == {"count": 1, "examples": ["sound"]}
    assert report["html"] == {"count": 1, "examples": ["page"]}


def test_logged_artifact_is_imported(native):
    (artifact,) = native["data"].artifacts
    assert (artifact.name, artifact.type, artifact.metadata) == ("weights", "model",
                                                                 {"epochs": 3})
    assert "best" in artifact.aliases
    (f,) = artifact.files
    assert f.path == "weights.bin"
    assert f.sha256 == hashlib.sha256(ARTIFACT_BYTES).hexdigest()


def test_records_agree_with_wandbs_own_reader(native):
    """The framing reader sees every record ``wandb leet inspect --json`` sees."""
    from wandb.util import get_core_path

    log = next(native["folder"].glob("run-*.wandb"))
    out = subprocess.run([get_core_path(), "leet", "inspect", "--no-observability", "--json",
                          "--run-file", str(log), str(log.parent.parent)],
                         capture_output=True, text=True, check=True, timeout=60,
                         env=wandb_env(native["root"]))
    theirs = [(r["num"], r["type"]) for r in map(json.loads, out.stdout.splitlines())]
    damage: list[str] = []
    ours = [(r.num, r.WhichOneof("record_type")) for r in _wandb_log.records(log, damage.append)]
    assert ours == theirs and not damage


def test_a_wandb_folder_imports_each_run_and_run_id_picks_one(native, tmp_path):
    paths = unilog.import_runs(native["root"] / "wandb", "wandb", dir=tmp_path)
    runs = sorted((unilog.read_run(p) for p in paths), key=lambda d: d.manifest["imported"]["from"])
    assert [r.status for r in runs] == ["failed", "finished"]
    assert runs[1].series("x") == [(0, 1.5)]
    (only,) = unilog.import_runs(native["root"], "wandb", dir=tmp_path, run_id="native2")
    assert "native2" in unilog.read_run(only).manifest["imported"]["from"]
    with pytest.raises(ConfigError, match="no wandb run 'nope'"):
        unilog.import_runs(native["root"], "wandb", dir=tmp_path, run_id="nope")
    with pytest.raises(ConfigError, match="no wandb run found"):
        unilog.import_runs(tmp_path / "runs", "wandb", dir=tmp_path)


def test_a_run_cut_off_by_a_crash_is_killed_and_the_damage_reported(native, tmp_path):
    folder = tmp_path / native["folder"].name
    shutil.copytree(native["folder"], folder)
    log = next(folder.glob("run-*.wandb"))
    size = log.stat().st_size
    with open(log, "r+b") as f:  # the exit record and the end of the one before go
        f.truncate(size - 40)
    data = unilog.read_run(unilog.import_run(folder, "wandb", dir=tmp_path / "runs"))
    assert data.status == "killed"
    assert data.series("loss")[-1][0] == LOSS_STEPS[-1]
    report = data.manifest["imported"]["unrepresented"]
    assert any(what.startswith("damaged log") for what in report), report


def test_cli_imports_a_wandb_run(native, tmp_path, capsys):
    from unilog.cli import main

    code = main(["import", "wandb", str(native["folder"]), "--dir", str(tmp_path / "runs"),
                 "--project", "cli"])
    assert code in (0, None), capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs" / "cli").iterdir()
    data = unilog.read_run(run_dir)
    assert data.series("loss")[0] == (0, 1) and data.status == "failed"


# -- a run logged by unilog with its wandb backend, imported back ------------------------


@pytest.mark.slow
def test_unilog_run_through_wandb_comes_back_the_same(tmp_path, monkeypatch):
    for var in [v for v in os.environ if v.startswith("WANDB_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    weights = tmp_path / "model.bin"
    weights.write_bytes(ARTIFACT_BYTES)
    with unilog.init(project="p", dir=tmp_path / "runs", backends=["csv", "wandb"],
                     config=CONFIG, tags=["t1"], name="round", mode="offline",
                     on_error="raise") as run:
        for i in range(12):
            run.log({"train/loss": 1 / (i + 1), "val": {"acc": i / 12}, "lr": 0.1 * 0.9 ** i})
        run.log({"img": unilog.Image(RGB, caption="c"),
                 "hist": unilog.Histogram(np_histogram=([1, 3], [0.0, 0.5, 1.0])),
                 "tab": unilog.Table(columns=["k", "v"], data=[["a", 1], ["b", 2.5]]),
                 "msg": unilog.Text("hello")}, step=20)
        run.summary["best"] = 0.5
        run.log_artifact(weights, name="model", type="model", aliases=["best"],
                         metadata={"epochs": 3})
    original = unilog.read_run(run.dir)
    back = unilog.read_run(unilog.import_run(run.dir, "wandb", dir=tmp_path / "imported"))
    assert _values(back) == _values(original)
    assert _media_digests(back) == _media_digests(original)
    assert back.config == original.config == CONFIG
    assert back.summary["best"] == 0.5
    assert (back.status, back.manifest["name"], back.manifest["tags"]) == ("finished", "round",
                                                                           ["t1"])
    times = {(s, k): t for s, t, k, _ in original.history}
    assert all(times[(s, k)] == pytest.approx(t, abs=1e-3) for s, t, k, _ in back.history)
    (artifact,) = back.artifacts
    ((orig,),) = [a.files for a in original.artifacts]
    assert [(f.path, f.sha256) for f in artifact.files] == [("model.bin", orig.sha256)]
    assert artifact.metadata == {"epochs": 3} and "best" in artifact.aliases


def _values(data) -> dict:
    """{(step, key): value} of every number and text (media: see _media_digests)."""
    media = {k for (_, _, k, _), kind in zip(data.history, data.kinds) if kind == "media"}
    return {(s, k): v for k in {k for _, _, k, _ in data.history} - media
            for s, v in data.series(k)}


def _media_digests(data) -> dict:
    """{(step, key): what the media file holds} (images by their pixels)."""
    out = {}
    for (step, _, key, value), kind in zip(data.history, data.kinds):
        if kind != "media":
            continue
        path = data.path / value
        if path.suffix == ".png":
            with PILImage.open(path) as img:
                out[(step, key)] = np.asarray(img.convert("RGB")).tobytes()
        else:
            out[(step, key)] = path.read_bytes()
    return out


@pytest.mark.slow
def test_an_imported_run_syncs_to_tensorboard_and_reads_back(native):
    """wandb -> unilog -> TensorBoard: the imported run is an ordinary run."""
    from .readers import read_tensorboard

    data = native["data"]
    report = unilog.sync(data.path, backends=["tensorboard"])
    assert report.ok, str(report)
    got = read_tensorboard(data.path)
    assert got["series"]["loss"] == [(s, pytest.approx(1 / (i + 1)))
                                     for i, s in enumerate(LOSS_STEPS)]
    assert got["series"]["train/acc"] == [(s, pytest.approx(i / 10))
                                          for i, s in enumerate(LOSS_STEPS)]
    assert report.runs[0].backends["tensorboard"].status == "failed"
