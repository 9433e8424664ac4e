"""The plugin system: entry points, the environment variables that restrict them,
broken plugins, runtime registration, name clashes and the observer hooks."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pluggy
import pytest

import unilog
from unilog import plugins
from unilog.errors import BackendNotFound, UnilogWarning

from .conftest import subprocess_env


@pytest.fixture(autouse=True)
def fresh_plugins():
    """The plugin manager is cached: every test starts and ends with a fresh one."""
    plugins.reset()
    yield
    plugins.reset()


def make_dist(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]):
    """What ``pip install`` would leave on sys.path: a dist-info with entry points, and modules."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[unilog]\n{lines}")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A folder on sys.path standing in for site-packages (import caches invalidated)."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return root


def only_csv_logs(run_dir: Path, n: int = 5) -> None:
    data = unilog.read_run(run_dir)
    assert data.series("x") == [(i, i) for i in range(n)]
    assert data.status == "finished"


def log_a_few(backends=None) -> unilog.Run:
    run = unilog.init(backends=backends)
    for i in range(5):
        run.log({"x": i})
    run.finish(timeout=10)
    return run


def builtin_names() -> set[str]:
    return {name for name, cls in plugins.available_backends().items()
            if cls.__module__.startswith("unilog_plugins.")}


# -- discovery and the environment variables -------------------------------------


def test_fault_plugin_is_found_through_its_entry_point():
    available = plugins.available_backends()
    assert {"csv", "recorder", "raising", "hanging", "slow", "noop"} <= set(available)
    assert available["recorder"].__module__ == "unilog_faults"
    assert plugins.get_plugin_manager().has_plugin("faults")  # the entry point's name


@pytest.mark.parametrize("value", ["", "none", "NONE", " none "])
def test_unilog_plugins_empty_or_none_blocks_third_party_plugins(monkeypatch, value):
    monkeypatch.setenv("UNILOG_PLUGINS", value)
    available = set(plugins.available_backends())
    assert "csv" in available
    assert available == builtin_names()
    assert not plugins.get_plugin_manager().has_plugin("faults")
    with pytest.raises(BackendNotFound, match="recorder"):
        unilog.init(backends=["recorder"])
    only_csv_logs(log_a_few().dir)


def test_unilog_plugins_restricts_to_the_names_listed(monkeypatch):
    monkeypatch.setenv("UNILOG_PLUGINS", "faults")
    assert "recorder" in plugins.available_backends()
    plugins.reset()
    monkeypatch.setenv("UNILOG_PLUGINS", "some_other_plugin, another")
    assert "recorder" not in plugins.available_backends()
    assert "csv" in plugins.available_backends()


def test_unilog_disable_plugins_blocks_one(monkeypatch):
    monkeypatch.setenv("UNILOG_DISABLE_PLUGINS", "something_else,faults")
    assert "recorder" not in plugins.available_backends()
    assert "csv" in plugins.available_backends()
    plugins.reset()
    monkeypatch.setenv("UNILOG_DISABLE_PLUGINS", "something_else")
    assert "recorder" in plugins.available_backends()


def test_import_unilog_loads_no_plugin_and_no_heavy_module(tmp_path):
    heavy = ["torch", "numpy", "wandb", "mlflow", "swanlab", "neptune", "tensorboard",
             "lightning", "omegaconf", "pandas", "PIL", "matplotlib"]
    code = textwrap.dedent(f"""
        import json, sys
        import unilog
        loaded = [m for m in {heavy!r} if m in sys.modules]
        plugins = [m for m in sys.modules if m.startswith(("unilog_faults", "unilog_plugins"))]
        print(json.dumps({{"heavy": loaded, "plugins": plugins}}))
    """)
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(), cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"heavy": [], "plugins": []}


def test_blocked_plugin_is_never_imported(tmp_path):
    code = textwrap.dedent("""
        import sys
        import unilog
        run = unilog.init()
        run.log({"x": 1})
        run.finish()
        print("unilog_faults" in sys.modules, "unilog_plugins.csv_backend" in sys.modules)
    """)
    env = subprocess_env(UNILOG_DIR=str(tmp_path / "runs"), UNILOG_PLUGINS="none")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


# -- broken third-party plugins ---------------------------------------------------


def test_plugin_that_fails_to_import_is_a_warning_and_unilog_still_works(site):
    make_dist(site, "broken-unilog-thing", {"broken_thing": "broken_thing_mod"}, {
        "broken_thing_mod": "raise RuntimeError('this plugin cannot be imported')\n"})
    with pytest.warns(UnilogWarning, match=r"'broken_thing' from 'broken-unilog-thing'.*"
                      r"RuntimeError: this plugin cannot be imported") as caught:
        run = unilog.init(backends=["csv", "recorder"])
    assert len([w for w in caught if "broken_thing" in str(w.message)]) == 1
    for i in range(5):
        run.log({"x": i})
    run.finish()
    only_csv_logs(run.dir)
    assert "recorder" in plugins.available_backends()  # the other plugins are unaffected


