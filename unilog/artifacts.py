"""The local, versioned, content-addressed artifact store of one run.

Everything lives under ``<run_dir>/artifacts/``::

    objects/<sha256>          one blob per distinct file content, shared by every artifact
    <name>/v<N>.json          the manifest of version N (files, digest, metadata, ...)
    <name>/aliases.json       {"latest": N, "best": M, ...}; the authority on aliases
    <name>/v<N>/files/        where ``Artifact.download()`` puts the files by default

A version's ``digest`` is the sha256 of its sorted ``path NUL sha256 LF`` lines,
so it depends on the files' names and contents only. Logging content whose
digest equals the latest version's creates no new version: the new aliases are
added to that version (as wandb does). An alias names exactly one version;
``latest`` always names the newest.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unilog.errors import ArtifactError

__all__ = [
    "ARTIFACT_NAME_RULE",
    "Artifact",
    "ArtifactFile",
    "ArtifactStore",
    "FetchedArtifact",
    "find_artifact",
    "parse_ref",
    "validate_name",
]

ARTIFACT_NAME_RULE = (
    "an artifact name is 1 to 128 characters among letters, digits, '.', '_' and '-', "
    "does not start with '.', and is not 'objects' (reserved for the blob store)"
)
_ALIAS_RULE = (
    "an alias is one or more characters among letters, digits, '.', '_' and '-', "
    "and not 'v<number>', which names a version"
)
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_ALIAS_RE = re.compile(r"[A-Za-z0-9._-]+")
_VERSION_RE = re.compile(r"v([0-9]+)")
_MANIFEST_RE = re.compile(r"v([0-9]+)\.json")
_SHA_RE = re.compile(r"[0-9a-f]{64}")
_RESERVED = "objects"
_CHUNK = 1 << 20
_MAX_LISTED = 20
_WINDOWS = os.name == "nt"
_WINDOWS_UNSAFE = '\\:*?"<>|'

# One lock per artifacts folder for the whole process, so that two stores opened
# on the same run (the run and a callback, say) still allocate versions in turn.
_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def validate_name(name: str) -> str:
    """Return ``name`` if it follows :data:`ARTIFACT_NAME_RULE`, else raise ArtifactError.

    The rule keeps a name a single, harmless path component: no separators,
    no ``..``, no hidden files.
    """
    if isinstance(name, str) and _NAME_RE.fullmatch(name) and name.lower() != _RESERVED:
        return name
    raise ArtifactError(f"invalid artifact name {name!r}: {ARTIFACT_NAME_RULE}")


def parse_ref(ref: str) -> tuple[str, str]:
    """Split ``"name"``, ``"name:v3"`` or ``"name:best"`` into ``(name, alias_or_version)``.

    A bare name means ``"latest"``.
    """
    if not isinstance(ref, str):
        raise ArtifactError(f"an artifact reference is a str like 'model:latest', got {ref!r}")
    name, sep, alias = ref.partition(":")
    validate_name(name)
    if not sep:
        return name, "latest"
    if not _ALIAS_RE.fullmatch(alias):
        raise ArtifactError(
            f"invalid alias {alias!r} in artifact reference {ref!r}: "
            "an alias or version is one or more letters, digits, '.', '_' or '-'"
        )
    return name, alias


@dataclass(frozen=True)
class ArtifactFile:
    """One file of an artifact: its relative posix ``path``, content hash, size and blob."""

    path: str
    sha256: str
    size: int
    blob: Path


@dataclass(init=False)
class Artifact:
    """One version of a named artifact, as recorded in its manifest; or, made by the
    user, a new one being built (as ``wandb.Artifact``)::

        artifact = unilog.Artifact("model", type="model", metadata={"epochs": 3})
        artifact.add_file("model.pt")             # copied when it is logged
        artifact.add_dir("tokenizer/", name="tok")
        artifact.add_reference("s3://bucket/data.csv")   # recorded, not copied
        run.log_artifact(artifact, aliases=["best"])     # now it is model:v0

    Logging it stores the files as a new version (``version``, ``files``... are
    then set, as for any stored artifact); until then ``logged`` is False.
    """

    name: str
    version: int
    type: str
    aliases: list[str]
    metadata: dict[str, Any]
    digest: str
    files: list[ArtifactFile]
    run_dir: Path
    created: float
    run_id: str

    def __init__(self, name: str, type: str = "artifact", description: str | None = None,
                 metadata: Mapping[str, Any] | None = None, *, version: int | None = None,
                 aliases: list[str] | None = None, digest: str = "",
                 files: list[ArtifactFile] | None = None, run_dir: Path | None = None,
                 created: float = 0.0, run_id: str = ""):
        self.name = validate_name(name)
        self.type = _check_type(type)
        self.metadata = _check_metadata(metadata)
        if description is not None:
            if not isinstance(description, str):
                raise ArtifactError(f"artifact {name!r}: description must be a str, not "
                                    f"{description!r}")
            self.metadata["description"] = description
        self.version = version  # type: ignore[assignment]  # None: not logged yet
        self.aliases = list(aliases or [])
        self.digest, self.files = digest, list(files or [])
        self.run_dir, self.created, self.run_id = run_dir, created, run_id  # type: ignore
        self._staged: list[tuple[Path, str]] = []
        self._references: list[dict[str, str]] = []

    @property
    def logged(self) -> bool:
        """True once stored (a version of the run's artifact ``name``)."""
        return self.version is not None

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None) -> None:
        """Add a file, as ``name`` in the artifact (default: its file name)."""
        src = self._unlogged(local_path)
        if not src.is_file():
            raise ArtifactError(f"artifact {self.name!r}: add_file needs a file, and "
                                f"{str(src)!r} is not one")
        self._staged.append((src, _safe_relpath(name if name is not None else src.name)))

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None) -> None:
        """Add a folder's files (recursively), under ``name`` in the artifact (default:
        at its top)."""
        src = self._unlogged(local_path)
        if not src.is_dir():
            raise ArtifactError(f"artifact {self.name!r}: add_dir needs a folder, and "
                                f"{str(src)!r} is not one")
        prefix = _safe_relpath(name) + "/" if name else ""
        for rel, path in _walk(src):
            self._staged.append((path, prefix + rel))

    def add_reference(self, uri: str, name: str | None = None, checksum: bool = True,
                      max_objects: int | None = None) -> None:
        """Record ``uri`` (``s3://...``, ``https://...``, a path) in the artifact's
        metadata under ``references``; nothing is copied or fetched. ``checksum``
        and ``max_objects`` are W&B's, taken and ignored: unilog never lists or
        reads what a reference names."""
        self._unlogged(None)
        if not isinstance(uri, str) or not uri:
            raise ArtifactError(f"artifact {self.name!r}: a reference is a URI (str), not "
                                f"{uri!r}")
        self._references.append({"uri": uri, "name": name or uri.rstrip("/").split("/")[-1]})

    def _unlogged(self, local_path: str | os.PathLike[str] | None) -> Path:
        if self.logged:
            raise ArtifactError(f"artifact {self.ref} is logged: its content cannot change; "
                                "make a new unilog.Artifact for a new version")
        return Path(local_path) if local_path is not None else Path()

    def staged(self) -> tuple[list[tuple[Path, str]], dict[str, Any]]:
        """What logging this built artifact stores: ``(file, name in the artifact)``
        pairs, and its metadata with the references."""
        metadata = dict(self.metadata)
        if self._references:
            metadata["references"] = list(self._references)
        return list(self._staged), metadata

    def save(self) -> Artifact:
        """Log this built artifact to the current run (``unilog.run``), as W&B's
        ``artifact.save()`` does inside a run; returns it, now the stored version.

        :raises ArtifactError: when there is no current run (W&B would start one:
            call ``unilog.init()`` first, or ``run.log_artifact(artifact)``)."""
        import unilog

        if unilog.run is None:
            raise ArtifactError(f"artifact {self.name!r}: save() logs to the current run, "
                                "and there is none: call unilog.init() first, or "
                                "run.log_artifact(artifact)")
        unilog.run.log_artifact(self)
        return self

    def become(self, stored: Artifact) -> None:
        """Take on the stored version's fields (this artifact is now that version)."""
        for key in ("version", "aliases", "metadata", "digest", "files", "run_dir",
                    "created", "run_id"):
            setattr(self, key, getattr(stored, key))

    @property
    def ref(self) -> str:
        """The reference that pins this version: ``"name:v<N>"``."""
        return f"{self.name}:v{self.version}"

    def download(self, root: str | os.PathLike[str] | None = None) -> str:
        """Put the files under ``root`` (default ``<run_dir>/artifacts/<name>/v<N>/files``).

        Relative paths are kept. Files are copied, never hard-linked: a link
        would let an in-place edit of the downloaded file corrupt the stored
        blob. A file already there with the blob's size and mtime is left
        alone (rsync's quick check), so repeated downloads are cheap.
        Returns the directory as a str.
        """
        if root is None:
            dest = self.run_dir / "artifacts" / self.name / f"v{self.version}" / "files"
        else:
            dest = Path(root)
        dest.mkdir(parents=True, exist_ok=True)
        for f in self.files:
            _materialise(f, dest / _safe_relpath(f.path))
        return str(dest)

    def file(self) -> str:
        """Download a single-file artifact and return that file's path."""
        if len(self.files) != 1:
            raise ArtifactError(
                f"artifact {self.ref} has {len(self.files)} files; file() needs exactly "
                "one, use download() for the whole directory"
            )
        return str(Path(self.download()) / self.files[0].path)

    def to_json(self) -> dict[str, Any]:
        """The manifest of this version, as stored in ``v<N>.json``."""
        return {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "aliases": list(self.aliases),
            "metadata": self.metadata,
            "digest": self.digest,
            "created": self.created,
            "run_id": self.run_id,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }


