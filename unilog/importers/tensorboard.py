"""``unilog import tensorboard LOGDIR``: TensorBoard event files become unilog runs.

Read with TensorBoard's own ``EventAccumulator`` (everything kept), never by
parsing the protobufs here. Each folder under the log dir holding
``events.out.tfevents.*`` files is a run, as TensorBoard counts runs, named by
its path relative to the log dir, with one exception: a sub-folder that holds
nothing but an hparams session (``session_start_info``) and scalars belongs to
its parent. That is where torch's ``add_hparams`` (a sub-folder named by the
time) and unilog's own TensorBoard backend (``hparams/``) put a run's hparams,
and a config cut off from its metrics would be of little use.

What becomes what (see docs/import.md): scalars -> numbers (all tags of a step
in one row, at the earliest wall time of that step); images -> ``Image``;
histograms -> ``Histogram``; text -> ``Text`` (a vector or matrix of strings ->
``Table``); hparams -> the config (``a/b`` keys nested), the session's end
status -> the run's status. Everything else is reported as unrepresented.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from unilog.errors import ConfigError
from unilog.importers import _tb_values as tbv
from unilog.importers._common import Progress, Rows, scratch_dir, unflatten

#: Plugins whose data a unilog run has no kind for, by how a user would name them.
_PLUGIN_NAMES = {
    "pr_curves": "PR curves",
    "mesh": "3D meshes",
    "custom_scalars": "custom-scalar layouts",
    "audio": "audio",
    "graphs": "graphs",
    "projector": "embeddings (projector)",
}
_HPARAMS = "hparams"
_PROJECTOR_CONFIG = "projector_config.pbtxt"


def import_runs(location: Any, *, new_run: Callable[..., Any], run_id: str | None = None,
                tracking_uri: str | None = None, experiment: str | None = None,
                progress: bool = False) -> list[Path]:
    """Import every TensorBoard run under ``location``; the new run directories."""
    for option, value in (("run_id", run_id), ("tracking_uri", tracking_uri),
                          ("experiment", experiment)):
        if value is not None:
            raise ConfigError(f"{option} is an option of the mlflow source, not of tensorboard")
    root = _root(location)
    runs = _find_runs(root)
    paths = []
    with scratch_dir() as scratch:
        for name, folders in runs.items():
            paths.append(_import_run(root, name, folders, new_run, scratch, progress))
    return paths


def _root(location: Any) -> Path:
    if location is None:
        raise ConfigError("give the TensorBoard log folder to import (the --logdir of "
                          "tensorboard)")
    root = Path(location).expanduser()
    if not root.exists():
        raise ConfigError(f"{str(root)!r} does not exist: give a TensorBoard log folder")
    return root


def _find_runs(root: Path) -> dict[str, list[Any]]:
    """``{run name: [accumulator of each folder]}``, hparams-only sub-folders merged
    into their parent folder's run."""
    from tensorboard.backend.event_processing import io_wrapper

    if root.is_file():  # one events file: a run of its own
        return {root.parent.name or ".": [_load(root)]}
    folders = sorted(Path(d) for d in io_wrapper.GetLogdirSubdirectories(str(root)))
    if not folders:
        raise ConfigError(f"no TensorBoard event files (events.out.tfevents.*) found in "
                          f"{str(root)!r} or its sub-folders")
    runs: dict[Path, list[Any]] = {}
    for folder in folders:  # sorted: a parent comes before its sub-folders
        acc = _load(folder)
        parent = folder.parent
        if folder != root and parent in runs and _hparams_only(acc):
            runs[parent].append(acc)
        else:
            runs[folder] = [acc]
    return {_name(root, folder): accs for folder, accs in runs.items()}


def _name(root: Path, folder: Path) -> str:
    relative = folder.relative_to(root).as_posix()
    return (root.resolve().name or str(root)) if relative == "." else relative


def _load(path: Path) -> Any:
    from tensorboard.backend.event_processing import event_accumulator as ea

    # 0 keeps every event; the default keeps a sample (e.g. 10,000 scalars a tag).
    acc = ea.EventAccumulator(str(path), size_guidance={kind: 0 for kind in
                                                        ea.DEFAULT_SIZE_GUIDANCE})
    acc.Reload()
    acc.unilog_path = path  # where the run's other files (projector config) are
    return acc


def _hparams_only(acc: Any) -> bool:
    tags = acc.Tags()
    others = [kind for kind in ("images", "audio", "histograms", "tensors", "run_metadata")
              if tags.get(kind)]
    return bool(_plugin_content(acc, _HPARAMS)) and not others and not tags.get("graph") \
        and not tags.get("meta_graph")


def _plugin_content(acc: Any, plugin: str) -> dict[str, bytes]:
    try:
        return acc.PluginTagToContent(plugin)
    except KeyError:  # no tag of that plugin
        return {}


