"""Fault injection: backends that raise, fail to open, hang, are slow, end their
call with a BaseException or change the rows they get, installed through the
fault plugin's real entry point. The training loop is not slowed, the
CSV local record is complete, ``finish`` returns within its timeout and reports
what each backend failed, skipped or dropped."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
import unilog_faults

import unilog
from unilog.errors import BackendError


@pytest.fixture
def unilog_log(caplog):
    """Backend failures are reported through the "unilog" logger."""
    caplog.set_level(logging.WARNING, logger="unilog")
    return caplog


@pytest.fixture
def release():
    """Hanging backends block until the test ends, then are released so their threads end."""
    unilog_faults.RELEASE.clear()
    yield unilog_faults.RELEASE
    unilog_faults.RELEASE.set()


def tracebacks(caplog, *needles: str) -> list[logging.LogRecord]:
    """The "unilog" records that carry a traceback and every one of ``needles``."""
    return [r for r in caplog.records if r.name == "unilog" and "Traceback" in r.getMessage()
            and all(n in r.getMessage() for n in needles)]


def logged_and_flushed(run, n: int, key: str = "x") -> None:
    """Log ``n`` rows, flushing after each so every row is its own backend call."""
    for i in range(n):
        run.log({key: i})
        run.flush(timeout=10)


def manifest(run) -> dict:
    return json.loads((run.dir / "run.json").read_text())


# -- a backend that raises on every call ------------------------------------------


def test_raising_backend_does_not_take_the_run_down(unilog_log):
    run = unilog.init(backends=["csv", "raising"])
    start = time.monotonic()
    for i in range(3000):
        run.log({"x": i, "nested": {"y": i * 0.5}})
    loop = time.monotonic() - start
    report = run.finish(timeout=10)

    assert loop < 5
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(i, i) for i in range(3000)]
    assert data.series("nested/y") == [(i, i * 0.5) for i in range(3000)]
    assert data.status == "finished"
    raising = report["raising"]
    assert raising["errors"] >= 1 and raising["failed"] >= 1 and raising["delivered"] == 0
    assert not raising["timed_out"]
    assert report["csv"]["errors"] == 0 and report["csv"]["dropped"] == 0
    assert manifest(run)["backends"]["raising"]["errors"] == raising["errors"]
    # The finish report names the backend that did not receive everything.
    assert any("'raising'" in r.getMessage() and "did not receive everything" in r.getMessage()
               for r in unilog_log.records)


def test_first_traceback_is_logged_once_and_repeats_are_counted(unilog_log):
    run = unilog.init(backends=["csv", "raising"])
    logged_and_flushed(run, 5)  # 5 failing log calls, below the disabling threshold
    report = run.finish(timeout=10)

    log_failures = tracebacks(unilog_log, "'raising'", "log failed")
    assert len(log_failures) == 1
    assert "RuntimeError: raising backend: log failed" in log_failures[0].getMessage()
    # config (once), log (5 calls) and close (once) each failed; all are counted.
    assert report["raising"]["errors"] == 7
    assert report["raising"]["failed"] == 7
    assert report["raising"]["disabled"] is None
    assert len(tracebacks(unilog_log, "'raising'")) == 3  # one per distinct error


def test_backend_failing_in_a_row_is_disabled_after_max_consecutive_failures(unilog_log):
    run = unilog.init(backends=["csv", "raising"])
    # Flushes succeed between the failing log calls: they deliver nothing, so they
    # must not reset the count of consecutive failures.
    logged_and_flushed(run, 15)
    report = run.finish(timeout=10)

    raising = report["raising"]
    assert raising["disabled"] == "disabled after 10 consecutive failures"
    # config + 9 log calls fail, then the remaining 6 rows are skipped.
    assert raising["skipped"] == 6
    assert raising["delivered"] == 0
    assert len(unilog.read_run(run.dir).series("x")) == 15
    disabled = [r for r in unilog_log.records if "disabled after 10" in r.getMessage()]
    assert len(disabled) >= 1 and "'raising'" in disabled[0].getMessage()


def test_max_consecutive_failures_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNILOG_MAX_CONSECUTIVE_FAILURES", "3")
    run = unilog.init(backends=["csv", "raising"])
    logged_and_flushed(run, 6)
    report = run.finish(timeout=10)
    assert report["raising"]["disabled"] == "disabled after 3 consecutive failures"
    assert report["raising"]["skipped"] == 4  # config + 2 rows failed, 4 rows skipped


def test_backend_failing_now_and_then_is_never_disabled(recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"label": "half", "fail_every": 2}})
    logged_and_flushed(run, 30)
    report = run.finish(timeout=10)

    rec = report["recorder"]
    assert rec["disabled"] is None
    assert (rec["delivered"], rec["failed"], rec["errors"], rec["skipped"]) == (
        15 + 1, 15, 15, 0)  # 15 rows + the config delivered
    assert recorded["half"]["rows"] == [(i, {"x": i}) for i in range(0, 30, 2)]
    assert recorded["half"]["close"] == ("finished", 0)
    assert len(unilog.read_run(run.dir).series("x")) == 30


# -- on_error="raise" and "disable" -------------------------------------------------


def test_on_error_raise_surfaces_on_the_callers_thread(recorded):
    run = unilog.init(backends=["csv", "raising", "recorder"], on_error="raise")
    caller = threading.current_thread()
    with pytest.raises(BackendError, match=r"\[raising\] config failed") as error:
        run.flush(timeout=10)
    assert error.value.backend == "raising"
    assert isinstance(error.value.__cause__, RuntimeError)
    assert threading.current_thread() is caller

    run.log({"x": 1})  # queued for every backend; "raising" fails on it
    with pytest.raises(BackendError, match=r"\[raising\] log failed"):
        for _ in range(100):  # the error surfaces at a later call
            run.flush(timeout=10)
            run.log({"y": 2})


def test_on_error_raise_at_finish_after_everything_is_closed(recorded):
    run = unilog.init(backends=["csv", "raising", "recorder"], on_error="raise")
    with pytest.raises(BackendError, match="raising"):
        run.finish(timeout=10)
    # Raised only after every backend was closed and the manifest written.
    assert recorded["default"]["close"] == ("finished", 0)
    data = manifest(run)
    assert data["status"] == "finished"
    assert data["backends"]["raising"]["errors"] >= 1
    assert data["backends"]["recorder"]["timed_out"] is False
    assert run.finish()["raising"]["errors"] >= 1  # idempotent; does not raise again


def test_on_error_raise_keeps_the_raising_calls_values_in_the_local_record():
    run = unilog.init(backends=["csv", "raising"], on_error="raise")
    raised = 0
    for i in range(20):
        try:
            run.log({"x": i})
        except BackendError:
            raised += 1
        try:
            run.flush(timeout=10)
        except BackendError:
            pass
    try:
        run.finish(timeout=10)
    except BackendError:
        pass
    assert raised >= 1
    assert len(unilog.read_run(run.dir).series("x")) == 20


def test_on_error_disable_disables_at_the_first_error(unilog_log):
    run = unilog.init(backends=["csv", "raising"], on_error="disable")
    for i in range(50):
        run.log({"x": i})
    report = run.finish(timeout=10)

    raising = report["raising"]
    assert "on_error='disable'" in raising["disabled"]
    assert raising["skipped"] == 50 and raising["delivered"] == 0
    assert len(tracebacks(unilog_log, "'raising'", "config failed")) == 1
    assert tracebacks(unilog_log, "log failed") == []  # never called again
    assert len(unilog.read_run(run.dir).series("x")) == 50


# -- a backend that fails to open ----------------------------------------------------


def test_backend_that_fails_to_open_is_reported_and_the_run_goes_on(unilog_log):
    run = unilog.init(backends=["fails_to_open", "csv"])
    for i in range(500):
        run.log({"x": i})
    run.summary["best"] = 1.0
    report = run.finish(timeout=10)

    failed = report["fails_to_open"]
    assert failed["disabled"].startswith("failed to open: ConnectionError")
    assert failed["errors"] == 1 and failed["delivered"] == 0
    assert failed["skipped"] >= 500
    assert not failed["timed_out"]
    assert len(tracebacks(unilog_log, "'fails_to_open'", "service unreachable")) == 1
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(i, i) for i in range(500)]
    assert data.summary["best"] == 1.0
    assert data.status == "finished"


# -- a backend that hangs --------------------------------------------------------------


def test_hanging_backend_does_not_block_the_loop_and_finish_is_bounded(release, unilog_log):
    run = unilog.init(backends={"csv": {}, "hanging": {"queue_size": 100}})
    start = time.monotonic()
    for i in range(20_000):
        run.log({"x": i})
    loop = time.monotonic() - start
    start = time.monotonic()
    report = run.finish(timeout=1)
    finishing = time.monotonic() - start

    assert loop < 5  # would never end if log() waited on the hanging backend
    assert 0.9 <= finishing < 10
    hanging = report["hanging"]
    assert hanging["timed_out"] is True
    assert hanging["dropped"] > 0
    assert hanging["dropped"] + hanging["undelivered"] + hanging["delivered"] >= 20_000
    assert report["csv"]["timed_out"] is False and report["csv"]["dropped"] == 0
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(i, i) for i in range(20_000)]
    written = manifest(run)
    assert written["status"] == "finished"
    assert written["backends"]["hanging"]["timed_out"] is True
    assert written["backends"]["hanging"]["dropped"] == hanging["dropped"]
    assert any("'hanging'" in r.getMessage() and "dropped" in r.getMessage()
               for r in unilog_log.records)


def test_flush_reports_a_hanging_backend_and_stays_bounded(release):
    run = unilog.init(backends=["csv", "hanging", "slow"])
    run.log({"x": 1})
    start = time.monotonic()
    assert run.flush(timeout=0.5) is False
    assert time.monotonic() - start < 5
    report = run.finish(timeout=0.5)
    assert report["hanging"]["timed_out"] is True
    assert report["slow"]["timed_out"] is False


def test_flush_after_finish_returns_at_once(release):
    run = unilog.init(backends=["csv", "hanging"])
    run.log({"x": 1})
    run.finish(timeout=0.2)
    results = []
    flusher = threading.Thread(target=lambda: results.append(run.flush()), daemon=True)
    flusher.start()
    flusher.join(5)
    assert not flusher.is_alive(), "flush() after finish() waits forever"
    assert results == [True]


# -- a slow backend ---------------------------------------------------------------------


def test_slow_backend_does_not_slow_the_loop_and_gets_every_row():
    run = unilog.init(backends={"csv": {}, "slow": {"delay": 0.05}})
    start = time.monotonic()
    for i in range(2000):
        run.log({"x": i, "y": -i})
    loop = time.monotonic() - start
    assert loop < 5  # 2,000 calls of 0.05 s would take 100 s
    assert run.flush(timeout=20) is True
    report = run.finish(timeout=20)

    slow = report["slow"]
    assert slow["delivered"] == 2000 + 1  # every row, and the config
    assert (slow["dropped"], slow["failed"], slow["skipped"], slow["undelivered"]) == (0, 0, 0, 0)
    assert slow["timed_out"] is False
    assert len(unilog.read_run(run.dir).series("y")) == 2000


def test_flush_returns_true_when_every_backend_caught_up(recorded):
    run = unilog.init(backends={"csv": {}, "slow": {"delay": 0.05}, "recorder": {}})
    for i in range(200):
        run.log({"x": i})
    assert run.flush(timeout=20) is True
    # Everything logged before flush() has been stored, not merely queued.
    assert len(recorded["default"]["rows"]) == 200
    assert recorded["default"]["flushes"] >= 1
    assert len(unilog.read_run(run.dir).series("x")) == 200
    run.finish()


def test_full_queue_drops_for_that_backend_only(release, recorded):
    run = unilog.init(backends={"csv": {}, "hanging": {"queue_size": 10}, "recorder": {}})
    for i in range(1000):
        run.log({"x": i})
    report = run.finish(timeout=0.5)
    # 10 wait in its queue, and at most one batch (no more than the queue held)
    # is in the hung backend's hands: everything else is dropped.
    assert report["hanging"]["dropped"] >= 1000 - 2 * 10 - 2
    assert report["recorder"]["dropped"] == 0
    assert [step for step, _ in recorded["default"]["rows"]] == list(range(1000))
    assert len(unilog.read_run(run.dir).series("x")) == 1000


# -- a backend that ends its thread (BaseException) ------------------------------------


@pytest.fixture
def ending_status(monkeypatch):
    """A backend's ``sys.exit()`` passes through unilog's sys.exit wrapper, which
    remembers the code as the process's ending status: restore it after the test."""
    from unilog import _lifecycle as lifecycle

    monkeypatch.setattr(lifecycle, "_ending_status", lifecycle._ending_status)
    monkeypatch.setattr(lifecycle, "_ending_code", lifecycle._ending_code)