class ArtifactStore:
    """The artifacts of one run: add versions, read them back. Safe across threads."""

    def __init__(self, run_dir: Path, run_id: str):
        self.run_dir = Path(run_dir)
        self.run_id = run_id
        self.root = self.run_dir / "artifacts"
        self.objects = self.root / _RESERVED
        key = os.path.normcase(os.path.realpath(self.root))
        with _LOCKS_GUARD:
            self._lock = _LOCKS.setdefault(key, threading.Lock())

    def add(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        type: str = "artifact",
        aliases: str | Iterable[str] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Artifact:
        """Snapshot a file or a directory (recursively, symlinks followed) as a new version.

        The bytes are copied into the store before this returns, so the caller
        may overwrite the source right away. ``name`` defaults to the file or
        directory name made to fit the name rule. ``latest`` and every alias in
        ``aliases`` move to the returned version. If the content equals the
        latest version's, that version is returned (with the new aliases) and
        its type and metadata are kept.
        """
        src = Path(path)
        if not src.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(src))
        name = validate_name(name) if name is not None else _default_name(src)
        type = _check_type(type)
        alias_list = _check_aliases(aliases)
        meta = _check_metadata(metadata)
        # Copying happens outside the lock: it is the slow part, and blobs are
        # content-addressed, so concurrent writers cannot disagree about one.
        files = self._snapshot(src)
        digest = _digest(files)
        with self._lock:
            return self._publish(name, type, alias_list, meta, digest, files)

    def add_built(self, artifact: Artifact, aliases: str | Iterable[str] | None = None
                  ) -> Artifact:
        """Store a :class:`Artifact` built with ``add_file``/``add_dir``/``add_reference``
        as a new version of its name (the builder then becomes that version)."""
        if artifact.logged:
            raise ArtifactError(f"artifact {artifact.ref} is logged already; log a path, or "
                                "make a new unilog.Artifact")
        staged, metadata = artifact.staged()
        with tempfile.TemporaryDirectory(prefix="unilog-artifact-") as tmp:
            for src, rel in staged:
                target = Path(tmp, rel)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, target)
            stored = self.add(tmp, name=artifact.name, type=artifact.type, aliases=aliases,
                              metadata=metadata)
        artifact.become(stored)
        return stored

    def get(self, name: str, alias_or_version: str = "latest") -> Artifact | None:
        """The version named by ``"v3"`` or by an alias, or None if there is none."""
        validate_name(name)
        match = _VERSION_RE.fullmatch(alias_or_version)
        if match:
            return self._load(name, int(match[1]))
        if not _ALIAS_RE.fullmatch(alias_or_version):
            raise ArtifactError(f"invalid artifact alias {alias_or_version!r}: {_ALIAS_RULE}")
        version = self._read_aliases(name).get(alias_or_version)
        return None if version is None else self._load(name, version)

    def list(self) -> list[Artifact]:
        """Every version of every artifact of the run, sorted by (name, version)."""
        if not self.root.is_dir():
            return []
        out = []
        for entry in sorted(self.root.iterdir()):
            if entry.is_dir() and entry.name != _RESERVED and _NAME_RE.fullmatch(entry.name):
                alias_map = self._read_aliases(entry.name)
                for version in self._versions(entry.name):
                    artifact = self._load(entry.name, version, alias_map)
                    if artifact is not None:
                        out.append(artifact)
        return out

    def _snapshot(self, src: Path) -> list[ArtifactFile]:
        self.objects.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            pairs = _walk(src)
        elif src.is_file():
            pairs = [(src.name, src)]
        else:
            raise ArtifactError(f"{src} is neither a regular file nor a directory")
        return [self._store_blob(rel, p) for rel, p in pairs]

    def _store_blob(self, rel: str, src: Path) -> ArtifactFile:
        # Hash while copying, so each file is read once and what is hashed is
        # exactly what is stored, even if the source changes meanwhile.
        tmp = self.objects / f".tmp-{os.getpid()}-{threading.get_ident()}-{os.urandom(4).hex()}"
        sha, size = hashlib.sha256(), 0
        try:
            with open(src, "rb") as fin, open(tmp, "xb") as fout:
                while chunk := fin.read(_CHUNK):
                    sha.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
            blob = self.objects / sha.hexdigest()
            if blob.exists():
                tmp.unlink()
            else:
                os.replace(tmp, blob)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return ArtifactFile(rel, sha.hexdigest(), size, blob)

    def _publish(
        self, name: str, type: str, aliases: list[str], metadata: dict[str, Any],
        digest: str, files: list[ArtifactFile],
    ) -> Artifact:
        (self.root / name).mkdir(parents=True, exist_ok=True)
        alias_map = self._read_aliases(name)
        latest = alias_map.get("latest")
        if latest is not None:
            current = self._load(name, latest, alias_map)
            if current is not None and current.digest == digest:
                return self._move_aliases(name, latest, aliases, alias_map)
        versions = self._versions(name)
        version = versions[-1] + 1 if versions else 0
        artifact = Artifact(
            name, type, metadata=metadata, version=version, digest=digest, files=files,
            run_dir=self.run_dir, created=time.time(), run_id=self.run_id,
        )
        _write_json(self._manifest_path(name, version), artifact.to_json())
        return self._move_aliases(name, version, ["latest", *aliases], alias_map)

    def _move_aliases(
        self, name: str, version: int, aliases: list[str], alias_map: dict[str, int]
    ) -> Artifact:
        touched = {version}
        for alias in aliases:
            if alias_map.get(alias) is not None:
                touched.add(alias_map[alias])
            alias_map[alias] = version
        _write_json(self.root / name / "aliases.json", alias_map)
        # Manifests keep a copy of their aliases for readers of the raw files;
        # aliases.json stays the authority if the two ever disagree.
        for v in touched:
            manifest = self._read_manifest(name, v)
            if manifest is not None:
                manifest["aliases"] = sorted(a for a, n in alias_map.items() if n == v)
                _write_json(self._manifest_path(name, v), manifest)
        return self._load(name, version, alias_map)

    def _manifest_path(self, name: str, version: int) -> Path:
        return self.root / name / f"v{version}.json"

    def _versions(self, name: str) -> list[int]:
        folder = self.root / name
        if not folder.is_dir():
            return []
        found = (_MANIFEST_RE.fullmatch(p.name) for p in folder.iterdir())
        return sorted(int(m[1]) for m in found if m)

    def _read_aliases(self, name: str) -> dict[str, int]:
        path = self.root / name / "aliases.json"
        try:
            alias_map = {str(k): int(v) for k, v in (_read_json(path) or {}).items()}
        except (AttributeError, TypeError, ValueError) as exc:
            raise ArtifactError(f"damaged artifact file {path}: {exc!r}") from None
        if "latest" not in alias_map:
            # A crash between writing a manifest and aliases.json must not
            # hide the versions that exist.
            versions = self._versions(name)
            if versions:
                alias_map["latest"] = versions[-1]
        return alias_map

    def _read_manifest(self, name: str, version: int) -> dict[str, Any] | None:
        return _read_json(self._manifest_path(name, version))

    def _load(
        self, name: str, version: int, alias_map: dict[str, int] | None = None
    ) -> Artifact | None:
        path = self._manifest_path(name, version)
        m = _read_json(path)
        if m is None:
            return None
        alias_map = self._read_aliases(name) if alias_map is None else alias_map
        try:
            files = [
                ArtifactFile(f["path"], sha, int(f["size"]), self.objects / sha)
                for f in m["files"]
                for sha in [_check_sha(f["sha256"])]
            ]
            return Artifact(
                name=name,
                version=version,
                type=m["type"],
                aliases=sorted(a for a, n in alias_map.items() if n == version),
                metadata=m.get("metadata", {}),
                digest=m["digest"],
                files=files,
                run_dir=self.run_dir,
                created=float(m["created"]),
                run_id=m.get("run_id", self.run_id),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"damaged artifact manifest {path}: {exc!r}") from None


