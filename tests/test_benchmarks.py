"""The benchmark command cannot rot: a tiny smoke pass of every section (no timing
is asserted; benchmarks are not tests)."""

from __future__ import annotations

import subprocess
import sys

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
