"""The logging process (``isolation="process"``, the default): SDK backends run in
one child of the training process; its faults never reach the training loop."""

from __future__ import annotations

import math
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import unilog
from unilog.backend import Row

from .conftest import subprocess_env
from .readers import read_tensorboard


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def test_sdk_backends_run_in_one_shared_logging_process_by_default():
    modules_before = set(sys.modules)
    first = unilog.init(project="lp", backends=["tensorboard", "mlflow"], mode="offline")
    second = unilog.init(project="lp", backends=["tensorboard"], mode="offline")
    for i in range(50):
        first.log({"x": float(i)})
        second.log({"y": float(i)})
    one, two = first.finish(), second.finish()
    pids = {one["tensorboard"]["process"], one["mlflow"]["process"], two["tensorboard"]["process"]}
    assert len(pids) == 1 and os.getpid() not in pids  # one child, for both runs
    assert "process" not in one["csv"]  # the local record stays here
    assert one["tensorboard"]["delivered"] == 51 and one["mlflow"]["delivered"] == 51
    # The training process never imported the SDKs (unless an earlier test did).
    for sdk in ("mlflow", "tensorboard"):
        assert sdk in modules_before or sdk not in sys.modules, sdk
    assert [s for s, _ in read_tensorboard(second.dir)["series"]["y"]] == list(range(50))


def test_isolation_per_run_per_backend_and_from_the_environment(monkeypatch):
    run = unilog.init(backends=["csv", "tensorboard", {"name": "mlflow", "isolation": "thread"}],
                      mode="offline")
    run.log({"x": 1.0})
    report = run.finish()
    assert "process" in report["tensorboard"] and "process" not in report["mlflow"]

    run = unilog.init(backends=["tensorboard"], isolation="thread")
    assert "process" not in run.finish()["tensorboard"]
    monkeypatch.setenv("UNILOG_ISOLATION", "thread")
    run = unilog.init(backends=["tensorboard", {"name": "noop", "isolation": "process"}])
    report = run.finish()
    assert "process" not in report["tensorboard"] and "process" in report["noop"]


def test_bad_isolation_settings_name_the_key_and_the_rule(monkeypatch):
    with pytest.raises(unilog.ConfigError, match="isolation must be one of process, thread"):
        unilog.init(isolation="fork")
    with pytest.raises(unilog.ConfigError, match="'tensorboard': option isolation must be"):
        unilog.init(backends=[{"name": "tensorboard", "isolation": "proc"}])
    with pytest.raises(unilog.ConfigError, match="'tensorboard': option process must be True"):
        unilog.init(backends=[{"name": "tensorboard", "process": "yes"}])
    with pytest.raises(unilog.ConfigError, match="local record"):
        unilog.init(backends=[{"name": "csv", "isolation": "process"}])
    monkeypatch.setenv("UNILOG_ISOLATION", "both")
    with pytest.raises(unilog.ConfigError, match="isolation must be one of"):
        unilog.init()


def test_a_backend_registered_at_run_time_stays_in_this_process():
    class Here(unilog.Backend):
        name = "registered_here"
        rows: list = []

        def log_rows(self, rows):
            Here.rows.extend(r.step for r in rows)

    class Plugin:
        @unilog.hookimpl
        def unilog_register_backends(self, register):
            register(Here)

    from unilog.plugins import register_plugin

    register_plugin(Plugin(), name="here-plugin")
    try:
        run = unilog.init(backends=["registered_here"])
        run.log({"x": 1})
        assert "process" not in run.finish()["registered_here"] and Here.rows == [0]
        with pytest.raises(unilog.ConfigError, match="registered at run time"):
            unilog.init(backends=[{"name": "registered_here", "isolation": "process"}])
    finally:
        from unilog import plugins

        plugins.reset()


