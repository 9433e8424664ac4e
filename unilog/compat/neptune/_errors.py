"""The error of ``unilog.compat.neptune``: the parts of Neptune's API unilog cannot provide."""

from __future__ import annotations

from unilog.errors import UnilogError


class NotSupported(UnilogError, NotImplementedError):
    """A part of Neptune's API that unilog cannot provide; the message says what to do."""
