"""Sweeps: W&B's sweep configuration on Optuna, trials as unilog runs (docs/sweeps.md).

Every trial here is a real unilog run (the CSV local record, read back with
``read_run``) and every sweep a real Optuna study: a journal file by default,
SQLite, and a real PostgreSQL server started by a fixture.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

import unilog
from unilog.errors import ConfigError
from unilog.sweeps._space import DISTRIBUTIONS, parse
from tests.conftest import REPO, subprocess_env
from tests.postgres_server import postgres_url  # noqa: F401 (a fixture)

optuna = pytest.importorskip("optuna")

# The W&B tutorial's snippet, with unilog for wandb.
TUTORIAL = {
    "name": "my-awesome-sweep",
    "metric": {"name": "accuracy", "goal": "maximize"},
    "method": "grid",
    "parameters": {"a": {"values": [1, 2, 3, 4]}},
}


def my_train_func():
    run = unilog.init()
    a = run.config.a
    run.log({"a": a, "accuracy": a + 1})


def test_the_tutorial_snippet_runs_the_grid_once_per_point(runs_dir):
    sweep_id = unilog.sweep(sweep=TUTORIAL, project="my-first-sweep")
    ran = unilog.agent(sweep_id, function=my_train_func, count=4, project="my-first-sweep")
    assert len(ran) == 4
    data = unilog.read_sweep(sweep_id, project="my-first-sweep")
    assert sorted(t.params["a"] for t in data.trials) == [1, 2, 3, 4]
    assert {t.state for t in data.trials} == {"complete"}
    best = data.best
    assert best.params == {"a": 4} and best.value == 5
    for trial in data.trials:
        run = unilog.read_run(trial.run_dir)
        assert run.config["a"] == trial.params["a"]
        assert run.series("accuracy") == [(0, trial.params["a"] + 1)]
        assert run.manifest["group"] == sweep_id
        assert f"trial:{trial.number}" in run.manifest["tags"]
        assert trial.run_dir.parent == runs_dir / "my-first-sweep"
    folder = runs_dir / "my-first-sweep" / "sweeps" / sweep_id
    assert (folder / "journal.log").is_file()
    assert "my-awesome-sweep" in (folder / "sweep.yaml").read_text()


def test_a_grid_without_count_stops_when_every_point_ran(runs_dir):
    sweep_id = unilog.sweep(dict(TUTORIAL, parameters={"a": {"values": [1, 2]},
                                                       "b": {"values": ["x", "y", "z"]}}))
    assert len(unilog.agent(sweep_id, function=my_train_func)) == 6
    assert unilog.agent(sweep_id, function=my_train_func) == []  # a second agent finds it done
    points = [(t.params["a"], t.params["b"]) for t in unilog.read_sweep(sweep_id).trials]
    assert sorted(points) == [(a, b) for a in (1, 2) for b in "xyz"]


def test_trial_config_overrides_the_defaults_given_to_init(runs_dir):
    seen = []

    def train():
        run = unilog.init(config={"a": 0, "epochs": 3, "optim": {"lr": 1.0, "name": "sgd"}})
        seen.append(run.config.as_dict())
        run.log({"accuracy": 1.0})

    sweep_id = unilog.sweep({"method": "grid", "metric": {"name": "accuracy"},
                             "parameters": {"a": {"value": 7},
                                            "optim": {"parameters": {"lr": {"values": [0.1]}}}}})
    unilog.agent(sweep_id, function=train)
    assert seen == [{"a": 7, "epochs": 3, "optim": {"lr": 0.1, "name": "sgd"}}]


def test_the_value_is_the_summary_if_set_else_the_last_logged(runs_dir):
    def train():
        run = unilog.init()
        for v in (3.0, 1.0, 2.0):
            run.log({"loss": v})
        if run.config.use_summary:
            run.summary["loss"] = 0.5

    sweep_id = unilog.sweep({"method": "grid", "metric": {"name": "loss"},
                             "parameters": {"use_summary": {"values": [True, False]}}})
    unilog.agent(sweep_id, function=train)
    values = {t.params["use_summary"]: t.value for t in unilog.read_sweep(sweep_id).trials}
    assert values == {True: 0.5, False: 2.0}


def test_the_agent_finds_a_sweep_this_process_created_without_its_project(runs_dir):
    sweep_id = unilog.sweep(sweep=TUTORIAL, project="my-first-sweep")
    unilog.agent(sweep_id, function=my_train_func, count=1)  # W&B's quickstart: no project
    assert len(unilog.read_sweep(sweep_id).trials) == 1
    assert (runs_dir / "my-first-sweep" / "sweeps" / sweep_id).is_dir()


@pytest.mark.parametrize("logged, error", [
    (float("nan"), "the metric 'accuracy' ended as nan"),
    ("high", "the metric 'accuracy' was logged as text, not a number"),
])
def test_a_metric_that_is_no_finite_number_fails_the_trial_saying_why(logged, error, runs_dir,
                                                                      caplog):
    def train():
        import warnings

        with warnings.catch_warnings():  # NaN's one UnilogWarning is not this test's subject
            warnings.simplefilter("ignore", unilog.UnilogWarning)
            unilog.init().log({"accuracy": logged})

    sweep_id = unilog.sweep(dict(TUTORIAL, parameters={"a": {"values": [1]}}))
    unilog.agent(sweep_id, function=train)
    (trial,) = unilog.read_sweep(sweep_id).trials
    assert (trial.state, trial.error) == ("failed", error)
    assert f"trial 0 failed: {error}" in caplog.text  # the agent says why, per trial


def test_a_nested_metric_name_matches_the_flattened_key(runs_dir):
    def train():
        unilog.init().log({"val": {"loss": unilog.run.config.x * 2}})

    sweep_id = unilog.sweep({"method": "grid", "metric": {"name": "val.loss"},
                             "parameters": {"x": {"values": [1, 2]}}})
    unilog.agent(sweep_id, function=train)
    assert unilog.read_sweep(sweep_id).best.value == 2


def test_a_failing_trial_is_recorded_and_the_agent_goes_on(runs_dir):
    def train():
        run = unilog.init()
        if run.config.a == 2:
            raise RuntimeError("bad luck at a=2")
        run.log({"accuracy": run.config.a})

    sweep_id = unilog.sweep(TUTORIAL)
    unilog.agent(sweep_id, function=train)
    trials = {t.params["a"]: t for t in unilog.read_sweep(sweep_id).trials}
    assert trials[2].state == "failed" and "bad luck at a=2" in trials[2].error
    assert unilog.read_run(trials[2].run_dir).status == "failed"
    assert [trials[a].state for a in (1, 3, 4)] == ["complete"] * 3


def test_an_agent_whose_first_trials_all_fail_stops(runs_dir):
    def broken():
        raise NameError("typo")

    sweep_id = unilog.sweep({"method": "random", "parameters": {"x": {"min": 0.0, "max": 1.0}}})
    ran = unilog.agent(sweep_id, function=broken)  # no count: it would run forever
    assert len(ran) == 3
    trials = unilog.read_sweep(sweep_id).trials
    assert [(t.state, t.error) for t in trials] == [("failed", "NameError: typo")] * 3


def test_a_function_that_starts_no_run_fails_its_trial_saying_so(runs_dir):
    sweep_id = unilog.sweep(dict(TUTORIAL, parameters={"a": {"values": [1]}}))
    unilog.agent(sweep_id, function=lambda: None)
    (trial,) = unilog.read_sweep(sweep_id).trials
    assert trial.state == "failed" and "call unilog.init()" in trial.error


def test_a_metric_never_logged_fails_the_trial_naming_it(runs_dir):
    def train():
        unilog.init().log({"acc": 1})

    sweep_id = unilog.sweep(dict(TUTORIAL, parameters={"a": {"values": [1]}}))
    unilog.agent(sweep_id, function=train)
    (trial,) = unilog.read_sweep(sweep_id).trials
    assert trial.state == "failed" and "'accuracy' was never logged" in trial.error


def test_ctrl_c_marks_the_running_trial_killed_and_stops_the_agent(runs_dir):
    def train():
        run = unilog.init()
        run.log({"accuracy": 0.5})
        if run.config.a == 2:
            raise KeyboardInterrupt

    sweep_id = unilog.sweep(dict(TUTORIAL, method="random"))
    with pytest.raises(KeyboardInterrupt):  # random: runs until a=2 comes up
        unilog.agent(sweep_id, function=train)
    trials = unilog.read_sweep(sweep_id).trials
    killed = [t for t in trials if t.state == "killed"]
    assert len(killed) == 1 and killed[0].params["a"] == 2
    assert unilog.read_run(killed[0].run_dir).status == "killed"
    assert all(t.state == "complete" for t in trials if t is not killed[0])


def test_sigterm_in_a_function_trial_marks_it_killed_and_ends_the_agent(tmp_path):
    code = textwrap.dedent("""
        import os, signal, sys, unilog
        def train():
            run = unilog.init()
            run.log({"accuracy": 1})
            if run.config.a == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # unilog's handler: SystemExit(143)
        sid = unilog.sweep({"method": "grid", "metric": {"name": "accuracy"},
                            "parameters": {"a": {"values": [1, 2, 3]}}})
        print(sid, flush=True)
        unilog.agent(sid, function=train)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=subprocess_env(UNILOG_DIR=str(tmp_path / "runs")), timeout=120)
    assert out.returncode == 143, out.stderr
    trials = unilog.read_sweep(out.stdout.split()[0], dir=tmp_path / "runs").trials
    killed = max(trials, key=lambda t: t.number)  # the agent stopped at it
    assert killed.params["a"] == 2 and killed.state == "killed"
    assert all(t.state == "complete" for t in trials if t is not killed)
    assert unilog.read_run(killed.run_dir).status == "killed"


