"""``unilog import tensorboard``: event files written by torch's SummaryWriter, imported
and read back with ``unilog.read_run``. No mocks: torch writes, TensorBoard reads."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unilog
from unilog.cli import main
from unilog.errors import ConfigError

torch = pytest.importorskip("torch")
pytest.importorskip("tensorboard")
from torch.utils.tensorboard import SummaryWriter  # noqa: E402

T0 = 1_700_000_000.0  # explicit wall times, so the import's times can be checked exactly
PIXELS = (np.arange(3 * 4 * 5) * 4 % 256).astype(np.uint8).reshape(3, 4, 5)  # CHW
HPARAMS = {"lr": 0.01, "optimizer": "adam", "layers": 3}


def _when(step: int, offset: float = 0.0) -> float:
    return T0 + step + offset


def write_logdir(logdir: Path) -> None:
    """One run with every kind TensorBoard has, some of which unilog cannot hold."""
    w = SummaryWriter(str(logdir))
    for step in range(5):
        w.add_scalar("loss/train", 1.0 / (step + 1), step, walltime=_when(step, 0.25))
        if step % 2 == 0:  # earlier in its step than loss: the row's time is this one
            w.add_scalar("acc", step / 10, step, walltime=_when(step, 0.125))
    w.add_image("sample", PIXELS, 1, walltime=_when(1, 0.5))
    w.add_histogram("weights", np.linspace(-1, 1, 101), 2, walltime=_when(2, 0.5))
    w.add_text("note", "hello *markdown*", 3, walltime=_when(3, 0.5))
    w.add_audio("sound", torch.zeros(1, 800), 1, sample_rate=8000, walltime=_when(1, 0.5))
    w.add_embedding(torch.ones(4, 2), metadata=["a", "b", "c", "d"], global_step=1)
    w.add_hparams(HPARAMS, {"hparam/best": 0.5})  # into a sub-folder named by the time
    w.close()


@pytest.fixture(scope="module")
def logdir(tmp_path_factory) -> Path:
    """A TensorBoard log folder written once for the module."""
    path = tmp_path_factory.mktemp("tb") / "experiment1"
    write_logdir(path)
    return path


def _only(paths: list[Path]) -> unilog.RunData:
    assert len(paths) == 1, paths
    return unilog.read_run(paths[0])


def test_everything_comes_back(logdir, runs_dir):
    path = unilog.import_run(logdir, source="tensorboard", project="tb")
    run = unilog.read_run(path)
    assert path.parent == runs_dir / "tb"
    # torch's add_hparams wrote into a sub-folder: it is merged into its parent run.
    assert run.manifest["name"] == "experiment1"
    assert run.status == "finished"
    assert run.config == HPARAMS
    assert run.series("loss/train") == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    assert run.series("acc") == [(s, pytest.approx(s / 10)) for s in (0, 2, 4)]
    assert run.series("hparam/best") == [(0, pytest.approx(0.5))]
    assert run.series("note") == [(3, "hello *markdown*")]
    times = {step: when for step, when, _, _ in run.history}
    assert times[1] == pytest.approx(_when(1, 0.25), abs=1e-3)  # loss, before the image
    assert times[2] == pytest.approx(_when(2, 0.125), abs=1e-3)  # acc, the step's earliest
    assert times[4] == pytest.approx(_when(4, 0.125), abs=1e-3)
    assert run.manifest["created"] == pytest.approx(_when(0, 0.125), abs=1e-3)
    imported = run.manifest["imported"]
    assert imported["source"] == "tensorboard"
    assert imported["from"] == str(logdir.absolute())


def test_media_files_decode(logdir):
    from PIL import Image

    run = unilog.read_run(unilog.import_run(logdir, source="tensorboard"))
    [(step, image)] = run.series("sample")
    assert step == 1
    pixels = np.asarray(Image.open(run.path / image))
    assert np.array_equal(pixels, PIXELS.transpose(1, 2, 0))  # PNG: lossless, HWC
    [(step, histogram)] = run.series("weights")
    assert step == 2
    data = json.loads((run.path / histogram).read_text())
    counts, edges = np.array(data["counts"]), np.array(data["edges"])
    assert counts.sum() == 101
    assert len(edges) == len(counts) + 1 and (np.diff(edges) >= 0).all()
    assert np.isfinite(edges).all()
    assert edges[0] <= -1 + 1e-6 and edges[-1] >= 1 - 0.05  # within TB's bucket of the max


def test_unrepresented_is_reported(logdir):
    run = unilog.read_run(unilog.import_run(logdir, source="tensorboard"))
    lost = run.manifest["imported"]["unrepresented"]
    assert lost["audio"] == {"count": 1, "examples": ["sound"]}
    assert lost["embeddings (projector)"]["count"] == 1


def test_folders_are_runs(tmp_path):
    for name, value in (("a", 1.0), ("b/c", 2.0)):
        with SummaryWriter(str(tmp_path / "logs" / name)) as w:
            w.add_scalar("x", value, 7)
    paths = unilog.import_runs(tmp_path / "logs", source="tensorboard")
    runs = {unilog.read_run(p).manifest["name"]: unilog.read_run(p) for p in paths}
    assert sorted(runs) == ["a", "b/c"]
    assert runs["b/c"].series("x") == [(7, 2.0)]
    with pytest.raises(ConfigError, match="holds 2 tensorboard runs"):
        unilog.import_run(tmp_path / "logs", source="tensorboard")


def test_no_event_files(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"no TensorBoard event files .* found in .*empty"):
        unilog.import_runs(tmp_path / "empty", source="tensorboard")
    with pytest.raises(ConfigError, match="does not exist"):
        unilog.import_runs(tmp_path / "nothing", source="tensorboard")
    with pytest.raises(ConfigError, match="option of the mlflow source"):
        unilog.import_runs(tmp_path / "empty", source="tensorboard", run_id="x")


def test_cli(logdir, runs_dir, capsys):
    assert main(["import", "tensorboard", str(logdir), "--project", "cli"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    path, summary = out[0].split("  ", 1)
    assert Path(path).parent == runs_dir / "cli"
    assert summary.startswith("5 rows, 6 keys, 0 artifacts, finished; not represented:")
    assert "1 audio (sound)" in summary


def test_cli_error_names_the_folder(tmp_path, capsys):
    assert main(["import", "tensorboard", str(tmp_path)]) == 1
    assert f"no TensorBoard event files (events.out.tfevents.*) found in {str(tmp_path)!r}" \
        in capsys.readouterr().err


_tags = st.text(min_size=1, max_size=30)
_values = st.floats(allow_nan=True, allow_infinity=True, width=32)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.dictionaries(_tags, _values, min_size=1, max_size=4))
def test_any_scalar_tag_and_value_survives(values):
    with tempfile.TemporaryDirectory() as tmp:
        with SummaryWriter(str(Path(tmp) / "logs")) as w:
            for tag, value in values.items():
                w.add_scalar(tag, value, 3)
        run = _only(unilog.import_runs(Path(tmp) / "logs", source="tensorboard",
                                       dir=Path(tmp) / "runs"))
        got = {key: value for _, _, key, value in run.history}
        assert set(got) == set(values)
        for tag, value in values.items():
            [(step, back)] = run.series(tag)
            assert step == 3
            assert (math.isnan(back) and math.isnan(value)) or back == value


@pytest.mark.slow
def test_an_imported_run_syncs_to_mlflow_and_reads_back(logdir):
    """TensorBoard -> unilog -> MLflow: the imported run is an ordinary run."""
    from .readers import read_mlflow

    path = unilog.import_run(logdir, source="tensorboard", project="tb2ml")
    report = unilog.sync(path, backends=["mlflow"])
    assert report.ok, str(report)
    got = read_mlflow(path)
    assert got["series"]["loss/train"] == [(s, pytest.approx(1.0 / (s + 1))) for s in range(5)]
    assert got["series"]["acc"] == [(s, pytest.approx(s / 10)) for s in (0, 2, 4)]
    assert got["config"] == {k: str(v) for k, v in HPARAMS.items()}
    assert got["status"] == "FINISHED"
