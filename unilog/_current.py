"""``unilog.config``, ``unilog.summary`` and ``unilog.login``: the module-level API
of wandb and SwanLab (``wandb.config.lr``, ``swanlab.config["lr"]``,
``wandb.summary["best"] = x``, ``wandb.login()``), acting on the current run
(the one the latest ``unilog.init`` returned, until it finishes).

Before ``init`` and after ``finish`` there is no current run: reading or writing
``unilog.config`` or ``unilog.summary`` then raises a :class:`UnilogError` that
says to call ``unilog.init()`` first, as wandb does. Imports nothing heavy:
``import unilog`` creates these objects.

Also here, what lets other trackers' ``init`` calls run unchanged:

- ``unilog.config = {...}`` (W&B's Hydra guide sets ``wandb.config`` so) updates
  the current run's config, or, before ``init``, becomes the next run's config
  (``config=`` given to ``init`` wins key by key); ``unilog.config`` stays the view.
- :func:`init_keywords`: W&B's and SwanLab's ``init`` keywords unilog has under
  another name (``experiment_name``, ``description``, ``logdir``), as a backend's
  option (``job_type``, ``workspace``) or a policy for (``reinit``).
"""

from __future__ import annotations

import logging
import os
import types
from pathlib import Path
from typing import Any, Callable, Iterator

from unilog.errors import UnilogError

logger = logging.getLogger("unilog")