def test_run_cap_and_target_stop_the_sweep(runs_dir):
    capped = unilog.sweep({"method": "random", "run_cap": 3, "metric": {"name": "accuracy"},
                           "parameters": {"a": {"min": 0, "max": 100}}})
    assert len(unilog.agent(capped, function=my_train_func)) == 3
    aimed = unilog.sweep(dict(TUTORIAL, metric={"name": "accuracy", "goal": "maximize",
                                                "target": 0}))
    assert len(unilog.agent(aimed, function=my_train_func)) == 1  # the first one reaches it


def test_import_unilog_and_a_plain_run_stay_free_of_optuna(tmp_path):
    code = ("import sys, unilog; run = unilog.init(dir=sys.argv[1]); run.log({'x': 1}); "
            "run.finish(); print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('optuna', 'sqlalchemy', 'yaml')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


# -- the configuration ---------------------------------------------------------------------

BOUNDED = {
    "int_uniform": ({"min": 2, "max": 5}, int, 2, 5),
    "uniform": ({"min": 0.5, "max": 1.5}, float, 0.5, 1.5),
    "q_uniform": ({"min": 0, "max": 10, "q": 2}, int, 0, 10),
    "log_uniform": ({"min": -3, "max": 0}, float, math.exp(-3), 1.0),
    "log_uniform_values": ({"min": 1e-4, "max": 1e-1}, float, 1e-4, 1e-1),
    "q_log_uniform": ({"min": 0, "max": 4, "q": 1}, int, 1, round(math.exp(4))),
    "q_log_uniform_values": ({"min": 1, "max": 100, "q": 0.5}, float, 1, 100),
    "inv_log_uniform": ({"min": 0, "max": 3}, float, math.exp(-3), 1.0),
    "inv_log_uniform_values": ({"min": 0.01, "max": 1}, float, 0.01, 1),
    "normal": ({"mu": 10, "sigma": 2}, float, -math.inf, math.inf),
    "q_normal": ({}, int, -math.inf, math.inf),
    "log_normal": ({}, float, 0, math.inf),
    "q_log_normal": ({"q": 0.1}, float, 0, math.inf),
    "beta": ({"a": 2, "b": 5}, float, 0, 1),
    "q_beta": ({"q": 0.25}, float, 0, 1),
}


def test_every_distribution_is_sampled_within_its_bounds_with_its_type(runs_dir):
    parameters = {d: {"distribution": d, **spec} for d, (spec, *_rest) in BOUNDED.items()}
    parameters.update(c={"value": 5}, cat={"values": ["a", [1, 2], {"x": 1}]},
                      p={"values": ["x", "y"], "probabilities": [0.5, 0.5]},
                      nest={"parameters": {"inner": {"values": [1, 2]}}})
    assert set(BOUNDED) | {"constant", "categorical", "categorical_w_probabilities"} == \
        set(DISTRIBUTIONS)
    seen = []

    def train():
        seen.append(unilog.init().config.as_dict())

    sweep_id = unilog.sweep({"method": "random", "parameters": parameters})
    unilog.agent(sweep_id, function=train, count=20, seed=3)
    assert len(seen) == 20
    for config in seen:
        for name, (_spec, kind, low, high) in BOUNDED.items():
            value = config[name]
            assert type(value) is kind, (name, value)
            assert low - 1e-9 <= value <= high + 1e-9, (name, value)
        assert config["q_uniform"] % 2 == 0 and config["c"] == 5
        assert config["cat"] in ("a", [1, 2], {"x": 1}) and config["p"] in ("x", "y")
        assert config["nest"]["inner"] in (1, 2)
    assert len({c["uniform"] for c in seen}) == 20  # really drawn, not a constant
    assert {json.dumps(c["cat"]) for c in seen} == {'"a"', "[1, 2]", '{"x": 1}'}


@given(st.floats(0, 1))
def test_categorical_probabilities_map_draws_by_their_weights(u):
    (param,) = parse({"method": "random", "parameters": {
        "p": {"values": ["rare", "common"], "probabilities": [0.1, 0.9]}}}).params
    assert param.value(u) == ("rare" if u < 0.1 else "common")


def test_a_bad_project_or_sweep_id_is_refused_before_anything_is_written(runs_dir):
    with pytest.raises(ConfigError, match="project '../out'"):
        unilog.sweep(TUTORIAL, project="../out")
    for bad in ("a b", "h2/", "/abs", "p//x"):
        with pytest.raises(ConfigError, match="sweep id"):
            unilog.read_sweep(bad)
    assert not runs_dir.exists()


@pytest.mark.parametrize("config, words", [
    ({"parameters": {"a": {"values": [1]}}}, ["method"]),
    ({"method": "hyperopt", "parameters": {"a": {"values": [1]}}}, ["method", "hyperopt"]),
    ({"method": "grid"}, ["parameters"]),
    ({"method": "grid", "entity": "me", "parameters": {"a": {"values": [1]}}}, ["entity"]),
    ({"method": "grid", "parameters": {"a": {"values": [1], "mn": 0}}}, ["'a'", "'mn'"]),
    ({"method": "grid", "parameters": {"lr": {"min": 0.1, "max": 1.0}}},
     ["'lr'", "grid", "uniform"]),
    ({"method": "random", "parameters": {"lr": {"min": 1.0, "max": 0.1}}}, ["'lr'", "min"]),
    ({"method": "random", "parameters": {"lr": {"distribution": "log_uniform_values",
                                                "min": 0, "max": 1}}}, ["'lr'", "> 0"]),
    ({"method": "random", "parameters": {"lr": {"distribution": "gamma"}}}, ["'lr'", "gamma"]),
    ({"method": "random", "parameters": {"x": {"distribution": "normal", "min": 0}}},
     ["'x'", "'min'"]),
    ({"method": "random", "parameters": {"p": {"values": [1, 2], "probabilities": [0.5]}}},
     ["'p'", "probabilities"]),
    ({"method": "random", "parameters": {"p": {"values": [1, 2],
                                               "probabilities": [0.5, 0.6]}}},
     ["'p'", "add up to 1"]),
    ({"method": "random", "parameters": {"n": {"distribution": "normal", "sigma": 0}}},
     ["'n'", "sigma"]),
    ({"method": "random", "parameters": {"i": {"distribution": "int_uniform", "min": 0.5,
                                               "max": 2}}}, ["'i'", "int"]),
    ({"method": "bayes", "parameters": {"a": {"values": [1]}}}, ["bayes", "metric"]),
    ({"method": "grid", "metric": {"name": "x", "goal": "up"},
      "parameters": {"a": {"values": [1]}}}, ["goal", "'up'"]),
    ({"method": "grid", "metric": {"name": "x", "impute": 0},
      "parameters": {"a": {"values": [1]}}}, ["metric", "'impute'"]),
    ({"method": "grid", "metric": {"name": "x"}, "early_terminate": {"type": "median"},
      "parameters": {"a": {"values": [1]}}}, ["early_terminate", "hyperband"]),
    ({"method": "grid", "metric": {"name": "x"}, "early_terminate": {"type": "hyperband"},
      "parameters": {"a": {"values": [1]}}}, ["early_terminate", "min_iter"]),
    ({"method": "grid", "early_terminate": {"type": "hyperband", "min_iter": 1},
      "parameters": {"a": {"values": [1]}}}, ["hyperband", "metric"]),
    ({"method": "grid", "run_cap": 0, "parameters": {"a": {"values": [1]}}}, ["run_cap"]),
    ({"method": "grid", "parameters": {f"p{i}": {"values": list(range(10))} for i in range(7)}},
     ["grid", "10,000,000 points", "1,000,000"]),
    ({"method": "grid", "parameters": {"x": {"min": 0, "max": 10**12}}}, ["grid", "points"]),
    ({"method": "grid", "command": ["${interpreter}", "${progam}"],
      "parameters": {"a": {"values": [1]}}}, ["${progam}"]),
    ({"method": "grid", "command": "python train.py",
      "parameters": {"a": {"values": [1]}}}, ["command", "list"]),
])
def test_a_bad_configuration_names_the_key_and_the_rule(config, words):
    with pytest.raises(ConfigError) as raised:
        unilog.sweep(config)
    for word in words:
        assert word in str(raised.value), (word, str(raised.value))


_NUMBERS = st.one_of(st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))
_SPECS = st.fixed_dictionaries({}, optional={
    "distribution": st.sampled_from(sorted(DISTRIBUTIONS) + ["bogus"]),
    "min": _NUMBERS, "max": _NUMBERS, "mu": _NUMBERS, "sigma": _NUMBERS, "q": _NUMBERS,
    "a": _NUMBERS, "b": _NUMBERS, "value": _NUMBERS,
    "values": st.lists(st.one_of(_NUMBERS, st.text(max_size=3)), max_size=3),
})


