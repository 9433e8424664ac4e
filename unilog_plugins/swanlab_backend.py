"""The SwanLab backend: a SwanLab run (``swanlab`` 0.10.3), offline or online.

Files (``<log_dir>`` is ``<run dir>/swanlab`` unless the ``log_dir`` option says
otherwise)::

    <log_dir>/run-<time>-<swanlab id>/run-<swanlab id>.swanlab   the record stream
    <log_dir>/run-<time>-<swanlab id>/files/config.yaml          the config
    <log_dir>/run-<time>-<swanlab id>/media/...                  images, texts
    <log_dir>/run-<time>-<swanlab id>/files/artifacts/<name>/v<N>/...   artifacts (copies)

``swanlab sync <that folder>`` uploads an offline run later.

Modes: unilog's ``offline`` is SwanLab's ``offline`` (no login, no network);
``online`` is SwanLab's ``online``. The SDK is told ``interactive=False``
through its ``Settings`` (the environment is left alone), so it never prompts:
online with no API key raises at once (``open`` fails, the run goes on with its
other backends), and with a wrong key SwanLab gives up after ~15 s.

What goes where:

- numbers: scalars at unilog's step (a Python ``int``, as SwanLab requires);
- ``Image``: ``swanlab.Image`` (with its caption); ``Text``: ``swanlab.Text``;
  histograms and tables have no plain equivalent in SwanLab, so they are not
  declared: the local record keeps them as files;
- config: ``run.config.update`` with the nesting kept (``files/config.yaml``);
- name, project, group, notes (SwanLab's description), tags: at init only.
  SwanLab 0.10.3 cannot change a run's tags later (its run object has no tags
  API and its record stream holds them only in the start record), so tags added
  with ``run.add_tags`` do not reach a live SwanLab run (``set_tags`` is the
  base class's no-op); ``unilog sync --to swanlab`` opens a run with all of them.
  Likewise a name or notes changed later (``run.name = ...``): SwanLab 0.10.3's
  run has a read-only ``name`` and no description API, so ``describe`` is the
  base class's no-op (``unilog sync --to swanlab`` opens a run with the final ones);
- ``run.summary``: numbers as scalars ``summary/<key>`` at the latest step,
  anything else as text ``summary/<key>``;
- artifacts: each version's files COPIED to ``files/artifacts/<name>/v<N>/``
  with ``unilog-artifact.json`` (type, aliases, metadata, digest, sha256s)
  beside them, then registered with ``run.save`` so ``swanlab sync`` uploads
  them. ``run.save`` alone would leave a symlink to a file that may move; it
  links only when the target does not exist, so the copy stays a real file;
- the ending: ``success`` / ``crashed`` / ``aborted``.

Several runs in one process: SwanLab 0.10.3 keeps one active run per process
(``swanlab.init`` refuses a second). When this process already has one (another
unilog run's, one left open, or the user's own), this backend runs the new
run's SwanLab in a child process (as the ``process: True`` option does), so
every unilog run gets SwanLab. SwanLab's per-run file-watcher thread, which
0.10.3 leaves running after ``finish``, is ended with the run.

Resume: online, the SwanLab run recorded in the manifest is resumed by id;
offline, SwanLab has no resume, so a resumed unilog run writes a new SwanLab
run folder (with the same SwanLab id) beside the first. Offline, SwanLab's
console lines at init and finish (its banner, printed twice by 0.10.3) are
silenced; ``open`` returns ``view``/``sync``: the ``swanlab sync <folder>``
command (0.10.3 has no local viewer for offline runs). Its capture of
stdout/stderr is off.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import logging
import os
import re
import shlex
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import unilog
from unilog.backend import Backend, Capabilities, KeyRule, Row, RunInfo, program
from unilog_plugins._sdk import argv_has_secrets, git_remote_has_credentials

logger = logging.getLogger("unilog")

ARTIFACT_JSON = "unilog-artifact.json"
ARTIFACT_FOLDER = "artifacts"
MAX_KEY = 512  # SwanLab's METRIC_KEY_MAX_LENGTH
_STATE = {"finished": "success", "failed": "crashed", "killed": "aborted"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_EDGES = " \t\n\r./"  # what SwanLab strips from both ends of a key (with a warning)


@dataclass(frozen=True)
class SwanLabKeyRule(KeyRule):
    """SwanLab's keys: no control characters (they become ``_``), no leading or
    trailing space, ``.`` or ``/`` (removed), at most 512 characters (longer keys
    keep 503, ``_`` and 8 hex digits of the original key's hash)."""

    max_length: int | None = MAX_KEY

    def adapt(self, key: str) -> str:
        """The key as SwanLab will take it unchanged (pure and deterministic)."""
        out = _CONTROL.sub(self.replacement, key).strip(_EDGES)
        if len(out) > MAX_KEY:
            tail = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            out = out[: MAX_KEY - 9] + self.replacement + tail
        return out or self.replacement


class SwanLabBackend(Backend):
    """Logs a unilog run to SwanLab (offline files under the run directory, or online)."""

    name = "swanlab"
    # SwanLab would store a step lower than one it has, but its charts expect
    # steps to grow: rows whose step went back stay in the local record.
    capabilities = Capabilities(media=frozenset({"image", "text"}), out_of_order_steps=False,
                                key_rule=SwanLabKeyRule(), artifacts=True)
    requires = ("swanlab",)
    extra = "swanlab"
    flush_interval = 1.0

    def __init__(self, log_dir: str | os.PathLike[str] | None = None,
                 workspace: str | None = None, system_info: bool = False,
                 **options: Any):
        """``log_dir``: where SwanLab's run folder goes (default ``<run dir>/swanlab``);
        ``workspace``: the online workspace (default: the user's own);
        ``system_info``: let SwanLab record hardware, the command line, git,
        pip packages and monitor the machine (off by default: the package list
        costs seconds at init). Even then, the command line is left out when it
        holds a secret unilog redacts, and git when the remote URL holds
        credentials: SwanLab records both verbatim."""
        super().__init__(**options)
        if log_dir is not None and not isinstance(log_dir, (str, os.PathLike)):
            raise TypeError(f"log_dir must be a path or None, not {type(log_dir).__name__}")
        self.log_dir = log_dir
        self.workspace = workspace
        self.system_info = bool(system_info)
        self._options = {"log_dir": log_dir, "workspace": workspace,
                         "system_info": system_info}
        self._child: Any = None  # a ProcessBackend when SwanLab was busy in this process
        self._run: Any = None
        self._quiet = False
        self._step = 0
        self._copied: set[tuple[str, int]] = set()

    # -- lifecycle -----------------------------------------------------------------

    def open(self, run: RunInfo) -> dict[str, Any]:
        """``swanlab.init`` with everything SwanLab takes only at init; in a child
        process when this process already has an active SwanLab run."""
        import swanlab

        # has_run and init as one step: two runs opening at once must not both see none.
        with _INIT_LOCK:
            if not swanlab.has_run():
                return self._open_here(swanlab, run)
        return self._open_in_child(run)

    def destination(self, run: RunInfo) -> str:
        """Online, the SwanLab workspace and project; offline, the log folder."""
        if run.mode == "online":
            return f"online {self.workspace or ''}/{run.project}"
        folder = Path(self.log_dir).expanduser() if self.log_dir else run.dir / self.name
        return f"offline {folder.absolute()}"

    def _open_in_child(self, run: RunInfo) -> dict[str, Any]:
        """SwanLab 0.10.3 allows one active run per process: this run's SwanLab
        runs in a child process (as with ``process: True``) rather than fail."""
        from unilog.backend import ProcessBackend

        logger.info("unilog backend 'swanlab': this process already has an active SwanLab "
                    "run, so run %s's SwanLab run is in a child process", run.id)
        self._child = ProcessBackend(type(self), self._options)
        return self._child.open(run)

    def _open_here(self, swanlab: Any, run: RunInfo) -> dict[str, Any]:
        self._info = run
        self._step = max(0, run.start_step - 1)  # summary records go at the latest step
        log_dir = Path(self.log_dir).expanduser() if self.log_dir else run.backend_dir(self.name)
        log_dir.mkdir(parents=True, exist_ok=True)
        mode = "online" if run.mode == "online" else "offline"
        previous = (run.previous.get(self.name) or {}).get("info") or {}
        resume_id = previous.get("id") if run.resumed else None
        probe = self._probe()
        settings = swanlab.Settings(
            mode=mode, interactive=False, log_dir=log_dir,
            terminal=swanlab.Settings.Terminal(proxy_type="none"),  # no console capture
            probe=swanlab.Settings.Probe(**probe))
        kwargs: dict[str, Any] = {}
        if resume_id and mode == "online":
            kwargs.update(id=resume_id, resume="allow")
        elif resume_id:
            kwargs["id"] = resume_id
        hook = sys.excepthook
        self._quiet = mode == "offline"
        with _quiet_console(self._quiet):
            self._run = swanlab.init(
                settings=settings, project=run.project, workspace=self.workspace,
                name=run.name, description=run.notes or None, group=run.group or None,
                tags=list(run.tags) or None, **kwargs)
        # SwanLab installs an excepthook that ends its run as crashed at once;
        # unilog's hook decides the ending and closes this backend after
        # draining its queue, so a crash never costs the rows still queued.
        if sys.excepthook == getattr(self._run, "_handle_except", None):
            sys.excepthook = hook
        self._swanlab = swanlab
        info = {"id": self._run.id, "location": str(self._run.dir), "mode": mode,
                "log_dir": str(log_dir),
                "sync": f"{program('swanlab')} sync {shlex.quote(str(self._run.dir))}"}
        url = getattr(self._run, "url", None) if mode == "online" else None
        if url:
            info["url"] = url
        # SwanLab 0.10.3 has no local viewer for offline runs: they are seen once synced.
        info["view"] = url or info["sync"]
        return info

    def _probe(self) -> dict[str, bool]:
        """What SwanLab may record about the machine: nothing unless ``system_info``;
        with it, never the command line (``runtime``) when it holds secrets, nor git
        when the remote URL holds credentials: SwanLab records both verbatim."""
        if not self.system_info:
            return {"hardware": False, "runtime": False, "requirements": False,
                    "conda": False, "git": False, "monitor": False}
        probe = {}
        if argv_has_secrets():
            probe["runtime"] = False
            logger.info("unilog backend 'swanlab': the command line holds secrets, so "
                        "SwanLab's runtime information (command, host, python) is not "
                        "recorded")
        if git_remote_has_credentials():
            probe["git"] = False
            logger.info("unilog backend 'swanlab': the git remote URL holds credentials, "
                        "so SwanLab's git information is not recorded")
        return probe

    def flush(self) -> None:
        """Hand what SwanLab's writer has buffered to the operating system.

        SwanLab 0.10.3 flushes its record file only at ``finish`` (its writer's
        ``ensure_flushed`` is never called), so a crash would lose the file's
        buffered tail. Its internals are reached defensively: without them this
        does nothing. Records still in SwanLab's own queue (written by its
        thread within ~0.5 s) are not covered."""
        if self._child is not None:
            self._child.flush()
            return
        store = getattr(getattr(self._run, "_core", None), "_store", None)
        if store is not None and getattr(store, "_fp", None) is not None:
            try:
                store.ensure_flushed()
            except (AssertionError, AttributeError, OSError, ValueError):
                pass  # closed meanwhile by SwanLab's own finish

    def close(self, status: str, exit_code: int) -> None:
        """Finish the SwanLab run as ``success``, ``crashed`` or ``aborted``."""
        if self._child is not None:
            self._child.close(status, exit_code)
            return
        run, self._run = self._run, None
        if run is None or not run.alive:
            return
        state = _STATE.get(status, "crashed")
        error = None if state == "success" else f"unilog run {status} (exit code {exit_code})"
        observer = _observer(run)  # SwanLab drops its watcher at finish
        with _quiet_console(self._quiet):
            run.finish(state=state, error=error)
        _stop_idle_observer(observer)

    # -- rows ----------------------------------------------------------------------

    def log_rows(self, rows: list[Row]) -> None:
        """One ``run.log`` per row, at the row's step."""
        if self._child is not None:
            self._child.log_rows(rows)
            return
        self.each_row(rows, self._log_row)  # a failure says how many rows were stored

    def _log_row(self, row: Row) -> None:
        data: dict[str, Any] = {}
        for key, value in row.values.items():
            kind = type(value)
            if kind is float or kind is int:
                data[key] = value
            else:
                media = self.convert_media(self._media, key, row.step, value)
                if media is not None:
                    data[key] = media
        if data:
            self._run.log(data, step=int(row.step))
        if row.step > self._step:
            self._step = row.step

    def _media(self, value: Any) -> Any:
        """The SwanLab object for a media value (called through ``convert_media``)."""
        if isinstance(value, unilog.Image):
            pixels = value.to_uint8()
            if pixels.ndim == 3 and pixels.shape[2] == 1:
                pixels = pixels[:, :, 0]
            return self._swanlab.Image(pixels, caption=value.caption)
        if isinstance(value, unilog.Text):
            return self._swanlab.Text(value.text)
        raise TypeError(f"unsupported value {type(value).__name__}")

    # -- config, summary, artifacts -------------------------------------------------

    def log_config(self, config: dict[str, Any]) -> None:
        """The whole (redacted) config, nesting kept: SwanLab writes ``files/config.yaml``."""
        if self._child is not None:
            self._child.log_config(config)
            return
        self._run.config.update(_plain(config))

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Numbers as scalars, anything else as text, under ``summary/<key>`` at the latest step."""
        if self._child is not None:
            self._child.log_summary(summary)
            return
        data: dict[str, Any] = {}
        for key, value in summary.items():
            name = self.capabilities.key_rule.adapt(f"summary/{key}")
            if type(value) in (int, float):
                data[name] = value
            else:
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                data[name] = self._swanlab.Text(text)
        if data:
            self._run.log(data, step=int(self._step))

    def log_artifact(self, artifact: Any) -> None:
        """Copy the version's files into the SwanLab run's ``files/`` and register them."""
        if self._child is not None:
            self._child.log_artifact(artifact)
            return
        files_dir = Path(self._run.dir) / "files"
        folder = files_dir / ARTIFACT_FOLDER / _safe(artifact.name) / f"v{artifact.version}"
        fresh = (artifact.name, artifact.version) not in self._copied
        if fresh:  # the same version again only moves aliases: rewrite the manifest
            for f in artifact.files:
                target = folder / f.path
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f.blob, target)
        if all(f.path != ARTIFACT_JSON for f in artifact.files):
            manifest = json.dumps(artifact.to_json(), indent=2, ensure_ascii=False, default=str)
            (folder / ARTIFACT_JSON).parent.mkdir(parents=True, exist_ok=True)
            (folder / ARTIFACT_JSON).write_text(manifest, encoding="utf-8")
        if fresh:
            # Every target exists, so SwanLab records the save without linking.
            # One file a call: a glob would hit SwanLab's 100-files-a-save limit.
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                self._run.save(glob.escape(str(path)), base_path=str(files_dir), policy="now")
        self._copied.add((artifact.name, artifact.version))


_INIT_LOCK = threading.Lock()
_QUIET_LOCK = threading.Lock()
_quiet_depth = 0


@contextlib.contextmanager
def _quiet_console(quiet: bool) -> Any:
    """SwanLab's console silenced while inside (when ``quiet``): its banner at init
    and its sync hint at finish, each printed twice by 0.10.3. SwanLab prints
    through one module-level rich ``Console`` and has no setting for it; its
    ``quiet`` flag is restored on exit (nested and concurrent uses counted)."""
    global _quiet_depth
    if not quiet:
        yield
        return
    try:
        from swanlab.sdk.internal.pkg import console  # internal: moved, it only costs quiet
    except ImportError:
        yield
        return

    with _QUIET_LOCK:
        _quiet_depth += 1
        if _quiet_depth == 1:
            _quiet_console.previous = console.c.quiet
            console.c.quiet = True
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                console.c.quiet = _quiet_console.previous


def _observer(run: Any) -> Any:
    """The watchdog observer of a SwanLab run's file watcher, or None."""
    watcher = getattr(getattr(run, "_core", None), "_watcher", None)
    return getattr(watcher, "_observer", None)


def _stop_idle_observer(observer: Any) -> None:
    """End the file watcher thread SwanLab 0.10.3 leaves behind each run.

    Each SwanLab run builds a watchdog ``Observer``, whose inotify thread (and
    inotify file descriptor) starts as it is built; SwanLab stops it only when
    the observer itself was started (files saved with the ``live`` policy, which
    this backend never uses), so every run left one thread and one descriptor
    alive. Reached defensively: without these internals it does nothing."""
    inotify = getattr(observer, "_inotify_fd", None)
    if inotify is None or observer.is_alive() or not inotify.is_alive():
        return
    inotify.stop()
    inotify.join(timeout=2)


def _plain(config: Any) -> Any:
    """The config as YAML-safe plain data (anything unusual as its ``str``)."""
    if isinstance(config, dict):
        return {str(k): _plain(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [_plain(v) for v in config]
    if config is None or isinstance(config, (bool, int, float, str)):
        return config
    return str(config)


def _safe(name: str) -> str:
    """An artifact name as one folder name."""
    return re.sub(r"[^\w.\-]", "_", name).strip(".") or "_"


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the SwanLab backend."""
    register(SwanLabBackend)
