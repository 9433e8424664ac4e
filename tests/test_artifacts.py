"""Tests of the local, content-addressed artifact store (unilog.artifacts)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from unilog import artifacts
from unilog.artifacts import (
    ARTIFACT_NAME_RULE,
    ArtifactStore,
    find_artifact,
    parse_ref,
    validate_name,
)
from unilog.errors import ArtifactError


def blobs(run_dir: Path) -> list[str]:
    objects = run_dir / "artifacts" / "objects"
    return sorted(p.name for p in objects.iterdir())


def tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "proj" / "run-1"


@pytest.fixture
def store(run_dir: Path) -> ArtifactStore:
    return ArtifactStore(run_dir, "run-1")


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- round trips ---------------------------------------------------------------------------


def test_single_file_round_trip_is_byte_identical(tmp_path, store):
    # Larger than one 1 MiB chunk, and not a multiple of it.
    data = os.urandom(3 * (1 << 20) + 17)
    src = write(tmp_path / "model.pt", data)

    art = store.add(src, type="model", metadata={"epochs": 3})

    assert (art.name, art.version, art.ref, art.type) == ("model.pt", 0, "model.pt:v0", "model")
    assert art.aliases == ["latest"]
    assert [(f.path, f.size) for f in art.files] == [("model.pt", len(data))]
    out = Path(art.download(tmp_path / "out"))
    assert tree(out) == {"model.pt": data}
    assert Path(art.file()).read_bytes() == data
    assert Path(art.file()).parent == store.root / "model.pt" / "v0" / "files"
    assert store.get("model.pt").metadata == {"epochs": 3}


def test_directory_round_trip_keeps_relative_paths(tmp_path, store):
    src = tmp_path / "ckpt"
    files = {
        "weights.bin": os.urandom(5000),
        "config.json": b'{"lr": 0.1}',
        "sub/deeper/opt.bin": os.urandom(100),
        "sub/empty.txt": b"",
    }
    for rel, data in files.items():
        write(src / rel, data)

    art = store.add(src, name="ckpt")

    assert [f.path for f in art.files] == sorted(files)
    assert tree(Path(art.download(tmp_path / "dl"))) == files
    assert tree(Path(art.download())) == files
    with pytest.raises(ArtifactError, match="4 files"):
        art.file()


def test_manifest_and_aliases_files_on_disk(tmp_path, store):
    art = store.add(write(tmp_path / "a.txt", "hello"), name="notes", aliases="best")
    manifest = json.loads((store.root / "notes" / "v0.json").read_text())
    assert manifest == art.to_json()
    assert set(manifest) == {
        "name", "version", "type", "aliases", "metadata", "digest", "created", "run_id", "files",
    }
    assert manifest["run_id"] == "run-1"
    assert manifest["aliases"] == ["best", "latest"]
    assert manifest["files"][0]["sha256"] in blobs(store.run_dir)
    assert json.loads((store.root / "notes" / "aliases.json").read_text()) == {
        "latest": 0,
        "best": 0,
    }


def test_default_name_is_sanitised(tmp_path, store):
    art = store.add(write(tmp_path / "my model (1).pt", "x"))
    assert art.name == "my-model--1-.pt"
    assert store.add(write(tmp_path / ".hidden", "y")).name == "hidden"
    assert store.add(write(tmp_path / "d" / "objects", "z")).name == "objects-artifact"


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_are_followed(tmp_path, store):
    real = write(tmp_path / "real" / "data.bin", b"payload")
    src = tmp_path / "src"
    src.mkdir()
    try:
        os.symlink(real, src / "link.bin")
        os.symlink(real.parent, src / "linked_dir", target_is_directory=True)
    except OSError:
        pytest.skip("symlinks not permitted here")
    art = store.add(src, name="linked")
    assert tree(Path(art.download(tmp_path / "out"))) == {
        "link.bin": b"payload",
        "linked_dir/data.bin": b"payload",
    }
    os.symlink(src, src / "loop", target_is_directory=True)
    with pytest.raises(ArtifactError, match="loop"):
        store.add(src, name="linked")


def test_download_restores_an_edited_file_and_skips_intact_ones(tmp_path, store):
    art = store.add(write(tmp_path / "w.bin", b"original"), name="w")
    path = Path(art.file())
    path.write_bytes(b"tampered")  # same size, newer mtime
    assert Path(art.file()).read_bytes() == b"original"
    before = path.stat().st_mtime_ns
    art.download()
    assert path.stat().st_mtime_ns == before


# --- deduplication and versions ------------------------------------------------------------


def test_identical_content_is_stored_once(tmp_path, store):
    data = os.urandom(2048)
    src = tmp_path / "d"
    write(src / "a.bin", data)
    write(src / "b" / "copy.bin", data)
    write(src / "other.bin", b"other")

    store.add(src, name="first")
    assert len(blobs(store.run_dir)) == 2
    # Another name holding the same bytes reuses the blobs too.
    store.add(write(tmp_path / "again.bin", data), name="second")
    assert len(blobs(store.run_dir)) == 2
    assert not any(name.startswith(".") for name in blobs(store.run_dir))


def test_same_content_makes_no_new_version_but_moves_aliases(tmp_path, store):
    src = write(tmp_path / "m.pt", b"weights-1")
    v0 = store.add(src, name="m")
    store.add(write(src, b"weights-2"), name="m")
    assert store.get("m").version == 1

    again = store.add(src, name="m", aliases=["best"], metadata={"ignored": True})

    assert again.version == 1
    assert again.aliases == ["best", "latest"]
    assert [a.version for a in store.list()] == [0, 1]
    assert not (store.root / "m" / "v2.json").exists()
    assert store.get("m", "best").version == 1
    assert store.get("m", "v0").digest == v0.digest != again.digest


def test_versions_count_up_and_latest_moves(tmp_path, store):
    src = tmp_path / "f.txt"
    for i in range(3):
        art = store.add(write(src, f"content {i}"), name="f")
        assert art.version == i
        assert store.get("f").version == i
    assert [a.ref for a in store.list()] == ["f:v0", "f:v1", "f:v2"]
    assert store.get("f", "v0").aliases == []
    assert store.get("f", "v2").aliases == ["latest"]
    for i in range(3):
        assert Path(store.get("f", f"v{i}").file()).read_text() == f"content {i}"
    assert store.get("f", "v3") is None
    assert store.get("f", "nope") is None
    assert store.get("missing") is None


def test_best_alias_moves_between_versions(tmp_path, store):
    src = tmp_path / "ckpt.pt"
    store.add(write(src, "epoch 0"), name="ckpt", aliases=["best"])
    store.add(write(src, "epoch 1"), name="ckpt")
    assert store.get("ckpt", "best").version == 0
    store.add(write(src, "epoch 2"), name="ckpt", aliases=["best", "final"])

    assert store.get("ckpt", "best").version == 2
    assert store.get("ckpt", "v0").aliases == []
    assert store.get("ckpt", "v2").aliases == ["best", "final", "latest"]
    # The raw manifests agree: no alias is left on two versions.
    on_disk = [json.loads((store.root / "ckpt" / f"v{i}.json").read_text()) for i in range(3)]
    assert [m["aliases"] for m in on_disk] == [[], [], ["best", "final", "latest"]]


def test_overwriting_the_source_after_add_changes_nothing(tmp_path, store):
    src = write(tmp_path / "live.bin", b"A" * 10_000)
    art = store.add(src, name="live")
    write(src, b"B" * 10_000)
    assert Path(store.get("live").file()).read_bytes() == b"A" * 10_000
    assert Path(art.download(tmp_path / "x")).joinpath("live.bin").read_bytes() == b"A" * 10_000


def test_concurrent_adds_get_distinct_versions(tmp_path, store):
    n = 8
    sources = [write(tmp_path / f"src{i}.bin", f"thread {i}".encode() * 1000) for i in range(n)]
    barrier = threading.Barrier(n)
    results, errors = [], []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            results.append(store.add(sources[i], name="shared"))
        except BaseException as exc:  # surfaced below; a thread cannot fail the test itself
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert sorted(a.version for a in results) == list(range(n))
    assert [a.version for a in store.list()] == list(range(n))
    contents = {Path(a.file()).read_bytes() for a in store.list()}
    assert contents == {s.read_bytes() for s in sources}
    assert store.get("shared").version == n - 1
    assert len(blobs(store.run_dir)) == n


def test_two_stores_on_one_run_share_the_lock(tmp_path, run_dir):
    a, b = ArtifactStore(run_dir, "run-1"), ArtifactStore(run_dir, "run-1")
    assert a._lock is b._lock


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["../x", "/abs", "a/b", "", ".hidden", ".", "..", "a" * 200, "a b", "objects", 42]
)
def test_bad_names_are_refused_naming_the_rule(tmp_path, store, name):
    with pytest.raises(ArtifactError) as info:
        validate_name(name)
    assert repr(name) in str(info.value)
    assert ARTIFACT_NAME_RULE in str(info.value)
    with pytest.raises(ArtifactError):
        store.add(write(tmp_path / "f", "x"), name=name)
    assert not (store.root / "x").exists()


@pytest.mark.parametrize("name", ["model", "a", "model.pt", "A-b_c.9", "-x", "_", "a" * 128])
def test_good_names_pass(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("model", ("model", "latest")),
        ("model:v3", ("model", "v3")),
        ("model:best", ("model", "best")),
        ("my.model-1:latest", ("my.model-1", "latest")),
    ],
)
def test_parse_ref(ref, expected):
    assert parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["model:", "model:bad alias", "a/b:v1", ":v1", "../x", "m:a:b"])
def test_parse_ref_refuses_bad_refs(ref):
    with pytest.raises(ArtifactError):
        parse_ref(ref)


def test_non_json_metadata_is_refused_naming_the_key(tmp_path, store):
    src = write(tmp_path / "f", "x")
    with pytest.raises(ArtifactError, match="'bad'"):
        store.add(src, metadata={"ok": 1, "bad": object()})
    with pytest.raises(ArtifactError, match="'nested'"):
        store.add(src, metadata={"nested": {"deep": {1, 2}}})
    with pytest.raises(ArtifactError, match="dict"):
        store.add(src, metadata=[("a", 1)])
    with pytest.raises(ArtifactError):
        store.add(src, metadata={1: "int key"})
    assert store.list() == []


def test_metadata_is_a_snapshot(tmp_path, store):
    meta = {"scores": [1, 2]}
    store.add(write(tmp_path / "f", "x"), name="f", metadata=meta)
    meta["scores"].append(3)
    assert store.get("f").metadata == {"scores": [1, 2]}


@pytest.mark.parametrize("aliases", [["v3"], ["bad alias"], [""], [3]])
def test_bad_aliases_are_refused(tmp_path, store, aliases):
    with pytest.raises(ArtifactError, match="alias"):
        store.add(write(tmp_path / "f", "x"), name="f", aliases=aliases)


@pytest.mark.parametrize("type_", ["", "  ", None, 3])
def test_type_must_be_a_non_empty_str(tmp_path, store, type_):
    with pytest.raises(ArtifactError, match="type"):
        store.add(write(tmp_path / "f", "x"), name="f", type=type_)


def test_missing_path_raises_file_not_found(tmp_path, store):
    missing = tmp_path / "nope.pt"
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        store.add(missing)


def test_download_refuses_a_manifest_path_escaping_root(tmp_path, store):
    store.add(write(tmp_path / "f.txt", "x"), name="evil")
    manifest_path = store.root / "evil" / "v0.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][0]["path"] = "../../escaped.txt"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unsafe"):
        store.get("evil").download(tmp_path / "out" / "deep")
    assert not (tmp_path / "escaped.txt").exists()


@pytest.mark.parametrize("forged", [
    "../escaped.txt", "/abs.txt", "a/../../escaped.txt", "sub/../../escaped.txt", "a//b",
    "./x", "x/.", "", "a\0b", 7,
])
def test_download_refuses_every_forged_path(tmp_path, store, forged):
    store.add(write(tmp_path / "f.txt", "x"), name="evil")
    manifest_path = store.root / "evil" / "v0.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][0]["path"] = forged
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unsafe"):
        store.get("evil").download(tmp_path / "out" / "deep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.txt", "out", "runs"]


@pytest.mark.skipif(os.name == "nt", reason="':' and '\\' are not file-name characters")
@pytest.mark.parametrize("name", [
    "epoch=3-12:30:00.ckpt", "C:x", ":", "a\\b", "\\lead", "..\\up", "x" * 255,
])
def test_file_names_with_colons_and_backslashes_round_trip(tmp_path, store, name):
    """Regression: ':' (ISO times) and '\\' were refused as "unsafe" by download(),
    and a name near the 255-byte limit overflowed the temporary file's name."""
    src = tmp_path / "ckpt"
    write(src / name, "top")
    write(src / "sub" / name, "nested")
    folder = store.add(src, name="ckpt")
    single = store.add(src / name, name="one")

    expected = {name: b"top", f"sub/{name}": b"nested"}
    assert tree(Path(folder.download())) == expected
    assert tree(Path(folder.download(tmp_path / "out"))) == expected
    assert Path(single.file()).name == name and Path(single.file()).read_bytes() == b"top"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted([name, "sub"])


