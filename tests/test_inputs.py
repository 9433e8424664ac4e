"""Bad and unusual input to ``run.log``: each rule of unilog/_normalize.py, and
the per-backend adaptation of keys and media (unilog/_dispatch.py).

Whatever the input, nothing already logged is lost: a refused key is left out
(``on_error="warn"``, with a UnilogWarning naming it) or the whole call is
refused before anything is queued (``on_error="raise"``), and the local record
keeps every key that a backend could not take.
"""

from __future__ import annotations

import csv
import enum
import json
import logging
import io
import math
import re
from pathlib import Path

import numpy as np
import pytest

import unilog
from unilog import plugins
from unilog._config import REDACTED, is_secret_key
from unilog.read import escape, last_step
from unilog.errors import UnilogWarning
from unilog._normalize import MAX_DEPTH, InvalidValue

# -- helpers ------------------------------------------------------------------


def history(run) -> list[tuple[int, str, str]]:
    """``(step, key, raw value)`` of every line of the run's metrics.csv."""
    return [(step, key, value) for step, _, key, value in unilog.read_run(run.dir).history]


def keys_of(run) -> set[str]:
    return {key for _, key, _ in history(run)}


def nested(levels: int, leaf=1) -> dict:
    """``{"a": {"a": ... {"x": leaf}}}`` with ``levels`` dicts in all."""
    data = {"x": leaf}
    for _ in range(levels - 1):
        data = {"a": data}
    return data


def unilog_records(caplog, needle: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "unilog" and needle in r.getMessage()]


def unserialisable():
    torch = pytest.importorskip("torch")
    return [object(), [1, 2], (1,), {1, 2}, np.zeros(3), np.array(["a"]), torch.zeros(2),
            torch.ones(2, 2), b"bytes", 1 + 2j]


# -- values that cannot be logged -----------------------------------------------------


@pytest.mark.parametrize("value", unserialisable(), ids=lambda v: type(v).__name__)
def test_unloggable_value_under_warn_drops_only_that_key(recorded, value):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"good": 0})
    with pytest.warns(UnilogWarning, match="'bad'"):
        run.log({"good": 1, "bad": value, "also": 2})
    assert run.step == 2
    run.finish()
    assert history(run) == [(0, "good", "0"), (1, "good", "1"), (1, "also", "2")]
    assert recorded["default"]["rows"] == [(0, {"good": 0}), (1, {"good": 1, "also": 2})]


@pytest.mark.parametrize("value", unserialisable(), ids=lambda v: type(v).__name__)
def test_unloggable_value_under_raise_refuses_the_whole_call(recorded, value):
    run = unilog.init(backends=["csv", "recorder"], on_error="raise")
    run.log({"good": 0})
    run.log({"open": 5}, commit=False)
    with pytest.raises(InvalidValue, match="cannot log key 'bad'") as info:
        run.log({"good": 1, "bad": value})
    assert isinstance(info.value, TypeError) and info.value.key == "bad"
    assert run.step == 1
    run.finish()
    # Nothing of the refused call; what was logged before (the open row too) is kept.
    assert history(run) == [(0, "good", "0"), (1, "open", "5")]
    assert recorded["default"]["rows"] == [(0, {"good": 0}), (1, {"open": 5})]


def test_unloggable_key_is_warned_once_per_key():
    run = unilog.init()
    with pytest.warns(UnilogWarning) as caught:
        for i in range(5):
            run.log({"bad": object(), "worse": [i], "x": i})
    assert sorted(str(w.message).split("'")[1] for w in caught) == ["bad", "worse"]
    run.finish()
    assert unilog.read_run(run.dir).series("x") == [(i, i) for i in range(5)]


# -- conversions ----------------------------------------------------------------------


