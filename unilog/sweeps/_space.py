"""W&B's sweep configuration, read and checked: what to search, how, and what to run.

:func:`parse` turns a configuration (a dict, or a YAML file's path) into a
:class:`SweepSpec`. Every key W&B documents is either honoured or refused with
a ``ConfigError`` naming it and the rule; nothing is ignored.

Each parameter becomes a :class:`Param`: the Optuna distribution its sampler
draws from (``None`` for a constant), and the map from that draw to the
config value. Where Optuna has the distribution itself (uniform, log-uniform,
integers, categories) the draw *is* the value. Where it does not (normal,
log-normal, beta, categories with probabilities) Optuna draws ``u`` in [0, 1]
and the value is the distribution's inverse CDF at ``u``: the same transform
W&B's own sweep code applies to its uniform draws. Quantised distributions
round ``round(x / q) * q``, giving ints when ``q`` is an int, as W&B does.
"""

from __future__ import annotations

import math
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from unilog.errors import ConfigError

METHODS = ("grid", "random", "bayes")
GOALS = ("minimize", "maximize")
TOP_KEYS = ("method", "metric", "parameters", "early_terminate", "run_cap", "program",
            "command", "name", "description", "project")
METRIC_KEYS = ("name", "goal", "target")
HYPERBAND_KEYS = ("type", "min_iter", "max_iter", "s", "eta")
PARAM_KEYS = ("distribution", "values", "value", "probabilities", "min", "max", "mu",
              "sigma", "q", "a", "b", "parameters")
#: Every distribution W&B documents, with the keys each one takes.
DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("value",),
    "categorical": ("values",),
    "categorical_w_probabilities": ("values", "probabilities"),
    "int_uniform": ("min", "max"),
    "uniform": ("min", "max"),
    "q_uniform": ("min", "max", "q"),
    "log_uniform": ("min", "max"),
    "log_uniform_values": ("min", "max"),
    "q_log_uniform": ("min", "max", "q"),
    "q_log_uniform_values": ("min", "max", "q"),
    "inv_log_uniform": ("min", "max"),
    "inv_log_uniform_values": ("min", "max"),
    "normal": ("mu", "sigma"),
    "q_normal": ("mu", "sigma", "q"),
    "log_normal": ("mu", "sigma"),
    "q_log_normal": ("mu", "sigma", "q"),
    "beta": ("a", "b"),
    "q_beta": ("a", "b", "q"),
}
#: W&B's defaults for the keys a distribution may leave out.
DEFAULTS = {"mu": 0, "sigma": 1, "q": 1, "a": 1, "b": 1}
#: The distributions a grid can enumerate (W&B's own list).
GRID_DISTRIBUTIONS = ("constant", "categorical", "int_uniform", "q_uniform")
#: W&B's command macros; ``${envvar:NAME}`` is the environment variable NAME.
MACROS = ("${env}", "${interpreter}", "${program}", "${args}", "${args_no_hyphens}",
          "${args_json}", "${args_no_boolean_flags}")
DEFAULT_COMMAND = ("${env}", "${interpreter}", "${program}", "${args}")
#: The most points a grid may have: GridSampler lists every one in memory, in
#: every agent (a million take ~150 MB and 2.5 s).
MAX_GRID = 1_000_000
_ENVVAR = re.compile(r"\$\{envvar:([A-Za-z_][A-Za-z0-9_]*)\}")
_MACRO = re.compile(r"\$\{[^}]*\}")
# Optuna's draw for an inverse-CDF transform stays this far inside (0, 1): the
# inverse CDF of a normal is infinite at 0 and 1.
_EDGE = 1e-12


