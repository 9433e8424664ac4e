"""Source capture: ``init(save_code=True)`` (W&B's) and ``init(source_files=[...])``
(Neptune's) keep the code that produced a run as its ``code`` artifact.

``save_code`` takes the entry script (``sys.argv[0]``, or the ``__main__``
module's file under ``python -m``); ``source_files`` takes glob patterns
relative to the working directory (``"*.py"``, ``"src/**/*.py"``), as Neptune
does. The files keep their paths relative to the working directory (an entry
script outside it keeps its name). In a Hydra job that changed directory, "the
working directory" is the folder Hydra was launched from (``_settings.launch_dir``). The artifact is logged like any other, so it
reaches every backend that stores artifacts, and ``unilog sync`` replays it;
the git commit and dirty flag are already in ``run.json``'s provenance and go
into the artifact's metadata.

Bounded: at most ``MAX_FILES`` files and ``MAX_BYTES`` bytes (a glob such as
``**/*`` in a data folder must not copy a dataset); what is left out, and a
pattern that matches nothing, is said in one warning.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

from unilog.errors import ConfigError, UnilogWarning

MAX_FILES = 1000
MAX_BYTES = 50 * 1024 * 1024
ARTIFACT = "code"


def check(save_code: Any, source_files: Any) -> tuple[bool, list[str]]:
    """``(save_code, patterns)`` to capture (``save_code`` None reads
    ``$UNILOG_SAVE_CODE``); a ConfigError naming the argument and its rule."""
    if save_code is None:
        save_code = os.environ.get("UNILOG_SAVE_CODE", "").lower() in ("1", "true", "yes")
    if not isinstance(save_code, bool):
        raise ConfigError(f"save_code must be True or False, not {save_code!r}")
    if source_files is None:
        return save_code, []
    if isinstance(source_files, (str, os.PathLike)):
        source_files = [source_files]
    patterns = list(source_files) if isinstance(source_files, (list, tuple)) else None
    if patterns is None or not all(isinstance(p, (str, os.PathLike)) for p in patterns):
        raise ConfigError(f"source_files must be a list of glob patterns (str), not "
                          f"{source_files!r}")
    return save_code, [os.fspath(p) for p in patterns]


def entry_script() -> Path | None:
    """The file the program was started from, or None (an interactive session)."""
    from unilog._settings import launch_dir

    main = sys.modules.get("__main__")
    candidates = [getattr(main, "__file__", None), sys.argv[0] if sys.argv else None]
    for candidate in candidates:
        if candidate and (launch_dir() / candidate).is_file():
            return (launch_dir() / candidate).absolute()
    return None


def collect(save_code: bool, patterns: list[str], cwd: Path) -> tuple[list[tuple[Path, str]],
                                                                          list[str]]:
    """``(file, its name in the artifact)`` for every file to keep, and what to warn."""
    chosen: dict[Path, str] = {}
    problems: list[str] = []
    if save_code:
        script = entry_script()
        if script is None:
            problems.append("save_code: no entry script (an interactive session)")
        else:
            chosen[script] = _name_in(script, cwd)
    for pattern in patterns:
        found = [Path(p) for p in glob.glob(pattern, root_dir=cwd, recursive=True)]
        files = [(cwd / p).absolute() for p in found if (cwd / p).is_file()]
        if not files:
            problems.append(f"source_files pattern {pattern!r} matches no file in {cwd}")
        for file in sorted(files):
            chosen.setdefault(file, _name_in(file, cwd))
    kept, total = [], 0
    for file, name in chosen.items():
        size = file.stat().st_size
        if len(kept) >= MAX_FILES or total + size > MAX_BYTES:
            problems.append(f"{len(chosen) - len(kept)} file(s) left out past {MAX_FILES} "
                            f"files or {MAX_BYTES // 2**20} MiB (first: {name})")
            break
        kept.append((file, name))
        total += size
    return kept, problems


def _name_in(file: Path, cwd: Path) -> str:
    try:
        return file.relative_to(cwd.absolute()).as_posix()
    except ValueError:  # outside the working directory: its name alone
        return file.name


def capture(run: Any, save_code: bool, patterns: list[str]) -> None:
    """Log the code as the run's ``code`` artifact (nothing for a disabled run)."""
    if not (save_code or patterns) or run.dir is None:
        return
    from unilog._settings import launch_dir

    cwd = launch_dir()  # under a Hydra job that changed directory, the launch folder
    files, problems = collect(save_code, patterns, cwd)
    if problems:
        warnings.warn("source capture: " + "; ".join(problems), UnilogWarning, stacklevel=3)
    if not files:
        return
    git = (run._manifest.data.get("provenance") or {}).get("git")
    with tempfile.TemporaryDirectory(prefix="unilog-code-") as tmp:
        for file, name in files:
            target = Path(tmp, name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
        run.log_artifact(tmp, name=ARTIFACT, type="code",
                         metadata={"files": len(files), "cwd": str(cwd), "git": git})
