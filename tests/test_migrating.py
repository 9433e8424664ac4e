"""Every ```python block of docs/migrating.md runs: each unilog form, and each
tracker's original code it replaces wherever that runs offline.

How the page is read:

- Each ```python fence is a block, named ``<section>-<n>`` (the section is the
  tracker its ``## `` heading names: wandb, swanlab, neptune, tensorboard,
  mlflow, lightning, hydra; else the heading's slug). A block that names
  ``unilog`` is a *unilog form*; any other is an *original*.
- An HTML comment right before a block directs the test:
  ``<!-- not run: <reason> -->`` leaves it out (few, originals only, each with
  its reason); ``<!-- test: same series k1, k2 -->`` before an original says
  that it and the next block (its unilog form) log the same series of those
  keys: the original is read back from what its tracker wrote (wandb's
  offline file, SwanLab's record stream, Neptune's offline operation log,
  TensorBoard's event files, MLflow's store, Lightning's ``metrics.csv``), the
  unilog form from its local record (``unilog.read_run``), and the (step,
  value) lists must agree.

How each block runs: as ``train.py`` in a fresh folder, in its own Python
process (``BLOCK_TIMEOUT`` seconds at most), ``WORKERS`` at a time. One pool per
session starts the selected blocks, slowest first, as soon as the first test
asks; each test waits for its own block.

Hidden prelude, put before a block's code (only the parts whose name the block
uses), standing for the reader's own code as the page says:

- ``train_step(lr=3e-3) -> (loss, acc)``: the same sequence in every process;
- ``images``: 4 x 8 x 8 x 3 floats in [0, 1] (numpy); ``weights``: 1,000 floats;
- ``fig``: a matplotlib figure (Agg);
- ``model``, ``train_loader``, ``val_loader``: tests/lightning_model.py's
  TinyClassifier (torch seeded with 0) and its loaders.

Files in every block's folder: ``model.pt`` (a torch state dict, made once per
session) and ``tokenizer/vocab.txt``.

Nothing reaches the network and nothing prompts: HOME is a session folder (no
``~/.netrc``, no API keys: every *_API_KEY / *_TOKEN variable of the trackers is
removed), ``UNILOG_MODE=offline``, ``UNILOG_DIR=<folder>/runs``,
``WANDB_MODE=offline`` with wandb's folders in the block's folder, telemetry off
(``DO_NOT_TRACK``, ``MLFLOW_DISABLE_TELEMETRY``); the originals choose their
offline modes themselves (SwanLab's and Neptune's ``mode="offline"``, a SQLite
MLflow store, a ``SummaryWriter`` folder).

After each unilog form: it exited 0, and every run it made (a folder with
``run.json`` and ``metrics.csv``) reads back with ``unilog.read_run`` as
finished, at least one of them with metrics, and no backend of any of them
reported an error, a failure, a drop or was disabled.

Blocks of ``unilog.compat.neptune`` (written beside this test) are expected to
fail while that module does not exist (xfail, not strict).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "migrating.md"
BLOCK_TIMEOUT = 240  # seconds; a block takes 1-10 s alone
WORKERS = 3  # blocks at a time: a block mostly waits (imports, SDK helpers, I/O)
MAX_NOT_RUN = 4
TRACKERS = ("wandb", "swanlab", "neptune", "tensorboard", "mlflow", "lightning", "hydra")
#: Rough seconds per block by section, to start the slow ones first.
COST = {"lightning": 10, "mlflow": 5, "neptune": 3, "tensorboard": 3, "wandb": 2,
        "swanlab": 2}

# -- reading the page ------------------------------------------------------------------


@dataclass
class Block:
    """One ```python block of the page."""

    id: str
    section: str
    line: int  # of the opening fence, 1-based
    code: str
    not_run: str | None = None  # the reason given in <!-- not run: ... -->
    same_series: tuple[str, ...] = ()  # from <!-- test: same series ... --> (an original)
    original: Block | None = None  # for a unilog form: the original it is compared with

    @property
    def is_unilog(self) -> bool:
        return re.search(r"\bunilog\b", self.code) is not None

    @property
    def needs_compat(self) -> bool:
        return "unilog.compat" in self.code

    def __repr__(self) -> str:  # the parametrize id is set separately; keep reprs short
        return f"<block {self.id} at docs/migrating.md:{self.line}>"


_DIRECTIVE = re.compile(r"<!--\s*(not run|test):\s*(.*?)\s*-->")


def _section(heading: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")
    if "weights-biases" in slug:
        return "wandb"
    return next((name for name in TRACKERS if name in slug), slug.split("-")[0] or "intro")


def parse(text: str) -> tuple[list[Block], list[str]]:
    """The page's python blocks, and the problems found reading it (a directive
    followed by no block, an unknown directive, a pair left open)."""
    blocks: list[Block] = []
    problems: list[str] = []
    section, counts = "intro", {}
    pending: list[tuple[int, str, str]] = []  # directives waiting for their block
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = _section(line[3:])
        match = _DIRECTIVE.search(line)
        if match:
            pending.append((i + 1, match[1], match[2]))
        elif line.startswith("```"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("```")),
                       len(lines))
            if line.strip() == "```python":
                counts[section] = counts.get(section, 0) + 1
                block = Block(f"{section}-{counts[section]}", section, i + 1,
                              "\n".join(lines[i + 1:end]) + "\n")
                for where, kind, arg in pending:
                    if kind == "not run":
                        block.not_run = arg
                    elif arg.startswith("same series "):
                        block.same_series = tuple(
                            k.strip() for k in arg[len("same series "):].split(","))
                    else:
                        problems.append(f"line {where}: unknown directive {arg!r}")
                blocks.append(block)
            elif pending:
                problems.append(f"line {pending[0][0]}: a directive before a "
                                f"{line.strip()!r} block, not a python one")
            pending = []
            i = end
        elif line.strip() and pending:
            problems.append(f"line {pending[0][0]}: a directive not right before a block")
            pending = []
        i += 1
    for before, after in zip(blocks, blocks[1:] + [None]):
        if before.same_series:
            if (after is None or after.section != before.section or not after.is_unilog
                    or before.is_unilog):
                problems.append(f"{before.id}: 'same series' must sit before an original "
                                "followed by its unilog form")
            else:
                after.original = before
    return blocks, problems


