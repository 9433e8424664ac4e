"""The example, the CLI, the contract helper and the benchmark command run end to end."""

from __future__ import annotations

import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import unilog
from unilog.cli import main as cli_main
from unilog.testing import SECRET, check_backend

from .conftest import REPO, subprocess_env


#: scikit-learn's digits: 1,797 images, 20% held out for validation (examples/digits.py).
DIGITS_TRAIN, DIGITS_VAL = 1797 - 359, 359


def run_example(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    """``python <args>`` in a child with the repo on its path; fails the test on a non-zero exit."""
    proc = subprocess.run([sys.executable, *args], env=subprocess_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def only_run_dir(root: Path) -> Path:
    """The one run directory under ``root``; fails when there are none or several."""
    manifests = list(root.rglob("run.json"))
    assert len(manifests) == 1, manifests
    return manifests[0].parent


def image_captions(run_dir: Path) -> dict[str, str]:
    """``{image tag: caption}`` from the run's TensorBoard events (the local record keeps
    only the PNG; the caption travels with each backend's own image type)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    acc.Reload()
    return {tag: acc.SummaryMetadata(tag).summary_description for tag in acc.Tags()["images"]}


@pytest.mark.slow
def test_digits_example_logs_everything_and_reloads_the_best_checkpoint(tmp_path):
    proc = run_example([str(REPO / "examples" / "train.py"), "--epochs", "2",
                        "--samples-every", "1", "--hist-every", "10", "--dir", str(tmp_path)])
    run_dir = only_run_dir(tmp_path)
    assert f"tensorboard --logdir {run_dir / 'tensorboard'}" in proc.stdout
    assert "mlflow ui --backend-store-uri sqlite:" in proc.stdout
    data = unilog.read_run(run_dir)
    assert data.status == "finished"
    assert set(data.manifest["backends"]) == {"csv", "tensorboard", "mlflow"}
    assert data.config["optim"] == {"name": "adam", "lr": 3e-3}
    assert data.config["runtime"] == {"device": "cpu", "world_size": 1}
    metrics = data.metrics
    steps = math.ceil(DIGITS_TRAIN / 64)
    assert metrics["train/loss"].notna().sum() == metrics["train/acc"].notna().sum() == 2 * steps
    assert metrics["epoch"].dropna().tolist() == [0, 1]
    assert metrics["val/acc"].notna().sum() == 2 and metrics["val/acc"].max() > 0.5
    assert metrics["val/loss"].notna().sum() == 2

    # Sample predictions: eight PNGs per epoch, captioned, and a table of the same.
    for i in range(8):
        images = metrics[f"val/samples/{i}"].dropna()
        assert len(images) == 2
        assert (run_dir / images.iloc[0]).read_bytes()[:4] == b"\x89PNG"
    captions = image_captions(run_dir)
    assert len(captions) == 8
    assert all(re.fullmatch(r"pred \d / true \d", c) for c in captions.values()), captions
    table = (run_dir / metrics["val/predictions"].dropna().iloc[-1]).read_text().splitlines()
    assert table[0] == "sample,pred,true,correct" and len(table) == 9

    # Weight histograms of each layer every 10 steps (2 * 23 steps: 0, 10, 20, 30, 40).
    for layer in ("conv1", "conv2", "fc"):
        hists = metrics[f"weights/{layer}"].dropna()
        assert len(hists) == 5
        assert sum(json.loads((run_dir / hists.iloc[-1]).read_text())["counts"]) > 0

    best = max(metrics["val/acc"].dropna())
    models = [a for a in data.artifacts if a.name == "model"]
    assert models and all(a.type == "model" for a in models)
    (best_model,) = [a for a in models if "best" in a.aliases]
    assert best_model.metadata["val_acc"] == pytest.approx(best)
    assert [f.path for f in best_model.files] == ["model.pt"]
    assert data.summary["best_val_acc"] == pytest.approx(best)
    assert data.summary["reloaded_val_acc"] == pytest.approx(data.summary["best_val_acc"])


def plain_path() -> str:
    """$PATH without this Python's folder: a shell in which the virtualenv is not
    activated, as ``make run`` is typed."""
    venv_bin = Path(sys.executable).parent.resolve()
    return os.pathsep.join(d for d in os.environ.get("PATH", "").split(os.pathsep)
                           if d and Path(d).resolve() != venv_bin)


@pytest.fixture(scope="module")
def plain_shell_run(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """examples/train.py as ``make run`` starts it (this Python, from the repository,
    in a shell without the virtualenv on PATH), backends from $UNILOG_BACKENDS
    written with blanks after the commas."""
    root = tmp_path_factory.mktemp("plain") / "runs"
    proc = subprocess.run(
        [sys.executable, "examples/train.py", "--epochs", "1", "--dir", str(root)], cwd=REPO,
        env=subprocess_env(UNILOG_BACKENDS="csv, tensorboard , mlflow", PATH=plain_path()),
        capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc, only_run_dir(root)


@pytest.mark.slow
def test_example_reads_unilog_backends_with_blanks(plain_shell_run):
    proc, run_dir = plain_shell_run
    assert set(unilog.read_run(run_dir).manifest["backends"]) == {"csv", "tensorboard", "mlflow"}
    assert "with csv, tensorboard, mlflow" in proc.stdout


@pytest.mark.slow
def test_example_prints_commands_that_work_in_a_plain_shell(plain_shell_run):
    """Each printed command runs as printed from the same folder and shell: the local
    record's for real, the servers' (tensorboard, mlflow ui) asked for their version."""
    proc, run_dir = plain_shell_run
    lines = [line.split(":", 1)[1].strip() for line in proc.stdout.splitlines()
             if re.match(r"  (local record|TensorBoard|MLflow):", line)]
    lines.append(next(line.strip() for line in proc.stdout.splitlines()
                      if "read_run(" in line))
    assert len(lines) == 4, proc.stdout
    env = subprocess_env(PATH=plain_path())
    for line in lines:
        program, *args = shlex.split(line)
        if program.endswith("tensorboard"):
            args = ["--version_tb"]
        elif program.endswith("mlflow"):
            args = ["--version"]
        done = subprocess.run(["bash", "-c", shlex.join([program, *args])], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (line, done.stdout + done.stderr)
    assert run_dir.name in subprocess.run(
        ["bash", "-c", lines[0]], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60).stdout


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_logs_one_complete_run(tmp_path):
    proc = run_example(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                        str(REPO / "examples" / "train.py"), "--epochs", "2", "--backends",
                        "csv", "--dir", str(tmp_path)])
    run_dir = only_run_dir(tmp_path)  # rank 1's run was disabled: no second directory
    assert proc.stdout.count("logged to") == 1
    data = unilog.read_run(run_dir)
    assert data.status == "finished"
    assert data.config["runtime"] == {"device": "cpu", "world_size": 2}
    # Each rank trains on half the data; only rank 0's steps are logged, once each.
    steps = math.ceil(DIGITS_TRAIN // 2 / 64)
    assert data.metrics["train/loss"].notna().sum() == 2 * steps
    assert [step for step, _ in data.series("train/loss")] == sorted(
        {step for step, _ in data.series("train/loss")})
    assert data.metrics["val/acc"].notna().sum() == 2
    assert data.summary["reloaded_val_acc"] == pytest.approx(data.summary["best_val_acc"])


def test_cli_lists_backends_runs_and_shows_a_run(capsys, runs_dir):
    run = unilog.init(project="cli")
    run.log({"x": 1})
    run.finish()
    assert cli_main(["backends"]) == 0
    assert "csv" in capsys.readouterr().out
    assert cli_main(["ls", str(runs_dir)]) == 0
    assert run.id in capsys.readouterr().out
    assert cli_main(["show", str(run.dir)]) == 0
    assert "finished" in capsys.readouterr().out


def test_contract_helper_passes_for_csv_and_catches_a_failing_backend(tmp_path):
    report = check_backend("recorder", {}, tmp_path / "ok")
    assert report["delivered"] > 100
    for path in Path(report["run_dir"]).rglob("*"):
        assert not path.is_file() or SECRET.encode() not in path.read_bytes()
    with pytest.raises(unilog.BackendError):
        check_backend("raising", {}, tmp_path / "bad")


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_install_shows_its_progress(tmp_path):
    """``make install`` takes minutes on a fresh machine: each step says what it does
    before it starts, and pip's own progress is not silenced (read from ``make -n``:
    what it would run, without installing anything)."""
    proc = subprocess.run(["make", "-n", "install", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    installs = [i for i, line in enumerate(lines) if " -m pip install " in line]
    assert installs, proc.stdout
    for i in installs:
        assert "--quiet" not in lines[i].split() and " -q " not in f" {lines[i]} "
        assert lines[i - 1].startswith('echo "==> ') or lines[i - 2].startswith('echo "==> ')
        assert "-c constraints.txt" in lines[i]  # torch stays the CPU build


#: A name that installs unilog from a package index: "unilog" there is an unrelated
#: 2017 package, so every hint must say unilog-ml. Matches ``unilog[extra]``,
#: ``pip install unilog``, ``version("unilog")`` and ``name = "unilog"``.
OLD_DISTRIBUTION = re.compile(
    r"""(?<![\w-])unilog\[|pip install\s+['"]?unilog(?![\w-])"""
    r"""|version\(\s*['"]unilog['"]\s*\)|^name\s*=\s*["']unilog["']""")


def test_every_install_hint_names_the_unilog_ml_distribution():
    """The distribution is unilog-ml (the import name stays unilog): every install
    command, extra and metadata lookup in the repository says so, and so do the
    hints unilog prints."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    this_file = Path(__file__).relative_to(REPO).as_posix()
    found = []
    for path in listed.splitlines():
        if path == this_file or not (REPO / path).is_file():
            continue
        try:
            text = (REPO / path).read_text(encoding="utf-8")
        except UnicodeDecodeError:  # images, databases
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OLD_DISTRIBUTION.search(line):
                found.append(f"{path}:{number}: {line.strip()}")
    assert not found, "\n".join(found)

    from importlib import metadata

    dist = metadata.distribution("unilog-ml")
    assert any(req.startswith("unilog-ml[") and "extra == \"all\"" in req
               for req in dist.requires or []), dist.requires
    assert unilog.__version__ == dist.version
    error = unilog.BackendNotInstalled("x", "x_sdk", "mlflow")
    assert "pip install 'unilog-ml[mlflow]'" in str(error)


def test_the_package_config_ships_every_package_of_the_source_tree():
    """A non-editable install holds every package (``unilog.importers`` and
    ``unilog.compat`` were once left out of a hand-written list)."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from setuptools import find_packages

    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = set(find_packages(where=REPO, include=include))
    in_tree = {str(p.parent.relative_to(REPO)).replace(os.sep, ".")
               for top in ("unilog", "unilog_plugins") for p in (REPO / top).rglob("__init__.py")}
    assert shipped == in_tree
    assert {"unilog.importers", "unilog.compat.neptune"} <= shipped


def test_python_dash_m_unilog_is_the_unilog_command():
    proc = subprocess.run([sys.executable, "-m", "unilog", "--version"], capture_output=True,
                          text=True, timeout=60, env=subprocess_env())
    assert proc.returncode == 0 and proc.stdout.startswith("unilog "), proc.stderr
