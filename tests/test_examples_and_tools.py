"""The example, the CLI, the contract helper and the benchmark command run end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import unilog
from unilog.cli import main as cli_main
from unilog.testing import SECRET, check_backend

from .conftest import REPO, subprocess_env


@pytest.mark.slow
def test_example_training_logs_everything(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "examples" / "train.py"), "--epochs", "2",
                           "--dir", str(tmp_path)], env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(tmp_path.glob("examples/*/run.json")).parent
    data = unilog.read_run(run_dir)
    assert data.status == "finished"
    metrics = data.metrics
    assert {"train/loss", "train/acc", "val/acc", "weights/layer0", "val/surface"} <= set(metrics)
    assert metrics["train/loss"].notna().sum() == 2 * 32  # 4000 samples / 128 per batch
    assert (run_dir / metrics["val/surface"].dropna().iloc[0]).read_bytes()[:4] == b"\x89PNG"
    assert [a.name for a in data.artifacts][0] == "model"
    assert data.summary["reloaded_val_acc"] == pytest.approx(data.summary["best_val_acc"])


def test_cli_lists_backends_runs_and_shows_a_run(capsys, runs_dir):
    run = unilog.init(project="cli")
    run.log({"x": 1})
    run.finish()
    assert cli_main(["backends"]) == 0
    assert "csv" in capsys.readouterr().out
    assert cli_main(["ls", str(runs_dir)]) == 0
    assert run.id in capsys.readouterr().out
    assert cli_main(["show", str(run.dir)]) == 0
    assert "finished" in capsys.readouterr().out


def test_contract_helper_passes_for_csv_and_catches_a_failing_backend(tmp_path):
    report = check_backend("recorder", {}, tmp_path / "ok")
    assert report["delivered"] > 100
    for path in Path(report["run_dir"]).rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes()
    with pytest.raises(unilog.BackendError):
        check_backend("raising", {}, tmp_path / "bad")


@pytest.mark.slow
def test_benchmark_command_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out",
                           str(tmp_path)], cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report-quick.md").read_text()
    assert "run.log, 4 scalars" in report and "CSV complete: True" in report
