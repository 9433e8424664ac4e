"""A real PostgreSQL server on 127.0.0.1 for the sweep tests: a throwaway cluster
(``initdb``, trust authentication, fsync off), started from Debian's
``postgresql`` package (``make test`` installs it) and removed afterwards.

PostgreSQL refuses to run as root, so under root the cluster belongs to the
``postgres`` user the package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.mlflow_server import free_port

READY_TIMEOUT = 60.0


def postgres_bin() -> Path | None:
    """The folder of ``initdb`` and ``postgres`` (newest version installed), or None."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    """One throwaway cluster; ``url`` is a SQLAlchemy URL Optuna takes."""

    def __init__(self, bin_dir: Path):
        self.bin = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="unilog-pg-"))
        self.url = f"postgresql+psycopg2://unilog@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen | None = None
        self._log = None
        self._user = None
        if os.geteuid() == 0:
            import pwd

            self._user = pwd.getpwnam("postgres")
            os.chown(self.root, self._user.pw_uid, self._user.pw_gid)

    def _run_as(self) -> dict:
        return {} if self._user is None else {"user": self._user.pw_uid,
                                              "group": self._user.pw_gid}

    def start(self) -> PostgresServer:
        """``initdb``, then ``postgres``, then wait until it takes connections."""
        data = self.root / "data"
        subprocess.run([str(self.bin / "initdb"), "-D", str(data), "-U", "unilog",
                        "--auth=trust", "-E", "UTF8", "--no-sync"], check=True,
                       capture_output=True, cwd=self.root, **self._run_as())
        self._log = open(self.root / "server.log", "wb")
        self.process = subprocess.Popen(
            [str(self.bin / "postgres"), "-D", str(data), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.root), "-c", "fsync=off",
             "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdout=subprocess.DEVNULL, stderr=self._log,
            start_new_session=True, cwd=self.root, **self._run_as())
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("postgres exited: "
                                   + (self.root / "server.log").read_text(errors="replace"))
            ready = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                                    str(self.port)], capture_output=True)
            if ready.returncode == 0:
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"postgres did not accept connections in {READY_TIMEOUT:.0f} s")

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then remove the cluster."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_url():
    """The URL of a real PostgreSQL server for this test session."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: `make test` installs Debian's postgresql "
                    "package (apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    try:
        yield server.url
    finally:
        server.stop()
