"""Paths and values: the checks and conversions behind ``run[path]``'s methods
(field paths, ``sys/`` and ``parameters/``, steps, series values, config trees)."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

from unilog._normalize import normalize_value
from unilog.compat.neptune._errors import NotSupported
from unilog.compat.neptune.types import File, _is_image_source
from unilog.errors import ConfigError, InvalidValue, StepError
from unilog.media import Image
from unilog.tensors import PendingScalar

_PARAMETERS = "parameters"  # Neptune's namespace of hyperparameters: the config's root
_SYSTEM = "sys"  # Neptune's system namespace: the run's id, name, tags...


# -- paths ---------------------------------------------------------------------------


def _check_path(path: Any) -> str:
    if not isinstance(path, str):
        raise TypeError(f"a field path is a str like 'train/loss', not {path!r}")
    if not path:
        raise ConfigError("a field path is a non-empty str like 'train/loss'")
    return path


def _is_system(path: str) -> bool:
    return path.split("/")[0] == _SYSTEM


def _is_parameter(path: str) -> bool:
    return path == _PARAMETERS or path.startswith(_PARAMETERS + "/")


#: The ``sys/`` fields ``run[path] = x`` sets: the unilog run's attribute of each.
_DESCRIBED = {f"{_SYSTEM}/name": "name", f"{_SYSTEM}/description": "notes"}


def _check_writable(path: str) -> None:
    """``sys/`` holds what unilog sets; only ``sys/tags`` takes ``add``, and only
    ``sys/name``/``sys/description`` take ``=`` (checked before this)."""
    if _is_system(path):
        raise NotSupported(
            f"run[{path!r}]: the sys/ fields are the unilog run's own (id, name, "
            "description, tags), set by init_run(name=, description=, tags=); "
            "of them only sys/name and sys/description can be assigned "
            "(run['sys/name'] = 'x') and tags added (run['sys/tags'].add(...))")


def _system_field(run: Any, path: str) -> Any:
    fields = {"sys/id": run.id, "sys/name": run.name, "sys/tags": set(run.tags),
              "sys/description": run.notes or ""}
    if path not in fields:
        raise NotSupported(f"run[{path!r}].fetch(): of sys/, unilog.compat.neptune reads "
                           f"{', '.join(fields)}")
    return fields[path]


def _config_keys(path: str) -> list[str]:
    """The config keys of ``path``: ``parameters`` is the config's root."""
    keys = path.split("/")
    return keys[1:] if keys[0] == _PARAMETERS else keys


def _nest(keys: list[str], value: Any) -> Any:
    for key in reversed(keys):
        value = {key: value}
    return value


def _merge_into(tree: dict[str, Any], nested: Any, path: str) -> None:
    for key, item in nested.items():
        if isinstance(item, dict) and key in tree:
            if not isinstance(tree[key], dict):
                raise ConfigError(f"run[{path!r}]: {key!r} holds a value, so it cannot "
                                  "hold fields too")
            _merge_into(tree[key], item, path)
        else:
            tree[key] = item


def _lookup(tree: Any, keys: list[str]) -> tuple[bool, Any]:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return False, None
        tree = tree[key]
    return True, tree


# -- values --------------------------------------------------------------------------


def _check_step(path: str, step: Any) -> int:
    """A step as unilog's int; Neptune's float steps are taken when whole."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, bool) or not hasattr(step, "__index__"):
        raise StepError(f"run[{path!r}]: step must be a whole number >= 0 (unilog counts "
                        f"rows in integers), not {step!r}")
    step = step.__index__()
    if step < 0:
        raise StepError(f"run[{path!r}]: step must be a whole number >= 0, not {step}")
    return step


def _sequence(path: str, values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__iter__"):
        raise TypeError(f"run[{path!r}].{what} takes a list, not {type(values).__name__}")
    return list(values)


def _rows(path: str, values: Any) -> list[Any]:
    """What ``extend`` appends, one entry a row; a mapping of lists is read row by row."""
    if not isinstance(values, Mapping):
        return _sequence(path, values, "extend")
    columns = {key: _sequence(f"{path}/{key}", column, "extend")
               for key, column in values.items()}
    lengths = {len(column) for column in columns.values()}
    if len(lengths) > 1:
        raise ConfigError(f"run[{path!r}].extend: the lists of a mapping must have one "
                          f"length, not {sorted(lengths)}")
    count = lengths.pop() if lengths else 0
    return [{key: column[i] for key, column in columns.items()} for i in range(count)]


def _leaves(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    """``(path, value)`` for each leaf of ``value``: a mapping's items, recursively,
    at their paths under ``path``; anything else is one leaf at ``path``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _leaves(f"{path}/{key}", item)
    else:
        yield path, value


def _series_values(path: str, value: Any, description: str | None) -> dict[str, Any]:
    """``{key: value}`` for one append: a mapping appends to each of its paths."""
    return {key: _series_value(key, item, description) for key, item in _leaves(path, value)}


def _series_value(path: str, value: Any, description: str | None) -> Any:
    if isinstance(value, File):
        value = value._series_image(path)
    elif _is_image_source(value):
        value = Image(value)
    if value is None:
        raise InvalidValue(path, "None is not a value of a series")
    try:
        converted = normalize_value(value)
    except Exception as exc:  # whatever a value's own conversion raises
        raise InvalidValue(path, f"{exc}; a series takes numbers, strings and images "
                           "(File.as_image), one per append (extend takes a list)") from None
    if description is not None and isinstance(converted, Image):
        converted = copy.copy(converted)  # a File appended twice keeps each caption
        converted.caption = str(description)
    return converted


def _is_number(value: Any) -> bool:
    """A real number (numpy and one-element tensors too), and not a bool."""
    if isinstance(value, (bool, str, bytes)) or "bool" in str(getattr(value, "dtype", "")):
        return False
    if isinstance(value, (int, float)):
        return True
    if _elements(value) not in (None, 1):
        return False
    try:
        return isinstance(normalize_value(value), (int, float, PendingScalar))
    except Exception:  # not a number, whatever its conversion raised
        return False


def _elements(value: Any) -> int | None:
    """How many elements an array or tensor holds (None: not an array); metadata
    only, so a tensor on a device is not synced."""
    if not hasattr(value, "shape"):
        return None
    numel = getattr(value, "numel", None)  # torch: size is a method
    if callable(numel):
        return numel()
    size = getattr(value, "size", None)
    return size if isinstance(size, int) else None
