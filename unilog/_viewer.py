"""``unilog open RUN --with tensorboard|mlflow``: the tracker's own viewer on one run.

The viewer is the venv's own ``tensorboard`` / ``mlflow`` executable (beside
``sys.executable``), started as a child in a process group of its own, so that
the one Ctrl-C a terminal sends reaches it once, through unilog, which forwards
SIGINT and SIGTERM to the whole group (MLflow's server runs uvicorn as a child)
and exits with the viewer's status. The URL is printed once the viewer answers.

Where the viewer looks comes from ``run.json`` (``backends.<name>.info``). A run
that never logged to that backend is first synced there (``unilog.sync``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from unilog.cli import CliError

#: How long the viewer may take to answer (MLflow's server takes ~6 s to start).
START_TIMEOUT = 120.0
#: How many ports above the viewer's default are tried when ``--port`` is not given.
PORT_TRIES = 50


@dataclass
class Viewer:
    """What ``unilog open`` starts, or only prints (a viewer that runs elsewhere)."""

    #: The command line; empty when there is nothing to start (``url`` says where to look).
    command: list[str]
    #: Where to point a browser: the viewer's address, or the run's own page.
    url: str
    #: Environment variables set for the viewer where the user has not set them.
    env: dict[str, str] = field(default_factory=dict)


def executable(name: str) -> str:
    """The venv's own ``name`` script beside the running Python, else ``name`` on PATH."""
    folder = Path(sys.executable).parent
    for candidate in (folder / name, folder / f"{name}.exe"):
        if candidate.is_file():
            return str(candidate)
    return name


# -- where the run's data is --------------------------------------------------------------


def backend_info(run_dir: Path, backend: str) -> dict[str, Any]:
    """``backends.<backend>.info`` of the run's manifest ({} when it has none)."""
    try:
        manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    info = ((manifest.get("backends") or {}).get(backend) or {}).get("info")
    return info if isinstance(info, dict) else {}


def _tensorboard_logdir(run_dir: Path) -> Path | None:
    """The run's TensorBoard folder when it holds event files: the manifest's, else the
    backend's default (a session before a resume logged there, the latest did not)."""
    info = backend_info(run_dir, "tensorboard")
    for folder in (info.get("logdir"), info.get("location"), run_dir / "tensorboard"):
        if folder and any(Path(folder).glob("**/events.out.tfevents.*")):
            return Path(folder)
    return None


def _mlflow_logged(run_dir: Path) -> bool:
    # An offline session records the store but no run id: nothing to show there.
    info = backend_info(run_dir, "mlflow")
    return bool(info.get("id") and info.get("tracking_uri"))


LOGGED: dict[str, Callable[[Path], bool]] = {
    "tensorboard": lambda run_dir: _tensorboard_logdir(run_dir) is not None,
    "mlflow": _mlflow_logged,
}


def ensure_logged(run_dir: Path, backend: str) -> bool:
    """Sync the run to ``backend`` when it never logged there; True when it synced."""
    if LOGGED[backend](run_dir):
        return False
    import unilog

    try:
        sync = unilog.sync
    except ImportError as exc:
        raise CliError(f"run {run_dir} never logged to {backend}, and this unilog cannot "
                       f"sync it there ({exc})") from None
    print(f"unilog open: run {run_dir.name} never logged to {backend}; syncing it there "
          "first", file=sys.stderr, flush=True)
    report = sync(run_dir, backends=[backend])
    if not report.ok:  # what it did send may still be worth a look
        print(f"unilog open: the sync was incomplete:\n{report}", file=sys.stderr, flush=True)
    if not LOGGED[backend](run_dir):
        raise CliError(f"synced run {run_dir} to {backend}, but its manifest still has no "
                       f"{backend} location (backends.{backend}.info in run.json)")
    return True


# -- the viewers --------------------------------------------------------------------------


def _tensorboard(run_dir: Path, host: str, port: int | None) -> Viewer:
    logdir = _tensorboard_logdir(run_dir)
    port = port or free_port(host, 6006)
    command = [executable("tensorboard"), "--logdir", str(logdir), "--host", host,
               "--port", str(port)]
    return Viewer(command, f"http://{_url_host(host)}:{port}/")


