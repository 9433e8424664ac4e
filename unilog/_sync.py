"""``unilog.sync``: replay a run's local record into backends, now or later.

Each backend is opened through the same plugin contract, and fed through the
same workers (on a thread, or in the logging process), as in a live run
(``runs.make_backends`` / ``runs.start_dispatcher``); nothing here writes to a
backend itself. What it is fed comes from the run directory
(:mod:`unilog._replay`): the config, every row at its step with its original
time, media from their files, the summary set through ``run.summary``, the
artifacts with their versions and aliases, and the run's status (a failed run
stays failed). The run's tags, notes, group and name reach the backend at open.

What a backend already has is in its ledger (:mod:`unilog._ledger`), kept by
the backend's adapter during the live run and during every sync: only rows it
lacks are sent, so a second sync sends nothing, a sync that died continues
where its backend's ledger stops, and a run that lost rows to an outage gets
exactly those. Rows go in chunks, each followed by a flush (which writes the
ledger), so a sync's memory and its loss on a crash stay bounded.

See docs/sync.md.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unilog import _settings as settings
from unilog._ledger import Ledger, covers, digest
from unilog._policy import ErrorPolicy
from unilog._replay import RecordReader, read_json
from unilog.backend import RunInfo
from unilog.errors import ConfigError, UnilogError
from unilog.plugins import get_backend_class

logger = logging.getLogger("unilog")

#: Rows handed to the backends between two flushes (each flush writes the ledgers).
CHUNK_ROWS = int(os.environ.get("UNILOG_SYNC_CHUNK", "10000"))
#: Seconds between looks at a run being written (``watch``).
POLL_S = 1.0
FINAL = ("finished", "failed", "killed")


@dataclass
class BackendSync:
    """What one sync did for one backend of one run."""

    backend: str
    sent: int = 0  # rows sent
    already: int = 0  # rows the backend had already (its ledger says so)
    artifacts: int = 0  # artifact versions sent
    summary: bool = False  # the summary was sent
    status: str | None = None  # the status the backend's run was closed with
    report: dict[str, Any] = field(default_factory=dict)  # its finish-report entry
    error: str | None = None  # why it did not get everything (None: it did)
    resumable: bool = True  # another sync can deliver what is missing (else: refused)

    @property
    def ok(self) -> bool:
        """True when the backend took everything it was sent."""
        return self.error is None


@dataclass
class RunSync:
    """One run's sync: a :class:`BackendSync` per backend."""

    run_dir: Path
    run_id: str
    status: str
    backends: dict[str, BackendSync] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the user should know
    error: str | None = None  # the run could not be synced at all


@dataclass
class SyncReport:
    """What ``unilog.sync`` did, run by run; ``ok`` when every backend got everything."""

    runs: list[RunSync] = field(default_factory=list)

    @property
    def resumable(self) -> bool:
        """True when running the same sync again may deliver what is missing."""
        return any(b.error and b.resumable for r in self.runs for b in r.backends.values())

    @property
    def ok(self) -> bool:
        """True when every run was synced and every backend took everything."""
        return all(r.error is None and all(b.ok for b in r.backends.values())
                   for r in self.runs)

    def __str__(self) -> str:
        lines = []
        for run in self.runs:
            if run.error:
                lines.append(f"run {run.run_id}: not synced: {run.error}")
                continue
            lines.append(f"run {run.run_id} ({run.status}): {run.run_dir}")
            for b in run.backends.values():
                text = f"  {b.backend}: {b.sent} row(s) sent, {b.already} already there"
                if b.artifacts:
                    text += f", {b.artifacts} artifact version(s)"
                if b.summary:
                    text += ", summary"
                text += f"; closed {b.status}" if b.status else "; not closed"
                if b.error and b.resumable:
                    text += f"; INCOMPLETE: {b.error} (run the sync again to resume)"
                elif b.error:
                    text += f"; INCOMPLETE: {b.error} (the backend refuses these: a sync "
                    text += "again will not change it)"
                lines.append(text)
            lines.extend(f"  note: {note}" for note in run.notes)
        return "\n".join(lines)


