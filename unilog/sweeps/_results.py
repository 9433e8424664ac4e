"""What a sweep found: its trials read back from the study, a table, and a plot."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unilog.sweeps import _engine as engine
from unilog.sweeps._space import SweepSpec


@dataclass
class TrialData:
    """One trial of a sweep."""

    number: int
    #: complete, pruned, failed, killed, or running
    state: str
    #: The metric's value (None unless complete or pruned with a value, or without a metric).
    value: float | None
    #: The trial's config, nested as the sweep's parameters are.
    params: dict[str, Any]
    run_id: str | None = None
    run_dir: Path | None = None
    #: Why it failed, when unilog knows.
    error: str | None = None


@dataclass
class SweepData:
    """A sweep's configuration and trials (``unilog.read_sweep``)."""

    id: str
    project: str
    method: str
    metric: str | None
    goal: str
    config: dict[str, Any]
    trials: list[TrialData] = field(default_factory=list)
    name: str | None = None

    @property
    def best(self) -> TrialData | None:
        """The complete trial with the best value for the goal (None without a metric)."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None
                and not math.isnan(t.value)]
        if self.metric is None or not done:
            return None
        pick = max if self.goal == "maximize" else min
        return pick(done, key=lambda t: t.value)

    def ranked(self) -> list[TrialData]:
        """Every trial, best first: complete ones by value, then pruned, running, failed."""
        order = {"complete": 0, "pruned": 1, "running": 2, "failed": 3, "killed": 4}
        sign = -1 if self.goal == "maximize" else 1

        def key(t: TrialData) -> tuple:
            value = t.value if t.value is not None and not math.isnan(t.value) else math.inf
            return (order.get(t.state, 5), sign * value if value != math.inf else math.inf,
                    t.number)

        return sorted(self.trials, key=key)


def read(study: Any, spec: SweepSpec, project: str) -> SweepData:
    """The sweep's trials as unilog sees them (another agent's duplicates left out)."""
    from optuna.trial import TrialState

    data = SweepData(id=study.study_name, project=project, method=spec.method,
                     metric=spec.metric, goal=spec.goal, config=spec.raw, name=spec.name)
    for t in study.get_trials(deepcopy=False):
        attrs = t.user_attrs
        if attrs.get(engine.DUPLICATE_ATTR):
            continue
        state = attrs.get(engine.STATE_ATTR) or {
            TrialState.RUNNING: "running", TrialState.WAITING: "running",
            TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned",
        }.get(t.state, "failed")
        value = t.value if t.state == TrialState.COMPLETE and spec.metric else None
        if state == "pruned":
            value = (attrs.get(engine.ENDED_ATTR) or {}).get("value")
        run = attrs.get(engine.ENDED_ATTR) or attrs.get(engine.RUN_ATTR) or {}
        data.trials.append(TrialData(
            number=t.number, state=state, value=value, params=_config(spec, t),
            run_id=run.get("id"), run_dir=Path(run["dir"]) if run.get("dir") else None,
            error=attrs.get(engine.ERROR_ATTR)))
    return data


def _config(spec: SweepSpec, trial: Any) -> dict[str, Any]:
    """The trial's config, from Optuna's draws (as the agent gave it to the run)."""
    try:
        return spec.config_for(trial.params)
    except KeyError:  # asked for but never drawn (a trial that died while being asked)
        return {}


def _flat(params: dict[str, Any]) -> dict[str, Any]:
    from unilog._config import flatten_config

    return flatten_config(params, sep=".")


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def table(data: SweepData) -> str:
    """The trials as a text table, best first."""
    trials = data.ranked()
    names = sorted({k for t in trials for k in _flat(t.params)})
    header = ["trial", "state", data.metric or "value", *names, "run"]
    rows = [[str(t.number), t.state, _cell(t.value),
             *(_cell(_flat(t.params).get(n)) for n in names), t.run_id or "-"] for t in trials]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    best = data.best
    title = (f"sweep {data.id} ({data.method}, {data.metric or 'no metric'} "
             f"{'' if data.metric is None else data.goal}): {len(trials)} trials"
             + (f", best trial {best.number} = {_cell(best.value)}" if best else ""))
    return "\n".join([title, *lines])


def plot(data: SweepData, path: Path) -> Path:
    """A PNG with the metric against each searched parameter (one panel each):
    complete trials as dots, the best one starred, pruned ones as grey crosses."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    varying = [n for n in sorted({k for t in data.trials for k in _flat(t.params)})
               if len({repr(_flat(t.params).get(n)) for t in data.trials}) > 1]
    varying = varying or sorted({k for t in data.trials for k in _flat(t.params)})[:1] or ["-"]
    columns = min(3, len(varying))
    rows = math.ceil(len(varying) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.5 * rows), squeeze=False)
    best = data.best
    for ax, name in zip(axes.flat, varying):
        _panel(ax, data, name, best)
    for ax in list(axes.flat)[len(varying):]:
        ax.set_visible(False)
    fig.suptitle(f"sweep {data.id}: {data.metric or 'no metric'} ({data.goal})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _panel(ax: Any, data: SweepData, name: str, best: TrialData | None) -> None:
    points = [(t, _flat(t.params).get(name)) for t in data.trials if t.value is not None]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for _, x in points)
    labels = sorted({repr(x) for _, x in points})

    def where(x: Any) -> Any:
        return x if numeric else labels.index(repr(x))

    for state, style in (("complete", dict(marker="o", color="tab:blue")),
                         ("pruned", dict(marker="x", color="grey"))):
        chosen = [(where(x), t.value) for t, x in points if t.state == state]
        if chosen:
            ax.scatter(*zip(*chosen), label=state, alpha=0.8, **style)
    if best is not None:
        ax.scatter([where(_flat(best.params).get(name))], [best.value], marker="*", s=250,
                   color="tab:red", label=f"best (trial {best.number})", zorder=3)
    if not numeric:
        ax.set_xticks(range(len(labels)), labels, rotation=30)
    elif points and min(x for _, x in points) > 0 and \
            max(x for _, x in points) / min(x for _, x in points) >= 20:
        ax.set_xscale("log")  # a learning rate over decades
    ax.set_xlabel(name)
    ax.set_ylabel(data.metric or "value")
    ax.legend(fontsize="small")
