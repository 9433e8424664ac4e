"""Sweeps (issue 12): what a trial costs, and agents sharing one sweep.

1. **Per trial**: 100 trials of a trivial function (one parameter, one logged
   value), each a unilog run with the CSV local record, all on a journal file:

   - *Optuna alone*: ``study.optimize`` with an objective that logs nothing (the
     floor: Optuna's own bookkeeping);
   - *Optuna + unilog by hand*: ``study.optimize`` with an objective that calls
     ``unilog.init``, ``log`` and ``finish`` itself: what a user writes today to
     see Optuna's trials in a tracker;
   - *unilog.agent*: the same function run by ``unilog.sweep`` + ``unilog.agent``
     (the sweep's bookkeeping, the trial's reporter, the outcome in the study).

   Targets: unilog.agent at most 50 ms a trial more than Optuna alone, and at
   most 1.2x Optuna + unilog by hand. Each variant runs in a fresh process,
   alternated, ``repeats`` times.
2. **Agents sharing a sweep**: 1, 2 and 4 agent processes on one journal file,
   40 trials of a function that takes 0.25 s (a short training); wall time to
   the end of the sweep, and the speed-up over one agent.

``python -m benchmarks --only sweeps`` (``--quick``: 20 trials, one repetition).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = ("optuna", "optuna+unilog", "agent")
ROOT = Path(__file__).resolve().parent.parent


def _probe(variant: str, trials: int, folder: str) -> dict:
    """In a fresh process: time ``trials`` trials of ``variant``."""
    import optuna

    import unilog

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ["UNILOG_DIR"] = folder
    os.environ["UNILOG_SILENT"] = "true"

    def logged(x: float) -> float:
        run = unilog.init(project="bench", backends=["csv"])
        run.log({"y": x * x})
        run.finish()
        return x * x

    from optuna.storages.journal import JournalFileBackend, JournalStorage

    start = time.perf_counter()
    if variant == "agent":
        def function() -> None:
            run = unilog.init(backends=["csv"])
            run.log({"y": run.config.x ** 2})

        sweep_id = unilog.sweep({"method": "random", "metric": {"name": "y"},
                                 "parameters": {"x": {"min": 0.0, "max": 1.0}}}, project="bench")
        unilog.agent(sweep_id, function=function, count=trials, project="bench")
        done = len(unilog.read_sweep(sweep_id, project="bench").trials)
    else:
        storage = JournalStorage(JournalFileBackend(str(Path(folder) / "journal.log")))
        study = optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler())
        if variant == "optuna":
            study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=trials)
        else:
            study.optimize(lambda t: logged(t.suggest_float("x", 0, 1)), n_trials=trials)
        done = len(study.trials)
    return {"seconds": time.perf_counter() - start, "trials": done}


def _scaling_probe(sweep_id: str, folder: str) -> None:
    """One agent process of the scaling benchmark."""
    import unilog

    def function() -> None:
        run = unilog.init(backends=["csv"])
        time.sleep(0.25)
        run.log({"y": run.config.x})

    unilog.agent(sweep_id, function=function, project="bench", dir=folder)


def _in_process(*args: str) -> subprocess.Popen:
    env = {**os.environ, "UNILOG_SILENT": "true"}
    return subprocess.Popen([sys.executable, "-m", "benchmarks.sweeps", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _per_trial(trials: int, repeats: int) -> list[tuple[str, str, str]]:
    samples: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for rep in range(repeats):
        for variant in (VARIANTS if rep % 2 == 0 else tuple(reversed(VARIANTS))):
            with tempfile.TemporaryDirectory() as folder:
                out, err = _in_process("--probe", variant, str(trials), folder).communicate()
                if not out.strip():
                    raise RuntimeError(f"{variant} failed: {err[-2000:]}")
                result = json.loads(out.strip().splitlines()[-1])
                if result["trials"] != trials:
                    raise RuntimeError(f"{variant} ran {result['trials']} of {trials} trials")
                samples[variant].append(result["seconds"] / trials)
    med = {v: statistics.median(s) for v, s in samples.items()}
    rows = []
    labels = {"optuna": "Optuna alone (study.optimize, nothing logged)",
              "optuna+unilog": "Optuna + unilog by hand (init/log/finish in the objective)",
              "agent": "unilog.sweep + unilog.agent"}
    for variant in VARIANTS:
        s = samples[variant]
        rows.append((f"{trials} trials, journal file: {labels[variant]}, per trial",
                     f"{med[variant] * 1e3:.1f} ms [{min(s) * 1e3:.1f}-{max(s) * 1e3:.1f}]", "-"))
    rows.append(("unilog.agent: overhead per trial over Optuna alone",
                 f"{(med['agent'] - med['optuna']) * 1e3:.1f} ms", "<= 50 ms"))
    rows.append(("unilog.agent against Optuna + unilog by hand",
                 f"**{med['agent'] / med['optuna+unilog']:.2f}x**", "<= 1.2x"))
    return rows


def _scaling(trials: int, agents_list: tuple[int, ...]) -> list[tuple[str, str, str]]:
    import unilog

    rows, one = [], None
    for agents in agents_list:
        with tempfile.TemporaryDirectory() as folder:
            sweep_id = unilog.sweep({"method": "grid", "parameters": {
                "x": {"values": list(range(trials))}}}, project="bench", dir=folder)
            start = time.perf_counter()
            procs = [_in_process("--agent", sweep_id, folder) for _ in range(agents)]
            for proc in procs:
                _, err = proc.communicate()
                if proc.returncode != 0:
                    raise RuntimeError(f"agent failed: {err[-2000:]}")
            wall = time.perf_counter() - start
            done = unilog.read_sweep(sweep_id, project="bench", dir=folder).trials
            if sorted(t.params["x"] for t in done) != list(range(trials)):
                raise RuntimeError("the agents ran a grid point twice or missed one")
        one = one or wall
        rows.append((f"{trials} trials of 0.25 s on one journal file, {agents} agent "
                     f"process{'es' if agents > 1 else ''}",
                     f"{wall:.1f} s, {trials / wall:.2f} trials/s, **{one / wall:.2f}x** one "
                     "agent", "-"))
    return rows


def run(quick: bool, out: Path) -> list[tuple[str, str, str]]:
    """Rows of (figure, measured, target)."""
    rows = _per_trial(20 if quick else 100, 1 if quick else 3)
    rows += _scaling(8 if quick else 40, (1, 2) if quick else (1, 2, 4))
    return rows


if __name__ == "__main__":
    if sys.argv[1] == "--probe":
        print(json.dumps(_probe(sys.argv[2], int(sys.argv[3]), sys.argv[4])))
    elif sys.argv[1] == "--agent":
        _scaling_probe(sys.argv[2], sys.argv[3])
