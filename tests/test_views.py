"""``unilog compare``, ``unilog plot`` and ``unilog open`` on real runs: a table of
what differs between runs, PNG plots of their series, and the real TensorBoard and
MLflow viewers started on a run (also one that never logged there: synced first),
answering on 127.0.0.1 and stopped with Ctrl-C."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unilog
from unilog import _views
from unilog.cli import main

from . import mlflow_server as servers
from .conftest import subprocess_env
from .mlflow_server import free_port

#: A real ``mlflow server`` on 127.0.0.1, shared by the session (a fixture).
mlflow_server = servers.mlflow_server

#: How long a viewer may take to print its URL (MLflow's server takes ~6 s).
URL_TIMEOUT = 90.0


def make_run(project: str = "demo", config: dict | None = None, *, backends=("csv",),
             steps: int = 3, scale: float = 1.0, name: str | None = None,
             summary: dict | None = None) -> Path:
    """A finished run logging ``loss`` and ``acc`` for ``steps`` steps; its directory."""
    with unilog.init(project=project, name=name, config=config or {},
                     backends=list(backends)) as run:
        for step in range(steps):
            run.log({"loss": scale / (step + 1), "acc": step / 10})
        run.summary.update(summary or {})
    return run.dir


def three_runs() -> list[Path]:
    """Three runs whose configs differ in ``lr`` and ``opt/name`` only."""
    return [make_run(config={"lr": lr, "opt": {"name": opt, "beta": 0.9}, "seed": 7},
                     scale=lr, summary={"best": lr * 2})
            for lr, opt in ((0.1, "adam"), (0.01, "adam"), (0.001, "sgd"))]


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``unilog ARGS`` in this process: exit status, stdout, stderr."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


# -- compare ------------------------------------------------------------------------------


def test_compare_keeps_the_config_keys_that_differ_and_the_final_metrics(runs_dir):
    dirs = three_runs()
    rows = _views.compare(_views.read_runs(_views.select_runs([str(runs_dir / "demo")])))
    assert list(rows[0]) == ["run", "name", "lr", "opt/name", "acc", "best", "loss"]
    assert [row["run"] for row in rows] == [d.name for d in dirs]
    assert [(row["lr"], row["opt/name"]) for row in rows] == \
        [(0.1, "adam"), (0.01, "adam"), (0.001, "sgd")]
    assert [row["loss"] for row in rows] == pytest.approx([0.1 / 3, 0.01 / 3, 0.001 / 3])
    assert [row["best"] for row in rows] == pytest.approx([0.2, 0.02, 0.002])


def test_compare_of_one_run_shows_its_whole_config(runs_dir):
    run_dir = make_run(config={"lr": 0.1, "opt": {"name": "adam"}})
    rows = _views.compare(_views.read_runs([run_dir]))
    assert rows == [{"run": run_dir.name, "name": run_dir.name, "lr": 0.1,
                     "opt/name": "adam", "acc": 0.2, "loss": pytest.approx(1 / 3)}]


def test_compare_text_leaves_blank_what_a_run_lacks(runs_dir, capsys):
    dirs = three_runs()
    lonely = make_run(config={"extra": [1, 2]}, name="lonely", steps=1)
    status, out, _ = cli(capsys, "compare", str(runs_dir))
    assert status == 0
    header, *lines = out.splitlines()
    # Metrics: the numbers most runs have, most first (lonely has no "best").
    assert header.split() == ["run", "name", "lr", "opt/name", "opt/beta", "seed", "extra",
                              "acc", "loss", "best"]
    assert [line.split()[0] for line in lines] == [d.name for d in dirs] + [lonely.name]
    # Aligned: each column starts where its header does, blank where a run lacks it.
    extra = header.index("extra")
    assert lines[-1][extra:].split()[0] == "[1,"
    assert lines[-1][header.index("lr"):extra].strip() == ""
    assert lines[0][header.index("best"):].split()[0] == "0.2"
    assert lines[-1][header.index("best"):].strip() == ""


def test_compare_csv_with_chosen_metrics_by_id_and_project_id(runs_dir, capsys):
    first, second, third = three_runs()
    status, out, _ = cli(capsys, "compare", first.name, f"demo/{second.name}", "--csv",
                         "--metric", "best", "--metric", "missing")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert list(rows[0]) == ["run", "name", "lr", "best", "missing"]  # opt/name: both adam
    assert [(r["run"], r["lr"], r["best"], r["missing"]) for r in rows] == [
        (first.name, "0.1", "0.2", ""), (second.name, "0.01", "0.02", "")]


def test_compare_a_run_named_twice_is_one_row(runs_dir, capsys):
    dirs = three_runs()
    status, out, _ = cli(capsys, "compare", dirs[0].name, str(runs_dir / "demo"), "--csv")
    assert status == 0
    assert [row["run"] for row in csv.DictReader(io.StringIO(out))] == [d.name for d in dirs]


def test_compare_a_config_key_named_like_a_column_keeps_both(runs_dir):
    make_run(config={"loss": "mse", "name": "a"})
    make_run(config={"loss": "l1", "name": "b"})
    rows = _views.compare(_views.read_runs(_views.select_runs([])), ["loss"])
    assert list(rows[0]) == ["run", "name", "loss", "config:name", "summary:loss"]
    assert [(r["loss"], r["summary:loss"]) for r in rows] == \
        [("mse", pytest.approx(1 / 3)), ("l1", pytest.approx(1 / 3))]


def test_compare_a_config_json_that_is_not_an_object_gets_a_column(runs_dir):
    run_dir = make_run(config={"lr": 1})
    (run_dir / "config.json").write_text("[1, 2]", encoding="utf-8")
    other = make_run(config={"lr": 1})
    rows = _views.compare(_views.read_runs([run_dir, other]))
    assert [(r["config"], r.get("lr")) for r in rows] == [([1, 2], None), (None, 1)]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=8)
configs = st.dictionaries(st.text(max_size=12), json_values, max_size=5)


@pytest.mark.slow
@given(first=configs, second=configs)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_compare_takes_any_config(first, second, runs_dir):
    dirs = [make_run(project="fuzz", config=config, steps=1) for config in (first, second)]
    rows = _views.compare(_views.read_runs(dirs))
    assert len(rows) == 2 and list(rows[0]) == list(rows[1])
    assert len(set(rows[0])) == len(rows[0])  # no column hides another
    text = _views.text_table(rows)
    assert len(text.splitlines()) == 3  # a value with a newline stays on its row
    parsed = list(csv.reader(io.StringIO(_views.csv_table(rows), newline="")))
    assert len(parsed) == 3 and parsed[0] == list(rows[0])
    for run_dir in dirs:  # the next example starts from an empty project
        for path in sorted(run_dir.rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        run_dir.rmdir()


# -- plot ---------------------------------------------------------------------------------


def test_plot_draws_a_line_per_run_and_key(runs_dir, tmp_path, capsys):
    dirs = three_runs()
    runs = _views.read_runs(dirs)
    plotted = _views.figure(runs, ["loss", "acc"])
    axes = plotted.figure.axes
    assert [ax.get_title() for ax in axes] == ["loss", "acc"]
    assert sum(len(ax.get_lines()) for ax in axes) == len(dirs) * 2
    assert [line.get_label() for line in axes[0].get_lines()] == [d.name for d in dirs]
    assert list(axes[1].get_lines()[2].get_xdata()) == [0, 1, 2]
    assert list(axes[1].get_lines()[2].get_ydata()) == pytest.approx([0, 0.1, 0.2])
    assert plotted.skipped == {}

    out = tmp_path / "figs" / "plot.png"
    status, stdout, _ = cli(capsys, "plot", "-k", "loss", "-k", "acc", str(runs_dir),
                            "-o", str(out), "--logy")
    assert status == 0 and str(out) in stdout
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "PNG" and image.size == (700, 640)
    import matplotlib.image

    assert matplotlib.image.imread(out).shape[:2] == (640, 700)


def test_plot_against_wall_time_and_relative_time(runs_dir, tmp_path, capsys):
    run_dir = make_run(steps=4)
    for x in ("time", "relative"):
        out = tmp_path / f"{x}.png"
        assert cli(capsys, "plot", "-k", "loss", run_dir.name, "--x", x, "-o", str(out))[0] == 0
        assert out.stat().st_size > 0
    line = _views.figure(_views.read_runs([run_dir]), ["loss"], x="relative").figure.axes[0]
    xs = line.get_lines()[0].get_xdata()
    assert xs[0] == 0 and all(b >= a for a, b in zip(xs, xs[1:]))


def test_plot_skips_text_and_says_so_once(runs_dir, tmp_path, capsys):
    with unilog.init(project="demo") as run:
        for step in range(4):
            run.log({"loss": "diverged" if step % 2 else 1.0 / (step + 1)})
    plotted = _views.figure(_views.read_runs([run.dir]), ["loss"])
    assert list(plotted.figure.axes[0].get_lines()[0].get_ydata()) == [1.0, 1 / 3]
    assert plotted.skipped == {"loss": 2}
    status, _, err = cli(capsys, "plot", "-k", "loss", run.id, "-o", str(tmp_path / "p.png"))
    assert status == 0
    assert err.count("skipped") == 1 and "loss (2)" in err


def test_plot_a_key_no_run_has_is_named_with_keys_they_have(runs_dir, tmp_path, capsys):
    three_runs()
    out = tmp_path / "p.png"
    status, _, err = cli(capsys, "plot", "-k", "loss", "-k", "los", str(runs_dir), "-o", str(out))
    assert status == 1 and not out.exists()
    assert "'los'" in err and "loss" in err and "acc" in err
    with unilog.init(project="demo") as run:
        run.log({"phase": "warmup"})
    status, _, err = cli(capsys, "plot", "-k", "phase", run.id, "-o", str(out))
    assert status == 1 and "'phase' holds no numbers" in err


# -- bad input ----------------------------------------------------------------------------


def test_unknown_runs_and_empty_folders_are_clear_errors(runs_dir, tmp_path, capsys,
                                                        monkeypatch):
    make_run()
    status, _, err = cli(capsys, "compare", "nosuchid")
    assert status == 1 and "no run 'nosuchid'" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["compare", str(empty)], ["plot", "-k", "loss", str(empty)]):
        status, _, err = cli(capsys, *command)
        assert status == 1 and f"no runs in {empty}" in err
    monkeypatch.setenv("UNILOG_DIR", str(tmp_path / "nothing"))
    status, _, err = cli(capsys, "compare")
    assert status == 1 and f"no runs under {tmp_path / 'nothing'}" in err
    status, _, err = cli(capsys, "open", "nosuchid", "--with", "tensorboard")
    assert status == 1 and "no run 'nosuchid'" in err


def test_open_with_a_backend_without_viewer_names_the_viewers(runs_dir, capsys):
    run_dir = make_run()
    status, _, err = cli(capsys, "open", run_dir.name, "--with", "wandb")
    assert status == 1
    assert "no viewer for 'wandb'" in err and "mlflow or tensorboard" in err


def test_open_print_command_is_the_venvs_tensorboard_on_the_runs_logdir(runs_dir, capsys):
    run_dir = make_run(backends=["tensorboard"])
    status, out, _ = cli(capsys, "open", run_dir.name, "--with", "tensorboard", "--port",
                         "6123", "--print-command")
    assert status == 0
    tensorboard = str(Path(sys.executable).parent / "tensorboard")
    assert out.split() == [tensorboard, "--logdir", str(run_dir / "tensorboard"), "--host",
                           "127.0.0.1", "--port", "6123"]


# -- open: the real viewers -----------------------------------------------------------------


class Opened:
    """``unilog open ARGS`` in a child of its own process group; ``url`` is the line it
    printed once the viewer answered."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "unilog.cli", "open", *args], cwd=cwd, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=args, daemon=True)
                        for args in ((self.process.stdout, self.lines.put),
                                     (self.process.stderr, self.stderr.append))]
        for reader in self.readers:
            reader.start()
        try:
            line = self.lines.get(timeout=URL_TIMEOUT)
        except queue.Empty:
            self.close()
            pytest.fail(f"no URL within {URL_TIMEOUT} s; stderr: {''.join(self.stderr)}")
        self.url = line.split(" at ", 1)[1].split()[0]

    @staticmethod
    def _read(stream, put) -> None:
        for line in stream:
            put(line)

    def interrupt(self) -> int:
        """Ctrl-C to unilog alone (it forwards it); the exit status."""
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout=60)

    def close(self) -> None:
        """Whatever is left of the group, ended (a failed test leaves no viewer)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        for reader in self.readers:  # at the end of the pipes: every process is gone
            reader.join(timeout=30)
        self.process.stdout.close()
        self.process.stderr.close()


@contextlib.contextmanager
def opened(*args: str, cwd: Path, runs_dir: Path):
    """:class:`Opened`, always closed."""
    env = subprocess_env(UNILOG_DIR=str(runs_dir))
    env.pop("MLFLOW_TRACKING_URI", None)
    viewer = Opened(*args, cwd=cwd, env=env)
    try:
        yield viewer
    finally:
        viewer.close()


def get(url: str, data: dict | None = None):
    """The JSON (or text) at ``url``: polled, since a viewer loads a run after it answers."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    with contextlib.suppress(ValueError):
        return json.loads(text)
    return text


