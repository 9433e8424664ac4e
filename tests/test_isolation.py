"""A record or key that a backend cannot take costs only that record or key.

A backend call that fails is split and sent again (rows, then one row's keys),
so one bad key costs one value, on every backend, and the report counts it
exactly: ``failed`` rows lost entirely, ``failed_values`` values left out of
rows that otherwise landed (docs/errors.md).
"""

from __future__ import annotations

import logging

import pytest

import unilog
from tests.readers import read_tensorboard

N = 1000
BAD_AT = 500


def log_rows_with_one_bad_key(run, bad_key: str) -> None:
    for i in range(N):
        values = {"x": float(i), "y": float(-i)}
        if i == BAD_AT:
            values[bad_key] = 1.0
        run.log(values)


def by_step(rows: list[tuple[int, dict]]) -> dict[int, dict]:
    """The recorder's calls merged per step (a split row arrives in parts)."""
    merged: dict[int, dict] = {}
    for step, values in rows:
        merged.setdefault(step, {}).update(values)
    return merged


def test_one_refused_key_costs_that_value_alone(recorded, caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad"]}})
    log_rows_with_one_bad_key(run, "bad")
    report = run.finish(timeout=20)

    rows = by_step(recorded["default"]["rows"])
    assert list(rows) == list(range(N))
    assert rows[BAD_AT] == {"x": float(BAD_AT), "y": float(-BAD_AT)}
    rec = report["recorder"]
    assert (rec["delivered"], rec["failed"], rec["failed_values"], rec["errors"]) == (
        N + 1, 0, 1, 1)  # N rows + the config; the bad value alone is lost, once
    assert rec["disabled"] is None
    assert unilog.read_run(run.dir).series("bad") == [(BAD_AT, 1.0)]  # the local record has it


def test_a_row_whose_every_key_is_refused_is_one_failed_row(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad", "worse"]}})
    for i in range(20):
        run.log({"bad": 1.0, "worse": 2.0} if i == 7 else {"x": float(i)})
    report = run.finish(timeout=20)

    assert [step for step, _ in recorded["default"]["rows"]] == [
        i for i in range(20) if i != 7]
    rec = report["recorder"]
    assert (rec["failed"], rec["failed_values"], rec["errors"]) == (1, 0, 2)


def test_a_backend_failing_everything_is_not_retried_row_by_row(recorded):
    """A dead backend costs a few calls per batch (the probes), never one per row,
    and is disabled after max_consecutive failed batches; every row is counted once."""
    run = unilog.init(backends={"csv": {}, "recorder": {"fail_every": 1}})
    for i in range(N):
        run.log({"x": float(i), "y": 1.0})
        if i % 50 == 49:
            run.flush(timeout=10)  # 20 batches at least
    report = run.finish(timeout=20)

    rec = report["recorder"]
    assert rec["disabled"] == "disabled after 10 consecutive failures"
    assert rec["failed"] + rec["skipped"] == N
    assert rec["delivered"] == 1  # the config, which this backend takes
    assert recorded["default"]["calls"] <= 10 * (1 + 3)  # 10 batches, 3 probes each


@pytest.mark.parametrize("bad_key", ["name\udcffundecodable", "nul\x00key"],
                         ids=["lone-surrogate", "nul"])
def test_tensorboard_keeps_every_row_beside_a_key_it_cannot_take(bad_key, caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    run = unilog.init(backends=["csv", "tensorboard"])
    log_rows_with_one_bad_key(run, bad_key)
    report = run.finish(timeout=20)

    series = read_tensorboard(run.dir)["series"]
    assert [step for step, _ in series["x"]] == list(range(N))
    assert [step for step, _ in series["y"]] == list(range(N))
    tb = report["tensorboard"]
    assert tb["failed"] == 0
    assert tb["failed_values"] in (0, 1)  # 0 if TensorBoard's key rule made it acceptable
    assert len(unilog.read_run(run.dir).series("x")) == N


def test_a_key_refused_at_every_step_is_left_out_without_a_call_each_time(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad"]}})
    for i in range(300):
        run.log({"x": float(i), "bad": 1.0})
        if i % 100 == 0:
            run.flush(timeout=10)  # several batches: later ones know the key already
    report = run.finish(timeout=20)

    assert by_step(recorded["default"]["rows"]) == {i: {"x": float(i)} for i in range(300)}
    rec = report["recorder"]
    assert (rec["failed"], rec["failed_values"], rec["errors"]) == (0, 300, 2)
    assert rec["refused_keys"] == ["bad"]  # refused the second time it failed alone


def test_nothing_is_sent_twice_while_a_batch_is_split(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad"]}})
    for i in range(64):
        run.log({"a": float(i), "b": float(i), **({"bad": 0.0} if i in (0, 33) else {})})
    run.finish(timeout=20)

    sent = [(step, key) for step, values in recorded["default"]["rows"] for key in values]
    assert len(sent) == len(set(sent)) == 128


def test_a_row_refused_for_its_step_does_not_cost_its_keys_later(recorded):
    """A key failing alone once may be that step's fault (MLflow's SQLite store
    refuses some steps): it is refused for good only when it fails alone again."""
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_steps": [5]}})
    for i in range(20):
        run.log({"x": float(i)})
        if i == 9:
            run.flush(timeout=10)
    report = run.finish(timeout=20)
    assert sorted(by_step(recorded["default"]["rows"])) == [i for i in range(20) if i != 5]
    assert (report["recorder"]["failed"], report["recorder"]["refused_keys"]) == (1, [])


def test_mlflow_refusing_one_row_keeps_that_key_at_other_steps():
    from tests.readers import read_mlflow

    run = unilog.init(backends=["csv", "mlflow"], mode="offline")
    for i in range(3):
        run.log({"x": float(i)})
    run.log({"x": 9.0}, step=2**63 - 1)  # MLflow's SQLite store may refuse this row
    run.finish(timeout=60)
    assert read_mlflow(run.dir)["series"]["x"][:3] == [(0, 0.0), (1, 1.0), (2, 2.0)]


def test_a_backend_storing_row_by_row_gets_no_row_twice(recorded):
    """The base class's log_rows stores row by row and says how far it got
    (PartialBatch): rows stored before a failure are never sent again."""
    run = unilog.init(backends={"csv": {}, "per_row": {"refuse_keys": ["bad"]}})
    for i in range(100):
        run.log({"x": float(i), **({"bad": 1.0} if i in (30, 70) else {})})
    report = run.finish(timeout=20)

    sent = [(step, key) for step, values in recorded["per_row"]["rows"] for key in values]
    assert len(sent) == len(set(sent)) == 100
    assert (report["per_row"]["failed"], report["per_row"]["failed_values"]) == (0, 2)


def test_a_first_row_of_bad_keys_does_not_sink_its_batch(recorded):
    """The probes come from different rows: three bad keys leading row 0 do not make
    a working backend look down."""
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["a", "b", "c"]}})
    run.log({"a": 1.0, "b": 1.0, "c": 1.0, "loss": 0.0})
    for i in range(1, 500):
        run.log({"loss": float(i)})
    report = run.finish(timeout=20)

    assert sorted(by_step(recorded["default"]["rows"])) == list(range(500))
    assert (report["recorder"]["failed"], report["recorder"]["failed_values"]) == (0, 3)


def test_a_key_refused_under_a_renaming_key_rule_costs_no_more_calls(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"allowed": "a-z_", "refuse_keys": [
        "bad_key"]}})
    for i in range(300):
        run.log({"x": float(i), "bad key": 1.0})
        if i % 10 == 9:
            run.flush(timeout=10)  # 30 batches
    report = run.finish(timeout=20)

    rec = report["recorder"]
    assert (rec["failed"], rec["failed_values"], rec["refused_keys"]) == (0, 300, ["bad_key"])
    assert recorded["default"]["calls"] < 30 + 20  # one call a batch once it is refused


