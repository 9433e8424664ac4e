"""Property-based round trips of what users hand to unilog: any text or number
logged comes back from ``read_run`` (``series``, ``metrics``, ``summary``) with its
value and its type, and any file name ``log_artifact`` takes comes back from
``use_artifact(...).download()`` and ``.file()``. Old run directories stay readable.

Hypothesis example counts are small on purpose: each example is a real run
(init, the local record's worker, finish, read back), and the suite stays fast.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import unilog

pd = pytest.importorskip("pandas")

# The autouse ``isolated`` fixture only sets environment variables; every example
# below makes its own temporary folder, so sharing that fixture is harmless.
PROPERTY = settings(max_examples=30, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# Text that a reader could mistake for a number, a CSV control character or an
# escape sequence: the cases that broke before.
TRICKY_TEXT = st.sampled_from([
    "007", "1e3", "1E3", "-0", "+1", ".5", "1.", "0x1f", "1_000", " 5", "5 ", "nan",
    "NaN", "inf", "-inf", "Infinity", "True", "null", "", "1,5", '"7"', "'7'",
    "a\nb", "a\r\nb", "\\n", "\\\\n", "a\\", "\\", '","', "\x00", "\u2028", "é", "🤖",
    "media/x/step_0.png",
])
NUMBER_TEXT = st.from_regex(r"[-+]?[0-9]{1,25}(\.[0-9]*)?([eE][-+]?[0-9]{1,3})?",
                            fullmatch=True)
TEXT = st.one_of(TRICKY_TEXT, NUMBER_TEXT, st.text(max_size=30),
                 st.text(alphabet='\n\r\\",\' 0123456789.eE+-', max_size=12))
NUMBER = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                   st.floats(allow_nan=True, allow_infinity=True))


def same(got, want) -> bool:
    """Equal value and kind: text is text, an int is an int, a float a float (NaN = NaN)."""
    if isinstance(want, str):
        return type(got) is str and got == want
    if type(got) is not type(want):
        return False
    if isinstance(want, float) and math.isnan(want):
        return math.isnan(got)
    return got == want and (not isinstance(want, float) or
                            math.copysign(1, got) == math.copysign(1, want))


def same_in_frame(got, want) -> bool:
    """A DataFrame cell: text is the str, a number any number equal to it (an int
    column may be int64, a column of ints and floats float64)."""
    if isinstance(want, str):
        return type(got) is str and got == want
    if isinstance(got, str) or not isinstance(got, numbers.Number):
        return False
    if isinstance(want, float) and math.isnan(want):
        return math.isnan(got)
    return got == want or math.isclose(float(got), float(want), rel_tol=1e-15)


def log_and_read(values: list, note) -> tuple[unilog.RunData, dict]:
    with tempfile.TemporaryDirectory() as root:
        run = unilog.init(project="p", dir=root, backends=["csv"])
        try:
            with warnings.catch_warnings():
                # NaN and infinity are logged on purpose; unilog warns about them once.
                warnings.filterwarnings("ignore", "key .* kept as a float",
                                        unilog.UnilogWarning)
                for value in values:
                    run.log({"value": value})
            run.summary["note"] = note
        finally:
            run.finish()
        data = unilog.read_run(run.dir)
        on_disk = json.loads((run.dir / "summary.json").read_text(encoding="utf-8"))
        return data, on_disk


@PROPERTY
@given(values=st.lists(st.one_of(TEXT, NUMBER), min_size=1, max_size=6), note=TEXT)
@example(values=["007", "1e3", "a\nb", 7, 1e3], note="a\nb")
@example(values=[1, 2, 3], note="1e3")
def test_logged_values_keep_their_value_and_type(values, note):
    data, on_disk = log_and_read(values, note)

    series = data.series("value")
    assert [step for step, _ in series] == list(range(len(values)))
    assert all(same(got, want) for (_, got), want in zip(series, values)), (series, values)

    column = data.metrics["value"].tolist()
    assert all(same_in_frame(got, want) for got, want in zip(column, values)), (column, values)
    numeric = pd.api.types.is_numeric_dtype(data.metrics["value"])
    assert numeric == (not any(isinstance(v, str) for v in values))

    assert same(data.summary["value"], values[-1]), (data.summary, values[-1])
    assert same(data.summary["note"], note)
    assert same(on_disk["note"], note) and same(on_disk["value"], values[-1])


def test_text_that_looks_like_a_number_stays_text():
    """The issue's cases, deterministic: text is never parsed into a number, and
    summary.json holds the text itself, not its escaped form."""
    data, _ = log_and_read(["007", "1e3", "a\nb"], "x")
    assert data.series("value") == [(0, "007"), (1, "1e3"), (2, "a\nb")]
    assert data.metrics["value"].tolist() == ["007", "1e3", "a\nb"]
    assert data.summary["value"] == "a\nb"
    assert data.kinds == ["text", "text", "text"]

    data, _ = log_and_read([7, 1000.0, 7], "x")
    assert data.series("value") == [(0, 7), (1, 1000.0), (2, 7)]
    assert [type(v) for _, v in data.series("value")] == [int, float, int]
    assert data.metrics["value"].dtype == float


def test_a_key_with_numbers_and_text_keeps_each_kind():
    data, _ = log_and_read([1, "2", 3.5, "nan", math.inf], "x")
    assert data.kinds == ["number", "text", "number", "text", "number"]
    assert data.metrics["value"].tolist() == [1, "2", 3.5, "nan", math.inf]
    assert [type(v) for v in data.metrics["value"]] == [int, str, float, str, float]


# -- old run directories ---------------------------------------------------------------

LEGACY_METRICS = (
    "step,time,key,value\r\n"
    "0,1700000000.0,loss,0.5\r\n"
    "0,1700000000.0,note,hello\r\n"
    "0,1700000000.0,img,media/img/step_0.png\r\n"
    "1,1700000001.0,loss,nan\r\n"
    "1,1700000001.0,note,two\\nlines\r\n"
    "1,1700000001.0,img,media/img/step_1.png\r\n"
    "2,1700000002.0,loss,7\r\n"
    "2,1700000002.0,note,007\r\n"
)


def legacy_run(root: Path) -> Path:
    """A run directory as unilog wrote it before text was marked in metrics.csv."""
    run_dir = root / "old" / "r1"
    run_dir.mkdir(parents=True)
    (run_dir / "metrics.csv").write_bytes(LEGACY_METRICS.encode())
    manifest = {"id": "r1", "name": "r1", "project": "old", "status": "finished", "step": 3}
    (run_dir / "run.json").write_text(json.dumps(manifest))
    (run_dir / "summary.json").write_text(json.dumps({"loss": 7, "note": "007"}))
    return run_dir


def test_an_old_run_directory_reads_as_before(tmp_path):
    """Without marks, a value that reads as a number is one (the old rule): the
    best guess for files written before text was marked."""
    data = unilog.read_run(legacy_run(tmp_path))
    assert data.series("note") == [(0, "hello"), (1, "two\nlines"), (2, 7)]
    assert data.kinds == ["number", "text", "text", "number", "text", "text", "number", "number"]
    metrics = data.metrics
    assert list(metrics.columns) == ["loss", "note", "img"]
    assert metrics["loss"].tolist()[0] == 0.5 and math.isnan(metrics["loss"][1])
    assert metrics["img"].tolist()[:2] == ["media/img/step_0.png", "media/img/step_1.png"]
    assert metrics["img"].isna().tolist() == [False, False, True]
    assert data.summary == {"loss": 7, "note": "007"}


def test_resuming_an_old_run_marks_only_the_new_text(tmp_path):
    run_dir = legacy_run(tmp_path)
    run = unilog.init(project="old", id="r1", resume="must", dir=tmp_path, backends=["csv"])
    assert run.step == 3
    run.log({"note": "008", "loss": 8})
    run.finish()
    data = unilog.read_run(run_dir)
    assert data.series("note") == [(0, "hello"), (1, "two\nlines"), (2, 7), (3, "008")]
    assert data.series("loss")[-1] == (3, 8)
    assert data.summary["note"] == "008"


# -- artifact file names ---------------------------------------------------------------

# Any name a POSIX file system takes: no "/" and no NUL, not "." or "..", at most
# 255 bytes. On Windows, ":" and "\\" cannot be in a file name at all.
FILE_NAME = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)),
    min_size=1, max_size=40,
).filter(lambda n: n not in (".", "..") and len(os.fsencode(n)) <= 255)
TRICKY_NAMES = ["epoch=3-12:30:00.ckpt", "2024-01-02T03:04:05+00:00.json", "C:", "C:x",
                "a\\b", "\\", "\\lead", "..\\up", "a\\\\b", ":", "nul", "x" * 255,
                "é" * 127, "bad\udcff", ".hidden", " spaced ", "-", "a\nb"]


@pytest.mark.skipif(os.name == "nt", reason="':' and '\\' are not file-name characters")
@PROPERTY
@given(names=st.lists(st.one_of(st.sampled_from(TRICKY_NAMES), FILE_NAME), min_size=1,
                      max_size=4, unique=True))
@example(names=["epoch=3-12:30:00.ckpt"])
@example(names=["a\\b", "x" * 255])
def test_every_file_name_log_artifact_takes_round_trips(names):
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        src = root / "src"
        (src / "sub").mkdir(parents=True)
        for i, name in enumerate(names):
            (src / name).write_bytes(f"top {i}".encode())
            (src / "sub" / name).write_bytes(f"sub {i}".encode())
        single = src / names[0]

        run = unilog.init(project="p", dir=root / "runs", backends=["csv"])
        try:
            run.log_artifact(src, name="folder")
            run.log_artifact(single, name="single")
            folder = run.use_artifact("folder:latest")
            got = Path(folder.download())
            elsewhere = Path(folder.download(root / "elsewhere"))
            one = Path(run.use_artifact("single").file())
        finally:
            run.finish()

        want = {name: f"top {i}".encode() for i, name in enumerate(names)}
        want.update({f"sub/{name}": f"sub {i}".encode() for i, name in enumerate(names)})
        for folder_path in (got, elsewhere):
            found = {p.relative_to(folder_path).as_posix(): p.read_bytes()
                     for p in folder_path.rglob("*") if p.is_file()}
            assert found == want
        assert one.name == names[0] and one.read_bytes() == b"top 0"
        # Never outside the folders asked for.
        assert sorted(p.name for p in root.iterdir()) == ["elsewhere", "runs", "src"]
