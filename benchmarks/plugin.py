"""Do-nothing and stalled backends for the benchmarks, registered through the plugin API."""

from __future__ import annotations

import threading

import unilog
from unilog.backend import MEDIA_KINDS, Backend, Capabilities

STALL = threading.Event()


class Nothing(Backend):
    """Takes every record and does nothing: what remains is unilog's own cost."""

    name = "bench_nothing"
    capabilities = Capabilities(media=MEDIA_KINDS, out_of_order_steps=True)
    flush_interval = None


class Stalled(Backend):
    """Never returns from its first log call until STALL is set: a backend that hangs."""

    name = "bench_stalled"
    flush_interval = None

    def log_rows(self, rows):
        STALL.wait()


@unilog.hookimpl
def unilog_register_backends(register):
    """Register the benchmark backends."""
    register(Nothing)
    register(Stalled)


def install() -> None:
    """Register this module as a plugin (once)."""
    from unilog import plugins

    if "bench_nothing" not in plugins.available_backends():
        plugins.register_plugin(__import__(__name__, fromlist=["_"]), name="unilog-benchmarks")
