"""Import wandb offline runs: ``unilog import wandb ./wandb``.

A wandb run folder (``wandb/offline-run-<time>-<id>/``) holds the whole run in
``run-<id>.wandb``, read record by record with wandb's own protobuf classes
(see :mod:`unilog.importers._wandb_log` for why the framing is read here), and
its media files under ``files/``. Each wandb run becomes one new unilog run:

- the run record: display name, tags, notes, group, start time; the wandb
  project and run id go to ``imported.from``;
- config records: the run's config (wandb's own ``_wandb`` key left out);
- history records: one row per ``_step`` at its ``_timestamp``, without
  wandb's ``_step``, ``_runtime``, ``_timestamp`` and ``_wandb``; images,
  histograms and tables become unilog media, other media are reported
  (:mod:`unilog.importers._wandb_media`);
- summary records: the summary values that are not simply the last logged
  value of a key (a summary override, a value never logged);
- artifacts whose files are still on disk (wandb's staging copies, or the
  original files for ``policy="immutable"``) with matching digests;
- the exit record: exit code 0 is finished, 255 (wandb's code for Ctrl-C)
  killed, any other failed; no exit record (the process died) is killed.

A run resumed in several folders (one id) is imported as one run. Whatever a
unilog run cannot hold is reported through ``ImportTarget.unrepresented``.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unilog.errors import ArtifactError, BackendNotInstalled, ConfigError
from unilog.importers import _wandb_log
from unilog.importers._common import Progress
from unilog.importers._wandb_media import media

__all__ = ["WandbRun", "find_runs", "import_runs"]

#: History and summary keys that wandb writes itself.
INTERNAL_KEYS = frozenset({"_step", "_runtime", "_timestamp", "_wandb"})
#: Records that hold nothing of the run's own data (wandb's bookkeeping).
BOOKKEEPING = frozenset({"header", "footer", "final", "telemetry", "environment",
                         "request", "preempting"})
#: Other records a unilog run cannot hold: what the report calls them.
UNREPRESENTED_RECORDS = {
    "output": "console output", "output_raw": "console output",
    "output_logger": "console output", "stats": "system metrics",
    "metric": "metric definition", "alert": "alert", "tbrecord": "TensorBoard log",
    "use_artifact": "used artifact", "noop_link_artifact": "artifact link",
}
EXIT_STATUS = {0: "finished", 255: "killed"}  # any other code: failed
#: Artifact types wandb makes for itself: a logged Table's copy (imported as the Table).
INTERNAL_ARTIFACTS = frozenset({"run_table"})


@dataclass
class WandbRun:
    """What the first pass over a run's logs found (everything but the history)."""

    id: str
    logs: list[Path]
    project: str = ""
    name: str | None = None
    tags: list[str] = field(default_factory=list)
    notes: str | None = None
    group: str | None = None
    start: float | None = None
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[Any] = field(default_factory=list)
    exit: Any = None
    saved: list[str] = field(default_factory=list)
    other: dict[str, int] = field(default_factory=dict)  # unrepresented records by label
    damage: dict[str, list[str]] = field(default_factory=dict)  # what -> the logs it hit
    rows: int = 0  # history records, for the progress shown

    @property
    def origin(self) -> str:
        """Where the run came from, for ``imported.from``."""
        folders = ", ".join(str(log.parent) for log in self.logs)
        return f"wandb run {self.project}/{self.id} in {folders}"


def import_runs(location: str | os.PathLike | None, *, new_run: Callable[..., Any],
                run_id: str | None = None, tracking_uri: str | None = None,
                experiment: str | None = None, progress: bool = False) -> list[Path]:
    """Import each wandb run at ``location`` (a run folder, its ``.wandb`` file, a
    ``wandb`` folder holding run folders, or a folder holding ``wandb/``); only
    the run ``run_id`` when given. Returns the new run directories."""
    if tracking_uri is not None or experiment is not None:
        raise ConfigError("a wandb import reads offline run folders: tracking_uri and "
                          "experiment are for MLflow")
    if location is None:
        raise ConfigError("a wandb import needs the run folder (or a wandb folder) to read")
    _require_sdk()
    runs = find_runs(location)
    if run_id is not None:
        runs = {run_id: runs[run_id]} if run_id in runs else {}
    if not runs:
        which = f"run {run_id!r}" if run_id else "run"
        raise ConfigError(f"no wandb {which} found at {location} (looked for "
                          f"run-<id>.wandb in it, its run folders and its wandb/ folder)")
    return [_import_one(WandbRun(id, logs), new_run, progress) for id, logs in runs.items()]


def _require_sdk() -> None:
    try:
        importlib.import_module("wandb.proto.wandb_internal_pb2")  # the records' classes
    except ImportError:
        raise BackendNotInstalled("wandb", "wandb", "wandb") from None


