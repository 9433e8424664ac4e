"""The benchmark command cannot rot: a tiny smoke pass of every section (no timing
is asserted; benchmarks are not tests), which never overwrites the committed results."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import REPO, subprocess_env


@pytest.mark.slow
def test_benchmark_command_smoke(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--out",
                           str(tmp_path)], cwd=REPO, env=subprocess_env(), capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-5000:]
    report = (tmp_path / "report-quick.md").read_text()
    assert "run.log, 4 scalars" in report and "CSV complete: True" in report
    # Every section ran (or said why it was skipped) and the plots were written.
    from benchmarks.__main__ import SECTIONS

    for _, title, _ in SECTIONS:
        assert f"## {title}" in report
    assert "is not there" not in report  # every section's module exists
    for png in ("fanout.png", "end_to_end.png", "tensors_cpu.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_quick_pass_never_touches_the_committed_results(tmp_path):
    """``python -m benchmarks --quick`` writes to a temporary folder, and refuses
    ``--out benchmarks/results``. Run on a copy of the package, so that a regression
    costs the copy's figures, not the repository's."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "benchmarks", copy / "benchmarks",
                    ignore=shutil.ignore_patterns("__pycache__"))
    results = copy / "benchmarks" / "results"
    before = snapshot(results)
    assert any(name.endswith(".png") for name in before)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = subprocess_env(TMPDIR=str(scratch))
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "startup"],
                          cwd=copy, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert snapshot(results) == before
    written = scratch / "unilog-benchmarks-quick"
    assert "## 4. Start-up" in (written / "report-quick.md").read_text()
    assert (written / "startup_cold.png").read_bytes()[:4] == b"\x89PNG"
    assert f"written to {written}" in proc.stdout

    refused = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "startup",
                              "--out", "benchmarks/results"], cwd=copy, env=env,
                             capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2 and "committed" in refused.stderr
    assert snapshot(results) == before
