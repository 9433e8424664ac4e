"""Source capture: ``init(save_code=True)`` and ``init(source_files=[...])`` keep the
code as the run's ``code`` artifact, in the local record and every backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import unilog

from .conftest import subprocess_env
from .readers import read_tensorboard


def _code_files(run_dir: Path) -> dict[str, str]:
    (artifact,) = [a for a in unilog.read_run(run_dir).artifacts if a.name == "code"]
    root = Path(artifact.download())
    return {p.relative_to(root).as_posix(): p.read_text() for p in root.rglob("*")
            if p.is_file()}


def test_save_code_keeps_the_entry_script_in_every_backend(tmp_path, runs_dir):
    script = tmp_path / "train.py"
    script.write_text("import unilog\n"
                      "run = unilog.init(project='code', backends=['csv', 'tensorboard'],\n"
                      "                  save_code=True)\n"
                      "run.log({'loss': 1.0})\n"
                      "run.finish()\n"
                      "print(run.dir)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, env=subprocess_env(UNILOG_DIR=str(runs_dir)), timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    assert _code_files(run_dir) == {"train.py": script.read_text()}
    (artifact,) = [a for a in unilog.read_run(run_dir).artifacts if a.name == "code"]
    assert artifact.type == "code" and artifact.metadata["files"] == 1
    assert "code:v0" in read_tensorboard(run_dir)["artifacts"]  # the backend has it too


def test_source_files_globs_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "main.py").write_text("print(1)\n")
    (tmp_path / "src" / "pkg" / "model.py").write_text("class Model: ...\n")
    (tmp_path / "notes.txt").write_text("not code\n")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(unilog.UnilogWarning, match=r"'\*\.yaml' matches no file"):
        run = unilog.init(project="code", source_files=["*.py", "src/**/*.py", "*.yaml"])
    run.finish()
    assert _code_files(run.dir) == {"main.py": "print(1)\n",
                                    "src/pkg/model.py": "class Model: ...\n"}


def test_nothing_is_captured_unless_asked_and_bad_arguments_name_the_rule(monkeypatch):
    run = unilog.init(project="code")
    run.finish()
    assert not [a for a in unilog.read_run(run.dir).artifacts if a.name == "code"]
    with pytest.raises(unilog.ConfigError, match="source_files must be a list"):
        unilog.init(project="code", source_files=[3])
    with pytest.raises(unilog.ConfigError, match="save_code must be True or False"):
        unilog.init(project="code", save_code="yes")
    monkeypatch.setenv("UNILOG_SAVE_CODE", "true")  # an interactive session has no script
    monkeypatch.setattr(sys, "argv", [""])
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    with pytest.warns(unilog.UnilogWarning, match="no entry script"):
        unilog.init(project="code").finish()


def test_too_many_files_are_cut_with_a_warning(tmp_path, monkeypatch):
    from unilog import _code

    monkeypatch.setattr(_code, "MAX_FILES", 3)
    for i in range(5):
        (tmp_path / f"m{i}.py").write_text(f"x = {i}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.warns(unilog.UnilogWarning, match=r"2 file\(s\) left out past 3 files"):
        run = unilog.init(project="code", source_files=["*.py"])
    run.finish()
    assert sorted(_code_files(run.dir)) == ["m0.py", "m1.py", "m2.py"]
