"""Neptune's ``neptune.utils``: ``stringify_unsupported``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

__all__ = ["stringify_unsupported"]


def stringify_unsupported(value: Any, expand: bool = False) -> Any:
    """Neptune's ``neptune.utils.stringify_unsupported``: in a mapping (recursively),
    every value that is not a str, bool, int, float, datetime or None becomes its
    ``str``, lists and tuples too; with ``expand``, a list, tuple or set becomes a
    mapping ``{"0": first, "1": second, ...}`` instead. unilog's config would store
    unsupported values as their ``str`` anyway; this keeps scripts that call it working."""
    if isinstance(value, Mapping):
        return {str(key): stringify_unsupported(item, expand) for key, item in value.items()}
    if expand and isinstance(value, (list, tuple, set)):
        return {str(i): stringify_unsupported(item, True) for i, item in enumerate(value)}
    if value is None or isinstance(value, (str, bool, int, float, datetime)):
        return value
    return str(value)