def test_backend_calling_sys_exit_is_an_error_not_a_dead_worker(ending_status, unilog_log):
    run = unilog.init(backends=["csv", "exits"])
    for i in range(5):
        run.log({"x": i})
    start = time.monotonic()
    assert run.flush(timeout=5) is True  # a dead worker would never answer the flush
    assert time.monotonic() - start < 2
    logged_and_flushed(run, 3, key="y")
    start = time.monotonic()
    report = run.finish(timeout=5)
    assert time.monotonic() - start < 2

    exits = report["exits"]
    # Every call failed and was counted: the worker lived on to take the next one.
    assert exits["errors"] >= 4 and exits["failed"] == 8 and exits["disabled"] is None
    assert (exits["timed_out"], exits["undelivered"]) == (False, 0)
    assert len(tracebacks(unilog_log, "'exits'", "SystemExit: 3")) == 1
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(i, i) for i in range(5)]
    assert len(data.series("y")) == 3
    assert data.status == "finished"


def test_backend_leaking_cancelled_error_stops_only_itself(release, unilog_log):
    """Another BaseException (an SDK's asyncio.CancelledError) is an ordinary backend
    error: caught at the call, reported once, counted; flush and finish return at once."""
    run = unilog.init(backends={"csv": {}, "exits": {"cancel": True, "hold": True}})
    for i in range(5):
        run.log({"x": i})
    # The backend holds its config call until the rows and the flush barrier are
    # queued, so all of them reach it as one batch.
    threading.Timer(0.3, release.set).start()
    start = time.monotonic()
    flushed = run.flush(timeout=1)
    for i in range(5, 10):
        run.log({"x": i})
    report = run.finish(timeout=1)
    took = time.monotonic() - start

    exits = report["exits"]
    assert exits["errors"] >= 1 and exits["failed"] >= 5 and exits["delivered"] < 10
    assert len(tracebacks(unilog_log, "'exits'", "CancelledError")) == 1
    assert unilog.read_run(run.dir).series("x") == [(i, i) for i in range(10)]
    assert flushed is True and took < 1.5
    assert (exits["timed_out"], exits["undelivered"]) == (False, 0)


