"""``run.watch(model)``: W&B's ``wandb.watch``, histograms of a torch model's
parameters and gradients every ``log_freq`` training steps.

A forward hook on each watched module counts its calls (one per step); on every
``log_freq``-th call it adds ``parameters/<name>`` histograms to the run's
current row, and a hook on each parameter adds ``gradients/<name>`` when the
backward pass of that step computes the gradient. Both go into the current row
(``commit=False``), so they land at the step of the ``log`` that follows, as in
W&B. A histogram copies its tensor on the device and is binned on the backends'
workers: no device sync on the training thread. ``log_graph`` is taken and
ignored (no unilog backend stores a model graph). Imports no torch: the model
brings it.
"""

from __future__ import annotations

from typing import Any

from unilog.errors import ConfigError

#: W&B's ``log`` values: what is logged.
WHAT = {"gradients": (False, True), "parameters": (True, False), "all": (True, True),
        None: (False, False)}


class Watch:
    """The hooks ``run.watch`` put on one model (removed by :meth:`remove`)."""

    def __init__(self, run: Any, model: Any, log: str | None, log_freq: int, prefix: str):
        self.run = run
        self.model = model
        self.log_freq = log_freq
        self.calls = 0
        self.parameters, self.gradients = WHAT[log]
        self.prefix = prefix
        self.handles = [model.register_forward_pre_hook(self._before_forward)]
        if self.gradients:
            for name, param in model.named_parameters():
                if param.requires_grad:
                    self.handles.append(param.register_hook(self._gradient_hook(name)))

    def _due(self) -> bool:
        """True in a step whose histograms are logged (the first, then every log_freq-th)."""
        return (self.calls - 1) % self.log_freq == 0

    def _before_forward(self, module: Any, inputs: Any) -> None:
        if not module.training:  # validation passes are not training steps
            return
        self.calls += 1
        if self.parameters and self._due():
            from unilog.media import Histogram

            self.run.log({f"{self.prefix}parameters/{name}": Histogram(param.detach())
                          for name, param in module.named_parameters()}, commit=False)

    def _gradient_hook(self, name: str) -> Any:
        def hook(grad: Any) -> None:
            if self.calls and self._due() and not self.run.finished:
                from unilog.media import Histogram

                self.run.log({f"{self.prefix}gradients/{name}": Histogram(grad.detach())},
                             commit=False)
        return hook

    def remove(self) -> None:
        """Take the hooks off the model."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


def check(log: Any, log_freq: Any) -> None:
    """A ConfigError naming the argument and its rule."""
    if log not in WHAT:
        raise ConfigError(f"watch(log=...) must be 'gradients', 'parameters', 'all' or None, "
                          f"not {log!r}")
    if not isinstance(log_freq, int) or isinstance(log_freq, bool) or log_freq < 1:
        raise ConfigError(f"watch(log_freq=...) must be an int >= 1 (steps between "
                          f"histograms), not {log_freq!r}")
