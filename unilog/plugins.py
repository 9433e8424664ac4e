"""The global plugin manager and the backend registry.

Built-in plugins (``BUILTIN_PLUGINS``) and third-party ones (entry-point group
``unilog``) are loaded the same way, lazily, the first time unilog needs them,
never at ``import unilog``. A third-party plugin that fails to import or to
validate produces a warning naming it and is skipped.

Environment variables:

- ``UNILOG_PLUGINS``: unset loads every installed third-party plugin; a
  comma-separated list of entry-point names loads only those; an empty value or
  ``none`` loads none (built-ins always load).
- ``UNILOG_DISABLE_PLUGINS``: a comma-separated list of plugin names (built-in
  module names or entry-point names) never to load; the local record's
  (``csv_backend``) cannot be blocked.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import warnings
from importlib import metadata
from typing import TYPE_CHECKING

import pluggy

from unilog import hookspecs
from unilog.errors import BackendNotFound, BackendNotInstalled, ConfigError, UnilogWarning

if TYPE_CHECKING:
    from unilog.backend import Backend

ENTRY_POINT_GROUP = "unilog"

#: Modules of the backends that ship with unilog, registered like any plugin.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "unilog_plugins.csv_backend",
    "unilog_plugins.tensorboard_backend",
    "unilog_plugins.mlflow_backend",
    "unilog_plugins.wandb_backend",
    "unilog_plugins.neptune_backend",
    "unilog_plugins.swanlab_backend",
)
#: The local record's plugin, which UNILOG_DISABLE_PLUGINS cannot block.
LOCAL_RECORD_PLUGIN = "unilog_plugins.csv_backend"

_lock = threading.Lock()
_manager: pluggy.PluginManager | None = None
_backends: dict[str, type[Backend]] = {}
_run_time: set[type[Backend]] = set()  # registered by register_plugin: this process only


def new_manager() -> pluggy.PluginManager:
    """A fresh plugin manager with unilog's hook specs and nothing registered."""
    pm = pluggy.PluginManager("unilog")
    pm.add_hookspecs(hookspecs)
    return pm


def get_plugin_manager() -> pluggy.PluginManager:
    """The global plugin manager, loading every plugin on first use."""
    global _manager
    with _lock:
        if _manager is None:
            pm = new_manager()
            _load_builtins(pm)
            _load_entry_points(pm)
            _manager = pm
            _collect_backends(pm)
        return _manager


