"""Neptune's run API (neptune-client 1.x) over a unilog run.

A script written for Neptune logs to every unilog backend with one line changed::

    import unilog.compat.neptune as neptune          # was: import neptune
    from unilog.compat.neptune.types import File     # was: from neptune.types import File

    run = neptune.init_run(project="ws/quickstarts", tags=["quickstart"])
    run["parameters"] = {"learning_rate": 0.001, "optimizer": "Adam"}
    for epoch in range(10):
        run["train/loss"].append(0.9 ** epoch)
    run["eval/f1_score"] = 0.66
    run["model"].upload("model.pt")
    run.stop()

Where each field goes (the full table, with the reasons, is docs/compat-neptune.md):

- ``run["parameters/..."] = x``: the run's config, ``parameters`` being its root
  (the Neptune backend writes config back under ``parameters/``);
- elsewhere, ``run[path] = x``: a number is a summary value at ``path``; a str,
  bool, None, list or other value is config at ``path`` (split on ``/``); a
  mapping is assigned leaf by leaf by the same rule; a ``File`` is an artifact,
  or an image for ``File.as_image``;
- ``.append`` / ``.log`` / ``.extend``: series, as rows of the unilog run. Without
  ``step=`` an appended value joins the row being filled, unless its key is in
  that row already: then the row is sent and a new one begins. With ``step=``
  the value goes to that row, by unilog's step rules (steps never go back);
- ``.upload(file)`` / ``.upload_files(globs)``: one artifact named after the path;
- ``run["sys/tags"].add(tags)``: the run's tags (see :meth:`Handler.add`);
  ``run["sys/name"] = x`` / ``run["sys/description"] = y``: the unilog run's
  ``name`` / ``notes`` (sent to every backend).

Importing this module imports no tracker SDK, numpy, torch or matplotlib.
"""

from __future__ import annotations

from typing import Any

from unilog.compat.neptune import _options, types, utils
from unilog.compat.neptune._errors import NotSupported
from unilog.compat.neptune._handler import Handler
from unilog.compat.neptune._options import ANONYMOUS_API_TOKEN
from unilog.compat.neptune._run import Run
from unilog.compat.neptune.types import File
from unilog.compat.neptune.utils import stringify_unsupported

__all__ = [
    "ANONYMOUS_API_TOKEN",
    "File",
    "Handler",
    "NotSupported",
    "Run",
    "init_model",
    "init_model_version",
    "init_project",
    "init_run",
    "stringify_unsupported",
    "types",
    "utils",
]

# Module attributes as before, not in __all__; documented where init_run's
# arguments are read (_options).
MODES = _options.MODES
IGNORED_KWARGS = _options.IGNORED_KWARGS


def init_run(with_id: str | None = None, **kwargs: Any) -> Run:
    """Start (or, ``with_id``, continue) a run: Neptune's ``init_run`` over
    :func:`unilog.init`. Takes :class:`Run`'s arguments."""
    return Run(with_id, **kwargs)


def init_model(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_model")


def init_model_version(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_model_version")


def init_project(*args: Any, **kwargs: Any) -> None:
    """Not supported: unilog has runs only."""
    raise _no_container("init_project")


def _no_container(name: str) -> NotSupported:
    return NotSupported(f"neptune.{name}: unilog.compat.neptune provides runs only; store a "
                        "model as an artifact of the run (run['model'].upload('model.pt'), "
                        "then unilog's run.use_artifact('model:latest'))")


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}: it provides "
                         f"Neptune's run API only ({', '.join(__all__)}); see "
                         "docs/compat-neptune.md")
