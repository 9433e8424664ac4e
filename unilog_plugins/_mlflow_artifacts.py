"""Artifacts in MLflow: each version a folder ``<name>/v<N>/`` with unilog's manifest
beside its files, and a run tag ``unilog.artifact.<name>`` holding the alias index.

:class:`MLflowArtifacts` holds the backend's artifact methods (upload, alias
index, download from this run or the experiment's others, checked against each
file's sha256); :class:`unilog_plugins.mlflow_backend.MLflowBackend` inherits them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from unilog.errors import ArtifactError
from unilog_plugins._mlflow_outage import Held
from unilog_plugins._mlflow_store import MAX_TAG_VALUE

logger = logging.getLogger("unilog")

ARTIFACT_JSON = "unilog-artifact.json"


ARTIFACT_TAG = "unilog.artifact."


_VERSION = re.compile(r"v([0-9]+)")


class _Staging:
    """A temporary folder under the run's ``mlflow/`` folder, removed with it on exit."""

    def __init__(self, parent: Path):
        self.parent = parent

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.parent))
        return self.path

    def __exit__(self, *exc: Any) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.parent.rmdir()  # leave no empty folder behind in the run directory
        except OSError:
            pass


def _parse_alias_index(value: str) -> dict[str, Any] | None:
    """``{"aliases": {alias: version}}`` from a tag's value, or None when it is not one."""
    try:
        aliases = json.loads(value)["aliases"]
    except (ValueError, TypeError, KeyError):
        return None
    if isinstance(aliases, dict) and all(type(v) is int for v in aliases.values()):
        return {"aliases": dict(aliases)}
    return None


def _place(blob: Path, target: Path) -> None:
    """Put a blob at ``target`` for upload: a hard link when possible (no copy)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(blob, target)
    except OSError:
        shutil.copyfile(blob, target)


def _read_manifest(path: Path) -> dict[str, Any] | None:
    """The unilog manifest stored beside an artifact's files, or None if ``path`` is
    missing or is one of the artifact's own files (which then had that name)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        paths = [f["path"] for f in manifest["files"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None if ARTIFACT_JSON in paths else manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()



