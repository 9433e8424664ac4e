"""The Weights & Biases backend: a wandb run, offline (a ``.wandb`` file to
``wandb sync`` later) or online.

Where: ``wandb.init(dir=<run dir>)``, so wandb's own folder is
``<run dir>/wandb/``; an offline run writes
``<run dir>/wandb/offline-run-<time>-<id>/run-<id>.wandb`` (everything: config,
history, summary, artifacts' manifests) and ``files/media/...``. The wandb run
id is unilog's run id; project, name, notes, tags and group are unilog's.

What goes where, each row with ``run.log(values, step=row.step)`` on this
backend's own run object (never the global ``wandb.log``):

- numbers: history values at unilog's step;
- ``Image``: ``wandb.Image`` (needs Pillow, as wandb does) with its caption;
- ``Histogram``: ``wandb.Histogram(np_histogram=(counts, edges))``, the same bins
  as the local record;
- ``Text``: the string itself in the history, as wandb stores a logged ``str``;
- ``Table``: ``wandb.Table`` (mixed column types allowed);
- config: ``wandb.config``, nested dicts kept (top-level keys that changed are
  updated, ``allow_val_change=True``);
- ``run.summary``: ``wandb.summary``;
- tags added after ``init`` (``run.add_tags``): ``wandb_run.tags`` set to all of
  the run's tags (a run record in the ``.wandb`` file), as wandb's own
  ``run.tags = run.tags + ("x",)`` does;
- artifacts: ``wandb.Artifact(name, type, metadata=...)`` whose files are the
  blobs in the run directory (added ``policy="immutable"``: no staging copy),
  logged with the unilog aliases; the description names unilog's version;
- the ending: ``finish(exit_code=...)``: 0 finished, the exit code (or 1)
  failed, 255 killed (wandb's own code for a Ctrl-C).

Secrets: wandb records ``sys.argv`` verbatim in its run metadata (the
``.wandb`` file, uploaded by ``wandb sync``). When the command line holds a
value unilog redacts (``--api-key=...``, ``--hf_token X``, ``db.password=...``),
the run is started with ``x_disable_meta=True``: no program, args, git or host
metadata in wandb (``run.json`` has them, redacted). The ``settings`` option
can set ``x_disable_meta`` itself.

wandb rejects a step lower than one it has (so ``out_of_order_steps`` is
False) and overwrites history keys named ``_step``, ``_runtime``,
``_timestamp`` and ``_wandb``: the key rule appends ``_`` to those names.

Mode, decided at ``open`` and never by a prompt: ``offline`` when the run is
offline, the ``mode`` option says so, or ``$WANDB_MODE`` is ``offline`` (and the
option is not set); skipped when ``$WANDB_MODE`` is ``disabled``; otherwise
``online``, which first checks that credentials exist (``WANDB_API_KEY``,
``~/.netrc``, wandb's settings) and fails to open, at once, when there are
none, instead of letting wandb prompt for a key in a terminal. Offline,
``WANDB_ERROR_REPORTING`` defaults to ``false`` before the first run starts:
wandb's analytics otherwise contact its servers even from offline runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import unilog
from unilog.backend import MEDIA_KINDS, Backend, Capabilities, KeyRule, Row, RunInfo, program
from unilog.errors import ConfigError, KeyCollisionError
from unilog_plugins._sdk import argv_has_secrets

logger = logging.getLogger("unilog")

#: History keys wandb writes itself (a user's value under them is silently replaced).
RESERVED_KEYS = frozenset({"_step", "_runtime", "_timestamp", "_wandb"})
MODES = (None, "online", "offline")
MAX_TAG = 64  # wandb refuses longer tags
EXIT_CODES = {"finished": 0, "failed": 1, "killed": 255}
#: wandb settings unilog chooses (the ``settings`` option overrides any of them).
DEFAULT_SETTINGS = {
    "console": "off",  # never wrap the user's stdout/stderr
    "silent": True,  # the training's console is the user's: unilog reports problems
    "x_disable_stats": True,  # no system-metrics sampling process
    "x_transaction_log_flush_interval": 1.0,  # the .wandb file is written each second
}


@dataclass(frozen=True)
class WandbKeyRule(KeyRule):
    """wandb takes any key but writes ``_step``, ``_runtime``, ``_timestamp``
    and ``_wandb`` itself: those four get a ``_`` appended (``_step`` -> ``_step_``)."""

    def adapt(self, key: str) -> str:
        """The key as this backend sends it (pure and deterministic)."""
        return key + "_" if key in RESERVED_KEYS else key


KEY_RULE = WandbKeyRule()


class WandbBackend(Backend):
    """Logs a unilog run to Weights & Biases (offline or online)."""

    name = "wandb"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=False,
                                key_rule=KEY_RULE, artifacts=True)
    requires = ("wandb",)
    extra = "wandb"
    flush_interval = None  # wandb-core writes the file itself (DEFAULT_SETTINGS)

    def __init__(self, entity: str | None = None, project: str | None = None,
                 mode: str | None = None, dir: str | os.PathLike[str] | None = None,
                 job_type: str | None = None, init_timeout: float = 60,
                 finish_timeout: float | None = None, settings: dict[str, Any] | None = None,
                 **options: Any):
        super().__init__(**options)
        if mode not in MODES:
            raise ConfigError(f"wandb option mode must be None, 'online' or 'offline', "
                              f"not {mode!r}")
        for option, value in (("init_timeout", init_timeout), ("finish_timeout", finish_timeout)):
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ConfigError(f"wandb option {option} must be a number of seconds > 0, "
                                  f"not {value!r}")
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"wandb option settings must be a dict of wandb.Settings "
                              f"fields, not {type(settings).__name__}")
        self.entity, self.project, self.mode, self.dir = entity, project, mode, dir
        self.job_type = job_type
        self.init_timeout, self.finish_timeout = init_timeout, finish_timeout
        self.settings = dict(settings or {})
        self._config: dict[str, Any] = {}  # what wandb's config holds, by top-level key
        self._summary_owner: dict[str, str] = {}

    # -- open ---------------------------------------------------------------------

    def open(self, run: RunInfo) -> dict[str, Any]:
        """Start the wandb run (``reinit="create_new"``: other runs are left alone)."""
        mode = self._resolve_mode(run)
        if mode == "disabled":  # the user's own switch for wandb, honoured
            logger.info("unilog backend 'wandb': WANDB_MODE=disabled, so nothing is sent to "
                        "wandb in this run; the local record keeps everything")
            return {"skipped": "WANDB_MODE=disabled"}
        if mode == "offline":  # read when wandb's analytics start: before the first run
            os.environ.setdefault("WANDB_ERROR_REPORTING", "false")
        import wandb

        self._wandb = wandb
        settings = wandb.Settings(**self._settings(mode))
        if mode == "online":
            _require_credentials(self.settings.get("base_url"))
        root = self._root(run)
        self._config = _wandb_config(run.config)
        hook = sys.excepthook
        self._wb = wandb.init(
            entity=self.entity, project=self.project or run.project, dir=str(root), id=run.id,
            name=run.name, notes=run.notes, tags=_tags(run.tags), group=run.group,
            job_type=self.job_type, config=self._config, mode=mode,
            resume="allow" if run.resumed else None, reinit="create_new", settings=settings)
        _keep_excepthook(hook)
        info = {"id": self._wb.id, "mode": mode, "project": self._wb.project,
                "dir": self._wb.sync_dir}
        if mode == "online":
            info.update(entity=self._wb.entity, url=self._wb.url, view=self._wb.url)
        else:  # an offline run is looked at once synced: the command that does it
            info["sync"] = info["view"] = (f"{program('wandb')} sync "
                                           f"{shlex.quote(self._wb.sync_dir)}")
        return info

    def destination(self, run: RunInfo) -> str:
        """Online, the W&B project (its server's); offline, the folder wandb writes in."""
        mode = self._resolve_mode(run)
        if mode == "online":
            base = self.settings.get("base_url") or os.environ.get("WANDB_BASE_URL") or ""
            return f"online {base} {self.entity or ''}/{self.project or run.project}".strip()
        root = Path(run.dir) if self.dir is None else run.resolve_dir(self.dir)
        return f"{mode} {root.absolute()}"

    def _resolve_mode(self, run: RunInfo) -> str:
        if run.mode == "offline" or self.mode == "offline":
            return "offline"
        env = os.environ.get("WANDB_MODE", "").strip().lower()
        if self.mode is None and env in ("offline", "dryrun", "disabled"):
            return "disabled" if env == "disabled" else "offline"
        return "online"

    def _settings(self, mode: str) -> dict[str, Any]:
        from unilog.backend import finish_timeout

        chosen = {**DEFAULT_SETTINGS, "init_timeout": float(self.init_timeout)}
        if mode == "online":  # wandb's default waits for uploads without end
            chosen["finish_timeout"] = float(self.finish_timeout or finish_timeout())
        if argv_has_secrets() and "x_disable_meta" not in self.settings:
            # wandb's run metadata holds sys.argv verbatim, and wandb takes no
            # redacted copy: leave the metadata out (run.json keeps the redacted
            # command line, the git state and the versions).
            chosen["x_disable_meta"] = True
            logger.info("unilog backend 'wandb': the command line holds secrets, so "
                        "wandb's run metadata (program, args, git, host) is not recorded")
        return {**chosen, **self.settings}

    def _root(self, run: RunInfo) -> Path:
        if self.dir is None:
            return Path(run.dir)
        return run.expand_dir(self.dir)

    # -- rows ---------------------------------------------------------------------

    def log_rows(self, rows: list[Row]) -> None:
        """One ``run.log(values, step=step, commit=True)`` per row, at the row's wall
        time (a row is complete: committing it at once means a crash cannot keep it
        open and lose it)."""
        self.each_row(rows, self._log_row)  # a failure says how many rows were stored

    def _log_row(self, row: Row) -> None:
        values = {}
        for key, value in row.values.items():
            kind = type(value)
            if kind is float or kind is int:
                values[key] = value
            else:
                converted = self.convert_media(lambda m: _convert(self._wandb, m),
                                               key, row.step, value)
                if converted is not None:
                    values[key] = converted
        if values:
            values["_timestamp"] = row.time  # a user's own _timestamp is _timestamp_
            self._wb.log(values, step=row.step, commit=True)

    # -- config, summary, artifacts ---------------------------------------------------

    def log_config(self, config: dict[str, Any]) -> None:
        """Update the top-level keys that changed (nested values stay nested)."""
        config = _wandb_config(config)
        changed = {k: v for k, v in config.items()
                   if k not in self._config or self._config[k] != v}
        if changed:
            self._wb.config.update(changed, allow_val_change=True)
            self._config.update(changed)

    def log_summary(self, summary: dict[str, Any]) -> None:
        """Set the values in wandb's summary, keys adapted like history keys."""
        values, collisions = {}, []
        for key, value in summary.items():
            name = KEY_RULE.adapt(key)
            owner = self._summary_owner.setdefault(name, key)
            if owner == key:
                values[name] = value
            else:
                collisions.append(f"summary keys {owner!r} and {key!r} both become {name!r}: "
                                  f"{key!r} is not sent (the local record has it)")
        if values:
            self._wb.summary.update(values)
        if collisions:
            raise KeyCollisionError(self.name, "; ".join(collisions))

    def set_tags(self, tags: tuple[str, ...]) -> None:
        """Set the wandb run's tags to all of the run's tags (wandb's ``run.tags = ...``)."""
        self._wb.tags = tuple(_tags(tags) or ())

    def describe(self, name: str, notes: str | None) -> None:
        """Rename the wandb run and set its notes (wandb's ``run.name = ...``,
        ``run.notes = ...``)."""
        self._wb.name = name
        self._wb.notes = notes

    def log_artifact(self, artifact: Any) -> None:
        """A ``wandb.Artifact`` of the run directory's blobs, logged with the aliases."""
        logged = self._wandb.Artifact(
            artifact.name, type=artifact.type, metadata=artifact.metadata,
            description=f"unilog artifact {artifact.ref} (digest {artifact.digest})")
        for f in artifact.files:  # the blobs never change: wandb needs no copy
            logged.add_file(str(f.blob), name=f.path, policy="immutable")
        self._wb.log_artifact(logged, aliases=list(artifact.aliases))

    # -- end ------------------------------------------------------------------------

    def close(self, status: str, exit_code: int) -> None:
        """Finish the wandb run: W&B shows a non-zero exit code as failed."""
        code = EXIT_CODES[status]
        if status == "failed" and exit_code:
            code = exit_code
        self._wb.finish(exit_code=code)


# -- helpers ---------------------------------------------------------------------------


def _require_credentials(base_url: str | None) -> None:
    """Fail at once when an online run has no credentials: wandb would prompt
    for a key in a terminal (from this worker thread) or switch modes silently."""
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    base_url = base_url or wandb_setup.singleton().settings.base_url
    if wbauth.authenticate_session(host=base_url, source="unilog", prompt=False) is None:
        raise ConfigError(
            f"wandb: no credentials for {base_url} and the run is online; set WANDB_API_KEY "
            "(or run `wandb login`), or log offline with mode='offline' "
            "(unilog.init or the backend's mode option) and `wandb sync` later")


def _keep_excepthook(previous: Any) -> None:
    """Put back the ``sys.excepthook`` that wandb replaced, if it did.

    wandb's service, started by the process's first ``wandb.init``, installs a
    hook that prints an uncaught exception's traceback and then calls the hook
    it replaced: unilog's, which ends the runs and lets Python's default hook
    print it, so the traceback would appear twice. The runs this backend opens
    are ended by unilog, which needs no help from wandb's hook.
    """
    from wandb.sdk.lib.exit_hooks import ExitHooks

    current = sys.excepthook
    wandbs = isinstance(getattr(current, "__self__", None), ExitHooks)
    if wandbs and current is not previous and previous is not sys.__excepthook__:
        sys.excepthook = previous


def _convert(wandb: Any, media: Any) -> Any:
    """The wandb value of a unilog media object."""
    if isinstance(media, unilog.Text):
        return media.text
    if isinstance(media, unilog.Image):
        return wandb.Image(media.to_uint8(), caption=media.caption)
    if isinstance(media, unilog.Histogram):
        return wandb.Histogram(np_histogram=(media.counts, media.edges))
    if isinstance(media, unilog.Table):
        return wandb.Table(columns=media.columns, data=media.rows, allow_mixed_types=True)
    raise TypeError(f"unsupported value {type(media).__name__}")


def _wandb_config(config: dict[str, Any]) -> dict[str, Any]:
    """The config with wandb's own top-level key, ``_wandb``, renamed ``_wandb_``."""
    return {("_wandb_" if k == "_wandb" else k): v for k, v in config.items()}


def _tags(tags: tuple[str, ...]) -> list[str] | None:
    """Tags as wandb takes them: 1 to 64 characters; a longer tag keeps 55, ``_``
    and 8 hex digits of its hash; an empty one is left out."""
    out = []
    for tag in tags:
        if len(tag) > MAX_TAG:
            tag = tag[:MAX_TAG - 9] + "_" + hashlib.sha256(tag.encode()).hexdigest()[:8]
        if tag and tag not in out:
            out.append(tag)
    return out or None


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the Weights & Biases backend."""
    register(WandbBackend)
