"""The ``unilog`` command as a user types it: ``--version``, ``ls`` of a runs root,
a project's folder or a run's, with name, group and metric columns, and ``show``
by directory, id or ``project/id``, with long summary values and resumed runs."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import unilog
from unilog.cli import main

from .conftest import subprocess_env


def unilog_command(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    """``python -m unilog.cli ARGS`` in a child (the console script's code), in ``cwd``."""
    return subprocess.run([sys.executable, "-m", "unilog.cli", *args], cwd=cwd,
                          env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=60)


def make_run(project: str, *, group: str | None = None, name: str | None = None,
             acc: float = 0.5, **kwargs) -> unilog.Run:
    """A finished csv run with a few rows, in the test's $UNILOG_DIR."""
    with unilog.init(project=project, group=group, name=name, **kwargs) as run:
        for step in range(3):
            run.log({"loss": 1.0 / (step + 1), "acc": acc})
        run.summary["best_acc"] = acc
    return run


def test_version(tmp_path):
    proc = unilog_command("--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"unilog {unilog.__version__}"
    assert unilog.__version__ != "0+unknown"
    assert proc.stdout.strip().endswith(metadata.version("unilog-ml"))


def test_show_never_cuts_a_summary_value_silently(capsys):
    long_text = "word " * 200  # 1,000 characters
    with unilog.init(project="p") as run:
        run.log({"x": 1.0})
        run.summary["notes"] = long_text
        run.summary["best"] = 0.97
    assert main(["show", str(run.dir)]) == 0
    out = capsys.readouterr().out
    (notes,) = [line for line in out.splitlines() if line.strip().startswith("notes:")]
    assert notes.endswith(f"... ({len(json.dumps(long_text))} characters; "
                          "--full prints it whole)")
    assert "    best: 0.97" in out  # a value after the long one is still shown
    assert main(["show", "--full", str(run.dir)]) == 0
    out = capsys.readouterr().out
    assert f"    notes: {json.dumps(long_text)}" in out.splitlines()


def test_show_finds_a_run_by_its_id(tmp_path, runs_dir):
    run = make_run("p")
    # Under $UNILOG_DIR, by id and by project/id.
    for ref in (run.id, f"p/{run.id}"):
        proc = unilog_command("show", ref, cwd=tmp_path, UNILOG_DIR=str(runs_dir))
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"run {run.id} in project p: finished")
    # Under ./runs, with no $UNILOG_DIR (runs_dir is tmp_path / "runs").
    proc = unilog_command("show", run.id, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"directory: {Path('runs') / 'p' / run.id}" in proc.stdout


def test_show_of_an_unknown_run_says_so(tmp_path, runs_dir):
    make_run("p")
    proc = unilog_command("show", "nosuchrun", cwd=tmp_path, UNILOG_DIR=str(runs_dir))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("unilog show: no run 'nosuchrun'")
    assert str(runs_dir) in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = unilog_command("show", "empty", cwd=tmp_path, UNILOG_DIR=str(runs_dir))
    assert proc.returncode == 1 and "not a run directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_show_of_an_id_in_two_projects_lists_both(capsys):
    first = make_run("a", id="same")
    second = make_run("b", id="same")
    assert main(["show", "same"]) == 1
    err = capsys.readouterr().err
    assert "names several runs" in err and str(first.dir) in err and str(second.dir) in err


def ls_table(out: str) -> list[dict[str, str]]:
    """``unilog ls`` output as rows of {column: cell}, cut where each heading starts
    (the columns are aligned; a cell such as the start time may hold a blank)."""
    header, *lines = out.splitlines()
    names = header.split()
    starts = [header.index(f" {name} ") + 1 if i else 0 for i, name in enumerate(names[:-1])]
    starts.append(header.rindex(" " + names[-1]) + 1)
    bounds = list(zip(starts, [*starts[1:], None]))
    return [{name: line[a:b].strip() for name, (a, b) in zip(names, bounds)} for line in lines]


def test_ls_of_a_runs_root_a_project_and_a_run(capsys, runs_dir):
    a1 = make_run("alpha", group="sweep", name="lr-0.1", acc=0.9)
    a2 = make_run("alpha", group="sweep", name="lr-0.01", acc=0.7)
    b1 = make_run("beta", name="other", acc=0.5)
    assert main(["ls"]) == 0  # $UNILOG_DIR
    rows = ls_table(capsys.readouterr().out)
    assert [r["ID"] for r in rows] == [a1.id, a2.id, b1.id]
    assert main(["ls", str(runs_dir / "alpha")]) == 0  # one project's folder
    rows = ls_table(capsys.readouterr().out)
    assert [(r["PROJECT"], r["ID"], r["NAME"], r["GROUP"], r["STATUS"], r["best_acc"])
            for r in rows] == [("alpha", a1.id, "lr-0.1", "sweep", "finished", "0.9"),
                               ("alpha", a2.id, "lr-0.01", "sweep", "finished", "0.7")]
    assert [r["PATH"] for r in rows] == [str(a1.dir), str(a2.dir)]
    assert main(["ls", str(b1.dir)]) == 0  # one run's folder
    (row,) = ls_table(capsys.readouterr().out)
    assert (row["ID"], row["GROUP"], row["loss"]) == (b1.id, "-", "0.3333")


def test_ls_metric_columns_by_name(capsys):
    make_run("p", acc=0.25)
    assert main(["ls", "--metric", "acc", "--metric", "missing"]) == 0
    out = capsys.readouterr().out
    assert out.split()[:10] == ["PROJECT", "ID", "NAME", "GROUP", "STATUS", "STEP", "STARTED",
                                "acc", "missing", "PATH"]
    (row,) = ls_table(out)
    assert (row["acc"], row["missing"]) == ("0.25", "-")
    assert row["STARTED"][:4].isdigit()


def test_ls_of_an_empty_or_missing_folder(tmp_path, capsys):
    assert main(["ls", str(tmp_path)]) == 0
    assert capsys.readouterr().err.strip() == f"no runs under {tmp_path}"
    assert main(["ls", str(tmp_path / "nowhere")]) == 1
    assert "is not a folder" in capsys.readouterr().err


def test_show_counts_every_session_of_a_resumed_run(capsys):
    """run.json's ``backends`` is the latest session's report and ``totals`` adds up
    every session, as the history does: show prints the totals, so nothing reads as lost."""
    with unilog.init(project="p", id="resumed", name="first", group="g") as run:
        for step in range(5):
            run.log({"x": step})
    first = run.finish()["csv"]["delivered"]
    with unilog.init(project="p", id="resumed", resume="must") as run:
        for step in range(2):
            run.log({"x": step})
    second = run.finish()["csv"]["delivered"]
    assert (run.name, run.group) == ("first", "g")  # kept from the first session
    assert main(["show", "resumed"]) == 0
    out = capsys.readouterr().out
    assert "sessions: 2 (resumed 1 time, last at " in out
    assert "counts over all 2 sessions" in out
    assert f"delivered {first + second}" in out
    assert "history (all sessions): 7 values, 1 key: x" in out


def test_show_of_a_run_never_resumed_has_no_session_label(capsys):
    run = make_run("p")
    assert main(["show", str(run.dir)]) == 0
    out = capsys.readouterr().out
    assert "session" not in out
    assert "history: 6 values, 2 keys: loss, acc" in out
    assert "    csv          delivered " in out


@pytest.mark.parametrize("args", [["ls"], ["show", "x"], ["backends"]])
def test_help_of_each_command(args, tmp_path):
    proc = unilog_command(*args[:1], "--help", cwd=tmp_path)
    assert proc.returncode == 0 and "usage: unilog" in proc.stdout


def test_show_prints_the_first_summary_keys_of_a_wide_run(capsys):
    with unilog.init(project="p", id="wide") as run:
        run.log({f"k{i}": float(i) for i in range(300)})
    assert main(["show", "wide"]) == 0
    out = capsys.readouterr().out
    assert "    k49: 49.0" in out and "k50:" not in out
    assert "... 250 more (--full prints them all)" in out
    assert main(["show", "wide", "--full"]) == 0
    assert "    k299: 299.0" in capsys.readouterr().out