# -- flush racing close, flush on a dead worker -----------------------------------------


def test_flush_racing_finish_returns_at_once(monkeypatch):
    """finish() lands between flush()'s check that the run is open and its queuing
    of flush barriers: no barrier may end up behind the close, unanswered."""
    from unilog import _dispatch as dispatch

    entered, flusher_thread = threading.Event(), []

    class SlowBarrier(dispatch.Control):
        def __init__(self, kind, *args):
            super().__init__(kind, *args)
            if (kind == "flush" and threading.current_thread() in flusher_thread
                    and not entered.is_set()):
                entered.set()
                time.sleep(0.3)  # finish() runs now, on the main thread

    monkeypatch.setattr(dispatch, "Control", SlowBarrier)
    run = unilog.init()
    run.log({"x": 1})
    results = []

    def flush():
        start = time.monotonic()
        results.append((run.flush(timeout=5), time.monotonic() - start))

    flusher = threading.Thread(target=flush, daemon=True)
    flusher_thread.append(flusher)
    flusher.start()
    assert entered.wait(5)
    report = run.finish(timeout=5)
    flusher.join(10)
    (flushed, took), = results
    assert took < 2, "the flush barrier was queued after the close and never answered"
    assert flushed is True
    assert report["csv"]["timed_out"] is False
    assert unilog.read_run(run.dir).series("x") == [(0, 1)]