def find_artifact(ref: str, run_dir: Path | None, project_dir: Path | None) -> Artifact:
    """Resolve ``run.use_artifact(ref)``.

    ``ref`` is ``"name[:alias]"``; ``"<run_id>/name[:alias]"`` (pinned to a run of
    this project: that run's version or an ArtifactError, never another run's);
    ``"<project>/name[:alias]"`` (the newest matching version among that
    project's runs, as W&B's ``project/name:alias``; this run's own project
    too), when no run of this
    project has that id (both: an ArtifactError asking for the exact form); or
    ``"<project>/<run_id>/name[:alias]"``, or W&B's ``"<entity>/<project>/name[:alias]"``
    when the first part names no project here and the second does. Unpinned, the current run wins;
    otherwise the matching version with the newest ``created`` among the other
    runs of the project.
    """
    parts = ref.split("/") if isinstance(ref, str) else [ref]
    if len(parts) > 3:
        raise ArtifactError(f"artifact reference {ref!r} has {len(parts)} parts: it is "
                            "name:alias, run/name:alias, project/name:alias or "
                            "project/run/name:alias")
    name, alias = parse_ref(parts[-1])
    for part in parts[:-1]:
        if not _NAME_RE.fullmatch(part):
            raise ArtifactError(f"invalid project or run id {part!r} in artifact reference "
                                f"{ref!r}: {ARTIFACT_NAME_RULE}")
    if len(parts) == 3:  # project/run/name: that project's run, exactly
        root = Path(project_dir).parent if project_dir is not None else None
        if (root is not None and not (root / parts[0]).is_dir()
                and (root / parts[1]).is_dir()):
            # W&B's entity/project/name:alias (what its "Usage" tab copies): the
            # entity names no project here, the project does
            project = root / parts[1]
            return _newest(ref, name, alias, _other_stores(None, project),
                           f"in project {parts[1]!r} ({project})")
        return _pinned(ref, name, alias, parts[1], None,
                       _other_stores(None, root / parts[0] if root is not None else None),
                       root / parts[0] if root is not None else None)
    current = ArtifactStore(Path(run_dir), Path(run_dir).name) if run_dir is not None else None
    others = _other_stores(run_dir, project_dir)
    if len(parts) == 2:
        run_id = parts[0]
        in_project = [s for s in [current, *others]
                      if s is not None and s.run_dir.name == run_id]
        root = Path(project_dir).parent if project_dir is not None else None
        project = root / run_id if root is not None else None
        # This run's own project counts too: W&B code writes f"{project}/model:latest".
        is_project = project is not None and project.is_dir()
        if in_project and is_project:
            raise ArtifactError(
                f"artifact reference {ref!r} names both run {run_id!r} of this project and "
                f"project {run_id!r}: write {Path(project_dir).name}/{run_id}/{parts[-1]} "
                f"for the run, or {run_id}/<run id>/{parts[-1]} for a run of the project")
        if is_project and not in_project:
            return _newest(ref, name, alias, _other_stores(None, project),
                           f"in project {run_id!r} ({project})")
        return _pinned(ref, name, alias, run_id, current, others, project_dir)
    if current is not None and (found := current.get(name, alias)) is not None:
        return found
    matches = [a for s in others if (a := s.get(name, alias)) is not None]
    if matches:
        return max(matches, key=lambda a: (a.created, a.run_id))
    raise ArtifactError(f"no artifact matches {ref!r}; {_describe_existing(current, others)}")


