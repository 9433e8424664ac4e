"""``unilog import mlflow URI --run-id ID | --experiment NAME``: MLflow runs become unilog runs.

Read with ``mlflow.tracking.MlflowClient``. What becomes what (docs/import.md):

- params -> the config, values as the strings MLflow holds (MLflow keeps no
  types), ``a/b`` keys nested as unilog flattens them; a run unilog wrote has
  its typed config back from its ``unilog/config.json`` artifact;
- metric histories -> rows at their steps, all keys of a step in one row at
  the step's earliest timestamp (ms -> s);
- ``mlflow.runName`` -> name, ``mlflow.note.content`` -> notes, ``unilog.group``
  (else ``mlflow.parentRunId``) -> group, ``unilog.tags`` -> tags; any other tag
  not named ``mlflow.*``/``unilog.*`` -> a tag ``key=value``; MLflow's system
  tags (``mlflow.user``, ``mlflow.source.*``...) are reported as unrepresented;
- a run unilog wrote: ``summary/<key>`` metrics and ``unilog.summary.<key>``
  tags -> its summary;
- artifacts -> unilog artifacts (see :mod:`unilog.importers._mlflow_files`);
- FINISHED/FAILED/KILLED -> finished/failed/killed; a run still RUNNING (or
  SCHEDULED) is imported as killed (a unilog run that ended has one of those
  three), and that is reported as unrepresented.

The new run gets a fresh unilog id; ``imported.from`` in its ``run.json`` is
``<tracking URI> run <MLflow run id>``.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

from unilog.errors import ConfigError
from unilog.importers import _mlflow_files as files
from unilog.importers._common import Progress, Rows, scratch_dir, unflatten

STATUS = {"FINISHED": "finished", "FAILED": "failed", "KILLED": "killed"}
SUMMARY_METRIC, SUMMARY_TAG, CHANGED_TAG = "summary/", "unilog.summary.", "unilog.param_changed."
_PAGE = 1000


def import_runs(location: Any, *, new_run: Callable[..., Any], run_id: str | None = None,
                tracking_uri: str | None = None, experiment: str | None = None,
                progress: bool = False) -> list[Path]:
    """Import the MLflow run ``run_id``, or every run of ``experiment`` (a name), from
    the tracking store at ``location`` or ``tracking_uri``; the new run directories."""
    uri = _uri(location, tracking_uri)
    if (run_id is None) == (experiment is None):
        raise ConfigError("give an MLflow run id (--run-id) or an experiment name "
                          "(--experiment), one of the two")
    from unilog_plugins._mlflow_store import _CHATTY_LOGGERS, _import_mlflow, _redact_uri
    from unilog_plugins._sdk import quiet_info

    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # its telemetry reaches out
    sdk = _import_mlflow()
    shown = _redact_uri(uri)
    with quiet_info(*_CHATTY_LOGGERS):  # "Creating initial MLflow database tables..."
        client = sdk.MlflowClient(uri)
        runs = ([_run(client, sdk, shown, run_id)] if run_id is not None
                else _experiment_runs(client, shown, experiment))
    return [_import(client, run, shown, new_run, progress) for run in runs]


def _uri(location: Any, tracking_uri: str | None) -> str:
    """The tracking URI; a path to an existing file is a SQLite database."""
    if location is not None and tracking_uri is not None and str(location) != tracking_uri:
        raise ConfigError(f"give the tracking URI once: the location {str(location)!r} and "
                          f"tracking_uri {tracking_uri!r} differ")
    uri = str(location if location is not None else tracking_uri
              or os.environ.get("MLFLOW_TRACKING_URI") or "")
    if not uri:
        raise ConfigError("give the MLflow tracking URI to import from (sqlite:///mlflow.db, "
                          "http://host:5000, ...)")
    scheme = urlparse(uri).scheme
    if len(scheme) <= 1:  # no scheme (or a Windows drive letter): a path
        path = Path(uri).expanduser()
        if path.is_file():
            return "sqlite:///" + path.absolute().as_posix()
        raise ConfigError(f"{uri!r} is not a tracking URI nor an existing MLflow database "
                          "file (give sqlite:///path/mlflow.db, http://host:5000, ...)")
    if scheme == "sqlite":
        from unilog_plugins._mlflow_store import sqlite_path

        db = sqlite_path(uri)
        if db is not None and not db.is_file():  # MLflow would make a new, empty one
            raise ConfigError(f"no MLflow database at {str(db)!r} (tracking URI {uri!r})")
    return uri


def _run(client: Any, sdk: Any, shown: str, run_id: str) -> Any:
    try:
        return client.get_run(run_id)
    except sdk.MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise ConfigError(f"no MLflow run {run_id!r} in {shown}") from None
        raise


def _experiment_runs(client: Any, shown: str, name: str) -> list[Any]:
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        names = sorted(e.name for e in client.search_experiments(max_results=50))
        raise ConfigError(f"no MLflow experiment named {name!r} in {shown} (experiments "
                          f"there: {', '.join(map(repr, names)) or 'none'})")
    runs, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], max_results=_PAGE, page_token=token,
                                  order_by=["attributes.start_time ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            break
    if not runs:
        raise ConfigError(f"MLflow experiment {name!r} in {shown} has no runs")
    return runs


def _import(client: Any, run: Any, shown: str, new_run: Callable[..., Any],
            progress: bool) -> Path:
    info, tags = run.info, dict(run.data.tags)
    ours = "unilog.run_id" in tags  # written by unilog's own MLflow backend
    with scratch_dir() as tmp, _no_download_bars():
        scratch = Path(tmp)
        config = (files.read_config(client, info.run_id, scratch) if ours else None) \
            or _params(run.data.params, tags)
        target = new_run(origin=f"{shown} run {info.run_id}", name=info.run_name or None,
                         config=config or None, created=_seconds(info.start_time),
                         **_identity(tags))
        rows, summary = _metrics(client, run, ours)
        with Progress(len(rows), f"mlflow {info.run_name or info.run_id}", progress) as bar:
            rows.write(target, bar)
        summary.update(_summary_tags(tags) if ours else {})
        if summary:
            target.summary(summary)
        files.store_artifacts(client, info.run_id, target, scratch, ours)
    _report(client, run, target)
    status = STATUS.get(info.status, "killed")
    return target.finish(status, ended=_seconds(info.end_time))


@contextmanager
def _no_download_bars() -> Iterator[None]:
    """MLflow's own "Downloading artifacts" bars off while the importer downloads
    (it reads the variable at each download), then the user's setting back."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000