def test_bool_none_and_str(recorded):
    text = 'a "quoted", multi-line\ntext,\r\nwith ünïcode'
    run = unilog.init(backends={"recorder": {"media": ["text"]}})
    run.log({"yes": True, "no": False, "missing": None, "text": text, "n": 1})
    run.log({"missing": 2.5})
    run.finish()

    data = unilog.read_run(run.dir)
    assert data.series("yes") == [(0, 1)] and data.series("no") == [(0, 0)]
    assert data.series("missing") == [(1, 2.5)]  # None: no value at step 0
    assert data.series("text") == [(0, text)]
    assert data.metrics.loc[0, "text"] == text
    (step, values), _ = recorded["default"]["rows"]
    assert values["yes"] == 1 and type(values["yes"]) is int
    assert values["no"] == 0 and type(values["no"]) is int
    assert "missing" not in values
    assert isinstance(values["text"], unilog.Text) and values["text"].text == text


class Level(enum.IntEnum):
    HIGH = 3


def number_like_values():
    torch = pytest.importorskip("torch")
    grad = torch.tensor(2.5, requires_grad=True)
    return {
        "np_float32": (np.float32(0.5), 0.5),
        "np_float64": (np.float64(0.25), 0.25),  # a float subclass
        "np_int64": (np.int64(7), 7),
        "np_uint8": (np.uint8(200), 200),
        "np_bool": (np.bool_(True), 1),
        "np_0d": (np.array(3.5), 3.5),
        "np_one_element": (np.array([[2]]), 2),
        "torch_float": (torch.tensor(1.5), 1.5),
        "torch_int": (torch.tensor(3), 3),
        "torch_half": (torch.tensor(0.5, dtype=torch.float16), 0.5),
        "torch_bfloat16": (torch.tensor(2.0, dtype=torch.bfloat16), 2.0),
        "torch_grad": (grad, 2.5),
        "torch_grad_result": (grad * 2, 5.0),
        "torch_bool": (torch.tensor(True), 1),
        "torch_one_element": (torch.tensor([4.0]), 4.0),
        "int_enum": (Level.HIGH, 3),
    }


def test_numpy_and_torch_scalars_become_plain_numbers(recorded):
    cases = number_like_values()
    run = unilog.init(backends=["csv", "recorder"])
    run.log({key: value for key, (value, _) in cases.items()})
    report = run.finish()

    expected = {key: want for key, (_, want) in cases.items()}
    (_, values), = recorded["default"]["rows"]
    assert values == expected
    assert {k: type(v) for k, v in values.items()} == {
        k: type(v) for k, v in expected.items()}  # plain int/float, never numpy/torch/bool
    data = unilog.read_run(run.dir)
    assert {key: data.series(key) for key in expected} == {
        key: [(0, want)] for key, want in expected.items()}
    assert report["csv"]["fallback"] == 0 and report["recorder"]["fallback"] == 0


def test_nan_and_inf_are_kept_and_flagged_once_per_key(recorded):
    torch = pytest.importorskip("torch")
    run = unilog.init(backends=["csv", "recorder"])
    with pytest.warns(UnilogWarning) as caught:
        run.log({"nan": math.nan, "inf": math.inf, "ninf": -math.inf, "ok": 1.0,
                 "np_nan": np.float64("nan"), "np32_inf": np.float32("inf"),
                 "torch_nan": torch.tensor(float("nan"))})
        run.log({"nan": math.nan, "inf": 1.0, "ninf": -math.inf, "ok": 2.0,
                 "np_nan": 0.5, "np32_inf": 1.5, "torch_nan": 2.0})
    flagged = sorted(str(w.message).split("'")[1] for w in caught)
    assert flagged == sorted(["nan", "inf", "ninf", "np_nan", "np32_inf", "torch_nan"])
    run.finish()

    data = unilog.read_run(run.dir)
    assert math.isnan(data.series("nan")[0][1]) and math.isnan(data.series("nan")[1][1])
    assert data.series("inf") == [(0, math.inf), (1, 1.0)]
    assert data.series("ninf") == [(0, -math.inf), (1, -math.inf)]
    assert math.isnan(data.series("np_nan")[0][1]) and data.series("np32_inf")[0][1] == math.inf
    metrics = data.metrics
    for column in ("nan", "inf", "ninf", "np_nan", "np32_inf", "torch_nan"):
        assert metrics[column].dtype == np.float64, column  # numbers, not strings
    assert math.isnan(metrics.loc[0, "torch_nan"]) and metrics.loc[1, "torch_nan"] == 2.0
    assert metrics.loc[0, "np32_inf"] == math.inf
    first = recorded["default"]["rows"][0][1]
    assert math.isnan(first["nan"]) and first["inf"] == math.inf and type(first["np_nan"]) is float


