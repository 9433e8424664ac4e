"""Reader of wandb offline runs (``run-<id>.wandb``), for the tests.

Written for wandb 0.31.0 (pinned in pyproject.toml), which ships no reader: the
file is ``:W&B`` plus 3 version bytes, then 32 KiB blocks of records, each with a
7-byte header (``<IHB``: crc32, length, type: 1 full, 2 first, 3 middle, 4 last
part of a record split across blocks; a block tail under 7 bytes is padding).
A record is a ``wandb.proto.wandb_internal_pb2.Record``.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

from .readers import flat_config

WANDB_KEYS = ("_step", "_runtime", "_timestamp", "_wandb")  # written by wandb itself


def wandb_records(path: Path):
    """Every ``Record`` of one ``.wandb`` file, in order (a torn tail is ignored)."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, pos, parts = Path(path).read_bytes(), 7, []
    assert data[:4] == b":W&B", f"{path} is not a .wandb file"
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 or pos + 7 + length > len(data):
            break
        parts.append(data[pos + 7:pos + 7 + length])
        pos += 7 + length
        if kind in (1, 4):
            record = Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def _nest(items) -> dict:
    """{key: value}, a media value (wandb's nested keys) as a dict of its fields."""
    out: dict = {}
    for item in items:
        *parents, last = list(item.nested_key) or [item.key]
        target = out
        for parent in parents:
            target = target.setdefault(parent, {})
        target[last] = json.loads(item.value_json)
    return out



def read_wandb(run_dir: Path) -> dict:
    """{"config": {flat key: str(value)}, "series": {key: [(step, float)]}, "artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str]}, plus "history" (rows), "summary", "exit_code" and "raw_artifacts", from the offline runs in run_dir/"wandb" (a resume adds one), oldest first."""
    out = {"config": {}, "history": [], "summary": {}, "tags": set(), "raw_artifacts": [],
           "exit_code": None}
    digests: dict = {}  # artifact name -> its contents' digests, in version order
    paths = sorted(Path(run_dir, "wandb").glob("offline-run-*/run-*.wandb"),
                   key=lambda p: p.stat().st_mtime_ns)
    for record in (r for path in paths for r in wandb_records(path)):
        kind = record.WhichOneof("record_type")
        if kind in ("run", "config"):
            updates = record.run.config.update if kind == "run" else record.config.update
            out["config"].update({u.key: json.loads(u.value_json) for u in updates})
            out["tags"].update(record.run.tags)
        elif kind == "history":
            out["history"].append(_nest(record.history.item))
        elif kind == "summary":
            out["summary"].update(_nest(record.summary.update))
        elif kind == "artifact" and record.artifact.type != "run_table":  # a Table's own
            art, versions = record.artifact, digests.setdefault(record.artifact.name, [])
            versions += [] if art.digest in versions else [art.digest]
            out["raw_artifacts"].append({
                "name": art.name, "type": art.type, "aliases": list(art.aliases),
                "metadata": json.loads(art.metadata or "{}"), "description": art.description,
                "version": versions.index(art.digest), "files": {
                    c.path: hashlib.sha256(Path(c.local_path).read_bytes()).hexdigest()
                    for c in art.manifest.contents}})
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    out["config"].pop("_wandb", None)
    out["config"] = flat_config(out["config"])
    out["series"] = {}
    for row in out["history"]:
        for key, value in row.items():
            if key not in WANDB_KEYS and isinstance(value, (int, float)):
                out["series"].setdefault(key, []).append((row["_step"], float(value)))
    out["artifacts"] = {f"{a['name']}:v{a['version']}": a["files"] for a in out["raw_artifacts"]}
    return out