def sync(run: str | os.PathLike | list, backends: Any = None, *, watch: bool = False,
         mode: str | None = None, isolation: str | None = None, on_error: str = "warn",
         jobs: int = 4, timeout: float | None = None, progress: bool | None = None,
         full: bool = False) -> SyncReport:
    """Replay runs' local records into ``backends``; returns a :class:`SyncReport`.

    ``run`` is a run directory, a run id (or ``project/id``) under ``$UNILOG_DIR``
    or ``./runs``, a folder of runs (a project's or a runs root: every run in
    it), or a list of those. ``backends`` takes every form ``init`` takes
    (``["mlflow"]``, ``{"mlflow": {"tracking_uri": ...}}``); the local record
    (``csv``) is what is read, so it is never a target. ``watch``: follow runs
    still being written until their status is final. ``mode``, ``isolation``
    and ``on_error`` are ``init``'s. Up to ``jobs`` runs sync at once.
    ``timeout`` bounds each flush and close of a backend (default: the finish
    timeout). ``progress``: a progress bar on stderr (default: when stderr is a
    terminal). ``full``: send everything, whatever the backends' ledgers say
    (after their stores were wiped, say).
    """
    targets = _targets(backends)
    run_dirs = _run_dirs(run)
    mode = mode or os.environ.get("UNILOG_MODE") or "online"
    if mode not in ("online", "offline"):
        raise ConfigError(f"mode must be 'online' or 'offline' for a sync, not {mode!r}")
    isolation = isolation or os.environ.get("UNILOG_ISOLATION") or "process"
    if isolation not in settings.ISOLATIONS:
        raise ConfigError(f"isolation must be one of {', '.join(settings.ISOLATIONS)}, "
                          f"not {isolation!r}")
    if on_error not in ("warn", "disable", "raise"):
        raise ConfigError(f"on_error must be 'warn', 'disable' or 'raise', not {on_error!r}")
    from unilog.runs import make_backends

    make_backends(targets, isolation)  # bad options fail now, whatever there is to send
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Progress(len(run_dirs), show)
    job = _Job(targets, mode, isolation, on_error,
               settings.finish_timeout() if timeout is None else timeout, watch, bar, full)
    report = SyncReport()
    try:
        if len(run_dirs) == 1 or jobs <= 1:
            report.runs = [job.run(d) for d in run_dirs]
        else:
            with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="unilog-sync") as pool:
                report.runs = list(pool.map(job.run, run_dirs))
    finally:
        bar.close()
    return report


def _targets(backends: Any) -> dict[str, tuple[type, dict[str, Any]]]:
    if backends is None or (isinstance(backends, str) and not backends.strip(", ")) \
            or (isinstance(backends, (list, tuple, dict)) and not backends):
        raise ConfigError("sync needs the backends to sync to (backends=['mlflow'], or "
                          "--to mlflow on the command line)")
    parsed = settings.parse_backends(backends)
    targets = {name: (get_backend_class(name), options) for name, options in parsed
               if name != settings.LOCAL_RECORD}
    if not targets:
        raise ConfigError(f"{settings.LOCAL_RECORD!r} is the local record, which a sync "
                          "reads: name the backends to sync it to")
    return targets


def _run_dirs(run: Any) -> list[Path]:
    """The run directories ``run`` names (as ``unilog compare`` takes them)."""
    from unilog._views import select_runs
    from unilog.cli import CliError

    refs = [os.fspath(r) for r in (run if isinstance(run, (list, tuple)) else [run])]
    if not refs:
        raise ConfigError("sync needs a run: its directory, its id, or a folder of runs")
    try:
        return [p.absolute() for p in select_runs(refs)]
    except CliError as exc:
        raise ConfigError(str(exc)) from None


def _alive(manifest: dict[str, Any]) -> bool | None:
    """Whether the process that writes the run still runs: True or False on this
    machine, None when it ran on another one (nothing here can tell)."""
    sessions = [manifest.get("provenance")] + list(manifest.get("resumes") or [])
    latest = next((s for s in reversed(sessions) if isinstance(s, dict)), None)
    if latest is None or latest.get("hostname") != socket.gethostname():
        return None
    try:
        pid = int(latest.get("pid") or 0)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