BLOCKS, PROBLEMS = parse(DOC.read_text(encoding="utf-8"))
RUNNABLE = [b for b in BLOCKS if b.not_run is None]


def compat_neptune_exists() -> bool:
    try:
        return importlib.util.find_spec("unilog.compat.neptune") is not None
    except ImportError:  # unilog.compat itself missing
        return False


# -- running a block -------------------------------------------------------------------

PRELUDE = {
    "train_step": '''
_calls = iter(range(1_000_000))


def train_step(lr=3e-3):
    """One training step: (loss, accuracy), the same sequence in every process."""
    i = next(_calls)
    return 2.0 / (1.0 + 100 * lr * i), min(1.0, 0.5 + i / 60)
''',
    "images": '''
import numpy as _np
images = _np.random.default_rng(0).random((4, 8, 8, 3))
''',
    "weights": '''
import numpy as _np
weights = _np.random.default_rng(1).normal(size=1000)
''',
    "fig": '''
import matplotlib as _mpl
_mpl.use("Agg")
import matplotlib.pyplot as _plt
fig, _ax = _plt.subplots(figsize=(2, 2))
_ax.plot([0, 1, 2], [2.0, 1.0, 0.5])
''',
    "train_loader": '''
import torch as _torch
from tests.lightning_model import TinyClassifier as _Tiny, loaders as _loaders
_torch.manual_seed(0)
model = _Tiny()
train_loader, val_loader = _loaders()
''',
}
#: Variables a block must not inherit: trackers' settings and anything like a key.
_SECRETS = re.compile(
    r"^(WANDB|SWANLAB|NEPTUNE|MLFLOW|UNILOG|DATABRICKS|AWS)_|_(API_KEY|TOKEN)$")


def script(block: Block) -> str:
    """The block as train.py: the prelude parts it uses, then its code as written."""
    parts = [code for name, code in PRELUDE.items()
             if re.search(rf"\b{name}\b", block.code)]
    return ("# Hidden prelude of tests/test_migrating.py\n" + "".join(parts)
            + f"\n# docs/migrating.md, block {block.id} (line {block.line})\n" + block.code)


def environment(folder: Path, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not _SECRETS.search(k)}
    env.pop("NETRC", None)
    env.update(
        HOME=str(home), MPLBACKEND="Agg", MPLCONFIGDIR=str(home / "matplotlib"),
        PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1", DO_NOT_TRACK="1",
        MLFLOW_DISABLE_TELEMETRY="true", WANDB_MODE="offline", WANDB_SILENT="true",
        WANDB_DIR=str(folder), WANDB_CACHE_DIR=str(folder / ".wandb-cache"),
        WANDB_DATA_DIR=str(folder / ".wandb-data"),
        WANDB_CONFIG_DIR=str(folder / ".wandb-config"), WANDB_ERROR_REPORTING="false",
        UNILOG_MODE="offline", UNILOG_DIR=str(folder / "runs"), UNILOG_SILENT="true",
        UNILOG_FINISH_TIMEOUT="60",
    )
    return env


@dataclass
class Outcome:
    folder: Path
    returncode: int | None  # None: timed out
    output: str
    seconds: float