def _pinned(ref: str, name: str, alias: str, run_id: str, current: ArtifactStore | None,
            others: list[ArtifactStore], project_dir: Path | None) -> Artifact:
    """``run_id``'s version of ``name:alias``, or an ArtifactError: never another run's."""
    candidates = [s for s in [current, *others] if s is not None and s.run_dir.name == run_id]
    if not candidates:  # exact or nothing: never another run's copy
        where = f"in {project_dir}" if project_dir is not None else "here"
        raise ArtifactError(
            f"no artifact matches {ref!r}: no run {run_id!r} with artifacts {where}; "
            f"{_describe_existing(current, others)}"
        )
    return _newest(ref, name, alias, candidates, f"in run {run_id!r}")


def _newest(ref: str, name: str, alias: str, stores: list[ArtifactStore],
            where: str) -> Artifact:
    matches = [a for s in stores if (a := s.get(name, alias)) is not None]
    if matches:
        return max(matches, key=lambda a: (a.created, a.run_id))
    raise ArtifactError(f"no artifact matches {ref!r} {where}; "
                        f"{_describe_existing(None, stores)}")


def _other_stores(run_dir: Path | None, project_dir: Path | None) -> list[ArtifactStore]:
    if project_dir is None or not Path(project_dir).is_dir():
        return []
    own = os.path.realpath(run_dir) if run_dir is not None else None
    return [
        ArtifactStore(d, d.name)
        for d in sorted(Path(project_dir).iterdir())
        if (d / "artifacts").is_dir() and os.path.realpath(d) != own
    ]


