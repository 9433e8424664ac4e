"""Hydra apps: unilog's settings from a config node, sweeps grouped, Hydra's config kept.

    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def main(cfg):
        with unilog.hydra.init(cfg) as run:       # settings from cfg.logger
            ...

``import unilog`` never imports this module. It imports neither hydra nor
omegaconf itself: Hydra can only be running if the app imported it, and a
config node is converted by :func:`unilog._config.to_plain`, which imports
omegaconf only for an OmegaConf value. See docs/hydra.md.

Naming under Hydra, when the node sets no ``group``/``name`` of its own:

- a multirun (``-m``) puts every job of the sweep in one group,
  ``<job name>-<last two parts of the sweep dir>`` (with Hydra's default sweep
  dir, the app and the sweep's date and time: ``hydra_app-2025-01-31-12-00-00``),
  and names each run after its job's overrides (``hydra.job.override_dirname``,
  e.g. ``optim.lr=0.1``), else ``job<N>``;
- a single run is named after its overrides when it has some.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unilog
from unilog._config import to_plain
from unilog.errors import ConfigError

if TYPE_CHECKING:
    from unilog.artifacts import Artifact
    from unilog.runs import Run

__all__ = ["init", "log_hydra_config", "settings_from_hydra"]

#: The ``unilog.init`` arguments a settings node may hold.
INIT_KEYS = ("project", "name", "backends", "dir", "tags", "notes", "group", "mode", "id",
             "resume", "on_error", "rank_zero_only")
#: Keys of ``hydra.utils.instantiate``, skipped so that one node can serve both
#: ``unilog.hydra.init(cfg)`` and ``instantiate(cfg.logger)`` of a ``_target_``.
INSTANTIATE_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
#: The artifact that holds Hydra's output ``.hydra/`` folder.
HYDRA_ARTIFACT = "hydra-config"


def settings_from_hydra(cfg: Any, node: str = "logger") -> dict[str, Any]:
    """The ``unilog.init`` keyword arguments in ``cfg[node]``, as plain Python.

    Any of ``project``, ``name``, ``backends``, ``dir``, ``tags``, ``notes``,
    ``group``, ``mode``, ``id``, ``resume``, ``on_error``, ``rank_zero_only``
    may be present; interpolations are resolved; null values count as absent;
    ``hydra.utils.instantiate``'s keys (``_target_``...) are skipped. When Hydra
    is running, a missing ``group``/``name`` is filled in from the sweep and the
    job (see the module docstring).

    :raises ConfigError: when ``cfg`` has no such node, the node is not a
        mapping, or it holds a key that is not a ``unilog.init`` setting.
    """
    settings = {k: v for k, v in _node(cfg, node).items() if k not in INSTANTIATE_KEYS}
    unknown = sorted(set(settings) - set(INIT_KEYS))
    if unknown:
        raise ConfigError(f"{node}.{unknown[0]} is not a unilog.init setting; a {node!r} "
                          f"node may hold only {', '.join(INIT_KEYS)}")
    return {**_hydra_names(), **{k: v for k, v in settings.items() if v is not None}}


def log_hydra_config(run: Run) -> Artifact | None:
    """Log Hydra's ``.hydra/`` folder of this job (``config.yaml``, ``hydra.yaml``,
    ``overrides.yaml``) as the artifact ``hydra-config`` of type ``config``.

    Returns the artifact; None when Hydra is not running, when
    ``hydra.output_subdir`` is null (Hydra then writes no such folder), or on a
    disabled run.
    """
    hydra_cfg = _hydra_config()
    if hydra_cfg is None or hydra_cfg.output_subdir is None:
        return None
    folder = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir
    if not folder.is_dir():
        return None
    return run.log_artifact(folder, name=HYDRA_ARTIFACT, type="config")


def init(cfg: Any, node: str = "logger", **overrides: Any) -> Run:
    """``unilog.init`` with the settings of ``cfg[node]`` and ``config=cfg``, then
    :func:`log_hydra_config`. Keyword ``overrides`` win over the node's settings."""
    run = unilog.init(**{"config": cfg, **settings_from_hydra(cfg, node), **overrides})
    log_hydra_config(run)
    return run


def _node(cfg: Any, node: str) -> dict[str, Any]:
    try:
        value = cfg[node]
    except (KeyError, AttributeError, TypeError):
        # OmegaConf raises its own KeyError subclasses; a plain mapping raises KeyError.
        raise ConfigError(f"the config has no {node!r} node holding unilog's settings") from None
    settings = {} if value is None else to_plain(value)
    if not isinstance(settings, dict):
        raise ConfigError(f"the {node!r} node must be a mapping of unilog.init settings, "
                          f"not {type(value).__name__}")
    return settings


def _hydra_config() -> Any:
    """The running Hydra job's ``hydra`` node, or None outside Hydra."""
    if "hydra" not in sys.modules:  # an app that runs Hydra has imported it
        return None
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _hydra_names() -> dict[str, str]:
    """``group`` and ``name`` that Hydra's sweep and job imply (see the module docstring)."""
    hydra_cfg = _hydra_config()
    if hydra_cfg is None:
        return {}
    from hydra.types import RunMode

    job = hydra_cfg.job
    overrides = job.override_dirname or ""
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return {"name": overrides} if overrides else {}
    sweep = Path(str(hydra_cfg.sweep.dir))
    return {"group": "-".join([job.name, *sweep.parts[-2:]]),
            "name": overrides or f"job{job.num}"}
