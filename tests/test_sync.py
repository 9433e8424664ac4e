"""``unilog.sync`` / ``unilog sync``: the local record replayed into backends, exactly.

The contract test (tests/test_contract.py) checks, for every backend, that a run
synced later reads back like one logged live and that a second sync adds
nothing. Here: what a backend lacked after a live run (rows a backend refused,
rows a full queue dropped, an MLflow server down through the end of the run) is
exactly what a sync sends; a sync killed with SIGKILL resumes without
duplicates; failed stays failed; ``--watch`` follows a live run; errors name
the run and the backend.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unilog
from unilog.cli import main

from .conftest import subprocess_env
from .test_contract import READERS, _reader, read_csv

REPO = Path(__file__).parent.parent


def csv_run(steps: int = 30, *, project: str = "sync", exit_code: int = 0, **init) -> unilog.Run:
    """A run logged with the local record only."""
    run = unilog.init(project=project, backends=["csv"], config={"lr": 0.1}, **init)
    for step in range(steps):
        run.log({"loss": 1.0 / (step + 1), "acc": step / steps})
    run.finish(exit_code=exit_code)
    return run


def recorded_steps(label: str, recorded) -> list[int]:
    return [step for step, _ in recorded[label]["rows"]]


# -- what is sent ---------------------------------------------------------------------


def test_a_sync_sends_everything_to_a_backend_that_never_had_the_run(recorded):
    run = unilog.init(project="sync", backends=["csv"], config={"lr": 0.1, "opt": {"b": 2}},
                      tags=["t1"], notes="n", group="g")
    for step in range(20):
        run.log({"loss": float(step), "note": f"text {step}"})
    run.log({"loss": 7}, step=25)  # a step skipped ahead
    run.summary["best"] = 0.5
    model = Path(run.dir).parent / "m.bin"
    model.write_bytes(b"w")
    run.log_artifact(model, name="model", aliases=["best"])
    run.finish(exit_code=3)
    report = unilog.sync(run.dir, backends={"recorder": {"label": "r", "media": ["text"]}})
    assert report.ok, str(report)
    got = recorded["r"]
    assert [s for s, _ in got["rows"]] == list(range(20)) + [25]
    assert got["rows"][3][1]["loss"] == 3.0 and got["rows"][3][1]["note"].text == "text 3"
    assert got["rows"][-1][1] == {"loss": 7}
    opened = got["open"]
    assert (opened.id, opened.name, opened.tags, opened.notes, opened.group) == \
        (run.id, run.name, ("t1",), "n", "g")
    assert got["config"][-1] == {"lr": 0.1, "opt": {"b": 2}}
    assert got["summary"] == {"best": 0.5}  # what the user set, not every last value
    assert [(a.name, a.version, a.aliases) for a in got["artifacts"]] == \
        [("model", 0, ["best", "latest"])]
    assert got["close"] == ("failed", 3)  # failed stays failed, with its exit code
    entry = report.runs[0].backends["recorder"]
    assert (entry.sent, entry.already, entry.artifacts, entry.status) == (21, 0, 1, "failed")


def test_media_are_replayed_from_their_files(recorded):
    np = pytest.importorskip("numpy")
    run = unilog.init(project="sync", backends=["csv"])
    pixels = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    run.log({"img": unilog.Image(pixels), "hist": unilog.Histogram(np.arange(10.0), num_bins=5),
             "table": unilog.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
    run.finish()
    unilog.sync(run.dir, backends={"recorder": {"label": "m", "media": ["image", "histogram",
                                                                         "table"]}})
    values = recorded["m"]["rows"][0][1]
    assert (values["img"].to_uint8() == pixels).all()
    assert values["hist"].counts.tolist() == [2, 2, 2, 2, 2]
    assert values["table"].columns == ["a", "b"] and values["table"].rows == [["1", "x"],
                                                                              ["2", "y"]]


def test_rows_a_backend_refused_live_are_exactly_what_a_sync_sends(recorded):
    """A backend that failed some calls live (a flaky server) lacks those rows: its
    ledger says which, and the sync sends those and nothing else."""
    backends = {"csv": {}, "recorder": {"label": "live", "refuse_steps": [5, 6, 7, 30]}}
    run = unilog.init(project="sync", backends=backends, on_error="warn")
    for step in range(40):
        run.log({"loss": float(step)})
        if step % 10 == 9:
            run.flush()  # batches of ten: a refused step fails its whole batch
    run.finish()
    live = set(recorded_steps("live", recorded))
    assert live and live != set(range(40))
    unilog.sync(run.dir, backends={"recorder": {"label": "fill"}})
    sent = recorded_steps("fill", recorded)
    assert sorted(sent) == sorted(set(range(40)) - live)  # exactly the missing rows
    assert recorded["fill"]["close"] == ("finished", 0)
    again = unilog.sync(run.dir, backends={"recorder": {"label": "fill2"}})
    assert recorded["fill2"]["open"] is None  # up to date: not even opened
    assert again.runs[0].backends["recorder"].sent == 0


def test_rows_a_full_queue_dropped_are_exactly_what_a_sync_sends(recorded):
    """A slow backend whose queue overflowed lacks the dropped rows: a gap marker
    in its queue tells its ledger, and the sync fills the gap."""
    backends = {"csv": {}, "recorder": {"label": "slow", "queue_size": 5, "open_delay": 1.0}}
    run = unilog.init(project="sync", backends=backends)
    for step in range(200):  # while it opens: 5 rows fit, the rest are dropped
        run.log({"loss": float(step)})
    time.sleep(1.5)
    for step in range(200, 210):
        run.log({"loss": float(step)})
    report = run.finish()
    assert report["recorder"]["dropped"] > 0
    live = recorded_steps("slow", recorded)
    unilog.sync(run.dir, backends={"recorder": {"label": "fill"}})
    assert sorted(live + recorded_steps("fill", recorded)) == list(range(210))


def test_a_backend_failing_mid_sync_leaves_a_report_and_a_sync_that_resumes(recorded,
                                                                           monkeypatch):
    monkeypatch.setattr("unilog._sync.CHUNK_ROWS", 5)  # a flush (and ledger) every 5 rows
    run = csv_run(40)
    report = unilog.sync(run.dir, backends={"recorder": {"label": "flaky",
                                                         "refuse_steps": [10]}},
                         on_error="disable")
    entry = report.runs[0].backends["recorder"]
    assert not report.ok and entry.error and "failed" in entry.error, str(report)
    assert "INCOMPLETE" in str(report) and "recorder" in str(report) and run.id in str(report)
    first = set(recorded_steps("flaky", recorded))
    assert first == set(range(10))  # the chunks before the one that failed
    report = unilog.sync(run.dir, backends={"recorder": {"label": "again"}})
    assert report.ok, str(report)
    assert sorted(recorded_steps("again", recorded)) == sorted(set(range(40)) - first)
    assert recorded["again"]["close"] == ("finished", 0)


def test_a_live_run_is_not_synced_into_a_backend_it_logs_to_itself(recorded):
    run = unilog.init(project="sync", backends={"csv": {}, "recorder": {"label": "own"}})
    run.log({"loss": 1.0})
    report = unilog.sync(run.dir, backends={"recorder": {"label": "other"}}, watch=True)
    assert "logs to recorder itself" in report.runs[0].error
    run.finish()


def test_a_run_still_running_needs_watch_and_a_dead_one_is_closed_killed(recorded):
    run = unilog.init(project="sync", backends=["csv"])
    run.log({"loss": 1.0})
    run.flush()
    report = unilog.sync(run.dir, backends={"recorder": {"label": "x"}})
    assert not report.ok and "still running" in report.runs[0].error and "--watch" in \
        report.runs[0].error
    run.finish()
    # A run whose process died (SIGKILL) stays "running" in run.json.
    manifest = json.loads((run.dir / "run.json").read_text())
    manifest.update(status="running")
    manifest["provenance"]["pid"] = 2**22 + 12345  # no such process
    (run.dir / "run.json").write_text(json.dumps(manifest))
    report = unilog.sync(run.dir, backends={"recorder": {"label": "x"}})
    assert report.ok and recorded["x"]["close"] == ("killed", 1)
    assert "never ended" in report.runs[0].notes[0]


def test_a_folder_of_runs_and_bad_input(recorded, runs_dir):
    runs = [csv_run(5) for _ in range(3)]
    report = unilog.sync(runs_dir / "sync", backends={"recorder": {"label": "all"}}, jobs=2)
    assert report.ok and {r.run_id for r in report.runs} == {r.id for r in runs}
    with pytest.raises(unilog.ConfigError, match="backends to sync to"):
        unilog.sync(runs[0].dir)
    with pytest.raises(unilog.ConfigError, match="local record"):
        unilog.sync(runs[0].dir, backends=["csv"])
    with pytest.raises(unilog.BackendNotFound, match="nosuch"):
        unilog.sync(runs[0].dir, backends=["nosuch"])
    with pytest.raises(unilog.ConfigError, match="no run 'zzzzzzzz'"):
        unilog.sync("zzzzzzzz", backends=["tensorboard"])
    with pytest.raises(unilog.ConfigError, match="no runs in"):
        unilog.sync(runs_dir.parent, backends=["tensorboard"])
    with pytest.raises(unilog.ConfigError, match="rejected its options"):
        unilog.sync(runs[0].dir, backends={"tensorboard": {"nope": 1}}, on_error="raise")


# -- the command line -------------------------------------------------------------------


def test_the_command_syncs_by_id_with_options_and_says_what_it_did(capsys, recorded):
    run = csv_run(12)
    assert main(["sync", run.id, "--to", "recorder", "--option", "recorder.label=cli",
                 "-o", "recorder.media=[\"image\"]", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"run {run.id} (finished)" in out and "recorder: 12 row(s) sent" in out
    assert recorded["cli"]["open"].id == run.id
    assert recorded_steps("cli", recorded) == list(range(12))
    assert main(["sync", run.id, "--to", "recorder", "-o", "recorder.label=cli2",
                 "--no-progress"]) == 0
    assert "recorder: 0 row(s) sent, 12 already there" in capsys.readouterr().out
    synced = unilog.read_run(run.dir).manifest["backends"]["recorder"]["synced"]
    assert synced["sent"] == 12 and synced["complete"]  # the sync that sent them
    assert main(["sync", run.id, "--to", "recorder", "-o", "wandb.x=1"]) == 1
    assert "not in --to recorder" in capsys.readouterr().err
    assert main(["sync", run.id, "--to", "recorder", "-o", "label"]) == 1
    assert "BACKEND.KEY=VALUE" in capsys.readouterr().err
    assert main(["sync", run.id, "--to", ""]) == 1
    assert "--to names no backend" in capsys.readouterr().err
    with pytest.raises(unilog.ConfigError, match="backends to sync to"):
        unilog.sync(run.dir, backends=[])


@pytest.mark.filterwarnings("ignore:key .* is (nan|inf|-inf):unilog.errors.UnilogWarning")
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.dictionaries(
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
        lambda k: k.strip("/") == k and "//" not in k),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**53, 2**53),
              st.text(max_size=30)),
    min_size=1, max_size=4), min_size=1, max_size=8))
def test_any_logged_values_come_back_the_same_through_a_sync(rows, recorded, tmp_path):
    """Whatever a user logs (keys with commas, quotes, newlines; text that reads as a
    number; NaN), a sync sends the same values at the same steps."""
    run = unilog.init(project="prop", backends=["csv"], dir=tmp_path / str(time.monotonic_ns()))
    logged = []
    for values in rows:
        step = run.step
        run.log(values)
        logged.append((step, values))
    run.finish()
    unilog.sync(run.dir, backends={"recorder": {"label": "prop", "media": ["text"]}})
    expected = [(s, k, v) for s, values in logged for k, v in values.items()]
    got = [(s, k, v.text if isinstance(v, unilog.Text) else v)
           for s, values in recorded["prop"]["rows"] for k, v in values.items()]
    assert len(got) == len(expected)
    for (s1, k1, v1), (s2, k2, v2) in zip(sorted(expected, key=_order), sorted(got, key=_order)):
        assert (s1, k1) == (s2, k2)
        if isinstance(v1, float) and math.isnan(v1):
            assert isinstance(v2, float) and math.isnan(v2)
        else:
            assert v2 == v1 and type(v2) is type(v1), (k1, v1, v2)


def _order(item):
    return (item[0], item[1])


# -- killed half-way, and a live run followed ------------------------------------------------


SYNC_ROWS = 3000


@pytest.mark.slow
@pytest.mark.parametrize("backend", [b for b in READERS if b != "csv"])
def test_a_sync_killed_half_way_resumes_complete_without_duplicates(backend, tmp_path,
                                                                      runs_dir):
    pytest.importorskip(backend)
    run = unilog.init(project="kill", backends=["csv"], config={"lr": 0.1})
    for step in range(SYNC_ROWS):
        run.log({"train/loss": 1.0 / (step + 1), "lr": 0.001})
    run.finish()
    env = subprocess_env(UNILOG_DIR=str(runs_dir), UNILOG_SYNC_CHUNK="100")
    command = [sys.executable, "-m", "unilog.cli", "sync", str(run.dir), "--to", backend,
               "--mode", "offline", "--no-progress"]
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ledger = run.dir / "sync" / f"{backend}.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        try:
            rows = json.loads(ledger.read_text())["rows"]
        except (OSError, ValueError, KeyError):
            rows = []
        if rows and rows[-1][1] >= 200:  # part of it is there
            break
        time.sleep(0.01)
    assert child.poll() is None, child.communicate()  # still going: killed half-way
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)
    part = json.loads(ledger.read_text())["rows"]
    assert part and part[-1][1] < SYNC_ROWS - 1, part
    report = unilog.sync(run.dir, backends=[backend], mode="offline")
    assert report.ok, str(report)
    assert report.runs[0].backends[backend].already > 0
    # Sorted: a reader of several offline folders (one per session) reads them in
    # name order, which is not time order; a step twice would still show.
    got = sorted(_reader(backend)(run.dir)["series"]["train/loss"])
    expected = read_csv(run.dir)["series"]["train/loss"]
    assert [s for s, _ in got] == [s for s, _ in expected] == list(range(SYNC_ROWS))
    assert [v for _, v in got] == pytest.approx([v for _, v in expected], rel=1e-6)


def start_training(tmp_path: Path, runs_dir: Path, run_id: str, loop: str):
    """A training process logging run ``run_id`` (project "watch") with ``loop``;
    returns it once the run has logged its first rows, and the run's directory."""
    script = tmp_path / "train.py"
    script.write_text("import time, unilog\n"
                      f"run = unilog.init(project='watch', id={run_id!r}, backends=['csv'])\n"
                      + loop)
    training = subprocess.Popen([sys.executable, str(script)],
                                env=subprocess_env(UNILOG_DIR=str(runs_dir)))
    run_dir = runs_dir / "watch" / run_id
    deadline = time.monotonic() + 30
    while not (run_dir / "metrics.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return training, run_dir


@pytest.mark.slow
def test_watch_follows_a_live_run_to_its_end(tmp_path, runs_dir):
    training, run_dir = start_training(tmp_path, runs_dir, "livewatch", (
        "for step in range(30):\n"
        "    run.log({'loss': float(step)})\n"
        "    time.sleep(0.1)\n"
        "run.finish(exit_code=1)\n"))
    start = time.monotonic()
    report = unilog.sync(run_dir, backends=["tensorboard"], watch=True)
    assert training.wait(30) == 0
    assert report.ok, str(report)
    assert time.monotonic() - start > 1.0  # it waited for the run, not just its start
    assert report.runs[0].status == "failed"
    got = _reader("tensorboard")(run_dir)["series"]["loss"]
    assert [s for s, _ in got] == list(range(30))


# -- the outage case, against a real MLflow server -------------------------------------------


@pytest.mark.slow
def test_an_mlflow_outage_through_the_end_of_a_run_is_filled_by_a_sync(tmp_path):
    """The server is killed mid-run and is still down when the run ends: MLflow has
    steps 0-49 only. Restarted, ``unilog sync --to mlflow`` sends exactly 50-299."""
    from .mlflow_server import running_server
    from .test_mlflow import client_for

    with running_server(tmp_path / "server") as server:
        options = {"tracking_uri": server.uri, "max_retries": 0, "request_timeout": 2,
                   "retry_interval": 1}
        run = unilog.init(project="outage", backends={"csv": {}, "mlflow": options})
        for step in range(50):
            run.log({"loss": float(step)})
        assert run.flush(timeout=60)
        server.kill()
        for step in range(50, 300):
            run.log({"loss": float(step)})
        report = run.finish(timeout=20)["mlflow"]
        assert list(report["missing"]["metrics"]["steps"]) == [50, 299], report
        ledger = json.loads((run.dir / "sync" / "mlflow.json").read_text())
        assert ledger["rows"] == [[0, 49]] and ledger["status"] is None
        server.start()
        assert main(["sync", str(run.dir), "--to", "mlflow", "-o",
                     f"mlflow.tracking_uri={server.uri}", "--no-progress"]) == 0
        client = client_for(server.uri)
        mlflow_run = client.get_run(report["info"]["id"])  # the same MLflow run
        steps = [m.step for m in client.get_metric_history(mlflow_run.info.run_id, "loss")]
        assert sorted(steps) == list(range(300))  # every step once: the gap, no more
        assert mlflow_run.info.status == "FINISHED"
        assert json.loads((run.dir / "sync" / "mlflow.json").read_text())["rows"] == [[0, 299]]


# -- what an outside walkthrough found ---------------------------------------------------------


@pytest.mark.slow
def test_a_second_mlflow_store_gets_everything_and_each_keeps_its_ledger(tmp_path, capsys):
    from .test_mlflow import client_for

    run = csv_run(15)
    stores = {name: f"sqlite:///{(tmp_path / f'{name}.db').as_posix()}" for name in "ab"}
    for name in ("a", "b", "a"):
        report = unilog.sync(run.dir, backends={"mlflow": {"tracking_uri": stores[name]}})
        assert report.ok, str(report)
    assert report.runs[0].backends["mlflow"].sent == 0  # "a" again: it has everything
    for uri in stores.values():
        client = client_for(uri)
        (found,) = client.search_runs([e.experiment_id for e in client.search_experiments()])
        steps = [m.step for m in client.get_metric_history(found.info.run_id, "loss")]
        assert sorted(steps) == list(range(15)), uri  # each store once
    ledger = json.loads((run.dir / "sync" / "mlflow.json").read_text())
    kept = [ledger["destination"], *ledger["others"]]  # the latest written, and the other
    assert sorted(d.split(" ")[0] for d in kept) == sorted(stores.values())
    assert main(["show", str(run.dir)]) == 0
    assert "synced" in capsys.readouterr().out


@pytest.mark.slow
def test_a_ledger_naming_a_run_the_store_lacks_gets_everything_sent(tmp_path):
    from .test_mlflow import client_for

    run = csv_run(12)
    uri = f"sqlite:///{(tmp_path / 'm.db').as_posix()}"
    assert unilog.sync(run.dir, backends={"mlflow": {"tracking_uri": uri}}).ok
    path = run.dir / "sync" / "mlflow.json"
    ledger = json.loads(path.read_text())
    ledger["info"]["id"] = "0" * 32  # a run that is not in the store
    ledger["status"] = None
    path.write_text(json.dumps(ledger))
    report = unilog.sync(run.dir, backends={"mlflow": {"tracking_uri": uri}})
    assert report.ok and "everything is sent" in " ".join(report.runs[0].notes), str(report)
    client = client_for(uri)
    new = json.loads(path.read_text())["info"]["id"]
    steps = [m.step for m in client.get_metric_history(new, "loss")]
    assert sorted(steps) == list(range(12))


@pytest.mark.parametrize("content, rule", [
    ("garbage{", "is not JSON"), ("", "is not JSON"), ("[]", "must hold a JSON object"),
    ('{"rows": "x"}', "'rows' must be a list"), ('{"rows": [[5, 1]]}', "low <= high"),
    ('{"artifacts": 3}', "'artifacts' must be a JSON array")])
def test_a_damaged_ledger_is_named_with_its_rule_and_nothing_is_sent(content, rule, recorded):
    run = csv_run(5)
    (run.dir / "sync").mkdir(exist_ok=True)
    (run.dir / "sync" / "recorder.json").write_text(content)
    report = unilog.sync(run.dir, backends={"recorder": {"label": "d"}})
    entry = report.runs[0].backends["recorder"]
    assert not report.ok and rule in entry.error and "recorder.json" in entry.error
    assert "remove it" in entry.error and recorded["d"]["open"] is None
    (run.dir / "sync" / "recorder.json").unlink()
    assert unilog.sync(run.dir, backends={"recorder": {"label": "d"}}).ok


def test_two_syncs_of_one_run_at_once_are_refused(recorded):
    from unilog._sync import _RunLock

    run = csv_run(5)
    with _RunLock(run.dir):
        report = unilog.sync(run.dir, backends={"recorder": {"label": "l"}})
    assert "another unilog sync of this run is running" in report.runs[0].error
    assert f"pid {os.getpid()}" in report.runs[0].error
    assert unilog.sync(run.dir, backends={"recorder": {"label": "l"}}).ok


def test_keys_a_backend_refuses_are_reported_as_lasting_not_resumable(recorded, capsys):
    run = unilog.init(project="sync", backends=["csv"])
    run.log({"a,b": 1.0, "a_b": 2.0})
    run.finish()
    backends = ["--to", "recorder", "-o", "recorder.label=k", "-o",
                'recorder.allowed="a-z_"', "--no-progress"]
    assert main(["sync", str(run.dir), *backends]) == 1
    captured = capsys.readouterr()
    assert "collisions" in captured.out and "a sync again will not change it" in captured.out
    assert "run the same command again" not in captured.err


def test_options_are_checked_even_when_there_is_nothing_to_send(recorded):
    run = csv_run(5)
    assert unilog.sync(run.dir, backends={"recorder": {"label": "o"}}).ok
    with pytest.raises(unilog.ConfigError, match="rejected its options"):
        unilog.sync(run.dir, backends={"recorder": {"label": "o", "nope": 1}})


@pytest.mark.slow
def test_watch_ends_when_the_training_process_is_killed(tmp_path, runs_dir):
    training, run_dir = start_training(tmp_path, runs_dir, "killed", (
        "for step in range(100000):\n"
        "    run.log({'loss': float(step)})\n"
        "    if step % 10 == 9:\n"
        "        run.flush()\n"
        "    time.sleep(0.01)\n"))
    time.sleep(1.0)
    training.kill()
    training.wait(10)
    start = time.monotonic()
    report = unilog.sync(run_dir, backends=["tensorboard"], watch=True)
    assert time.monotonic() - start < 10, "watch must notice the dead process"
    assert report.ok and report.runs[0].backends["tensorboard"].status == "killed", str(report)
    logged = [s for s, _ in unilog.read_run(run_dir).series("loss")]
    got = _reader("tensorboard")(run_dir)["series"]["loss"]
    assert [s for s, _ in got] == logged and len(logged) > 10
    manifest = unilog.read_run(run_dir).manifest  # run.json says so too now
    assert manifest["status"] == "killed" and manifest["step"] == logged[-1] + 1
