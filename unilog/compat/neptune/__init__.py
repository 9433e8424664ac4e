"""Neptune's run API (neptune-client 1.x) over a unilog run.

A script written for Neptune logs to every unilog backend with one line changed::

    import unilog.compat.neptune as neptune          # was: import neptune
    from unilog.compat.neptune.types import File     # was: from neptune.types import File

    run = neptune.init_run(project="ws/quickstarts", tags=["quickstart"])
    run["parameters"] = {"learning_rate": 0.001, "optimizer": "Adam"}
    for epoch in range(10):
        run["train/loss"].append(0.9 ** epoch)
    run["eval/f1_score"] = 0.66
    run["model"].upload("model.pt")
    run.stop()

Where each field goes (the full table, with the reasons, is docs/compat-neptune.md):

- ``run["parameters/..."] = x``: the run's config, ``parameters`` being its root
  (the Neptune backend writes config back under ``parameters/``);
- elsewhere, ``run[path] = x``: a number is a summary value at ``path``; a str,
  bool, None, list or other value is config at ``path`` (split on ``/``); a
  mapping is assigned leaf by leaf by the same rule; a ``File`` is an artifact,
  or an image for ``File.as_image``;
- ``.append`` / ``.log`` / ``.extend``: series, as rows of the unilog run. Without
  ``step=`` an appended value joins the row being filled, unless its key is in
  that row already: then the row is sent and a new one begins. With ``step=``
  the value goes to that row, by unilog's step rules (steps never go back);
- ``.upload(file)`` / ``.upload_files(globs)``: one artifact named after the path;
- ``run["sys/tags"].add(tags)``: the run's tags (see :meth:`Handler.add`).

Importing this module imports no tracker SDK, numpy, torch or matplotlib.
"""

from __future__ import annotations

import copy
import errno
import glob
import os
import re
import sys
import tempfile
import threading
import types as _pytypes
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import unilog
from unilog._normalize import normalize_value
from unilog.errors import ArtifactError, ConfigError, InvalidValue, StepError, UnilogError
from unilog.media import Image, Media
from unilog.tensors import PendingScalar

__all__ = [
    "ANONYMOUS_API_TOKEN",
    "File",
    "Handler",
    "NotSupported",
    "Run",
    "init_model",
    "init_model_version",
    "init_project",
    "init_run",
    "stringify_unsupported",
    "types",
    "utils",
]

#: Neptune's token for its public projects; given to ``init_run`` it sets nothing.
ANONYMOUS_API_TOKEN = "ANONYMOUS"
#: Neptune's modes -> unilog's (None: unilog's default, ``$UNILOG_MODE`` else "online").
MODES = {"async": None, "sync": None, "offline": "offline", "debug": "disabled"}
#: Keywords of Neptune's ``init_run`` that are accepted and ignored: each controls
#: something of Neptune's own client (capture, threads, network) that unilog does
#: not have or does by itself (a run that raises ends as failed).
IGNORED_KWARGS = frozenset({
    "capture_stdout", "capture_stderr", "capture_hardware_metrics", "capture_traceback",
    "fail_on_exception", "monitoring_namespace", "flush_period", "proxies", "git_ref",
    "dependencies", "async_lag_callback", "async_lag_threshold",
    "async_no_progress_callback", "async_no_progress_threshold",
})
_PARAMETERS = "parameters"  # Neptune's namespace of hyperparameters: the config's root
_SYSTEM = "sys"  # Neptune's system namespace: the run's id, name, tags...
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MODEL_WORDS = ("model", "checkpoint", "ckpt")
_IMAGE_SUFFIXES = ("png", "jpg", "jpeg")
_UNSUPPORTED_RUN = frozenset({"define", "fetch", "get_attribute", "get_root_object",
                              "get_structure", "lock", "ping", "pop", "print_structure",
                              "set_attribute"})
_UNSUPPORTED_FIELD = frozenset({"clear", "delete_files", "download", "download_last",
                                "fetch_extension", "fetch_files_list", "fetch_hash",
                                "fetch_last", "fetch_values", "list_fileset_files", "pop",
                                "remove", "track_files"})


