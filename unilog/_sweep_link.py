"""How a sweep's trial reaches the ``unilog.init()`` that runs it.

A function agent leaves the trial here (:func:`offer`); a program agent puts
it in the trial process's environment (``$UNILOG_SWEEP_TRIAL``). The first
``init`` in that process takes it (:func:`take`): the trial's parameters become
the run's config (over what the program passed), the sweep is the run's group,
``sweep:<id>`` and ``trial:<n>`` join its tags, and a reporter (a member of the
run's dispatcher, on its own thread) feeds the metric to the sweep's pruner.

Imported by every ``init``, so it imports nothing heavy: Optuna is loaded by
the reporter's thread.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

ENV = "UNILOG_SWEEP_TRIAL"


@dataclass
class TrialLink:
    """One trial, as its run needs it."""

    sweep_id: str
    storage: str  # a URL, or journal:<path>
    trial_id: int
    number: int
    config: dict[str, Any]
    metric: str | None
    project: str
    dir: str
    prune: bool = False  # the sweep has a pruner: report the metric as it is logged
    #: The run ``init`` made for this trial (only in the agent's own process).
    run: Any = field(default=None, compare=False, repr=False)
    #: The agent's open Optuna storage, shared with the trial's reporter in the agent's
    #: own process (reopening a journal replays it whole: O(trials) per trial).
    opened: Any = field(default=None, compare=False, repr=False)

    def to_env(self) -> str:
        """The link as ``$UNILOG_SWEEP_TRIAL`` holds it."""
        return json.dumps({f.name: getattr(self, f.name) for f in fields(self)
                           if f.name not in ("run", "opened")})

    @classmethod
    def from_env(cls, text: str) -> TrialLink:
        """The link a program agent put in the environment."""
        return cls(**json.loads(text))


_offered: TrialLink | None = None


def offer(link: TrialLink | None) -> None:
    """Leave ``link`` for the next ``init`` in this process (None withdraws it)."""
    global _offered
    _offered = link


def take() -> TrialLink | None:
    """The trial the next run is for, once: offered in this process, or given in the
    environment (which is then cleared, so the trial's own subprocesses do not take it)."""
    global _offered
    link, _offered = _offered, None
    if link is None and ENV in os.environ:
        link = TrialLink.from_env(os.environ.pop(ENV))
    return link


def pending() -> bool:
    """True when the next ``init`` runs a sweep's trial (cheap: checked by every ``init``)."""
    return _offered is not None or ENV in os.environ


def apply(link: TrialLink, args: dict[str, Any]) -> dict[str, Any]:
    """``init``'s arguments for the trial's run: its config over the given one, the
    sweep's project, dir and group unless given, and the sweep's tags added."""
    import copy

    from unilog._config import Config, to_dict

    args = dict(args)
    config = to_dict(args.get("config"))
    try:
        config = copy.deepcopy(config)  # the caller's dict is not written into
    except Exception:
        config = dict(config)
    Config(config).update(link.config)
    args["config"] = config
    args["project"] = args.get("project") or link.project
    args["dir"] = args.get("dir") or link.dir
    args["group"] = args.get("group") or link.sweep_id
    tags = args.get("tags") or []
    tags = [tags] if isinstance(tags, str) else list(tags)
    args["tags"] = [*tags, f"sweep:{link.sweep_id}", f"trial:{link.number}"]
    return args
