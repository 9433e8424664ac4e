"""Every exception and warning unilog raises, in one place.

The tree::

    UnilogError                      base of everything unilog raises
    ├── BackendNotFound (LookupError)   no backend of that name; lists the available ones
    ├── BackendNotInstalled (ImportError)  known backend, SDK missing; names the pip extra
    ├── BackendError                 a backend failed; carries ``.backend``
    │   └── KeyCollisionError        two keys collapse to one name (in a backend, or in one call)
    ├── StepError (ValueError)       a step that goes backwards, or is not an int >= 0
    ├── ConfigError (ValueError)     bad arguments to ``init`` or bad config/input
    │   └── InvalidValue (TypeError)  a value ``log`` cannot take; ``.key`` names it
    └── ArtifactError (ValueError)   bad artifact name, or a reference that resolves to nothing

    UnilogWarning (UserWarning)      one-time notices about the user's input
"""

from __future__ import annotations


class UnilogError(Exception):
    """Base class of every error unilog raises on purpose."""


class BackendNotFound(UnilogError, LookupError):
    """No backend is registered under the requested name."""

    def __init__(self, name: str, available: list[str]):
        self.name = name
        self.available = sorted(available)
        super().__init__(
            f"no unilog backend named {name!r}; available backends: "
            f"{', '.join(self.available) or '(none)'}"
        )


class BackendNotInstalled(UnilogError, ImportError):
    """The backend is known but the SDK it needs is not importable."""

    def __init__(self, backend: str, module: str, extra: str | None):
        self.backend = backend
        self.module = module
        self.extra = extra
        fix = f"pip install 'unilog-ml[{extra}]'" if extra else f"pip install {module}"
        super().__init__(
            f"the {backend!r} backend needs the {module!r} package, which is not "
            f"installed. Install it with: {fix}",
            name=module,
        )


class BackendError(UnilogError):
    """A backend raised; ``backend`` names it and ``__cause__`` is the original error."""

    def __init__(self, backend: str, message: str):
        self.backend = backend
        self.message = message
        super().__init__(f"[{backend}] {message}")

    def __reduce__(self):  # crosses the pipe from the logging process
        return (type(self), (self.backend, self.message))


class KeyCollisionError(BackendError):
    """Two distinct keys map to one name: under a backend's key rules (``backend``
    names it), or in one ``log`` call after flattening (``backend`` is None)."""

    def __init__(self, backend: str | None, message: str, key: str | None = None):
        self.key = key
        if backend is None:
            self.backend = None
            self.message = message
            UnilogError.__init__(self, message)
        else:
            super().__init__(backend, message)

    def __reduce__(self):
        return (type(self), (self.backend, self.message, self.key))


class StepError(UnilogError, ValueError):
    """A step went backwards, or is not an integer >= 0."""


class ConfigError(UnilogError, ValueError):
    """An argument, option or input value breaks one of unilog's rules."""


class InvalidValue(ConfigError, TypeError):
    """A value or key that cannot be logged; ``key`` names it, the message says the rule.

    A :class:`ConfigError`, and a ``TypeError`` too (what it was before 0.2).
    """

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"cannot log key {key!r}: {message}")


class ArtifactError(UnilogError, ValueError):
    """An artifact name is invalid or a reference resolves to no artifact."""


class UnilogWarning(UserWarning):
    """A one-time notice about input that unilog accepted but changed or kept local."""