class _Reader:
    """One run's folders read into rows, config and status; losses noted in ``lost``."""

    def __init__(self, scratch: str):
        self.rows = Rows()
        self.config: dict[str, Any] = {}
        self.status = "finished"
        self.start: float | None = None
        self.lost: list[tuple[str, str, int]] = []
        self._scratch = scratch

    def read(self, acc: Any) -> None:
        """Everything of one folder."""
        tags = acc.Tags()
        for tag in tags["scalars"]:
            for event in acc.Scalars(tag):
                self._add(event, tag, event.value)
        for tag in tags["images"]:
            caption = _description(acc, tag)
            for event in acc.Images(tag):
                self._add(event, tag, self._convert(tag, tbv.image_from_bytes,
                                                    event.encoded_image_string, caption,
                                                    self._scratch))
        for tag in tags["histograms"]:
            for event in acc.Histograms(tag):
                h = event.histogram_value
                self._add(event, tag, self._convert(tag, tbv.histogram_from_limits,
                                                    h.bucket_limit, h.bucket, h.min, h.max))
        for tag in tags["tensors"]:
            self._tensors(acc, tag)
        self._hparams(acc)
        self._unrepresented(acc, tags)
        if _has_events(acc):  # the writer's first event: when the run started
            first = acc.FirstEventTimestamp()
            self.start = first if self.start is None else min(self.start, first)

    def _add(self, event: Any, key: str, value: Any) -> None:
        if value is not None:
            self.rows.add(event.step, event.wall_time, key, value)

    def _convert(self, tag: str, convert: Callable[..., Any], *args: Any) -> Any:
        why: list[str] = []
        value = convert(*args, why)
        for reason in why:
            self.lost.append((reason, tag, 1))
        return value

    def _tensors(self, acc: Any, tag: str) -> None:
        from tensorboard.util import tensor_util

        plugin = acc.SummaryMetadata(tag).plugin_data.plugin_name
        events = acc.Tensors(tag)
        if plugin == _HPARAMS:
            return  # read from the plugin's metadata in _hparams
        convert = {"scalars": _scalar, "histograms": tbv.histogram_from_buckets,
                   "text": tbv.text_from_array, "images": None}.get(plugin, False)
        if convert is False:
            self.lost.append((_PLUGIN_NAMES.get(plugin, f"tensors of the {plugin or 'unnamed'}"
                                                f" plugin"), tag, len(events)))
            return
        key = tag[:-len(tbv.TEXT_SUFFIX)] if plugin == "text" and tag.endswith(
            tbv.TEXT_SUFFIX) else tag
        for event in events:
            array = tensor_util.make_ndarray(event.tensor_proto)
            if plugin == "images":  # [width, height, encoded image, ...]
                for i, encoded in enumerate(array[2:]):
                    self._add(event, tag if i == 0 else f"{tag}/{i}", self._convert(
                        tag, tbv.image_from_bytes, encoded, None, self._scratch))
            else:
                self._add(event, key, self._convert(tag, convert, array))

    def _hparams(self, acc: Any) -> None:
        from tensorboard.plugins.hparams import metadata

        content = _plugin_content(acc, _HPARAMS)
        start = content.get(metadata.SESSION_START_INFO_TAG)
        if start is not None:
            info = metadata.parse_session_start_info_plugin_data(start)
            self.config.update({key: tbv.hparam_value(value)
                                for key, value in info.hparams.items()})
        end = content.get(metadata.SESSION_END_INFO_TAG)
        if end is not None:
            from tensorboard.plugins.hparams import api_pb2

            if metadata.parse_session_end_info_plugin_data(end).status == \
                    api_pb2.STATUS_FAILURE:
                self.status = "failed"

    def _unrepresented(self, acc: Any, tags: dict[str, Any]) -> None:
        for tag in tags["audio"]:
            self.lost.append(("audio", tag, len(acc.Audio(tag))))
        if tags.get("graph"):
            self.lost.append(("graphs", "graph", 1))
        if tags.get("meta_graph"):
            self.lost.append(("graphs", "meta_graph", 1))
        for tag in tags.get("run_metadata", ()):
            self.lost.append(("run metadata (graph profiles)", tag, 1))
        projector = Path(acc.unilog_path) / _PROJECTOR_CONFIG
        if projector.is_file():
            for name in _embeddings(projector):
                self.lost.append((_PLUGIN_NAMES["projector"], name, 1))


def _scalar(array: Any, why: list[str]) -> float | None:
    if array.size != 1:
        why.append("scalar tensors of more than one value")
        return None
    return float(array.reshape(()))


def _description(acc: Any, tag: str) -> str:
    # Only values written with metadata have it (unilog's backend puts captions there).
    metadata = acc.summary_metadata.get(tag)
    return metadata.summary_description if metadata is not None else ""


def _has_events(acc: Any) -> bool:
    try:
        acc.FirstEventTimestamp()
    except ValueError:  # a folder whose files hold no event yet
        return False
    return True


def _embeddings(path: Path) -> list[str]:
    """The tensors a projector config names (at least one entry: the config itself)."""
    from google.protobuf import text_format
    from tensorboard.plugins.projector import projector_config_pb2

    config = projector_config_pb2.ProjectorConfig()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), config)
    except (text_format.ParseError, UnicodeDecodeError):
        return [str(path.name)]
    return [e.tensor_name or e.tensor_path for e in config.embeddings] or [str(path.name)]


def _import_run(root: Path, name: str, accs: list[Any], new_run: Callable[..., Any],
                scratch: str, progress: bool) -> Path:
    reader = _Reader(scratch)
    for acc in accs:
        reader.read(acc)
    origin = os.path.abspath(accs[0].unilog_path)
    # Events may carry wall times of their own (add_scalar(walltime=...)), earlier
    # than the writer's first event: the run started at the earliest of all.
    times = [t for t in (reader.start, reader.rows.first_time) if t is not None]
    target = new_run(origin=origin, name=name, config=unflatten(reader.config) or None,
                     created=min(times, default=None))
    with Progress(len(reader.rows), f"tensorboard {name}", progress) as bar:
        reader.rows.write(target, bar)
    for what, example, count in reader.lost:
        target.unrepresented(what, example, count)
    return target.finish(reader.status)