@settings(max_examples=300, deadline=None)
@given(_SPECS, st.sampled_from(["grid", "random"]), st.floats(0, 1))
def test_any_parameter_spec_is_refused_clearly_or_gives_a_value(spec, method, u):
    try:
        parsed = parse({"method": method, "parameters": {"x": spec}})
    except ConfigError as exc:
        assert "'x'" in str(exc) or "method" in str(exc)
        return
    (param,) = parsed.params
    if param.constant:
        assert param.value(None) == spec["value"]
        return
    if method == "grid":
        assert param.grid() and all(param.grid_value(v) is not None for v in param.grid())
        return
    distribution = param.optuna_distribution()
    drawn = (distribution.choices[min(int(u * len(distribution.choices)),
                                      len(distribution.choices) - 1)]
             if hasattr(distribution, "choices") else
             distribution.low + u * (distribution.high - distribution.low))
    if type(drawn) is float and param.distribution == "int_uniform":
        drawn = round(drawn)
    value = param.value(drawn)
    if "min" in param.spec and param.distribution in ("int_uniform", "uniform",
                                                     "log_uniform_values"):
        assert param.spec["min"] - 1e-9 <= value <= param.spec["max"] + 1e-9
    assert value is not None


# -- bayes, hyperband ---------------------------------------------------------------------


