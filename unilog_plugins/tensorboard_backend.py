"""The TensorBoard backend: event files that ``tensorboard --logdir`` shows.

Files (``<logdir>`` is ``<run dir>/tensorboard`` unless the ``logdir`` option
says otherwise)::

    <logdir>/events.out.tfevents.*           one file per session (a resume adds one)
    <logdir>/hparams/events.out.tfevents.*   the config as hparams, and the numeric
                                             summary values as the hparams metrics

What goes where, at unilog's step and the row's wall time:

- numbers: scalars (``simple_value``, float32) under their key;
- ``Image``: an image summary (PNG); the caption is the tag's description, in
  metadata that carries its own data class: TensorBoard's default (Rust) loader
  replaces the metadata of an image value that has none with its own, without
  the description, so only ``--load_fast=false`` showed captions before;
- ``Histogram``: a histogram (bucket limits are the bin edges, the first
  bucket, at the lowest edge, is empty), with min/max/sum/sum of squares;
- ``Text``: text under ``<key>/text_summary``; ``Table``: its markdown there too;
- the config: hparams (flattened with ``/``; numbers, strings and bools as
  such, anything else as its ``str``) in the ``hparams`` sub-folder, and the
  whole config as pretty JSON in text ``config``. The sub-folder is rewritten
  when the config or the summary changes, because TensorBoard keeps only the
  first hparams record it finds in a folder; it never holds anything else, so
  rewriting it cannot cost a scalar (the trap of ``add_hparams(name=".")``).
  Each run is its own HParams session group (TensorBoard averages the sessions
  of a group into one row, so unilog's ``group`` there would merge a sweep);
  the run's ending is the session's status: finished is SUCCESS, failed and
  killed are FAILURE (TensorBoard has no ABORTED), and text ``run/status``
  says which it was;
- name, project, group, notes, tags: text ``run/<field>`` at step 0 (tags as a
  one-column table); tags added later (``run.add_tags``): text ``run/tags`` again,
  all of the run's tags, at the latest step (the last ``run/tags`` event is the set);
  a name or notes changed later (``run.name = ...``): text ``run/name`` and
  ``run/notes`` again at the latest step (the last event is the value);
- ``run.summary``: scalars or text under ``summary/<key>`` at the latest step;
- artifacts: TensorBoard has no artifact store, so each version is recorded as
  text ``artifacts/<name>`` (JSON: version, type, aliases, digest, each file's
  path, sha256 and blob in the run directory).

JSON in text summaries is indented by four spaces: TensorBoard renders it as a
code block and ``json.loads`` still reads it.

The events are built from tensorboard's protos and framed by tensorboard's own
``RecordWriter``, not through ``torch.utils.tensorboard`` or tensorboardX: both
import torch (~1.7 s and much memory) for users who may log nothing but floats.
Nor through ``EventFileWriter``: it hands every event to a thread of its own,
and this backend already runs on its worker thread; writing synchronously
there costs ~30 us an event against ~50-70 us through that second thread
(measured, 4 scalars an event), which decides how fast a training loop may
log before TensorBoard's queue fills up.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import shlex
import socket
import struct
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import unilog
from unilog.backend import (MEDIA_KINDS, Backend, Capabilities, KeyRule, Row, RunInfo,
                            flatten_config, program)

logger = logging.getLogger("unilog")

HPARAMS_FOLDER = "hparams"
TEXT_SUFFIX = "/text_summary"  # what torch's add_text appends; readers expect it
_EVENT_GLOB = "events.out.tfevents.*"
# TensorBoard's hparams Status has UNKNOWN, SUCCESS, FAILURE and RUNNING only (2.21;
# ABORTED is not in it): a killed run did not complete, which FAILURE says; the
# exact ending is in text run/status.
_STATUS = {"finished": "STATUS_SUCCESS", "failed": "STATUS_FAILURE", "killed": "STATUS_FAILURE"}
_PNG_COLORSPACE = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # PNG color type -> channels
_HUGE = 2**1023  # ints beyond this cannot become a float
_FILE_IDS = itertools.count()  # two files opened in the same second get distinct names


def record_writer(pb: SimpleNamespace, file: Any) -> Any:
    """TensorBoard's ``RecordWriter`` on ``file``; with google-crc32c installed (the
    tensorboard extra has it), one whose checksums are computed in C. TensorBoard's
    own CRC32C is pure Python: 45% of this backend's time per row, measured
    (docs/performance.md). The bytes written are the same."""
    try:
        import google_crc32c
    except ImportError:
        return pb.RecordWriter(file)
    if google_crc32c.implementation != "c":  # its Python fallback is no faster
        return pb.RecordWriter(file)
    crc, pack = google_crc32c.value, struct.pack

    def masked(data: bytes) -> bytes:  # TFRecord's masking of a CRC32C
        x = crc(data)
        return pack("<I", (((x >> 15) | (x << 17)) + 0xA282EAD8) & 0xFFFFFFFF)

    class CRecordWriter(pb.RecordWriter):
        def write(self, data: bytes) -> None:
            header = pack("<Q", len(data))
            self._writer.write(header + masked(header) + data + masked(data))

    return CRecordWriter(file)


def _load_sdk() -> SimpleNamespace:
    """The tensorboard modules this backend uses, imported on ``open``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.hparams import api_pb2
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.plugins.hparams import plugin_data_pb2 as hparams_data_pb2
    from tensorboard.plugins.image import metadata as image_metadata
    from tensorboard.plugins.text import plugin_data_pb2 as text_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    return SimpleNamespace(
        RecordWriter=RecordWriter, Event=event_pb2.Event,
        SourceMetadata=event_pb2.SourceMetadata, Summary=summary_pb2.Summary,
        Value=summary_pb2.Summary.Value, Metadata=summary_pb2.SummaryMetadata,
        HistogramProto=summary_pb2.HistogramProto, TensorProto=tensor_pb2.TensorProto,
        Shape=tensor_shape_pb2.TensorShapeProto, api=api_pb2, hparams_meta=hparams_metadata,
        hparams_data=hparams_data_pb2, text_data=text_data_pb2, image_meta=image_metadata,
        BLOB_SEQUENCE=summary_pb2.DataClass.Value("DATA_CLASS_BLOB_SEQUENCE"),
    )