class _Job:
    """The settings of one ``sync`` call, applied run by run."""

    def __init__(self, targets, mode, isolation, on_error, timeout, watch, bar, full):
        self.targets, self.mode, self.isolation = targets, mode, isolation
        self.on_error, self.timeout, self.watch, self.bar = on_error, timeout, watch, bar
        self.full = full

    def run(self, run_dir: Path) -> RunSync:
        manifest = read_json(run_dir / "run.json") or {}
        result = RunSync(run_dir, str(manifest.get("id") or run_dir.name),
                         str(manifest.get("status") or "running"))
        try:
            alive = _alive(manifest) if result.status not in FINAL else False
            logging_itself = sorted(set(self.targets) & set(manifest.get("backend_names") or []))
            if alive and logging_itself:
                raise UnilogError(f"it is running and logs to {', '.join(logging_itself)} "
                                  "itself: sync it there once it has ended")
            if result.status not in FINAL and not self.watch:
                if alive:
                    raise UnilogError("it is still running (its process is alive): sync it "
                                      "with watch=True (--watch) to follow it to its end")
                result.notes.append(
                    "the run never ended (its process is gone): its backends' runs are closed "
                    "as killed" + ("" if alive is False else "; it ran on another machine: "
                                   "if it still runs there, sync it with --watch instead"))
            with _RunLock(run_dir):
                _RunSync(self, run_dir, manifest, result).go()
        except UnilogError as exc:
            if self.on_error == "raise":
                raise
            result.error = str(exc)
        finally:
            self.bar.run_done()
        return result


class _RunLock:
    """One sync of a run at a time (an exclusive lock on ``sync/.lock``): two at once
    would both send what the ledgers lack."""

    def __init__(self, run_dir: Path):
        self.path = run_dir / "sync" / ".lock"
        self._file: Any = None

    def __enter__(self) -> _RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock (documented)
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "another process"
            self._file.close()
            raise UnilogError(f"another unilog sync of this run is running ({holder}): "
                              "wait for it, or stop it, then sync again") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(f"pid {os.getpid()} on {socket.gethostname()}")
        self._file.flush()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()  # closing releases the lock


