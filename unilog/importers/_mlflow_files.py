"""An MLflow run's artifacts as unilog artifacts (for :mod:`unilog.importers.mlflow`).

Each top-level artifact path (a file or a folder) is downloaded and stored as
one unilog artifact, named after it (characters outside unilog's name rule
become ``_``; the MLflow path is kept in the metadata as ``mlflow_path``).
A run that unilog itself wrote to MLflow keeps its artifacts as
``<name>/v<N>/`` with ``unilog-artifact.json`` beside the files: those come
back as the same versions, types, aliases and metadata. Its ``unilog/config.json``
is the run's config (read by the importer), not an artifact.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

#: The manifest unilog's MLflow backend stores beside each artifact version.
MANIFEST = "unilog-artifact.json"
#: Where unilog's MLflow backend stores the whole config.
CONFIG_PATH = "unilog/config.json"
_VERSION = re.compile(r"v([0-9]+)")
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def read_config(client: Any, run_id: str, scratch: Path) -> dict[str, Any] | None:
    """The config a unilog run logged as ``unilog/config.json``, None when absent."""
    paths = {f.path for f in client.list_artifacts(run_id, "unilog")}
    if CONFIG_PATH not in paths:
        return None
    local = Path(client.download_artifacts(run_id, CONFIG_PATH, str(scratch)))
    try:
        config = json.loads(local.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return config if isinstance(config, dict) else None


def store_artifacts(client: Any, run_id: str, target: Any, scratch: Path,
                    ours: bool) -> int:
    """Every top-level artifact of the run into ``target``; how many were stored."""
    used: set[str] = set()
    stored = 0
    for info in client.list_artifacts(run_id):
        if ours and info.path == "unilog":  # the config, read by the importer
            continue
        versions = _unilog_versions(client, run_id, info) if ours else []
        if versions:
            stored += _restore_versions(client, run_id, info.path, versions, target, scratch)
            used.add(info.path)
            continue
        local = client.download_artifacts(run_id, info.path, str(scratch / "plain"))
        target.artifact(local, name=_name(info.path, used), type="artifact",
                        metadata={"mlflow_path": info.path})
        stored += 1
    return stored


def _unilog_versions(client: Any, run_id: str, info: Any) -> list[int]:
    """The version numbers of a folder ``<name>/v<N>/`` written by unilog, else []."""
    if not info.is_dir:
        return []
    versions = []
    for child in client.list_artifacts(run_id, info.path):
        match = _VERSION.fullmatch(child.path.rsplit("/", 1)[-1])
        if not (child.is_dir and match):
            return []
        versions.append(int(match.group(1)))
    return sorted(versions)


def _restore_versions(client: Any, run_id: str, name: str, versions: list[int],
                      target: Any, scratch: Path) -> int:
    for version in versions:
        folder = Path(client.download_artifacts(run_id, f"{name}/v{version}",
                                                str(scratch / "versions")))
        manifest_path = folder / MANIFEST
        manifest = json.loads(manifest_path.read_text(encoding="utf-8")) \
            if manifest_path.is_file() else {}
        manifest_path.unlink(missing_ok=True)
        files = [p for p in folder.iterdir()]
        # A single-file artifact was logged from that file: store it the same way.
        source = files[0] if len(files) == 1 and files[0].is_file() else folder
        target.artifact(source, name=name, type=manifest.get("type", "artifact"),
                        aliases=[a for a in manifest.get("aliases", []) if a != "latest"],
                        metadata=manifest.get("metadata") or None)
        shutil.rmtree(folder, ignore_errors=True)
    return len(versions)


def _name(path: str, used: set[str]) -> str:
    """A unilog artifact name for an MLflow path, distinct from those ``used``."""
    base = _NOT_IN_NAME.sub("_", path).lstrip(".")[:120] or "artifact"
    if base.lower() == "objects":  # reserved by unilog's blob store
        base += "_"
    name, n = base, 1
    while name in used:
        n += 1
        name = f"{base}_{n}"
    used.add(name)
    return name