@dataclass
class Param:
    """One searched (or constant) parameter: ``path`` is its place in the config."""

    path: tuple[str, ...]
    distribution: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        """The parameter's name in Optuna and in ``${args}``: the path joined by dots."""
        return ".".join(self.path)

    @property
    def constant(self) -> bool:
        """True for ``value:`` (or ``distribution: constant``): not searched."""
        return self.distribution == "constant"

    def optuna_distribution(self) -> Any:
        """The Optuna distribution the sampler draws from (None for a constant)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        d, s = self.distribution, self.spec
        if d == "constant":
            return None
        if d == "categorical":
            return CategoricalDistribution(self._choices())
        if d == "int_uniform":
            return IntDistribution(s["min"], s["max"])
        if d in ("uniform", "q_uniform"):
            return FloatDistribution(float(s["min"]), float(s["max"]))
        if d in ("log_uniform", "q_log_uniform"):
            return FloatDistribution(math.exp(s["min"]), math.exp(s["max"]), log=True)
        if d in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values"):
            # log(1/X) uniform between log(1/max) and log(1/min) is X log-uniform in [min, max]
            return FloatDistribution(float(s["min"]), float(s["max"]), log=True)
        if d == "inv_log_uniform":
            # log(1/X) uniform in [min, max]: X log-uniform in [exp(-max), exp(-min)]
            return FloatDistribution(math.exp(-s["max"]), math.exp(-s["min"]), log=True)
        return FloatDistribution(0.0, 1.0)  # u for an inverse CDF

    def _choices(self) -> tuple[Any, ...]:
        values = self.spec["values"]
        if _plain_choices(values):
            return tuple(values)
        return tuple(range(len(values)))  # lists, dicts, repeats: Optuna sees indices

    def value(self, drawn: Any) -> Any:
        """The config value for Optuna's draw ``drawn`` (ignored for a constant)."""
        d, s = self.distribution, self.spec
        if d == "constant":
            return s["value"]
        if d == "categorical":
            return drawn if _plain_choices(s["values"]) else s["values"][drawn]
        if d == "categorical_w_probabilities":
            total = 0.0
            for value, p in zip(s["values"], s["probabilities"]):
                total += p
                if drawn < total:
                    return value
            return s["values"][-1]
        if d == "int_uniform":
            return int(drawn)
        if d in ("uniform", "log_uniform", "log_uniform_values", "inv_log_uniform",
                 "inv_log_uniform_values"):
            return float(drawn)
        if d in ("q_uniform", "q_log_uniform", "q_log_uniform_values"):
            return _quantise(drawn, s["q"])
        u = min(max(float(drawn), _EDGE), 1 - _EDGE)
        base = d[2:] if d.startswith("q_") else d
        x = _INVERSE_CDF[base](u, s)
        return _quantise(x, s["q"]) if d.startswith("q_") else x

    def grid(self) -> list[Any]:
        """Every value a grid visits, as Optuna's GridSampler is given them."""
        d, s = self.distribution, self.spec
        if d == "categorical":
            return list(self._choices())
        if d == "int_uniform":
            return list(range(s["min"], s["max"] + 1))
        if d == "q_uniform":  # min, min + q, ... up to max
            n = int(math.floor((s["max"] - s["min"]) / s["q"] + 1e-9))
            return [min(s["min"] + i * s["q"], s["max"]) for i in range(n + 1)]
        raise AssertionError(d)

    def grid_size(self) -> int:
        """How many values :meth:`grid` gives, without listing them."""
        d, s = self.distribution, self.spec
        if d == "constant":
            return 1
        if d == "categorical":
            return len(s["values"])
        if d == "int_uniform":
            return s["max"] - s["min"] + 1
        return int(math.floor((s["max"] - s["min"]) / s["q"] + 1e-9)) + 1

    def grid_value(self, drawn: Any) -> Any:
        """The config value of a grid point."""
        if self.distribution == "q_uniform":
            return _quantise(drawn, self.spec["q"])
        return self.value(drawn)


@dataclass
class SweepSpec:
    """A checked sweep configuration."""

    method: str
    params: list[Param]
    metric: str | None = None
    goal: str = "minimize"
    target: float | None = None
    hyperband: dict[str, Any] | None = None
    run_cap: int | None = None
    program: str | None = None
    command: list[str] = field(default_factory=lambda: list(DEFAULT_COMMAND))
    name: str | None = None
    description: str | None = None
    project: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def searched(self) -> list[Param]:
        """The parameters a sampler draws (not the constants)."""
        return [p for p in self.params if not p.constant]

    def distributions(self) -> dict[str, Any]:
        """``{name: Optuna distribution}`` of the searched parameters."""
        return {p.name: p.optuna_distribution() for p in self.searched}

    def grid_space(self) -> dict[str, list[Any]]:
        """GridSampler's search space: every searched parameter's grid."""
        return {p.name: p.grid() for p in self.searched}

    def config_for(self, drawn: Mapping[str, Any]) -> dict[str, Any]:
        """The trial's config (nested as the parameters were) for Optuna's draws."""
        config: dict[str, Any] = {}
        for p in self.params:
            if p.constant:
                value = p.value(None)
            elif self.method == "grid":
                value = p.grid_value(drawn[p.name])
            else:
                value = p.value(drawn[p.name])
            node = config
            for part in p.path[:-1]:
                node = node.setdefault(part, {})
            node[p.path[-1]] = value
        return config

    def better(self, a: float, b: float) -> bool:
        """True when value ``a`` is better than ``b`` for the goal."""
        return a > b if self.goal == "maximize" else a < b

    def reached_target(self, value: float) -> bool:
        """True when ``value`` meets the metric's ``target`` (the sweep then stops)."""
        if self.target is None:
            return False
        return value >= self.target if self.goal == "maximize" else value <= self.target


