"""Other trackers' APIs over a unilog run, so existing training scripts log to every
unilog backend with only their import changed.

- :mod:`unilog.compat.neptune`: neptune-client 1.x's run and field API
  (``import unilog.compat.neptune as neptune``); see docs/compat-neptune.md.

Nothing here is imported by ``import unilog``, and no tracker's SDK is imported
by these modules: a backend's SDK is loaded only when the run opens that backend.
"""