def _params(params: dict[str, str], tags: dict[str, str]) -> dict[str, Any]:
    """Params as strings, nested at ``/``; a value changed later (unilog's tag
    ``unilog.param_changed.<key>``, as MLflow params cannot change) replaces its param."""
    values = dict(params)
    for key, value in tags.items():
        if key.startswith(CHANGED_TAG):
            values[key[len(CHANGED_TAG):]] = value
    return unflatten(values)


def _identity(tags: dict[str, str]) -> dict[str, Any]:
    """notes, group and tags of the new run, from the MLflow run's tags."""
    own = tags.get("unilog.tags")
    try:
        listed = json.loads(own) if own is not None else []
    except ValueError:
        listed = []
    listed = [str(t) for t in listed] if isinstance(listed, list) else []
    listed += [f"{key}={value}" if value else key for key, value in sorted(tags.items())
               if not key.startswith(("mlflow.", "unilog."))]
    return {"notes": tags.get("mlflow.note.content") or None,
            "group": tags.get("unilog.group") or tags.get("mlflow.parentRunId") or None,
            "tags": listed or None}


def _metrics(client: Any, run: Any, ours: bool) -> tuple[Rows, dict[str, Any]]:
    """Every metric's history as rows; for a unilog run, ``summary/<key>`` as summary."""
    rows, summary = Rows(), {}
    for key in sorted(run.data.metrics):
        if ours and key.startswith(SUMMARY_METRIC):
            summary[key[len(SUMMARY_METRIC):]] = run.data.metrics[key]
            continue
        for metric in client.get_metric_history(run.info.run_id, key):
            rows.add(metric.step, metric.timestamp / 1000, key, metric.value)
    return rows, summary


def _summary_tags(tags: dict[str, str]) -> dict[str, Any]:
    summary = {}
    for key, value in tags.items():
        if key.startswith(SUMMARY_TAG):
            try:
                summary[key[len(SUMMARY_TAG):]] = json.loads(value)
            except ValueError:
                summary[key[len(SUMMARY_TAG):]] = value
    return summary


#: MLflow's tags that the import reads (the rest of ``mlflow.*`` is reported).
#: ``mlflow.loggedImages`` indexes the files of ``log_image``, which come along in
#: the artifact ``images``.
_READ_TAGS = {"mlflow.runName", "mlflow.note.content", "mlflow.parentRunId",
              "mlflow.loggedImages"}


def _report(client: Any, run: Any, target: Any) -> None:
    """What the run holds that a unilog run cannot: system tags, a RUNNING status,
    dataset inputs, logged models."""
    info = run.info
    system = sorted(k for k in run.data.tags if k.startswith("mlflow.") and k not in _READ_TAGS)
    for key in system:
        target.unrepresented("MLflow system tags", key)
    if info.status not in STATUS:
        target.unrepresented(f"MLflow status {info.status} (imported as killed: an imported "
                             "run has ended)", info.run_id)
    inputs = getattr(run, "inputs", None)
    for dataset in getattr(inputs, "dataset_inputs", None) or ():
        target.unrepresented("MLflow dataset inputs", dataset.dataset.name)
    for model in _logged_models(client, info):
        target.unrepresented("MLflow logged models", model.name)


def _logged_models(client: Any, info: Any) -> list[Any]:
    search = getattr(client, "search_logged_models", None)  # MLflow 3
    if search is None:
        return []
    try:
        return list(search(experiment_ids=[info.experiment_id],
                           filter_string=f"source_run_id = '{info.run_id}'"))
    except Exception:  # an older server without the endpoint: nothing to report from it
        return []