def _describe_existing(current: ArtifactStore | None, others: list[ArtifactStore]) -> str:
    refs = []
    for store in [current, *others]:
        if store is None:
            continue
        prefix = "" if store is current else f"{store.run_dir.name}/"
        for a in store.list():
            refs.append(prefix + a.ref + (f" ({', '.join(a.aliases)})" if a.aliases else ""))
    if not refs:
        return "there are no artifacts in this run or its project"
    more = f", and {len(refs) - _MAX_LISTED} more" if len(refs) > _MAX_LISTED else ""
    return "existing artifacts: " + ", ".join(refs[:_MAX_LISTED]) + more


def _default_name(src: Path) -> str:
    # abspath, not resolve: "." becomes the folder's own name, and a symlink
    # keeps the name the user chose for it.
    raw = os.path.basename(os.path.abspath(src))
    name = re.sub(r"[^A-Za-z0-9._-]", "-", raw).lstrip(".")[:128]
    if not name:
        return "artifact"
    return f"{name}-artifact" if name.lower() == _RESERVED else name


def _check_type(type: Any) -> str:
    if not isinstance(type, str) or not type.strip():
        raise ArtifactError(f"an artifact type is a non-empty str, got {type!r}")
    return type


def _check_aliases(aliases: str | Iterable[str] | None) -> list[str]:
    if aliases is None:
        return []
    # One alias given as a str is common; iterating it would yield letters.
    items = [aliases] if isinstance(aliases, str) else list(aliases)
    for alias in items:
        valid = isinstance(alias, str) and _ALIAS_RE.fullmatch(alias)
        if not valid or _VERSION_RE.fullmatch(alias):
            raise ArtifactError(f"invalid artifact alias {alias!r}: {_ALIAS_RULE}")
    return list(dict.fromkeys(items))