def _plain_choices(values: list[Any]) -> bool:
    """True when Optuna can take ``values`` as its own categories (distinct primitives)."""
    if not all(v is None or isinstance(v, (bool, int, float, str)) for v in values):
        return False
    keys = [(type(v), v) for v in values]
    return len(set(keys)) == len(keys)


def _quantise(x: float, q: int | float) -> int | float:
    value = round(x / q) * q
    return int(value) if isinstance(q, int) else float(value)


def _beta_inverse_cdf(u: float, s: dict[str, Any]) -> float:
    from scipy.stats import beta

    return float(beta.ppf(u, s["a"], s["b"]))


_INVERSE_CDF: dict[str, Callable[[float, dict[str, Any]], float]] = {
    "normal": lambda u, s: statistics.NormalDist(s["mu"], s["sigma"]).inv_cdf(u),
    "log_normal": lambda u, s: math.exp(statistics.NormalDist(s["mu"], s["sigma"]).inv_cdf(u)),
    "beta": _beta_inverse_cdf,
}


# -- reading and checking ------------------------------------------------------------


def load(config: Any) -> dict[str, Any]:
    """A configuration given as a mapping, or as the path of a YAML (or JSON) file."""
    if isinstance(config, (str, Path)):
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"sweep configuration file {str(path)!r} does not exist")
        import yaml

        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"sweep configuration {str(path)!r} is not valid YAML: {exc}"
                              " (a macro inside [...] must be quoted: '${program}')") from exc
        if data is None:
            raise ConfigError(f"sweep configuration {str(path)!r} is empty")
    else:
        from unilog._config import to_plain

        data = to_plain(config)
    if not isinstance(data, dict):
        raise ConfigError(f"a sweep configuration is a mapping, not {type(data).__name__}")
    return data


def parse(config: Any) -> SweepSpec:
    """Check a W&B sweep configuration and return it as a :class:`SweepSpec`.

    :raises ConfigError: naming the key and the rule, for anything unilog cannot honour.
    """
    raw = load(config)
    _no_unknown(raw, TOP_KEYS, "sweep configuration",
                hint={"entity": "unilog sweeps have no entity (W&B's account name); give "
                                "the wandb backend its entity option instead"})
    method = raw.get("method")
    if method not in METHODS:
        raise ConfigError(f"sweep configuration: method must be one of {', '.join(METHODS)}, "
                          f"not {method!r}")
    spec = SweepSpec(method=method, params=[], raw=raw)
    _read_metric(raw.get("metric"), spec)
    if "parameters" not in raw:
        raise ConfigError("sweep configuration: 'parameters' is required")
    spec.params = _read_params(raw["parameters"], ())
    if not spec.params:
        raise ConfigError("sweep configuration: 'parameters' is empty")
    if method == "grid":
        size = 1
        for p in spec.params:
            if p.distribution not in GRID_DISTRIBUTIONS:
                raise ConfigError(
                    f"sweep parameter {p.name!r}: method grid enumerates "
                    f"{', '.join(GRID_DISTRIBUTIONS)} only, not distribution "
                    f"{p.distribution!r} (give it 'values', or use method random or bayes)")
            size *= p.grid_size()
        if size > MAX_GRID:
            raise ConfigError(f"sweep configuration: method grid would have {size:,} points, "
                              f"more than {MAX_GRID:,} (Optuna's GridSampler holds them all "
                              "in memory); use method random or bayes with a run_cap")
    if method == "bayes" and spec.metric is None:
        raise ConfigError("sweep configuration: method bayes needs a 'metric' to optimise")
    spec.hyperband = _read_early_terminate(raw.get("early_terminate"), spec)
    if "run_cap" in raw:
        cap = raw["run_cap"]
        if not _is_int(cap) or cap < 1:
            raise ConfigError(f"sweep configuration: run_cap must be an int >= 1, not {cap!r}")
        spec.run_cap = cap
    for key in ("program", "name", "description", "project"):
        if key in raw:
            if not isinstance(raw[key], str) or not raw[key]:
                raise ConfigError(f"sweep configuration: {key} must be a non-empty string, "
                                  f"not {raw[key]!r}")
            setattr(spec, key, raw[key])
    if "command" in raw:
        spec.command = _read_command(raw["command"])
    return spec