class NotSupported(UnilogError, NotImplementedError):
    """A part of Neptune's API that unilog cannot provide; the message says what to do."""


# -- File ------------------------------------------------------------------------


class File:
    """Neptune's ``neptune.types.File``: a file to upload, or an image.

    ``File("model.pt")`` and ``File.from_path(...)`` name a file on disk;
    ``File.from_content(...)`` / ``File.from_stream(...)`` hold bytes;
    ``File.as_image(x)`` is an image (a :class:`unilog.Image`, made at once from a
    matplotlib figure, PIL image, numpy array or tensor, so the caller may change
    ``x`` afterwards). HTML and pickles have no unilog counterpart:
    ``as_html`` and ``as_pickle`` raise :class:`NotSupported`.
    """

    def __init__(self, path: str | os.PathLike):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"File(path) takes a file path, not {type(path).__name__}; "
                            "File.from_content takes bytes, File.as_image an image")
        self.path: str | None = os.fspath(path)
        self.content: bytes | None = None
        self.extension: str | None = Path(self.path).suffix.lstrip(".") or None
        self._image: Image | None = None

    @classmethod
    def _made(cls, *, content: bytes | None = None, extension: str | None = None,
              image: Image | None = None) -> File:
        file = cls.__new__(cls)
        file.path, file.content, file.extension, file._image = None, content, extension, image
        return file

    @classmethod
    def from_path(cls, path: str | os.PathLike, *, extension: str | None = None) -> File:
        """The file at ``path`` (``extension`` overrides its suffix)."""
        file = cls(path)
        if extension is not None:
            file.extension = extension
        return file

    @classmethod
    def from_content(cls, content: str | bytes, *, extension: str | None = None) -> File:
        """A file holding ``content`` (a str is stored as UTF-8, extension "txt";
        bytes get extension "bin" unless given)."""
        if isinstance(content, str):
            return cls._made(content=content.encode("utf-8"), extension=extension or "txt")
        if isinstance(content, (bytes, bytearray, memoryview)):
            return cls._made(content=bytes(content), extension=extension or "bin")
        raise TypeError(f"File.from_content takes str or bytes, not {type(content).__name__}")

    @classmethod
    def from_stream(cls, stream: Any, *, seek: int | None = 0,
                    extension: str | None = None) -> File:
        """A file holding what ``stream`` reads from position ``seek`` to its end."""
        if seek is not None and getattr(stream, "seekable", lambda: False)():
            stream.seek(seek)
        return cls.from_content(stream.read(), extension=extension)

    @staticmethod
    def as_image(image: Any) -> File:
        """An image: a matplotlib figure, PIL image, numpy array (HxW or HxWxC,
        floats in [0, 1]) or tensor, read as :class:`unilog.Image` reads it."""
        return File._made(image=Image(image), extension="png")

    @staticmethod
    def as_html(value: Any) -> File:
        """Not supported: unilog has no HTML media."""
        raise NotSupported("File.as_html: unilog has no HTML media; write the HTML to a "
                           "file and upload it (run['report'].upload('report.html')), or "
                           "log a table as unilog.Table")

    @staticmethod
    def as_pickle(value: Any) -> File:
        """Not supported: unilog stores no pickled objects."""
        raise NotSupported("File.as_pickle: unilog stores no pickled objects; pickle the "
                           "object to a file and upload it (run['obj'].upload('obj.pkl'))")

    @classmethod
    def create_from(cls, value: Any) -> File:
        """``value`` as a File: a File as is, an image (figure, PIL image) by ``as_image``."""
        if isinstance(value, File):
            return value
        if _is_image_source(value):
            return cls.as_image(value)
        raise NotSupported(f"File.create_from({type(value).__name__}): only images "
                           "(matplotlib figures, PIL images) are converted; save other "
                           "objects to a file and use File(path)")

    def _series_image(self, path: str) -> Image:
        """This file as one image of the series at ``path``."""
        if self._image is not None:
            return self._image
        if self.path is not None and (self.extension or "").lower() in _IMAGE_SUFFIXES:
            return Image(self.path)
        raise InvalidValue(path, "a series of files holds images: File.as_image(x) or "
                           "File('<a .png or .jpeg file>'); upload other files with "
                           "run[path].upload(file)")

    def __repr__(self) -> str:
        if self._image is not None:
            return f"File.as_image({self._image!r})"
        if self.path is not None:
            return f"File({self.path!r})"
        size = len(self.content or b"")
        return f"File.from_content(<{size} bytes>, extension={self.extension!r})"