# --- resolution across runs ----------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch):
    """A fake time.time() for the store, so 'newest' does not depend on timer resolution."""
    now = [1000.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(artifacts.time, "time", tick)
    return now


def test_find_artifact_prefers_current_run_then_newest_run(tmp_path, clock):
    project = tmp_path / "proj"
    # Run ids whose sort order is the opposite of their age.
    old = ArtifactStore(project / "z-old", "z-old")
    new = ArtifactStore(project / "a-new", "a-new")
    old.add(write(tmp_path / "m.pt", "old weights"), name="model", aliases=["best"])
    new.add(write(tmp_path / "m.pt", "new weights"), name="model")
    new.add(write(tmp_path / "m.pt", "newest weights"), name="model")

    here = project / "current"
    found = find_artifact("model", here, project)
    assert (found.run_id, found.version) == ("a-new", 1)
    assert Path(found.file()).read_text() == "newest weights"
    # Only the old run has "best"; the new run's v0 is newer than the old run's v0.
    assert find_artifact("model:best", here, project).run_id == "z-old"
    assert find_artifact("model:v0", here, project).run_id == "a-new"

    # The current run's own artifact wins even though it is not the newest.
    mine = ArtifactStore(here, "current")
    mine.add(write(tmp_path / "m.pt", "mine"), name="model")
    old.add(write(tmp_path / "m.pt", "even newer"), name="model")
    assert find_artifact("model:latest", here, project).run_id == "current"
    assert find_artifact("model:latest", None, project).run_id == "z-old"


def test_find_artifact_with_a_pinned_run(tmp_path, clock):
    project = tmp_path / "proj"
    old = ArtifactStore(project / "run-old", "run-old")
    new = ArtifactStore(project / "run-new", "run-new")
    old.add(write(tmp_path / "m.pt", "old"), name="model")
    new.add(write(tmp_path / "m.pt", "new"), name="model")

    pinned = find_artifact("run-old/model:latest", project / "run-new", project)
    assert pinned.run_id == "run-old"
    assert Path(pinned.file()).read_text() == "old"
    assert find_artifact("run-new/model", project / "run-new", project).run_id == "run-new"
    with pytest.raises(ArtifactError, match="no artifact matches"):
        find_artifact("run-gone/model", project / "run-new", project)
    with pytest.raises(ArtifactError, match="run id"):
        find_artifact("../model", project / "run-new", project)


def test_find_artifact_error_lists_existing_refs(tmp_path, clock):
    project = tmp_path / "proj"
    other = ArtifactStore(project / "other", "other")
    other.add(write(tmp_path / "m.pt", "1"), name="model", aliases=["best"])
    other.add(write(tmp_path / "m.pt", "2"), name="model")
    here = ArtifactStore(project / "here", "here")
    here.add(write(tmp_path / "d.csv", "a,b"), name="data")

    with pytest.raises(ArtifactError) as info:
        find_artifact("model:final", here.run_dir, project)
    message = str(info.value)
    assert "'model:final'" in message
    assert "data:v0 (latest)" in message
    assert "other/model:v0 (best)" in message
    assert "other/model:v1 (latest)" in message

    for i in range(25):
        here.add(write(tmp_path / "x", str(i)), name=f"x{i:02d}")
    with pytest.raises(ArtifactError, match=r"and 8 more") as info:
        find_artifact("nothing", here.run_dir, project)
    assert "x19:v0" not in str(info.value)

    with pytest.raises(ArtifactError, match="no artifacts"):
        find_artifact("model", tmp_path / "empty" / "run", tmp_path / "empty")


def test_find_artifact_pinned_to_an_unknown_run_says_what_was_searched(tmp_path, clock):
    project = tmp_path / "proj"
    other = ArtifactStore(project / "other", "other")
    other.add(write(tmp_path / "m.pt", "1"), name="model")
    with pytest.raises(ArtifactError) as info:
        find_artifact("gone/model:v0", project / "here", project)
    message = str(info.value)
    assert "'gone/model:v0'" in message and "no run 'gone'" in message
    assert str(project) in message and "other/model:v0" in message


# --- references pinned to a run, with backends that can fetch ------------------------------


def test_a_pinned_reference_is_not_answered_by_a_backend(recorded):
    """Regression (issue 10 A13): a backend's download_artifact cannot be told the
    run, so asking it for "<run id>/name" dropped the run and returned any copy."""
    import unilog

    run = unilog.init(backends={"recorder": {"label": "fetcher", "fetchable": {"remote": "x"}}})
    try:
        with pytest.raises(ArtifactError) as info:
            run.use_artifact("elsewhere/remote:best")
        message = str(info.value)
        assert "'elsewhere/remote:best'" in message and "no run 'elsewhere'" in message
        assert "backends (recorder) were not asked" in message
        assert "fetch_thread" not in recorded["fetcher"]  # never asked
        assert run.use_artifact("remote:best").source == "recorder"  # unpinned: asked
    finally:
        run.finish()


def test_a_pinned_reference_never_resolves_to_another_runs_copy_in_mlflow(tmp_path):
    """Regression (issue 10 A13), as found: MLflow returned the producer's copy for a
    reference pinned to a run id that does not exist."""
    pytest.importorskip("mlflow")
    import shutil

    import unilog

    options = {"mlflow": {"tracking_uri": "sqlite:///" + (tmp_path / "mlflow.db").as_posix()}}
    weights = write(tmp_path / "weights.bin", b"theirs")
    with unilog.init(project="share", backends=options) as producer:
        producer.log_artifact(weights, name="model")
    shutil.rmtree(producer.dir)  # the producing run's files are on another machine

    with unilog.init(project="share", backends=options) as consumer:
        for ref in ("no-such-run/model:v0", f"{producer.id}/model:v0", f"{producer.id}/model"):
            with pytest.raises(ArtifactError) as info:
                consumer.use_artifact(ref)
            message = str(info.value)
            assert repr(ref) in message and "no run" in message, message
            assert "backends (mlflow) were not asked" in message, message
        fetched = consumer.use_artifact("model:v0")  # unpinned, MLflow is still asked
        assert fetched.source == "mlflow"
        assert Path(fetched.file()).read_bytes() == b"theirs"


def test_all_is_sorted_and_complete():
    assert artifacts.__all__ == sorted(artifacts.__all__)
    public = {
        n for n, v in vars(artifacts).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == artifacts.__name__
    }
    assert public <= set(artifacts.__all__)
    for name in artifacts.__all__:
        assert getattr(artifacts, name).__doc__ or name == "ARTIFACT_NAME_RULE"
