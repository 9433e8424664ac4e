"""Hydra apps: unilog's settings from a config node, sweeps grouped, Hydra's config kept.

    @hydra.main(version_base="1.3", config_path="conf", config_name="config")
    def main(cfg):
        with unilog.hydra.init(cfg) as run:       # settings from cfg.logger
            ...

The settings node: ``logger`` (unilog's own keys) when the config has one; else
a W&B-style ``wandb`` group (W&B's ``init`` keys: ``entity``, ``project``,
``name``, ``job_type``...; backends default to wandb) or a SwanLab-style
``swanlab`` group (``experiment_name``, ``description``, ``workspace``...;
backends default to swanlab); else none: every setting takes its default.
A key that is neither unilog's nor that tracker's is a ConfigError naming it.

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

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import unilog
from unilog._config import to_plain
from unilog.errors import ConfigError

if TYPE_CHECKING:
    from unilog.artifacts import Artifact
    from unilog.runs import Run

__all__ = ["hydra_names", "init", "log_hydra_config", "settings_from_hydra"]

#: The ``unilog.init`` arguments a settings node may hold.
INIT_KEYS = ("project", "name", "backends", "dir", "tags", "notes", "group", "mode", "id",
             "resume", "on_error", "rank_zero_only", "isolation", "save_code", "source_files",
             "entity")
#: Other trackers' config groups: the ``init`` keys each takes beside unilog's own
#: (as that tracker's ``init`` keywords, which ``unilog.init`` also takes).
TRACKER_NODES = {
    "wandb": ("job_type", "reinit"),
    "swanlab": ("experiment_name", "description", "workspace", "logdir", "log_dir"),
}
#: The node looked for when none is named: unilog's own, then the trackers'.
NODES = ("logger", *TRACKER_NODES)
#: Keys of ``hydra.utils.instantiate``, skipped so that one node can serve both
#: ``unilog.hydra.init(cfg)`` and ``instantiate(cfg.logger)`` of a ``_target_``.
INSTANTIATE_KEYS = ("_target_", "_recursive_", "_convert_", "_partial_", "_args_")
#: The artifact that holds Hydra's output ``.hydra/`` folder.
HYDRA_ARTIFACT = "hydra-config"


def settings_from_hydra(cfg: Any, node: str | None = None) -> dict[str, Any]:
    """The ``unilog.init`` keyword arguments in ``cfg[node]``, as plain Python.

    ``node`` None: the first of ``logger``, ``wandb``, ``swanlab`` the config has,
    else none (every setting takes its default). Any of ``INIT_KEYS`` may be
    present, and in a ``wandb``/``swanlab`` node that tracker's own ``init`` keys
    too (``TRACKER_NODES``); a tracker's node sets ``backends`` to that tracker
    unless it names them or ``$UNILOG_BACKENDS`` is set. Interpolations are
    resolved; null values count as absent; ``hydra.utils.instantiate``'s keys
    (``_target_``...) are skipped. When Hydra is running, a missing
    ``group``/``name`` is filled in from the sweep and the job (see the module
    docstring).

    :raises ConfigError: when a named ``node`` is missing, the node is not a
        mapping, or it holds a key that is not a setting, naming the key.
    """
    if node is None:
        node = next((name for name in NODES if _has_node(cfg, name)), None)
        if node is None:
            return hydra_names()
    settings = {k: v for k, v in _node(cfg, node).items() if k not in INSTANTIATE_KEYS}
    allowed = INIT_KEYS + TRACKER_NODES.get(node, ())
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        named = ", ".join(f"{node}.{key}" for key in unknown)
        raise ConfigError(f"{named} {'is' if len(unknown) == 1 else 'are'} not a unilog.init "
                          f"setting; a {node!r} node may hold only {', '.join(allowed)}")
    settings = {k: v for k, v in settings.items() if v is not None}
    if node in TRACKER_NODES and "backends" not in settings and not os.environ.get(
            "UNILOG_BACKENDS"):
        settings["backends"] = [node]
    return {**hydra_names(), **settings}


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


def init(cfg: Any, node: str | None = None, **overrides: Any) -> Run:
    """``unilog.init`` with the settings of ``cfg[node]`` (see
    :func:`settings_from_hydra`) and ``config=cfg``, then :func:`log_hydra_config`.
    Keyword ``overrides`` win over the node's settings."""
    run = unilog.init(**{"config": cfg, **settings_from_hydra(cfg, node), **overrides})
    log_hydra_config(run)
    return run


def _has_node(cfg: Any, node: str) -> bool:
    try:
        return node in cfg
    except TypeError:
        return False


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


def hydra_names() -> dict[str, str]:
    """``group`` and ``name`` that the running Hydra job implies (see the module
    docstring); empty outside Hydra. ``UnilogLogger`` takes them too."""
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
