"""Hostile input to ``run.log``: values whose conversion raises, keys that
collide after flattening, steps at the end of the 64-bit range, and
property-based fuzzing of whole calls (hypothesis).

The rule everywhere (docs/logging.md): under ``on_error="warn"`` the call never
raises for its values, the bad key is left out with a UnilogWarning naming it,
and every valid key of the same call is kept; under ``on_error="raise"`` the
error is a UnilogError naming the key, and nothing of that call is recorded.
"""

from __future__ import annotations

import decimal
import sys
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import unilog
from unilog.errors import (ConfigError, InvalidValue, KeyCollisionError, StepError,
                           UnilogError, UnilogWarning)


class FloatRaises:
    """A number-like object whose conversion fails with a ValueError."""

    def __float__(self):
        raise ValueError("no float for you")


def values_whose_conversion_raises():
    torch = pytest.importorskip("torch")
    return [decimal.Decimal("sNaN"), FloatRaises(), torch.zeros((), device="meta")]


def keys_in_local_record(run) -> dict[str, list]:
    series: dict[str, list] = {}
    for step, _, key, value in unilog.read_run(run.dir).history:
        series.setdefault(key, []).append((step, value))
    return series


@pytest.mark.parametrize("value", values_whose_conversion_raises(),
                         ids=["decimal-snan", "float-raises", "meta-tensor"])
def test_value_whose_conversion_raises_costs_only_its_key_under_warn(value, recorded):
    run = unilog.init(backends=["csv", "recorder"])
    with pytest.warns(UnilogWarning, match="'bad'"):
        run.log({"good": 1.0, "bad": value, "also_good": 2})
    run.finish()

    assert recorded["default"]["rows"] == [(0, {"good": 1.0, "also_good": 2})]
    assert set(keys_in_local_record(run)) == {"good", "also_good"}


@pytest.mark.parametrize("value", values_whose_conversion_raises(),
                         ids=["decimal-snan", "float-raises", "meta-tensor"])
def test_value_whose_conversion_raises_is_a_unilog_error_naming_the_key(value, recorded):
    run = unilog.init(backends=["csv", "recorder"], on_error="raise")
    run.log({"before": 1.0})
    with pytest.raises(InvalidValue, match="'bad'") as caught:
        run.log({"good": 1.0, "bad": value})
    assert isinstance(caught.value, UnilogError) and isinstance(caught.value, ConfigError)
    assert isinstance(caught.value, TypeError)  # what it was before: old handlers still work
    assert caught.value.key == "bad"
    run.finish()
    assert recorded["default"]["rows"] == [(0, {"before": 1.0})]  # nothing of that call


def test_summary_value_whose_conversion_raises_is_kept_as_text():
    run = unilog.init(backends=["csv"])
    run.summary["odd"] = decimal.Decimal("sNaN")
    run.finish()
    assert unilog.read_run(run.dir).summary["odd"] == "sNaN"


def test_keys_colliding_after_flattening_keep_the_first_and_warn(recorded):
    run = unilog.init(backends=["csv", "recorder"])
    with pytest.warns(UnilogWarning, match="'val/acc' is given twice"):
        run.log({"val/acc": 0.91, "val": {"acc": 0.42, "loss": 0.3}})
    run.finish()
    assert recorded["default"]["rows"] == [(0, {"val/acc": 0.91, "val/loss": 0.3})]


def test_a_nested_mapping_under_a_logged_key_is_no_collision(recorded):
    run = unilog.init(backends=["csv", "recorder"], on_error="raise")
    run.log({"a/b": 1, "a": {"b": {"c": 2}}})
    run.finish()
    assert recorded["default"]["rows"] == [(0, {"a/b": 1, "a/b/c": 2})]


def test_keys_colliding_after_flattening_raise_key_collision_error(recorded):
    run = unilog.init(backends=["csv", "recorder"], on_error="raise")
    with pytest.raises(KeyCollisionError, match="'val/acc' is given twice") as caught:
        run.log({"val": {"acc": 0.42}, "val/acc": 0.91})
    assert caught.value.key == "val/acc" and caught.value.backend is None
    run.log({"x": 1})
    run.finish()
    assert recorded["default"]["rows"] == [(0, {"x": 1})]


def test_implicit_steps_never_pass_the_largest_step(recorded):
    top = 2**63 - 1
    run = unilog.init(backends=["csv", "recorder"])
    run.log({"x": 1}, step=top)
    run.log({"y": 2})  # joins the open row at 2**63 - 1, then the step advances past it
    with pytest.warns(UnilogWarning, match="does not exist"):
        run.log({"x": 3})
    run.log({"x": 4})
    report = run.finish()

    assert recorded["default"]["rows"] == [(top, {"x": 1, "y": 2})]  # never a step 2**63
    assert [step for step, _ in keys_in_local_record(run)["x"]] == [top, top + 1, top + 2]
    assert report["recorder"]["skipped"] == 2


