"""One run used from many threads at once (data loaders, eval threads, callbacks).

Eight threads log to one run concurrently, each under its own keys and each
call committing (``run.log({...})`` writes at the current step, then advances
it), while other threads set ``run.summary`` and call ``run.log_artifact``.
The local record must end up with every value exactly once, the step must
have advanced exactly once per committing call, and nothing may be dropped,
even with a tiny queue that forces the local record's back-pressure.

Last, ``finish`` racing a busy worker: the close and the worker's timed flush
must not collide.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter

import numpy as np
import pytest

import unilog

LOGGERS = 8
CALLS = 1500


def run_threads(targets: list) -> list[BaseException]:
    """Start every target at once (behind a barrier); return what they raised."""
    barrier = threading.Barrier(len(targets))
    errors: list[BaseException] = []

    def wrap(target):
        def body():
            try:
                barrier.wait()
                target()
            except BaseException as exc:  # noqa: BLE001 (reported by the test)
                errors.append(exc)
        return body

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(thread.is_alive() for thread in threads), "a thread is stuck"
    return errors


def logger(run, i: int):
    def body():
        for n in range(CALLS):
            run.log({f"t{i}/x": n, f"t{i}/y": -n})
    return body


@pytest.mark.parametrize("csv_queue", [None, 16], ids=["default-queue", "tiny-queue"])
def test_eight_threads_log_to_one_run(recorded, tmp_path, csv_queue):
    csv_options = {"queue_size": csv_queue} if csv_queue else {}
    run = unilog.init(backends={"csv": csv_options, "recorder": {}})

    def summariser(j: int):
        def body():
            for n in range(300):
                run.summary[f"s{j}"] = n
                run.summary.update({f"u{j}": n, "shared": n})
        return body

    files = []
    for j in range(2):
        path = tmp_path / f"weights{j}.bin"
        path.write_bytes(b"w" * 100)
        files.append(path)

    def artifacts(j: int):
        def body():
            for n in range(20):
                files[j].write_bytes(f"{j}:{n}".encode())
                run.log_artifact(files[j], name=f"model{j}", type="model")
        return body

    targets = [logger(run, i) for i in range(LOGGERS)]
    targets += [summariser(j) for j in range(2)] + [artifacts(j) for j in range(2)]
    errors = run_threads(targets)
    assert errors == []
    assert run.step == LOGGERS * CALLS  # one step per committing call
    report = run.finish()

    # Every value exactly once in the local record.
    data = unilog.read_run(run.dir)
    per_key = Counter(key for _, _, key, _ in data.history)
    assert per_key == Counter({f"t{i}/{c}": CALLS for i in range(LOGGERS) for c in "xy"})
    for i in range(LOGGERS):
        xs = data.series(f"t{i}/x")
        ys = dict(data.series(f"t{i}/y"))
        assert sorted(v for _, v in xs) == list(range(CALLS))
        assert [v for _, v in xs] == list(range(CALLS))  # each thread's order kept
        assert all(ys[step] == -x for step, x in xs)  # x and y of one call share a step
    # One row per committing call: every step 0..N-1 holds exactly one call's two keys.
    per_step = Counter(step for step, *_ in data.history)
    assert sorted(per_step) == list(range(LOGGERS * CALLS))
    assert set(per_step.values()) == {2}

    # The report: nothing dropped, failed or left behind, for the local record above all.
    for name in ("csv", "recorder"):
        counts = report[name]
        assert (counts["dropped"], counts["failed"], counts["errors"], counts["undelivered"],
                counts["timed_out"]) == (0, 0, 0, 0, False), (name, counts)
    assert report["csv"]["delivered"] >= LOGGERS * CALLS

    # The recorder saw the same rows, in strictly increasing step order.
    rows = recorded["default"]["rows"]
    assert [step for step, _ in rows] == list(range(LOGGERS * CALLS))

    # Summary and artifacts made it too.
    summary = data.summary
    assert all(summary[f"s{j}"] == 299 and summary[f"u{j}"] == 299 for j in range(2))
    assert summary["shared"] == 299
    assert recorded["default"]["summary"]["s0"] == 299
    versions = Counter(a.name for a in data.artifacts)
    assert versions == Counter({"model0": 20, "model1": 20})
    assert len(recorded["default"]["artifacts"]) == 40


def test_threads_accumulating_then_one_committer(recorded):
    """Seven threads add to the open row with ``commit=False`` while an eighth
    commits (``run.log({"tick": n})``): every value lands in exactly one row,
    and the step advanced once per commit."""
    run = unilog.init(backends=["csv", "recorder"])
    commits = 400

    def accumulator(i: int):
        def body():
            for n in range(CALLS):
                run.log({f"acc{i}/{n}": n}, commit=False)
        return body

    def committer():
        for n in range(commits):
            run.log({"tick": n})

    errors = run_threads([accumulator(i) for i in range(LOGGERS - 1)] + [committer])
    assert errors == []
    assert run.step == commits
    run.finish()  # commits the last open row, at step `commits`

    history = unilog.read_run(run.dir).history
    keys = Counter(key for _, _, key, _ in history if key != "tick")
    assert keys == Counter({f"acc{i}/{n}": 1 for i in range(LOGGERS - 1) for n in range(CALLS)})
    assert [int(v) for _, _, k, v in history if k == "tick"] == list(range(commits))
    assert {step for step, *_ in history} <= set(range(commits + 1))
    rows = recorded["default"]["rows"]
    steps = [step for step, _ in rows]
    assert steps == sorted(set(steps))  # strictly increasing, one row per step
    assert sum(len(values) for _, values in rows) == len(history)


def test_finish_while_the_local_record_is_busy_past_its_flush_interval():
    """``finish`` right after a row whose images keep the CSV worker busy for
    more than its 0.5 s flush interval. The timed flush that falls due during
    that batch must not run after the backend was closed (a flush on a closed
    file), which made a clean run raise at ``finish`` under ``on_error="raise"``
    and report an error for the local record under "warn"."""
    rng = np.random.default_rng(0)

    def image():
        return unilog.Image(rng.integers(0, 256, (384, 384, 3), dtype=np.uint8))

    start = time.perf_counter()
    image().png_bytes()  # how long one encoding takes on this machine
    count = math.ceil(1.2 / max(time.perf_counter() - start, 1e-4))

    run = unilog.init(on_error="raise")
    run.log({"warm": 1})
    time.sleep(0.1)  # the worker is idle, waiting for its next flush
    run.log({f"img{i}": image() for i in range(count)}, commit=False)
    start = time.perf_counter()
    report = run.finish()  # the open row and the close reach the worker together
    assert time.perf_counter() - start > 0.5  # the worker was busy past a flush
    counts = report["csv"]
    assert (counts["errors"], counts["failed"]) == (0, 0), counts
    history = unilog.read_run(run.dir).history
    assert len(history) == 1 + count



@pytest.fixture
def three_recorders():
    """Backend names recorder, recorder_b, recorder_c (one run takes each name once)."""
    import unilog_faults

    from unilog import plugins

    extra = [type(f"Recorder{c.upper()}", (unilog_faults.Recorder,), {"name": f"recorder_{c}"})
             for c in "bc"]

    class Plugin:
        @unilog.hookimpl
        def unilog_register_backends(self, register):
            for cls in extra:
                register(cls)

    plugins.register_plugin(Plugin(), name="more-recorders")
    yield ["recorder", "recorder_b", "recorder_c"]
    plugins.reset()


def test_backends_open_one_at_a_time(recorded, three_recorders):
    # SDK imports in two threads at once can fail in CPython's AST constructor
    # (unilog/_dispatch.py, _OPENING): a process opens its backends in turn.
    run = unilog.init(backends=[{"name": name, "label": name, "open_delay": 0.2}
                                for name in three_recorders], isolation="thread")
    run.finish()
    spans = sorted(recorded[name]["opening"] for name in three_recorders)
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, spans


def test_a_backend_whose_open_hangs_holds_the_others_back_only_so_long(
        recorded, three_recorders, monkeypatch):
    import unilog._dispatch as dispatch

    monkeypatch.setattr(dispatch, "OPEN_ALONE_S", 0.3)
    run = unilog.init(backends=[{"name": "recorder", "label": "stuck", "open_delay": 3.0},
                                {"name": "recorder_b", "label": "next"}], isolation="thread")
    run.finish()
    stuck, following = recorded["stuck"]["opening"], recorded["next"]["opening"]
    assert following[1] < stuck[1] - 1.5  # it opened long before the stuck one ended
