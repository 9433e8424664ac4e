"""The run an importer writes: a new unilog run directory, through the local record.

An importer reads another tracker's run with that tracker's own reader and
hands what it finds to an :class:`ImportTarget`; the target writes it the way a
live run would (the same ``Run``, with the local record as its only backend),
except that each row keeps the step and the time the source gave it. What the
source holds that a unilog run cannot is named with :meth:`ImportTarget.unrepresented`:
it goes into the run's manifest (``imported.unrepresented``) and the import's
report, never dropped silently.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from unilog import _settings as settings
from unilog.runs import Run

#: Examples kept per kind of unrepresented thing (the count is always exact).
_EXAMPLES = 5


class ImportTarget:
    """A new unilog run being written by an importer.

    ``source`` is the tracker (``"tensorboard"``, ``"wandb"``, ``"mlflow"``) and
    ``origin`` where the run came from (a path, or a tracking URI and run id),
    both recorded in ``run.json`` under ``imported``. ``created`` is the source
    run's start time (seconds since the epoch), kept as the run's own.
    """

    def __init__(self, *, source: str, origin: str, dir: str | os.PathLike | None = None,
                 project: str | None = None, id: str | None = None, name: str | None = None,
                 config: Any = None, tags: Any = None, notes: str | None = None,
                 group: str | None = None, created: float | None = None):
        s = settings.resolve(project=project, name=name, config=config, backends=["csv"],
                             dir=dir, tags=tags, notes=notes, group=group, mode="offline",
                             id=id, resume=None, on_error="warn", rank_zero_only=False,
                             isolation="thread")
        self.source, self.origin = source, origin
        self._created = created
        self._unrepresented: dict[str, dict[str, Any]] = {}
        # A Run made directly, not through init(): an import never becomes the
        # process's current run (unilog.log would write into it).
        self.run = Run(s)
        self.dir: Path = self.run.dir

    def row(self, step: int, values: dict[str, Any], time: float | None = None) -> None:
        """All values of one step, with the time the source recorded (default: now).

        ``values`` may be numbers, str, or unilog media (``Image``, ``Histogram``,
        ``Table``, ``Text``), nested or flat with ``/`` keys. Give each step once,
        in increasing order: several calls at one step are several rows.
        """
        self.run._write_row(step, values, time)

    def summary(self, values: dict[str, Any]) -> None:
        """Set summary values (the source's own final values)."""
        self.run.summary.update(values)

    def artifact(self, path: str | os.PathLike, name: str | None = None,
                 type: str = "artifact", aliases: list[str] | None = None,
                 metadata: dict[str, Any] | None = None) -> None:
        """Store a file or folder of the source run as a versioned artifact."""
        self.run.log_artifact(path, name=name, type=type, aliases=aliases, metadata=metadata)

    def unrepresented(self, what: str, example: str | None = None, count: int = 1) -> None:
        """Note ``count`` things of kind ``what`` that the source holds and a unilog
        run cannot (``"audio"``, ``"3D object"``...), with an example of its name."""
        entry = self._unrepresented.setdefault(what, {"count": 0, "examples": []})
        entry["count"] += count
        if example is not None and len(entry["examples"]) < _EXAMPLES \
                and example not in entry["examples"]:
            entry["examples"].append(example)

    def finish(self, status: str = "finished", *, ended: float | None = None) -> Path:
        """End the run with the source's ``status`` (finished, failed, killed) and
        record where it came from; returns the run directory."""
        exit_code = 0 if status == "finished" else 1
        self.run._quiet = True  # the importer prints its own report
        self.run.finish(exit_code=exit_code, status=status)
        times = {}
        if self._created is not None:
            times.update(created=self._created, started=self._created)
        if ended is not None:
            times["ended"] = ended
        self.run._manifest.update(**times, imported={
            "source": self.source, "from": self.origin, "at": time.time(),
            "unrepresented": self._unrepresented})
        return self.dir

    @property
    def report(self) -> dict[str, Any]:
        """What this import could not represent: ``{what: {"count", "examples"}}``."""
        return self._unrepresented