def test_flush_does_not_wait_on_a_worker_whose_thread_has_ended(monkeypatch):
    """A worker thread ended by something nobody could catch (simulated: the
    backend fails to open, then its thread ends instead of serving) must not
    make every flush wait its whole timeout."""
    from unilog._dispatch import BackendWorker

    monkeypatch.setattr(BackendWorker, "_drain_disabled", lambda self: None)
    run = unilog.init(backends=["csv", "fails_to_open"])
    run.log({"x": 1})
    time.sleep(0.2)  # the failing worker has ended by now
    start = time.monotonic()
    run.flush(timeout=3)
    assert time.monotonic() - start < 1
    assert unilog.read_run(run.dir).series("x") == [(0, 1)]
    run.finish(timeout=0.2)


# -- error identity ---------------------------------------------------------------------


def test_errors_whose_message_varies_are_one_error(unilog_log):
    """An error is identified by where it was raised, not by its message
    ("HTTP 503 at step 17", "... step 18"): one traceback, and the consecutive
    failure limit still disables the backend."""
    run = unilog.init(backends={"csv": {}, "recorder": {"fail_every": 1}})
    logged_and_flushed(run, 15)  # every log call fails, each with its own message
    report = run.finish(timeout=10)

    assert len(tracebacks(unilog_log, "'recorder'", "injected failure")) == 1
    recorder = report["recorder"]
    assert recorder["disabled"] == "disabled after 10 consecutive failures"
    assert (recorder["errors"], recorder["failed"], recorder["skipped"]) == (10, 10, 5)
    assert len(unilog.read_run(run.dir).series("x")) == 15


