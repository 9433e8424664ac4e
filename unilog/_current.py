"""``unilog.config``, ``unilog.summary`` and ``unilog.login``: the module-level API
of wandb and SwanLab (``wandb.config.lr``, ``swanlab.config["lr"]``,
``wandb.summary["best"] = x``, ``wandb.login()``), acting on the current run
(the one the latest ``unilog.init`` returned, until it finishes).

Before ``init`` and after ``finish`` there is no current run: reading or writing
``unilog.config`` or ``unilog.summary`` then raises a :class:`UnilogError` that
says to call ``unilog.init()`` first, as wandb does. Imports nothing heavy:
``import unilog`` creates these objects.
"""

from __future__ import annotations

import logging
import os
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
          **_ignored: Any) -> bool:
    """``wandb.login()`` / ``swanlab.login()`` for unilog: credentials stay each
    backend's own; nothing is stored and nothing reaches the network.

    Offline (``mode="offline"`` or ``$UNILOG_MODE``) or disabled: True at once.
    Online: True when every backend in ``backends`` (else ``$UNILOG_BACKENDS``)
    that needs an API key has one (wandb: ``WANDB_API_KEY`` or ``~/.netrc``;
    SwanLab: ``SWANLAB_API_KEY``; Neptune: ``NEPTUNE_API_TOKEN``), else False with
    one warning naming each backend and its variable. ``key`` is set, for this
    process only, as the API key of the backends named that need one. Other
    keywords of wandb's and SwanLab's ``login`` (``relogin``, ``host``...) are
    accepted and ignored.
    """
    from unilog._settings import parse_backends

    mode = mode or os.environ.get("UNILOG_MODE") or "online"
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
