"""Resolving ``unilog.init``'s arguments, with their environment variables, into Settings.

Precedence for each setting: the argument, then its environment variable,
then the default:

=============  ======================  ==========
argument       environment variable    default
=============  ======================  ==========
backends       UNILOG_BACKENDS         ``["csv"]`` (comma-separated names)
dir            UNILOG_DIR              ``./runs``, relative to the launch folder
mode           UNILOG_MODE             ``online``
project        UNILOG_PROJECT          ``default``
isolation      UNILOG_ISOLATION        ``process``
(finish)       UNILOG_FINISH_TIMEOUT   60 seconds
=============  ======================  ==========

The CSV backend is the local record and is always added unless the mode is
``disabled``.

A relative ``dir`` is taken from the folder the program was launched in: the
working directory, or, in a Hydra app that changes it (``hydra.job.chdir``,
the default without ``version_base``), the folder Hydra was started from, so
every job's runs land in one ``runs/`` (see :func:`launch_dir`).

W&B's and SwanLab's spellings of a mode or a resume are taken too
(``MODE_ALIASES``, ``RESUME_ALIASES``), so their ``init`` calls run unchanged.
"""

from __future__ import annotations

import os
import re
import secrets
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unilog._config import to_plain
from unilog.errors import ConfigError
from unilog.plugins import get_backend_class

MODES = ("online", "offline", "disabled")
#: Where backends run: "process" (the logging process, the default) or "thread"
#: (a worker thread of the training process). The local record is always a thread.
ISOLATIONS = ("process", "thread")
RESUME = (None, "allow", "must")
#: Other trackers' modes, as unilog's: wandb's "dryrun" (offline) and SwanLab's
#: "cloud" (online) and "local" (offline: its files stay on this machine).
MODE_ALIASES = {"dryrun": "offline", "cloud": "online", "local": "offline"}
#: wandb's resume values, as unilog's: True and "auto" continue a run if it
#: exists, False and "never" start a new one.
RESUME_ALIASES = {True: "allow", "auto": "allow", False: None, "never": None}
LOCAL_RECORD = "csv"

_ID_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PROJECT_RULE = re.compile(r"^[\w.\- ]{1,128}$")
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass
class Settings:
    """Everything a Run needs, resolved and validated."""

    id: str
    name: str
    project: str
    dir: Path
    mode: str
    on_error: str
    isolation: str = "process"
    config: Any = None
    tags: tuple[str, ...] = ()
    notes: str | None = None
    group: str | None = None
    backends: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    backend_classes: dict[str, tuple[type, dict[str, Any]]] = field(default_factory=dict)
    resumed: bool = False
    previous: dict[str, Any] = field(default_factory=dict)
    previous_config: dict[str, Any] = field(default_factory=dict)
    previous_summary: dict[str, Any] = field(default_factory=dict)
    start_step: int = 0
    #: The sweep trial this run is for (a unilog._sweep_link.TrialLink), else None.
    trial: Any = None

    @property
    def run_dir(self) -> Path:
        """``<dir>/<project>/<id>``."""
        return self.dir / self.project / self.id


