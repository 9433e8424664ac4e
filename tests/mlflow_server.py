"""A real ``mlflow server`` on 127.0.0.1 for the tests: SQLite store, proxied
artifacts, job execution and telemetry off, stopped by its process group.

``mlflow_server`` is session-scoped (startup takes ~8-10 s); a test that must
kill its server starts its own with :func:`running_server`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

READY_TIMEOUT = 60.0


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """One ``mlflow server`` process group; ``uri`` is its tracking URI."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = root / "server.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        """Start the server and wait for ``GET /health`` to answer 200."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
                   MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", "1",
                   "--backend-store-uri", f"sqlite:///{(self.root / 'mlflow.db').as_posix()}",
                   "--artifacts-destination", str(self.root / "artifacts")]
        with open(self.log, "wb") as log:
            # Its own session, so stop() can end the server and the uvicorn child it spawns.
            self.process = subprocess.Popen(command, env=env, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.root,
                                            start_new_session=True)
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._fail(f"exited with code {self.process.returncode}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return
            time.sleep(0.2)
        self.stop()
        self._fail(f"did not answer GET /health within {READY_TIMEOUT:.0f} s")

    def _fail(self, what: str) -> None:
        tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        pytest.fail(f"mlflow server on {self.uri} {what}; its log ends with:\n{tail}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """End the whole process group (SIGKILL if it does not stop in 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def kill(self) -> None:
        """Crash the server (SIGKILL to its process group), as a dead host would."""
        self.stop(signal.SIGKILL)


@contextlib.contextmanager
def running_server(root: Path):
    """A server of one's own, stopped on exit."""
    server = MlflowServer(root)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> MlflowServer:
    """One server for the whole session."""
    pytest.importorskip("mlflow")
    with running_server(tmp_path_factory.mktemp("mlflow-server")) as server:
        yield server
