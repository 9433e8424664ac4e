"""Where MLflow keeps a run: tracking URIs, the store, and MLflow's rules for names.

Helpers of :mod:`unilog_plugins.mlflow_backend` that need no run: whether a URI
is remote, the inter-process lock around a SQLite store's creation, credentials
redacted from a URI, the process-wide HTTP bounds, MLflow's key rule and value
limits, and the import of the SDK itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import shlex
import time
import warnings
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse, urlsplit, urlunsplit

try:
    import fcntl
except ImportError:  # Windows: no inter-process lock around a SQLite store's creation
    fcntl = None  # type: ignore[assignment]

from unilog.backend import KeyRule, program

logger = logging.getLogger("unilog")

# Known, harmless warnings mlflow's dependencies emit, matched narrowly
# (message and emitting module) so filterwarnings=error users are not broken.
_QUIET = (
    (r"The ``noload`` loader strategy is deprecated", r"mlflow\.store"),
)

MAX_KEY = 250


MAX_PARAM_VALUE = 6000


MAX_TAG_VALUE = 8000


#: Schemes of stores that need no network; everything else is remote.
LOCAL_SCHEMES = ("", "file", "sqlite")


_NOT_ALLOWED = re.compile(r"[^/\w.\- :]")


_HTTP_ENV: dict[str, str] = {}  # the MLFLOW_HTTP_REQUEST_* values this module set


#: Query parameters of a tracking URI whose values are secrets (redacted in run.json, logs).
_SECRET_PARAM = re.compile(r"pass|pwd|token|secret|key|auth|cred|sig", re.IGNORECASE)


_QUERY_PARAM = re.compile(r"(^|[&;])([^=&;]*)=([^&;]*)")


#: Loggers whose INFO lines opening a store prints (the first use of a SQLite file).
_CHATTY_LOGGERS = ("mlflow.store.db.utils", "alembic.runtime.migration")


#: How long ``open`` waits for another process creating the same SQLite store.
STORE_LOCK_TIMEOUT = 120.0


@dataclass(frozen=True)
class MLflowKeyRule(KeyRule):
    """MLflow's names (metrics, params, tags): ``^[/\\w.\\- :]*$``, at most 250
    characters, and unchanged by ``posixpath.normpath`` (no leading or doubled
    ``/``, no ``.`` or ``..`` segment, no leading ``..``).

    Other characters become ``_``; empty segments are dropped; a ``.``/``..``
    segment becomes ``_``/``__``; a key too long keeps 241 characters, ``_``
    and 8 hex digits of the original key's hash.
    """

    allowed: str | None = r"/\w.\- :"
    max_length: int | None = MAX_KEY
    strip: str = "/"
    collapse: str = "/"

    def adapt(self, key: str) -> str:
        """The key as MLflow will accept it (pure and deterministic)."""
        out = _NOT_ALLOWED.sub(self.replacement, key)
        if "/" in out or out.startswith("."):
            parts = (p for p in out.split("/") if p)
            out = "/".join("_" * len(p) if p in (".", "..") else p for p in parts)
            if out.startswith(".."):
                out = "__" + out[2:]
        if len(out) > self.max_length:
            tail = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            out = out[: self.max_length - 9] + self.replacement + tail
        return out or self.replacement


KEY_RULE = MLflowKeyRule()


def is_remote(uri: str) -> bool:
    """True for a tracking URI that needs the network (http, https, databricks, a DB server)."""
    if uri == "databricks":  # MLflow's name for "the workspace configured in ~/.databrickscfg"
        return True
    scheme = urlparse(uri).scheme
    return scheme not in LOCAL_SCHEMES and len(scheme) != 1  # "c:" is a Windows drive


@contextlib.contextmanager
def _store_lock(uri: str):
    """Hold ``<db>.lock`` (``flock``) for a SQLite store's database file: the first
    processes to open a fresh store would otherwise run its alembic migrations at
    once and corrupt it. No lock for other stores, or where ``fcntl`` is missing;
    after ``STORE_LOCK_TIMEOUT`` seconds it goes on without (with a warning)."""
    db = sqlite_path(uri) if urlparse(uri).scheme == "sqlite" else None
    if db is None or fcntl is None:
        yield
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{db}.lock", "a") as lock:
        deadline = time.monotonic() + STORE_LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    logger.warning("unilog backend 'mlflow': %s.lock is still held after "
                                   "%.0f s; opening the store without it", db,
                                   STORE_LOCK_TIMEOUT)
                    yield
                    return
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _redact_uri(uri: str) -> str:
    """``uri`` with its credentials replaced by ``***``: the password of
    ``user:password@`` (a lone ``token@`` entirely) and the values of query
    parameters named like a secret (``password``, ``token``, ``api_key``...)."""
    try:
        parts = urlsplit(uri)
        netloc = parts.netloc
    except ValueError:  # not a URL at all: show nothing of it
        return "***"
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"***@{host}"

    def hide(m: re.Match) -> str:
        return f"{m[1]}{m[2]}=***" if _SECRET_PARAM.search(m[2]) else m[0]

    query = _QUERY_PARAM.sub(hide, parts.query)
    if netloc == parts.netloc and query == parts.query:
        return uri
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for an in-memory one)."""
    path = uri[len("sqlite:///"):].split("?")[0] if uri.startswith("sqlite:///") else ""
    return Path(path).absolute() if path and path != ":memory:" else None


def bound_http_requests(timeout: float, retries: int) -> None:
    """Bound MLflow's HTTP retries (read from the environment at each request).

    Process-wide, since MLflow has no per-client setting; a variable the user
    set is never changed, one this module set may be updated.
    """
    wanted = {"MLFLOW_HTTP_REQUEST_TIMEOUT": str(math.ceil(timeout)),
              "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(retries),
              "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}
    for var, value in wanted.items():
        current = os.environ.get(var)
        if current is None or current == _HTTP_ENV.get(var):
            os.environ[var] = _HTTP_ENV[var] = value


def fit(text: str, limit: int, marker: str = "...[truncated]") -> str:
    """``text`` cut to ``limit`` characters, ending with ``marker`` when cut."""
    return text if len(text) <= limit else text[: limit - len(marker)] + marker


def _import_mlflow() -> SimpleNamespace:
    for message, module in _QUIET:
        warnings.filterwarnings("ignore", message=message, module=module)
    import mlflow.tracking
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    return SimpleNamespace(MlflowClient=mlflow.tracking.MlflowClient, Metric=Metric,
                           Param=Param, RunTag=RunTag, MlflowException=MlflowException,
                           pillow=find_spec("PIL") is not None)


def _run_url(uri: str, experiment_id: str, run_id: str) -> str | None:
    if urlparse(uri).scheme not in ("http", "https"):
        return None
    return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _ui_command(uri: str) -> str:
    """The command that shows a local store's runs in MLflow's UI."""
    return f"{program('mlflow')} ui --backend-store-uri {shlex.quote(uri)}"


def _as_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf

