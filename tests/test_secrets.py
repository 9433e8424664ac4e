"""Secrets on the command line, in the environment and in the git remote never reach
any backend's own files.

unilog redacts the command line in ``run.json``, but SDKs record their own run
metadata (wandb: the program and ``sys.argv``; SwanLab with ``system_info``: the
command line and the git remote URL). One real child process runs all six
backends offline with secrets in each of those places, from a git repository
whose remote URL holds a token, and every byte under the unilog dir, and the
working directory, is searched for them. The same run checks that the SDKs'
own console chatter stays out of the terminal in offline mode and that every
SDK backend says how to look at what it wrote (``view`` in its info).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from unilog.backend import program

from .conftest import subprocess_env

for sdk in ("wandb", "swanlab", "neptune", "mlflow", "torch"):
    pytest.importorskip(sdk)

SECRETS = {"argv_eq": "SECRETA-7f3e", "argv_sep": "SECRETB-91c2", "hydra": "SECRETC-44d0",
           "env": "SECRETE-0b5a", "git": "SECRETD-d8e1"}
ARGS = [f"--api-key={SECRETS['argv_eq']}", "--hf_token", SECRETS["argv_sep"],
        f"db.password={SECRETS['hydra']}"]
BACKENDS = {"csv": {}, "tensorboard": {}, "mlflow": {}, "wandb": {}, "neptune": {},
            # SwanLab records the command line and git only with system_info on
            "swanlab": {"system_info": True}}

SCRIPT = textwrap.dedent("""
    import json, sys
    import unilog
    backends = json.loads(sys.argv[sys.argv.index("--backends") + 1])
    with unilog.init(project="sec", backends=backends, mode="offline",
                     on_error="raise") as run:
        for step in range(3):
            run.log({"loss": float(step)})
    print("RUN_DIR", run.dir)
""")


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def every_file(root: Path):
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """One offline run with all six backends, secrets in argv, env and git remote."""
    work = tmp_path_factory.mktemp("work")
    runs = tmp_path_factory.mktemp("runs")
    git(work, "init", "-q")
    git(work, "remote", "add", "origin", f"https://bob:{SECRETS['git']}@example.com/x.git")
    git(work, "-c", "user.email=a@b.c", "-c", "user.name=a", "commit", "-q",
        "--allow-empty", "-m", "init")
    (work / "script.py").write_text(SCRIPT)
    env = subprocess_env(UNILOG_DIR=str(runs), HF_TOKEN=SECRETS["env"],
                         MY_SERVICE_PASSWORD=SECRETS["env"])
    done = subprocess.run(
        [sys.executable, "script.py", *ARGS, "--backends", json.dumps(BACKENDS)],
        cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = Path(done.stdout.split("RUN_DIR", 1)[1].split()[0])
    return work, runs, run_dir, done.stdout + done.stderr


def test_every_backend_wrote_its_files(logged):
    _, _, run_dir, _ = logged
    manifest = json.loads((run_dir / "run.json").read_text())
    for name in BACKENDS:
        report = manifest["backends"][name]
        assert report["errors"] == 0 and not report["disabled"], (name, report)
    for folder in ("wandb", "swanlab", "neptune", "tensorboard"):
        assert every_file(run_dir / folder), folder
    assert every_file(run_dir.parent.parent / "mlflow")  # the default store


def test_no_secret_in_any_file(logged):
    work, runs, _, _ = logged
    leaks = []
    for root in (runs, work):
        for path in every_file(root):
            if ".git" in path.relative_to(root).parts:  # the remote itself holds it
                continue
            data = path.read_bytes()
            leaks += [f"{what} in {path}" for what, secret in SECRETS.items()
                      if secret.encode() in data]
    assert not leaks, "\n".join(leaks)


def test_the_command_line_is_recorded_redacted(logged):
    _, _, run_dir, _ = logged
    command = json.loads((run_dir / "run.json").read_text())["provenance"]["command"]
    assert "--api-key=***REDACTED***" in command and "db.password=***REDACTED***" in command


def test_nothing_is_written_to_the_working_directory(logged):
    work, _, _, _ = logged
    assert sorted(p.name for p in work.iterdir()) == [".git", "script.py"]


#: What the SDKs print by themselves in offline mode (SwanLab's banner came twice).
CHATTER = ("swanlab:", "Open in the app", "Shutting down background jobs",
           "Creating initial MLflow database tables", "Updating database tables", "wandb:")


def test_no_sdk_chatter_in_offline_mode(logged):
    output = logged[3]
    heard = [line for line in output.splitlines() if any(c in line for c in CHATTER)]
    assert not heard, "\n".join(heard)


def test_each_sdk_backend_says_how_to_view_what_it_wrote(logged):
    _, _, run_dir, _ = logged
    infos = {name: report["info"] for name, report in
             json.loads((run_dir / "run.json").read_text())["backends"].items()}
    views = {name: infos[name].get("view") for name in ("wandb", "mlflow", "swanlab",
                                                         "neptune")}
    # each program as the shell finds it, else its path in this Python's environment
    assert views["wandb"] == f"{program('wandb')} sync {infos['wandb']['dir']}"
    assert views["mlflow"].startswith(f"{program('mlflow')} ui --backend-store-uri sqlite:///")
    assert views["swanlab"] == f"{program('swanlab')} sync {infos['swanlab']['location']}"
    assert views["neptune"] == f"cat {infos['neptune']['location']}/data-*.log"
    assert list(Path(infos["neptune"]["location"]).glob("data-*.log"))
