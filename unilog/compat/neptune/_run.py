"""The run: :class:`Run`, a Neptune run over a unilog run, and how an assigned value
is sorted into the run's config and summary."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import unilog
from unilog.compat.neptune._errors import NotSupported
from unilog.compat.neptune._files import (
    _artifact_name,
    _artifact_type,
    _file_name,
    _matching_files,
)
from unilog.compat.neptune._handler import Handler
from unilog.compat.neptune._options import (
    IGNORED_KWARGS,
    _neptune_project,
    _set_api_token,
    _unilog_mode,
    _unilog_project,
    _with_neptune_project,
)
from unilog.compat.neptune._values import (
    _PARAMETERS,
    _DESCRIBED,
    _SYSTEM,
    _check_path,
    _check_step,
    _check_writable,
    _config_keys,
    _elements,
    _is_number,
    _is_parameter,
    _is_system,
    _leaves,
    _lookup,
    _merge_into,
    _nest,
    _rows,
    _sequence,
    _series_values,
    _system_field,
)
from unilog.compat.neptune.types import File, _is_image_source
from unilog.errors import ArtifactError, ConfigError
from unilog.media import Media

_UNSUPPORTED_RUN = frozenset({"define", "fetch", "get_attribute", "get_root_object",
                              "get_structure", "lock", "ping", "pop", "print_structure",
                              "set_attribute"})


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
        self.wait()

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
        if path in _DESCRIBED:  # the run's name or notes: to run.json and every backend
            setattr(self._run, _DESCRIBED[path], value)
            return
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
        """Log ``values`` by the row rule (the package docstring)."""
        run = self._run
        with self._lock:
            if run.step != self._row_step:  # a row was sent since (by step=, or run.log)
                self._start_row()
            if step is None:
                if not self._row_keys.isdisjoint(values):
                    run.log({}, commit=True)  # sends the row, advances the step
                    self._start_row()
                run.log(values, commit=False)
            else:
                run.log(values, step=step)  # unilog's rules: the row at `step` stays open
                if run.step != self._row_step:
                    self._start_row()
            self._series.update(values)
            if step is None or step == run.step:  # else it went back: not in the open row
                self._row_keys.update(values)

    def _start_row(self) -> None:
        """The row being filled is now the run's current step, with no key appended yet."""
        self._row_step, self._row_keys = self._run.step, set()

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
        if _is_system(path):
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


# -- config and summary ----------------------------------------------------------


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
    for key, item in _leaves(path, value):
        if _is_number(item):
            summary[key] = item
        else:
            config[key] = _config_value(key, item)

