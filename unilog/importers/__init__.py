"""``unilog.import_run``: another tracker's run becomes an ordinary unilog run.

Each source is read through that tracker's own reader, in a module of its own
(imported only when used, with its SDK):

- ``tensorboard``: event files (``unilog.importers.tensorboard``);
- ``wandb``: an offline run folder (``unilog.importers.wandb``);
- ``mlflow``: runs of a tracking store (``unilog.importers.mlflow``).

A source module defines ``import_runs(location, *, new_run, run_id, tracking_uri,
experiment, progress) -> list[Path]``: it reads the runs at ``location`` and
writes each through ``new_run(**identity)``, an :class:`ImportTarget`. The new
run is a run directory like any other: ``read_run``, ``unilog show`` and
``unilog sync`` work on it. See docs/import.md.
"""

from __future__ import annotations

import importlib
import os
from functools import partial
from pathlib import Path
from typing import Any

from unilog.errors import ConfigError

#: Each source and the module that reads it.
SOURCES = {
    "tensorboard": "unilog.importers.tensorboard",
    "wandb": "unilog.importers.wandb",
    "mlflow": "unilog.importers.mlflow",
}

__all__ = ["SOURCES", "ImportTarget", "import_run", "import_runs"]


def import_runs(location: str | os.PathLike | None = None, source: str = "tensorboard", *,
                dir: str | os.PathLike | None = None, project: str | None = None,
                run_id: str | None = None, tracking_uri: str | None = None,
                experiment: str | None = None, progress: bool = False) -> list[Path]:
    """Import every run found at ``location`` from ``source``; the new run directories.

    ``location`` is a TensorBoard log folder (each folder holding event files is
    a run), a wandb offline run folder, or for MLflow a tracking URI (or give
    ``tracking_uri``) with ``run_id`` or ``experiment``. ``dir`` and ``project``
    place the new runs as ``init`` would.
    """
    if source not in SOURCES:
        raise ConfigError(f"source must be one of {', '.join(SOURCES)}, not {source!r}")
    module = importlib.import_module(SOURCES[source])
    from unilog.importers._target import ImportTarget

    new_run = partial(ImportTarget, source=source, dir=dir, project=project)
    return module.import_runs(location, new_run=new_run, run_id=run_id,
                              tracking_uri=tracking_uri, experiment=experiment,
                              progress=progress)


def __getattr__(name: str) -> Any:
    # ImportTarget (and with it unilog.runs) is loaded on first use: the ``unilog``
    # command imports this package at every start, for ``unilog import``.
    if name == "ImportTarget":
        from unilog.importers._target import ImportTarget

        return ImportTarget
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def import_run(location: str | os.PathLike | None = None, source: str = "tensorboard", *,
               dir: str | os.PathLike | None = None, project: str | None = None,
               run_id: str | None = None, **options: Any) -> Path:
    """Import one run (see :func:`import_runs`) and return its new run directory;
    a ConfigError when ``location`` holds several (use ``import_runs``)."""
    paths = import_runs(location, source, dir=dir, project=project, run_id=run_id, **options)
    if len(paths) != 1:
        raise ConfigError(f"{location or options.get('tracking_uri')!r} holds {len(paths)} "
                          f"{source} runs, not one: use unilog.import_runs to import them all")
    return paths[0]
