"""TensorBoard's values as unilog values: histograms, images, text, hparams.

Each function takes what TensorBoard's own reader returns and gives a unilog
value, or None with the reason in ``why`` (then the importer reports it as
unrepresented). numpy is imported where used: this module is imported only by
``unilog.importers.tensorboard``, which already needs it through tensorboard.
"""

from __future__ import annotations

import math
import os
from typing import Any

from unilog.media import Histogram, Image, Table, Text

MAX_BINS = 512  # what unilog.Histogram takes (wandb's limit)
#: TensorBoard's open-ended buckets reach to +-DBL_MAX (1.8e308); an edge this far
#: out is taken for "unbounded", not for a value.
_UNBOUNDED = 1e300
#: The suffix torch's add_text (and unilog's TensorBoard backend) add to a text tag.
TEXT_SUFFIX = "/text_summary"

MERGED_BINS = f"histograms of more than {MAX_BINS} bins (adjacent bins merged to fit)"
EMPTY_HISTOGRAM = "empty histograms (no values)"


def histogram_from_limits(limits: Any, counts: Any, low: float, high: float,
                          why: list[str]) -> Histogram | None:
    """A legacy ``HistogramProto`` (``bucket_limit``: each bucket's right edge).

    Bucket 0 starts at ``low`` (the data's min, as TensorBoard itself draws it);
    an edge at +-DBL_MAX (TensorBoard's open-ended first and last buckets) becomes
    the data's min or max, so every edge is finite and the buckets that hold
    values keep their own edges. Empty buckets at either end are left out.
    """
    import numpy as np

    limits = np.asarray(limits, dtype=np.float64)
    edges = np.concatenate([[low], limits]) if limits.size else np.array([])
    return _histogram(edges, np.asarray(counts, dtype=np.float64), low, high, why)


def histogram_from_buckets(buckets: Any, why: list[str]) -> Histogram | None:
    """A histogram tensor of the ``histograms`` plugin: rows of ``(left, right, count)``."""
    import numpy as np

    buckets = np.asarray(buckets, dtype=np.float64)
    if buckets.ndim != 2 or buckets.shape[0] == 0 or buckets.shape[1] != 3:
        why.append(EMPTY_HISTOGRAM)
        return None
    edges = np.concatenate([buckets[:1, 0], buckets[:, 1]])
    finite = edges[np.abs(edges) < _UNBOUNDED]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    return _histogram(edges, buckets[:, 2], low, high, why)


def _histogram(edges: Any, counts: Any, low: float, high: float,
               why: list[str]) -> Histogram | None:
    import numpy as np

    if counts.size == 0 or edges.size != counts.size + 1 or not counts.sum() > 0:
        why.append(EMPTY_HISTOGRAM)  # also TF's empty histogram, min=DBL_MAX, max=-DBL_MAX
        return None
    edges = np.where(edges <= -_UNBOUNDED, low, np.where(edges >= _UNBOUNDED, high, edges))
    edges = np.maximum.accumulate(edges)  # torch's first (empty) bucket may end below min
    filled = np.flatnonzero(counts)
    first, last = filled[0], filled[-1]
    counts, edges = counts[first:last + 1], edges[first:last + 2]
    if counts.size > MAX_BINS:
        why.append(MERGED_BINS)
        counts, edges = _merge(counts, edges)
    if not (np.isfinite(edges).all() and np.isfinite(counts).all()):
        why.append(EMPTY_HISTOGRAM)
        return None
    return Histogram(np_histogram=(counts, edges))


def _merge(counts: Any, edges: Any) -> tuple[Any, Any]:
    """Adjacent bins summed in groups, so that at most MAX_BINS remain."""
    import numpy as np

    group = math.ceil(counts.size / MAX_BINS)
    starts = np.arange(0, counts.size, group)
    return np.add.reduceat(counts, starts), np.concatenate([edges[starts], edges[-1:]])


def image_from_bytes(encoded: bytes, caption: str | None, scratch: str,
                     why: list[str]) -> Image | None:
    """An encoded PNG or JPEG (TensorBoard keeps images encoded); None for others
    (``add_video`` writes animated GIFs)."""
    # unilog.Image takes encoded bytes from a file and keeps them as they are (no
    # re-encoding); the file is read at once, so one scratch file serves all.
    path = os.path.join(scratch, "image")
    with open(path, "wb") as file:
        file.write(encoded)
    try:
        return Image(path, caption=caption or None)
    except ValueError:
        why.append("images that are not PNG or JPEG (videos are GIFs)")
        return None


def text_from_array(array: Any, why: list[str]) -> Text | Table | None:
    """The ``text`` plugin's string tensor: one string is a Text; a vector or a
    matrix (which TensorBoard shows as a table) a Table of str cells."""
    cells = [[_str(c) for c in row] for row in (array.reshape(-1, 1) if array.ndim < 2
                                                 else array)] if array.ndim <= 2 else None
    if cells is None:
        why.append("text tensors of more than 2 dimensions")
        return None
    if array.size == 1:
        return Text(cells[0][0])
    return Table(data=cells)


def _str(cell: Any) -> str:
    return cell.decode("utf-8", "replace") if isinstance(cell, bytes) else str(cell)


def hparam_value(value: Any) -> Any:
    """One ``google.protobuf.Value`` of an hparams ``session_start_info``."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return int(number) if number.is_integer() and abs(number) < 2 ** 53 else number
    if kind == "bool_value":
        return value.bool_value
    if kind == "string_value":
        return value.string_value
    if kind == "null_value" or kind is None:
        return None
    from google.protobuf import json_format  # lists and structs: as JSON reads them

    return json_format.MessageToDict(value)
