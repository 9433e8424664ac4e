"""Shared fixtures: an isolated run directory and environment for every test, and
the fault-injection plugin installed through a real entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Nothing reaches the network from the tests: SDK telemetry off before any import.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

PLUGIN_DIR = Path(__file__).parent / "plugins"
REPO = Path(__file__).parent.parent

# The fault plugin's dist-info sits here: putting the folder on sys.path is what
# installing the package would do, so unilog finds it through its entry point.
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own UNILOG_DIR and no UNILOG_* settings from outside."""
    for var in list(os.environ):
        if var.startswith("UNILOG_"):
            monkeypatch.delenv(var)
    # mlflow.set_tracking_uri() sets $MLFLOW_TRACKING_URI: set then deleted here, so
    # it is gone again after the test whatever the test (or MLflow) did to it, and a
    # later test's child processes never write to an earlier test's store.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    monkeypatch.setenv("UNILOG_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("UNILOG_FINISH_TIMEOUT", "20")
    yield
    import unilog
    from unilog import _current

    _current.pending.value = None  # `unilog.config = {...}` held for an init never made
    if unilog.run is not None:  # a test that left its run open must not leak it
        try:
            unilog.run.finish(timeout=5)
        except unilog.UnilogError:
            pass


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    """The UNILOG_DIR of this test."""
    return tmp_path / "runs"


@pytest.fixture
def recorded():
    """What the fault plugin's "recorder" backends received, cleared before the test."""
    import unilog_faults

    unilog_faults.RECORDED.clear()
    return unilog_faults.RECORDED


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for a child Python that imports unilog and the fault plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("UNILOG_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(PLUGIN_DIR)])
    env.update(extra)
    return env
