"""``run[path]``: :class:`Handler`, one field (or namespace) of a Neptune run."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from unilog.compat.neptune._errors import NotSupported
from unilog.compat.neptune._values import _check_path

if TYPE_CHECKING:
    from unilog.compat.neptune._run import Run

_UNSUPPORTED_FIELD = frozenset({"clear", "delete_files", "download", "download_last",
                                "fetch_extension", "fetch_files_list", "fetch_hash",
                                "fetch_last", "fetch_values", "list_fileset_files", "pop",
                                "remove", "track_files"})


class Handler:
    """``run[path]``: one field (or namespace) of a :class:`Run`.

    ``run["a"]["b"]`` is ``run["a/b"]``. Every method takes Neptune's ``wait``:
    True waits until every backend has stored what was logged (:meth:`Run.wait`).
    """

    __slots__ = ("_owner", "_path")

    def __init__(self, owner: Run, path: str):
        self._owner = owner
        self._path = path

    def __getitem__(self, path: str) -> Handler:
        return Handler(self._owner, f"{self._path}/{_check_path(path)}")

    def __setitem__(self, path: str, value: Any) -> None:
        self[path].assign(value)

    def assign(self, value: Any, *, wait: bool = False) -> None:
        """``run[path] = value``: config, summary, an artifact or an image (the
        package docstring)."""
        self._owner._assign(self._path, value)
        self._owner._waited(wait)

    def append(self, value: Any, *, step: float | None = None, timestamp: Any = None,
               wait: bool = False, name: str | None = None,
               description: str | None = None) -> None:
        """Add ``value`` to the series at this path: a number, a str, an image
        (``File.as_image(x)``, a figure, a PIL image, ``File("x.png")``), or a
        mapping of those (``run["train"].append({"loss": l, "acc": a})``: one row).

        ``step``: the row (a whole number; Neptune's float steps must be integral);
        without it, the row being filled, or the next one if this key is in it
        already. ``timestamp`` is accepted and not stored: rows carry the time
        they are sent. ``description`` is an image's caption; ``name`` is ignored.
        """
        self._owner._append(self._path, value, step, description)
        self._owner._waited(wait)

    def log(self, value: Any, *, step: float | None = None, timestamp: Any = None,
            wait: bool = False, name: str | None = None,
            description: str | None = None) -> None:
        """Neptune's older name of :meth:`append`; a list or tuple is :meth:`extend`."""
        if isinstance(value, (list, tuple)):
            steps = None if step is None else [step]
            self._owner._extend(self._path, value, steps, description)
            self._owner._waited(wait)
        else:
            self.append(value, step=step, timestamp=timestamp, wait=wait, name=name,
                        description=description)

    def extend(self, values: Any, *, steps: Any = None, timestamps: Any = None,
               wait: bool = False, name: str | None = None,
               description: str | None = None) -> None:
        """Append each of ``values`` in turn (each in a row of its own, as appending
        them one by one does), at ``steps`` if given (one per value). A mapping of
        lists (``{"loss": [...], "acc": [...]}``, equal lengths) appends row by row.
        Every value is checked before any is logged."""
        self._owner._extend(self._path, values, steps, description)
        self._owner._waited(wait)

    def upload(self, value: Any, *, wait: bool = False) -> None:
        """Store a file (a path, a ``File``) as an artifact named after this path
        (``model`` -> ``model``, ``checkpoints/best`` -> ``checkpoints-best``), of type
        "model" when a segment of the path starts with model, checkpoint or ckpt,
        else "file". An image (``File.as_image``, a figure) goes to the image series
        at this path instead. Uploading again makes a new version of the artifact."""
        self._owner._upload(self._path, value)
        self._owner._waited(wait)

    def upload_files(self, value: str | os.PathLike | Any, *, wait: bool = False) -> None:
        """Store the files matching a glob pattern, or a list of paths and patterns,
        as one artifact named after this path (``**`` matches folders too). Names in
        the artifact are relative to the folder holding them all."""
        self._owner._upload_files(self._path, value)
        self._owner._waited(wait)

    def add(self, values: str | Any, *, wait: bool = False) -> None:
        """Add strings to a set: ``run["sys/tags"].add(["best"])`` adds run tags;
        elsewhere the set is a list in the config at this path.

        Tags added here go to the run (``unilog.Run.add_tags``): its local record
        and every backend that can change a run's tags (not SwanLab: see
        docs/backends.md)."""
        self._owner._add(self._path, values)
        self._owner._waited(wait)

    def fetch(self) -> Any:
        """The value at this path, from the unilog run: ``sys/id``, ``sys/name``,
        ``sys/tags``, ``sys/description``, a config value or namespace (a dict), a
        summary value. A series is not fetched (read the run with
        ``unilog.read_run``). A path holding nothing is a KeyError."""
        return self._owner._fetch(self._path)

    def __getattr__(self, name: str) -> Any:
        if name in _UNSUPPORTED_FIELD:
            raise NotSupported(
                f"run[{self._path!r}].{name}: not provided by unilog.compat.neptune; read a "
                "run with unilog.read_run(run.unilog_run.dir) (series, config, summary, "
                "artifacts) and see docs/compat-neptune.md")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<unilog.compat.neptune.Handler {self._path!r}>"