# -- keys -------------------------------------------------------------------------------

ODD_KEYS = ["a/b", "../up", "a/../../b", "with space", "ünïcödé/κλειδί", "日本語", "emoji 🚀",
            "with,comma", 'with"quote', "it's", "new\nline", "cr\r\nlf", "lone\rcr",
            "tab\tkey", " lead and trail ", "a//b", "/leading", "trailing/", "%s {0} \\x"]


def test_odd_keys_are_stored_verbatim_and_read_back_identically(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    run.log({key: i for i, key in enumerate(ODD_KEYS)})
    run.log({key: -i for i, key in enumerate(ODD_KEYS)})
    run.finish()

    with open(run.dir / "metrics.csv", newline="", encoding="utf-8") as f:
        text = f.read()
    # One line per record: newlines, carriage returns and backslashes are escaped.
    assert text.count("\n") == 1 + 2 * len(ODD_KEYS)
    assert text.count("\r") == text.count("\r\n")  # only in csv's line terminators
    raw = [line[2] for line in list(csv.reader(io.StringIO(text, newline="")))[1:]]
    assert raw == [escape(key) for key in ODD_KEYS] * 2
    assert "new\\nline" in raw and "%s {0} \\\\x" in raw
    data = unilog.read_run(run.dir)
    assert [key for _, key, _ in history(run)] == ODD_KEYS * 2
    assert list(data.metrics.columns) == ODD_KEYS
    for i, key in enumerate(ODD_KEYS):
        assert data.series(key) == [(0, i), (1, -i)]
    assert list(recorded["default"]["rows"][0][1]) == ODD_KEYS  # no key rule: untouched


def test_key_that_is_not_valid_unicode_does_not_cost_the_other_values():
    """A lone surrogate (what os.fsdecode makes of a bad file name) cannot be
    written as UTF-8: it is stored escaped, and the rest of the batch is kept."""
    run = unilog.init()
    run.log({"before": 1})
    run.log({"file_\udcff": 2, "text": "bad \udc80 text", "after": 3})
    run.log({"later": 4})
    report = run.finish()
    assert report["csv"]["failed"] == 0 and report["csv"]["errors"] == 0
    assert history(run) == [(0, "before", "1"), (1, "file_\\udcff", "2"),
                            (1, "text", "bad \\udc80 text"), (1, "after", "3"), (2, "later", "4")]


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_media_keys_never_write_outside_the_run_media_folder(tmp_path):
    keys = ["../../escape", "../../../../../../tmp/abs", "/abs/path", "a/../../b", "..", ".",
            "..\\..\\win", "x/./y", "~/home", "a/b/../../../c", "", ""]
    keys = [k for k in keys if k]
    run = unilog.init()
    before = files_under(tmp_path)
    image = unilog.Image(np.zeros((4, 4, 3), dtype=np.uint8))
    run.log({key: image for key in keys} | {"n": 1})
    run.log({key: unilog.Histogram([1, 2, 3]) for key in keys})
    run.finish()

    new = files_under(tmp_path) - before
    media_root = (run.dir / "media").resolve()
    media = {p for p in new if media_root in p.resolve().parents}
    assert len(media) == 2 * len(keys)
    assert all(run.dir.resolve() in p.resolve().parents for p in new), sorted(new - media)
    data = unilog.read_run(run.dir)
    for key in keys:
        cells = [value for _, value in data.series(key)]
        assert len(cells) == 2, key
        for cell in cells:
            path = (run.dir / cell).resolve()
            assert media_root in path.parents and path.is_file(), (key, cell)


def test_media_with_a_very_long_key_keeps_the_rest_of_the_record():
    """A key too long to be a path still stores its file, and the other values of
    the same call and of the calls around it are not lost."""
    long_key = "/".join(["segment" * 14] * 60)
    run = unilog.init()
    run.log({"before": 1})
    run.log({"a": 1, long_key: unilog.Image(np.zeros((4, 4), dtype=np.uint8)), "b": 2})
    run.log({"after": 3})
    report = run.finish()
    assert report["csv"]["failed"] == 0 and report["csv"]["errors"] == 0
    data = unilog.read_run(run.dir)
    assert [(s, k) for s, k, _ in history(run)] == [
        (0, "before"), (1, "a"), (1, long_key), (1, "b"), (2, "after")]
    (_, cell), = data.series(long_key)
    path = (run.dir / cell).resolve()
    assert (run.dir / "media").resolve() in path.parents and path.is_file()


def test_nesting_twenty_deep_flattens_with_slashes():
    run = unilog.init()
    run.log(nested(21, 0.5) | {"top": 1})
    run.finish()
    assert unilog.read_run(run.dir).series("a/" * 20 + "x") == [(0, 0.5)]


def test_nesting_up_to_max_depth_is_accepted():
    run = unilog.init()
    run.log(nested(MAX_DEPTH))
    run.finish()
    assert keys_of(run) == {"a/" * (MAX_DEPTH - 1) + "x"}


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 5000])
def test_nesting_deeper_than_max_depth_is_refused_naming_the_rule(levels):
    run = unilog.init()
    with pytest.warns(UnilogWarning, match=f"nesting deeper than {MAX_DEPTH} levels"):
        run.log(nested(levels) | {"kept": 1})
    run.finish()
    assert keys_of(run) == {"kept"}

    strict = unilog.init(on_error="raise")
    with pytest.raises(InvalidValue, match=f"nesting deeper than {MAX_DEPTH} levels"):
        strict.log(nested(levels) | {"kept": 1})
    strict.finish()
    assert keys_of(strict) == set()


