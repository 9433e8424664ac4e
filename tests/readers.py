"""Readers that get a run back out of each backend's own storage, for the tests.

Each reader is self-contained (its imports inside it) and returns the same shape,
so one contract test can compare backends:
``{"config": {flat key: str(value)}, "series": {key: [(step, float)]},
"artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str]}``.
"""

from __future__ import annotations

from pathlib import Path

from unilog._config import flatten_config


def flat_config(config: dict) -> dict[str, str]:
    """A nested config as the readers compare it: ``{"a/b": str(value)}``."""
    return {key: str(value) for key, value in flatten_config(config).items()}


def read_tensorboard(run_dir: Path) -> dict:
    """{"config": {flat key: str(value)}, "series": {key: [(step, float)]}, "artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str]} from the event files under run_dir/"tensorboard"."""
    import json

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    suffix = "/text_summary"  # how unilog (like torch's add_text) names text tags
    acc = EventAccumulator(str(Path(run_dir) / "tensorboard"),
                           size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()

    def strings(tag: str) -> list[list[str]]:
        """Every text event of a tag, in order, as its list of strings."""
        if tag + suffix not in tags["tensors"]:
            return []
        return [[s.decode("utf-8") for s in e.tensor_proto.string_val]
                for e in acc.Tensors(tag + suffix)]

    configs = strings("config")  # one event per change: the last is the config
    artifacts = {}
    for tag in tags["tensors"]:
        if tag.startswith("artifacts/") and tag.endswith(suffix):
            for (text,) in strings(tag[: -len(suffix)]):
                record = json.loads(text)
                artifacts[f"{record['name']}:v{record['version']}"] = {
                    f["path"]: f["sha256"] for f in record["files"]}
    return {
        "config": flat_config(json.loads(configs[-1][0])) if configs else {},
        # summary/<key> scalars are run.summary values, not logged series
        "series": {tag: [(e.step, e.value) for e in acc.Scalars(tag)]
                   for tag in tags["scalars"] if not tag.startswith("summary/")},
        "artifacts": artifacts,
        "tags": {t for event in strings("run/tags") for t in event},
    }


def read_mlflow(run_dir: Path) -> dict:
    """{"config": {flat key: str(value)}, "series": {key: [(step, float)]}, "artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str], "status": MLflow's run status} for the unilog run at run_dir, read through MlflowClient using the tracking_uri and run id that the run's run.json records under backends.mlflow.info."""
    import hashlib
    import json
    import tempfile
    import warnings

    with warnings.catch_warnings():  # SQLAlchemy's, when this process opens the store first
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy",
                                module=r"mlflow\.store")
        from mlflow.tracking import MlflowClient

        manifest = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
        info = manifest["backends"]["mlflow"]["info"]
        client = MlflowClient(info["tracking_uri"])
        run = client.get_run(info["id"])
    run_id = run.info.run_id
    series = {}
    for key in run.data.metrics:
        if key.startswith("summary/"):  # run.summary values, not logged series
            continue
        history = sorted(client.get_metric_history(run_id, key),
                         key=lambda m: (m.step, m.timestamp))
        series[key] = [(m.step, m.value) for m in history]
    artifacts = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tag in run.data.tags:
            if not tag.startswith("unilog.artifact."):
                continue
            name = tag[len("unilog.artifact."):]
            for folder in client.list_artifacts(run_id, name):
                dest = Path(tmp, folder.path)  # one folder each: downloads land in <dest>/vN
                dest.mkdir(parents=True)
                local = Path(client.download_artifacts(run_id, folder.path, str(dest)))
                record = json.loads((local / "unilog-artifact.json").read_text("utf-8"))
                artifacts[f"{name}:v{record['version']}"] = {
                    p.relative_to(local).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in sorted(local.rglob("*"))
                    if p.is_file() and p.relative_to(local).as_posix() != "unilog-artifact.json"}
    return {
        "status": run.info.status,
        "config": dict(run.data.params),
        "series": series,
        "artifacts": artifacts,
        "tags": {v for k, v in run.data.tags.items() if k.startswith("unilog.tag.")},
    }