_SURROGATES = re.compile("[\ud800-\udfff]")


class TensorBoardKeyRule(KeyRule):
    """Tags are any text protobuf can encode: a lone surrogate (a key made from an
    undecodable file name) becomes ``_``; everything else is kept as it is."""

    def adapt(self, key: str) -> str:
        """The key with each lone surrogate replaced."""
        return _SURROGATES.sub(self.replacement, key)


class EventFile:
    """One event file, written synchronously on the caller's (the worker's) thread.

    Named and started like ``EventFileWriter``'s: ``events.out.tfevents.<time>.<host>.
    <pid>.<n>``, first event the file version. ``flush`` hands the bytes to the
    operating system, which is what survives a killed process.
    """

    def __init__(self, pb: SimpleNamespace, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / (f"events.out.tfevents.{_file_time(folder):010d}."
                              f"{socket.gethostname()}.{os.getpid()}.{next(_FILE_IDS)}")
        self._file = open(self.path, "wb")  # noqa: SIM115 (kept open until close)
        self._record = record_writer(pb, self._file)
        self.write(pb.Event(wall_time=time.time(), file_version="brain.Event:2",
                            source_metadata=pb.SourceMetadata(writer="unilog")))

    def write(self, event: Any) -> None:
        """Append one ``Event``."""
        self._record.write(event.SerializeToString())

    def flush(self) -> None:
        """Hand what was written to the operating system."""
        self._file.flush()

    def close(self) -> None:
        """Flush to the disk and close."""
        if not self._file.closed:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


class TensorBoardBackend(Backend):
    """Writes the run as TensorBoard event files (no torch needed)."""

    name = "tensorboard"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=True,
                                key_rule=TensorBoardKeyRule())
    requires = ("tensorboard",)
    extra = "tensorboard"
    flush_interval = 1.0

    def __init__(self, logdir: str | os.PathLike[str] | None = None, **options: Any):
        """``logdir``: the local folder of the event files (``{project}``, ``{name}``
        and ``{id}`` are replaced); default ``<run dir>/tensorboard``."""
        super().__init__(**options)
        if logdir is not None and not isinstance(logdir, (str, os.PathLike)):
            raise TypeError(f"logdir must be a path or None, not {type(logdir).__name__}")
        self.logdir_option = logdir
        self._notes_written = False  # a run/notes event was written (describe)

    # -- lifecycle -----------------------------------------------------------------

    def import_sdk(self, run: RunInfo) -> None:
        """tensorboard's protobuf and plugin modules (they import numpy)."""
        self._pb = _load_sdk()

    def open(self, run: RunInfo) -> dict[str, Any]:
        """Create the event file (a new one on resume, beside the old ones)."""
        self._pb = _load_sdk()
        self._run = run
        self.logdir = self._resolve_logdir(run)
        fresh = not any(self.logdir.glob(_EVENT_GLOB))  # for the sync ledger: nothing here yet
        self._writer = EventFile(self._pb, self.logdir)
        # Summary and config records go at the latest step; on resume that is
        # the step before the one the run goes on at, not 0.
        self._step = max(0, getattr(run, "start_step", 0) - 1)
        self._closed = False
        self._hparams: dict[str, Any] = {}
        self._metrics: dict[str, float] = {}
        self._hparams_dirty = False
        self._last_config: str | None = None
        self._text_meta = self._pb.Metadata(plugin_data=self._pb.Metadata.PluginData(
            plugin_name="text", content=self._pb.text_data.TextPluginData(
                version=0).SerializeToString()))
        self._write_run_fields(run)
        return {"id": run.id, "location": str(self.logdir), "logdir": str(self.logdir),
                "view": f"{program('tensorboard')} --logdir {shlex.quote(str(self.logdir))}",
                "fresh": fresh}

    def destination(self, run: RunInfo) -> str:
        """The log folder."""
        if self.logdir_option is None:
            return str((run.dir / "tensorboard").absolute())
        return str(run.resolve_dir(self.logdir_option).absolute())

    def _resolve_logdir(self, run: RunInfo) -> Path:
        if self.logdir_option is None:
            return run.backend_dir("tensorboard")
        return run.expand_dir(self.logdir_option)

    def _write_run_fields(self, run: RunInfo) -> None:
        values = [self._text_value(f"run/{field}", value)
                  for field, value in (("name", run.name), ("project", run.project),
                                       ("group", run.group), ("notes", run.notes)) if value]
        if run.tags:
            values.append(self._text_value("run/tags", list(run.tags)))
        self._notes_written = bool(run.notes)
        self._add(values, step=0, wall_time=run.start_time or time.time())

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """Text ``run/tags`` again with all of the run's tags, at the latest step."""
        self._add([self._text_value("run/tags", list(tags))])

    def describe(self, name: str, notes: str | None) -> None:
        """Text ``run/name`` and ``run/notes`` again, at the latest step (notes that
        became None: an empty ``run/notes``, if any was written before)."""
        values = [self._text_value("run/name", name)]
        if notes or self._notes_written:
            values.append(self._text_value("run/notes", notes or ""))
            self._notes_written = True
        self._add(values)

    def flush(self) -> None:
        """Write the hparams if they changed and push buffered events to the file."""
        if self._closed:  # a timed flush may still come after close
            return
        if self._hparams_dirty:
            self._write_hparams()
        self._writer.flush()

    def close(self, status: str, exit_code: int) -> None:
        """Record the run's ending (text ``run/status`` and the hparams session's
        status), flush and close the writer."""
        self._closed = True
        try:
            self._add([self._text_value("run/status", status)])
            self._write_hparams(status)
        finally:
            self._writer.close()

    # -- rows ----------------------------------------------------------------------

    def log_rows(self, rows: list[Row]) -> None:
        """One event per row: every value of a step in one summary.

        Every event is built before any is written, so a value protobuf refuses
        (a key with a lone surrogate) fails the call before it stores anything:
        the core then sends the rows again without that key, and none twice.
        """
        Value, Summary, Event = self._pb.Value, self._pb.Summary, self._pb.Event
        events = []
        add = events.append
        for row in rows:
            values = []
            for key, value in row.values.items():
                kind = type(value)
                if kind is float:
                    values.append(Value(tag=key, simple_value=value))
                elif kind is int:
                    values.append(Value(tag=key, simple_value=_scalar(value)))
                else:
                    media = self.convert_media(lambda m, k=key: self._media_value(k, m),
                                               key, row.step, value)
                    if media is not None:
                        values.append(media)
            if row.step > self._step:
                self._step = row.step
            if values:
                add(Event(wall_time=row.time, step=row.step, summary=Summary(value=values)))
        write = self._writer.write
        for event in events:
            write(event)

    def _media_value(self, key: str, media: Any) -> Any:
        """The summary value of a media object (called through ``convert_media``)."""
        if isinstance(media, unilog.Image):
            return self._image_value(key, media)
        if isinstance(media, unilog.Histogram):
            return self._pb.Value(tag=key, histo=self._histogram(media))
        if isinstance(media, unilog.Text):
            return self._text_value(key, media.text)
        if isinstance(media, unilog.Table):
            return self._text_value(key, media.to_markdown())
        raise TypeError(f"unsupported value {type(media).__name__}")

    def _image_value(self, key: str, image: Any) -> Any:
        png = image.png_bytes()
        pb = self._pb
        encoded = pb.Summary.Image(height=image.height, width=image.width,
                                   colorspace=_PNG_COLORSPACE.get(png[25], 3),
                                   encoded_image_string=png)
        if image.caption is None:
            return pb.Value(tag=key, image=encoded)
        # TensorBoard shows a tag's description (from its first record) under the images.
        # The Rust data server (the default loader) keeps an image value's metadata only
        # when it names its data class, else it substitutes a blank one and the caption
        # is lost; the Python loader reads the description either way. The content is
        # what both loaders make of a legacy image: a converted blob sequence.
        meta = pb.image_meta.create_summary_metadata(key, image.caption,
                                                     converted_to_tensor=True)
        meta.data_class = pb.BLOB_SEQUENCE
        return pb.Value(tag=key, image=encoded, metadata=meta)

    def _histogram(self, histogram: Any) -> Any:
        counts, edges, values = histogram.counts, histogram.edges, histogram.values
        if values is not None:
            total, squares = float(values.sum()), float(values @ values)
        else:  # only the bins are known: use their midpoints
            mids = (edges[:-1] + edges[1:]) / 2
            total, squares = float(counts @ mids), float(counts @ (mids * mids))
        # A bucket spans (previous limit, its limit]: the leading empty bucket makes
        # the first edge a limit too, as torch's writer does.
        return self._pb.HistogramProto(
            min=float(edges[0]), max=float(edges[-1]), num=float(counts.sum()), sum=total,
            sum_squares=squares, bucket_limit=edges.tolist(), bucket=[0.0, *counts.tolist()])

    def _text_value(self, key: str, text: str | list[str]) -> Any:
        """A text-plugin value: one string (markdown), or a list shown as a table."""
        pb = self._pb
        if isinstance(text, str):
            tensor = pb.TensorProto(dtype="DT_STRING", string_val=[text.encode("utf-8")],
                                    tensor_shape=pb.Shape())
        else:
            tensor = pb.TensorProto(dtype="DT_STRING", string_val=[t.encode("utf-8") for t in text],
                                    tensor_shape=pb.Shape(dim=[pb.Shape.Dim(size=len(text))]))
        return pb.Value(tag=key + TEXT_SUFFIX, metadata=self._text_meta, tensor=tensor)

    def _add(self, values: list[Any], step: int | None = None,
             wall_time: float | None = None) -> None:
        if values:
            self._writer.write(self._pb.Event(
                wall_time=time.time() if wall_time is None else wall_time,
                step=self._step if step is None else step,
                summary=self._pb.Summary(value=values)))

    # -- config, summary, artifacts ---------------------------------------------------

    def log_config(self, config: dict[str, Any]) -> None:
        """The config as text ``config`` (when it changed) and as hparams (at the next flush)."""
        text = json_block(config)
        if text != self._last_config:
            self._last_config = text
            self._add([self._text_value("config", text)])
        self._hparams = {key: hparam_value(value) for key, value in flatten_config(config).items()}
        self._hparams_dirty = True

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Numbers as scalars, anything else as text, under ``summary/<key>``."""
        values = []
        for key, value in summary.items():
            tag = f"summary/{key}"
            if type(value) in (int, float):
                values.append(self._pb.Value(tag=tag, simple_value=_scalar(value)))
                self._metrics[tag] = _scalar(value)
                self._hparams_dirty = True
            else:
                text = value if isinstance(value, str) else json.dumps(value, default=str)
                values.append(self._text_value(tag, text))
        self._add(values)

    def log_artifact(self, artifact: Any) -> None:
        """A text record of the artifact version: TensorBoard cannot store the files."""
        run_dir = Path(self._run.dir)
        record = {
            "name": artifact.name, "version": artifact.version, "ref": artifact.ref,
            "type": artifact.type, "aliases": list(artifact.aliases), "digest": artifact.digest,
            "metadata": artifact.metadata,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size,
                       "blob": _relative(Path(f.blob), run_dir)} for f in artifact.files],
        }
        self._add([self._text_value(f"artifacts/{artifact.name}", json_block(record))])

    # -- hparams --------------------------------------------------------------------

    def _write_hparams(self, status: str | None = None) -> None:
        """Rewrite the hparams sub-folder: a new file first, then the old ones go,
        so a crash in between leaves one complete file (the older one)."""
        folder = self.logdir / HPARAMS_FOLDER
        old = sorted(folder.glob(_EVENT_GLOB)) if folder.is_dir() else []
        writer = EventFile(self._pb, folder)
        try:
            now = time.time()
            writer.write(self._pb.Event(wall_time=now, summary=self._session_start()))
            for tag, value in self._metrics.items():
                writer.write(self._pb.Event(wall_time=now, step=self._step,
                                            summary=self._pb.Summary(value=[
                                                self._pb.Value(tag=tag, simple_value=value)])))
            if status is not None:
                writer.write(self._pb.Event(wall_time=now, summary=self._session_end(status)))
        finally:
            writer.close()
        for path in old:
            path.unlink(missing_ok=True)
        self._hparams_dirty = False

    def _session_start(self) -> Any:
        # No group name: TensorBoard then makes the session (this run's hparams folder)
        # a group of its own. Sessions sharing a group name show as one row with their
        # metrics averaged, so unilog's group (a sweep) there merged the sweep's runs.
        info = self._pb.hparams_data.SessionStartInfo(
            group_name="", start_time_secs=self._run.start_time)
        for key, value in self._hparams.items():
            if isinstance(value, bool):
                info.hparams[key].bool_value = value
            elif isinstance(value, float):
                info.hparams[key].number_value = value
            else:
                info.hparams[key].string_value = value
        return self._hparams_summary(self._pb.hparams_meta.SESSION_START_INFO_TAG,
                                     session_start_info=info)

    def _session_end(self, status: str) -> Any:
        name = _STATUS.get(status, "STATUS_UNKNOWN")
        if name not in self._pb.api.Status.keys():  # a TensorBoard without that status
            name = "STATUS_UNKNOWN"
        info = self._pb.hparams_data.SessionEndInfo(
            status=self._pb.api.Status.Value(name),
            end_time_secs=time.time())
        return self._hparams_summary(self._pb.hparams_meta.SESSION_END_INFO_TAG,
                                     session_end_info=info)

    def _hparams_summary(self, tag: str, **data: Any) -> Any:
        content = self._pb.hparams_data.HParamsPluginData(
            version=self._pb.hparams_meta.PLUGIN_DATA_VERSION, **data)
        meta = self._pb.Metadata(plugin_data=self._pb.Metadata.PluginData(
            plugin_name=self._pb.hparams_meta.PLUGIN_NAME, content=content.SerializeToString()))
        return self._pb.Summary(value=[self._pb.Value(tag=tag, metadata=meta)])


# -- helpers ---------------------------------------------------------------------------


def _file_time(folder: Path) -> int:
    """The time for a new file's name: now, or later than every event file already
    in ``folder``. TensorBoard reads a folder's files in name order and skips a file
    that sorts before one it has read, so a resumed run's file (made in the same
    second as the last one, say) must sort after them all."""
    latest = 0
    for path in folder.glob(_EVENT_GLOB):
        stamp = path.name.split(".")[3]
        if stamp.isdigit():
            latest = max(latest, int(stamp))
    return max(int(time.time()), latest + 1)


def _scalar(value: int | float) -> float:
    """A number as TensorBoard's float; an int too big even for a double is infinite."""
    if type(value) is int and not -_HUGE < value < _HUGE:
        return float("inf") if value > 0 else float("-inf")
    return float(value)


def hparam_value(value: Any) -> bool | float | str:
    """What an hparam can hold: a bool, a number (as float) or a string (``str`` of the rest)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    return value if isinstance(value, str) else str(value)


def json_block(data: Any) -> str:
    """Pretty JSON indented by four spaces: a code block in TensorBoard's markdown,
    and still valid JSON for ``json.loads``."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return "\n".join("    " + line for line in text.splitlines())


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the TensorBoard backend."""
    register(TensorBoardBackend)