class _CurrentRunView:
    """Forwards to one attribute (``config`` or ``summary``) of the current run."""

    def __init__(self, name: str, current: Callable[[], Any]):
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_current", current)

    def _target(self) -> Any:
        run = self._current()
        if run is None:
            raise UnilogError(f"unilog.{self._name}: there is no active run: call "
                              "unilog.init() first (the run it returns is the current one "
                              "until it finishes)")
        return getattr(run, self._name)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):  # copy, pickle and the like ask for dunders
            raise AttributeError(key)
        return getattr(self._target(), key)

    def __setattr__(self, key: str, value: Any) -> None:
        setattr(self._target(), key, value)

    def __getitem__(self, key: str) -> Any:
        return self._target()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._target()[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._target()

    def __iter__(self) -> Iterator[str]:
        return iter(self._target())

    def __len__(self) -> int:
        return len(self._target())

    def __repr__(self) -> str:
        run = self._current()
        if run is None:
            return f"<unilog.{self._name}: no active run>"
        return repr(getattr(run, self._name))


class ConfigView(_CurrentRunView):
    """``unilog.config``: the current run's ``run.config`` (attribute, item and
    ``.get`` access, ``update``)."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, else ``default``."""
        return self._target().get(key, default)

    def update(self, values: Any = None, **kwargs: Any) -> None:
        """Add or change config values (sent to every backend)."""
        self._target().update(values or {}, **kwargs)


class SummaryView(_CurrentRunView):
    """``unilog.summary``: the current run's ``run.summary``."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, else ``default``."""
        return self._target().get(key, default)

    def update(self, values: Any = (), **kwargs: Any) -> None:
        """Set several summary values at once."""
        self._target().update(values, **kwargs)


#: The environment variable each backend's SDK reads its API key from.
CREDENTIALS = {"wandb": "WANDB_API_KEY", "swanlab": "SWANLAB_API_KEY",
               "neptune": "NEPTUNE_API_TOKEN"}


def login(key: str | None = None, *, backends: Any = None, mode: str | None = None,
          api_key: str | None = None, **_ignored: Any) -> bool:
    """``wandb.login()`` / ``swanlab.login()`` for unilog: credentials stay each
    backend's own; nothing is stored and nothing reaches the network.

    Offline (``mode="offline"`` or ``$UNILOG_MODE``) or disabled: True at once.
    Online: True when every backend in ``backends`` (else ``$UNILOG_BACKENDS``)
    that needs an API key has one (wandb: ``WANDB_API_KEY`` or ``~/.netrc``;
    SwanLab: ``SWANLAB_API_KEY``; Neptune: ``NEPTUNE_API_TOKEN``), else False with
    one warning naming each backend and its variable. ``key`` is set, for this
    process only, as the API key of the backends named that need one
    (``api_key``: SwanLab's name for it). Other keywords of wandb's and SwanLab's
    ``login`` (``relogin``, ``host``...) are accepted and ignored.
    """
    key = key if key is not None else api_key
    from unilog._settings import parse_backends, resolve_mode

    mode = resolve_mode(mode)
    if mode in ("offline", "disabled"):
        return True
    names = [name for name, _ in parse_backends(backends)]
    needing = [name for name in names if name in CREDENTIALS]
    if key is not None:
        for name in needing:
            os.environ[CREDENTIALS[name]] = key
    missing = [name for name in needing if not _has_credentials(name)]
    for name in missing:
        logger.warning("unilog.login: backend %r has no API key: set %s (or pass "
                       "unilog.login(key=...)), or log offline (mode='offline')",
                       name, CREDENTIALS[name])
    return not missing


def _has_credentials(backend: str) -> bool:
    if os.environ.get(CREDENTIALS[backend]):
        return True
    if backend == "wandb":  # `wandb login` writes ~/.netrc (or $NETRC)
        netrc = Path(os.environ.get("NETRC") or Path.home() / ".netrc")
        try:
            return "api.wandb.ai" in netrc.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    return False


# -- other trackers' init keywords and ``unilog.config = {...}`` ------------------------

#: SwanLab's ``init`` keywords that are unilog's under another name (``log_dir``
#: is SwanLab 0.10's spelling, ``logdir`` the older one).
RENAMED = {"experiment_name": "name", "description": "notes", "logdir": "dir",
           "log_dir": "dir"}
#: W&B's and SwanLab's ``init`` keywords taken and ignored: each sets something of
#: that tracker's own client (its UI, login, console capture) that unilog has no
#: counterpart for, and none changes what is logged.
IGNORED = frozenset({"allow_val_change", "anonymous", "settings", "force", "magic",
                     "monitor_gym", "sync_tensorboard", "tensorboard", "color", "public",
                     "callbacks", "load"})
#: W&B's ``reinit`` values (booleans are its older spelling of the last two).
REINIT = (None, "default", "create_new", "finish_previous", "return_previous", True, False)


def init_keywords(given: dict[str, Any], kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """Fold other trackers' keywords in ``kwargs`` into ``given`` (``init``'s own
    arguments, changed in place); returns ``reinit`` and the keywords that are one
    backend's option (``job_type``: wandb's, ``workspace``: SwanLab's).

    A renamed keyword (``RENAMED``) fills its unilog argument unless that was given
    too, which is a ConfigError. Any other unknown keyword is a TypeError, as
    Python's own.
    """
    from unilog.errors import ConfigError

    kwargs = {k: v for k, v in kwargs.items() if k not in IGNORED}
    reinit = kwargs.pop("reinit", None)
    include = kwargs.pop("config_include_keys", None)
    exclude = kwargs.pop("config_exclude_keys", None)
    if include is not None or exclude is not None:
        given["config"] = _filtered(given.get("config"), include, exclude)
    options = {"job_type": kwargs.pop("job_type", None),
               "workspace": kwargs.pop("workspace", None)}
    for alias, own in RENAMED.items():
        if alias not in kwargs:
            continue
        value = kwargs.pop(alias)
        if given.get(own) is not None and value is not None:
            raise ConfigError(f"init got both {own}= and {alias}= (its other name): pass one")
        if value is not None:
            given[own] = value
    if kwargs:
        raise TypeError(f"unilog.init() got an unexpected keyword argument "
                        f"{sorted(kwargs)[0]!r}")
    if reinit not in REINIT:
        raise ConfigError(f"reinit must be one of {', '.join(map(repr, REINIT))} "
                          f"(as wandb's), not {reinit!r}")
    return reinit, options


def _filtered(config: Any, include: Any, exclude: Any) -> Any:
    """W&B's ``config_include_keys``/``config_exclude_keys``: the config with only
    (or without) those top-level keys."""
    from unilog._config import to_plain
    from unilog.errors import ConfigError

    if include is not None and exclude is not None:
        raise ConfigError("init got config_include_keys and config_exclude_keys: pass one")
    if config is None:
        return None
    plain = to_plain(config)
    if not isinstance(plain, dict):
        return config
    for keys, name in ((include, "config_include_keys"), (exclude, "config_exclude_keys")):
        if keys is not None and (isinstance(keys, str) or not all(isinstance(k, str)
                                                                  for k in keys)):
            raise ConfigError(f"{name} must be a list of config keys (str), not {keys!r}")
    if include is not None:
        return {k: v for k, v in plain.items() if k in set(include)}
    return {k: v for k, v in plain.items() if k not in set(exclude)}


def reinit_policy(reinit: Any) -> str:
    """What ``init`` does about a run that is still current, for wandb's ``reinit``:
    "concurrent" (unilog's default: the new run becomes current, the other goes on),
    "create_new" (the new run goes on beside; the current one stays current),
    "finish_previous" or "return_previous"."""
    if reinit in (None, "default"):
        return "concurrent"
    if isinstance(reinit, bool):
        return "finish_previous" if reinit else "return_previous"
    return reinit


class _PendingConfig:
    """What ``unilog.config = {...}`` set while no run was current: the next
    ``init``'s config."""

    value: Any = None


pending = _PendingConfig()


def take_pending_config(config: Any) -> Any:
    """The config for a new run: what ``unilog.config = ...`` set before it (if
    anything), updated key by key with ``config``."""
    held, pending.value = pending.value, None
    if held is None:
        return config
    if config is None:
        return held
    from unilog._config import to_plain

    merged, given = to_plain(held), to_plain(config)
    if not isinstance(merged, dict) or not isinstance(given, dict):
        return config
    return {**merged, **given}


class UnilogModule(types.ModuleType):
    """The ``unilog`` module's type: ``unilog.config = {...}`` and
    ``unilog.summary = {...}`` update the current run (see the module docstring)
    instead of replacing the views."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ("config", "summary") or isinstance(value, _CurrentRunView):
            super().__setattr__(name, value)
            return
        run = self.__dict__.get("run")
        if run is not None:
            getattr(run, name).update(value)
        elif name == "config":
            pending.value = value
        else:
            raise UnilogError("unilog.summary: there is no active run: call unilog.init() "
                              "first (the run it returns is the current one until it finishes)")