class _RunSync:
    """One run into every target backend: one dispatcher per backend, fed from one
    reading of the local record."""

    def __init__(self, job: _Job, run_dir: Path, manifest: dict[str, Any], result: RunSync):
        self.job, self.run_dir, self.manifest, self.result = job, run_dir, manifest, result
        self.policy = ErrorPolicy(job.on_error)
        self.targets: dict[str, tuple[type, dict[str, Any]]] = {}
        self.ledgers: dict[str, Ledger] = {}
        self.destinations: dict[str, str | None] = {}
        for name, target in job.targets.items():
            self.result.backends[name] = BackendSync(name)
            try:
                self._load_ledger(name, target)
            except UnilogError as exc:  # a damaged ledger: said, and that backend waits
                self.result.backends[name].error = str(exc)
                self.result.backends[name].resumable = False
                continue
            self.targets[name] = target
        self.fresh = {name: not ledger.exists for name, ledger in self.ledgers.items()}
        self.dispatchers: dict[str, Any] = {}
        self.reader = RecordReader(run_dir)
        self.config_digest: dict[str, str | None] = {}
        self.summary_digest = {n: ledger.summary for n, ledger in self.ledgers.items()}
        self.pending_backwards: list[Any] = []  # rows that went back, until a row decides
        self._in_flight: list[tuple[str, Any]] = []  # flush barriers not waited for yet

    def _load_ledger(self, name: str, target: tuple[type, dict[str, Any]]) -> None:
        """The backend's ledger at the destination it would write to now."""
        from unilog.runs import make_backends

        (_, backend, _, _), = make_backends({name: target}, "thread")
        self.destinations[name] = destination = backend.destination(self._info(name, 0))
        ledger = Ledger.load(self.run_dir, name, destination)
        if self.job.full:  # everything is sent again, whatever the ledger says
            ledger = Ledger(ledger.path, {"destination": destination})
        self.ledgers[name] = ledger

    # -- open ------------------------------------------------------------------------

    def _info(self, name: str, start_step: int) -> RunInfo:
        m = self.manifest
        ledger = self.ledgers.get(name)
        previous_info = (ledger.info if ledger is not None else None) or (
            ((m.get("backends") or {}).get(name) or {}).get("info") if ledger is None
            or ledger.destination is None else None)
        tags = m.get("tags") or []
        return RunInfo(
            id=str(m.get("id") or self.run_dir.name), name=str(m.get("name") or self.run_dir.name),
            project=str(m.get("project") or self.run_dir.parent.name), dir=self.run_dir,
            mode=self.job.mode, config=read_json(self.run_dir / "config.json") or {},
            tags=tuple(str(t) for t in tags), notes=m.get("notes"), group=m.get("group"),
            resumed=bool(previous_info), previous={name: {"info": previous_info or {}}},
            start_time=float(m.get("created") or m.get("started") or time.time()),
            start_step=start_step)

    def _dispatcher(self, name: str, start_step: int) -> Any:
        """The backend's dispatcher, opened the first time it has something to take
        (a backend that has everything is not opened at all: a second sync adds nothing)."""
        dispatcher = self.dispatchers.get(name)
        if dispatcher is None:
            from unilog.runs import make_backends, start_dispatcher

            info = self._info(name, start_step)
            made = make_backends({name: self.targets[name]}, self.job.isolation)
            dispatcher = start_dispatcher(made, info, self.policy, lambda *_: None,
                                          order=[name])
            self.dispatchers[name] = dispatcher
            self.config_digest[name] = digest(info.config)
        return dispatcher

    def _open_what_lacks(self) -> None:
        """Open now each backend whose ledger lacks something, and read its ledger
        again once it is open: a backend whose run there turned out new (its store
        was replaced, its run deleted) has emptied it, so everything is sent."""
        from unilog._replay import steps_of

        if not any(ledger.exists for ledger in self.ledgers.values()):
            return  # every backend gets everything: nothing to find out
        steps = steps_of(self.run_dir / "metrics.csv")
        status = self.result.status if self.result.status in FINAL else "killed"
        for name, ledger in self.ledgers.items():
            if not ledger.exists or name in self.dispatchers:
                continue
            lacks = (any(not covers(ledger.rows, step) for step in steps)
                     or self._records_lacking(name) or ledger.status != status)
            if lacks:
                self._dispatcher(name, ledger.rows[-1][1] + 1 if ledger.rows else 0)
        for name, dispatcher in self.dispatchers.items():
            dispatcher.flush(self.job.timeout)  # answered once the backend is open
            reread = Ledger.load(self.run_dir, name, self.destinations[name])
            if self.ledgers[name].rows and not reread.rows:
                self.result.notes.append(f"{name}: its run there is new (the one its ledger "
                                         "named is gone), so everything is sent to it")
                self.summary_digest[name] = None
            self.ledgers[name] = reread

    def _records_lacking(self, name: str) -> bool:
        from unilog.artifacts import ArtifactStore

        ledger = self.ledgers[name]
        config = read_json(self.run_dir / "config.json") or {}
        summary = read_json(self.run_dir / "summary_set.json") or {}
        if digest(config) != ledger.config or (summary and digest(summary) != ledger.summary):
            return True
        have = set(ledger.artifacts)
        return any(f"{a.name}:v{a.version}" not in have
                   for a in ArtifactStore(self.run_dir, self.result.run_id).list())

    # -- feed ------------------------------------------------------------------------

    def go(self) -> None:
        try:
            self._open_what_lacks()
            self._feed(final=not self.job.watch)
            dead = 0
            while self.job.watch:
                time.sleep(POLL_S)
                manifest = read_json(self.run_dir / "run.json") or self.manifest
                status = manifest.get("status")
                # A process killed with SIGKILL never says it ended: seen dead twice, it did.
                dead = dead + 1 if status not in FINAL and _alive(manifest) is False else 0
                ended = status in FINAL or dead >= 2
                if ended:
                    self.manifest = manifest
                    if status in FINAL:
                        self.result.status = status
                    else:
                        self.result.notes.append("the run's process died without ending "
                                                 "it: its backends' runs are closed as killed")
                self._feed(final=ended)
                if ended:
                    break
        finally:
            self._close()

    def _feed(self, final: bool) -> None:
        chunk = 0
        for row, step, backwards in self.reader.rows(final=final, wanted=self._wanted):
            if row is None:  # every backend has it: its values were not even read
                for name in self.targets:
                    self.result.backends[name].already += 1
                self.pending_backwards = []
                continue
            if not row.values:
                continue
            if backwards:
                self.pending_backwards.append(row)
                continue
            for name in self.targets:
                self._row(name, row)
            self.pending_backwards = []
            chunk += 1
            if chunk >= CHUNK_ROWS:
                self._flush(wait_all=False)
                chunk = 0
        if final:
            for name in self.targets:
                ledger = self.ledgers[name]
                for late in self.pending_backwards:  # trailing: sent unless closed after them
                    if self.fresh[name] or ledger.status is None:
                        self._dispatcher(name, late.step).dispatch_row(late, True)
            self.pending_backwards = []
        for problem in self.reader.failed_media:
            self.result.notes.append(f"media value {problem[0]!r} at step {problem[1]} could "
                                     f"not be read from the local record ({problem[2]})")
        self.reader.failed_media.clear()
        self._records()
        self._flush()

    def _wanted(self, step: int) -> bool:
        """True when some backend lacks the row at ``step``."""
        for name in self.targets:
            rows = self.ledgers[name].rows
            if not rows or not covers(rows, step):
                return True
        return False

    def _row(self, name: str, row: Any) -> None:
        entry = self.result.backends[name]
        rows = self.ledgers[name].rows
        if rows and covers(rows, row.step):
            entry.already += 1
            return
        dispatcher = self._dispatcher(name, row.step)
        for late in self.pending_backwards:  # went back: sent as the row after them is
            dispatcher.dispatch_row(late, True)
        dispatcher.dispatch_row(row, False)
        entry.sent += 1
        self.job.bar.rows(1)

    def _records(self) -> None:
        """The config (when changed), the summary set by the user, and artifacts."""
        from unilog.artifacts import ArtifactStore

        config = read_json(self.run_dir / "config.json") or {}
        summary = read_json(self.run_dir / "summary_set.json") or {}
        artifacts = sorted(ArtifactStore(self.run_dir, self.result.run_id).list(),
                           key=lambda a: (a.name, a.version))
        for name in self.targets:
            ledger, entry = self.ledgers[name], self.result.backends[name]
            start = ledger.rows[-1][1] + 1 if ledger.rows else 0
            known = self.config_digest.get(name, ledger.config)
            if digest(config) != known:
                dispatcher = self._dispatcher(name, start)
                if digest(config) != self.config_digest[name]:  # not the one sent at open
                    dispatcher.hook.unilog_dispatch_config(config=config)
                self.config_digest[name] = digest(config)
            if summary and digest(summary) != self.summary_digest[name]:
                self._dispatcher(name, start).hook.unilog_dispatch_summary(summary=summary)
                self.summary_digest[name] = digest(summary)
                entry.summary = True
            for artifact in artifacts:
                ref = f"{artifact.name}:v{artifact.version}"
                if ref not in ledger.artifacts:
                    self._dispatcher(name, start).hook.unilog_dispatch_artifact(
                        artifact=artifact)
                    ledger.artifacts.append(ref)  # sent once per sync
                    entry.artifacts += 1

    def _flush(self, wait_all: bool = True) -> None:
        """Flush every opened backend (each flush writes its ledger). Between chunks
        (``wait_all`` False) only the previous chunk's flush is waited for, so
        reading the record goes on while a backend stores the last chunk; two
        chunks at most are ever queued."""
        previous, self._in_flight = self._in_flight, []
        for name, dispatcher in self.dispatchers.items():
            self._in_flight.append((name, dispatcher.begin_flush(self.job.timeout)))
        waiting = previous + (self._in_flight if wait_all else [])
        if wait_all:
            self._in_flight = []
        for name, barriers in waiting:
            if self.dispatchers[name].wait_flush(barriers, self.job.timeout):
                self.result.backends[name].error = (f"did not flush within {self.job.timeout:g}"
                                                    " s")

    # -- close -----------------------------------------------------------------------

    def _close(self) -> None:
        status = self.result.status if self.result.status in FINAL else "killed"
        exit_code = int(self.manifest.get("exit_code") or (0 if status == "finished" else 1))
        for name in self.targets:
            if name in self.dispatchers:
                continue
            if self.ledgers[name].status == status:  # it has everything: nothing to do
                self.result.backends[name].status = status
            else:  # it has every record, but its run was never closed (or differently)
                ledger = self.ledgers[name]
                self._dispatcher(name, ledger.rows[-1][1] + 1 if ledger.rows else 0)
        closing = {name: threading.Thread(target=self._close_one, args=(name, status, exit_code))
                   for name in self.dispatchers}
        for thread in closing.values():
            thread.start()
        for thread in closing.values():
            thread.join()
        self._record_in_manifest(status)

    def _close_one(self, name: str, status: str, exit_code: int) -> None:
        report = self.dispatchers[name].close(status, exit_code, self.job.timeout).get(name, {})
        entry = self.result.backends[name]
        entry.report = report
        problems = _problems(report)
        if problems:
            entry.error = problems
            # A key the backend refuses, or two keys sharing its name there, stay so.
            entry.resumable = bool(set(_problems_of(report)) - _LASTING)
        elif str(report.get("disabled") or "").startswith("skipped:"):  # its own choice
            entry.error = f"{report['disabled']} (nothing was sent)"
        ledger = Ledger.load(self.run_dir, name, self.destinations[name])
        entry.status = ledger.status
        if ledger.status is None and entry.error is None:
            entry.error = "its run was not closed"
        for error in self.policy.clear_pending():
            logger.debug("sync of %s: %s", self.result.run_id, error)

    def _record_in_manifest(self, status: str) -> None:
        """Where each backend has the run, in run.json, and a run whose process died
        without ending it marked as killed there too (not while the run is live: its
        own process rewrites run.json)."""
        manifest = read_json(self.run_dir / "run.json") or {}
        dead_here = manifest.get("status") not in FINAL and _alive(manifest) is False
        if manifest.get("status") not in FINAL and not dead_here:
            return
        from unilog._manifest import Manifest
        from unilog.read import last_step

        try:
            saved = Manifest.load(self.run_dir)
            if dead_here:
                last = last_step(self.run_dir)
                ended = (self.run_dir / "metrics.csv").stat().st_mtime \
                    if (self.run_dir / "metrics.csv").exists() else time.time()
                saved.update(status=status, step=0 if last is None else last + 1, ended=ended,
                             exit_code=saved.data.get("exit_code"))
            for name, entry in self.result.backends.items():
                if name not in self.dispatchers:  # up to date: the last sync's record stays
                    continue
                info = Ledger.load(self.run_dir, name, self.destinations[name]).info
                synced = {"time": time.time(), "sent": entry.sent, "status": entry.status,
                          "complete": entry.ok}
                fields: dict[str, Any] = {"synced": synced}
                if info and not (saved.data.get("backends") or {}).get(name, {}).get("info"):
                    fields["info"] = info
                saved.set_backend(name, **fields)
        except (OSError, ValueError, UnilogError) as exc:
            self.result.notes.append(f"run.json not updated: {type(exc).__name__}: {exc}")


