"""wandb media values (the JSON dicts with a ``_type`` in a run's history) as
unilog media, for :mod:`unilog.importers.wandb`.

A media value names its file under the run folder's ``files/``. Images,
histograms and tables have a unilog type; every other kind is reported through
``ImportTarget.unrepresented``, as is a file that is missing or unreadable.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import unilog

__all__ = ["UNREPRESENTED_MEDIA", "media"]

#: wandb media a unilog run cannot hold, by wandb's ``_type``: what the report calls them.
UNREPRESENTED_MEDIA = {
    "audio-file": "audio", "audio": "audio", "video-file": "video", "videos": "video",
    "html-file": "html", "html": "html", "object3D-file": "3D object",
    "object3D": "3D object", "molecule-file": "molecule", "molecule": "molecule",
    "plotly-file": "plotly chart", "bokeh-file": "bokeh chart", "graph-file": "graph",
    "partitioned-table": "partitioned table", "joined-table": "joined table",
    "incremental-table-file": "incremental table", "wb_trace_tree": "trace tree",
}


def media(key: str, spec: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    """The unilog values of one wandb media value (several for a list of images)."""
    kind = spec.get("_type")
    convert = _MEDIA.get(kind)
    if convert is None:
        target.unrepresented(UNREPRESENTED_MEDIA.get(kind, f"wandb {kind}"), key)
        return {}
    try:
        return convert(key, spec, files, target)
    except (OSError, ValueError, TypeError, KeyError) as exc:  # a missing or bad file
        target.unrepresented(f"unreadable {kind} ({type(exc).__name__})", key)
        return {}


def _image(key: str, spec: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    for extra in ("masks", "boxes"):
        if spec.get(extra):
            target.unrepresented(f"image {extra}", key)
    return {key: _image_file(files / spec["path"], spec.get("caption"))}


def _images(key: str, spec: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    """A list of images logged under one key: ``key/0``, ``key/1``..."""
    captions = spec.get("captions") or []
    for extra in ("all_masks", "all_boxes"):
        if spec.get(extra):
            target.unrepresented(f"image {extra.removeprefix('all_')}", key)
    return {f"{key}/{i}": _image_file(files / name, captions[i] if i < len(captions) else None)
            for i, name in enumerate(spec["filenames"])}


def _image_file(path: Path, caption: Any) -> unilog.Image:
    caption = caption if isinstance(caption, str) else None
    try:
        return unilog.Image(path, caption=caption)
    except ValueError:  # not PNG or JPEG (a GIF, a BMP...): PIL, which wandb needs, reads it
        from PIL import Image as PILImage

        with PILImage.open(path) as img:
            return unilog.Image(img, caption=caption)


def _histogram(key: str, spec: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    counts = spec["values"]
    if "packedBins" in spec:  # wandb.watch's form: equal bins from min, size and count
        packed = spec["packedBins"]
        edges = [packed["min"] + packed["size"] * i for i in range(packed["count"] + 1)]
    else:
        edges = spec["bins"]
    return {key: unilog.Histogram(np_histogram=(counts, edges))}


def _table(key: str, spec: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    content = json.loads((files / spec["path"]).read_text(encoding="utf-8"))
    rows = [[_cell(cell, key, target) for cell in row] for row in content.get("data", [])]
    return {key: unilog.Table(columns=content["columns"], data=rows)}


def _cell(cell: Any, key: str, target: Any) -> Any:
    """A table cell; media in a cell (an image, say) becomes its file's path."""
    if isinstance(cell, dict) and "_type" in cell:
        target.unrepresented("media in a table cell", key)
        return cell.get("path") or cell["_type"]
    return cell


_MEDIA: dict[str, Callable[[str, dict[str, Any], Path, Any], dict[str, Any]]] = {
    "image-file": _image,
    "images/separated": _images,
    "histogram": _histogram,
    "table-file": _table,
    "table": _table,
}