def test_plugin_that_fails_to_import_in_a_child_process(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    make_dist(site, "broken-unilog-thing", {"broken_thing": "broken_thing_mod"}, {
        "broken_thing_mod": "import no_such_module_for_unilog_tests\n"})
    code = textwrap.dedent("""
        import unilog
        run = unilog.init(backends=["csv", "recorder"])
        run.log({"x": 1})
        run.finish()
        print(unilog.read_run(run.dir).series("x"))
    """)
    env = subprocess_env(UNILOG_DIR=str(tmp_path / "runs"))
    env["PYTHONPATH"] = str(site) + ":" + env["PYTHONPATH"]
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[(0, 1)]"
    assert "UnilogWarning" in out.stderr
    assert "'broken_thing' from 'broken-unilog-thing'" in out.stderr
    assert "no_such_module_for_unilog_tests" in out.stderr


def test_plugin_with_a_misspelled_hook_is_rejected_with_a_warning(site):
    make_dist(site, "typo-unilog-plugin", {"typo": "typo_plugin_mod"}, {"typo_plugin_mod": """
        import unilog

        @unilog.hookimpl
        def unilog_regsiter_backends(register):
            pass
    """})
    with pytest.warns(UnilogWarning, match=r"'typo' from 'typo-unilog-plugin'.*"
                      r"unilog_regsiter_backends"):
        available = plugins.available_backends()
    assert "recorder" in available and "csv" in available
    assert not plugins.get_plugin_manager().has_plugin("typo")
    only_csv_logs(log_a_few(["csv", "recorder"]).dir)


def test_misspelled_hook_at_runtime_raises_and_registers_nothing():
    class Typo:
        @unilog.hookimpl
        def unilog_regsiter_backends(self, register):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="unilog_regsiter_backends"):
        plugins.register_plugin(Typo(), name="typo")
    assert not plugins.get_plugin_manager().has_plugin("typo")
    # A rejected plugin does not poison the registrations that come after it.
    plugins.register_plugin(Registers(MemoryBackend), name="memory")
    assert "memory" in plugins.available_backends()


def test_a_plugin_implementing_a_dispatch_hook_is_refused_by_name(fresh_plugins):
    """unilog_dispatch_* hooks are called on a run's own backends only: on a plugin
    they would be accepted and never called, so the plugin is refused, saying so."""
    class Listens:
        @unilog.hookimpl
        def unilog_dispatch_row(self, row, local_only):
            raise AssertionError("never called")

    with pytest.raises(unilog.ConfigError, match="unilog_dispatch_row.*unilog_process_row"):
        plugins.register_plugin(Listens(), name="listens")
    assert not plugins.get_plugin_manager().has_plugin("listens")


# -- registering backends ---------------------------------------------------------------

RECEIVED: list = []


class MemoryBackend(unilog.Backend):
    name = "memory"

    def log_rows(self, rows):
        RECEIVED.extend((row.step, dict(row.values)) for row in rows)


class Registers:
    """A plugin object registering the given backend classes."""

    def __init__(self, *classes, fail_after: bool = False):
        self.classes = classes
        self.fail_after = fail_after

    @unilog.hookimpl
    def unilog_register_backends(self, register):
        for cls in self.classes:
            register(cls)
        if self.fail_after:
            raise RuntimeError("registration blew up")


def test_register_plugin_at_runtime_adds_a_backend():
    RECEIVED.clear()
    assert "memory" not in plugins.available_backends()
    plugins.register_plugin(Registers(MemoryBackend), name="memory-plugin")
    assert plugins.available_backends()["memory"] is MemoryBackend
    run = unilog.init(backends=["memory"])
    run.log({"a": 1.5})
    report = run.finish()
    assert RECEIVED == [(0, {"a": 1.5})]
    assert set(report) == {"csv", "memory"}


def test_raising_registration_hides_no_other_backends():
    class Early(unilog.Backend):
        name = "early"

    with pytest.warns(UnilogWarning, match="'exploding'.*registration blew up"):
        plugins.register_plugin(Registers(Early, fail_after=True), name="exploding")
    available = plugins.available_backends()
    assert {"csv", "recorder", "early"} <= set(available)  # registered before the raise


def test_raising_registration_in_an_entry_point_hides_no_other_backends(site):
    make_dist(site, "exploding-plugin", {"exploding": "exploding_mod"}, {"exploding_mod": """
        import unilog

        @unilog.hookimpl
        def unilog_register_backends(register):
            raise RuntimeError("registration blew up")
    """})
    with pytest.warns(UnilogWarning, match="'exploding'.*registration blew up"):
        available = plugins.available_backends()
    assert {"csv", "recorder", "raising", "slow"} <= set(available)