def new_run_id() -> str:
    """Eight random lowercase letters and digits, like wandb's run ids."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(8))


def default_project() -> str:
    """``$UNILOG_PROJECT``, else "default": the project when ``init`` is given none."""
    return os.environ.get("UNILOG_PROJECT") or "default"


def check_project(project: Any) -> str:
    """``project``, if it can name a folder; else a ConfigError saying the rule."""
    if (not isinstance(project, str) or not _PROJECT_RULE.match(project)
            or project in (".", "..")):
        raise ConfigError(f"project {project!r} must be 1-128 letters, digits, spaces, "
                          "'.', '_' or '-' (it names a folder)")
    return project


def resolve_dir(dir: str | os.PathLike | None) -> Path:
    """The absolute root of local files: ``dir``, else ``$UNILOG_DIR``, else ``./runs``;
    a relative one is taken from :func:`launch_dir`."""
    path = Path(dir or os.environ.get("UNILOG_DIR") or "runs").expanduser()
    return path if path.is_absolute() else launch_dir() / path


def launch_dir() -> Path:
    """The folder relative paths in unilog's settings are taken from: the working
    directory, except in a Hydra job that changed it (``hydra.job.chdir=True``),
    where it is the folder Hydra was launched from (``hydra.runtime.cwd``), as
    ``hydra.utils.to_absolute_path`` takes it."""
    if "hydra" in sys.modules:  # only an app that runs Hydra has imported it
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            return Path(HydraConfig.get().runtime.cwd)
    return Path.cwd()


def finish_timeout() -> float:
    """Default bound, in seconds, on closing each backend at ``finish``."""
    return float(os.environ.get("UNILOG_FINISH_TIMEOUT", "60"))


def parse_backends(backends: Any) -> list[tuple[str, dict[str, Any]]]:
    """Normalise every accepted form to ``[(name, options), ...]``.

    Forms: ``["wandb", "csv"]``, ``[{"name": "wandb", **options}]``,
    ``{"wandb": {...}, "csv": {}}``, a comma-separated string, or None (then
    ``$UNILOG_BACKENDS``, then ``["csv"]``).
    """
    backends = plain_nodes(backends)
    if backends is None:
        backends = os.environ.get("UNILOG_BACKENDS") or [LOCAL_RECORD]
    if isinstance(backends, str):
        backends = [b.strip() for b in backends.split(",") if b.strip()]
    if hasattr(backends, "items"):
        items = [(str(name), dict(opts or {})) for name, opts in backends.items()]
    else:
        items = [_parse_entry(entry) for entry in backends]
    names = [name for name, _ in items]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"backend {duplicates[0]!r} is listed twice; list each backend once")
    return items


def plain_nodes(value: Any) -> Any:
    """``value`` with every OmegaConf node in it (``DictConfig``, ``ListConfig``, also
    inside plain dicts, lists and tuples) turned into resolved plain dicts and lists.

    Backends get their options as the plain types they check for, whether the
    settings came from code or from a Hydra config (``unilog.init(**cfg.logger)``).
    Other values are left as they are (a backend option may be any object), and
    omegaconf is never imported: a node is recognised by its type's module.
    """
    if type(value).__module__.startswith("omegaconf"):
        return to_plain(value)
    if isinstance(value, dict):
        return {key: plain_nodes(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_nodes(item) for item in value]
    if isinstance(value, tuple):
        return tuple(plain_nodes(item) for item in value)
    return value


def _parse_entry(entry: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(entry, str):
        return entry, {}
    if hasattr(entry, "items"):
        options = dict(entry.items())
        name = options.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"a backend given as a mapping needs a 'name' key: {entry!r}")
        return name, options
    raise ConfigError(f"a backend is a name or a mapping with a 'name' key, not {entry!r}")


def construct_backend(cls: type, options: dict[str, Any]) -> Any:
    """``cls(**options)``, turning a bad option into a ConfigError naming the backend."""
    try:
        return cls(**options)
    except TypeError as exc:
        raise ConfigError(f"backend {cls.name!r} rejected its options {sorted(options)}: "
                          f"{exc}") from exc


def backend_isolation(cls: type, options: dict[str, Any], default: str) -> str:
    """Where backend ``cls`` runs: its ``isolation`` option (or the older
    ``process: True``), else the run's ``isolation``; "thread" for the local record,
    for a backend that opts out (``Backend.isolation = "thread"``) unless asked, and
    for one registered at run time (the logging process cannot find it).
    Takes those two options out of ``options``."""
    from unilog.plugins import registered_at_run_time

    given = options.pop("isolation", None)
    process = options.pop("process", None)
    if process is not None and given is None:
        if not isinstance(process, bool):
            raise ConfigError(f"backend {cls.name!r}: option process must be True or False, "
                              f"not {process!r}")
        given = "process" if process else "thread"
    if given is not None and given not in ISOLATIONS:
        raise ConfigError(f"backend {cls.name!r}: option isolation must be one of "
                          f"{', '.join(ISOLATIONS)}, not {given!r}")
    if cls.name == LOCAL_RECORD:
        if given == "process":
            raise ConfigError(f"backend {cls.name!r} is the local record, which stays in the "
                              "training process: it cannot take isolation='process' "
                              "(or process=True)")
        return "thread"
    if registered_at_run_time(cls):
        if given == "process":
            raise ConfigError(f"backend {cls.name!r} was registered at run time "
                              "(unilog.register_plugin), so the logging process cannot find "
                              "it: install it with an entry point, or use isolation='thread'")
        return "thread"
    if given is not None:
        return given
    return "thread" if getattr(cls, "isolation", "process") == "thread" else default


def distributed_rank() -> int:
    """This process's global rank under torch.distributed/torchrun, else 0."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    for var in ("RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def resolve(*, project, name, config, backends, dir, tags, notes, group, mode, id, resume,
            on_error, rank_zero_only, isolation=None, entity=None, job_type=None,
            workspace=None) -> Settings:
    """Validate every argument of ``init`` and fill in defaults."""
    mode = resolve_mode(mode)
    if isinstance(resume, bool) or resume in ("auto", "never"):
        resume = RESUME_ALIASES[resume]
    isolation = isolation or os.environ.get("UNILOG_ISOLATION") or "process"
    if isolation not in ISOLATIONS:
        raise ConfigError(f"isolation must be one of {', '.join(ISOLATIONS)}, not "
                          f"{isolation!r}")
    if rank_zero_only and distributed_rank() != 0:
        mode = "disabled"
    if resume not in RESUME:
        raise ConfigError(f"resume must be None, 'allow' or 'must', not {resume!r}")
    project = check_project(project or default_project())
    run_id = id or new_run_id()
    if not _ID_RULE.match(run_id):
        raise ConfigError(f"run id {run_id!r} must be 1-64 letters, digits, '_' or '-'")
    if isinstance(tags, str):
        tags = [tags]
    s = Settings(
        id=run_id, name=name or run_id, project=project, mode=mode,
        dir=resolve_dir(dir),
        on_error=on_error, config=config, tags=tuple(str(t) for t in (tags or ())),
        notes=notes, group=group, isolation=isolation,
    )
    if mode == "disabled":
        return s
    s.backends = parse_backends(backends)
    _backend_defaults(s.backends, entity=entity, job_type=job_type, workspace=workspace)
    if LOCAL_RECORD not in dict(s.backends):
        s.backends.insert(0, (LOCAL_RECORD, {}))
    s.backend_classes = {name: (get_backend_class(name), opts) for name, opts in s.backends}
    _resolve_resume(s, resume)
    if s.resumed:  # what was not given again is the run's own, as wandb resumes
        previous = s.previous
        s.name = name or previous.get("name") or run_id
        s.group = group if group is not None else previous.get("group")
        s.notes = notes if notes is not None else previous.get("notes")
        if tags is None:
            s.tags = tuple(str(t) for t in previous.get("tags") or ())
    return s