def reset() -> None:
    """Forget loaded plugins and backends, so the next use loads them anew (for tests)."""
    global _manager
    with _lock:
        _manager = None
        _backends.clear()
        _run_time.clear()


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register a plugin object or module at run time, then refresh the backend registry.

    The same effect as installing a package with a ``unilog`` entry point,
    without packaging it (useful in notebooks, tests and benchmarks). A plugin
    with a hook unilog does not define (a misspelled name) raises pluggy's
    ``PluginValidationError`` and is not registered. Backends already
    registered keep their names (the first registration wins).
    """
    pm = get_plugin_manager()
    with _lock:
        pm.register(plugin, name=name)
        try:
            pm.check_pending()
            _refuse_dispatch_hooks(pm, plugin)
        except Exception:
            pm.unregister(plugin)  # a rejected plugin must not poison later registrations
            raise
        before = set(_backends.values())
        _collect_backends(pm, only=plugin)
        _run_time.update(set(_backends.values()) - before)


def registered_at_run_time(cls: type) -> bool:
    """True for a backend class registered with :func:`register_plugin`: a new
    process (the logging process) does not have it."""
    return cls in _run_time


def available_backends() -> dict[str, type[Backend]]:
    """Every registered backend class by name, loading plugins if needed."""
    get_plugin_manager()
    return dict(_backends)


def get_backend_class(name: str) -> type[Backend]:
    """The backend class registered under ``name``, checked to be importable.

    Raises BackendNotFound (listing the available names) or BackendNotInstalled
    (naming the ``pip install 'unilog-ml[extra]'`` that fixes it). The SDK is not
    imported here, only looked up.
    """
    backends = available_backends()
    cls = backends.get(name)
    if cls is None:
        raise BackendNotFound(name, list(backends))
    for module in cls.requires:
        if importlib.util.find_spec(module) is None:
            raise BackendNotInstalled(name, module, cls.extra)
    return cls


def _disabled() -> set[str]:
    raw = os.environ.get("UNILOG_DISABLE_PLUGINS", "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _load_builtins(pm: pluggy.PluginManager) -> None:
    disabled = _disabled()
    for module_name in BUILTIN_PLUGINS:
        blocked = module_name in disabled or module_name.rsplit(".", 1)[-1] in disabled
        if blocked and module_name != LOCAL_RECORD_PLUGIN:  # every run needs its local record
            continue
        pm.register(importlib.import_module(module_name), name=module_name)


def _wanted_entry_points() -> set[str] | None:
    raw = os.environ.get("UNILOG_PLUGINS")
    if raw is None:
        return None
    if raw.strip().lower() in ("", "none"):
        return set()
    return {part.strip() for part in raw.split(",") if part.strip()}


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = _wanted_entry_points()
    disabled = _disabled()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if (wanted is not None and ep.name not in wanted) or ep.name in disabled:
            continue
        if pm.has_plugin(ep.name):
            continue
        dist = getattr(ep.dist, "name", None) or "unknown package"
        try:
            plugin = ep.load()
            pm.register(plugin, name=ep.name)
            pm.check_pending()
            _refuse_dispatch_hooks(pm, plugin)
        except Exception as exc:  # a broken plugin must never take unilog down
            if pm.has_plugin(ep.name):
                pm.unregister(name=ep.name)
            warnings.warn(
                f"unilog plugin {ep.name!r} from {dist!r} could not be loaded and is "
                f"skipped: {type(exc).__name__}: {exc}",
                UnilogWarning,
                stacklevel=3,
            )


def _refuse_dispatch_hooks(pm: pluggy.PluginManager, plugin: object) -> None:
    """A plugin implementing a ``unilog_dispatch_*`` hook is refused: those hooks are
    called on each run's own manager, on its backends' workers only, so on the
    global manager the implementation would be accepted and never called."""
    names = [impl.name for impl in pm.get_hookcallers(plugin) or ()
             if impl.name.startswith("unilog_dispatch_")]
    if names:
        raise ConfigError(
            f"plugin {pm.get_name(plugin)!r} implements {', '.join(sorted(names))}: unilog "
            "calls those hooks only on a run's own backends, never on a plugin; write a "
            "Backend (register it with unilog_register_backends) to receive records, or "
            "implement unilog_process_row to see or change rows (docs/plugins.md)")


def _collect_backends(pm: pluggy.PluginManager, only: object | None = None) -> None:
    """Ask every plugin (or only the plugin ``only``) for its backends.

    Each implementation is called on its own rather than through one hook call:
    pluggy stops a hook call at the first exception, and one broken plugin must
    not hide the backends of the others.
    """
    for impl in pm.hook.unilog_register_backends.get_hookimpls():
        if only is not None and impl.plugin is not only:
            continue
        plugin_name = impl.plugin_name

        def register(cls: type[Backend], _plugin: str = plugin_name) -> None:
            _register_backend(cls, _plugin)

        try:
            impl.function(register=register)
        except Exception as exc:
            warnings.warn(
                f"unilog plugin {plugin_name!r} failed while registering backends: "
                f"{type(exc).__name__}: {exc}",
                UnilogWarning,
                stacklevel=4,
            )


def _register_backend(cls: type[Backend], plugin_name: str | None) -> None:
    from unilog.backend import Backend

    if not (isinstance(cls, type) and issubclass(cls, Backend)) or not cls.name:
        raise TypeError(f"{cls!r} is not a unilog.Backend subclass with a name")
    existing = _backends.get(cls.name)
    if existing is not None and existing is not cls:
        warnings.warn(
            f"backend {cls.name!r} from plugin {plugin_name!r} is ignored: the name is "
            f"already taken by {existing.__module__}.{existing.__qualname__}",
            UnilogWarning,
            stacklevel=5,
        )
        return
    _backends[cls.name] = cls
