"""One contract for every backend: the same run, read back through each backend's
own reader, gives the same config, the same series and the same artifacts.

Each reader lives in ``tests/readers.py`` (CSV through ``unilog.read_run``,
TensorBoard through its ``EventAccumulator``, MLflow through ``MlflowClient``)
and returns ``{"config", "series", "artifacts", "tags"}`` in one shape.
Later backends join by adding their name and reader to ``READERS``.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import pytest

import unilog
import unilog.plugins

from .readers import flat_config

STEPS = 120
CONFIG = {"lr": 0.001, "optim": {"name": "adam", "betas": [0.9, 0.999]}, "epochs": 3,
          "api_key": "contract-secret-do-not-store"}


def read_csv(run_dir: Path) -> dict:
    """The local record in the same shape as the other readers."""
    data = unilog.read_run(run_dir)
    keys = dict.fromkeys(k for _, _, k, _ in data.history)
    return {
        "config": flat_config(data.config),
        "series": {k: [(s, float(v)) for s, v in data.series(k) if isinstance(v, (int, float))]
                   for k in keys},
        "artifacts": {a.ref: {f.path: f.sha256 for f in a.files} for a in data.artifacts},
        "tags": set(data.manifest["tags"]),
    }


#: Each backend's reader: a function, or "module:function" under tests/.
READERS = {"csv": read_csv, "tensorboard": "readers:read_tensorboard",
           "mlflow": "readers:read_mlflow", "wandb": "readers_wandb:read_wandb",
           "swanlab": "readers_swanlab:read_swanlab", "neptune": "readers_neptune:read_neptune"}


def _reader(name: str):
    reader = READERS[name]
    if not isinstance(reader, str):
        return reader
    module, function = reader.split(":")
    return getattr(importlib.import_module(f"tests.{module}"), function)


def log_contract_run(backend: str, tmp_path: Path, exit_code: int = 0) -> unilog.Run:
    tmp_path.mkdir(parents=True, exist_ok=True)
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights " * 1000)
    folder = tmp_path / "dataset"
    (folder / "split").mkdir(parents=True)
    (folder / "split" / "train.txt").write_text("a\nb\n")
    (folder / "README").write_text("data")
    run = unilog.init(project="contract", backends=[backend], config=CONFIG,
                      tags=["contract", "v1"], notes="the contract run", mode="offline",
                      on_error="raise")
    for step in range(STEPS):
        if step % 40 == 39:  # merged into this step's row by the commit below
            run.log({"val/loss": 2.0 / (step + 1)}, commit=False)
        run.log({"train/loss": 1.0 / (step + 1), "train/acc": step / STEPS,
                 "lr": 0.001 * 0.99 ** step})
    run.log_artifact(model, name="model", type="model", aliases=["best"])
    run.log_artifact(folder, name="dataset", type="dataset")
    run.finish(exit_code=exit_code)
    return run


def assert_same_run(got: dict, expected: dict) -> None:
    """``got`` (a backend's reader) holds the run ``expected`` (the local record's)."""
    secret = CONFIG["api_key"]
    assert got["config"]["api_key"] != secret and secret not in str(got["config"])
    assert {k: v for k, v in got["config"].items() if k in expected["config"]} == \
        expected["config"]
    for key in ("train/loss", "train/acc", "lr", "val/loss"):
        steps = [s for s, _ in got["series"][key]]
        assert steps == [s for s, _ in expected["series"][key]], key  # once each, in order
        values = [v for _, v in got["series"][key]]
        assert values == pytest.approx([v for _, v in expected["series"][key]], rel=1e-6), key
    assert len(expected["series"]["train/loss"]) == STEPS
    assert expected["series"]["val/loss"][0][0] == 39
    assert got["artifacts"] == expected["artifacts"]
    digest = hashlib.sha256(b"weights " * 1000).hexdigest()
    assert got["artifacts"]["model:v0"] == {"model.bin": digest}
    assert {"contract", "v1"} <= got["tags"]


@pytest.mark.parametrize("backend", list(READERS))
def test_every_backend_stores_the_same_run(backend, tmp_path):
    if backend not in unilog.plugins.available_backends():
        pytest.skip(f"the {backend} backend is not registered")
    pytest.importorskip("csv" if backend == "csv" else backend)
    run = log_contract_run(backend, tmp_path)
    assert_same_run(_reader(backend)(run.dir), read_csv(run.dir))


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in READERS if b != "csv"])
def test_a_run_synced_later_reads_back_the_same_as_one_logged_live(backend, tmp_path):
    """The other way round: logged with the local record only, then ``unilog.sync``
    into the backend; read back through the backend's own reader, it equals the
    local record, as the live run above does. A second sync adds nothing."""
    pytest.importorskip(backend)
    live = log_contract_run(backend, tmp_path / "live")
    later = log_contract_run("csv", tmp_path / "later")
    report = unilog.sync(later.dir, backends=[backend], mode="offline")
    assert report.ok, str(report)
    assert report.runs[0].backends[backend].sent == STEPS
    expected = read_csv(later.dir)
    synced = _reader(backend)(later.dir)
    assert_same_run(synced, expected)
    live_data = _reader(backend)(live.dir)
    assert synced["series"] == live_data["series"]  # the same as logged live
    assert synced["artifacts"] == live_data["artifacts"] and synced["tags"] == live_data["tags"]

    again = unilog.sync(later.dir, backends=[backend], mode="offline")
    assert again.ok and again.runs[0].backends[backend].sent == 0, str(again)
    assert again.runs[0].backends[backend].already == STEPS
    assert _reader(backend)(later.dir)["series"] == synced["series"]  # no duplicates


@pytest.mark.parametrize("backend", ["tensorboard", "wandb", "swanlab"])
def test_the_contract_helper_passes_for_each_backend(backend, tmp_path):
    """``unilog.testing.check_backend``, the helper plugin authors run, against a
    built-in backend, read back through that backend's own reader."""
    pytest.importorskip(backend)
    from unilog.testing import SECRET as CONTRACT_SECRET
    from unilog.testing import check_backend

    report = check_backend(backend, {}, tmp_path)
    data = _reader(backend)(report["run_dir"])
    assert data["config"] == {"lr": "0.01", "model/depth": "3", "api_key": "***REDACTED***"}
    assert len(data["series"]["train/loss"]) == 100 and data["tags"] == {"contract"}
    assert list(data["artifacts"]) == ["payload:v0"]
    assert all(CONTRACT_SECRET.encode() not in p.read_bytes()
               for p in (report["run_dir"] / backend).rglob("*") if p.is_file())