def _no_unknown(mapping: dict[str, Any], allowed: tuple[str, ...], where: str,
                hint: dict[str, str] | None = None) -> None:
    for key in mapping:
        if key not in allowed:
            why = (hint or {}).get(key) or f"allowed keys: {', '.join(allowed)}"
            raise ConfigError(f"{where}: unilog cannot honour key {key!r} ({why})")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_metric(metric: Any, spec: SweepSpec) -> None:
    if metric is None:
        return
    if not isinstance(metric, dict):
        raise ConfigError(f"sweep configuration: metric must be a mapping with a 'name', "
                          f"not {metric!r}")
    _no_unknown(metric, METRIC_KEYS, "sweep metric")
    name = metric.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"sweep metric: name must be the logged key to optimise, "
                          f"not {name!r}")
    goal = metric.get("goal", "minimize")
    if goal not in GOALS:
        raise ConfigError(f"sweep metric: goal must be minimize or maximize, not {goal!r}")
    target = metric.get("target")
    if target is not None and not _is_number(target):
        raise ConfigError(f"sweep metric: target must be a number, not {target!r}")
    spec.metric, spec.goal, spec.target = name, goal, target


def _read_params(parameters: Any, prefix: tuple[str, ...]) -> list[Param]:
    where = "sweep parameters" + (f" of {'.'.join(prefix)!r}" if prefix else "")
    if not isinstance(parameters, dict):
        raise ConfigError(f"{where} must be a mapping of names to specs, not "
                          f"{type(parameters).__name__}")
    params: list[Param] = []
    for key, spec in parameters.items():
        path = (*prefix, str(key))
        name = ".".join(path)
        if not str(key) or "." in str(key):
            raise ConfigError(f"sweep parameter {name!r}: a name must be non-empty and "
                              "without '.' (nest it under 'parameters' instead)")
        if not isinstance(spec, dict):
            raise ConfigError(f"sweep parameter {name!r} must be a mapping such as "
                              f"{{values: [...]}} or {{min: .., max: ..}}, not {spec!r}")
        _no_unknown(spec, PARAM_KEYS, f"sweep parameter {name!r}")
        if "parameters" in spec:
            if len(spec) > 1:
                raise ConfigError(f"sweep parameter {name!r}: a nested 'parameters' takes "
                                  "no other keys")
            params.extend(_read_params(spec["parameters"], path))
        else:
            params.append(_read_param(path, spec))
    return params


def _infer(name: str, spec: dict[str, Any]) -> str:
    """W&B's inference when ``distribution`` is not given."""
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec and "max" in spec:
        return "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
    raise ConfigError(f"sweep parameter {name!r}: give 'value', 'values', 'min' and 'max', "
                      "or a 'distribution'")


def _read_param(path: tuple[str, ...], given: dict[str, Any]) -> Param:
    name = ".".join(path)
    distribution = given.get("distribution") or _infer(name, given)
    if distribution == "categorical" and "probabilities" in given:
        distribution = "categorical_w_probabilities"
    if distribution not in DISTRIBUTIONS:
        raise ConfigError(f"sweep parameter {name!r}: unknown distribution {distribution!r} "
                          f"(one of {', '.join(DISTRIBUTIONS)})")
    takes = DISTRIBUTIONS[distribution]
    for key in given:
        if key != "distribution" and key not in takes:
            raise ConfigError(f"sweep parameter {name!r}: distribution {distribution!r} takes "
                              f"{', '.join(takes)}, not {key!r}")
    spec = {key: given.get(key, DEFAULTS.get(key)) for key in takes}
    for key in takes:
        if spec[key] is None and key not in ("value",):
            raise ConfigError(f"sweep parameter {name!r}: distribution {distribution!r} "
                              f"needs {key!r}")
    _check_param(name, distribution, spec, "value" in given)
    return Param(path, distribution, spec)


