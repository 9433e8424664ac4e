"""``run.add_tags``: tags added after ``init`` reach the local record and every
backend, in order with the rows, and a later ``unilog sync`` opens backends with
all of them (docs/logging.md, *Tags*)."""

from __future__ import annotations

import json
import os
import warnings

import pytest

import unilog

from .test_contract import _reader

BACKENDS = ["csv", "tensorboard", "mlflow", "wandb", "swanlab", "neptune"]
#: SwanLab 0.10.3 cannot change a run's tags once it started (docs/backends.md).
INIT_TAGS_ONLY = {"swanlab"}


#: One run covers both ways a backend is served: in unilog's logging process (the
#: default) and on a thread of the training process.
IN_THREAD = {"tensorboard", "wandb"}


def test_added_tags_reach_every_backend():
    backends = {name: {"isolation": "thread"} if name in IN_THREAD else {}
                for name in BACKENDS}
    run = unilog.init(project="tags", backends=backends, tags=["a"], mode="offline",
                      on_error="raise")
    run.log({"loss": 1.0})
    run.add_tags(["b", "c"])
    run.log({"loss": 0.5})
    run.add_tags("b")  # already there: nothing changes, nothing is sent
    assert run.tags == ("a", "b", "c")
    assert json.loads((run.dir / "run.json").read_text())["tags"] == ["a", "b", "c"]
    report = run.finish()
    assert not any(counts.get("errors") for counts in report.values()), report
    assert {name: "process" not in report[name] for name in BACKENDS} == {
        name: name == "csv" or name in IN_THREAD for name in BACKENDS}
    for name in BACKENDS:
        tags = _reader(name)(run.dir)["tags"]
        expected = {"a"} if name in INIT_TAGS_ONLY else {"a", "b", "c"}
        assert tags == expected, (name, tags)


def test_tags_arrive_in_order_with_rows(recorded):
    run = unilog.init(backends=["recorder"], tags=["a"])
    run.log({"x": 1})
    run.log({"x": 2})
    run.add_tags("b", ["c", "b"])
    run.log({"x": 3})
    run.add_tags(["a", "c"])  # nothing new: no hook call
    run.tags = run.tags + ("d",)  # wandb's way
    run.finish()
    data = recorded["default"]
    assert data["open"].tags == ("a",)
    # (rows the backend had received when the tags came, all of the run's tags)
    assert data["tags"] == [(2, ("a", "b", "c")), (3, ("a", "b", "c", "d"))]
    assert unilog.read_run(run.dir).manifest["tags"] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("bad, named", [
    ("", "''"), ([""], "''"), (["ok", 3], "3 (int)"), ([None], "None (NoneType)"),
    (5, "int 5"), (b"x", "bytes b'x'"),
])
def test_bad_tags_are_a_config_error(bad, named):
    run = unilog.init(backends=["csv"], tags=["a"])
    with pytest.raises(unilog.ConfigError, match="non-empty str|iterable of str") as info:
        run.add_tags(bad)
    assert named in str(info.value)
    assert run.tags == ("a",)  # nothing added, not even the good ones
    run.finish()
    assert unilog.read_run(run.dir).manifest["tags"] == ["a"]


def test_tags_cannot_be_removed_by_assignment():
    run = unilog.init(backends=["csv"], tags=["a", "b"])
    with pytest.raises(unilog.ConfigError, match="cannot be removed.*'a'"):
        run.tags = ("b", "c")
    assert run.tags == ("a", "b")
    run.tags = ["b", "a", "c"]  # every current tag kept: the new one is added
    assert run.tags == ("a", "b", "c")
    run.finish()


def test_disabled_run_only_changes_run_tags():
    run = unilog.init(backends=["csv"], tags=["a"], mode="disabled")
    run.add_tags(["b"])
    assert run.tags == ("a", "b") and run.dir is None
    with pytest.raises(unilog.ConfigError):
        run.add_tags([""])
    run.finish()


def test_add_tags_after_finish_warns_once(recorded):
    run = unilog.init(backends=["recorder"], tags=["a"])
    run.finish()
    with pytest.warns(unilog.UnilogWarning, match="add_tags.*after finish"):
        run.add_tags("late")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run.add_tags("later")  # warned once
    assert run.tags == ("a",)
    assert recorded["default"]["tags"] == []
    assert unilog.read_run(run.dir).manifest["tags"] == ["a"]


def test_sync_opens_backends_with_every_tag():
    run = unilog.init(project="tags", backends=["csv"], tags=["a"], mode="offline")
    run.log({"loss": 1.0})
    run.add_tags(["b", "c"])
    run.log({"loss": 0.5})
    run.finish()
    unilog.sync(run.dir, backends=["tensorboard"], mode="offline")
    assert _reader("tensorboard")(run.dir)["tags"] == {"a", "b", "c"}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_adds_no_tags_to_its_parents_run(recorded):
    run = unilog.init(backends=["csv", "recorder"], tags=["a"])
    pid = os.fork()
    if pid == 0:  # a DataLoader worker, say
        code = 0
        try:
            with pytest.warns(unilog.UnilogWarning, match="forked"):
                run.add_tags("child")
            code = 0 if run.tags == ("a",) else 3
        except BaseException:
            code = 4
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    run.finish()
    assert run.tags == ("a",) and recorded["default"]["tags"] == []
    assert unilog.read_run(run.dir).manifest["tags"] == ["a"]
