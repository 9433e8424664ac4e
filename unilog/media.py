"""Rich values for ``run.log``: :class:`Image`, :class:`Histogram`, :class:`Text`, :class:`Table`.

A media object is built on the user's training thread and consumed later by
backend worker threads, so the work is split in two:

- the constructor only takes a snapshot of its input (arrays are copied, a
  torch tensor becomes a :class:`~unilog.tensors.HostCopy` that does not sync
  the device, a matplotlib figure is rendered at once because matplotlib is not
  thread safe), so the caller may reuse or mutate its objects right away;
- the heavy work (pixel conversion, PNG encoding, binning) happens on first
  use, once, under a per-object lock, and the result is shared by every backend.

numpy, torch, Pillow, matplotlib and pandas are never imported here at module
level: ``import unilog`` must stay cheap, and each of them is optional.
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
import struct
import threading
import zlib
from typing import TYPE_CHECKING, Any, ClassVar

from unilog.tensors import HostCopy, is_tensor

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Histogram", "Image", "Media", "Table", "Text"]

_CHANNELS = (1, 3, 4)
_SHAPES = "HxW, HxWxC or CxHxW with C in 1, 3 or 4"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SIGNATURE = b"\xff\xd8\xff"
_PNG_COLOR_TYPES = {1: 0, 3: 2, 4: 6}  # channels -> gray, RGB, RGBA
_MAX_BINS = 512  # wandb's limit; keeping it everywhere makes runs portable


class Media:
    """Base class of every loggable media value.

    Subclasses set ``kind`` (one of :data:`unilog.backend.MEDIA_KINDS`) and the
    ``suffix`` of the file that :meth:`save` writes.
    """

    kind: ClassVar[str]
    suffix: ClassVar[str]

    def save(self, path_without_suffix: str | os.PathLike) -> pathlib.Path:
        """Write this value to ``path_without_suffix + suffix`` and return that path.

        Parent directories are created. The suffix is appended, never
        substituted, so names containing dots (``"epoch.3"``) survive intact.
        """
        path = pathlib.Path(path_without_suffix)
        path = path.with_name(path.name + self.suffix)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(self._file_bytes())
        return path

    def to_json(self) -> dict[str, Any]:
        """A small JSON-able description of this value, for manifests."""
        raise NotImplementedError

    def _file_bytes(self) -> bytes:
        raise NotImplementedError

    #: The kind of ``_lock`` a subclass keeps (None: it keeps none).
    _lock_type: ClassVar[Any] = None

    def _settle(self) -> None:
        """Before pickling: finish any lazy work that depends on what cannot travel."""

    def __getstate__(self) -> dict[str, Any]:
        # Pickled for a backend in another process (unilog._process_backend): lazy
        # work (a device copy, binning) is done first, on the sending worker, never
        # on the caller's thread; locks do not travel.
        self._settle()
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self._lock_type is not None:
            self._lock = self._lock_type()


class Image(Media):
    """An image from a numpy array, torch tensor, PIL image, matplotlib figure or file.

    Arrays and tensors may be ``HxW``, ``HxWxC`` or ``CxHxW`` with ``C`` in 1, 3
    or 4. When both readings fit, numpy arrays are read as ``HxWxC`` and torch
    tensors as ``CxHxW`` (each library's own convention). Floats are taken to be
    in ``[0, 1]``, integers in ``[0, 255]``; both are clipped. A path must name
    an existing PNG or JPEG file.

    W&B's and SwanLab's other keywords are taken, so their calls run unchanged:
    ``mode``, ``file_type``, ``size`` and ``grouping`` (presentation: the image
    is stored as given, PNG), and ``masks``, ``boxes`` and ``classes``
    (overlays, which no unilog backend stores: one warning per process says
    they were left out).
    """

    kind = "image"
    suffix = ".png"

    def __init__(self, data: Any, caption: str | None = None, *, mode: Any = None,
                 file_type: Any = None, size: Any = None, grouping: Any = None,
                 masks: Any = None, boxes: Any = None, classes: Any = None):
        if masks is not None or boxes is not None or classes is not None:
            _warn_once("overlays", "Image(masks=, boxes=, classes=): overlays are not kept by "
                       "unilog; the image is logged without them (log a mask as an Image of "
                       "its own)")
        if caption is not None and not isinstance(caption, str):
            raise TypeError(f"an image caption must be a str or None, not {type(caption).__name__}")
        self.caption = caption
        self._lock = threading.RLock()  # reentrant: png_bytes() calls to_uint8()
        self._array: np.ndarray | None = None
        self._copy: HostCopy | None = None
        self._encoded: bytes | None = None  # PNG or JPEG file contents
        self._chw = False
        self._pixels: np.ndarray | None = None
        self._png: bytes | None = None
        if is_tensor(data):
            self._from_tensor(data)
        elif _is_from(data, "PIL.") and hasattr(data, "convert"):
            self._from_pil(data)
        elif _is_from(data, "matplotlib") and hasattr(data, "savefig"):
            buffer = io.BytesIO()
            data.savefig(buffer, format="png")
            self._from_encoded(buffer.getvalue(), "matplotlib figure")
        elif isinstance(data, (str, os.PathLike)):
            self._from_encoded(pathlib.Path(data).read_bytes(), f"file {os.fspath(data)!r}")
        elif isinstance(data, (list, tuple)) or hasattr(data, "__array__"):
            self._from_array(data)
        else:
            raise TypeError(
                f"cannot make an image from {type(data).__module__}.{type(data).__qualname__}; "
                "accepted: a numpy array or torch tensor shaped "
                f"{_SHAPES}, a PIL image, a matplotlib figure, or the path of a PNG/JPEG file"
            )

    def _from_tensor(self, tensor: Any) -> None:
        # Only metadata is read here: touching the values would sync the device.
        if tensor.dtype.is_complex:
            raise TypeError(f"cannot make an image from a tensor of dtype {tensor.dtype}")
        self._chw = _is_chw(tuple(tensor.shape), prefer_chw=True)
        self._size = _image_size(tuple(tensor.shape), self._chw)
        self._copy = HostCopy(tensor)

    def _from_pil(self, img: Any) -> None:
        import numpy as np

        self._array = np.asarray(img.convert(_pil_mode(img)))  # convert() returns a new image
        self._size = (img.width, img.height)

    def _from_array(self, data: Any) -> None:
        import numpy as np

        array = np.array(data, copy=True)  # the caller may mutate its array after log()
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"cannot make an image from an array of dtype {array.dtype}; "
                "accepted dtypes: bool, integers, floats"
            )
        self._chw = _is_chw(array.shape, prefer_chw=False)
        self._size = _image_size(array.shape, self._chw)
        self._array = array

    def _from_encoded(self, data: bytes, what: str) -> None:
        if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
            self._size = struct.unpack(">II", data[16:24])
            self._png = data
        elif data.startswith(_JPEG_SIGNATURE):
            self._size = _jpeg_size(data, what)
        else:
            raise ValueError(f"{what} is not a PNG or JPEG image")
        self._encoded = data

    @property
    def width(self) -> int:
        """Width in pixels (known at construction, without touching the pixels)."""
        return self._size[0]

    @property
    def height(self) -> int:
        """Height in pixels (known at construction, without touching the pixels)."""
        return self._size[1]

    def to_uint8(self) -> np.ndarray:
        """The pixels as a read-only ``HxWxC`` uint8 array, ``C`` in 1, 3 or 4.

        Read-only because the one array is shared by every backend. Decoding a
        figure or file needs Pillow.
        """
        with self._lock:
            if self._pixels is None:
                self._pixels = self._compute_pixels()
                self._pixels.flags.writeable = False
                self._array = self._copy = None  # the source is no longer needed
            return self._pixels

    def _compute_pixels(self) -> np.ndarray:
        if self._encoded is not None:
            return _decode(self._encoded)
        array = self._copy.numpy() if self._copy is not None else self._array
        if array.ndim == 2:
            array = array[:, :, None]
        elif self._chw:
            array = array.transpose(1, 2, 0)
        import numpy as np

        return np.ascontiguousarray(_to_uint8(array))  # astype keeps a transpose's strides

    def png_bytes(self) -> bytes:
        """The image encoded as PNG (Pillow is not needed for arrays and tensors)."""
        with self._lock:
            if self._png is None:
                self._png = _encode_png(self.to_uint8())
            return self._png

    def _file_bytes(self) -> bytes:
        return self.png_bytes()

    _lock_type = staticmethod(threading.RLock)

    def _settle(self) -> None:
        """The device copy lands in pixels."""
        if self._copy is not None:
            self.to_uint8()

    def to_json(self) -> dict[str, Any]:
        """``kind``, ``caption``, ``width`` and ``height``."""
        return {
            "kind": self.kind,
            "caption": self.caption,
            "width": self.width,
            "height": self.height,
        }

    def __repr__(self) -> str:
        return f"Image({self.width}x{self.height}, caption={self.caption!r})"


class Histogram(Media):
    """A distribution of values, binned lazily, or a ready ``numpy.histogram`` result.

    Give either ``values`` (any shape; flattened; NaN and infinities are left
    out of the bins and counted as ``nonfinite``) or ``np_histogram=(counts,
    edges)``; with the latter, ``num_bins`` is ``len(counts)``.
    """

    kind = "histogram"
    suffix = ".json"

    def __init__(
        self, values: Any = None, *, num_bins: int = 64, np_histogram: tuple | None = None,
        sequence: Any = None
    ):
        if sequence is not None:  # W&B's name for the values
            if values is not None:
                raise ValueError("give a Histogram values or sequence (W&B's name), not both")
            values = sequence
        if (values is None) == (np_histogram is None):
            raise ValueError("Histogram needs exactly one of values or np_histogram")
        if not (isinstance(num_bins, int) and not isinstance(num_bins, bool)) or not (
            1 <= num_bins <= _MAX_BINS
        ):
            raise ValueError(f"num_bins must be an int from 1 to {_MAX_BINS}, got {num_bins!r}")
        self._lock = threading.Lock()
        self._raw: np.ndarray | None = None
        self._copy: HostCopy | None = None
        self._values: np.ndarray | None = None
        self._counts: np.ndarray | None = None
        self._edges: np.ndarray | None = None
        self._nonfinite = 0
        if np_histogram is not None:
            self._counts, self._edges = _check_np_histogram(np_histogram)
            num_bins = len(self._counts)
        elif is_tensor(values):
            if values.dtype.is_complex:
                raise TypeError(f"cannot make a histogram of a tensor of dtype {values.dtype}")
            self._copy = HostCopy(values)
        else:
            self._raw = _numeric_snapshot(values)
        self.num_bins = num_bins

    def _resolve(self) -> None:
        if self._counts is not None:  # done; _counts is assigned last, so the rest is ready
            return
        with self._lock:
            if self._counts is not None:
                return
            import numpy as np

            flat = (self._copy.numpy() if self._copy is not None else self._raw).ravel()
            flat = flat.astype(np.float64)
            finite = np.isfinite(flat)
            values = flat[finite]
            counts, edges = _bin(values, self.num_bins)
            for array in (values, counts, edges):
                array.flags.writeable = False  # shared by every backend
            self._nonfinite = int(flat.size - values.size)
            self._values, self._edges = values, edges
            self._counts = counts  # last: it is what marks the work as done
            self._raw = self._copy = None

    @property
    def counts(self) -> np.ndarray:
        """Read-only counts, one per bin (computed on first access)."""
        self._resolve()
        return self._counts

    @property
    def edges(self) -> np.ndarray:
        """Read-only bin edges, ``num_bins + 1`` of them (computed on first access)."""
        self._resolve()
        return self._edges

    @property
    def values(self) -> np.ndarray | None:
        """The finite values, flattened, as float64; None when built from ``np_histogram``."""
        self._resolve()
        return self._values

    def _file_bytes(self) -> bytes:
        data = {"kind": self.kind, "counts": self.counts.tolist(), "edges": self.edges.tolist()}
        return json.dumps(data).encode()

    _lock_type = staticmethod(threading.Lock)

    def _settle(self) -> None:
        """Binned now."""
        self._resolve()

    def to_json(self) -> dict[str, Any]:
        """``kind``, ``num_bins``, ``min``/``max`` edges, total ``count`` and ``nonfinite``."""
        counts, edges = self.counts, self.edges
        return {
            "kind": self.kind,
            "num_bins": self.num_bins,
            "min": float(edges[0]),
            "max": float(edges[-1]),
            "count": counts.sum().item(),
            "nonfinite": self._nonfinite,
        }

    def __repr__(self) -> str:
        return f"Histogram(num_bins={self.num_bins})"


class Text(Media):
    """A piece of text (written as UTF-8)."""

    kind = "text"
    suffix = ".txt"

    def __init__(self, text: str):
        if not isinstance(text, str):
            raise TypeError(f"Text needs a str, not {type(text).__name__}")
        self.text = text

    def _file_bytes(self) -> bytes:
        return self.text.encode("utf-8")  # bytes, so no newline translation on Windows

    def to_json(self) -> dict[str, Any]:
        """``kind`` and ``length`` (in characters)."""
        return {"kind": self.kind, "length": len(self.text)}

    def __repr__(self) -> str:
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"Text({shown!r})"


class Table(Media):
    """A table of plain cells, from ``columns`` + ``data`` rows or from a pandas DataFrame.

    Cells are kept as str, int, float, bool or None: numpy scalars become their
    Python value, a DataFrame's missing values (NaN, NA, NaT) become None,
    anything else becomes ``str(cell)`` (an Image in a cell, as W&B's prediction
    tables hold, too: with one warning per process saying so). Without ``columns``, columns are named
    ``c0``, ``c1``...
    A DataFrame's index is not kept (``reset_index()`` first to keep it).
    """

    kind = "table"
    suffix = ".csv"

    def __init__(
        self,
        columns: list[str] | None = None,
        data: list[list] | None = None,
        dataframe: Any = None,
        *,
        rows: list[list] | None = None,
        allow_mixed_types: bool | None = None,
        log_mode: str | None = None,
    ):
        # W&B's spellings: rows= is data=; allow_mixed_types and log_mode are taken
        # and ignored (cells are always mixed; every log of a table is whole).
        if rows is not None:
            if data is not None:
                raise ValueError("give a Table data or rows (W&B's name), not both")
            data = rows
        if dataframe is not None:
            if columns is not None or data is not None:
                raise ValueError("give a Table either columns and data, or a dataframe, not both")
            columns, data = _dataframe_parts(dataframe)
        elif columns is None and data is None:
            raise ValueError("a Table needs columns, data rows, or a dataframe")
        if isinstance(columns, (str, bytes)):
            raise TypeError("Table columns must be a list of names, not a single string")
        rows = [] if data is None else [_row(row, i) for i, row in enumerate(data)]
        if columns is None:
            columns = [f"c{i}" for i in range(len(rows[0]) if rows else 0)]
        self.columns: list[str] = [str(c) for c in columns]
        for i, row in enumerate(rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"row {i} has {len(row)} cells but the table has {len(self.columns)} "
                    f"columns {self.columns}"
                )
        self.rows: list[list] = rows

    def add_data(self, *cells: Any) -> None:
        """Add one row (W&B's ``table.add_data(a, b, c)``); one cell per column.

        A table is read when it is logged: rows added later reach the next
        ``log`` of it, not the earlier one."""
        if len(cells) != len(self.columns):
            raise ValueError(f"add_data got {len(cells)} cells but the table has "
                             f"{len(self.columns)} columns {self.columns}")
        self.rows.append(_row(cells, len(self.rows)))

    def _logged_copy(self) -> Table:
        """A copy with its own list of rows, for a ``log``: ``add_data`` after the
        log must not change what the backends are still to write."""
        copy = Table.__new__(Table)
        copy.__dict__.update(self.__dict__)
        copy.rows = list(self.rows)
        return copy

    def to_csv_text(self) -> str:
        """The table as CSV, header first (None cells are empty)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()

    def to_markdown(self) -> str:
        """The table as a GitHub pipe table; ``|`` is escaped, newlines become ``<br>``."""
        if not self.columns:
            return ""
        lines = [_md_line(self.columns), "| " + " | ".join("---" for _ in self.columns) + " |"]
        lines += [_md_line(row) for row in self.rows]
        return "\n".join(lines) + "\n"

    def _file_bytes(self) -> bytes:
        return self.to_csv_text().encode("utf-8")

    def to_json(self) -> dict[str, Any]:
        """``kind``, ``columns`` and ``num_rows``."""
        return {"kind": self.kind, "columns": list(self.columns), "num_rows": len(self.rows)}

    def __repr__(self) -> str:
        return f"Table(columns={self.columns}, rows={len(self.rows)})"


# -- helpers: images ---------------------------------------------------------


def _is_from(value: Any, module_prefix: str) -> bool:
    return type(value).__module__.startswith(module_prefix)


def _is_chw(shape: tuple, prefer_chw: bool) -> bool:
    """Whether a 2-D or 3-D shape is channels-first; ValueError for other shapes."""
    if len(shape) == 2:
        return False
    if len(shape) == 3:
        chw, hwc = shape[0] in _CHANNELS, shape[-1] in _CHANNELS
        if chw and (prefer_chw or not hwc):
            return True
        if hwc:
            return False
    raise ValueError(f"cannot read an image of shape {tuple(shape)}; accepted shapes: {_SHAPES}")


def _image_size(shape: tuple, chw: bool) -> tuple[int, int]:
    height, width = shape[1:3] if chw else shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"cannot make an image of shape {tuple(shape)}: it has no pixels")
    return int(width), int(height)


def _pil_mode(img: Any) -> str:
    """The one of L, RGB, RGBA that keeps what the image has (gray, alpha)."""
    if "A" in img.mode or "transparency" in img.info:
        return "RGBA"
    if img.mode in ("1", "L", "I", "I;16", "F"):
        return "L"
    return "RGB"


def _to_uint8(array: np.ndarray) -> np.ndarray:
    import numpy as np

    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind == "f":
        # NaN would make the cast to uint8 undefined (and warn): show it as black.
        array = np.nan_to_num(array.astype(np.float32, copy=False), nan=0.0)
        return np.rint(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    if array.dtype.itemsize == 1:  # int8/uint8: 255 may not fit the dtype, and needs no upper clip
        return np.maximum(array, 0).astype(np.uint8)
    return np.clip(array, 0, 255).astype(np.uint8)


def _encode_png(pixels: np.ndarray) -> bytes:
    """8-bit PNG of an HxWxC uint8 array, C in 1/3/4 (gray, RGB, RGBA)."""
    import numpy as np

    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    # Every row uses the "Up" filter (byte minus the byte above, modulo 256):
    # plots and photos change little from row to row, so zlib packs it far better.
    scanlines = np.empty((height, 1 + width * channels), np.uint8)
    scanlines[:, 0] = 2
    scanlines[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=scanlines[1:, 1:])
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        [
            _PNG_SIGNATURE,
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _jpeg_size(data: bytes, what: str) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker, without Pillow."""
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte before a marker
            i += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
    raise ValueError(f"{what} looks like a JPEG but its size cannot be read")


def _decode(data: bytes) -> np.ndarray:
    try:
        from PIL import Image as PILImage
    except ImportError:
        raise ImportError(
            "reading the pixels of a figure or image file needs Pillow; "
            "install it with: pip install pillow"
        ) from None
    import numpy as np

    with PILImage.open(io.BytesIO(data)) as img:
        array = np.asarray(img.convert(_pil_mode(img)))
    return array[:, :, None] if array.ndim == 2 else array


# -- helpers: histograms and tables -----------------------------------------


def _numeric_snapshot(values: Any) -> np.ndarray:
    import numpy as np

    try:
        array = np.array(values, copy=True)  # a snapshot: the caller may mutate values
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"histogram values must be numbers, got {type(values).__name__}: {exc}"
        ) from None
    if array.dtype.kind not in "biuf":
        raise TypeError(
            f"histogram values must be numbers (bool, int or float), got "
            f"{type(values).__name__} of dtype {array.dtype}"
        )
    return array


def _bin(values: np.ndarray, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.histogram``, also for a range wider than the largest float64."""
    import numpy as np

    with np.errstate(over="ignore"):
        span = values.max() - values.min() if values.size else 0.0
    if np.isfinite(span):
        return np.histogram(values, bins=num_bins)
    # numpy gives up on such a range (a diverging run); edges built at half
    # scale stay finite, and doubling them back is exact.
    edges = np.linspace(values.min() / 2, values.max() / 2, num_bins + 1) * 2
    return np.histogram(values, bins=edges)[0], edges


def _check_np_histogram(pair: Any) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError("np_histogram must be a (counts, edges) pair, as numpy.histogram returns")
    counts, edges = (_numeric_snapshot(part) for part in pair)
    if counts.ndim != 1 or edges.ndim != 1 or len(edges) != len(counts) + 1:
        raise ValueError(
            f"np_histogram needs 1-D counts and one more edge than counts, got counts of shape "
            f"{counts.shape} and edges of shape {edges.shape}"
        )
    import numpy as np

    if not (np.isfinite(counts).all() and np.isfinite(edges).all()) or (np.diff(edges) < 0).any():
        raise ValueError("np_histogram needs finite counts and finite, increasing edges")
    if not 1 <= len(counts) <= _MAX_BINS:
        raise ValueError(f"np_histogram has {len(counts)} bins; a histogram has 1 to {_MAX_BINS}")
    for array in (counts, edges):
        array.flags.writeable = False
    return counts, edges


def _dataframe_parts(df: Any) -> tuple[list[str], list[list]]:
    if not (_is_from(df, "pandas") and hasattr(df, "columns") and hasattr(df, "itertuples")):
        raise TypeError(
            f"dataframe must be a pandas DataFrame, not {type(df).__module__}.{type(df).__name__}"
        )
    import pandas as pd

    def plain(cell: Any) -> Any:
        # pandas spells "missing" as NaN, NA or NaT depending on the dtype: all become None.
        return None if pd.api.types.is_scalar(cell) and pd.isna(cell) else cell

    rows = [[plain(cell) for cell in row] for row in df.itertuples(index=False, name=None)]
    return list(df.columns), rows


def _row(row: Any, index: int) -> list:
    try:
        cells = list(row)
    except TypeError:
        cells = None
    if cells is None or isinstance(row, (str, bytes, dict)):
        raise TypeError(f"row {index} must be a sequence of cells, not {type(row).__name__}")
    return [_cell(cell) for cell in cells]


def _cell(cell: Any) -> Any:
    if _is_from(cell, "numpy") and getattr(cell, "ndim", None) == 0:
        cell = cell.item()  # numpy scalar -> its Python value (datetime64 -> datetime)
    if cell is None or isinstance(cell, (str, bool, int, float)):
        return cell
    if isinstance(cell, Media):  # W&B's prediction tables hold images: not kept, said once
        _warn_media_cell(cell)
    return str(cell)


#: What :func:`_warn_once` has said in this process.
_WARNED: set[str] = set()


def _warn_once(topic: str, message: str) -> None:
    """A UnilogWarning about ``topic``, once per process (media are made in loops)."""
    if topic in _WARNED:
        return
    _WARNED.add(topic)
    import warnings

    from unilog.errors import UnilogWarning

    warnings.warn(message, UnilogWarning, stacklevel=4)


def _warn_media_cell(cell: Media) -> None:
    _warn_once(f"cell-{cell.kind}", f"{type(cell).__name__} in a Table cell: tables keep "
               f"plain cells, so it is stored as its description ({cell!r}); log the "
               f"{type(cell).__name__.lower()}s under keys of their own (a list of them is "
               "logged as key/0, key/1...)")


def _md_line(cells: list) -> str:
    return "| " + " | ".join(_md_cell(cell) for cell in cells) + " |"


def _md_cell(cell: Any) -> str:
    # A pipe table cell cannot hold a newline or an unescaped pipe.
    text = "" if cell is None else str(cell)
    return text.replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")