def test_the_logging_process_killed_mid_run_costs_the_loop_nothing(runs_dir):
    run = unilog.init(project="lp", backends=["tensorboard", "noop"], mode="offline")
    for i in range(100):
        run.log({"x": float(i)})
    assert run.flush(timeout=30)
    from unilog._logging_process import LoggingProcess

    child = LoggingProcess.get().pid_of_child
    os.kill(child, signal.SIGKILL)
    start = time.monotonic()
    for i in range(100, 300):
        run.log({"x": float(i)})  # never raises, never waits
    logging_time = time.monotonic() - start
    flushed = run.flush(timeout=5)
    report = run.finish(timeout=10)
    assert logging_time < 2 and time.monotonic() - start < 15
    assert flushed is False or report["tensorboard"]["disabled"]
    for name in ("tensorboard", "noop"):
        entry = report[name]
        assert "logging process ended" in entry["disabled"], entry
        assert entry["failed"] + entry["dropped"] >= 200, entry  # the rows it missed, counted
        assert entry["errors"] >= 1
    assert unilog.read_run(run.dir).series("x") == [(i, float(i)) for i in range(300)]
    assert [s for s, _ in read_tensorboard(run.dir)["series"]["x"]][:100] == list(range(100))
    # The next run gets a new logging process.
    again = unilog.init(project="lp", backends=["tensorboard"])
    again.log({"y": 1.0})
    report = again.finish(timeout=30)
    assert report["tensorboard"]["delivered"] == 2 and report["tensorboard"]["process"] != child


def test_a_backend_hung_in_the_logging_process_stalls_only_itself():
    run = unilog.init(backends=["csv", {"name": "hanging", "isolation": "process"},
                                "tensorboard"])
    start = time.monotonic()
    for i in range(2000):
        run.log({"x": float(i)})
    assert time.monotonic() - start < 2
    assert run.flush(timeout=1) is False
    report = run.finish(timeout=3)
    assert time.monotonic() - start < 10
    assert report["hanging"]["timed_out"] is True
    assert report["tensorboard"]["delivered"] == 2001 and report["tensorboard"]["errors"] == 0
    assert len(unilog.read_run(run.dir).series("x")) == 2000


def test_errors_in_the_logging_process_are_raised_and_logged_here(caplog):
    run = unilog.init(backends=["csv", "raising"], on_error="raise")
    with pytest.raises(unilog.BackendError, match="raising backend: config failed"):
        run.flush(timeout=10)
    run.log({"x": 1.0})
    with pytest.raises(unilog.BackendError, match="raising backend: log failed"):
        run.flush(timeout=10)
    with pytest.raises(unilog.BackendError, match="close failed"):
        run.finish(timeout=10)
    messages = [r.getMessage() for r in caplog.records if r.name == "unilog"]
    assert any("raised in unilog's logging process" in m and "Traceback" in m
               for m in messages), messages
    assert unilog.read_run(run.dir).series("x") == [(0, 1.0)]


def test_log_lines_of_the_logging_process_reach_this_process(caplog):
    run = unilog.init(backends=["csv", "slow"])  # "slow" stores no media
    run.log({"img": unilog.Image(np.zeros((4, 4, 3), np.uint8))})
    run.flush(timeout=10)
    report = run.finish(timeout=10)
    assert report["slow"]["fallback"] == 1
    assert any("backend 'slow' does not support image values" in r.getMessage()
               for r in caplog.records if r.name == "unilog")


def test_a_killed_training_process_has_its_runs_ended_and_the_logging_process_exits(
        tmp_path, runs_dir):
    script = textwrap.dedent("""
        import os, signal, unilog
        run = unilog.init(project="p", id="k1", backends=["mlflow"], mode="offline")
        for i in range(20):
            run.log({"x": float(i)})
        assert run.flush(timeout=30)
        print(run._dispatcher.members[-1].process.pid_of_child, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    child = int(proc.stdout.split()[-1])
    deadline = time.monotonic() + 30
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(child), "the logging process outlived its training process"
    from .readers import read_mlflow

    ml = read_mlflow(runs_dir / "p" / "k1")
    assert ml["status"] == "KILLED" and [s for s, _ in ml["series"]["x"]] == list(range(20))


def test_ctrl_c_to_the_process_group_reaches_only_the_training_process(tmp_path, runs_dir):
    """The job's process group gets SIGINT: the training process ends its run as
    killed, and the logging process (its own session) closes the backends in order."""
    script = textwrap.dedent("""
        import os, signal, time, unilog
        run = unilog.init(project="p", id="c1", backends=["tensorboard"])
        for i in range(30):
            run.log({"x": float(i)})
        run.flush(timeout=30)
        os.killpg(os.getpgrp(), signal.SIGINT)
        time.sleep(5)
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, start_new_session=True,
                          env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode != 0 and "KeyboardInterrupt" in proc.stderr
    manifest = unilog.read_run(runs_dir / "p" / "c1").manifest
    assert manifest["status"] == "killed"
    assert manifest["backends"]["tensorboard"]["delivered"] == 31
    assert manifest["backends"]["tensorboard"]["timed_out"] is False


# -- the hand-off ------------------------------------------------------------------------

finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                          st.integers(min_value=-(2**63), max_value=2**63 - 1))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**63 - 1),
                          st.dictionaries(st.text(min_size=1, max_size=30), finite_or_not,
                                          max_size=8)), max_size=20))