def wait_for(fetch, check, timeout: float = 30.0):
    """``fetch()`` again until ``check`` holds of it; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = fetch()
        if check(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def assert_stopped(viewer: Opened, port: int) -> None:
    status = viewer.interrupt()
    assert status == 0, "".join(viewer.stderr)[-3000:]
    with pytest.raises(OSError):  # nothing listens any more: the viewer went with it
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)


def scalars(base: str, tag: str) -> list:
    """TensorBoard's scalar values of ``tag`` in run ``.`` (the run's logdir itself)."""
    return get(f"{base}/data/plugin/scalars/scalars?run=.&tag={tag}")


@pytest.mark.slow
def test_open_tensorboard_shows_a_run_logged_to_it(runs_dir, tmp_path):
    run_dir = make_run(backends=["tensorboard"], steps=5)
    port = free_port()
    with opened(run_dir.name, "--with", "tensorboard", "--port", str(port),
                cwd=tmp_path, runs_dir=runs_dir) as viewer:
        assert viewer.url == f"http://127.0.0.1:{port}/"
        assert "." in get(f"{viewer.url}data/runs")  # TensorBoard's own list of runs
        tags = wait_for(lambda: get(f"{viewer.url}data/plugin/scalars/tags"),
                        lambda t: "loss" in t.get(".", {}))
        assert {"loss", "acc"} <= set(tags["."])
        assert [point[1] for point in scalars(viewer.url.rstrip("/"), "loss")] == \
            [0, 1, 2, 3, 4]  # (wall time, step, value) per point
        assert_stopped(viewer, port)


@pytest.mark.slow
def test_open_tensorboard_syncs_a_csv_run_there_first(runs_dir, tmp_path):
    run_dir = make_run(steps=4, scale=2.0)
    assert not (run_dir / "tensorboard").exists()
    port = free_port()
    with opened(f"demo/{run_dir.name}", "--with", "tensorboard", "--port", str(port),
                cwd=tmp_path, runs_dir=runs_dir) as viewer:
        points = wait_for(lambda: get(f"{viewer.url}data/plugin/scalars/tags"),
                          lambda t: "loss" in t.get(".", {}))
        assert "loss" in points["."]
        values = [value for _, _, value in scalars(viewer.url.rstrip("/"), "loss")]
        assert values == pytest.approx([2.0, 1.0, 2 / 3, 0.5])
        assert "syncing it there first" in "".join(viewer.stderr)
        assert_stopped(viewer, port)
    info = json.loads((run_dir / "run.json").read_text())["backends"]["tensorboard"]["info"]
    assert Path(info["logdir"]) == run_dir / "tensorboard"


@pytest.mark.slow
def test_open_mlflow_serves_the_runs_store(runs_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run_dir = make_run(backends=["mlflow"], steps=3)
    info = json.loads((run_dir / "run.json").read_text())["backends"]["mlflow"]["info"]
    port = free_port()
    with opened(run_dir.name, "--with", "mlflow", "--port", str(port), cwd=tmp_path,
                runs_dir=runs_dir) as viewer:
        base = f"http://127.0.0.1:{port}"
        assert viewer.url == f"{base}/#/experiments/{info['experiment_id']}/runs/{info['id']}"
        assert get(f"{base}/health") == "OK"
        experiments = get(f"{base}/api/2.0/mlflow/experiments/search", {"max_results": 10})
        assert "demo" in [e["name"] for e in experiments["experiments"]]
        found = get(f"{base}/api/2.0/mlflow/runs/search",
                    {"experiment_ids": [info["experiment_id"]]})
        [run] = [r for r in found["runs"] if r["info"]["run_id"] == info["id"]]
        assert run["info"]["run_name"] == run_dir.name
        assert {m["key"]: m["value"] for m in run["data"]["metrics"]}["loss"] == \
            pytest.approx(1 / 3)
        assert_stopped(viewer, port)
    assert not list(tmp_path.glob("ml*")), "the server wrote into the working directory"


@pytest.mark.slow
def test_open_mlflow_on_a_server_prints_the_runs_page(runs_dir, tmp_path, capsys,
                                                      mlflow_server):
    with unilog.init(project="demo", backends={"mlflow": {
            "tracking_uri": mlflow_server.uri}}) as run:
        run.log({"loss": 1.0})
    info = json.loads((run.dir / "run.json").read_text())["backends"]["mlflow"]["info"]
    started = time.monotonic()
    status, out, _ = cli(capsys, "open", run.id, "--with", "mlflow")
    assert status == 0 and time.monotonic() - started < 5  # nothing was started
    assert out.strip().endswith(
        f"{mlflow_server.uri}/#/experiments/{info['experiment_id']}/runs/{info['id']}")


def test_every_public_name_has_a_docstring():
    import inspect

    from unilog import _viewer, _views_cli

    for module in (_views, _viewer, _views_cli):
        assert module.__doc__
        for name, value in vars(module).items():
            if (not name.startswith("_") and callable(value)
                    and getattr(value, "__module__", None) == module.__name__):
                assert inspect.getdoc(value), f"{module.__name__}.{name}"


def test_the_command_line_imports_nothing_heavy():
    code = ("import sys, unilog.cli, unilog._views_cli; "
            "print(sorted(m for m in ('matplotlib', 'pandas', 'mlflow', 'tensorboard') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"


def test_nan_and_infinite_values_plot(runs_dir, tmp_path):
    with unilog.init(project="demo") as run, pytest.warns(unilog.UnilogWarning, match="nan"):
        for value in (1.0, math.nan, math.inf, 2.0):
            run.log({"loss": value})
    plotted = _views.plot(_views.read_runs([run.dir]), ["loss"], tmp_path / "p.png")
    assert len(plotted.figure.axes[0].get_lines()) == 1 and (tmp_path / "p.png").exists()
