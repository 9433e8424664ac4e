"""``run.name = ...`` / ``run.notes = ...`` after ``init`` (wandb's way, common
in sweeps): the local record and every backend get them, in order with the rows
(docs/backends.md, *Name and notes changed during a run*)."""

from __future__ import annotations

import json
import os
import warnings

import pytest

import unilog

from .readers_neptune import read_neptune
from .readers_wandb import wandb_records

BACKENDS = ["csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune"]


def _mlflow_run(run_dir):
    with warnings.catch_warnings():  # SQLAlchemy's, when this process opens the store first
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy",
                                module=r"mlflow\.store")
        from mlflow.tracking import MlflowClient

        info = json.loads((run_dir / "run.json").read_text())["backends"]["mlflow"]["info"]
        return MlflowClient(info["tracking_uri"]).get_run(info["id"])


def _wandb_last_run_record(run_dir):
    paths = sorted(run_dir.glob("wandb/offline-run-*/run-*.wandb"))
    runs = [r.run for path in paths for r in wandb_records(path)
            if r.WhichOneof("record_type") == "run"]
    return runs[-1]


def _tensorboard_last_text(run_dir, tag):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"tensors": 0})
    acc.Reload()
    return acc.Tensors(f"{tag}/text_summary")[-1].tensor_proto.string_val[0].decode()


def test_name_and_notes_reach_every_backend():
    run = unilog.init(project="describe", name="first", notes="before", backends=BACKENDS,
                      mode="offline", on_error="raise")
    run.log({"loss": 1.0})
    run.name = "renamed"
    run.notes = "about"
    run.log({"loss": 0.5})
    assert (run.name, run.notes) == ("renamed", "about")
    manifest = json.loads((run.dir / "run.json").read_text())
    assert (manifest["name"], manifest["notes"]) == ("renamed", "about")  # at once
    report = run.finish()
    assert not any(counts.get("errors") for counts in report.values()), report
    manifest = unilog.read_run(run.dir).manifest
    assert (manifest["name"], manifest["notes"]) == ("renamed", "about")
    tags = _mlflow_run(run.dir).data.tags
    assert (tags["mlflow.runName"], tags["mlflow.note.content"]) == ("renamed", "about")
    last = _wandb_last_run_record(run.dir)
    assert (last.display_name, last.notes) == ("renamed", "about")
    assert [_tensorboard_last_text(run.dir, f"run/{field}") for field in ("name", "notes")] \
        == ["renamed", "about"]
    neptune = read_neptune(run.dir)
    assert (neptune["name"], neptune["description"]) == ("renamed", "about")


def test_description_arrives_in_order_with_rows(recorded):
    run = unilog.init(backends=["recorder"], name="a")
    run.log({"x": 1})
    run.log({"x": 2})
    run.name = "b"
    run.log({"x": 3})
    run.notes = "n"
    run.notes = "n"  # unchanged: no hook call
    run.notes = None
    run.finish()
    data = recorded["default"]
    assert data["open"].name == "a"
    # (rows the backend had received when it came, name, notes)
    assert data["description"] == [(2, "b", None), (3, "b", "n"), (3, "b", None)]
    manifest = unilog.read_run(run.dir).manifest
    assert (manifest["name"], manifest["notes"]) == ("b", None)


@pytest.mark.parametrize("attr, bad, rule", [
    ("name", "", "non-empty str"), ("name", None, "non-empty str"),
    ("name", 3, "non-empty str"), ("notes", 3, "a str or None"),
    ("notes", b"x", "a str or None"),
])
def test_bad_name_or_notes_is_a_config_error(attr, bad, rule):
    run = unilog.init(backends=["csv"], name="a", notes="n")
    with pytest.raises(unilog.ConfigError, match=rule):
        setattr(run, attr, bad)
    assert (run.name, run.notes) == ("a", "n")
    run.finish()
    manifest = unilog.read_run(run.dir).manifest
    assert (manifest["name"], manifest["notes"]) == ("a", "n")


def test_disabled_run_only_changes_the_attributes():
    run = unilog.init(backends=["csv"], name="a", mode="disabled")
    run.name = "b"
    run.notes = "n"
    assert (run.name, run.notes, run.dir) == ("b", "n", None)
    with pytest.raises(unilog.ConfigError):
        run.name = ""
    run.finish()


def test_rename_after_finish_warns_once(recorded):
    run = unilog.init(backends=["recorder"], name="a")
    run.finish()
    with pytest.warns(unilog.UnilogWarning, match="run.name.*after finish"):
        run.name = "late"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.name = "later"  # warned once
    assert run.name == "a" and recorded["default"]["description"] == []
    assert unilog.read_run(run.dir).manifest["name"] == "a"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_does_not_rename_its_parents_run(recorded):
    run = unilog.init(backends=["csv", "recorder"], name="a")
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            with pytest.warns(unilog.UnilogWarning, match="forked"):
                run.name = "child"
            code = 0 if run.name == "a" else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    run.finish()
    assert run.name == "a" and recorded["default"]["description"] == []
    assert unilog.read_run(run.dir).manifest["name"] == "a"