def find_runs(location: str | os.PathLike) -> dict[str, list[Path]]:
    """Each wandb run id at ``location`` and its ``.wandb`` files, oldest folder first
    (a resumed run has one folder per process)."""
    root = Path(location)
    if root.is_file():
        logs = [root]
    elif list(root.glob("run-*.wandb")):
        logs = sorted(root.glob("run-*.wandb"))
    else:
        base = root / "wandb" if (root / "wandb").is_dir() else root
        # latest-run is a link to one of the others: following it would import it twice.
        folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()) \
            if base.is_dir() else []
        logs = [log for folder in folders for log in sorted(folder.glob("run-*.wandb"))]
    runs: dict[str, list[Path]] = {}
    for log in logs:
        runs.setdefault(log.stem.removeprefix("run-"), []).append(log)
    return runs


def _import_one(run: WandbRun, new_run: Callable[..., Any], progress: bool) -> Path:
    _scan(run)
    target = new_run(origin=run.origin, name=run.name or run.id, config=run.config,
                     tags=run.tags or None, notes=run.notes or None, group=run.group or None,
                     created=run.start)
    with Progress(run.rows, f"wandb run {run.id}", progress) as bar:
        last, ended = _write_history(run, target, bar)
    target.summary(_summary_overrides(run.summary, last, target))
    for record in run.artifacts:
        _import_artifact(record, target)
    _report_rest(run, target)
    return target.finish(_status(run), ended=_ended(run, ended))


# -- the first pass: everything but the history -----------------------------------------


def _scan(run: WandbRun) -> None:
    for log in run.logs:
        def damaged(what: str, log: Path = log) -> None:
            run.damage.setdefault(what, []).append(str(log))

        for record in _wandb_log.records(log, damaged):
            kind = record.WhichOneof("record_type")
            handler = _SCANNERS.get(kind)
            if handler is not None:
                handler(run, getattr(record, kind))
            elif kind in UNREPRESENTED_RECORDS:
                label = UNREPRESENTED_RECORDS[kind]
                run.other[label] = run.other.get(label, 0) + 1
            elif kind == "history":
                run.rows += 1
            elif kind not in BOOKKEEPING:
                run.other[f"wandb {kind} record"] = run.other.get(f"wandb {kind} record", 0) + 1
    run.config.pop("_wandb", None)


def _scan_run(run: WandbRun, record: Any) -> None:
    # A resumed run starts each folder with a run record: the first start counts.
    run.project = record.project or run.project
    run.name = record.display_name or run.name
    run.tags = list(record.tags) or run.tags
    run.notes = record.notes or run.notes
    run.group = record.run_group or run.group
    if run.start is None and record.HasField("start_time"):
        run.start = record.start_time.seconds + record.start_time.nanos / 1e9
    _scan_config(run, record.config)


def _scan_config(run: WandbRun, record: Any) -> None:
    for item in record.update:
        _set_path(run.config, _path(item), json.loads(item.value_json))
    for item in record.remove:
        _remove_path(run.config, _path(item))


def _scan_summary(run: WandbRun, record: Any) -> None:
    for item in record.update:
        _set_path(run.summary, _path(item), json.loads(item.value_json))
    for item in record.remove:
        _remove_path(run.summary, _path(item))


def _scan_files(run: WandbRun, record: Any) -> None:
    from wandb.proto.wandb_internal_pb2 import FilesItem

    for item in record.files:  # media files are read with the history that names them
        if item.type != FilesItem.WANDB and not item.path.startswith("media/"):
            run.saved.append(item.path)


_SCANNERS: dict[str, Callable[[WandbRun, Any], None]] = {
    "run": _scan_run,
    "config": _scan_config,
    "summary": _scan_summary,
    "files": _scan_files,
    "artifact": lambda run, record: run.artifacts.append(record),
    "exit": lambda run, record: setattr(run, "exit", record),
}


def _path(item: Any) -> list[str]:
    """The key of a config, summary or history item: nested keys, or one flat key."""
    return list(item.nested_key) or [item.key]


def _set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        if not isinstance(tree.get(part), dict):
            tree[part] = {}
        tree = tree[part]
    tree[path[-1]] = value


def _remove_path(tree: dict[str, Any], path: list[str]) -> None:
    for part in path[:-1]:
        tree = tree.get(part)
        if not isinstance(tree, dict):
            return
    tree.pop(path[-1], None)


# -- the second pass: the history -------------------------------------------------------


def _write_history(run: WandbRun, target: Any,
                   bar: Progress) -> tuple[dict[str, Any], float | None]:
    """Write every history record as a row; the last value of each key (as wandb
    stored it) and the last row's time."""
    last: dict[str, Any] = {}
    when = run.start
    for log in run.logs:
        files = log.parent / "files"
        for record in _wandb_log.records(log, lambda what: None):  # reported by _scan
            if record.WhichOneof("record_type") != "history":
                continue
            tree = _history_tree(record.history)
            when = _number(tree.get("_timestamp"), when)
            step = _number(tree.get("_step"), record.history.step.num)
            flat = _flatten(tree, target)
            last.update(flat)
            target.row(int(step), _convert_row(flat, files, target), when)
            bar.update(1)
    return last, when