def _check_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise ArtifactError(f"artifact metadata is a dict, got {type(metadata).__name__}")
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise ArtifactError(f"artifact metadata key {key!r} is not a str; keys must be str")
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ArtifactError(
                f"artifact metadata key {key!r} is not JSON-serialisable: {exc}"
            ) from None
    # A JSON round trip is a deep copy: later changes by the caller cannot leak in.
    return json.loads(json.dumps(dict(metadata)))


def _check_sha(sha: Any) -> str:
    # The sha becomes a file name under objects/; a forged one must not escape it.
    if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
        raise ValueError(f"bad sha256 {sha!r}")
    return sha


def _walk(top: Path) -> list[tuple[str, Path]]:
    out: list[tuple[str, Path]] = []

    def visit(folder: Path, prefix: str, ancestors: frozenset[tuple[int, int]]) -> None:
        st = folder.stat()
        key = (st.st_dev, st.st_ino)
        # Only an ancestor makes a loop; two links to one folder are both kept.
        if key in ancestors:
            raise ArtifactError(f"symlink loop at {folder}: a folder cannot contain itself")
        with os.scandir(folder) as it:
            entries = list(it)
        for entry in entries:
            rel, path = prefix + entry.name, Path(entry.path)
            if entry.is_dir():
                visit(path, rel + "/", ancestors | {key})
            elif entry.is_file():
                out.append((rel, path))
            else:
                # Refuse rather than skip: nothing is lost silently.
                raise ArtifactError(
                    f"{path} is neither a regular file nor a directory "
                    "(a broken symlink, a socket or a device?)"
                )

    visit(top, "", frozenset())
    return sorted(out)


