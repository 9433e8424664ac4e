"""``run.config``: conversion of the user's config, redaction of secrets.

Accepted inputs: ``dict`` (nested), ``argparse.Namespace``, a dataclass
instance, an OmegaConf ``DictConfig`` (resolved; omegaconf is never imported
unless the value is one), or None.

Secrets: a key is redacted before any backend (the local record included)
sees it when it contains ``secret``, ``password``, ``passwd``,
``credential`` or ``api_key``/``apikey`` anywhere (any case), or one of its
words ends in ``token``. Words are split on ``_``, ``-``, ``.``, spaces,
camelCase and digits, so ``hf_token``, ``authToken``, ``ACCESSTOKEN``,
``db_password1`` and ``clientSecret`` are redacted but ``max_tokens`` and
``tokenizer`` (ordinary hyperparameters) are not. The user's own process
still reads the real value from ``run.config``. The command line recorded in
the manifest is redacted by the same rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Callable

from unilog.errors import ConfigError
from unilog.tensors import is_tensor

REDACTED = "***REDACTED***"

# Substrings that mark a secret wherever they appear in a key.
_SECRET_PARTS = ("secret", "password", "passwd", "credential", "apikey", "api_key", "api-key")
# Split into words on separators, camelCase and letter/digit boundaries.
_WORD_SPLIT = re.compile(r"[_\-.\s]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])")


def is_secret_key(key: str) -> bool:
    """True when ``key`` looks like it holds a secret (see the module docstring)."""
    text = str(key)
    lowered = text.lower()
    if any(part in lowered for part in _SECRET_PARTS):
        return True
    words = [w.lower() for w in _WORD_SPLIT.split(text) if w]
    # "token" only as a word or a word's end (hf_token, authToken, ACCESSTOKEN),
    # so max_tokens and tokenizer, ordinary hyperparameters, stay visible.
    if any(w.endswith("token") for w in words):
        return True
    return any(a == "api" and b == "key" for a, b in zip(words, words[1:]))


def redact_argv(argv: list[str]) -> list[str]:
    """A command line with the values of secret-looking options replaced:
    ``--api_key X``, ``--api-key=X`` and ``api_key=X`` (Hydra overrides) alike."""
    out, hide_next = [], False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        name, eq, _ = arg.partition("=")
        if is_secret_key(name.lstrip("-+~")):
            if eq:
                out.append(f"{name}={REDACTED}")
                continue
            hide_next = arg.startswith("-")
        out.append(arg)
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """The user's config as a plain nested dict (not yet redacted)."""
    if config is None:
        return {}
    module = type(config).__module__
    if module.startswith("omegaconf"):
        from omegaconf import OmegaConf

        container = OmegaConf.to_container(config, resolve=True)
        if not isinstance(container, dict):
            raise ConfigError("an OmegaConf config must be a DictConfig, not a ListConfig")
        return container
    if isinstance(config, Mapping):
        return {str(k): v for k, v in config.items()}
    if type(config).__name__ == "Namespace" and hasattr(config, "__dict__"):
        return dict(vars(config))
    import dataclasses

    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return dataclasses.asdict(config)
    raise ConfigError(
        f"config must be a dict, argparse.Namespace, dataclass instance or OmegaConf "
        f"DictConfig, not {type(config).__name__}"
    )


def to_plain(value: Any) -> Any:
    """A JSON-able copy of a config value: nested dicts/lists of str, numbers, bools, None.

    Paths, enums, numpy scalars, tuples and sets are converted; other objects
    become their ``str``; nested OmegaConf/dataclass/Namespace values are expanded.
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping) or type(value).__name__ in ("Namespace", "DictConfig"):
        return {str(k): to_plain(v) for k, v in to_dict(value).items()}
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_plain(dataclasses.asdict(value))
    if isinstance(value, (list, tuple, set, frozenset)) or type(value).__name__ == "ListConfig":
        return [to_plain(v) for v in value]
    if is_tensor(value):
        return _tensor_to_plain(value)
    if hasattr(value, "item") and getattr(value, "size", None) == 1:
        return to_plain(value.item())  # numpy scalars
    import enum

    if isinstance(value, enum.Enum):
        return to_plain(value.value)
    return str(value)


def _tensor_to_plain(tensor: Any) -> Any:
    """A CPU tensor's value; for a device tensor, a description: reading its value
    would sync the device on the caller's thread."""
    if tensor.device.type == "cpu":
        return tensor.detach().tolist()
    return f"tensor(shape={tuple(tensor.shape)}, dtype={tensor.dtype}, device={tensor.device})"


def flatten_config(config: dict[str, Any], prefix: str = "", sep: str = "/") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a/b": 1}``: the separator of logged keys, for
    backends that store config as flat parameters (``sep="."``: a sweep's dotted
    parameter names); lists and other values are leaves."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}{sep}", sep))
        else:
            out[f"{prefix}{key}"] = value
    return out


def redact(value: Any) -> Any:
    """A copy of a plain config with every secret-looking key's value replaced."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret_key(k) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


class Config:
    """The run's config: ``cfg.lr``, ``cfg["lr"]``, ``cfg.get("lr", 0.1)``, ``cfg.update({...})``.

    Nested mappings read back as ``Config`` views (``cfg.optim.lr``). Every
    change is sent, redacted, to the run's backends. Iteration and ``len``
    behave like the underlying dict.
    """

    __slots__ = ("_data", "_on_change")

    def __init__(self, data: dict[str, Any] | None = None,
                 on_change: Callable[[dict[str, Any]], None] | None = None):
        object.__setattr__(self, "_data", data if data is not None else {})
        object.__setattr__(self, "_on_change", on_change)

    def _wrap(self, value: Any) -> Any:
        if isinstance(value, dict):
            return Config(value, self._on_change)
        return value

    def __getattr__(self, name: str) -> Any:
        try:
            return self._wrap(self._data[name])
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._wrap(self._data[key])

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when it is missing."""
        return self._wrap(self._data[key]) if key in self._data else default

    def set(self, key: str, value: Any) -> None:
        """``config[key] = value``, as SwanLab's ``config.set``."""
        self.update({key: value})

    def __setattr__(self, name: str, value: Any) -> None:
        self.update({name: value})

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def update(self, values: Any = None, *, allow_val_change: bool | None = None,
               **kwargs: Any) -> None:
        """Merge ``values`` (any accepted config type) and keywords, then send the change.

        ``allow_val_change`` is wandb's keyword, taken and ignored: a unilog config
        always takes a changed value (every backend gets the new one)."""
        new = to_dict(values)
        new.update(kwargs)
        _merge(self._data, {str(k): v for k, v in new.items()})
        if self._on_change is not None:
            self._on_change(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys(self):
        """The top-level keys."""
        return self._data.keys()

    def items(self):
        """The top-level (key, value) pairs."""
        return self._data.items()

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-able copy (not redacted: it is the user's own config)."""
        return to_plain(self._data)

    def __repr__(self) -> str:
        return f"Config({redact(to_plain(self._data))!r})"


def _merge(target: dict, new: dict) -> None:
    for key, value in new.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], to_dict(value))
        else:
            target[key] = value
