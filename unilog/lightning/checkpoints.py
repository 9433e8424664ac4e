"""Which of ``ModelCheckpoint``'s files become unilog artifacts, and when.

============  ==============================================  ==========================
mode          what is logged                                  when
============  ==============================================  ==========================
False         nothing
"best"        the best checkpoint, alias ``best``             after each save that
                                                              changes the best
"last"        the latest checkpoint (alias ``latest``) and    once, when training ends
              the best (alias ``best``; one version when       (``finalize``, on failure
              they are the same file)                          too)
"all"         every checkpoint file, ``latest`` on the        right after each save
              newest, ``best`` on the best
============  ==============================================  ==========================

Every checkpoint is a version of one artifact (``model`` unless renamed), type
``model``, with the monitor, its score, the epoch/step and the file name as
metadata. Only rank zero logs (Lightning calls ``after_save_checkpoint`` there).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

CHECKPOINT_MODES = (False, "best", "last", "all")


class CheckpointLogger:
    """Remembers what was logged, so each checkpoint file is logged once per content."""

    def __init__(self, mode: bool | str, name: str):
        self.mode = mode
        self.name = name
        self._logged: dict[str, float] = {}  # path -> mtime when it was logged
        self._seen: dict[str, Any] = {}  # the last callback's state, for "last" at the end

    def after_save(self, run: Any, callback: Any) -> None:
        """After ``callback`` saved a file: log what the mode asks for now."""
        if not self.mode:
            return
        self._seen = _state(callback)
        best = self._seen["best"]
        if self.mode == "best":
            if best and os.path.isfile(best):
                self._log(run, best, ["best"])  # skipped unless the best file changed
        elif self.mode == "all":
            newest = self._seen["latest"]
            for path in self._seen["files"]:
                aliases = (["latest"] if path == newest else []) + (["best"] if path == best else [])
                self._log(run, path, aliases)

    def at_end(self, run: Any) -> None:
        """When training ends: in ``"last"`` mode, log the latest and the best checkpoint."""
        if self.mode != "last" or not self._seen:
            return
        latest, best = self._seen["latest"], self._seen["best"]
        if best and best != latest and os.path.isfile(best):
            self._log(run, best, ["best"])
        if latest and os.path.isfile(latest):
            self._log(run, latest, ["latest"] + (["best"] if latest == best else []))

    def _log(self, run: Any, path: str, aliases: list[str]) -> None:
        mtime = os.path.getmtime(path)
        if self._logged.get(path) == mtime:
            return  # this very file was logged already
        self._logged[path] = mtime
        named = _numbers_in_name(path)
        latest_step = self._seen["step"] if path == self._seen["latest"] else None
        metadata = {"filename": Path(path).name, "monitor": self._seen["monitor"],
                    "score": self._seen["scores"].get(path), "epoch": named.get("epoch"),
                    "step": named.get("step", latest_step)}
        run.log_artifact(path, name=self.name, type="model", aliases=aliases,
                         metadata={k: v for k, v in metadata.items() if v is not None})


def _state(callback: Any) -> dict[str, Any]:
    """What we need from a ModelCheckpoint, read now (it changes with each save)."""
    scores = {path: _score(score)
              for path, score in (getattr(callback, "best_k_models", None) or {}).items()}
    files = [p for p in {*scores, getattr(callback, "last_model_path", "") or ""}
             if p and os.path.isfile(p)]
    files.sort(key=os.path.getmtime)  # oldest first: the newest version ends up latest
    latest = getattr(callback, "_last_checkpoint_saved", None)
    if not (latest and os.path.isfile(latest)):
        latest = files[-1] if files else None
    return {"files": files, "latest": latest, "scores": scores,
            "best": getattr(callback, "best_model_path", None) or None,
            "monitor": getattr(callback, "monitor", None),
            "step": getattr(callback, "_last_global_step_saved", None)}


def _score(score: Any) -> float | None:
    # Read once per save, on the host: a scalar tensor the callback already holds.
    return None if score is None else float(score)


def _numbers_in_name(path: str) -> dict[str, int]:
    """``{"epoch": 3, "step": 120}`` from Lightning's default file name ``epoch=3-step=120.ckpt``."""
    numbers = {}
    for part in Path(path).stem.split("-"):
        key, _, value = part.partition("=")
        if key in ("epoch", "step") and value.isdigit():
            numbers[key] = int(value)
    return numbers
