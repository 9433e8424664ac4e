"""The step contract of ``Run.log`` (wandb's semantics, see unilog/runs.py).

- ``log(d)`` writes at the current step, then advances it;
- ``log(d, commit=False)`` accumulates into the current step's row;
- ``log(d, step=s)`` with ``s >= run.step`` writes at ``s``; calls at one step
  merge into one row, which a later step, a committing call or ``finish`` commits;
- ``s < run.step`` is a StepError under ``on_error="raise"``; otherwise one
  warning per run, and the row reaches only the local record and the backends
  that declare ``out_of_order_steps``;
- a step must be an integer >= 0 (numpy and torch integers included).

Every test reads back what was stored: the CSV local record through
``unilog.read_run`` and what a "recorder" backend received.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import unilog
from unilog.errors import StepError, UnilogWarning


def rows_of(recorded, label: str = "default") -> list[tuple[int, dict]]:
    """The rows a recorder backend received, in order."""
    return recorded[label]["rows"]


def csv_rows(run) -> dict[int, dict[str, object]]:
    """The local record grouped by step: ``{step: {key: value}}``, values parsed.

    Also checks that each (step, key) was stored once: one row per step.
    """
    data = unilog.read_run(run.dir)
    pairs = [(step, key) for step, _, key, _ in data.history]
    assert len(pairs) == len(set(pairs)), pairs
    rows: dict[int, dict[str, object]] = {}
    for key in dict.fromkeys(k for _, _, k, _ in data.history):
        for step, value in data.series(key):
            rows.setdefault(step, {})[key] = value
    return rows


def assert_strictly_increasing(rows: list[tuple[int, dict]]) -> None:
    steps = [step for step, _ in rows]
    assert all(a < b for a, b in zip(steps, steps[1:])), steps


# -- the normal flow ----------------------------------------------------------


def test_log_writes_at_current_step_then_advances(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    assert run.step == 0
    for i in range(3):
        run.log({"loss": 10 + i})
        assert run.step == i + 1
    run.finish()
    assert rows_of(recorded) == [(0, {"loss": 10}), (1, {"loss": 11}), (2, {"loss": 12})]
    assert unilog.read_run(run.dir).series("loss") == [(0, 10), (1, 11), (2, 12)]


def test_commit_false_accumulates_into_one_row(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, commit=False)
    run.log({"b": 2}, commit=False)
    assert run.step == 0
    run.flush()
    assert rows_of(recorded) == []  # the row is still open
    run.log({"c": 3})
    assert run.step == 1
    run.log({"a": 4})
    run.finish()
    assert rows_of(recorded) == [(0, {"a": 1, "b": 2, "c": 3}), (1, {"a": 4})]
    assert csv_rows(run) == {0: {"a": 1, "b": 2, "c": 3}, 1: {"a": 4}}


def test_explicit_step_writes_there_and_calls_at_one_step_merge(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=5)
    assert run.step == 5
    run.log({"b": 2}, step=5)
    run.log({"c": 3}, step=5)
    run.flush()
    assert rows_of(recorded) == []  # open until a later step commits it
    run.log({"a": 9}, step=7)  # commits step 5
    run.flush()
    assert rows_of(recorded) == [(5, {"a": 1, "b": 2, "c": 3})]
    assert run.step == 7
    run.finish()
    assert rows_of(recorded) == [(5, {"a": 1, "b": 2, "c": 3}), (7, {"a": 9})]
    assert csv_rows(run) == {5: {"a": 1, "b": 2, "c": 3}, 7: {"a": 9}}
    metrics = unilog.read_run(run.dir).metrics
    assert list(metrics.index) == [5, 7]
    assert metrics.loc[5, ["a", "b", "c"]].tolist() == [1, 2, 3]


def test_same_key_twice_at_one_step_keeps_the_last_value(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=2)
    run.log({"a": 2}, step=2)
    run.finish()
    assert rows_of(recorded) == [(2, {"a": 2})]
    assert unilog.read_run(run.dir).series("a") == [(2, 2)]


def test_log_without_step_after_explicit_step_merges_then_advances(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=3)
    run.log({"b": 2})  # merges into step 3, commits, advances
    assert run.step == 4
    run.log({"c": 3})
    run.finish()
    assert rows_of(recorded) == [(3, {"a": 1, "b": 2}), (4, {"c": 3})]
    assert csv_rows(run) == {3: {"a": 1, "b": 2}, 4: {"c": 3}}


def test_commit_true_with_step_commits_and_advances(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=4, commit=True)
    assert run.step == 5
    run.flush()
    assert rows_of(recorded) == [(4, {"a": 1})]
    run.finish()


def test_finish_commits_the_open_row(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1})
    run.log({"b": 2}, step=6)
    run.log({"c": 3}, commit=False)
    run.finish()
    assert rows_of(recorded) == [(0, {"a": 1}), (6, {"b": 2, "c": 3})]
    assert csv_rows(run) == {0: {"a": 1}, 6: {"b": 2, "c": 3}}
    assert unilog.read_run(run.dir).manifest["step"] == 6


def test_step_property_follows_every_kind_of_call():
    run = unilog.init()
    seen = [run.step]
    run.log({"a": 1}, commit=False)
    seen.append(run.step)
    run.log({"a": 1})
    seen.append(run.step)
    run.log({"a": 1}, step=10)
    seen.append(run.step)
    run.log({"a": 1})
    seen.append(run.step)
    run.finish()
    assert seen == [0, 0, 1, 10, 11]


def test_resume_continues_after_the_last_step_with_newlines_in_keys():
    """On resume the step continues after the last stored one; a key holding a
    newline followed by digits must not pass for a line of a later step."""
    run = unilog.init(id="resumable")
    run.log({"odd\n99999,key": 1})
    run.log({"a": 2})
    run.finish()
    again = unilog.init(id="resumable", resume="allow")
    assert again.step == 2
    again.log({"a": 3})
    again.finish()
    assert unilog.read_run(run.dir).series("a") == [(1, 2), (2, 3)]


# -- steps that go backwards ---------------------------------------------------------


def test_regression_under_raise_is_a_step_error_and_stores_nothing(recorded):
    run = unilog.init(backends=["csv", "recorder"], on_error="raise")
    run.log({"a": 1}, step=5)
    with pytest.raises(StepError, match="lower than the current step 5"):
        run.log({"a": 99, "late": 1}, step=3)
    assert run.step == 5
    run.log({"b": 2})
    run.finish()
    assert rows_of(recorded) == [(5, {"a": 1, "b": 2})]
    assert csv_rows(run) == {5: {"a": 1, "b": 2}}


@pytest.mark.parametrize("out_of_order", [False, True])
def test_regression_under_warn_goes_to_local_record_and_willing_backends(recorded,
                                                                         out_of_order):
    run = unilog.init(backends={"recorder": {"out_of_order": out_of_order}})
    run.log({"a": 1}, step=5)
    run.log({"a": 2})  # commits 5, now at 6
    with pytest.warns(UnilogWarning) as caught:
        run.log({"old": 10}, step=3)
        run.log({"old": 11}, step=4)
    assert len(caught) == 1, [str(w.message) for w in caught]  # once per run
    assert "step 3" in str(caught[0].message) and "backwards" in str(caught[0].message)
    assert run.step == 6
    run.log({"a": 3})
    report = run.finish()

    # The local record keeps everything, the late rows included.
    assert csv_rows(run) == {3: {"old": 10}, 4: {"old": 11}, 5: {"a": 2}, 6: {"a": 3}}
    got = rows_of(recorded)
    if out_of_order:
        assert got == [(5, {"a": 2}), (3, {"old": 10}), (4, {"old": 11}), (6, {"a": 3})]
        assert report["recorder"]["skipped"] == 0
    else:
        assert got == [(5, {"a": 2}), (6, {"a": 3})]
        assert report["recorder"]["skipped"] == 2
    assert report["csv"]["skipped"] == 0


def test_regression_with_an_open_row_keeps_the_open_row(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=5)
    with pytest.warns(UnilogWarning, match="backwards"):
        run.log({"old": 1}, step=2)
    run.log({"b": 2}, step=5)
    run.finish()
    assert rows_of(recorded) == [(5, {"a": 1, "b": 2})]
    assert csv_rows(run) == {2: {"old": 1}, 5: {"a": 1, "b": 2}}


# -- what a step may be ----------------------------------------------------------


def invalid_steps():
    torch = pytest.importorskip("torch")
    return [-1, 1.5, "3", True, False, np.float64(2.0), np.bool_(True), np.array(True),
            np.array([1, 2]), torch.tensor(1.5), torch.tensor(True), torch.tensor([1, 2]),
            torch.tensor(-2)]


@pytest.mark.parametrize("on_error", ["warn", "raise"])
def test_invalid_steps_are_step_errors_and_store_nothing(recorded, on_error):
    run = unilog.init(backends=["csv", "recorder"], on_error=on_error)
    run.log({"a": 1})
    for bad in invalid_steps():
        with pytest.raises(StepError, match="step must be an int >= 0"):
            run.log({"bad": 1}, step=bad)
        assert run.step == 1
    run.log({"a": 2})
    run.finish()
    assert rows_of(recorded) == [(0, {"a": 1}), (1, {"a": 2})]
    assert csv_rows(run) == {0: {"a": 1}, 1: {"a": 2}}


def test_numpy_and_torch_integers_are_steps(recorded):
    torch = pytest.importorskip("torch")
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"a": 1}, step=np.int64(2))
    run.log({"a": 2}, step=np.uint8(3))
    run.log({"a": 3}, step=np.array(4))  # 0-d array
    run.log({"a": 4}, step=torch.tensor(5))
    run.log({"a": 5}, step=torch.tensor(6, dtype=torch.int32))
    assert run.step == 6 and type(run.step) is int
    run.finish()
    got = rows_of(recorded)
    assert got == [(2, {"a": 1}), (3, {"a": 2}), (4, {"a": 3}), (5, {"a": 4}), (6, {"a": 5})]
    assert all(type(step) is int for step, _ in got)
    assert unilog.read_run(run.dir).series("a") == [(2, 1), (3, 2), (4, 3), (5, 4), (6, 5)]


def test_backends_never_see_a_step_go_backwards(recorded):
    """A random mix of every kind of call (each value under its own key): the
    recorder gets one row per step, steps strictly increasing, every value but the
    late ones; the local record gets every value at the step it was logged at."""
    rng = random.Random(1234)
    run = unilog.init(backends=["csv", "recorder"])
    expected: set[tuple[int, str, int]] = set()
    late: set[tuple[int, str, int]] = set()
    with pytest.warns(UnilogWarning, match="backwards"):
        for n in range(3000):
            key, current = f"k{n}", run.step
            kind = rng.choice(["log", "accumulate", "jump", "same", "late"])
            if kind == "log":
                step = current
                run.log({key: n})
            elif kind == "accumulate":
                step = current
                run.log({key: n}, commit=False)
            elif kind == "jump":
                step = current + rng.randint(1, 5)
                run.log({key: n}, step=step)
            elif kind == "same":
                step = current
                run.log({key: n}, step=step)
            else:
                step = current - rng.randint(1, 5)
                if step < 0:
                    continue
                run.log({key: n}, step=step)
                late.add((step, key, n))
            expected.add((step, key, n))
    run.finish()

    got = rows_of(recorded)
    assert_strictly_increasing(got)
    assert {(step, k, v) for step, values in got for k, v in values.items()} == expected - late
    history = unilog.read_run(run.dir).history
    assert len(history) == len(expected)
    assert {(step, k, int(v)) for step, _, k, v in history} == expected
    assert len(late) > 100


@pytest.mark.parametrize("step", [2**63, 10**30])
def test_steps_beyond_64_bits_are_refused(step):
    """Every backend stores steps as 64-bit integers: a bigger one would fail a whole batch."""
    run = unilog.init()
    run.log({"x": 1}, step=2**63 - 1)
    with pytest.raises(StepError, match="2\\*\\*63 - 1"):
        run.log({"x": 2}, step=step)
    run.finish()
    assert unilog.read_run(run.dir).series("x") == [(2**63 - 1, 1)]