def test_two_plugins_with_one_name_the_first_wins():
    class First(unilog.Backend):
        name = "twin"

    class Second(unilog.Backend):
        name = "twin"

    class Other(unilog.Backend):
        name = "other"

    plugins.register_plugin(Registers(First), name="first")
    with pytest.warns(UnilogWarning, match="'twin' from plugin 'second' is ignored"):
        plugins.register_plugin(Registers(Second), name="second")
    assert plugins.available_backends()["twin"] is First
    # Registering an unrelated plugin later neither warns again nor loses anything.
    plugins.register_plugin(Registers(Other), name="third")
    assert plugins.available_backends()["twin"] is First
    assert "other" in plugins.available_backends()


def test_a_plugin_cannot_take_a_builtin_name():
    class FakeCSV(unilog.Backend):
        name = "csv"

    with pytest.warns(UnilogWarning, match="'csv' from plugin 'impostor' is ignored"):
        plugins.register_plugin(Registers(FakeCSV), name="impostor")
    assert plugins.available_backends()["csv"].__module__ == "unilog_plugins.csv_backend"


# -- observer hooks ---------------------------------------------------------------------


class Observer:
    def __init__(self):
        self.events = []

    @unilog.hookimpl
    def unilog_run_started(self, run):
        self.events.append(("started", run.id))

    @unilog.hookimpl
    def unilog_process_row(self, run, step, values):
        if "loss" in values:
            values["loss_x2"] = values["loss"] * 2

    @unilog.hookimpl
    def unilog_run_finished(self, run, status, report):
        self.events.append(("finished", run.id, status, sorted(report)))


def test_observer_hooks_see_the_run_and_derive_metrics(recorded):
    observer = Observer()
    plugins.register_plugin(observer, name="observer")
    run = unilog.init(backends=["csv", "recorder"])
    assert observer.events == [("started", run.id)]
    for i in range(4):
        run.log({"loss": float(i)})
    run.finish()
    assert observer.events[1] == ("finished", run.id, "finished", ["csv", "recorder"])
    data = unilog.read_run(run.dir)
    assert data.series("loss_x2") == [(i, 2.0 * i) for i in range(4)]
    assert list(data.metrics.columns) == ["loss", "loss_x2"]
    assert recorded["default"]["rows"][3] == (3, {"loss": 3.0, "loss_x2": 6.0})


def test_observer_sees_failed_status():
    observer = Observer()
    plugins.register_plugin(observer, name="observer")
    run = unilog.init()
    run.finish(exit_code=2)
    assert observer.events[-1] == ("finished", run.id, "failed", ["csv"])


class RaisingProcessor:
    def __init__(self):
        self.calls = 0

    @unilog.hookimpl
    def unilog_process_row(self, run, step, values):
        self.calls += 1
        values["half-done"] = 1
        raise KeyError("no such thing")


def test_raising_process_row_is_warned_once_and_the_row_goes_on():
    plugins.register_plugin(RaisingProcessor(), name="bad-processor")
    plugins.register_plugin(Observer(), name="observer")
    run = unilog.init()
    with pytest.warns(UnilogWarning, match="'bad-processor' failed in unilog_process_row "
                      "and is skipped for the rest of the run: KeyError") as w:
        for i in range(5):
            run.log({"x": i, "loss": 1.0})
    assert len([x for x in w if "bad-processor" in str(x.message)]) == 1
    run.finish()
    data = unilog.read_run(run.dir)
    assert data.series("x") == [(i, i) for i in range(5)]
    assert len(data.series("loss_x2")) == 5  # the other processor still ran


def test_process_row_may_take_fewer_arguments_than_the_spec():
    class Doubler:
        @unilog.hookimpl
        def unilog_process_row(self, values):
            values["x2"] = values["x"] * 2

    plugins.register_plugin(Doubler(), name="doubler")
    run = unilog.init()
    run.log({"x": 3})
    run.finish()
    assert unilog.read_run(run.dir).series("x2") == [(0, 6)]


def test_raising_process_row_is_skipped_for_the_rest_of_the_run():
    processor = RaisingProcessor()
    plugins.register_plugin(processor, name="bad-processor")
    run = unilog.init()
    with pytest.warns(UnilogWarning, match="bad-processor"):
        for i in range(5):
            run.log({"x": i})
    run.finish()
    assert processor.calls == 1


def test_raising_observer_is_a_warning_and_the_run_goes_on():
    class Broken:
        @unilog.hookimpl
        def unilog_run_started(self, run):
            raise RuntimeError("observer broke")

    plugins.register_plugin(Broken(), name="broken-observer")
    with pytest.warns(UnilogWarning, match="'broken-observer' failed in unilog_run_started"):
        run = unilog.init()
    run.log({"x": 0})
    run.finish()
    assert unilog.read_run(run.dir).series("x") == [(0, 0)]