# -- rows are read-only ------------------------------------------------------------------


def test_backend_cannot_change_the_rows_other_backends_get(unilog_log, recorded):
    run = unilog.init(backends=["csv", "mutating", "recorder"])
    n = 5000
    for i in range(n):
        run.log({"epoch": i // 100, "loss": 1.0})
    report = run.finish(timeout=20)

    data = unilog.read_run(run.dir)
    assert data.series("epoch") == [(i, i // 100) for i in range(n)]
    assert len(data.series("loss")) == n
    assert [values for _, values in recorded["default"]["rows"]] == [
        {"epoch": i // 100, "loss": 1.0} for i in range(n)]
    assert report["csv"]["errors"] == 0
    assert report["mutating"]["errors"] >= 1 and report["mutating"]["delivered"] <= 1
    assert len(tracebacks(unilog_log, "'mutating'", "mappingproxy")) == 1


# -- the local record is never disabled --------------------------------------------------


def corrupt_jpeg(tmp_path):
    """A file with a valid JPEG header and a garbage body: it decodes only on the worker."""
    path = tmp_path / "bad.jpg"
    path.write_bytes(b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x10" + b"\x00" * 40)
    return path


def test_media_the_local_record_cannot_save_costs_only_its_cell(tmp_path, unilog_log):
    run = unilog.init(on_error="disable")
    for i in range(50):
        run.log({"loss": float(i)})
    run.log({"a": 1, "img": unilog.Image(corrupt_jpeg(tmp_path)), "b": 2})
    for i in range(51, 100):
        run.log({"loss": float(i)})
    report = run.finish(timeout=10)

    csv = report["csv"]
    assert csv["disabled"] is None
    assert (csv["errors"], csv["failed"], csv["skipped"]) == (0, 0, 0)
    data = unilog.read_run(run.dir)
    assert [s for s, _ in data.series("loss")] == [*range(50), *range(51, 100)]
    assert data.series("a") == [(50, 1)] and data.series("b") == [(50, 2)]
    (step, cell), = data.series("img")
    assert step == 50 and cell.startswith("<unsaved image")
    warned = [r for r in unilog_log.records if "could not save" in r.getMessage()]
    assert len(warned) == 1 and "'img'" in warned[0].getMessage()


def test_local_record_is_not_disabled_by_on_error_disable(monkeypatch, unilog_log):
    """Whatever makes the local record fail once, it keeps the rest of the run."""
    from unilog_plugins.csv_backend import CSVBackend

    original, calls = CSVBackend.log_rows, []

    def fails_once(self, rows):
        calls.append(len(rows))
        if len(calls) == 1:
            raise OSError("disk hiccup")
        original(self, rows)

    monkeypatch.setattr(CSVBackend, "log_rows", fails_once)
    run = unilog.init(on_error="disable")
    run.log({"lost": 1})
    run.flush(timeout=10)
    for i in range(1, 30):
        run.log({"x": i})
    report = run.finish(timeout=10)

    assert report["csv"]["disabled"] is None
    assert report["csv"]["errors"] == 1 and report["csv"]["skipped"] == 0
    assert unilog.read_run(run.dir).series("x") == [(i, i) for i in range(1, 30)]


def test_finish_waits_for_the_local_record_while_it_makes_progress():
    """A tiny timeout bounds the other backends, not a local record still writing."""
    run = unilog.init()
    n = 4000
    for i in range(n):
        run.log({"a": i, **{f"k{j}": i for j in range(50)}})
    report = run.finish(timeout=0.01)

    assert report["csv"]["timed_out"] is False and report["csv"]["undelivered"] == 0
    data = unilog.read_run(run.dir)
    assert data.status == "finished"
    assert len(data.series("a")) == n


def test_a_backend_that_skips_itself_counts_records_as_skipped_not_delivered():
    run = unilog.init(backends=["csv", "skips_itself"])
    for i in range(20):
        run.log({"x": i})
    assert run.flush(timeout=5)
    report = run.finish()["skips_itself"]
    assert report["delivered"] == 0 and report["errors"] == 0
    assert report["skipped"] == 21  # 20 rows and the config
    assert report["disabled"] == "skipped: not needed in this test"
    assert len(unilog.read_run(run.dir).series("x")) == 20
