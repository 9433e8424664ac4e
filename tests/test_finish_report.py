"""What finish reports. A full disk at ``finish()`` (issue 10, A9): finish never raises an OSError
under ``on_error="warn"`` (a ``with`` block included), and the report tells the
truth about the local record (the disk is a real 256 KiB tmpfs, filled up).
And the closing lines: where each backend wrote and how to look (C7)."""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys

import pytest

import unilog


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs mounted under tmp_path (needs root and mount(8))."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk) -> None:
    """Write until the disk refuses (ENOSPC)."""
    with open(disk / "filler", "wb", buffering=0) as filler:
        try:
            while True:
                filler.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_a_full_disk_at_finish_is_reported_not_raised(small_disk, caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    with unilog.init(project="p", backends=["csv", "recorder"], dir=str(small_disk)) as run:
        run.log({"early": 1.0})
        run.flush(timeout=10)
        fill(small_disk)
        for i in range(2000):
            run.log({"x": float(i), "text": f"line {i} " * 20})
    report = run.finish()  # the with block ended it; this returns the same report

    local = report["csv"]
    assert local["errors"] >= 1
    assert "run.json not written" in local.get("manifest", "") or local["failed"]
    assert report["recorder"]["delivered"] == 2001 + 1  # config, rows: other backends unharmed
    messages = [r.getMessage() for r in caplog.records]
    assert any("the local record ('csv') did not store everything" in m for m in messages)
    assert not any("the local record has it all" in m for m in messages)


def test_a_run_that_fits_says_the_local_record_has_it_all(caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    run = unilog.init(backends=["csv", "raising"])
    run.log({"x": 1})
    run.finish()
    assert any("the local record has it all" in r.getMessage() for r in caplog.records)


def test_finish_prints_where_each_backend_wrote_and_how_to_look(capsys):
    run = unilog.init(project="p", backends=["csv", "tensorboard"], mode="offline")
    run.log({"x": 1})
    run.finish()
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"unilog: run {run.id} finished: {run.dir}"
    views = dict(line.split(None, 1) for line in err[1:3])
    assert views["csv"].endswith(f"unilog show {run.dir}")
    assert "tensorboard --logdir" in views["tensorboard"]


def test_unilog_silent_keeps_finish_quiet(capsys, monkeypatch):
    monkeypatch.setenv("UNILOG_SILENT", "true")
    unilog.init(backends=["csv"]).finish()
    assert "unilog: run" not in capsys.readouterr().err


def test_the_printed_commands_run_from_a_shell_without_the_venv(tmp_path):
    """Each backend's view names a program the shell finds, or its path beside
    this Python: from a plain shell (an inactive venv) it still runs."""
    import shutil

    from unilog.backend import program

    for name in ("unilog", "tensorboard", "mlflow", "wandb"):
        command = program(name)
        assert shutil.which(command) is not None, (name, command)
    plain = subprocess.run(["bash", "-c", f"{program('unilog')} --version"],
                           env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 0 and plain.stdout.startswith("unilog "), plain.stderr


def test_reading_the_git_state_never_writes_the_users_index(tmp_path):
    """`git status` refreshes (rewrites, under index.lock) a stale index unless told
    not to: a `git commit` of the user's at that moment would fail."""
    from unilog._manifest import git_state

    repo = tmp_path / "repo"
    repo.mkdir()
    run = lambda *args: subprocess.run(["git", *args], cwd=repo, check=True,  # noqa: E731
                                       capture_output=True)
    run("init", "-q")
    (repo / "f.txt").write_text("x")
    run("add", "f.txt")
    run("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    index = repo / ".git" / "index"
    before = index.stat().st_mtime_ns
    os.utime(repo / "f.txt", ns=(before + 10**9, before + 10**9))  # stale stat info
    state = git_state(repo)
    assert state is not None and state["dirty"] is False
    assert index.stat().st_mtime_ns == before