def _digest(files: list[ArtifactFile]) -> str:
    h = hashlib.sha256()
    for path, sha in sorted((f.path, f.sha256) for f in files):
        h.update(f"{path}\0{sha}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def _safe_relpath(path: str) -> str:
    # A manifest may come from another run's folder; it must not write outside root.
    # Paths are posix: "/" is the only separator. On POSIX "\\" and ":" are ordinary
    # file-name characters (ISO times in checkpoint names), so they round-trip;
    # only "", ".", ".." parts, a leading "/" and NUL could escape or break a path.
    if not isinstance(path, str) or not path or "\0" in path or any(
        p in ("", ".", "..") for p in path.split("/")
    ):
        raise ArtifactError(f"unsafe file path {path!r} in an artifact manifest")
    if _WINDOWS and any(ch in path for ch in _WINDOWS_UNSAFE):
        # There "\\" separates, ":" names a drive or a stream: such a name, logged
        # on POSIX, cannot be written here as the same file.
        raise ArtifactError(
            f"file path {path!r} in an artifact manifest cannot be written on Windows "
            f"(none of {_WINDOWS_UNSAFE!r} may appear in a file name there)"
        )
    return path


def _materialise(f: ArtifactFile, target: Path) -> None:
    try:
        blob_stat = f.blob.stat()
    except FileNotFoundError:
        raise ArtifactError(
            f"blob {f.blob} of {f.path!r} is missing; the artifact store is damaged"
        ) from None
    try:
        st = target.stat()
        if st.st_size == f.size and st.st_mtime_ns == blob_stat.st_mtime_ns:
            return
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    # Copy beside the target, then rename: a reader never sees half a file. The
    # temporary name has a fixed length: one built from the target's name would
    # pass the file system's 255-byte limit for a name that is near it.
    tmp = target.with_name(f".unilog-{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        shutil.copyfile(f.blob, tmp)
        os.utime(tmp, ns=(blob_stat.st_atime_ns, blob_stat.st_mtime_ns))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ArtifactError(f"damaged artifact file {path}: {exc}") from None


def _write_json(path: Path, obj: Any) -> None:
    # tmp + os.replace: a reader sees the old file or the new one, never a torn one.
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class FetchedArtifact:
    """An artifact that only a backend had (e.g. a run logged to a shared MLflow
    server from another machine), fetched by that backend into ``path``."""

    name: str
    alias: str
    path: Path
    source: str

    @property
    def ref(self) -> str:
        """``name:alias`` as requested."""
        return f"{self.name}:{self.alias}"

    def download(self, root: str | os.PathLike | None = None) -> str:
        """The folder of its files: ``path``, or a copy of it under ``root``."""
        if root is None:
            return str(self.path)
        shutil.copytree(self.path, root, dirs_exist_ok=True)
        return str(root)

    def file(self) -> str:
        """The path of a one-file artifact (ArtifactError if it has several)."""
        files = [p for p in Path(self.path).rglob("*") if p.is_file()]
        if len(files) != 1:
            raise ArtifactError(f"artifact {self.ref!r} from {self.source} has {len(files)} "
                                "files; use download() for its folder")
        return str(files[0])