def _bowl(x: float) -> float:
    return (x - 0.7) ** 2 + 0.1 * math.sin(15 * x)


_BOWL_MIN = min(_bowl(-2 + 4 * i / 100000) for i in range(100001))


def _regret(method: str, seed: int) -> float:
    def train():
        run = unilog.init(backends=["csv"])
        run.log({"y": _bowl(run.config.x)})

    sweep_id = unilog.sweep({"method": method, "metric": {"name": "y", "goal": "minimize"},
                             "parameters": {"x": {"min": -2.0, "max": 2.0}}})
    unilog.agent(sweep_id, function=train, count=30, seed=seed)
    return unilog.read_sweep(sweep_id).best.value - _BOWL_MIN


@pytest.mark.slow
def test_bayes_reaches_the_optimum_in_30_trials_where_random_does_worse(runs_dir, monkeypatch):
    monkeypatch.setenv("UNILOG_SILENT", "true")
    bayes = [_regret("bayes", seed) for seed in range(3)]
    random = [_regret("random", seed) for seed in range(3)]
    assert max(bayes) < 0.01, bayes  # every seed in the global minimum's basin
    assert sum(bayes) / 3 < sum(random) / 3 / 10, (bayes, random)


def test_a_verdict_that_comes_after_the_run_ended_leaves_the_trial_complete(runs_dir):
    def train():  # logs its last value and ends at once: the verdict comes too late
        run = unilog.init()
        run.log({"score": run.config.quality})

    sweep_id = unilog.sweep({
        "method": "grid", "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"quality": {"values": [10, 1]}},
        "early_terminate": {"type": "hyperband", "min_iter": 1, "max_iter": 2, "eta": 2}})
    unilog.agent(sweep_id, function=train)
    study = optuna.load_study(study_name=sweep_id, storage=optuna.storages.journal.JournalStorage(
        optuna.storages.journal.JournalFileBackend(
            str(runs_dir / "default" / "sweeps" / sweep_id / "journal.log"))))
    verdicts = [t.user_attrs.get("unilog:pruned") for t in study.trials]
    trials = unilog.read_sweep(sweep_id).trials
    assert {t.state for t in trials} == {"complete"}, (verdicts, trials)