def test_self_referencing_dict_is_refused_without_recursion_error():
    loop: dict = {"v": 1}
    loop["self"] = loop
    run = unilog.init()
    with pytest.warns(UnilogWarning, match="nesting deeper"):
        run.log({"loop": loop})
    run.finish()
    assert keys_of(run) == {"loop/" + "self/" * k + "v" for k in range(MAX_DEPTH - 1)}


@pytest.mark.parametrize(("data", "named"), [
    ({1: 2}, "1"), ({None: 2}, "None"), ({("t",): 2}, "('t',)"), ({b"k": 2}, "b'k'"),
    ({"": 2}, "''"), ({"outer": {2: 1}}, "outer/2"), ({"outer": {"": 1}}, "outer/''"),
])
def test_non_string_and_empty_keys_are_refused_naming_the_key(data, named):
    run = unilog.init()
    with pytest.warns(UnilogWarning, match="keys must be non-empty strings") as caught:
        run.log(data | {"kept": 1})
    assert named in str(caught[0].message)
    run.finish()
    assert keys_of(run) == {"kept"}

    strict = unilog.init(on_error="raise")
    with pytest.raises(InvalidValue, match="keys must be non-empty strings") as info:
        strict.log(data | {"kept": 1})
    assert info.value.key == named
    strict.finish()
    assert keys_of(strict) == set()


def test_log_refuses_a_non_mapping():
    run = unilog.init()
    with pytest.raises(TypeError, match="mapping"):
        run.log([("a", 1)])
    run.finish()


# -- many keys ----------------------------------------------------------------------------


def test_ten_thousand_keys_in_one_call():
    keys = [f"group{i % 7}/key{i}" for i in range(10_000)]
    run = unilog.init()
    run.log({key: i for i, key in enumerate(keys)})
    run.finish()
    metrics = unilog.read_run(run.dir).metrics
    assert list(metrics.columns) == keys
    assert metrics.shape == (1, 10_000)
    assert metrics.iloc[0].tolist() == list(range(10_000))