def run_block(block: Block, root: Path, template: Path, home: Path) -> Outcome:
    folder = root / block.id
    shutil.copytree(template, folder)
    (folder / "train.py").write_text(script(block), encoding="utf-8")
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "train.py"], cwd=folder,
                            env=environment(folder, home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=BLOCK_TIMEOUT)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: the block and its helpers
        output, _ = proc.communicate()
        code = None
    return Outcome(folder, code, output, time.monotonic() - start)


def make_template(root: Path, home: Path) -> Path:
    """The files every block's folder starts with; also warms matplotlib's font
    cache in HOME once, so that blocks do not each build it."""
    template = root / "template"
    (template / "tokenizer").mkdir(parents=True)
    (template / "tokenizer" / "vocab.txt").write_text("[PAD]\n[UNK]\nthe\n", encoding="utf-8")
    setup = ("import torch, matplotlib.pyplot\n"
             "torch.save({'weight': torch.zeros(2, 2)}, 'model.pt')\n")
    subprocess.run([sys.executable, "-c", setup], cwd=template, check=True, timeout=120,
                   env=environment(template, home), stdin=subprocess.DEVNULL,
                   capture_output=True)
    return template


@pytest.fixture(scope="session")
def outcomes(request, tmp_path_factory):
    """``{block id: Future[Outcome]}`` for the blocks of the selected tests."""
    selected = [item.callspec.params["block"] for item in request.session.items
                if getattr(item, "callspec", None) is not None
                and isinstance(item.callspec.params.get("block"), Block)]
    needed = {b.id: b for b in selected}
    for b in selected:  # a compared unilog form needs its original too
        if b.original is not None:
            needed[b.original.id] = b.original
    compat = compat_neptune_exists()
    order = sorted((b for b in needed.values() if compat or not b.needs_compat),
                   key=lambda b: -COST.get(b.section, 1))
    root = tmp_path_factory.mktemp("migrating")
    home = root / "home"
    home.mkdir()
    template = make_template(root, home)
    pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="migrating")
    futures: dict[str, Future] = {
        b.id: pool.submit(run_block, b, root, template, home) for b in order}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)


def finished(outcome: Outcome, block: Block) -> Outcome:
    where = f"docs/migrating.md:{block.line} ({block.id})"
    assert outcome.returncode is not None, (
        f"{where} ran past {BLOCK_TIMEOUT} s:\n{outcome.output[-4000:]}")
    assert outcome.returncode == 0, (
        f"{where} exited {outcome.returncode}:\n{outcome.output[-4000:]}")
    return outcome


# -- what a block left ------------------------------------------------------------------


def unilog_runs(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.rglob("run.json")
                  if (p.parent / "metrics.csv").is_file())


def check_runs(folder: Path, block: Block) -> list:
    import unilog

    runs = unilog_runs(folder)
    assert runs, f"{block.id} made no unilog run under {folder}"
    datas = [unilog.read_run(r) for r in runs]
    for data in datas:
        assert data.status == "finished", f"{block.id}: {data.path} is {data.status}"
        for name, counts in data.manifest.get("backends", {}).items():
            bad = {k: counts.get(k) for k in ("errors", "failed", "dropped", "disabled")
                   if counts.get(k)}
            assert not bad, f"{block.id}: backend {name} of {data.path}: {bad}"
    assert any(data.history for data in datas), f"{block.id}: no run has metrics"
    return datas


def unilog_series(datas: list, keys: tuple[str, ...]) -> dict[str, list]:
    having = [d for d in datas if any(k == key for _, _, k, _ in d.history for key in keys)]
    assert len(having) == 1, f"expected one run with {keys}, found {[d.path for d in having]}"
    return {key: having[0].series(key) for key in keys}


def wandb_series(folder: Path) -> dict[str, list]:
    from tests.readers_wandb import read_wandb

    return read_wandb(folder)["series"]  # WANDB_DIR is the block's folder


def swanlab_series(folder: Path) -> dict[str, list]:
    from tests.readers_swanlab import swanlab_records

    series: dict[str, list] = {}
    for run_folder in sorted((folder / "swanlog").glob("run-*/")):
        for record in swanlab_records(run_folder):
            if record.WhichOneof("record_type") == "scalar":
                series.setdefault(record.scalar.key, []).append(
                    (record.scalar.step, record.scalar.value.number))
    return series


def neptune_series(folder: Path) -> dict[str, list]:
    """Float series of Neptune's offline operation log in ``./.neptune``; a value
    appended without a step gets the series' previous step + 1 (from 0), as
    Neptune's server numbers it."""
    import json

    series: dict[str, list] = {}
    for log in sorted(folder.glob(".neptune/offline/run__*/data-*.log")):
        for line in log.read_text(encoding="utf-8").splitlines():
            op = json.loads(line)["obj"]
            if op["type"] != "LogFloats":
                continue
            points = series.setdefault("/".join(op["path"]), [])
            for value in op["values"]:
                step = value["step"]
                if step is None:
                    step = points[-1][0] + 1 if points else 0
                points.append((int(step), value["value"]))
    return series


