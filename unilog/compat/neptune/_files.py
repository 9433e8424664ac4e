"""Files: the artifact name and type of a field path, the name of uploaded content,
the files that ``upload_files``' patterns match."""

from __future__ import annotations

import errno
import glob
import os
import re
from pathlib import Path
from typing import Any

from unilog.compat.neptune._values import _sequence
from unilog.errors import ArtifactError

_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MODEL_WORDS = ("model", "checkpoint", "ckpt")


def _artifact_name(path: str) -> str:
    """The artifact name of a field path: segments joined by ``-``, other characters
    than letters, digits, ``.``, ``_`` and ``-`` as ``_`` (unilog's name rule)."""
    name = _NAME_CHARS.sub("_", "-".join(part for part in path.split("/") if part))
    if name.startswith("."):
        name = "_" + name[1:]
    try:
        from unilog.artifacts import validate_name

        return validate_name(name)
    except ArtifactError as exc:
        raise ArtifactError(f"run[{path!r}]: the path gives the artifact name {name!r}, "
                            f"which breaks unilog's rule: {exc}") from None


def _artifact_type(path: str) -> str:
    words = [part.lower() for part in path.split("/")]
    return "model" if any(w.startswith(_MODEL_WORDS) for w in words) else "file"


def _file_name(path: str, extension: str | None) -> str:
    """The file name of uploaded content: the path's last segment, with ``extension``."""
    base = _NAME_CHARS.sub("_", [p for p in path.split("/") if p][-1]).lstrip(".") or "file"
    return f"{base}.{extension}" if extension else base


def _matching_files(path: str, value: Any) -> list[Path]:
    patterns = [value] if isinstance(value, (str, os.PathLike)) else _sequence(
        path, value, "upload_files")
    found: dict[Path, None] = {}
    for pattern in patterns:
        if not isinstance(pattern, (str, os.PathLike)):
            raise TypeError(f"run[{path!r}].upload_files takes paths and glob patterns, "
                            f"not {pattern!r}")
        matched = sorted(glob.glob(os.fspath(pattern), recursive=True))
        if not matched:
            raise FileNotFoundError(errno.ENOENT, f"run[{path!r}].upload_files: the "
                                    "pattern matches no file", os.fspath(pattern))
        found.update((Path(m).absolute(), None) for m in matched)
    return list(found)
