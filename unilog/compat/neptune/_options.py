"""``init_run``'s arguments: Neptune's project, token and mode as unilog's, and the
keywords of Neptune's client that are accepted and ignored."""

from __future__ import annotations

import os
from typing import Any

from unilog.compat.neptune._errors import NotSupported
from unilog.errors import ConfigError

#: Neptune's token for its public projects; given to ``init_run`` it sets nothing.
ANONYMOUS_API_TOKEN = "ANONYMOUS"
#: Neptune's modes -> unilog's (None: unilog's default, ``$UNILOG_MODE`` else "online").
MODES = {"async": None, "sync": None, "offline": "offline", "debug": "disabled"}
#: Keywords of Neptune's ``init_run`` that are accepted and ignored: each controls
#: something of Neptune's own client (capture, threads, network) that unilog does
#: not have or does by itself (a run that raises ends as failed).
IGNORED_KWARGS = frozenset({
    "capture_stdout", "capture_stderr", "capture_hardware_metrics", "capture_traceback",
    "fail_on_exception", "monitoring_namespace", "flush_period", "proxies", "git_ref",
    "dependencies", "async_lag_callback", "async_lag_threshold",
    "async_no_progress_callback", "async_no_progress_threshold",
})


def _set_api_token(api_token: str | None) -> None:
    if api_token is None or api_token == ANONYMOUS_API_TOKEN:
        return
    if not isinstance(api_token, str):
        raise TypeError(f"init_run: api_token must be a str, not {type(api_token).__name__}")
    # The Neptune backend (in this process or the logging process, which inherits the
    # environment) reads it there; it never reaches a file.
    os.environ["NEPTUNE_API_TOKEN"] = api_token


def _neptune_project(project: str | None) -> str | None:
    if project is not None or os.environ.get("UNILOG_PROJECT"):
        return project
    return os.environ.get("NEPTUNE_PROJECT") or None


def _unilog_project(project: str | None) -> str | None:
    if project is None:
        return None
    if not isinstance(project, str):
        raise ConfigError(f"init_run: project must be a str like 'workspace/name', not "
                          f"{project!r}")
    from unilog._settings import check_project

    name = project.rsplit("/", 1)[-1]
    try:
        return check_project(name)
    except ConfigError as exc:
        raise ConfigError(f"init_run: Neptune project {project!r} gives the unilog project "
                          f"{name!r} (the part after the last '/'), which breaks unilog's "
                          f"rule: {exc}") from None


def _with_neptune_project(backends: Any, project: str | None) -> Any:
    """``backends`` with ``project`` as the Neptune backend's option, when the project
    names a workspace and the option is not given already."""
    if project is None or "/" not in project:
        return backends
    from unilog._settings import parse_backends

    entries = parse_backends(backends)
    if "neptune" not in dict(entries):
        return backends
    return [{"name": name, **options, **({"project": project} if name == "neptune"
                                          and "project" not in options else {})}
            for name, options in entries]


def _unilog_mode(mode: str | None) -> str | None:
    if mode is None and not os.environ.get("UNILOG_MODE"):
        mode = os.environ.get("NEPTUNE_MODE") or None
    if mode is None:
        return None
    if mode == "read-only":
        raise NotSupported("init_run(mode='read-only'): read a unilog run with "
                           "unilog.read_run(path)")
    if mode not in MODES:
        raise ConfigError(f"init_run: mode must be one of Neptune's {', '.join(MODES)} "
                          f"(read-only is not supported), not {mode!r}")
    return MODES[mode]