def tensorboard_series(folder: Path) -> dict[str, list]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    series: dict[str, list] = {}
    event_dirs = {p.parent for p in folder.rglob("events.out.tfevents.*")
                  if "runs" not in p.relative_to(folder).parts}
    for event_dir in sorted(event_dirs):
        acc = EventAccumulator(str(event_dir), size_guidance={"scalars": 0})
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            series.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return series


def mlflow_series(folder: Path) -> dict[str, list]:
    with warnings.catch_warnings():  # SQLAlchemy's, when this process opens the store
        warnings.filterwarnings("ignore", message="The ``noload`` loader strategy")
        from mlflow.tracking import MlflowClient

        series: dict[str, list] = {}
        for db in sorted(folder.glob("*.db")):
            client = MlflowClient(f"sqlite:///{db}")
            experiments = [e.experiment_id for e in client.search_experiments()]
            for run in client.search_runs(experiments):
                for key in run.data.metrics:
                    history = sorted(client.get_metric_history(run.info.run_id, key),
                                     key=lambda m: (m.step, m.timestamp))
                    series.setdefault(key, []).extend((m.step, m.value) for m in history)
    return series


def lightning_csv_series(folder: Path) -> dict[str, list]:
    series: dict[str, list] = {}
    for path in sorted(folder.rglob("version_*/metrics.csv")):
        with open(path, newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                for key, value in row.items():
                    if key not in ("epoch", "step") and value != "":
                        series.setdefault(key, []).append((int(row["step"]), float(value)))
    return series


READERS = {"wandb": wandb_series, "swanlab": swanlab_series, "neptune": neptune_series,
           "tensorboard": tensorboard_series, "mlflow": mlflow_series,
           "lightning": lightning_csv_series}


def assert_same_series(original: dict[str, list], mine: dict[str, list],
                       keys: tuple[str, ...], block: Block) -> None:
    for key in keys:
        theirs = original.get(key)
        assert theirs, f"{block.original.id} logged no {key!r} (it has {sorted(original)})"
        ours = mine[key]
        assert [s for s, _ in ours] == [s for s, _ in theirs], (
            f"{block.id}: {key} steps differ from {block.original.id}'s")
        assert [v for _, v in ours] == pytest.approx([v for _, v in theirs], rel=1e-6), (
            f"{block.id}: {key} values differ from {block.original.id}'s")


# -- the tests ---------------------------------------------------------------------------


def test_the_page_reads_cleanly():
    """Every directive sits right before its block; the trackers all have pairs."""
    assert not PROBLEMS, PROBLEMS
    for tracker in ("wandb", "swanlab", "neptune", "tensorboard", "mlflow", "lightning"):
        kinds = {b.is_unilog for b in BLOCKS if b.section == tracker}
        assert kinds == {True, False}, f"section {tracker}: original and unilog form"
    assert sum(1 for b in BLOCKS if b.original is not None) >= 3


def test_blocks_not_run_are_few_and_explained():
    not_run = [b for b in BLOCKS if b.not_run is not None]
    assert len(not_run) <= MAX_NOT_RUN, [b.id for b in not_run]
    for block in not_run:
        assert len(block.not_run) >= 15, f"{block.id}: say why it is not run"
        assert not block.is_unilog, f"{block.id}: every unilog form is run"


def _anchors(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a markdown file."""
    anchors = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


def test_links_resolve():
    """Every relative link of the page names a file that exists, and a heading in it."""
    text = DOC.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if "://" in target:
            continue
        file, _, anchor = target.partition("#")
        path = (DOC.parent / file) if file else DOC
        assert path.is_file(), f"{target}: no file {path}"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{target}: no heading #{anchor} in {path.name}"


def _param(block: Block):
    marks = []
    if block.needs_compat and not compat_neptune_exists():
        marks.append(pytest.mark.xfail(reason="compat.neptune pending", strict=False))
    return pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", [_param(b) for b in RUNNABLE])
def test_block(block: Block, outcomes):
    if block.id not in outcomes:  # unilog.compat.neptune is not there yet
        pytest.fail("unilog.compat.neptune does not exist yet")
    outcome = finished(outcomes[block.id].result(), block)
    if not block.is_unilog:
        return
    datas = check_runs(outcome.folder, block)
    if block.original is not None:
        original = finished(outcomes[block.original.id].result(), block.original)
        keys = block.original.same_series
        assert_same_series(READERS[block.section](original.folder),
                           unilog_series(datas, keys), keys, block)
