"""The Neptune backend: a unilog run as a Neptune run, through the ``neptune`` 1.x client.

**The hosted Neptune service (app.neptune.ai) shut down on 2026-03-05** after the
company's acquisition. This backend remains for what still works without it:
offline runs (an operation log on disk, readable as JSON lines, and syncable with
``neptune sync`` to any deployment that still exists), the in-memory ``debug``
mode, and a self-hosted or otherwise remaining Neptune deployment reached with a
project and an API token.

Modes (decided at ``open``):

- unilog ``mode="offline"``: Neptune's ``offline`` mode, no network, no login;
- unilog ``mode="online"``: Neptune's ``async`` mode, which needs a deployment:
  the ``project``/``api_token`` options or ``$NEPTUNE_PROJECT``/``$NEPTUNE_API_TOKEN``.
  Without them Neptune raises at once (a forgotten offline mode fails fast; the
  core reports it and the run goes on). ``$NEPTUNE_RETRIES_TIMEOUT`` and
  ``$NEPTUNE_REQUEST_TIMEOUT`` (read by neptune at import) default to the
  ``retries_timeout``/``request_timeout`` options, only where the user set none;
- the ``sdk_mode`` option overrides both: ``"debug"`` (in memory; for tests: at
  ``finish`` the Neptune run is left open in ``DEBUG_RUNS[<unilog run id>]`` so the
  fetch API still works; stop it when done), ``"offline"``, ``"async"``, ``"sync"``.

Files: ``<run dir>/neptune`` (or ``$NEPTUNE_DATA_DIRECTORY`` when the user set
it), made absolute at ``open`` and pinned to the Neptune run by its id, so they
stay there whatever the working directory, a later ``chdir``, another thread
resetting the environment, or a forked child (a DataLoader worker) touching the
inherited run: neptune itself would re-read ``$NEPTUNE_DATA_DIRECTORY``
(default ``./.neptune`` in the working directory) each time it builds an
operation processor. The environment and the working directory are never
changed. The offline log is
``<run dir>/neptune/offline/run__<uuid>__<pid>__<key>/data-1.log``.

What goes where:

- numbers: float series at the key (``run[key].extend(values, steps=)``, one call
  per key per batch); steps must strictly increase per series, which unilog's
  step contract gives. NaN and inf cannot be stored by Neptune: they are left
  out with one warning (the local record keeps them);
- ``Image``: image series at the key (PNG, caption as the image's description);
  ``Text``: string series at the key (cut to Neptune's 1,000 characters);
  ``Table``: a CSV file at ``<key>/step_<n>``; ``Histogram``: no Neptune type,
  so the core keeps it as a file in the local record;
- config: ``parameters/<a>/<b>`` (bool/int/float/str as such, anything else as
  ``str(value)``); tags ``sys/tags`` (tags added later: ``sys/tags.add``); notes
  ``sys/description``; name ``sys/name`` (both set again when changed later:
  ``run.name = ...``, ``run.notes = ...``); group ``sys/group_tags``;
  ``unilog/run_id``, ``unilog/project``, ``unilog/dir``;
- ``run.summary``: ``summary/<key>`` (numbers as floats, others as JSON text);
- artifacts: the files at ``artifacts/<name>/v<N>/files/<path>`` (an upload of the
  run's content-addressed blob), ``.../type``, ``.../digest``, the unilog manifest
  (type, aliases, metadata, files' sha256) as ``.../manifest`` (a JSON file), and
  ``artifacts/<name>/aliases/<alias>`` = N;
- the ending: ``sys/failed`` True for failed/killed, ``unilog/status``.

Resume: in ``async``/``sync`` mode the Neptune run recorded in the manifest is
continued (``with_id``). Offline and debug runs cannot be reopened by Neptune: a
resumed unilog run gets a new Neptune run, with the same ``unilog/run_id``.
Neptune's stdout/stderr/hardware/traceback capture and git info are off.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import math
import os
import shlex
import threading
import warnings
from pathlib import Path
from typing import Any

import unilog
from unilog.backend import (Backend, Capabilities, KeyRule, Row, RunInfo, flatten_config,
                            program)
from unilog_plugins._sdk import quiet_info

logger = logging.getLogger("unilog")

SDK_MODES = ("debug", "offline", "async", "sync")
MAX_TEXT = 1000  # neptune's StringSeries limit; it warns and cuts longer values
DATA_DIR_ENV = "NEPTUNE_DATA_DIRECTORY"
#: Neptune's own namespaces: a metric there would overwrite the run's fields.
RESERVED = frozenset({"sys", "source_code", "monitoring", "parameters", "unilog",
                      "artifacts"})
_INSTALL_LOCK = threading.Lock()


class NeptuneKeyRule(KeyRule):
    """Neptune paths split on ``/``: no empty segment, no leading/trailing ``/``;
    a key whose first segment is one of Neptune's or this backend's namespaces
    (``sys``, ``parameters``, ...) gets a leading ``_`` so it cannot overwrite them."""

    def adapt(self, key: str) -> str:
        """The key as a Neptune field path (pure and deterministic)."""
        out = "/".join(p for p in key.split("/") if p) or "_"
        return "_" + out if out.split("/")[0] in RESERVED else out


class NeptuneBackend(Backend):
    """Logs a unilog run to a Neptune run (offline, debug, or a remaining deployment)."""

    name = "neptune"
    capabilities = Capabilities(media=frozenset({"image", "text", "table"}),
                                out_of_order_steps=False, key_rule=NeptuneKeyRule(),
                                artifacts=True)
    requires = ("neptune",)
    extra = "neptune"
    flush_interval = 5.0

    def __init__(self, sdk_mode: str | None = None, project: str | None = None,
                 api_token: str | None = None, retries_timeout: int = 30,
                 request_timeout: int = 30, stop_timeout: float = 60.0, **options: Any):
        super().__init__(**options)
        if sdk_mode is not None and sdk_mode not in SDK_MODES:
            raise unilog.ConfigError(f"neptune option sdk_mode must be one of {SDK_MODES}, "
                                     f"not {sdk_mode!r}")
        self.sdk_mode = sdk_mode
        self.project = project
        self.api_token = api_token
        self.retries_timeout = retries_timeout
        self.request_timeout = request_timeout
        self.stop_timeout = stop_timeout
        self.neptune_run: Any = None  # the SDK's Run (public: tests use debug's fetch API)
        self._tags: set[str] = set()  # tags sys/tags holds
        self._params: dict[str, Any] = {}  # parameters already sent
        self._nonfinite_warned = False
        self._last_step = 0
        self._stored_steps: dict[str, int] = {}  # each key's last step stored (log_rows)

    def import_sdk(self, run: RunInfo) -> None:
        """neptune, with the retry bounds it reads at import set first."""
        self._sdk = self._import(self._mode(run))

    def _mode(self, run: RunInfo) -> str:
        return self.sdk_mode or ("offline" if run.mode == "offline" else "async")

    def _import(self, mode: str) -> Any:
        if mode in ("async", "sync"):  # read by neptune at import: bound the retries
            os.environ.setdefault("NEPTUNE_RETRIES_TIMEOUT", str(int(self.retries_timeout)))
            os.environ.setdefault("NEPTUNE_REQUEST_TIMEOUT", str(int(self.request_timeout)))
        return _import_neptune()

    def open(self, run: RunInfo) -> dict[str, Any]:
        """Create (or, online, continue) the Neptune run; returns its id and mode."""
        mode = self._mode(run)
        self._last_step = max(0, run.start_step - 1)
        self._sdk = self._import(mode)
        previous = (run.previous.get(self.name) or {}).get("info") or {}
        with_id = previous.get("id") if run.resumed and mode in ("async", "sync") else None
        kwargs: dict[str, Any] = dict(
            mode=mode, capture_stdout=False, capture_stderr=False,
            capture_hardware_metrics=False, capture_traceback=False, git_ref=False,
            source_files=[], fail_on_exception=False)
        if mode in ("async", "sync"):
            kwargs.update(project=self.project, api_token=self.api_token)
        if with_id is None:
            kwargs.update(name=run.name, description=run.notes or "", tags=list(run.tags))
        self._data_root = _data_root(run)
        with _pinned_data_directory(self._data_root), quiet_info("neptune"):
            self.neptune_run = nrun = self._sdk.init_run(with_id, **kwargs)
        if with_id is not None and run.tags:
            nrun["sys/tags"].add(list(run.tags))
        if run.group:
            nrun["sys/group_tags"].add([run.group])
        self._tags = set(run.tags)
        nrun["unilog/run_id"] = run.id
        nrun["unilog/project"] = run.project
        nrun["unilog/dir"] = str(run.dir)
        self._mode, self._unilog_id = mode, run.id
        self._id = nrun._id  # sys/id: the server's short id online, a uuid offline
        info = {"id": self._id, "mode": mode}
        if mode in ("async", "sync"):
            with contextlib.suppress(Exception):
                info["url"] = nrun.get_url()
        info.update(self._where(nrun, mode, info.get("url")))
        if run.resumed and with_id is None:
            logger.info("unilog backend 'neptune': Neptune cannot reopen a %s run; this "
                        "resumed run is a new Neptune run with unilog/run_id=%s", mode, run.id)
        return info

    def destination(self, run: RunInfo) -> str:
        """Online, the Neptune project; offline (or debug), the data folder."""
        mode = self.sdk_mode or ("offline" if run.mode == "offline" else "async")
        if mode in ("async", "sync"):
            return f"online {self.project or os.environ.get('NEPTUNE_PROJECT', '')}"
        user = os.environ.get(DATA_DIR_ENV)
        folder = Path(user) if user else run.dir / "neptune"
        return f"{mode} {folder.absolute()}"

    def _where(self, nrun: Any, mode: str, url: str | None) -> dict[str, str]:
        """``location`` (its operation log's folder), ``sync`` and ``view`` (a command)."""
        if mode == "debug":  # in memory only
            return {"view": f"unilog_plugins.neptune_backend.DEBUG_RUNS[{self._unilog_id!r}]"}
        try:
            folder = Path(nrun._op_processor.data_path)  # neptune has no public accessor
        except Exception:
            folder = self._data_root
        # `neptune sync --path P` reads only a folder named .neptune (in P, or P itself).
        root = shlex.quote(str(self._data_root))
        neptune = program("neptune")
        sync = (f"{neptune} sync --path {root}" if self._data_root.name == ".neptune" else
                f"cd \"$(mktemp -d)\" && ln -s {root} .neptune && {neptune} sync --path .")
        where = {"location": str(folder), "sync": sync}
        # The operation log is JSON lines: the one way to look at an offline run
        # now that the hosted app is gone.
        where["view"] = url or f"cat {shlex.quote(str(folder))}/data-*.log"
        return where

    # -- rows -------------------------------------------------------------------

    def log_rows(self, rows: list[Row]) -> None:
        """Numbers batched per key (one ``extend`` each); media appended in order.

        A key Neptune refuses (a path that is also a namespace: ``a`` beside
        ``a/b``) fails this call after other keys were stored; unilog then sends
        the rows again, split. Points at or below a key's last stored step are
        skipped, so a retry stores each point once."""
        series: dict[str, tuple[list[float], list[int], list[float]]] = {}
        dropped = 0
        stored = self._stored_steps
        for row in rows:
            self._last_step = row.step
            for key, value in row.values.items():
                if stored.get(key, -1) >= row.step:  # stored by an earlier try of this batch
                    continue
                if isinstance(value, (int, float)):
                    value = _as_float(value)
                    if not math.isfinite(value):
                        dropped += 1
                        continue
                    values, steps, times = series.setdefault(key, ([], [], []))
                    values.append(value)
                    steps.append(int(row.step))
                    times.append(row.time)
                else:
                    self._log_media(key, value, row)
                    stored[key] = row.step
        for key, (values, steps, times) in series.items():
            self.neptune_run[key].extend(values, steps=steps, timestamps=times)
            stored[key] = steps[-1]
        if dropped and not self._nonfinite_warned:
            self._nonfinite_warned = True
            logger.warning("unilog backend 'neptune': Neptune cannot store NaN or inf; such "
                           "values are left out of Neptune (the local record keeps them)")

    def _log_media(self, key: str, value: Any, row: Row) -> None:
        kind = value.kind
        if kind == "image":
            image = self._sdk.File.from_content(value.png_bytes(), extension="png")
            self.neptune_run[key].append(image, step=int(row.step), timestamp=row.time,
                                         description=value.caption)
        elif kind == "text":
            text = value.text
            if len(text) > MAX_TEXT:  # cut here: neptune would warn (an error under -W error)
                text = text[: MAX_TEXT - 3] + "..."
            self.neptune_run[key].append(text, step=int(row.step), timestamp=row.time)
        elif kind == "table":
            content = self._sdk.File.from_content(value.to_csv_text(), extension="csv")
            self.neptune_run[f"{key}/step_{row.step}"].upload(content)

    # -- config, summary --------------------------------------------------------------

    def log_config(self, config: dict[str, Any]) -> None:
        """``parameters/<flattened key>``; only values that changed are sent again."""
        for key, value in flatten_config(config).items():
            value = _param(value)
            if self._params.get(key, _MISSING) != (type(value), value):  # 1 == True: typed
                self._params[key] = (type(value), value)
                path = "/".join(p for p in key.split("/") if p) or "_"
                self.neptune_run[f"parameters/{path}"] = value

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """Add the tags not sent yet to ``sys/tags`` (Neptune's ``run["sys/tags"].add``)."""
        new = [tag for tag in tags if tag not in self._tags]
        if new:
            self.neptune_run["sys/tags"].add(new)
            self._tags.update(new)

    def describe(self, name: str, notes: str | None) -> None:
        """``sys/name`` and ``sys/description`` (empty when the notes are None)."""
        self.neptune_run["sys/name"] = name
        self.neptune_run["sys/description"] = notes or ""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """``summary/<key>``: numbers as floats, anything else as JSON text."""
        for key, value in summary.items():
            path = "summary/" + ("/".join(p for p in str(key).split("/") if p) or "_")
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and math.isfinite(_as_float(value)):
                self.neptune_run[path] = _as_float(value)
            else:
                self.neptune_run[path] = json.dumps(value, default=str)

    # -- artifacts -----------------------------------------------------------------

    def log_artifact(self, artifact: Any) -> None:
        """Each file uploaded from its blob, with type, digest, manifest and aliases."""
        base = f"artifacts/{artifact.name}/v{artifact.version}"
        File = self._sdk.File
        for f in artifact.files:
            ext = os.path.splitext(f.path)[1].lstrip(".") or None
            self.neptune_run[f"{base}/files/{f.path}"].upload(
                File.from_path(str(f.blob), extension=ext))
        self.neptune_run[f"{base}/type"] = artifact.type
        self.neptune_run[f"{base}/digest"] = artifact.digest
        manifest = json.dumps(artifact.to_json(), indent=2, ensure_ascii=False, default=str)
        self.neptune_run[f"{base}/manifest"].upload(File.from_content(manifest,
                                                                      extension="json"))
        for alias in artifact.aliases:
            self.neptune_run[f"artifacts/{artifact.name}/aliases/{alias}"] = artifact.version

    # -- end ------------------------------------------------------------------------

    def flush(self) -> None:
        """Make the queued operations durable on disk (offline: the operation log)."""
        if self.neptune_run is not None and self._mode != "debug":
            self.neptune_run.wait(disk_only=True)

    def close(self, status: str, exit_code: int) -> None:
        """Record the ending (``sys/failed``, ``unilog/status``) and stop the run."""
        if self.neptune_run is None:
            return
        self.neptune_run["unilog/status"] = status
        if status != "finished":
            self.neptune_run["sys/failed"] = True
        if self._mode == "debug":  # kept readable (fetch API) until the caller stops it
            DEBUG_RUNS[self._unilog_id] = self.neptune_run
            return
        with quiet_info("neptune"):  # "Shutting down background jobs...", "Done!"
            self.neptune_run.stop(seconds=self.stop_timeout)
        _PINNED.pop(str(self._id), None)


_MISSING = object()
#: Debug-mode Neptune runs of finished unilog runs, by unilog run id: Neptune's fetch
#: API works only until ``stop()``, so they are left open for the caller to read
#: (``DEBUG_RUNS.pop(run.id).stop()`` when done).
DEBUG_RUNS: dict[str, Any] = {}


def _data_root(run: RunInfo) -> Path:
    """Where this run's Neptune files go: ``$NEPTUNE_DATA_DIRECTORY`` when the user
    set it, else ``<run dir>/neptune``; absolute, so a later ``chdir`` (Hydra's)
    cannot move it."""
    user = os.environ.get(DATA_DIR_ENV)
    return Path(user).absolute() if user else run.backend_dir("neptune").absolute()


# Where neptune puts a run's files is not an argument of its API: each operation
# processor asks ``get_container_full_path``, which reads $NEPTUNE_DATA_DIRECTORY
# (default ./.neptune in the working directory) at that moment. It does so at
# init_run, and again in every forked child (a DataLoader worker) that touches
# the inherited run: neptune's fork handler builds a fresh processor lazily. An
# environment variable set only around init_run (as this backend did) was gone
# by then, or cleared meanwhile by another thread (mock.patch.dict, a test
# fixture restoring os.environ), and the files landed in ./.neptune. So the
# function is wrapped, once, in the three processor modules that imported it:
# a container this backend created always resolves to the folder pinned for it
# (by container id), in any process and whatever the environment; every other
# Neptune run keeps neptune's own rule.
_PINNED: dict[str, Path] = {}  # container id -> data root
_OPENING = threading.local()  # .root: the data root of the init_run in progress
_PROCESSOR_MODULES = ("offline_operation_processor", "async_operation_processor",
                      "sync_operation_processor")


def _install_pinning() -> None:
    from neptune.internal.operation_processors import utils

    original = utils.get_container_full_path
    for name in _PROCESSOR_MODULES:
        module = importlib.import_module(f"neptune.internal.operation_processors.{name}")
        current = getattr(module, "get_container_full_path", None)
        if current is None or getattr(current, "_unilog_pinned", False):
            continue

        def full_path(type_dir: str, container_id: Any, container_type: Any,
                      _original: Any = current) -> Path:
            root = _PINNED.get(str(container_id))
            if root is None and getattr(_OPENING, "root", None) is not None:
                root = _PINNED[str(container_id)] = _OPENING.root
            if root is None:
                return _original(type_dir, container_id, container_type)
            return root / type_dir / utils.get_container_dir(container_id, container_type)

        full_path._unilog_pinned = True  # type: ignore[attr-defined]
        full_path.__wrapped__ = original  # type: ignore[attr-defined]
        module.get_container_full_path = full_path


@contextlib.contextmanager
def _pinned_data_directory(root: Path) -> Any:
    """The Neptune run created inside (on this thread) has its files under ``root``,
    now and in forked children; the environment is not touched."""
    root.mkdir(parents=True, exist_ok=True)
    with _INSTALL_LOCK:
        _install_pinning()
    _OPENING.root = root
    try:
        yield
    finally:
        _OPENING.root = None


def _import_neptune() -> Any:
    """``import neptune`` with the DeprecationWarnings of its dependencies (jsonschema's
    RefResolver, via bravado) silenced, and nothing else."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"jsonschema\.RefResolver is deprecated",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning,
                                module=r"(bravado|bravado_core|swagger_spec_validator)\b")
        import neptune
        from neptune.types import File
    neptune.File = File  # one handle for both
    return neptune


def _param(value: Any) -> Any:
    """A config value as Neptune stores it: bool/int/float/str, else ``str(value)``."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.copysign(math.inf, value)


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the Neptune backend."""
    register(NeptuneBackend)