class MLflowArtifacts:
    """The MLflow backend's artifact methods (they use its client, run and tag helpers)."""

    def _staging(self) -> _Staging:
        return _Staging(self._run.backend_dir(self.name))

    def log_artifact(self, artifact: Any) -> None:
        """Files under ``<name>/v<N>/`` with the manifest beside them; the alias tag."""
        if self._client is None:
            return
        ours = all(f.path != ARTIFACT_JSON for f in artifact.files)
        if not ours:
            logger.warning("unilog backend 'mlflow': artifact %s has its own file %s, so "
                           "unilog's manifest is not stored beside it in MLflow",
                           artifact.ref, ARTIFACT_JSON)
        self._net.send(Held("artifact", 1, lambda: self._send_artifact(artifact, ours),
                            name=artifact.ref))

    def _send_artifact(self, artifact: Any, ours: bool) -> None:
        folder = f"{artifact.name}/v{artifact.version}"
        fresh = (artifact.name, artifact.version) not in self._uploaded
        with self._staging() as staging:
            if fresh:  # the same version again only moves aliases: no re-upload
                for f in artifact.files:
                    _place(f.blob, staging / f.path)
            if ours:
                manifest = json.dumps(artifact.to_json(), indent=2, ensure_ascii=False)
                (staging / ARTIFACT_JSON).write_text(manifest, encoding="utf-8")
            self._client.log_artifacts(self._run_id, str(staging), folder)
        self._uploaded.add((artifact.name, artifact.version))
        index = self._artifacts.setdefault(artifact.name, {"aliases": {}})
        index["aliases"].update(dict.fromkeys(artifact.aliases, artifact.version))
        self._set_tags({ARTIFACT_TAG + artifact.name: self._index_tag(artifact.name, index)})

    def _index_tag(self, name: str, index: dict[str, Any]) -> str:
        """The alias index as JSON within MLflow's tag limit: never cut (that is not
        JSON); when too long, the aliases of the oldest versions are left out of the
        tag (``latest`` and the newest stay; this run's index, the local record and
        each version's ``unilog-artifact.json`` keep them all), with one warning."""
        aliases = index["aliases"]
        text = json.dumps({"aliases": aliases}, sort_keys=True)
        if len(text) <= MAX_TAG_VALUE:
            return text
        kept, size = dict(aliases), len(text)
        oldest_first = sorted((a for a in aliases if a != "latest"),
                              key=lambda a: (aliases[a], a))
        for alias in oldest_first:
            if size <= MAX_TAG_VALUE:
                break
            del kept[alias]
            size -= len(json.dumps(alias)) + len(str(aliases[alias])) + 4  # '"a": N, '
        text = json.dumps({"aliases": kept}, sort_keys=True)
        dropped = len(aliases) - len(kept)
        if name not in self._alias_warned:
            self._alias_warned.add(name)
            logger.warning(
                "unilog backend 'mlflow': artifact %r has too many aliases for MLflow's "
                "%d-character tag %r; the aliases of its oldest versions are left out of "
                "that tag (%d now; more may be as versions are added), so other runs resolve "
                "only the newest through MLflow; each version's %s and the local record "
                "keep them all", name, MAX_TAG_VALUE, ARTIFACT_TAG + name, dropped,
                ARTIFACT_JSON)
        return text

    def download_artifact(self, name: str, alias: str, root: Path) -> Path | None:
        """``name:alias`` from this MLflow run, else from the experiment's other runs
        (newest first), downloaded into ``root``; its files' sha256 are checked."""
        if self._client is None:
            return None
        for run_id, index in self._artifact_sources(name):
            version = self._resolve(run_id, name, alias, index)
            if version is not None:
                return self._fetch(run_id, name, version, Path(root))
        return None

    def _artifact_sources(self, name: str):
        if name in self._artifacts:
            yield self._run_id, self._artifacts[name]
        found = self._client.search_runs(
            [self._experiment_id], filter_string=f"tags.`{ARTIFACT_TAG}{name}` LIKE '%'",
            order_by=["attributes.start_time DESC"], max_results=100)
        for other in found:
            if other.info.run_id != self._run_id:
                index = self._alias_index(other.data.tags.get(ARTIFACT_TAG + name, ""),
                                          other.info.run_id, name)
                if index is not None:
                    yield other.info.run_id, index

    def _alias_index(self, value: str, run_id: str, name: str) -> dict[str, Any] | None:
        """Run ``run_id``'s alias index of artifact ``name``; None, with one warning,
        when the tag is not one (e.g. cut to MLflow's limit by an older unilog)."""
        index = _parse_alias_index(value)
        if index is None and (run_id, name) not in self._bad_index:
            self._bad_index.add((run_id, name))
            logger.warning("unilog backend 'mlflow': tag %r of MLflow run %s is not a valid "
                           "alias index (cut or edited?); it is ignored, so aliases of "
                           "artifact %r are not resolved from that run", ARTIFACT_TAG + name,
                           run_id, name)
        return index

    def _resolve(self, run_id: str, name: str, alias: str, index: dict) -> int | None:
        match = _VERSION.fullmatch(alias)
        if match is None:
            return index["aliases"].get(alias)
        folders = {f.path for f in self._client.list_artifacts(run_id, name)}
        return int(match[1]) if f"{name}/{alias}" in folders else None

    def _fetch(self, run_id: str, name: str, version: int, root: Path) -> Path:
        path = Path(self._client.download_artifacts(run_id, f"{name}/v{version}", str(root)))
        manifest = _read_manifest(path / ARTIFACT_JSON)
        if manifest is not None:  # ours: the artifact had no file of that name
            (path / ARTIFACT_JSON).unlink()
            for f in manifest["files"]:
                if _sha256(path / f["path"]) != f["sha256"]:
                    raise ArtifactError(f"{f['path']} of artifact {name}:v{version} fetched "
                                        f"from MLflow run {run_id} does not match its sha256")
        return path