def test_ten_thousand_keys_over_ten_thousand_calls():
    """One new key per call; the step advances every 10th call (1,000 rows), so
    the dense table stays 1,000 x 10,000."""
    run = unilog.init()
    for i in range(10_000):
        run.log({f"k{i}": i}, commit=i % 10 == 9)
    run.finish()
    metrics = unilog.read_run(run.dir).metrics
    assert list(metrics.columns) == [f"k{i}" for i in range(10_000)]
    assert list(metrics.index) == list(range(1000))
    assert all(metrics.at[i // 10, f"k{i}"] == i for i in range(0, 10_000, 37))
    assert int(metrics.notna().sum().sum()) == 10_000


# -- per-backend adaptation --------------------------------------------------------------

RULE = {"allowed": "A-Za-z0-9_", "max_length": 20}


def test_backend_key_rule_adapts_keys_and_records_the_map(recorded):
    run = unilog.init(backends={"recorder": RULE})
    run.log({"train/loss": 0.5, "val acc": 0.9, "plain_key": 1, "ünï": 2})
    report = run.finish()
    (_, values), = recorded["default"]["rows"]
    assert values == {"train_loss": 0.5, "val_acc": 0.9, "plain_key": 1, "_n_": 2}
    key_map = {"train/loss": "train_loss", "val acc": "val_acc", "ünï": "_n_"}
    assert report["recorder"]["key_map"] == key_map
    assert unilog.read_run(run.dir).manifest["backends"]["recorder"]["key_map"] == key_map
    assert keys_of(run) == {"train/loss", "val acc", "plain_key", "ünï"}  # verbatim locally


def test_long_keys_are_shortened_and_stay_distinct(recorded):
    keys = ["x" * 40, "x" * 41, "y" * 20]
    run = unilog.init(backends={"recorder": RULE})
    run.log({key: i for i, key in enumerate(keys)})
    report = run.finish()
    (_, values), = recorded["default"]["rows"]
    assert sorted(values.values()) == [0, 1, 2]
    assert all(len(key) <= 20 for key in values)
    assert report["recorder"]["collisions"] == 0
    assert set(report["recorder"]["key_map"]) == {"x" * 40, "x" * 41}


def test_shortened_keys_use_only_allowed_characters(recorded):
    """The hash that keeps a shortened key distinct is joined with an allowed character."""
    run = unilog.init(backends={"recorder": RULE})
    run.log({"x" * 40: 1})
    run.finish()
    (_, values), = recorded["default"]["rows"]
    assert all(re.fullmatch(r"[A-Za-z0-9_]{1,20}", key) for key in values), values


def test_colliding_keys_are_reported_and_the_local_record_keeps_both(recorded, caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    run = unilog.init(backends={"recorder": RULE})
    run.log({"a b": 1, "a_b": 2, "other": 3})
    run.log({"a b": 4, "a_b": 5})
    report = run.finish()

    collision = unilog_records(caplog, "KeyCollisionError")
    assert len(collision) == 1  # reported once, with both keys named
    assert "'a b'" in collision[0].getMessage() and "'a_b'" in collision[0].getMessage()
    assert report["recorder"]["collisions"] == 1
    manifest = json.loads((run.dir / "run.json").read_text(encoding="utf-8"))
    assert manifest["backends"]["recorder"]["collisions"] == 1
    assert manifest["backends"]["recorder"]["key_map"] == {"a b": "a_b"}
    # The first key keeps the name; the second never reaches the backend.
    assert recorded["default"]["rows"] == [(0, {"a_b": 1, "other": 3}), (1, {"a_b": 4})]
    data = unilog.read_run(run.dir)
    assert data.series("a b") == [(0, 1), (1, 4)]
    assert data.series("a_b") == [(0, 2), (1, 5)]
    assert unilog_records(caplog, "did not receive everything")


def test_unsupported_media_falls_back_to_the_local_record(recorded, caplog):
    caplog.set_level(logging.WARNING, logger="unilog")
    run = unilog.init(backends={"recorder": {"media": ()}})
    for step in range(3):
        run.log({"img": unilog.Image(np.full((4, 4), step * 50, dtype=np.uint8)),
                 "hist": unilog.Histogram([1, 2, 3]), "loss": float(step)})
    report = run.finish()

    assert recorded["default"]["rows"] == [(s, {"loss": float(s)}) for s in range(3)]
    assert report["recorder"]["fallback"] == 6
    assert len(unilog_records(caplog, "does not support image")) == 1
    assert len(unilog_records(caplog, "does not support histogram")) == 1
    data = unilog.read_run(run.dir)
    for key in ("img", "hist"):
        cells = data.series(key)
        assert [s for s, _ in cells] == [0, 1, 2]
        assert all((run.dir / cell).is_file() for _, cell in cells)
    assert report["csv"]["fallback"] == 0


def test_nonfinite_value_resolved_on_the_worker_is_flagged_once(caplog):
    """A device tensor's value is first known on the worker; the local record flags it.

    CI has no GPU, so a PendingScalar whose value is already resolved stands in
    for a CUDA scalar (the worker-side path is the same).
    """
    from unilog.tensors import PendingScalar

    scalar = PendingScalar.__new__(PendingScalar)
    scalar._value, scalar._copy = float("nan"), None
    run = unilog.init()
    with caplog.at_level("WARNING", logger="unilog"):
        run.log({"gpu/loss": scalar})
        run.log({"gpu/loss": scalar})
        run.finish()
    flagged = [r for r in caplog.records if "'gpu/loss' is nan" in r.getMessage()]
    assert len(flagged) == 1
    assert math.isnan(unilog.read_run(run.dir).series("gpu/loss")[0][1])


# -- secrets: which keys are redacted -------------------------------------------------------

SECRET_KEYS = ["password2", "db_password1", "authtoken", "secretkey", "ACCESSTOKEN",
               "authToken", "hf_token", "MY_API_KEY2"]
KEPT_KEYS = ["max_tokens", "tokenizer", "num_tokens", "tokens_per_batch", "keyframe"]


@pytest.mark.parametrize("key", SECRET_KEYS)
def test_secret_looking_keys_are_recognised(key):
    assert is_secret_key(key)


def test_secret_keys_are_redacted_and_hyperparameters_kept():
    run = unilog.init(config={key: f"value-of-{key}" for key in SECRET_KEYS + KEPT_KEYS})
    run.finish()
    config = unilog.read_run(run.dir).config
    assert config == {**{key: REDACTED for key in SECRET_KEYS},
                      **{key: f"value-of-{key}" for key in KEPT_KEYS}}
    assert not any(is_secret_key(key) for key in KEPT_KEYS)


# -- text that could break a line-based reader ------------------------------------------------


def test_text_with_newlines_is_one_line_and_a_record_torn_inside_it_is_dropped():
    """A text's newlines are escaped, so a record is one line: a SIGKILL while it
    is written tears that line only, and the number-like lines inside the text
    are never read as records (by last_step, which resume uses, nor read_run)."""
    body = "\n".join(f"{5_000_000 + i},1700000000.0,x,{i}" for i in range(100))
    text = f"header\r\n{body}\nback\\slash"
    run = unilog.init(id="torn")
    for i in range(3):
        run.log({"x": i})
    run.log({"log": text, "x": 3})
    run.finish()
    path = run.dir / "metrics.csv"
    raw = path.read_bytes()
    assert raw.count(b"\n") == 1 + 5  # the header and one line per record
    assert unilog.read_run(run.dir).series("log") == [(3, text)]
    assert last_step(run.dir) == 3

    # The process is killed 1,000 bytes into the text's record: its manifest
    # never got the final step.
    path.write_bytes(raw[: raw.index(b",log,") + 1000])
    manifest = json.loads((run.dir / "run.json").read_text())
    for key in ("step", "ended", "status", "exit_code"):
        manifest.pop(key, None)
    (run.dir / "run.json").write_text(json.dumps(manifest))
    assert last_step(run.dir) == 2
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(0, 0), (1, 1), (2, 2)] and data.series("log") == []
    again = unilog.init(id="torn", resume="allow")
    assert again.step == 3
    again.log({"x": 3})
    again.finish()
    assert unilog.read_run(run.dir).series("x") == [(i, i) for i in range(4)]


def test_last_step_finds_the_step_before_a_record_longer_than_64_kib():
    run = unilog.init(id="long")
    for i in range(3):
        run.log({"x": i})
    run.log({"log": "line\n" * 20_000})  # 120,000 characters: one line of the file
    run.finish()
    path = run.dir / "metrics.csv"
    assert last_step(run.dir) == 3
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index(b",log,") + 90_000])  # torn 90 kB into the record
    assert last_step(run.dir) == 2


