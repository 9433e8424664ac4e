"""Reader of the Neptune backend's offline operation log, for the tests."""

from __future__ import annotations

from pathlib import Path


def read_neptune(run_dir: Path) -> dict:
    """{"config": {flat key: str(value)}, "series": {key: [(step, float)]}, "artifacts": {"name:vN": {relpath: sha256}}, "tags": set[str], "name": str | None, "description": str | None (the last value assigned)} replayed from the offline operation log(s) ``<run_dir>/neptune/offline/run__*/data-*.log`` (one JSON operation a line; a last line cut by a crash is ignored)."""
    import base64
    import hashlib
    import json

    folders = sorted((Path(run_dir) / "neptune" / "offline").glob("run__*"))
    config, series, tags, files, uploads, system = {}, {}, set(), {}, {}, {}
    for folder in folders:
        logs = sorted(folder.glob("data-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        for log in logs:
            for line in log.read_text(encoding="utf-8").splitlines():
                try:
                    op = json.loads(line)["obj"]
                except ValueError:  # a line cut by a crash
                    continue
                kind, path = op["type"], op["path"]
                key = "/".join(path)
                if path[0] == "parameters" and kind.startswith("Assign"):
                    config["/".join(path[1:])] = str(op["value"])
                elif kind == "LogFloats":
                    series.setdefault(key, []).extend(
                        (v["step"], v["value"]) for v in op["values"])
                elif kind == "AssignString" and path in (["sys", "name"],
                                                         ["sys", "description"]):
                    system[path[1]] = op["value"]
                elif kind == "AddStrings" and path == ["sys", "tags"]:
                    tags.update(op["values"])
                elif kind == "UploadFile":
                    source = (Path(op["file_path"]) if op.get("file_path")
                              else folder / "upload_path" / op["tmp_file_name"])
                    uploads[key] = source.read_bytes()
                elif kind == "LogImages":  # decoded, checked to be PNG by the tests
                    for v in op["values"]:
                        files.setdefault(key, []).append(
                            (v["step"], base64.b64decode(v["value"]["data"])))
    artifacts: dict = {}
    for key, data in uploads.items():
        parts = key.split("/")
        if parts[0] == "artifacts" and len(parts) > 4 and parts[3] == "files":
            ref = f"{parts[1]}:{parts[2]}"
            artifacts.setdefault(ref, {})["/".join(parts[4:])] = hashlib.sha256(
                data).hexdigest()
    return {"config": config, "series": series, "artifacts": artifacts, "tags": tags,
            "images": files, "uploads": uploads, "name": system.get("name"),
            "description": system.get("description")}