def stringify_unsupported(value: Any, expand: bool = False) -> Any:
    """Neptune's ``neptune.utils.stringify_unsupported``: in a mapping (recursively),
    every value that is not a str, bool, int, float, datetime or None becomes its
    ``str``, lists and tuples too; with ``expand``, a list, tuple or set becomes a
    mapping ``{"0": first, "1": second, ...}`` instead. unilog's config would store
    unsupported values as their ``str`` anyway; this keeps scripts that call it working."""
    if isinstance(value, Mapping):
        return {str(key): stringify_unsupported(item, expand) for key, item in value.items()}
    if expand and isinstance(value, (list, tuple, set)):
        return {str(i): stringify_unsupported(item, True) for i, item in enumerate(value)}
    if value is None or isinstance(value, (str, bool, int, float, datetime)):
        return value
    return str(value)


# -- fields ------------------------------------------------------------------------


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
        """``run[path] = value``: config, summary, an artifact or an image (module docstring)."""
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


# -- the run -----------------------------------------------------------------------


class Run:
    """A Neptune run over a unilog run: ``Run(...)`` and :func:`init_run` take the
    same arguments as Neptune's ``init_run``, plus unilog's ``backends``, ``dir``
    and ``on_error``. ``run.unilog_run`` is the :class:`unilog.Run` underneath.

    :param with_id: continue the unilog run of that id (``resume="must"``).
    :param project: ``"workspace/name"``: the unilog project is ``name`` (a
        project with a workspace is also given to the Neptune backend, if any, as
        its ``project`` option). None: ``$UNILOG_PROJECT``, else the name in
        ``$NEPTUNE_PROJECT``, else unilog's default.
    :param api_token: set as ``$NEPTUNE_API_TOKEN`` for this process (the Neptune
        backend reads it), unless it is ``ANONYMOUS_API_TOKEN``; never stored.
    :param custom_run_id: the unilog run id, continued if it exists (``resume="allow"``).
    :param mode: "async"/"sync" (unilog's default mode), "offline", "debug" (a
        disabled run); None reads ``$UNILOG_MODE``, else ``$NEPTUNE_MODE``.
    :param name: the run's name. :param description: its notes.
    :param tags: its tags (a str or a list). :param source_files: glob patterns
        of files kept as the run's ``code`` artifact.
    :param backends: unilog's backends (None: ``$UNILOG_BACKENDS``, else csv).
    :param dir: unilog's root of local files. :param on_error: unilog's policy.
    :raises TypeError: for a keyword neither Neptune's nor unilog's (those in
        :data:`IGNORED_KWARGS` are accepted and ignored).
    """

    def __init__(self, with_id: str | None = None, *, project: str | None = None,
                 api_token: str | None = None, custom_run_id: str | None = None,
                 mode: str | None = None, name: str | None = None,
                 description: str | None = None, tags: str | list[str] | None = None,
                 source_files: str | list[str] | None = None, backends: Any = None,
                 dir: str | os.PathLike | None = None, on_error: str = "warn",
                 **neptune_kwargs: Any):
        unknown = sorted(set(neptune_kwargs) - IGNORED_KWARGS)
        if unknown:
            raise TypeError(f"init_run() got an unexpected keyword argument {unknown[0]!r}: "
                            "neither Neptune's nor unilog's (see docs/compat-neptune.md)")
        if with_id is not None and custom_run_id is not None:
            raise ConfigError("init_run: give with_id (continue that run) or custom_run_id "
                              "(that id, continued if it exists), not both")
        _set_api_token(api_token)
        qualified = _neptune_project(project)
        run_id, resume = ((with_id, "must") if with_id is not None
                          else (custom_run_id, "allow") if custom_run_id is not None
                          else (None, None))
        self._run = unilog.init(
            project=_unilog_project(qualified), name=name, notes=description, tags=tags,
            backends=_with_neptune_project(backends, qualified), dir=dir,
            mode=_unilog_mode(mode), id=run_id, resume=resume, on_error=on_error,
            source_files=source_files)
        self._lock = threading.RLock()
        self._row_step = self._run.step  # the row that self._row_keys describe
        self._row_keys: set[str] = set()  # keys this wrapper appended to that row
        self._series: set[str] = set()
        # Artifact name -> the field it stores (None: source_files' code artifact), so
        # that two fields never become versions of one artifact.
        self._artifacts: dict[str, str | None] = {"code": None} if source_files else {}

    @property
    def unilog_run(self) -> unilog.Run:
        """The :class:`unilog.Run` this run logs to."""
        return self._run

    def __getitem__(self, path: str) -> Handler:
        return Handler(self, _check_path(path))

    def __setitem__(self, path: str, value: Any) -> None:
        self[path].assign(value)

    def __delitem__(self, path: str) -> None:
        raise NotSupported(f"del run[{path!r}]: a unilog run keeps what was logged")

    def assign(self, value: Mapping[str, Any], *, wait: bool = False) -> None:
        """Assign each entry of a mapping: ``run.assign({"parameters": {...}, "x": 1})``."""
        if not isinstance(value, Mapping):
            raise TypeError(f"run.assign takes a mapping of field paths, not "
                            f"{type(value).__name__}")
        for key, item in value.items():
            self[key].assign(item)
        self._waited(wait)

    def exists(self, path: str) -> bool:
        """True when ``path`` holds a config or summary value, a series or an
        artifact of this session, or is one of the ``sys/`` fields read by ``fetch``."""
        path = _check_path(path)
        if path in self._series or path in self._artifacts.values():
            return True
        try:
            self._fetch(path)
        except (KeyError, NotSupported):
            return False
        return True

    def wait(self, disk_only: bool = False) -> None:
        """Wait until every backend has stored what was logged (unilog's ``flush``).
        The row being filled by ``append`` stays open (it is sent when the next row
        begins, or at ``stop``)."""
        self._run.flush()

    def sync(self, wait: bool = True) -> None:
        """The same as :meth:`wait`: unilog keeps no server-side structure to sync."""
        self._run.flush()

    def stop(self, seconds: float | None = None) -> None:
        """Finish the run everywhere (sends the open row); ``seconds`` bounds each
        backend's closing. Idempotent."""
        self._run.finish(timeout=seconds)

    def get_url(self) -> str | None:
        """The run directory as a ``file://`` URL (None for a disabled run)."""
        return None if self._run.dir is None else self._run.dir.absolute().as_uri()

    def get_state(self) -> str:
        """"started", or "stopped" once ``stop`` has begun."""
        return "stopped" if self._run.finished else "started"

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # unilog's: a clean exit finishes, an exception fails (Ctrl-C: killed).
        self._run.__exit__(exc_type, exc, tb)

    def __getattr__(self, name: str) -> Any:
        if name in _UNSUPPORTED_RUN:
            raise NotSupported(f"run.{name}: not provided by unilog.compat.neptune; "
                               "run[path].fetch() reads one field, unilog.read_run("
                               "run.unilog_run.dir) the whole run")
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<unilog.compat.neptune.Run over {self._run!r}>"

    # -- what the fields do --------------------------------------------------------

    def _waited(self, wait: bool) -> None:
        if wait:
            self.wait()

    def _assign(self, path: str, value: Any) -> None:
        _check_writable(path)
        if isinstance(value, File):
            self._store_file(path, value)
        elif isinstance(value, Media) or _is_image_source(value):
            self._append(path, value, None, None)  # one value of a media series
        elif _is_parameter(path):
            self._run.config.update(_nest(_config_keys(path), _config_tree(path, value)))
        else:
            config: dict[str, Any] = {}
            summary: dict[str, Any] = {}
            _sort_leaves(path, value, config, summary)
            if config:
                tree: dict[str, Any] = {}
                for key, leaf in config.items():
                    _merge_into(tree, _nest(_config_keys(key), leaf), key)
                self._run.config.update(tree)
            if summary:
                self._run.summary.update(summary)

    def _append(self, path: str, value: Any, step: Any, description: str | None) -> None:
        _check_writable(path)
        step = None if step is None else _check_step(path, step)
        self._log_row(_series_values(path, value, description), step)

    def _extend(self, path: str, values: Any, steps: Any, description: str | None) -> None:
        _check_writable(path)
        rows = _rows(path, values)
        if steps is not None:
            steps = [_check_step(path, s) for s in _sequence(path, steps, "steps")]
            if len(steps) != len(rows):
                raise ConfigError(f"run[{path!r}].extend: {len(rows)} values but "
                                  f"{len(steps)} steps")
        # Checked before any is logged: a bad value at the end leaves nothing half done.
        prepared = [_series_values(path, row, description) for row in rows]
        for i, values_ in enumerate(prepared):
            self._log_row(values_, None if steps is None else steps[i])

    def _log_row(self, values: dict[str, Any], step: int | None) -> None:
        """Log ``values`` by the row rule (module docstring)."""
        run = self._run
        with self._lock:
            if run.step != self._row_step:  # a row was sent since (by step=, or run.log)
                self._row_step, self._row_keys = run.step, set()
            if step is None:
                if not self._row_keys.isdisjoint(values):
                    run.log({}, commit=True)  # sends the row, advances the step
                    self._row_step, self._row_keys = run.step, set()
                run.log(values, commit=False)
            else:
                run.log(values, step=step)  # unilog's rules: the row at `step` stays open
                if run.step != self._row_step:
                    self._row_step, self._row_keys = run.step, set()
            self._series.update(values)
            if step is None or step == run.step:  # else it went back: not in the open row
                self._row_keys.update(values)

    def _upload(self, path: str, value: Any) -> None:
        if isinstance(value, (str, os.PathLike)):
            value = File(value)
        elif _is_image_source(value):
            value = File.as_image(value)
        elif not isinstance(value, File):
            raise TypeError(f"run[{path!r}].upload takes a file path, a File or an image "
                            f"(a matplotlib figure, a PIL image), not {type(value).__name__}")
        _check_writable(path)
        self._store_file(path, value)

    def _store_file(self, path: str, file: File) -> None:
        if file._image is not None:
            self._append(path, file, None, None)
        elif file.path is not None:
            self._log_artifact(path, Path(file.path))
        else:
            with tempfile.TemporaryDirectory(prefix="unilog-neptune-") as tmp:
                target = Path(tmp, _file_name(path, file.extension))
                target.write_bytes(file.content or b"")
                self._log_artifact(path, target)  # copied into the run before it returns

    def _log_artifact(self, path: str, source: Path) -> None:
        if not source.exists():
            raise FileNotFoundError(errno.ENOENT, f"run[{path!r}].upload: no such file",
                                    str(source))
        self._run.log_artifact(source, name=self._artifact_name(path),
                               type=_artifact_type(path))

    def _artifact_name(self, path: str) -> str:
        name = _artifact_name(path)
        owner = self._artifacts.setdefault(name, path)
        if owner != path:
            taken = "init_run(source_files=...)" if owner is None else f"run[{owner!r}]"
            raise ArtifactError(f"run[{path!r}]: its artifact name {name!r} is already "
                                f"taken by {taken}; upload to another path")
        return name

    def _upload_files(self, path: str, value: Any) -> None:
        _check_writable(path)
        files = _matching_files(path, value)
        name = self._artifact_name(path)
        artifact = unilog.Artifact(name, type=_artifact_type(path))
        root = Path(os.path.commonpath([str(f.parent) for f in files]))
        for file in files:
            relative = file.relative_to(root).as_posix()
            if file.is_dir():
                artifact.add_dir(file, name=relative)
            else:
                artifact.add_file(file, name=relative)
        self._run.log_artifact(artifact)

    def _add(self, path: str, values: Any) -> None:
        items = [values] if isinstance(values, str) else _sequence(path, values, "add")
        bad = [item for item in items if not isinstance(item, str)]
        if bad:
            raise TypeError(f"run[{path!r}].add takes strings, not {bad[0]!r}")
        if path == f"{_SYSTEM}/tags":
            self._add_tags(items)
            return
        _check_writable(path)
        found, current = _lookup(self._run.config.as_dict(), _config_keys(path))
        merged = list(dict.fromkeys([*(current if found and isinstance(current, list)
                                       else []), *items]))
        self._run.config.update(_nest(_config_keys(path), merged))

    def _add_tags(self, tags: list[str]) -> None:
        # The run dedupes, writes run.json and sends the tags to every backend.
        self._run.add_tags(tags)

    def _fetch(self, path: str) -> Any:
        run = self._run
        if path.split("/")[0] == _SYSTEM:
            return _system_field(run, path)
        if path in run.summary:
            return run.summary[path]
        found, value = _lookup(run.config.as_dict(), _config_keys(path))
        if found and not isinstance(value, dict):
            return value
        tree = value if found else {}
        prefix = path + "/"
        for key, item in run.summary.items():
            if key.startswith(prefix):
                _merge_into(tree, _nest(key[len(prefix):].split("/"), item), key)
        if found or tree:
            return tree
        if path in self._series:
            raise NotSupported(f"run[{path!r}] is a series: read it with unilog.read_run("
                               f"run.unilog_run.dir).series({path!r})")
        raise KeyError(f"run[{path!r}]: no such field in the run's config or summary")