def _history_tree(history: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for item in history.item:
        _set_path(tree, _path(item), _item_value(item))
    return tree


def _item_value(item: Any) -> Any:
    """A history value: the typed form when wandb wrote it (a logged 1.0 stays a
    float), else its JSON text."""
    typed = item.WhichOneof("value")
    if typed is None:
        return json.loads(item.value_json) if item.value_json else None
    if typed == "json":
        return json.loads(item.json)
    return None if typed == "none" else getattr(item, typed)


def _number(value: Any, default: Any) -> Any:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def _flatten(tree: dict[str, Any], target: Any) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` as ``{"a/b": 1}`` (unilog's nesting), wandb's own keys
    left out; a media value (a dict with ``_type``) is one value."""
    flat: dict[str, Any] = {}
    for key, value in _leaves(tree, ""):
        if key in flat:  # {"a/b": 1} and {"a": {"b": 2}} in one row
            target.unrepresented("value under a key given twice", key)
        else:
            flat[key] = value
    return flat


def _leaves(tree: dict[str, Any], prefix: str) -> Iterator[tuple[str, Any]]:
    for key, value in tree.items():
        if not prefix and key in INTERNAL_KEYS:
            continue
        if isinstance(value, dict) and "_type" not in value:
            yield from _leaves(value, f"{prefix}{key}/")
        else:
            yield prefix + key, value


def _convert_row(flat: dict[str, Any], files: Path, target: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in flat.items():
        if isinstance(value, dict):
            row.update(media(key, value, files, target))
        elif isinstance(value, list):
            target.unrepresented("list value", key)
        else:
            row[key] = value
    return row


# -- summary, artifacts, the ending -------------------------------------------------------


def _summary_overrides(summary: dict[str, Any], last: dict[str, Any],
                       target: Any) -> dict[str, Any]:
    """The summary values that are not the last logged value of their key: wandb
    copies every logged value into its summary; the rest were set by the user."""
    out = {}
    for key, value in _leaves(summary, ""):
        if key in last and _same(last[key], value):
            continue
        if isinstance(value, dict):  # media set as a summary value only
            target.unrepresented("media in the summary", key)
        else:
            out[key] = value
    return out


def _same(logged: Any, summary: Any) -> bool:
    if isinstance(logged, float) and isinstance(summary, float) and logged != logged:
        return summary != summary  # NaN: the summary holds the last value, NaN too
    return logged == summary


def _import_artifact(record: Any, target: Any) -> None:
    if record.type in INTERNAL_ARTIFACTS:
        return
    label = f"{record.name} ({record.type})"
    missing = [entry.path for entry in record.manifest.contents if not _intact(entry)]
    if missing or not record.manifest.contents:
        target.unrepresented("artifact whose files are gone", label)
        return
    if record.description:
        target.unrepresented("artifact description", label)
    aliases = [a for a in record.aliases if a != "latest"]  # unilog moves its own latest
    with tempfile.TemporaryDirectory(prefix="unilog-wandb-") as tmp:
        for entry in record.manifest.contents:
            _place(Path(entry.local_path), Path(tmp, entry.path))
        try:
            target.artifact(tmp, name=record.name, type=record.type, aliases=aliases,
                            metadata=json.loads(record.metadata or "{}"))
        except ArtifactError:  # a name or alias unilog's rules refuse
            target.unrepresented("artifact with a name unilog refuses", label)


def _intact(entry: Any) -> bool:
    """The file is on disk, inside the artifact, with the digest its manifest gives."""
    path = Path(entry.local_path) if entry.local_path else None
    if entry.ref or path is None or not path.is_file() or ".." in Path(entry.path).parts \
            or Path(entry.path).is_absolute():
        return False
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return base64.b64encode(digest.digest()).decode() == entry.digest


def _place(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)  # unilog copies it into its store: a link saves a copy here
    except OSError:
        shutil.copyfile(source, dest)


def _report_rest(run: WandbRun, target: Any) -> None:
    for label, count in run.other.items():
        target.unrepresented(label, count=count)
    for path in run.saved:
        target.unrepresented("saved file", path)
    for what, logs in run.damage.items():
        target.unrepresented(f"damaged log: {what}", logs[0], count=len(logs))


def _status(run: WandbRun) -> str:
    """A run with no exit record never ended: its process died (or still runs)."""
    if run.exit is None:
        return "killed"
    return EXIT_STATUS.get(run.exit.exit_code, "failed")


def _ended(run: WandbRun, last_row: float | None) -> float | None:
    if run.exit is None or run.start is None:
        return last_row
    return max(run.start + run.exit.runtime, last_row or 0.0)
