"""A run that ends soon after ``init``, without ``finish()``, while the SDK
backends are still importing and opening: whatever was logged reaches every
backend that can open, with the status the process ended with (issue 10, A2);
and once the exit callback has finished the runs, SIGTERM works again (A3).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import subprocess_env
from .readers import read_mlflow, read_tensorboard
from .readers_wandb import read_wandb

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]

EARLY = """\
import sys, time
import unilog
run = unilog.init(project="p", id="r1", mode="offline",
                  backends=["csv", "tensorboard", "mlflow", "wandb"])
run.log({{"x": 1.0}})
run.log({{"x": 2.0}})
{ending}
"""

ENDINGS = {
    # how the script ends -> (exit code, status in run.json and in every backend)
    "exception-in-first-batch": ("raise RuntimeError('first batch')", 1, "failed"),
    "normal-exit": ("pass", 0, "finished"),
    "sigterm-while-opening": ("print('ready', flush=True); time.sleep(60)", 143, "killed"),
    # an uncaught KeyboardInterrupt ends Python by SIGINT itself (-2), or with 1
    # when finalisation clears the flag that says so
    "ctrl-c-while-opening": ("print('ready', flush=True); time.sleep(60)", (-2, 1), "killed"),
}


def run_script(tmp_path: Path, ending: str) -> tuple[int, str, Path]:
    body, _, _ = ENDINGS[ending]
    script = tmp_path / "early.py"
    script.write_text(EARLY.format(ending=body))
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            env=subprocess_env(UNILOG_DIR=str(runs), UNILOG_FINISH_TIMEOUT="60"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if "opening" in ending:
            assert proc.stdout.readline().strip() == "ready"
            proc.send_signal(signal.SIGTERM if "sigterm" in ending else signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return proc.returncode, err, runs / "p" / "r1"


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_an_early_end_reaches_every_backend(tmp_path, ending):
    rc, err, run_dir = run_script(tmp_path, ending)
    _, expected_rc, status = ENDINGS[ending]

    assert rc in (expected_rc if isinstance(expected_rc, tuple) else (expected_rc,)), err
    assert "can't register atexit" not in err
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == status
    for name, report in manifest["backends"].items():
        assert report["disabled"] is None, (name, report["disabled"], err)
        assert report["failed"] == 0 and report["undelivered"] == 0, (name, report)

    expected = [(0, 1.0), (1, 2.0)]
    assert read_tensorboard(run_dir)["series"]["x"] == expected
    mlflow = read_mlflow(run_dir)
    assert mlflow["series"]["x"] == expected
    assert mlflow["status"] == {"finished": "FINISHED", "failed": "FAILED",
                                "killed": "KILLED"}[status]
    assert [(step, value) for step, value in read_wandb(run_dir)["series"]["x"]] == expected


def test_sigterm_works_again_once_the_runs_are_finished_at_exit(tmp_path):
    """A leftover non-daemon thread keeps the process alive after the exit
    callback: SIGTERM (docker stop, scancel) must still stop it."""
    script = tmp_path / "leftover.py"
    script.write_text(
        "import threading, time, unilog\n"
        "run = unilog.init(project='p', id='r1', backends=['csv'])\n"
        "run.log({'x': 1})\n"
        "threading.Thread(target=time.sleep, args=(120,)).start()  # not a daemon\n"
    )
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            env=subprocess_env(UNILOG_DIR=str(runs)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        manifest = runs / "p" / "r1" / "run.json"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the exit callback has finished the run
            if manifest.exists() and json.loads(manifest.read_text())["status"] == "finished":
                break
            time.sleep(0.1)
        else:
            pytest.fail("the run was not finished at exit")
        # SIGTERM's default comes back just after run.json is written: send it
        # until it takes (each one before that is ignored, by design), for 10 s.
        for _ in range(100):
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            pytest.fail("SIGTERM never stopped the process after its runs were finished")
    finally:
        proc.kill()
    assert rc == -signal.SIGTERM