def init_run(with_id: str | None = None, **kwargs: Any) -> Run:
    """Start (or, ``with_id``, continue) a run: Neptune's ``init_run`` over
    :func:`unilog.init`. Takes :class:`Run`'s arguments."""
    return Run(with_id, **kwargs)


def init_model(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_model")


def init_model_version(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_model_version")


def init_project(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_project")


def _no_container(name: str) -> NotSupported:
    return NotSupported(f"neptune.{name}: unilog.compat.neptune provides runs only; store a "
                        "model as an artifact of the run (run['model'].upload('model.pt'), "
                        "then unilog's run.use_artifact('model:latest'))")


# -- init_run's arguments ------------------------------------------------------------


def _set_api_token(api_token: str | None) -> None:
    if api_token is None or api_token == ANONYMOUS_API_TOKEN:
        return
    if not isinstance(api_token, str):
        raise TypeError(f"init_run: api_token must be a str, not {type(api_token).__name__}")
    # The Neptune backend (in this process or the logging process, which inherits the
    # environment) reads it there; it never reaches a file.
    os.environ["NEPTUNE_API_TOKEN"] = api_token


def _neptune_project(project: str | None) -> str | None:
    if project is not None or os.environ.get("UNILOG_PROJECT"):
        return project
    return os.environ.get("NEPTUNE_PROJECT") or None


def _unilog_project(project: str | None) -> str | None:
    if project is None:
        return None
    if not isinstance(project, str):
        raise ConfigError(f"init_run: project must be a str like 'workspace/name', not "
                          f"{project!r}")
    from unilog._settings import check_project

    name = project.rsplit("/", 1)[-1]
    try:
        return check_project(name)
    except ConfigError as exc:
        raise ConfigError(f"init_run: Neptune project {project!r} gives the unilog project "
                          f"{name!r} (the part after the last '/'), which breaks unilog's "
                          f"rule: {exc}") from None


def _with_neptune_project(backends: Any, project: str | None) -> Any:
    """``backends`` with ``project`` as the Neptune backend's option, when the project
    names a workspace and the option is not given already."""
    if project is None or "/" not in project:
        return backends
    from unilog._settings import parse_backends

    entries = parse_backends(backends)
    if "neptune" not in dict(entries):
        return backends
    return [{"name": name, **options, **({"project": project} if name == "neptune"
                                          and "project" not in options else {})}
            for name, options in entries]


def _unilog_mode(mode: str | None) -> str | None:
    if mode is None and not os.environ.get("UNILOG_MODE"):
        mode = os.environ.get("NEPTUNE_MODE") or None
    if mode is None:
        return None
    if mode == "read-only":
        raise NotSupported("init_run(mode='read-only'): read a unilog run with "
                           "unilog.read_run(path)")
    if mode not in MODES:
        raise ConfigError(f"init_run: mode must be one of Neptune's {', '.join(MODES)} "
                          f"(read-only is not supported), not {mode!r}")
    return MODES[mode]


# -- paths and values ------------------------------------------------------------------


def _check_path(path: Any) -> str:
    if not isinstance(path, str):
        raise TypeError(f"a field path is a str like 'train/loss', not {path!r}")
    if not path:
        raise ConfigError("a field path is a non-empty str like 'train/loss'")
    return path


def _check_writable(path: str) -> None:
    """``sys/`` holds what unilog sets; only ``sys/tags`` takes ``add``."""
    if path.split("/")[0] == _SYSTEM:
        raise NotSupported(
            f"run[{path!r}]: the sys/ fields are the unilog run's own (id, name, "
            "description, tags), set by init_run(name=, description=, tags=); "
            "a unilog run cannot be renamed once started. Tags can be added with "
            "run['sys/tags'].add(...)")


def _system_field(run: Any, path: str) -> Any:
    fields = {"sys/id": run.id, "sys/name": run.name, "sys/tags": set(run.tags),
              "sys/description": run.notes or ""}
    if path not in fields:
        raise NotSupported(f"run[{path!r}].fetch(): of sys/, unilog.compat.neptune reads "
                           f"{', '.join(fields)}")
    return fields[path]


def _check_step(path: str, step: Any) -> int:
    """A step as unilog's int; Neptune's float steps are taken when whole."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise StepError(f"run[{path!r}]: step must be a whole number >= 0 (unilog counts "
                        f"rows in integers), not {step!r}")
    step = step.__index__()
    if step < 0:
        raise StepError(f"run[{path!r}]: step must be a whole number >= 0, not {step}")
    return step


def _sequence(path: str, values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise TypeError(f"run[{path!r}].{what} takes a list, not {type(values).__name__}")
    return list(values)


def _rows(path: str, values: Any) -> list[Any]:
    """What ``extend`` appends, one entry a row; a mapping of lists is read row by row."""
    if not isinstance(values, Mapping):
        return _sequence(path, values, "extend")
    columns = {key: _sequence(f"{path}/{key}", column, "extend")
               for key, column in values.items()}
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise ConfigError(f"run[{path!r}].extend: the lists of a mapping must have one "
                          f"length, not {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    return [{key: column[i] for key, column in columns.items()} for i in range(count)]


def _series_values(path: str, value: Any, description: str | None) -> dict[str, Any]:
    """``{key: value}`` for one append: a mapping appends to each of its paths."""
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_series_values(f"{path}/{key}", item, description))
        return out
    return {path: _series_value(path, value, description)}


def _series_value(path: str, value: Any, description: str | None) -> Any:
    if isinstance(value, File):
        value = value._series_image(path)
    elif _is_image_source(value):
        value = Image(value)
    if value is None:
        raise InvalidValue(path, "None is not a value of a series")
    try:
        converted = normalize_value(value)
    except Exception as exc:  # whatever a value's own conversion raises
        raise InvalidValue(path, f"{exc}; a series takes numbers, strings and images "
                           "(File.as_image), one per append (extend takes a list)") from None
    if description is not None and isinstance(converted, Image):
        converted = copy.copy(converted)  # a File appended twice keeps each caption
        converted.caption = str(description)
    return converted


def _is_image_source(value: Any) -> bool:
    """A PIL image or a matplotlib figure, known by its module (neither is imported)."""
    module = type(value).__module__ or ""
    return ((module.startswith("PIL.") and hasattr(value, "convert"))
            or (module.startswith("matplotlib") and hasattr(value, "savefig")))


def _is_number(value: Any) -> bool:
    """A real number (numpy and one-element tensors too), and not a bool."""
    if isinstance(value, (bool, str, bytes)) or "bool" in str(getattr(value, "dtype", "")):
        return False
    if isinstance(value, (int, float)):
        return True
    if _elements(value) not in (None, 1):
        return False
    try:
        return isinstance(normalize_value(value), (int, float, PendingScalar))
    except Exception:  # not a number, whatever its conversion raised
        return False


def _elements(value: Any) -> int | None:
    """How many elements an array or tensor holds (None: not an array); metadata
    only, so a tensor on a device is not synced."""
    if not hasattr(value, "shape"):
        return None
    numel = getattr(value, "numel", None)  # torch: size is a method
    if callable(numel):
        return numel()
    size = getattr(value, "size", None)
    return size if isinstance(size, int) else None


def _config_value(path: str, value: Any) -> Any:
    """``value`` if the config can hold it (str, bool, numbers, None, lists, dates,
    other objects as their str), else a TypeError naming ``path``."""
    if isinstance(value, (File, Media, Handler, Run)) or _is_image_source(value):
        raise TypeError(f"run[{path!r}]: a {type(value).__name__} cannot be a config value "
                        "inside a mapping; assign it to its own path")
    if _elements(value) not in (None, 1):
        raise TypeError(f"run[{path!r}]: an array of shape {tuple(value.shape)} is not a "
                        "field value; log unilog.Histogram(array) as a series, or an image "
                        "with File.as_image")
    return value


def _config_tree(path: str, value: Any) -> Any:
    """``value`` checked leaf by leaf for the config; the config's root takes a mapping."""
    if isinstance(value, Mapping):
        return {str(key): _config_tree(f"{path}/{key}", item) for key, item in value.items()}
    if path == _PARAMETERS:
        raise TypeError(f"run[{_PARAMETERS!r}] is the whole config: assign it a mapping, "
                        f"not {type(value).__name__}")
    return _config_value(path, value)


def _sort_leaves(path: str, value: Any, config: dict[str, Any],
                 summary: dict[str, Any]) -> None:
    """Each leaf of ``value`` by its kind: numbers to ``summary``, the rest to ``config``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _sort_leaves(f"{path}/{key}", item, config, summary)
    elif _is_number(value):
        summary[path] = value
    else:
        config[path] = _config_value(path, value)


def _is_parameter(path: str) -> bool:
    return path == _PARAMETERS or path.startswith(_PARAMETERS + "/")


def _config_keys(path: str) -> list[str]:
    """The config keys of ``path``: ``parameters`` is the config's root."""
    keys = path.split("/")
    return keys[1:] if keys[0] == _PARAMETERS else keys


def _nest(keys: list[str], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _merge_into(tree: dict[str, Any], nested: Any, path: str) -> None:
    for key, item in nested.items():
        if isinstance(item, dict) and key in tree:
            if not isinstance(tree[key], dict):
                raise ConfigError(f"run[{path!r}]: {key!r} holds a value, so it cannot "
                                  "hold fields too")
            _merge_into(tree[key], item, path)
        else:
            tree[key] = item


def _lookup(tree: Any, keys: list[str]) -> tuple[bool, Any]:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return False, None
        tree = tree[key]
    return True, tree


# -- files ------------------------------------------------------------------------------


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


# -- neptune.types and neptune.utils ---------------------------------------------------------


def _submodule(name: str, doc: str, **members: Any) -> _pytypes.ModuleType:
    """A module ``unilog.compat.neptune.<name>`` that ``from ... import`` finds, as
    ``neptune.types`` and ``neptune.utils`` are found."""
    module = _pytypes.ModuleType(f"{__name__}.{name}", doc)
    module.__dict__.update(members, __all__=sorted(members))
    sys.modules[module.__name__] = module
    return module


#: ``neptune.types``: ``File`` (``from unilog.compat.neptune.types import File``).
types = _submodule("types", "Neptune's ``neptune.types``: ``File``.", File=File)
#: ``neptune.utils``: ``stringify_unsupported``.
utils = _submodule("utils", "Neptune's ``neptune.utils``: ``stringify_unsupported``.",
                   stringify_unsupported=stringify_unsupported)


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}: it provides "
                         f"Neptune's run API only ({', '.join(__all__)}); see "
                         "docs/compat-neptune.md")
