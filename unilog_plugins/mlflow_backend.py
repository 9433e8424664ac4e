"""The MLflow backend: a run in an MLflow tracking store, through ``MlflowClient``.

Where (first that applies): the ``tracking_uri`` option, ``$MLFLOW_TRACKING_URI``,
else ``sqlite:///<unilog dir>/mlflow/mlflow.db`` with artifacts in
``<unilog dir>/mlflow/artifacts/<experiment>`` (never the working directory).
The experiment is the ``experiment`` option or the project (created if
missing); the MLflow run is named after the unilog run.

What goes where:

- numbers: metrics at unilog's step and the row's time, sent with
  ``log_batch`` (at most 1,000 per request), values as float;
- ``Image``: ``log_image(key=, step=)`` (MLflow's image-over-steps view) when
  Pillow is there and the key fits its stricter rule, else the artifact
  ``media/<key>/step_<n>.png``; ``Histogram``/``Table``/``Text``: artifacts
  ``media/<key>/step_<n>.json|.csv|.txt`` (the local record's paths);
- config: one param per flattened key (``a/b``), ``str(value)``, values over
  6,000 characters cut with a marker; the whole config as artifact
  ``unilog/config.json``. MLflow params cannot change: a value that changes
  after it was logged stays, the new one goes to tag
  ``unilog.param_changed.<key>`` (and the config artifact), with one warning;
- tags ``unilog.tag.<tag>`` (value: the tag) and ``unilog.tags`` (JSON list),
  set at open; tags added later (``run.add_tags``) add their ``unilog.tag.<tag>``
  and set ``unilog.tags`` again to the whole list;
  notes ``mlflow.note.content``, group ``unilog.group``, plus
  ``unilog.run_id``, ``unilog.run_dir``, ``unilog.project``;
- ``run.summary``: numbers as metrics ``summary/<key>`` at the last step,
  anything else as tag ``unilog.summary.<key>`` (JSON);
- artifacts: files under ``<name>/v<N>/`` plus ``<name>/v<N>/unilog-artifact.json``
  (the unilog manifest: type, aliases, metadata, digest, files' sha256), and
  run tag ``unilog.artifact.<name>`` = ``{"aliases": {alias: N}}`` (always
  current, so ``download_artifact`` resolves aliases with one search);
- the ending: ``FINISHED`` / ``FAILED`` / ``KILLED``.

Collisions: config keys, tags and summary keys that become one MLflow name
keep the first; the second is not sent, and the method raises
``KeyCollisionError`` after logging everything else (tags, set at open, are
reported by the first ``log_config``, so a collision never disables the backend).

A SQLite store is created or migrated under an inter-process lock
(``<db>.lock``), so several processes may open a fresh one at once. Offline,
``MLFLOW_DISABLE_TELEMETRY`` defaults to ``true`` before mlflow is imported.
Credentials in the tracking URI (``user:password@``, ``?token=``...) are
redacted in ``run.json`` and in log messages.

Network bounds: MLflow's HTTP client retries for minutes by default. It reads
``MLFLOW_HTTP_REQUEST_TIMEOUT``/``_MAX_RETRIES``/``_BACKOFF_FACTOR`` from the
environment at every request and has no per-client setting, so for a remote
store this backend sets those three (process-wide) from its options, only
where the user has not set them.

A server that cannot be reached (down, hung, 5xx): at ``open``, one short
``BackendError`` ("cannot reach the MLflow tracking server <uri> (connection
refused)"), after at most one ``/health`` check of 2 s for a hung one. Later,
an outage holds what the server misses and sends it when the server answers
again (checked every ``retry_interval`` seconds), so an outage never disables
the backend; what is still missing at ``close`` is named in one error and in
``<run dir>/mlflow/undelivered.json`` (see :mod:`unilog_plugins._mlflow_outage`).

``open`` returns ``view``: the run's URL on a server, else the
``mlflow ui --backend-store-uri ...`` command for the local store. The store's
first-use INFO lines ("Creating initial MLflow database tables...") are not
printed.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import unilog
from unilog.backend import (MEDIA_KINDS, Backend, Capabilities, KeyMapper, PartialBatch, Row,
                            RunInfo, flatten_config, media_stem, safe_path_component)
from unilog.errors import BackendError, ConfigError, KeyCollisionError
from unilog_plugins._mlflow_artifacts import ARTIFACT_TAG, MLflowArtifacts
from unilog_plugins._mlflow_outage import Held, Outage, is_unreachable, short_reason
from unilog_plugins._mlflow_store import MLflowKeyRule  # noqa: F401 (named in the docs)
from unilog_plugins._mlflow_store import (
    _CHATTY_LOGGERS, KEY_RULE, MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE,
    _as_float, _import_mlflow, _redact_uri, _run_url, _store_lock, _ui_command,
    bound_http_requests, fit, is_remote, sqlite_path)
from unilog_plugins._sdk import quiet_info

logger = logging.getLogger("unilog")

METRICS_PER_BATCH = 1000
PARAMS_TAGS_PER_BATCH = 100
CONFIG_ARTIFACT = "unilog/config.json"
UNDELIVERED = "undelivered.json"  # in <run dir>/mlflow/: what the server did not get
CHANGED_TAG = "unilog.param_changed."
STATUS = {"finished": "FINISHED", "failed": "FAILED", "killed": "KILLED"}

_IMAGE_KEY = re.compile(r"[a-zA-Z0-9_\-./ ]+")  # log_image's own, stricter rule


class MLflowBackend(MLflowArtifacts, Backend):
    """Logs a unilog run to an MLflow tracking store (SQLite by default, or a server)."""

    name = "mlflow"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=True,
                                key_rule=KEY_RULE, artifacts=True)
    requires = ("mlflow",)
    extra = "mlflow"
    # MLflow commits every call; flush only retries what an outage holds, when due.
    flush_interval = 1.0

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None,
                 artifact_location: str | None = None, request_timeout: float = 10,
                 max_retries: int = 2, log_config_artifact: bool = True,
                 retry_interval: float = 5.0, **options: Any):
        super().__init__(**options)
        for option, value in (("request_timeout", request_timeout),
                              ("retry_interval", retry_interval)):
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and value > 0):
                raise ConfigError(f"mlflow option {option} must be a number of seconds > 0, "
                                  f"not {value!r}")
        if not (type(max_retries) is int and 0 <= max_retries <= 10):  # mlflow's own limit
            raise ConfigError(f"mlflow option max_retries must be an int from 0 to 10, "
                              f"not {max_retries!r}")
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.artifact_location = artifact_location
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.log_config_artifact = log_config_artifact
        self.retry_interval = retry_interval
        self._net: Outage | None = None  # set at open: the calls that reach the store
        self._client: Any = None  # None: nothing is sent (offline with a remote store)
        self._params: dict[str, str] = {}  # param name -> value MLflow holds
        # Config keys and summary keys become MLflow names under KEY_RULE, each
        # name kept by the first key to take it (a collision is reported once).
        self._param_names = KeyMapper(KEY_RULE)
        self._summary_names = KeyMapper(KEY_RULE)
        self._collisions: list[str] = []  # collisions found, not yet raised
        self._param_tags: dict[str, str] = {}  # param name -> value of its changed tag
        self._tag_names = KeyMapper(KEY_RULE)  # unilog.tag.<tag> -> its MLflow name
        self._tags_sent: list[str] = []  # the run's tags, as unilog.tags holds them
        self._artifacts: dict[str, dict[str, Any]] = {}  # name -> {"aliases": {...}}
        self._alias_warned: set[str] = set()  # artifact names whose alias tag was cut
        self._bad_index: set[tuple[str, str]] = set()  # (run id, name): invalid tag, warned
        self._uploaded: set[tuple[str, int]] = set()
        self._media_names: set[str] = set()
        self._last_step = 0

    # -- open ---------------------------------------------------------------------

    def import_sdk(self, run: RunInfo) -> None:
        """``mlflow.tracking`` and its entities (they import numpy and scipy);
        not for a remote store offline, which ``open`` skips."""
        if run.mode == "offline" and is_remote(self._resolve_uri(run, create=False)):
            return
        if run.mode == "offline":  # mlflow's telemetry starts at import: off, unless told
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        self._sdk = _import_mlflow()

    def open(self, run: RunInfo) -> dict[str, Any]:
        """Find or create the experiment; create the run, or continue it on resume."""
        self._run = run
        # Summary values set before the first row land at the run's last step.
        self._last_step = max(self._last_step, getattr(run, "start_step", 0) - 1)
        uri = self._resolve_uri(run)
        self._shown_uri = shown = _redact_uri(uri)
        remote = is_remote(uri)
        if remote and run.mode == "offline":
            logger.warning("unilog backend 'mlflow': mode='offline' and tracking URI %s is "
                           "remote, so nothing is sent to it in this run; the local record "
                           "keeps everything", shown)
            return {"skipped": "offline", "tracking_uri": shown}
        if run.mode == "offline":  # mlflow's telemetry starts at import: off, unless told
            os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if remote:
            bound_http_requests(self.request_timeout, self.max_retries)
        self._sdk = _import_mlflow()
        self._net = Outage(uri, shown, self.retry_interval, min(2.0, self.request_timeout))
        try:
            self._start(run, uri)
        except Exception as exc:
            if not is_unreachable(exc):
                raise
            self._client = None
            # One line, not MLflow's chained tracebacks (a hundred lines of urllib3).
            raise BackendError(self.name, f"cannot reach the MLflow tracking server {shown} "
                               f"({short_reason(exc)}), so nothing goes to MLflow in this "
                               "run; the local record keeps everything") from None
        url = _run_url(shown, self._experiment_id, self._run_id)
        info = {"id": self._run_id, "experiment_id": self._experiment_id,
                "tracking_uri": shown, "url": url, "view": url or _ui_command(shown)}
        if self._created:  # a new MLflow run holds nothing of this run (for the sync ledger)
            info["fresh"] = True
        return info

    def _start(self, run: RunInfo, uri: str) -> None:
        """The experiment and the run, created or continued."""
        if not self._net.reachable():  # a hung server: seconds, not MLflow's retries
            raise ConnectionError(self._net.probe_error)
        # A fresh SQLite store is created (alembic migrations) by the first query:
        # one process at a time, or concurrent first opens corrupt it.
        # Its INFO lines ("Creating initial MLflow database tables...") are this
        # backend's business, not the training's console.
        with _store_lock(uri), quiet_info(*_CHATTY_LOGGERS):
            self._client = self._sdk.MlflowClient(uri)
            self._experiment_id = self._find_experiment(run, uri)
        continued = self._continue(run)
        self._created = continued is None
        self._run_id = continued or self._create(run)
        self._set_tags(self._run_tags(run))

    def _run_tags(self, run: RunInfo) -> dict[str, str]:
        tags = _run_tags(run)
        # Collisions are reported by the first log_config: raising here would
        # disable the backend.
        tags.update(self._tag_values(run.tags))
        self._tags_sent = list(run.tags)
        return tags

    def _tag_values(self, tags: Any) -> dict[str, str]:
        """``{unilog.tag.<tag> (as MLflow names it): tag}``; collisions noted."""
        prefix, values = "unilog.tag.", {}
        for tag in tags:
            name = self._tag_names.map(prefix + tag)
            if name is not None:
                values[name] = tag
        for owner, later, taken in self._tag_names.take_collisions():
            self._collision("tags", owner[len(prefix):], later[len(prefix):], taken)
        return values

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """Tags added to the run: their ``unilog.tag.<tag>``, and ``unilog.tags`` again."""
        if self._client is None:
            return
        new = [tag for tag in tags if tag not in self._tags_sent]
        values = self._tag_values(new)
        values["unilog.tags"] = json.dumps(list(tags))
        self._set_tags(values)
        self._tags_sent = list(tags)
        self._raise_collisions()

    def describe(self, name: str, notes: str | None) -> None:
        """The run renamed or its notes changed: the tags ``mlflow.runName`` and
        ``mlflow.note.content`` (empty when the notes are None), as MLflow's UI sets them."""
        if self._client is None:
            return
        self._set_tags({"mlflow.runName": name, "mlflow.note.content": notes or ""})

    def _collision(self, what: str, first: str, second: str, name: str,
                   kept_in: str = "the local record has it") -> None:
        self._collisions.append(f"{what} {first!r} and {second!r} both become {name!r}: "
                                f"{first!r} keeps it, {second!r} is not sent ({kept_in})")

    def _raise_collisions(self) -> None:
        """After a method logged everything else: report the collisions it found."""
        if self._collisions:
            found, self._collisions = self._collisions, []
            raise KeyCollisionError(self.name, "; ".join(found) + (
                f" -- MLflow's key rule: characters outside [/\\w.\\- :] become '_', empty "
                f"segments are dropped, '.'/'..' segments become '_'/'__', names over "
                f"{MAX_KEY} characters are shortened"))

    def _resolve_uri(self, run: RunInfo, create: bool = True) -> str:
        uri = self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        folder = Path(run.dir).parent.parent / "mlflow"
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return "sqlite:///" + folder.absolute().as_posix() + "/mlflow.db"

    def destination(self, run: RunInfo) -> str:
        """The tracking store (credentials redacted) and the experiment."""
        uri = _redact_uri(self._resolve_uri(run, create=False))
        return f"{uri} experiment {self.experiment or run.project}"

    def _find_experiment(self, run: RunInfo, uri: str) -> str:
        name = self.experiment or run.project
        found = self._client.get_experiment_by_name(name)
        if found is None:
            try:
                return self._client.create_experiment(
                    name, artifact_location=self._artifact_root(run, uri, name))
            except self._sdk.MlflowException:
                found = self._client.get_experiment_by_name(name)  # created meanwhile?
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            raise ConfigError(f"MLflow experiment {name!r} is deleted; restore it "
                              "(mlflow experiments restore) or log to another experiment")
        return found.experiment_id

    def _artifact_root(self, run: RunInfo, uri: str, name: str) -> str | None:
        """Artifacts of a new experiment: beside a SQLite database (MLflow's own
        default would be ./mlruns in the working directory); elsewhere the store decides."""
        if self.artifact_location:
            return self.artifact_location
        if urlparse(uri).scheme != "sqlite":
            return None
        db = sqlite_path(uri)
        base = db.parent if db is not None else Path(run.dir).parent.parent / "mlflow"
        return str(base / "artifacts" / safe_path_component(name))

    def _continue(self, run: RunInfo) -> str | None:
        """On resume, the MLflow run recorded in the manifest, set running again."""
        previous = (run.previous.get(self.name) or {}).get("info") or {}
        run_id = previous.get("id")
        if not (run.resumed and run_id):
            return None
        try:
            found = self._client.get_run(run_id)
        except self._sdk.MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            found = None
        if found is None or found.info.lifecycle_stage == "deleted":
            logger.warning("unilog backend 'mlflow': the run %s being resumed is not in %s; "
                           "a new MLflow run is created", run_id, self._shown_uri)
            return None
        self._experiment_id = found.info.experiment_id
        self._client.update_run(run_id, status="RUNNING")
        self._params = dict(found.data.params)
        for key, value in found.data.tags.items():
            if key.startswith(ARTIFACT_TAG):
                name = key[len(ARTIFACT_TAG):]
                index = self._alias_index(value, run_id, name)
                if index is not None:
                    self._artifacts[name] = index
            elif key.startswith(CHANGED_TAG):  # changes already recorded: no new warning
                self._param_tags[key[len(CHANGED_TAG):]] = value
        return run_id

    def _create(self, run: RunInfo) -> str:
        created = self._client.create_run(self._experiment_id, run_name=run.name,
                                          start_time=int(run.start_time * 1000))
        return created.info.run_id

    # -- records ------------------------------------------------------------------

    def log_rows(self, rows: list[Row]) -> None:
        """The rows' numbers in ``log_batch`` requests of up to 1,000 whole rows' worth,
        each followed by those rows' media; a failure says how many rows were stored
        (``PartialBatch``), so none is sent twice."""
        if self._client is None:
            return
        stored = 0
        for group in _row_groups(rows, METRICS_PER_BATCH):
            try:
                self._log_group(group)
            except Exception as exc:
                raise PartialBatch(stored, exc) from exc
            stored += len(group)

    def _log_group(self, rows: list[Row]) -> None:
        metric = self._sdk.Metric
        metrics, media = [], []
        for row in rows:
            step, stamp = row.step, int(row.time * 1000)
            for key, value in row.values.items():
                kind = type(value)
                if kind is float:
                    metrics.append(metric(key, value, stamp, step))
                elif isinstance(value, unilog.Media):
                    media.append((key, step, stamp, value))
                else:
                    metrics.append(metric(key, _as_float(value), stamp, step))
            self._last_step = max(self._last_step, step)
        self._log_batch(metrics=metrics)
        if media:
            self._log_media(media)

    def _log_batch(self, metrics: list = (), params: list = (), tags: list = ()) -> None:
        # Metrics alone: a param MLflow refuses must not cost the metrics of a batch.
        for kind, items, size in (("metrics", metrics, METRICS_PER_BATCH),
                                  ("params", params, PARAMS_TAGS_PER_BATCH),
                                  ("tags", tags, PARAMS_TAGS_PER_BATCH)):
            for i in range(0, len(items), size):
                chunk = list(items[i:i + size])
                steps = (min(m.step for m in chunk), max(m.step for m in chunk)) \
                    if kind == "metrics" else None
                self._net.send(Held(kind, len(chunk), functools.partial(
                    self._client.log_batch, self._run_id, **{kind: chunk}, synchronous=True),
                    keys={item.key for item in chunk}, steps=steps))

    def flush(self) -> None:
        """Nothing is buffered by MLflow; during an outage, retry what is held when due."""
        if self._net is not None and self._net.since is not None:
            self._net.retry()

    def _set_tags(self, tags: dict[str, str]) -> None:
        tag = self._sdk.RunTag
        self._log_batch(tags=[tag(k, fit(v, MAX_TAG_VALUE)) for k, v in tags.items()])

    def _log_media(self, media: list[tuple[str, int, int, Any]]) -> None:
        steps = (min(m[1] for m in media), max(m[1] for m in media))
        self._net.send(Held("media", len(media), lambda: self._send_media(media),
                            keys={m[0] for m in media}, steps=steps))

    def _send_media(self, media: list[tuple[str, int, int, Any]]) -> None:
        with self._staging() as staging:
            staged = False
            for key, step, stamp, value in media:
                if value.kind == "image" and self._log_image(key, step, stamp, value):
                    continue
                value.save(staging / self._media_stem(key, step, value.suffix))
                staged = True
            if staged:
                self._client.log_artifacts(self._run_id, str(staging))

    def _log_image(self, key: str, step: int, stamp: int, image: Any) -> bool:
        """MLflow's native, stepped image; False when it cannot take this one."""
        if not self._sdk.pillow or not _IMAGE_KEY.fullmatch(key):
            return False
        pixels = image.to_uint8()
        if pixels.shape[2] == 1:
            pixels = pixels[:, :, 0]
        self._client.log_image(self._run_id, pixels, key=key, step=step, timestamp=stamp,
                               synchronous=True)
        return True

    def _media_stem(self, key: str, step: int, suffix: str) -> Path:
        stem = media_stem(key, step)
        name, n = stem, 0
        while (name.as_posix() + suffix) in self._media_names:  # the same key twice at a step
            n += 1
            name = stem.with_name(f"{stem.name}_{n}")
        self._media_names.add(name.as_posix() + suffix)
        return name


    # -- config and summary ---------------------------------------------------------

    def log_config(self, config: dict[str, Any]) -> None:
        """New keys become params; changed ones a tag; the whole config an artifact."""
        if self._client is None:
            return
        new, changed = [], {}
        for key, value in flatten_config(config).items():
            name = self._param_name(key)
            if name is None:
                continue
            text = fit(str(value), MAX_PARAM_VALUE, self._cut_marker())
            held = self._params.get(name)
            if held is None:
                new.append(self._sdk.Param(name, text))
            elif text != self._param_tags.get(name, held):
                changed[name] = (key, text)
        self._log_batch(params=new)
        self._params.update((p.key, p.value) for p in new)
        if changed:
            self._record_changes(changed)
        if self.log_config_artifact:
            text = json.dumps(config, indent=2, default=str, ensure_ascii=False)
            self._net.send(Held("config", 1, functools.partial(
                self._client.log_text, self._run_id, text, CONFIG_ARTIFACT),
                name=CONFIG_ARTIFACT))
        self._raise_collisions()

    def _param_name(self, key: str) -> str | None:
        name = self._param_names.map(key)
        for owner, later, taken in self._param_names.take_collisions():  # each once
            where = f" and {CONFIG_ARTIFACT}" if self.log_config_artifact else ""
            self._collision("config keys", owner, later, taken, f"the local record{where} have it")
        return name

    def _cut_marker(self) -> str:
        where = f"; full value in {CONFIG_ARTIFACT}" if self.log_config_artifact else ""
        return f"...[truncated{where}]"

    def _record_changes(self, changed: dict[str, tuple[str, str]]) -> None:
        tags = {}
        for name, (key, text) in changed.items():
            if name not in self._param_tags:
                logger.warning("unilog backend 'mlflow': config key %r changed after it was "
                               "logged as param %r, and MLflow params cannot change; the new "
                               "value is in tag %r and %s", key, name,
                               _changed_tag(name), CONFIG_ARTIFACT)
            tags[_changed_tag(name)] = text
            self._param_tags[name] = text
        self._set_tags(tags)

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Numbers as metrics ``summary/<key>`` at the last step; the rest as tags."""
        if self._client is None:
            return
        metrics, tags, stamp = [], {}, int(time.time() * 1000)
        for key, value in summary.items():
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            prefix = "summary/" if number else "unilog.summary."
            name = self._summary_names.map(prefix + key)
            for owner, later, taken in self._summary_names.take_collisions():  # each once
                self._collision("summary keys", owner[len(prefix):], later[len(prefix):], taken)
            if name is None:
                continue
            if number:
                metrics.append(self._sdk.Metric(name, _as_float(value), stamp, self._last_step))
            else:
                tags[name] = json.dumps(value, default=str)
        self._log_batch(metrics=metrics)
        self._set_tags(tags)
        self._raise_collisions()

    # -- artifacts -----------------------------------------------------------------


    # -- end ------------------------------------------------------------------------

    def close(self, status: str, exit_code: int) -> None:
        """Set the MLflow run's status: FINISHED, FAILED or KILLED.

        After one last attempt to send what an outage held, anything the server
        still lacks is written to ``<run dir>/mlflow/undelivered.json`` and raised
        as one short ``BackendError`` that names it."""
        if self._client is None:
            return
        net = self._net
        net.settle()
        if net.since is None and not net.reachable():  # a hung server: seconds, not minutes
            net.begin(net.probe_error)
        net.send(Held("status", 1, functools.partial(
            self._client.set_terminated, self._run_id, STATUS[status]), name=STATUS[status]))
        if net.held or net.lost or net.refused:
            self._report_undelivered(STATUS[status])

    def unconfirmed_steps(self) -> list[tuple[int, int]]:
        """The steps of metrics and media held during an outage (not on the server)."""
        net = getattr(self, "_net", None)
        if net is None:
            return []
        return [item.steps for item in net.held + net.lost + net.refused
                if item.steps is not None]

    def report(self) -> dict[str, Any]:
        """``{"missing": ...}`` in the finish report when the server did not get
        everything (the rows it missed were delivered to unilog's worker, not to it)."""
        net = getattr(self, "_net", None)
        if net is None or not (net.held or net.lost or net.refused):
            return {}
        return {"missing": net.missing()}

    def _report_undelivered(self, status: str) -> None:
        missing = self._net.missing()
        path = Path(self._run.dir) / self.name / UNDELIVERED
        self._net.write(path, missing, self._run_id)
        stuck = (f"; the MLflow run {self._run_id} there still shows RUNNING, not {status}"
                 if "status" in missing else "")
        since = time.strftime("%H:%M:%S", time.localtime(self._net.since or time.time()))
        raise BackendError(self.name, (
            f"the MLflow tracking server {self._shown_uri} could not be reached since {since} "
            f"({self._net.reason}) and is missing: {self._net.describe(missing)}{stuck}. "
            f"The local record has all of it; details in {path}")) from None


def _row_groups(rows: list[Row], size: int) -> list[list[Row]]:
    """Consecutive rows, as many as fit ``size`` values together (a bigger row alone)."""
    groups: list[list[Row]] = []
    count = size
    for row in rows:
        n = len(row.values)
        if count + n > size:
            groups.append([])
            count = 0
        groups[-1].append(row)
        count += n
    return groups


def _run_tags(run: RunInfo) -> dict[str, str]:
    tags = {"unilog.run_id": run.id, "unilog.run_dir": str(run.dir),
            "unilog.project": run.project, "unilog.tags": json.dumps(list(run.tags))}
    if run.group:
        tags["unilog.group"] = run.group
    if run.notes:
        tags["mlflow.note.content"] = run.notes
    return tags


def _changed_tag(name: str) -> str:
    return KEY_RULE.adapt(CHANGED_TAG + name)


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the MLflow backend."""
    register(MLflowBackend)