def test_text_longer_than_the_csv_field_limit_reads_back():
    text = "0123456789abcdef" * 10_000  # 160,000 characters
    run = unilog.init()
    run.log({"sample": text, "x": 1})
    run.finish()
    data = unilog.read_run(run.dir)
    assert data.series("sample") == [(0, text)]
    assert data.series("x") == [(0, 1)]


LINE_BREAKS_FOR_STR_SPLITLINES = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85",
                                  "\u2028", "\u2029"]


def test_text_with_other_line_separators_does_not_confuse_last_step():
    """str.splitlines() also breaks on form feed, \\x1c-\\x1e, NEL, U+2028/9: a
    "page\\x0c1000000" text must not make the run resume at step 1,000,000."""
    texts = [f"page{sep}1000000" for sep in LINE_BREAKS_FOR_STR_SPLITLINES]
    run = unilog.init(id="ff")
    for text in texts:
        run.log({"note": text})
    run.finish()
    n = len(texts)
    assert last_step(run.dir) == n - 1
    assert unilog.read_run(run.dir).series("note") == list(enumerate(texts))
    again = unilog.init(id="ff", resume="allow")
    assert again.step == n
    again.finish()


# -- values added by a unilog_process_row plugin ------------------------------------------------


@pytest.fixture
def fresh_plugins():
    """The plugin manager is cached: every test that registers a plugin starts and
    ends with a fresh one."""
    plugins.reset()
    yield
    plugins.reset()