def resolve_mode(mode: str | None) -> str:
    """``mode``, else ``$UNILOG_MODE``, else "online"; another tracker's name for a
    mode (``MODE_ALIASES``) is taken as unilog's."""
    mode = mode or os.environ.get("UNILOG_MODE") or "online"
    mode = MODE_ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)} (or wandb's 'dryrun', "
                          f"SwanLab's 'cloud' or 'local'), not {mode!r}")
    return mode


#: ``init``'s keywords that are one backend's option of the same name: W&B's
#: ``entity`` and ``job_type`` (a W&B team means nothing to SwanLab), SwanLab's
#: ``workspace``.
BACKEND_KEYWORDS = {"entity": "wandb", "job_type": "wandb", "workspace": "swanlab"}


def _backend_defaults(backends: list[tuple[str, dict[str, Any]]], **given: Any) -> None:
    """Each of ``BACKEND_KEYWORDS`` given to ``init``, as its backend's option,
    unless that backend's own option says otherwise."""
    for keyword, value in given.items():
        if value is None:
            continue
        for name, options in backends:
            if name == BACKEND_KEYWORDS[keyword]:
                options.setdefault(keyword, value)


def _resolve_resume(s: Settings, resume: str | None) -> None:
    from unilog._manifest import MANIFEST, Manifest

    exists = (s.run_dir / MANIFEST).exists()
    if exists and resume is None:
        raise ConfigError(f"a run with id {s.id!r} already exists in {s.run_dir}; pass "
                          "resume='allow' to continue it, or another id")
    if not exists and resume == "must":
        raise ConfigError(f"resume='must' but there is no run {s.id!r} in {s.run_dir.parent}")
    if exists:
        s.resumed = True
        s.previous = Manifest.load(s.run_dir).data
        s.previous_config = _read_json(s.run_dir / "config.json")
        s.previous_summary = _read_json(s.run_dir / "summary.json")
        # A run killed with SIGKILL never saved its step: the metrics file knows it.
        from unilog.read import last_step

        logged = last_step(s.run_dir)
        s.start_step = max(int(s.previous.get("step") or 0),
                           logged + 1 if logged is not None else 0)


def _read_json(path: Path) -> dict[str, Any]:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
