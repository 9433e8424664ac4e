"""An agent: asks the sweep for trials and runs each, a function in this process or
the configuration's program in a child process, until ``count``, the grid's end,
``run_cap``, the metric's target, or Ctrl-C.

A trial whose function raises (or whose program exits non-zero) is recorded as
failed and the agent goes on, except when this agent's first
``MAX_INITIAL_FAILURES`` trials all fail, which is a broken program rather than
bad luck (W&B's agent stops the same way). Ctrl-C or SIGTERM ends the running
trial as killed (a program's process is sent the same signal) and stops the
agent: ``KeyboardInterrupt`` or ``SystemExit`` is raised again.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from unilog import _sweep_link
from unilog._sweep_link import TrialLink
from unilog.sweeps import _engine as engine
from unilog.sweeps._space import _ENVVAR, SweepSpec

logger = logging.getLogger("unilog")

MAX_INITIAL_FAILURES = int(os.environ.get("UNILOG_AGENT_MAX_INITIAL_FAILURES", "3"))
#: How often a program agent looks whether its trial was pruned.
POLL_S = 0.2
#: How long a trial's program gets to end after SIGTERM (pruned, or the agent stopped).
END_GRACE_S = float(os.environ.get("UNILOG_AGENT_GRACE", "30"))
#: After Ctrl-C, how long the program gets to end by itself before it is sent SIGTERM.
FORWARD_AFTER_S = 5.0


def run_agent(study: Any, spec: SweepSpec, url: str, project: str, root: Path,
              function: Callable[[], Any] | None, count: int | None) -> list[int]:
    """Run trials until done; the numbers of the trials this agent ran."""
    ran: list[int] = []
    all_failed = True
    while count is None or len(ran) < count:
        trial, config = engine.next_trial(study, spec)
        if trial is None:
            logger.info("sweep %s: no more trials (%s)", study.study_name, config)
            break
        link = TrialLink(sweep_id=study.study_name, storage=url, trial_id=trial._trial_id,
                         number=trial.number, config=config, metric=spec.metric,
                         project=project, dir=str(root), prune=spec.hyperband is not None,
                         opened=study._storage if function is not None else None)
        logger.info("sweep %s: trial %d with %s", study.study_name, trial.number,
                    json.dumps(config))
        try:
            if function is not None:
                ended, error = _run_function(function, link)
            else:
                ended, error = _run_program(spec, link, study, trial)
        except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, SIGTERM, sys.exit()
            engine.settle(study, spec, trial, _stopped_as(exc), link_run=link.run)
            raise
        state, error = engine.settle(study, spec, trial, ended, error, link_run=link.run)
        ran.append(trial.number)
        if state == "pruned":
            _tag_pruned(link)
        if error:
            logger.warning("sweep %s: trial %d %s: %s", study.study_name, trial.number, state,
                           error)
        else:
            logger.info("sweep %s: trial %d %s", study.study_name, trial.number, state)
        all_failed = all_failed and state == "failed"
        if all_failed and len(ran) >= MAX_INITIAL_FAILURES:
            logger.error("sweep %s: this agent's first %d trials all failed, so it stops "
                         "(fix the program, then start the agent again)", study.study_name,
                         len(ran))
            break
    return ran


# -- a function in this process ---------------------------------------------------------


def _run_function(function: Callable[[], Any], link: TrialLink) -> tuple[str, str | None]:
    _sweep_link.offer(link)
    try:
        function()
    except KeyboardInterrupt:
        _end_run(link, 130, "killed")
        raise
    except SystemExit as exc:  # the process is ending (SIGTERM, sys.exit): so is the agent
        from unilog._lifecycle import system_exit_status

        _end_run(link, *system_exit_status(exc))
        raise
    except Exception as exc:
        logger.error("sweep %s: trial %d raised %s: %s\n%s", link.sweep_id, link.number,
                     type(exc).__name__, exc, traceback.format_exc())
        _end_run(link, 1, "failed")
        return "failed", f"{type(exc).__name__}: {exc}"
    finally:
        _sweep_link.offer(None)
    _end_run(link, 0, "finished")  # as wandb.agent does when the function did not finish
    return "finished", None


def _stopped_as(exc: BaseException) -> str:
    """The state of a trial the agent stopped with: killed, unless ``sys.exit(0)``."""
    if isinstance(exc, SystemExit):
        from unilog._lifecycle import system_exit_status

        return {"finished": "finished", "failed": "failed"}.get(system_exit_status(exc)[1],
                                                                 "killed")
    return "killed"


def _end_run(link: TrialLink, exit_code: int, status: str) -> None:
    run = link.run
    if run is None or run.finished:
        return
    try:
        run.finish(exit_code=exit_code, status=status)
    except Exception as exc:  # on_error="raise": the trial's outcome still gets recorded
        logger.warning("sweep %s, trial %d: finishing its run raised %s: %s", link.sweep_id,
                       link.number, type(exc).__name__, exc)


# -- the configuration's program in a child process ---------------------------------------


def command_line(spec: SweepSpec, config: dict[str, Any]) -> list[str]:
    """The trial's command: the configuration's ``command`` with W&B's macros filled in."""
    from unilog._config import flatten_config

    flat = flatten_config(config, sep=".")
    expanded: list[str] = []
    for item in spec.command:
        if item == "${env}":
            expanded.append("/usr/bin/env")
        elif item == "${interpreter}":
            expanded.append(sys.executable)
        elif item == "${program}":
            if spec.program is None:
                from unilog.errors import ConfigError

                raise ConfigError("sweep configuration: the command uses ${program} but the "
                                  "configuration has no 'program'")
            expanded.append(spec.program)
        elif item == "${args}":
            expanded.extend(f"--{k}={_arg(v)}" for k, v in flat.items())
        elif item == "${args_no_boolean_flags}":
            expanded.extend(f"--{k}" if v is True else f"--{k}={_arg(v)}"
                            for k, v in flat.items() if v is not False)
        elif item == "${args_no_hyphens}":
            expanded.extend(f"{k}={_arg(v)}" for k, v in flat.items())
        elif item == "${args_json}":
            expanded.append(json.dumps(config))
        else:
            expanded.append(_ENVVAR.sub(lambda m: os.environ[m.group(1)], item))
    return expanded


