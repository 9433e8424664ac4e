"""The child side of :mod:`unilog._process_backend`: one backend, driven over two pipes.

``python -m unilog._process_child <read fd> <write fd>``. Each message is
``(method, args)``; each answer is ``("ok", result)`` or ``("error", exception)``.
The first message opens the backend; ``close`` is the last. EOF on the pipe
(the training process is gone) ends the child.
"""

from __future__ import annotations

import pickle
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError that names it."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        where = "".join(traceback.format_exception(exc)[-3:]).strip()
        return RuntimeError(f"{type(exc).__name__}: {exc} (in the backend's process: {where})")


def _open(spec: dict[str, Any]) -> tuple[Any, Any]:
    from unilog.plugins import get_backend_class

    backend = get_backend_class(spec["name"])(**spec["options"])
    return backend, backend.open(spec["run"])


def main(argv: list[str]) -> int:
    """Serve one backend until ``close`` or EOF."""
    receive = Connection(int(argv[0]), writable=False)
    send = Connection(int(argv[1]), readable=False)
    backend = None
    while True:
        try:
            method, args = receive.recv()
        except EOFError:
            return 0
        try:
            if method == "open":
                backend, result = _open(*args)
            else:
                result = getattr(backend, method)(*args)
            send.send(("ok", result))
        except BaseException as exc:  # the backend's failure is the parent's to report
            send.send(("error", _sendable(exc)))
        if method == "close":
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