#: Problems another sync cannot mend: the backend refuses those keys or values.
_LASTING = {"collisions", "failed_values"}


def _problems_of(report: dict[str, Any]) -> dict[str, Any]:
    from unilog.runs import _problems as problems_of

    return problems_of(report)


def _problems(report: dict[str, Any]) -> str | None:
    """Why a backend's finish report says it did not take everything (None: it did)."""
    problems = _problems_of(report)
    if not problems:
        return None
    return ", ".join(f"{k} {v}" for k, v in problems.items())


class _Progress:
    """Rows sent and runs done, on stderr: a tqdm bar when tqdm is installed, else a
    line every few seconds."""

    def __init__(self, total_runs: int, show: bool):
        self.show, self.total_runs = show, total_runs
        self._lock = threading.Lock()
        self._rows = self._runs = 0
        self._last = 0.0
        self._bar: Any = None
        if show:
            try:
                from tqdm import tqdm

                self._bar = tqdm(total=total_runs, unit="run", desc="unilog sync",
                                 file=sys.stderr, dynamic_ncols=True)
            except ImportError:
                self._bar = None

    def rows(self, n: int) -> None:
        if not self.show:
            return
        with self._lock:
            self._rows += n
            if self._bar is not None:
                if self._rows % 1000 < n:
                    self._bar.set_postfix(rows=self._rows, refresh=False)
            elif time.monotonic() - self._last > 5:
                self._line()

    def run_done(self) -> None:
        if not self.show:
            return
        with self._lock:
            self._runs += 1
            if self._bar is not None:
                self._bar.set_postfix(rows=self._rows, refresh=False)
                self._bar.update(1)
            else:
                self._line()

    def _line(self) -> None:
        self._last = time.monotonic()
        print(f"unilog sync: {self._runs}/{self.total_runs} run(s), {self._rows} row(s) sent",
              file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