def check_command(spec: SweepSpec) -> None:
    """Before the first trial: every ``${envvar:NAME}`` of the command is set."""
    from unilog.errors import ConfigError

    for item in spec.command:
        for name in _ENVVAR.findall(item):
            if name not in os.environ:
                raise ConfigError(f"sweep command: {item!r} uses the environment variable "
                                  f"{name}, which is not set")


def _arg(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)


def _run_program(spec: SweepSpec, link: TrialLink, study: Any, trial: Any
                 ) -> tuple[str, str | None]:
    argv = command_line(spec, link.config)
    env = dict(os.environ, **{_sweep_link.ENV: link.to_env()})
    try:
        child = subprocess.Popen(argv, env=env)
    except OSError as exc:
        return "failed", f"cannot start {argv[0]!r}: {exc}"
    pruned = False
    try:
        while child.poll() is None:
            time.sleep(POLL_S)
            if not pruned and study._storage.get_trial(trial._trial_id).user_attrs.get(
                    engine.PRUNED_ATTR):
                pruned = True  # ended as killed, marked pruned (docs/sweeps.md)
                child.send_signal(signal.SIGTERM)
                _wait(child)
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C or SIGTERM
        _stop(child, first=FORWARD_AFTER_S if isinstance(exc, KeyboardInterrupt) else 0)
        raise
    code = child.returncode
    if pruned or code == 0:
        return "finished", None
    if code in (-signal.SIGINT, 130, -signal.SIGTERM, 143, -signal.SIGKILL):
        return "killed", f"the program ended with exit code {code}"
    return "failed", f"the program exited with code {code}: {' '.join(argv)}"


def _stop(child: subprocess.Popen, first: float) -> None:
    """End a trial's program as killed. A terminal's Ctrl-C reached it too (one
    process group), so it gets ``first`` seconds to end its run by itself; then
    SIGTERM, which unilog's handler turns into a killed run (and ignores while the
    run is being finished, where a second SIGINT would interrupt the finish)."""
    try:
        child.wait(first)
        return
    except subprocess.TimeoutExpired:
        pass
    child.send_signal(signal.SIGTERM)
    _wait(child)


def _wait(child: subprocess.Popen) -> None:
    try:
        child.wait(END_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _tag_pruned(link: TrialLink) -> None:
    """Add "pruned" to the trial run's tags in its run.json (backends got their tags
    at init; docs/sweeps.md)."""
    from unilog._manifest import MANIFEST, Manifest

    run_dir = None
    if link.run is not None and link.run.dir is not None:
        run_dir = Path(link.run.dir)
    else:
        storage = engine.open_storage(link.storage)
        found = storage.get_trial(link.trial_id).user_attrs.get(engine.RUN_ATTR)
        run_dir = Path(found["dir"]) if found else None
    if run_dir is None or not (run_dir / MANIFEST).exists():
        return
    manifest = Manifest.load(run_dir)
    tags = list(manifest.data.get("tags") or [])
    if "pruned" not in tags:
        manifest.update(tags=[*tags, "pruned"])