def test_implicit_step_past_the_largest_is_a_step_error_under_raise():
    run = unilog.init(backends=["csv"], on_error="raise")
    run.log({"x": 1}, step=2**63 - 1, commit=True)
    with pytest.raises(StepError, match="2\\*\\*63 - 1"):
        run.log({"x": 2})
    run.finish()


def test_mlflow_keeps_every_valid_row_beside_the_largest_step():
    """MLflow once dropped a whole batch for one row at step 2**63."""
    from tests.readers import read_mlflow

    run = unilog.init(backends=["csv", "mlflow"], mode="offline")
    for i in range(5):
        run.log({"x": float(i)})
    run.log({"x": 9.0}, step=2**63 - 1, commit=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnilogWarning)
        run.log({"x": 10.0})
    report = run.finish(timeout=60)
    series = read_mlflow(run.dir)["series"]["x"]
    assert series[:5] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)]
    assert series[5:] in ([(2**63 - 1, 9.0)], [])  # SQLite may refuse that row alone
    assert report["mlflow"]["failed"] <= 1


# -- property-based: whatever a call holds, the valid part of it is kept ----------

leaves = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.floats(), st.booleans(), st.none(),
    st.text(max_size=20), st.decimals(allow_nan=True), st.binary(max_size=4),
    st.lists(st.integers(), max_size=2), st.complex_numbers(), st.builds(FloatRaises),
)
keys = st.one_of(st.text(max_size=12), st.integers(), st.none())
calls = st.recursive(
    st.dictionaries(keys, leaves, max_size=6),
    lambda inner: st.dictionaries(keys, st.one_of(leaves, inner), max_size=4),
    max_leaves=20,
)


def simulate(data: dict, prefix: str = "", out: dict | None = None,
             errors: list | None = None) -> tuple[set[str], int]:
    """(flat keys kept, number of refused entries) of a call, by the documented rules."""
    out = {} if out is None else out
    errors = [] if errors is None else errors
    for key, value in data.items():
        if type(key) is not str or not key:
            errors.append(key)
            continue
        full = prefix + key
        if isinstance(value, dict):
            simulate(value, full + "/", out, errors)
        elif value is None:
            continue
        elif full in out:
            errors.append(full)  # a collision: the first value is kept
        elif loggable(value):
            out[full] = value
        else:
            errors.append(full)
    return set(out), len(errors)


def loggable(value) -> bool:
    if isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, decimal.Decimal):
        return not value.is_snan()
    return False


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=calls)
def test_any_call_keeps_its_valid_keys_and_never_raises_under_warn(data, recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"media": ["text"]}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnilogWarning)
        run.log(data)
        run.log({"after": 1})  # the run goes on
    run.finish()

    kept, _ = simulate(data)
    rows = recorded["default"]["rows"]
    assert rows[-1][1] == {"after": 1}
    assert (set(rows[0][1]) if len(rows) == 2 else set()) == kept
    assert all(isinstance(v, (int, float, unilog.Text)) for v in rows[0][1].values())
    assert set(keys_in_local_record(run)) == kept | {"after"}


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=calls)
def test_any_call_under_raise_is_kept_whole_or_refused_whole(data, recorded):
    run = unilog.init(backends={"csv": {}, "recorder": {"media": ["text"]}}, on_error="raise")
    kept, refusals = simulate(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnilogWarning)
            run.log(data)
    except UnilogError as error:
        assert refusals, f"refused a valid call: {error}"
        assert getattr(error, "key", None) is not None, "the error names the key"
    else:
        assert not refusals
    run.finish()
    rows = recorded["default"]["rows"]
    assert (set(rows[0][1]) if rows else set()) == (set() if refusals else kept)


def test_an_int_beyond_float_range_reaches_mlflow_as_inf():
    from tests.readers import read_mlflow

    run = unilog.init(backends=["csv", "mlflow"], mode="offline")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnilogWarning)
        run.log({"big": 10**400, "small": -(10**400), "ok": 1.0})
    report = run.finish(timeout=60)
    series = read_mlflow(run.dir)["series"]
    # MLflow's SQL store keeps infinities as the largest float
    assert series["big"][0][1] >= sys.float_info.max
    assert series["small"][0][1] <= -sys.float_info.max
    assert report["mlflow"]["errors"] == 0
