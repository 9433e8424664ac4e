"""The run manifest, ``run.json``: identity, status, provenance, per-backend reports.

Written atomically (temporary file, then ``os.replace``) so a crash never
leaves half a manifest. Provenance records what a user needs to reproduce
the run: command line, working directory, git commit and dirty flag,
hostname, Python and the versions of the key packages that are installed.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import platform
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from unilog._config import redact_argv

MANIFEST = "run.json"

#: Packages whose versions are recorded when installed (looked up, never imported).
KEY_PACKAGES = ("unilog-ml", "torch", "numpy", "lightning", "pytorch-lightning", "hydra-core",
                "omegaconf", "wandb", "mlflow", "swanlab", "neptune", "tensorboard", "pluggy")


def provenance() -> dict[str, Any]:
    """Where, how and with what this process is running.

    The git state and package versions are looked up once per process (and
    working directory): three git subprocesses and a dozen metadata lookups
    were most of a warm ``init``'s 15 ms.
    """
    return {
        "command": [sys.executable, *redact_argv(sys.argv)],
        "cwd": os.getcwd(),
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": copy.deepcopy(_cached_git_state(os.getcwd())),
        "packages": dict(_cached_package_versions()),
    }


@functools.lru_cache(maxsize=None)
def _cached_git_state(cwd: str) -> dict[str, Any] | None:
    return git_state(Path(cwd))


@functools.lru_cache(maxsize=1)
def _cached_package_versions() -> dict[str, str]:
    return package_versions()


def package_versions() -> dict[str, str]:
    """Versions of the installed KEY_PACKAGES, from their metadata only."""
    from importlib import metadata

    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_state(path: Path, timeout: float = 2.0) -> dict[str, Any] | None:
    """The commit, branch and dirty flag of the repository around ``path``, or None.

    Bounded in time: a slow or absent git never delays ``init`` by more than ``timeout``.
    """
    def git(*args: str) -> str:
        # --no-optional-locks: `git status` would otherwise take the index lock to
        # refresh it, and the user's own `git commit` at that moment would fail.
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=path,
                              capture_output=True, text=True, timeout=timeout,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit, "branch": branch, "dirty": dirty}


class Manifest:
    """The in-memory manifest of one run, saved to ``<run dir>/run.json`` on demand."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data
        self._lock = threading.Lock()

    @classmethod
    def load(cls, run_dir: Path) -> Manifest:
        """Read the manifest of an existing run directory."""
        path = run_dir / MANIFEST
        return cls(path, json.loads(path.read_text(encoding="utf-8")))

    def update(self, **fields: Any) -> None:
        """Set top-level fields and save."""
        with self._lock:
            self.data.update(fields)
            self._save()

    def set_backend(self, name: str, **fields: Any) -> None:
        """Merge fields into ``backends[name]`` and save."""
        with self._lock:
            self.data.setdefault("backends", {}).setdefault(name, {}).update(fields)
            self._save()

    def _save(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}")
        try:
            tmp.write_text(json.dumps(self.data, indent=2, default=str), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a full disk: the last good run.json stays
            raise