def test_values_added_by_a_process_row_plugin_are_normalised(fresh_plugins, recorded):
    class Derive:
        @unilog.hookimpl
        def unilog_process_row(self, values):
            values["lr"] = np.float32(0.5)
            values["is_best"] = True
            values["extra"] = {"depth": np.int64(3)}
            values["note"] = "derived"
            values["bad"] = object()

    plugins.register_plugin(Derive(), name="derive")
    run = unilog.init(backends={"csv": {}, "recorder": {"media": ["text"]}})
    with pytest.warns(UnilogWarning, match="'bad'.*unilog_process_row") as caught:
        for i in range(3):
            run.log({"loss": float(i)})
    assert len(caught) == 1  # warned once
    report = run.finish()

    expected = {"loss": 0.0, "lr": 0.5, "is_best": 1, "extra/depth": 3}
    _, first = recorded["default"]["rows"][0]
    assert {k: first[k] for k in expected} == expected
    assert {k: type(first[k]) for k in expected} == {k: type(v) for k, v in expected.items()}
    assert isinstance(first["note"], unilog.Text) and "bad" not in first
    data = unilog.read_run(run.dir)
    assert data.series("lr") == [(i, 0.5) for i in range(3)]
    assert data.series("is_best") == [(i, 1) for i in range(3)]
    assert data.series("extra/depth") == [(i, 3) for i in range(3)]
    assert data.series("note") == [(i, "derived") for i in range(3)]
    assert (report["csv"]["fallback"], report["recorder"]["fallback"]) == (0, 0)
    assert not (run.dir / "media").exists()