def test_rows_of_refused_keys_alone_count_as_failed(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad"]}})
    for i in range(40):
        run.log({"bad": 1.0} if i >= 20 else {"x": 1.0, "bad": 1.0})
        run.flush(timeout=10)
    report = run.finish(timeout=20)
    rec = report["recorder"]
    assert (rec["delivered"], rec["failed"], rec["failed_values"]) == (1 + 20, 20, 20)


def test_a_refused_key_is_tried_again_after_a_while(recorded, monkeypatch):
    from unilog import _delivery

    monkeypatch.setattr(_delivery, "_REFUSAL_BATCHES", 3)
    run = unilog.init(backends={"csv": {}, "recorder": {"refuse_keys": ["bad"]}})
    for i in range(12):
        if i == 2:
            recorded["default"]["refuse_keys"].clear()  # the backend takes it from now on
        run.log({"x": float(i), "bad": float(i)})
        run.flush(timeout=10)  # one row per batch
    report = run.finish(timeout=20)
    # refused after failing alone at steps 0 and 1, left out for 3 batches, then taken
    steps = sorted(s for s, values in by_step(recorded["default"]["rows"]).items() if "bad" in values)
    assert steps == list(range(5, 12))
    assert report["recorder"]["refused_keys"] == ["bad"]
