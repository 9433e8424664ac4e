"""Turning what a user passes to ``run.log`` into a flat ``{key: value}`` row.

Runs on the caller's thread for every ``log`` call, so the common case (a few
``float``/``int`` values) takes a fast path of plain type checks. The rules,
decided once here and documented in docs/logging.md:

- nested mappings flatten to ``"a/b"``; keys must be non-empty ``str``;
  nesting deeper than ``MAX_DEPTH`` is refused;
- ``int``/``float`` pass through, NaN and inf included;
- ``bool`` becomes ``0``/``1``;
- ``None`` means "no value at this step": the key is left out;
- ``str`` becomes :class:`unilog.Text`;
- numpy scalars and one-element arrays become Python numbers;
- one-element torch tensors: read at once on the CPU, otherwise copied to the
  host asynchronously and read on the worker side (never a device sync here);
- :class:`unilog.media.Media` values pass through;
- anything else (lists, multi-element arrays, arbitrary objects), and any
  value whose conversion raises (``Decimal("sNaN")``, a ``__float__`` that
  raises, a tensor on the meta device), is an :class:`InvalidValue` naming the
  key and the rule;
- two spellings of one key in one call (``{"val/acc": 1, "val": {"acc": 2}}``)
  are a :class:`KeyCollisionError`: the first value is kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from unilog.errors import InvalidValue, KeyCollisionError
from unilog.tensors import PendingScalar, is_tensor, scalar_from_tensor

__all__ = ["InvalidValue", "Issues", "flatten", "normalize_value"]

MAX_DEPTH = 32

_NUMBER_TYPES = (int, float)


_INFINITIES = (float("inf"), float("-inf"))


class Issues:
    """What ``flatten`` found: invalid entries (left out) and keys holding NaN or inf (kept)."""

    __slots__ = ("errors", "nonfinite")

    def __init__(self) -> None:
        self.errors: list[InvalidValue] = []
        self.nonfinite: list[str] = []


def flatten(data: Mapping[str, Any], issues: Issues) -> dict[str, Any]:
    """Flatten and normalise ``data``; problems are collected in ``issues``.

    Collecting instead of raising lets the caller decide the policy (raise
    before anything is queued, or warn and keep the valid keys).
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"run.log() takes a mapping of key -> value, not {type(data).__name__}")
    out: dict[str, Any] = {}
    _flatten_into(data, "", 0, out, issues)
    return out


def _all_media(values: list | tuple) -> bool:
    """True for a non-empty list of media values (images, histograms...)."""
    from unilog.media import Media

    return bool(values) and all(isinstance(v, Media) for v in values)


def _flatten_into(data: Mapping, prefix: str, depth: int, out: dict, issues: Issues) -> None:
    errors = issues.errors
    for key, value in data.items():
        if type(key) is not str or not key:
            errors.append(InvalidValue(prefix + repr(key), "keys must be non-empty strings"))
            continue
        full = prefix + key
        kind = type(value)
        if (kind is float or kind is int) and full in out:
            errors.append(_collision(full))
        elif kind is float:
            out[full] = value
            if value != value or value in _INFINITIES:
                issues.nonfinite.append(full)
        elif kind is int:
            out[full] = value
        elif isinstance(value, Mapping) or ((kind is list or kind is tuple)
                                            and _all_media(value)):
            if not isinstance(value, Mapping):
                # W&B's and SwanLab's gallery, {"examples": [Image, ...]}: key/0, key/1...
                value = {str(i): item for i, item in enumerate(value)}
            if depth + 1 >= MAX_DEPTH:
                errors.append(
                    InvalidValue(full, f"nesting deeper than {MAX_DEPTH} levels is refused")
                )
            else:
                _flatten_into(value, full + "/", depth + 1, out, issues)
        else:
            try:
                converted = normalize_value(value)
            except Exception as exc:  # whatever a value's own conversion raises
                errors.append(InvalidValue(full, _rule(exc)))
                continue
            if converted is not None and full in out:
                errors.append(_collision(full))
            elif converted is not None:
                out[full] = converted
                if type(converted) is float and (converted != converted
                                                 or converted in _INFINITIES):
                    issues.nonfinite.append(full)


def _collision(key: str) -> KeyCollisionError:
    return KeyCollisionError(None, f"key {key!r} is given twice in one log call (once "
                             f"nested, once spelled with '/'): the first value is kept, "
                             f"the later one left out", key=key)


def _rule(exc: Exception) -> str:
    """The rule a value broke, from the error its conversion raised."""
    if isinstance(exc, TypeError):
        return str(exc)
    return f"converting it to a number raised {type(exc).__name__}: {exc}"


def normalize_value(value: Any) -> Any:
    """One leaf value as a number, a PendingScalar, a Media, or None (left out).

    Raises TypeError with the rule when the value cannot be logged.
    """
    from unilog.media import Media, Table, Text

    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, _NUMBER_TYPES):
        if type(value) in _NUMBER_TYPES:
            return value
        # Subclasses (numpy.float64, IntEnum, ...) become plain numbers: the
        # dispatcher and backends test ``type(v) is float``/``int``.
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, (Media, PendingScalar)):
        # A table's rows can still grow (add_data) while the backends write it.
        return value._logged_copy() if isinstance(value, Table) else value
    if isinstance(value, str):
        return Text(value)
    if is_tensor(value):
        return _tensor_scalar(value)
    module = type(value).__module__
    if module == "numpy":
        return _numpy_scalar(value)
    if hasattr(value, "__float__") and not hasattr(value, "__len__"):
        return float(value)  # Decimal, Fraction and other number-like types
    raise TypeError(
        f"values must be numbers, strings, one-element tensors/arrays or unilog media "
        f"(Image, Histogram, Text, Table), not {type(value).__name__}"
    )


def _tensor_scalar(value: Any) -> Any:
    scalar = scalar_from_tensor(value)
    if isinstance(scalar, bool):
        return int(scalar)
    if isinstance(scalar, complex):
        raise TypeError(f"a tensor of dtype {value.dtype} is not a real number")
    return scalar


def _numpy_scalar(value: Any) -> Any:
    size = getattr(value, "size", 1)
    if size != 1:
        raise TypeError(
            f"an array of shape {getattr(value, 'shape', '?')} is not a scalar; "
            "log unilog.Histogram(array) for a distribution"
        )
    item = value.item()
    if isinstance(item, bool):
        return int(item)
    if not isinstance(item, _NUMBER_TYPES):
        raise TypeError(f"numpy value of dtype {value.dtype} is not a number")
    return item
