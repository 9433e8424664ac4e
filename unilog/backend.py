"""The contract between unilog's core and a backend.

A backend is a subclass of :class:`Backend` registered by a plugin through the
``unilog_register_backends`` hook. The core creates it with the user's options
as keywords, then calls its methods **only on that backend's own worker
thread**, in order: ``open`` once, then any of ``log_rows``/``log_config``/
``log_summary``/``set_tags``/``describe``/``log_artifact``/``flush``, then
``close`` once. A method may raise: the worker catches it and applies the run's ``on_error`` policy.

Before a backend sees a row, the core has already adapted it to the
backend's :class:`Capabilities`: keys follow its :class:`KeyRule`, media types
it does not support are left out (they stay in the local record), tensor values
are resolved to Python numbers, and steps never go backwards unless it declared
``out_of_order_steps``.
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar

# Part of the toolkit a backend needs (so no plugin imports unilog's internals):
# a nested config as flat keys, and the command line with secrets redacted.
from unilog._config import flatten_config, redact_argv  # noqa: F401

if TYPE_CHECKING:
    from unilog.artifacts import Artifact

MEDIA_KINDS = frozenset({"image", "histogram", "text", "table"})


@dataclass(frozen=True)
class KeyRule:
    """How a backend wants metric keys spelled.

    ``allowed`` is a regex character class of the characters the backend
    accepts; every other character becomes ``replacement``. ``max_length``
    truncates, ending the key with 8 hex digits of its hash so
    shortened keys stay distinct. A backend with rules these fields cannot
    say subclasses KeyRule and overrides :meth:`adapt` (it must stay pure). ``strip`` characters
    are removed from both ends (e.g. MLflow refuses a leading ``/``), and runs
    of ``collapse`` are squeezed to one (e.g. ``//``).
    """

    allowed: str | None = None
    replacement: str = "_"
    max_length: int | None = None
    strip: str = ""
    collapse: str = ""

    def adapt(self, key: str) -> str:
        """The key as this backend will see it (deterministic, pure)."""
        out = key
        if self.allowed is not None:
            out = re.sub(f"[^{self.allowed}]", self.replacement, out)
        for ch in self.collapse:
            out = re.sub(re.escape(ch) + "{2,}", ch, out)
        if self.strip:
            out = out.strip(self.strip)
        if self.max_length is not None and len(out) > self.max_length:
            tail = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            # Join with the replacement character: it is one the backend accepts.
            out = out[: self.max_length - 9] + self.replacement + tail
        return out or self.replacement


class KeyMapper:
    """Keys renamed by a :class:`KeyRule`, each once, keeping two keys from sharing a name.

    The first key to take a name keeps it; a later key that the rule maps to the
    same name *collides*: :meth:`map` returns None for it from then on, and the
    collision is listed once by :meth:`take_collisions` (to report it). The core
    maps metric keys with one per backend; a backend maps its other names
    (MLflow's params and summary keys) with its own.
    """

    _UNSEEN = object()

    def __init__(self, rule: KeyRule):
        self.rule = rule
        self._names: dict[str, str | None] = {}  # key -> its name, None when it collided
        self._owners: dict[str, str] = {}  # name -> the key that took it
        self._collisions: list[tuple[str, str, str]] = []

    def map(self, key: str) -> str | None:
        """The name of ``key`` under the rule, or None when another key took that name."""
        name = self._names.get(key, self._UNSEEN)
        if name is not self._UNSEEN:
            return name
        name = self.rule.adapt(key)
        owner = self._owners.setdefault(name, key)
        if owner != key:
            self._names[key] = None
            self._collisions.append((owner, key, name))
            return None
        self._names[key] = name
        return name

    def take_collisions(self) -> list[tuple[str, str, str]]:
        """The collisions found since the last call, as (owner, key, name), each once."""
        found, self._collisions = self._collisions, []
        return found

    def renamed(self) -> dict[str, str]:
        """Every key sent under another name: {key: name}."""
        return {k: v for k, v in self._names.items() if v is not None and v != k}


@dataclass(frozen=True)
class Capabilities:
    """What a backend can take, so the core adapts or falls back for it.

    - ``media``: the media kinds it stores natively (subset of ``MEDIA_KINDS``);
      the others fall back to files in the run directory, with a one-time warning.
    - ``out_of_order_steps``: True if it stores a row whose step is lower than
      one it already has. Rows whose step went backwards reach only the local
      record and the backends that say True here.
    - ``key_rule``: how keys must be spelled (see :class:`KeyRule`).
    - ``artifacts``: True if it stores artifacts itself.
    """

    media: frozenset[str] = frozenset()
    out_of_order_steps: bool = False
    key_rule: KeyRule = field(default_factory=KeyRule)
    artifacts: bool = False


@dataclass
class RunInfo:
    """What a backend is told about the run when it is opened."""

    id: str
    name: str
    project: str
    dir: Path
    mode: str
    config: dict[str, Any]
    tags: tuple[str, ...] = ()
    notes: str | None = None
    group: str | None = None
    resumed: bool = False
    previous: dict[str, Any] = field(default_factory=dict)
    start_time: float = 0.0
    #: The step the run starts at: 0, or the step after the last one on resume.
    start_step: int = 0

    def backend_dir(self, name: str) -> Path:
        """A folder under the run directory for a backend's own files (created)."""
        path = self.dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def expand_dir(self, template: str | os.PathLike) -> Path:
        """A folder option given by the user, with ``{project}``, ``{name}`` and
        ``{id}`` replaced by this run's and ``~`` expanded (created)."""
        path = self.resolve_dir(template)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def resolve_dir(self, template: str | os.PathLike) -> Path:
        """:meth:`expand_dir` without creating the folder."""
        text = os.fspath(template)
        for placeholder, value in (("{project}", self.project), ("{name}", self.name),
                                   ("{id}", self.id)):
            text = text.replace(placeholder, value)
        return Path(text).expanduser()


class Row:
    """All values logged at one step, flattened: ``{"train/loss": 0.1, ...}``.

    Values are ``int``/``float`` (NaN and inf kept) or :class:`unilog.media.Media`.
    """

    __slots__ = ("step", "values", "time")

    def __init__(self, step: int, values: dict[str, Any], time: float):
        self.step = step
        self.values = values
        self.time = time

    def __repr__(self) -> str:
        return f"Row(step={self.step}, values={self.values!r})"

    def __reduce__(self) -> tuple:
        # Pickled to the logging process by the hundred thousand: plain arguments
        # are several times cheaper than the generic state of a class with slots.
        return Row, (self.step, self.values, self.time)


_UNSAFE_IN_PATH = re.compile(r"[^\w.\- ]")


def safe_path_component(part: str) -> str:
    """A key segment usable as a folder name: no separators, no ``..``, never empty."""
    cleaned = _UNSAFE_IN_PATH.sub("_", part).strip()
    return "_" if cleaned in ("", ".", "..") else cleaned[:100]


def media_stem(key: str, step: int) -> Path:
    """Where a media value of ``key`` at ``step`` is saved, relative to the run
    directory (``media/<key parts>/step_<step>``; add the file's suffix). Every
    backend that saves media files uses it, so they name them alike."""
    parts = [safe_path_component(p) for p in key.split("/")]
    if sum(len(p) + 1 for p in parts) > 200:  # keep clear of the OS's path length limit
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]
        parts = [parts[0][:50], digest]
    return Path("media", *parts, f"step_{step}")


def program(name: str) -> str:
    """How to call the command-line program ``name`` in a printed command: its
    bare name when the shell's PATH finds it, else its path beside this Python
    (a virtual environment that is not activated), else the bare name."""
    import shutil
    import sys

    if shutil.which(name) is None:
        beside = Path(sys.executable).with_name(name)
        if beside.exists():
            return str(beside)
    return name


class PartialBatch(Exception):
    """Raised from ``log_rows`` by a backend that stored the first ``stored`` rows of
    the batch and then failed (``__cause__`` is the error). The core sends none of
    those rows again. :meth:`Backend.each_row` raises it for a per-row loop."""

    def __init__(self, stored: int, error: BaseException):
        super().__init__(f"{stored} row(s) stored, then {type(error).__name__}: {error}")
        self.stored = stored
        self.__cause__ = error

    def __reduce__(self):  # crosses the pipe of a backend run in a child process
        return (PartialBatch, (self.stored, self.__cause__))


class Backend:
    """Base class of every backend; subclass it and override what you store.

    Every backend is built the same way, ``Backend(**options)``, with the
    options the user gave for it, so one contract test covers them all. A
    subclass takes its options as keyword arguments and passes the rest up;
    the base class refuses any left over.
    """

    #: The name users pass in ``backends=[...]``.
    name: ClassVar[str] = ""
    #: What the backend can store; see :class:`Capabilities`.
    capabilities: ClassVar[Capabilities] = Capabilities()
    #: Top-level modules the backend's SDK needs; checked at ``init``.
    requires: ClassVar[tuple[str, ...]] = ()
    #: The ``unilog-ml[<extra>]`` that installs them.
    extra: ClassVar[str | None] = None
    #: Seconds between calls to ``flush`` while records arrive (None: only on demand).
    flush_interval: ClassVar[float | None] = 1.0
    #: Where the backend runs by default: "process" (unilog's logging process, away
    #: from the training loop's interpreter lock) or "thread" (a worker thread of
    #: the training process: for a backend that must share state with the training
    #: process). Users override it per backend with the ``isolation`` option.
    isolation: ClassVar[str] = "process"

    def __init__(self, **options: Any):
        # Options a subclass did not take are typos or wrong backends: refuse them
        # so a misspelled option never silently falls back to a default.
        if options:
            raise TypeError(f"unknown option(s) {', '.join(sorted(options))} for backend "
                            f"{self.name!r}")

    def import_sdk(self, run: RunInfo) -> None:
        """Import the SDK modules ``open`` will need (default: ``requires``).

        unilog calls it just before ``open``, holding a lock that lets one backend
        import at a time: backends open on threads of their own, and two threads
        importing a package two SDKs share (numpy, protobuf) at once can each
        meet it half-initialised. Override it to import what ``open`` imports
        beyond the top-level modules (submodules that pull in numpy or scipy), or
        to set what the SDK reads at import first (``open`` must still work when
        called alone)."""
        for module in self.requires:
            importlib.import_module(module)

    def open(self, run: RunInfo) -> dict[str, Any] | None:
        """Start the backend's run. Return its own identity (``{"id": ..., "url": ...}``),
        which goes into the run manifest so the run can be resumed everywhere.
        A dict with a ``"skipped"`` reason means the backend chose not to run
        (e.g. a remote store in offline mode): what it misses is counted as
        skipped, not as errors."""
        return None

    def log_rows(self, rows: list[Row]) -> None:
        """Store several rows, in step order. Override to batch; the default calls ``log_row``.

        A call that raises is split and sent again (rows, then one row's keys),
        so that a value the backend cannot take costs only that value. So store
        all of the rows or raise before storing any, or, for a loop that stores
        row by row, raise :class:`PartialBatch` saying how many it stored (as
        :meth:`each_row` does): rows stored before a plain raise would arrive twice.
        """
        self.each_row(rows, self.log_row)

    @staticmethod
    def each_row(rows: list[Row], store: Callable[[Row], Any]) -> None:
        """``store(row)`` for each row; a failure raises :class:`PartialBatch` with the
        number of rows stored before it."""
        for index, row in enumerate(rows):
            try:
                store(row)
            except Exception as exc:
                raise PartialBatch(index, exc) from exc

    def log_row(self, row: Row) -> None:
        """Store one row."""

    def log_config(self, config: dict[str, Any]) -> None:
        """Store the (redacted, nested) config; called at open and after each update."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Store summary values set through ``run.summary``."""

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """The run's tags changed (``run.add_tags``): ``tags`` is all of them, in order,
        those given at ``open`` (``RunInfo.tags``) first. Tags are only ever added.
        Called between the rows logged before and after the change. The default
        does nothing: a backend whose store cannot change a run's tags keeps the
        ones it was opened with (``unilog sync`` opens a backend with the final tags)."""

    def describe(self, name: str, notes: str | None) -> None:
        """The run's name or notes changed (``run.name = ...``, ``run.notes = ...``):
        ``name`` and ``notes`` are both current values (``notes`` may be None).
        Called between the rows logged before and after the change. The default
        does nothing: a backend whose store cannot rename a run keeps the name and
        notes it was opened with (``unilog sync`` opens a backend with the final ones)."""

    def log_artifact(self, artifact: Artifact) -> None:
        """Store an artifact (its files are already in the run directory)."""

    def download_artifact(self, name: str, alias: str, root: Path) -> Path | None:
        """Fetch artifact ``name:alias`` (``alias`` may be ``v3``) from this backend's
        store into the empty folder ``root`` and return the folder of its files, or
        None when the backend does not have it.

        Called on the worker thread, only when the local record (this run's and
        the project's other runs') has no such artifact: e.g. a run logged on
        another machine to a shared tracking server.
        """
        return None

    def convert_media(self, convert: Callable[[Any], Any], key: str, step: int, media: Any,
                      fallback: Callable[[BaseException], Any] = lambda exc: None) -> Any:
        """``convert(media)``; if it raises, ``fallback(exc)`` (None by default).

        A media value that cannot be converted costs only itself, never its row
        or batch. The failure is logged once per media kind and error type.
        """
        try:
            return convert(media)
        except Exception as exc:
            seen = self.__dict__.setdefault("_media_failures", set())
            kind = getattr(media, "kind", type(media).__name__)
            if (kind, type(exc)) not in seen:
                seen.add((kind, type(exc)))
                logging.getLogger("unilog").warning(
                    "unilog backend %r could not save %s value %r at step %d: %s: %s (warned "
                    "once per kind and error)", self.name, kind, key, step,
                    type(exc).__name__, exc)
            return fallback(exc)

    def flush(self) -> None:
        """Push anything buffered to durable storage."""

    def close(self, status: str, exit_code: int) -> None:
        """End the backend's run with ``status`` in ``finished|failed|killed``."""

    def destination(self, run: RunInfo) -> str | None:
        """Where this backend, with its options, keeps ``run``: a tracking URI, a
        folder, a W&B project when online; computed without creating or reaching
        anything. The run's ledger is kept per destination (docs/sync.md), so
        ``unilog sync`` to another store sends everything there. None (the
        default): one destination."""
        return None

    def unconfirmed_steps(self) -> list[tuple[int, int]]:
        """Step ranges ``(low, high)`` of rows ``log_rows`` took but the backend has
        not stored yet (held in memory while its server is down, say). The run's
        ledger leaves them out until they are stored, so ``unilog sync`` sends them
        again if they never are (docs/sync.md). Called after each flush and at close."""
        return []

    def report(self) -> dict[str, Any]:
        """Facts of its own for the run's finish report, called once after ``close``
        (even one that raised) and merged into this backend's entry: for example
        ``{"missing": {...}}``, what a server never received. Keys the core
        already reports (``delivered``, ``failed``, ...) are left to the core."""
        return {}


def finish_timeout() -> float:
    """The run's default bound, in seconds, on closing each backend at ``finish``
    (``UNILOG_FINISH_TIMEOUT``, else 60): for a backend that bounds its SDK's own wait."""
    from unilog._settings import finish_timeout as configured

    return configured()


def __getattr__(name: str) -> Any:
    # ProcessBackend: a backend in a child process of its own, for an SDK that holds
    # one run per process (SwanLab's second concurrent run). Imported on first use.
    if name == "ProcessBackend":
        from unilog._process_backend import ProcessBackend

        return ProcessBackend
    raise AttributeError(f"module 'unilog.backend' has no attribute {name!r}")