def _mlflow(run_dir: Path, host: str, port: int | None) -> Viewer:
    info = backend_info(run_dir, "mlflow")
    uri, experiment, run_id = info["tracking_uri"], info.get("experiment_id"), info["id"]
    if urlsplit(uri).scheme in ("http", "https"):
        # The run lives on a server already: its page is the viewer.
        return Viewer([], info.get("url") or _run_page(uri, experiment, run_id))
    if "***" in uri:
        raise CliError(f"the run's MLflow store is {uri}: run.json keeps it without its "
                       "credentials; start `mlflow server --backend-store-uri URI` yourself")
    port = port or free_port(host, 5000)
    command = [executable("mlflow"), "server", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", "1"]
    # The server's job runner (GenAI jobs) starts eight more processes that showing a
    # run never needs; a user who set the variable keeps their choice.
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return Viewer(command, _run_page(f"http://{_url_host(host)}:{port}", experiment, run_id),
                  env)


def _run_page(base: str, experiment: str | None, run_id: str) -> str:
    if experiment is None:
        return f"{base.rstrip('/')}/"
    return f"{base.rstrip('/')}/#/experiments/{experiment}/runs/{run_id}"


#: The viewers ``unilog open --with`` knows, by backend name.
VIEWERS: dict[str, Callable[[Path, str, int | None], Viewer]] = {
    "tensorboard": _tensorboard,
    "mlflow": _mlflow,
}


def viewer_for(run_dir: Path, backend: str, *, host: str = "127.0.0.1",
               port: int | None = None) -> Viewer:
    """The viewer of ``backend`` on the run, synced there first when it never logged
    there. Raises ``CliError`` for a backend without a viewer."""
    if backend not in VIEWERS:
        raise CliError(_no_viewer(run_dir, backend))
    ensure_logged(run_dir, backend)
    return VIEWERS[backend](run_dir, host, port)


def _no_viewer(run_dir: Path, backend: str) -> str:
    message = (f"no viewer for {backend!r}: unilog open starts "
               f"{' or '.join(sorted(VIEWERS))}")
    url = backend_info(run_dir, backend).get("url")
    return message + (f"; the run's {backend} page is {url}" if url else "")


def free_port(host: str, start: int) -> int:
    """The first port from ``start`` up that nothing listens on (as TensorBoard does
    without ``--port``: a second viewer does not fail on the first one's port)."""
    for port in range(start, start + PORT_TRIES):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return port
    raise CliError(f"ports {start}-{start + PORT_TRIES - 1} on {host} are all taken; "
                   "give one with --port")


def _url_host(host: str) -> str:
    # A viewer bound to every interface is reached on this machine at loopback.
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


# -- running one --------------------------------------------------------------------------


def run_viewer(viewer: Viewer, name: str) -> int:
    """Start the viewer, print its URL once it answers, and wait for it; SIGINT and
    SIGTERM are passed on to it. Returns its exit status (128+N for signal N)."""
    env = {**viewer.env, **os.environ}
    started: list[subprocess.Popen] = []
    early: list[int] = []  # signals that came before the viewer existed

    def forward(signum: int, _frame: Any) -> None:
        if started:
            _forward(started, signum)
        else:
            early.append(signum)

    # Handlers first: a Ctrl-C while the viewer starts still reaches it.
    handlers = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The viewer's own chatter goes to stderr: stdout carries the URL line alone.
        started.append(subprocess.Popen(viewer.command, env=env, stdout=_stderr(),
                                        start_new_session=os.name == "posix"))
        for signum in early:
            _forward(started, signum)
        if _wait_until_answering(started[0], viewer.url):
            print(f"{name} is showing the run at {viewer.url} (Ctrl-C stops it)", flush=True)
        status = started[0].wait()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        if started:
            _end_group(started[0])
    return 128 - status if status < 0 else status


def _stderr() -> Any:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a stderr without a file (captured)
        return None


def _forward(started: list[subprocess.Popen], signum: int) -> None:
    # To the viewer alone, not its group: MLflow's server passes the signal on to its
    # uvicorn and stops in order (signalled at once, uvicorn dies mid-startup with a
    # traceback). What it leaves behind, _end_group stops.
    for child in started:
        try:
            child.send_signal(signum)
        except ProcessLookupError:  # it ended meanwhile
            pass


def _end_group(child: subprocess.Popen) -> None:
    """Stop what the viewer left running in its group (workers of a server whose
    parent already exited), so nothing outlives ``unilog open``."""
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    if os.name == "posix":
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_until_answering(child: subprocess.Popen, url: str) -> bool:
    """Whether the viewer accepts connections at ``url`` before it exits or
    :data:`START_TIMEOUT` passes."""
    parts = urlsplit(url)
    deadline = time.monotonic() + START_TIMEOUT
    while child.poll() is None and time.monotonic() < deadline:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    if child.poll() is None:
        print(f"unilog open: {Path(child.args[0]).name} did not answer at {url} within "
              f"{START_TIMEOUT:.0f} s; still waiting for it", file=sys.stderr, flush=True)
    return False


def open_run(run_dir: Path, backend: str, *, host: str = "127.0.0.1",
             port: int | None = None, print_command: bool = False) -> int:
    """``unilog open``: show the run in ``backend``'s viewer until Ctrl-C; returns the
    exit status. ``print_command`` prints the command instead of running it."""
    viewer = viewer_for(run_dir, backend, host=host, port=port)
    if not viewer.command:
        print(f"the run is on an MLflow server: {viewer.url}")
        return 0
    if print_command:
        import shlex

        env = " ".join(f"{k}={v}" for k, v in viewer.env.items() if k not in os.environ)
        print(" ".join(filter(None, [env, shlex.join(viewer.command)])))
        return 0
    return run_viewer(viewer, {"tensorboard": "TensorBoard", "mlflow": "MLflow"}[backend])
