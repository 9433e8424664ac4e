"""Reading a unilog run back out of what SwanLab (0.10.3, offline) wrote: its record
stream (``run-<id>.swanlab``, through SwanLab's own ``DataStoreReader`` and
``Record`` proto: internal API, pinned), ``files/config.yaml`` and the artifact
copies under ``files/artifacts/``. Same shape as the readers in ``readers.py``."""

from __future__ import annotations

from pathlib import Path

from .readers import flat_config


def swanlab_run_folders(run_dir: Path) -> list[Path]:
    """SwanLab's run folders under the unilog run (one per session; a resume adds one), oldest first."""
    return sorted(Path(run_dir, "swanlab").glob("run-*/"))


def swanlab_records(folder: Path) -> list:
    """Every ``Record`` of a SwanLab run folder's record stream, in order."""
    from swanlab.proto.swanlab.record.v1.record_pb2 import Record
    from swanlab.sdk.internal.core_python.store import DataStoreReader

    records = []
    for path in sorted(folder.glob("run-*.swanlab")):
        reader = DataStoreReader()
        reader.open(path)
        try:
            for data in reader:  # stops at the last whole record (a torn tail is skipped)
                record = Record()
                record.ParseFromString(data)
                records.append(record)
        finally:
            reader.close()
    return records


def read_swanlab(run_dir: Path) -> dict:
    """{"config": {flat key: str(value)}, "series": {key: [(step, float)]}, "artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str]} from every SwanLab run folder under run_dir/"swanlab" (summary/<key> scalars left out)."""
    import hashlib
    import json

    import yaml

    config, series, artifacts, tags = {}, {}, {}, set()
    for folder in swanlab_run_folders(run_dir):
        config_file = folder / "files" / "config.yaml"
        if config_file.is_file():
            saved = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            config = flat_config({key: entry["value"] for key, entry in saved.items()})
        for record in swanlab_records(folder):
            kind = record.WhichOneof("record_type")
            if kind == "start":
                tags.update(record.start.tags)
            elif kind == "scalar" and not record.scalar.key.startswith("summary/"):
                series.setdefault(record.scalar.key, []).append(
                    (record.scalar.step, record.scalar.value.number))
        for manifest in (folder / "files" / "artifacts").glob("*/v*/unilog-artifact.json"):
            meta = json.loads(manifest.read_text(encoding="utf-8"))
            root = manifest.parent
            artifacts[f"{meta['name']}:v{meta['version']}"] = {
                p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p != manifest}
    return {"config": config, "series": series, "artifacts": artifacts, "tags": tags}