def _check_param(name: str, d: str, s: dict[str, Any], has_value: bool) -> None:
    where = f"sweep parameter {name!r}"
    if d == "constant" and not has_value:
        raise ConfigError(f"{where}: distribution 'constant' needs 'value'")
    if "values" in s:
        if not isinstance(s["values"], list) or not s["values"]:
            raise ConfigError(f"{where}: values must be a non-empty list, not {s['values']!r}")
    if "probabilities" in s:
        p = s["probabilities"]
        if (not isinstance(p, list) or len(p) != len(s["values"])
                or not all(_is_number(x) and x >= 0 for x in p)):
            raise ConfigError(f"{where}: probabilities must be one number >= 0 per value "
                              f"({len(s['values'])}), not {p!r}")
        if abs(sum(p) - 1) > 1e-6:
            raise ConfigError(f"{where}: probabilities must add up to 1, not {sum(p)!r}")
    for key in ("min", "max", "mu", "sigma", "q", "a", "b"):
        if key in s and not _is_number(s[key]):
            raise ConfigError(f"{where}: {key} must be a finite number, not {s[key]!r}")
    if "min" in s:
        if d == "int_uniform" and not (_is_int(s["min"]) and _is_int(s["max"])):
            raise ConfigError(f"{where}: int_uniform needs int min and max, not "
                              f"{s['min']!r} and {s['max']!r}")
        if not s["min"] < s["max"]:
            raise ConfigError(f"{where}: min must be less than max, not {s['min']!r} >= "
                              f"{s['max']!r}")
        if d.endswith("_values") and s["min"] <= 0:
            raise ConfigError(f"{where}: {d} takes values > 0 (its log is taken), not min "
                              f"{s['min']!r}")
    for key in ("sigma", "q", "a", "b"):
        if key in s and s[key] <= 0:
            raise ConfigError(f"{where}: {key} must be > 0, not {s[key]!r}")
    if d in ("beta", "q_beta"):
        try:
            import scipy.stats  # noqa: F401
        except ImportError:
            raise ConfigError(f"{where}: distribution {d!r} needs scipy's beta inverse CDF: "
                              "pip install scipy") from None


def _read_early_terminate(given: Any, spec: SweepSpec) -> dict[str, Any] | None:
    if given is None:
        return None
    where = "sweep early_terminate"
    if not isinstance(given, dict):
        raise ConfigError(f"{where} must be a mapping with type: hyperband, not {given!r}")
    _no_unknown(given, HYPERBAND_KEYS, where)
    if given.get("type") != "hyperband":
        raise ConfigError(f"{where}: type must be 'hyperband' (the one W&B documents), not "
                          f"{given.get('type')!r}")
    if spec.metric is None:
        raise ConfigError(f"{where}: hyperband needs a 'metric' to compare trials by")
    for key in ("min_iter", "max_iter", "s", "eta"):
        if key in given and (not _is_int(given[key]) or given[key] < 1):
            raise ConfigError(f"{where}: {key} must be an int >= 1, not {given[key]!r}")
    eta = given.get("eta", 3)
    if eta < 2:
        raise ConfigError(f"{where}: eta must be >= 2, not {eta!r}")
    if "min_iter" in given:
        min_iter = given["min_iter"]
        max_iter = given.get("max_iter", "auto")
    elif "max_iter" in given and "s" in given:
        # W&B's brackets are max_iter / eta**k for k = 1..s: the lowest is the minimum
        min_iter = max(1, given["max_iter"] // eta ** given["s"])
        max_iter = given["max_iter"]
    else:
        raise ConfigError(f"{where}: hyperband needs min_iter, or max_iter with s")
    if max_iter != "auto" and max_iter <= min_iter:
        raise ConfigError(f"{where}: max_iter ({max_iter}) must be more than the minimum "
                          f"iteration ({min_iter})")
    return {"min_resource": min_iter, "max_resource": max_iter, "reduction_factor": eta}


def _read_command(command: Any) -> list[str]:
    if isinstance(command, str) or not isinstance(command, list) or not command:
        raise ConfigError(f"sweep configuration: command must be a non-empty list of "
                          f"strings and macros, not {command!r}")
    for item in command:
        if not isinstance(item, str):
            raise ConfigError(f"sweep command: every item must be a string, not {item!r}")
        for macro in _MACRO.findall(item):
            if macro not in MACROS and not _ENVVAR.fullmatch(macro):
                raise ConfigError(f"sweep command: unknown macro {macro!r} (known: "
                                  f"{', '.join(MACROS)}, ${{envvar:NAME}})")
    return list(command)
