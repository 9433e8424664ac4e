"""``fork()`` after ``init``: DataLoader workers, multiprocessing's fork start
method, ``os.fork``. A forked child never finishes, blocks on, or writes its
parent's run; what it logs is dropped with one warning (issue 10, A7).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

import unilog
from unilog.errors import UnilogWarning

from .conftest import subprocess_env

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def test_a_forked_child_exits_at_once_and_leaves_the_parents_run_alone(recorded):
    run = unilog.init(project="p", backends=["csv", "recorder"])
    run.log({"x": 1})
    run.flush(timeout=10)
    before = (run.dir / "run.json").read_text()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # the child: log, finish, exit as a DataLoader worker would
        code = 0
        try:
            with pytest.warns(UnilogWarning, match="forked"):
                run.log({"x": 2})
            if run.finish() != {} or unilog.finish() not in ({}, None):
                code = 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - start
    assert os.waitstatus_to_exitcode(status) == 0
    assert elapsed < 5
    assert (run.dir / "run.json").read_text() == before  # the child wrote nothing
    run.log({"x": 3})
    report = run.finish()
    assert recorded["default"]["rows"] == [(0, {"x": 1}), (1, {"x": 3})]
    assert report["recorder"]["delivered"] == 3  # config and two rows


def test_a_child_exiting_normally_does_not_wait_for_the_finish_timeout(tmp_path):
    """multiprocessing's fork children run threading's exit callbacks, where
    unilog's used to wait the whole finish timeout on the parent's run."""
    script = tmp_path / "child_exit.py"
    script.write_text(textwrap.dedent("""
        import multiprocessing as mp, time, unilog
        run = unilog.init(project="p", id="r1", backends=["csv"])
        run.log({"x": 1})
        start = time.monotonic()
        child = mp.get_context("fork").Process(target=run.log, args=({"x": 2},))
        child.start(); child.join()
        print(round(time.monotonic() - start, 2), child.exitcode, flush=True)
        run.finish()
    """))
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120,
                         env=subprocess_env(UNILOG_DIR=str(tmp_path / "runs"),
                                            UNILOG_FINISH_TIMEOUT="30"))
    seconds, exitcode = out.stdout.split()
    assert (float(seconds) < 5, exitcode) == (True, "0"), out.stderr
    manifest = json.loads((tmp_path / "runs" / "p" / "r1" / "run.json").read_text())
    assert manifest["status"] == "finished" and manifest["backends"]["csv"]["delivered"] == 2


DATALOADER_LOOP = """
import json, sys, time
import torch
from torch.utils.data import DataLoader, TensorDataset
import unilog

backends = sys.argv[1].split(",")
run = unilog.init(project="p", id="r1", mode="offline", backends=backends)
data = TensorDataset(torch.randn(64, 8), torch.randn(64, 1))
model = torch.nn.Linear(8, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.01)
epochs = []
for epoch in range(5):
    start = time.monotonic()
    loader = DataLoader(data, batch_size=16, num_workers=2, multiprocessing_context="fork")
    for x, y in loader:
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        run.log({"train/loss": loss.detach()})
    epochs.append(time.monotonic() - start)
report = run.finish()
print(json.dumps({"epochs": epochs, "errors": {k: v["errors"] for k, v in report.items()}}))
"""


@pytest.mark.slow
def test_a_dataloader_with_forked_workers_against_all_six_backends(tmp_path):
    """The plain loop with DataLoader(num_workers=2) (fork): no epoch waits on the
    run (10 s each before), no worker hangs (Neptune's fork handler deadlocked)."""
    pytest.importorskip("torch")
    script = tmp_path / "loop.py"
    script.write_text(DATALOADER_LOOP)
    backends = "csv,tensorboard,mlflow,wandb,swanlab,neptune"
    out = subprocess.run([sys.executable, str(script), backends], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300,
                         env=subprocess_env(UNILOG_DIR=str(tmp_path / "runs"),
                                            UNILOG_FINISH_TIMEOUT="60"))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert max(result["epochs"][1:]) < 5, result  # the first includes the SDKs' imports
    assert all(n == 0 for n in result["errors"].values()), result
    data = unilog.read_run(tmp_path / "runs" / "p" / "r1")
    assert len(data.series("train/loss")) == 5 * 4
    assert data.status == "finished"


SIGNAL_DURING_FORK = """
import os, signal, sys, threading, time
import unilog
sig = getattr(signal, sys.argv[1])
run = unilog.init(project="p", id="r1", backends={"csv": {}, "slow": {"delay": 0.3}})
run.log({"x": 1})
time.sleep(0.05)  # the slow backend is now in a call: the fork waits for it
threading.Timer(0.1, os.kill, (os.getpid(), sig)).start()  # arrives during that wait
for i in range(50):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    run.log({"x": i})
    time.sleep(0.05)
print("the signal was lost", flush=True)
"""


@pytest.mark.parametrize("sig,rc", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_during_a_fork_still_stops_the_run(tmp_path, sig, rc):
    """Ctrl-C or SIGTERM arriving while a fork waits for a busy backend: Python
    drops exceptions raised in fork handlers, so unilog defers the signal until
    the fork is done, and leaves no backend paused."""
    script = tmp_path / "signal_fork.py"
    script.write_text(SIGNAL_DURING_FORK)
    out = subprocess.run([sys.executable, str(script), sig], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120,
                         env=subprocess_env(UNILOG_DIR=str(tmp_path / "runs"),
                                            UNILOG_FINISH_TIMEOUT="20"))
    assert "the signal was lost" not in out.stdout
    assert out.returncode in (rc, -getattr(__import__("signal"), sig)), out.stderr[-2000:]
    data = unilog.read_run(tmp_path / "runs" / "p" / "r1")
    assert data.status == "killed"
    assert data.manifest["backends"]["csv"]["timed_out"] is False  # no worker left paused