def test_rows_cross_to_the_logging_process_unchanged(rows):
    from unilog._logging_process import dumps

    sent = [Row(step, MappingProxyType(values), 1.5) for step, values in rows]
    (received,) = pickle.loads(dumps([["records", 1, sent]]))
    assert [(r.step, r.time) for r in received[2]] == [(r.step, 1.5) for r in sent]
    for before, after in zip(sent, received[2]):
        assert type(after.values) is MappingProxyType  # still read-only for the backends
        assert list(after.values) == list(before.values)
        for key, value in before.values.items():
            got = after.values[key]
            assert type(got) is type(value)
            assert got == value or (math.isnan(got) and math.isnan(value))


def test_a_device_value_that_cannot_be_read_costs_only_itself():
    from unilog._logging_process import dumps
    from unilog.tensors import PendingScalar

    class Broken:
        def numpy(self):
            raise RuntimeError("device lost")

    pending = PendingScalar.__new__(PendingScalar)
    pending._copy, pending._value = Broken(), None
    (message,) = pickle.loads(dumps([["records", 1, [Row(0, MappingProxyType(
        {"gpu": pending, "cpu": 1.0}), 0.0)]]]))
    row = message[2][0]
    assert row.values["cpu"] == 1.0
    with pytest.raises(RuntimeError, match="device lost"):
        row.values["gpu"].resolve()


def test_options_that_cannot_be_pickled_keep_the_backend_on_a_thread(recorded):
    with pytest.warns(unilog.UnilogWarning, match="option 'fetchable' cannot be sent to the "
                                                  "logging process"):
        run = unilog.init(backends=["csv", {"name": "recorder", "isolation": "process",
                                            "fetchable": {"f": lambda: "x"}}])
    run.log({"x": 1.0})
    report = run.finish(timeout=10)
    assert "process" not in report["recorder"]  # it ran here, where the lambda lives
    assert recorded["default"]["rows"] == [(0, {"x": 1.0})]


def test_a_forked_child_closes_its_copy_of_the_pipe_cleanly(tmp_path, runs_dir):
    script = textwrap.dedent("""
        import gc, os, unilog
        run = unilog.init(project="p", backends=["tensorboard"])
        run.log({"x": 1.0})
        run.flush(timeout=30)
        pid = os.fork()
        if pid == 0:
            gc.collect()  # a second close of the pipe's descriptors would print here
            os._exit(0)
        os.waitpid(pid, 0)
        run.log({"x": 2.0})
        print(run.finish()["tensorboard"]["delivered"])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == 0, proc.stderr
    assert "Bad file descriptor" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert proc.stdout.split()[-1] == "3"  # the config and both rows


def test_an_option_only_the_script_can_unpickle_keeps_the_backend_here(tmp_path, runs_dir):
    script = textwrap.dedent("""
        import warnings, unilog
        class Mine:  # lives in the script's __main__, which the logging process is not
            pass
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = unilog.init(backends=["csv", {"name": "recorder", "isolation": "process",
                                                "fetchable": {"f": Mine()}}])
        run.log({"x": 1.0})
        report = run.finish()
        print([str(w.message) for w in caught])
        print("process" in report["recorder"], report["recorder"]["delivered"])
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    assert proc.returncode == 0, proc.stderr
    warned, where = proc.stdout.strip().splitlines()[-2:]
    assert "option 'fetchable' cannot be sent to the logging process" in warned
    assert "__main__" in warned
    assert where == "False 2"