def test_bayes_without_torch_falls_back_to_tpe_and_says_so(tmp_path):
    code = textwrap.dedent("""
        import logging, sys
        sys.modules["torch"] = None  # as if torch were not installed
        logging.basicConfig(level=logging.WARNING)
        from unilog.sweeps._engine import make_sampler
        from unilog.sweeps._space import parse
        spec = parse({"method": "bayes", "metric": {"name": "y"},
                      "parameters": {"x": {"min": 0.0, "max": 1.0}}})
        print(type(make_sampler(spec)).__name__)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "TPESampler", out.stderr
    assert "GPSampler needs torch and scipy" in out.stderr


@pytest.mark.slow
def test_hyperband_stops_the_clearly_bad_trials_and_never_the_best(runs_dir, monkeypatch):
    monkeypatch.setenv("UNILOG_SILENT", "true")
    stopped_at = {}

    def train():
        run = unilog.init()
        quality = run.config.quality
        for i in range(1, 28):
            run.log({"score": quality * i})
            time.sleep(0.02)  # an epoch: the pruner's answer arrives meanwhile
            if run.should_stop:
                stopped_at[quality] = i
                return

    sweep_id = unilog.sweep({
        "method": "grid", "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"quality": {"values": list(range(1, 13))}},
        # One bracket (log3(8/3) < 1), so every trial is compared with all before it at
        # iteration 3 (with several, which trials meet depends on the sweep id's hash).
        "early_terminate": {"type": "hyperband", "min_iter": 3, "max_iter": 8, "eta": 3}})
    unilog.agent(sweep_id, function=train)
    trials = {t.params["quality"]: t for t in unilog.read_sweep(sweep_id).trials}
    assert trials[12].state == "complete" and unilog.read_sweep(sweep_id).best.params == \
        {"quality": 12}
    pruned = {q for q, t in trials.items() if t.state == "pruned"}
    assert len(pruned & {1, 2, 3, 4}) >= 2, pruned  # most of the clearly bad ones
    assert stopped_at and min(stopped_at.values()) < 27, stopped_at  # loops ended early
    assert set(stopped_at) <= pruned, (stopped_at, pruned)
    for quality in pruned:
        manifest = unilog.read_run(trials[quality].run_dir).manifest
        assert "pruned" in manifest["tags"] and manifest["status"] == "finished"


# -- programs, the command line, several agents ---------------------------------------------

PROGRAM = textwrap.dedent("""
    import argparse, os, sys, time, unilog
    parser = argparse.ArgumentParser()
    parser.add_argument("--a", type=int, required=True)
    parser.add_argument("--pause", type=float, default=0.0)
    args = parser.parse_args()
    run = unilog.init()
    assert run.config.a == args.a
    with open(os.environ["TRIAL_LOG"], "a") as log:
        log.write(f"{args.a}\\n")
    time.sleep(args.pause)
    run.log({"accuracy": args.a + 1})
    run.finish()
""")


def _cli(*args: str, env: dict, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "unilog.cli", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _program_sweep(tmp_path: Path, values: list[int], pause: float = 0.0, **extra) -> Path:
    (tmp_path / "train.py").write_text(PROGRAM)
    config = {"program": "train.py", "method": "grid",
              "metric": {"name": "accuracy", "goal": "maximize"},
              "parameters": {"a": {"values": values}, "pause": {"value": pause}}, **extra}
    path = tmp_path / "sweep.yaml"
    import yaml

    path.write_text(yaml.safe_dump(config))
    return path


def test_the_cli_pair_runs_the_program_once_per_trial(tmp_path, runs_dir):
    config = _program_sweep(tmp_path, [1, 2, 3])
    env = subprocess_env(UNILOG_DIR=str(runs_dir), TRIAL_LOG=str(tmp_path / "trials.txt"))
    created = _cli("sweep", str(config), "--project", "P", env=env, cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    sweep_id = created.stdout.strip().splitlines()[-1]
    ran = _cli("agent", sweep_id, "--project", "P", "--count", "2", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "ran 2 trials" in ran.stderr
    assert len((tmp_path / "trials.txt").read_text().split()) == 2
    shown = _cli("sweep", "show", sweep_id, "--project", "P", env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[1].split()[:3] == ["trial", "state", "accuracy"]
    assert [line.split()[1] for line in lines[2:4]] == ["complete", "complete"]
    assert float(lines[2].split()[2]) > float(lines[3].split()[2])  # best first
    png = runs_dir / "P" / "sweeps" / sweep_id / "trials.png"
    assert f"plot: {png}" in shown.stdout and png.read_bytes()[:4] == b"\x89PNG"
    for trial in unilog.read_sweep(sweep_id, project="P", dir=runs_dir).trials:
        assert unilog.read_run(trial.run_dir).config["a"] == trial.params["a"]


def test_every_yaml_configuration_in_the_docs_is_valid(tmp_path):
    import re

    for doc in ("docs/sweeps.md", "docs/hydra.md"):
        blocks = re.findall(r"```yaml\n(.*?)```", (REPO / doc).read_text(), re.S)
        configs = [b for b in blocks if "parameters:" in b]
        assert configs, doc
        for block in configs:
            path = tmp_path / "sweep.yaml"
            path.write_text(block)
            spec = parse(path)  # raises on a block that is not valid YAML or not valid
            assert spec.params


def test_an_unset_envvar_in_the_command_is_refused_before_any_trial(tmp_path, runs_dir,
                                                                     monkeypatch):
    monkeypatch.delenv("UNILOG_NO_SUCH_VAR", raising=False)
    sweep_id = unilog.sweep({"method": "grid", "program": "train.py",
                             "command": ["${interpreter}", "${envvar:UNILOG_NO_SUCH_VAR}"],
                             "parameters": {"a": {"values": [1]}}})
    with pytest.raises(ConfigError, match="UNILOG_NO_SUCH_VAR, which is not set"):
        unilog.agent(sweep_id)
    assert unilog.read_sweep(sweep_id).trials == []


def test_the_cli_agent_exits_1_when_its_first_trials_all_fail(tmp_path, runs_dir):
    (tmp_path / "broken.py").write_text("import unilog\nunilog.init().log({'other': 1})\n")
    import yaml

    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "program": "broken.py", "method": "random", "metric": {"name": "loss"},
        "project": "from-yaml", "parameters": {"x": {"min": 0.0, "max": 1.0}}}))
    env = subprocess_env(UNILOG_DIR=str(runs_dir), UNILOG_SILENT="true")
    created = _cli("sweep", "sweep.yaml", env=env, cwd=tmp_path)
    sweep_id = created.stdout.split()[-1]
    # the hint names the configuration's project, so it works as printed
    assert f"unilog agent {sweep_id} --project from-yaml" in created.stderr
    ran = _cli("agent", sweep_id, "--project", "from-yaml", env=env, cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    assert "trial 0 failed: the metric 'loss' was never logged" in ran.stderr
    assert "first 3 trials all failed" in ran.stderr


def test_the_cli_names_a_bad_configuration_and_an_unknown_sweep(tmp_path, runs_dir):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: grid\nparameters:\n  lr: {min: 0.1, max: 1.0}\n")
    env = subprocess_env(UNILOG_DIR=str(runs_dir))
    out = _cli("sweep", str(bad), env=env, cwd=tmp_path)
    assert out.returncode == 1 and "sweep parameter 'lr'" in out.stderr
    out = _cli("agent", "nosuchid", env=env, cwd=tmp_path)
    assert out.returncode == 1 and "no sweep 'nosuchid'" in out.stderr
    out = _cli("agent", "../../etc", env=env, cwd=tmp_path)
    assert out.returncode == 1 and "sweep id '../../etc'" in out.stderr


def _two_agents(sweep_id: str, env: dict, cwd: Path, *extra: str) -> None:
    agents = [subprocess.Popen([sys.executable, "-m", "unilog.cli", "agent", sweep_id, *extra],
                               env=env, cwd=cwd, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    for agent in agents:
        _, err = agent.communicate(timeout=300)
        assert agent.returncode == 0, err


def _assert_every_point_once(trial_log: Path, sweep_id: str, values: list[int], **where) -> None:
    ran = sorted(int(v) for v in trial_log.read_text().split())
    assert ran == sorted(values)  # each grid point ran, none twice
    trials = unilog.read_sweep(sweep_id, **where).trials
    assert sorted(t.params["a"] for t in trials) == sorted(values)
    assert {t.state for t in trials} == {"complete"}


@pytest.mark.slow
def test_two_agent_processes_share_a_grid_on_the_journal_with_no_repeats(tmp_path, runs_dir):
    values = list(range(8))
    config = _program_sweep(tmp_path, values, pause=0.3)
    env = subprocess_env(UNILOG_DIR=str(runs_dir), TRIAL_LOG=str(tmp_path / "trials.txt"),
                         UNILOG_SILENT="true")
    sweep_id = unilog.sweep(config, project="P")
    _two_agents(sweep_id, env, tmp_path, "--project", "P")
    _assert_every_point_once(tmp_path / "trials.txt", sweep_id, values, project="P")


@pytest.mark.slow
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_two_agents_share_a_sweep_in_a_database(database, tmp_path, runs_dir, request):
    if database == "postgresql":
        url = request.getfixturevalue("postgres_url")
        import sqlalchemy

        with sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT").connect() as c:
            name = f"sweeps_{os.getpid()}_{time.monotonic_ns()}"
            c.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
        url = url.rsplit("/", 1)[0] + "/" + name
    else:
        url = f"sqlite:///{tmp_path / 'sweeps.db'}"
    values = list(range(6))
    config = _program_sweep(tmp_path, values, pause=0.3)
    env = subprocess_env(UNILOG_DIR=str(runs_dir), TRIAL_LOG=str(tmp_path / "trials.txt"),
                         UNILOG_SILENT="true", UNILOG_SWEEP_STORAGE=url)
    sweep_id = unilog.sweep(config, project="P", storage=url)
    # The agents are told only the storage: the project comes from the sweep itself.
    _two_agents(sweep_id, env, tmp_path)
    _assert_every_point_once(tmp_path / "trials.txt", sweep_id, values, storage=url)
    trials = unilog.read_sweep(sweep_id, storage=url).trials
    assert all(t.run_dir.parent == runs_dir / "P" for t in trials)


def test_a_pruned_program_gets_sigterm_and_ends_killed_marked_pruned(tmp_path, runs_dir):
    (tmp_path / "slow.py").write_text(textwrap.dedent("""
        import time, unilog
        run = unilog.init()
        for i in range(1, 100):  # never looks at run.should_stop
            run.log({"score": run.config.quality * i})
            time.sleep(0.05)
        run.finish()
    """))
    import yaml

    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "program": "slow.py", "method": "grid", "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"quality": {"values": [1, 10]}},
        # one bracket (log2(3/2) < 1): the second trial is compared with the first
        "early_terminate": {"type": "hyperband", "min_iter": 2, "max_iter": 3, "eta": 2}}))
    env = subprocess_env(UNILOG_DIR=str(runs_dir), UNILOG_SILENT="true")
    sweep_id = _cli("sweep", "sweep.yaml", env=env, cwd=tmp_path).stdout.split()[-1]
    # The good trial first, so the bad one has someone to be compared with: the grid's
    # order is GridSampler's shuffle with unilog's fixed seed, which puts 10 first.
    first = _cli("agent", sweep_id, "--count", "1", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    second = _cli("agent", sweep_id, env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    trials = {t.params["quality"]: t for t in unilog.read_sweep(sweep_id).trials}
    assert trials[10].state == "complete" and trials[10].number == 0
    assert trials[1].state == "pruned"
    run = unilog.read_run(trials[1].run_dir)
    assert run.status == "killed" and "pruned" in run.manifest["tags"]
    assert len(run.series("score")) < 60  # stopped well before its end


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_or_sigterm_stops_the_cli_agent_and_marks_its_trial_killed(how, tmp_path,
                                                                          runs_dir):
    config = _program_sweep(tmp_path, [1, 2], pause=30)
    env = subprocess_env(UNILOG_DIR=str(runs_dir), TRIAL_LOG=str(tmp_path / "trials.txt"),
                         UNILOG_SILENT="true")
    sweep_id = unilog.sweep(config)
    agent = subprocess.Popen([sys.executable, "-m", "unilog.cli", "agent", sweep_id], env=env,
                             cwd=tmp_path, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "trials.txt").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    if how == "ctrl-c":
        os.killpg(agent.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    else:
        agent.send_signal(signal.SIGTERM)  # to the agent alone: it passes it on
    _, err = agent.communicate(timeout=60)
    assert agent.returncode == (130 if how == "ctrl-c" else 143), err
    (trial,) = unilog.read_sweep(sweep_id).trials
    assert trial.state == "killed"
    assert unilog.read_run(trial.run_dir).status == "killed"


@pytest.mark.slow
def test_a_hydra_app_is_a_sweep_program_through_args_no_hyphens(tmp_path, runs_dir):
    import yaml

    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "program": str(REPO / "examples" / "hydra_app.py"), "method": "grid",
        "metric": {"name": "val/acc", "goal": "maximize"},
        "command": ["${env}", "${interpreter}", "${program}", "${args_no_hyphens}"],
        "parameters": {"logger": {"value": "csv"}, "epochs": {"value": 1},
                       "optim": {"parameters": {"lr": {"values": [0.01, 0.003]}}}}}))
    env = subprocess_env(UNILOG_DIR=str(runs_dir), UNILOG_SILENT="true")
    sweep_id = _cli("sweep", "sweep.yaml", "--project", "digits-hydra", env=env,
                    cwd=tmp_path).stdout.split()[-1]
    ran = _cli("agent", sweep_id, "--project", "digits-hydra", env=env, cwd=tmp_path,
               timeout=600)
    assert ran.returncode == 0, ran.stderr
    trials = unilog.read_sweep(sweep_id, project="digits-hydra").trials
    assert sorted(t.params["optim"]["lr"] for t in trials) == [0.003, 0.01]
    for trial in trials:
        assert trial.state == "complete" and 0 < trial.value <= 1
        run = unilog.read_run(trial.run_dir)
        assert run.config["optim"]["lr"] == trial.params["optim"]["lr"]
        assert run.config["epochs"] == 1


@pytest.mark.slow
def test_the_sweep_example_trains_the_digits_cnn_per_trial_into_every_backend(tmp_path):
    from tests.readers import read_tensorboard

    root = tmp_path / "runs"
    out = subprocess.run(
        [sys.executable, "examples/sweep.py", "--count", "2", "--method", "random",
         "--backends", "csv,tensorboard"], cwd=REPO, capture_output=True, text=True,
        env=subprocess_env(UNILOG_DIR=str(root), UNILOG_SILENT="true"), timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    import re

    sweep_id = re.search(r"^sweep (\w+): best", out.stdout, re.M).group(1)
    data = unilog.read_sweep(sweep_id, project="digits-sweep", dir=root)
    assert len(data.trials) == 2 and {t.state for t in data.trials} == {"complete"}
    assert f"val_loss {data.best.value:.4f}" in out.stdout
    for trial in data.trials:
        assert 1e-4 <= trial.params["lr"] <= 0.1
        assert trial.params["batch_size"] in (16, 32, 64)
        # the trial's value is the last val/loss, as TensorBoard's own reader sees it
        board = read_tensorboard(trial.run_dir)
        assert board["series"]["val/loss"][-1][1] == pytest.approx(trial.value, rel=1e-6)
        assert len(board["series"]["val/loss"]) == trial.params["epochs"]
        assert {f"sweep:{sweep_id}", f"trial:{trial.number}"} <= board["tags"]
        assert board["config"]["lr"] == str(trial.params["lr"])


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*LeafSpec.*:FutureWarning")  # Lightning's, as in
@pytest.mark.filterwarnings("ignore:.*does not have many workers.*")  # test_lightning.py
@pytest.mark.filterwarnings("ignore:.*is smaller than the logging interval.*")
def test_lightning_fit_ends_when_the_pruner_stops_its_trial(runs_dir, monkeypatch):
    import lightning.pytorch as pl

    from tests.lightning_model import TinyClassifier, loaders
    from unilog.lightning import StopWhenPruned, UnilogLogger

    monkeypatch.setenv("UNILOG_SILENT", "true")

    class Scored(TinyClassifier):
        def __init__(self, quality: int):
            super().__init__()
            self.quality = quality

        def on_validation_epoch_end(self):
            self.log("score", float(self.quality * (self.current_epoch + 1)))
            time.sleep(0.05)  # an epoch: the pruner's verdict arrives meanwhile

    epochs = {}

    def train():
        logger = UnilogLogger()
        quality = logger.experiment.config.quality  # the trial's run: its config
        trainer = pl.Trainer(max_epochs=20, logger=logger, callbacks=[StopWhenPruned()],
                             enable_checkpointing=False, enable_progress_bar=False,
                             enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(Scored(quality), *loaders())
        epochs[quality] = trainer.current_epoch

    sweep_id = unilog.sweep({  # the grid runs 10 first (see the pruned-program test)
        "method": "grid", "metric": {"name": "score", "goal": "maximize"},
        "parameters": {"quality": {"values": [1, 10]}},
        "early_terminate": {"type": "hyperband", "min_iter": 2, "max_iter": 3, "eta": 2}})
    unilog.agent(sweep_id, function=train)
    trials = {t.params["quality"]: t for t in unilog.read_sweep(sweep_id).trials}
    assert trials[10].state == "complete" and epochs[10] == 20
    assert trials[1].state == "pruned" and epochs[1] < 20, epochs
    run = unilog.read_run(trials[1].run_dir)
    assert run.status == "finished" and "pruned" in run.manifest["tags"]
