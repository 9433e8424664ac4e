"""Tensor handling that never forces a device sync on the caller's thread.

torch is never imported here: a value is recognised as a tensor by its type's
module, so ``import unilog`` stays free of torch. CPU tensors are read at once
(reading them cannot sync a device). Tensors on an accelerator are copied to
pinned host memory with ``non_blocking=True`` and a CUDA event is recorded after
the copy; the worker thread that needs the value waits on that event, so the
training loop never does.
"""

from __future__ import annotations

import sys
from typing import Any


def is_tensor(value: Any) -> bool:
    """True for a ``torch.Tensor`` (or subclass), without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


class HostCopy:
    """A tensor's value on its way to host memory; ``numpy()`` waits for it.

    Created on the caller's thread, resolved on a worker thread.
    """

    __slots__ = ("_tensor", "_event", "_array")

    def __init__(self, tensor: Any):
        tensor = tensor.detach()
        self._event = None
        self._array = None
        if tensor.device.type == "cpu":
            # A CPU tensor may be modified in place after log() returns: copy it.
            self._tensor = tensor.clone()
            return
        # non_blocking to CPU allocates pinned memory, so the copy is truly
        # asynchronous; the event marks when it has landed.
        self._tensor = tensor.to("cpu", non_blocking=True)
        if tensor.device.type == "cuda":
            import torch

            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(tensor.device))

    def numpy(self):
        """The value as a numpy array (waits for the device copy; worker side)."""
        if self._array is None:
            if self._event is not None:
                self._event.synchronize()
            tensor = self._tensor
            if tensor.dtype.is_floating_point and tensor.dtype not in _NUMPY_FLOATS():
                tensor = tensor.float()  # bfloat16/float8 have no numpy dtype
            self._array = tensor.numpy()
            self._tensor = None
        return self._array


def _NUMPY_FLOATS():
    import torch

    return (torch.float16, torch.float32, torch.float64)


class PendingScalar:
    """A one-element tensor on an accelerator, read on the worker side."""

    __slots__ = ("_copy", "_value")

    def __init__(self, tensor: Any):
        self._copy = HostCopy(tensor.reshape(()))
        self._value = None

    @classmethod
    def failed(cls, error: str) -> PendingScalar:
        """A value whose device copy failed in another process: ``resolve`` raises ``error``."""
        pending = cls.__new__(cls)
        pending._copy = _FailedCopy(error)
        pending._value = None
        return pending

    def resolve(self) -> float | int:
        """The Python number; waits for the asynchronous copy to land."""
        if self._value is None:
            value = self._copy.numpy().item()
            self._value = int(value) if isinstance(value, bool) else value
        return self._value

    def __repr__(self) -> str:
        return f"PendingScalar({self._value if self._value is not None else '...'})"


class _FailedCopy:
    """The copy of a tensor that could not be read where it was logged."""

    def __init__(self, error: str):
        self.error = error

    def numpy(self):
        raise RuntimeError(f"reading the tensor failed: {self.error}")


def scalar_from_tensor(tensor: Any) -> float | int | PendingScalar:
    """A one-element tensor as a number, or a PendingScalar when it lives on a device.

    Raises TypeError for tensors with more than one element.
    """
    if tensor.numel() != 1:
        raise TypeError(f"a tensor of shape {tuple(tensor.shape)} is not a scalar")
    if tensor.dtype.is_complex:  # dtype is metadata: checking it never syncs
        raise TypeError(f"a tensor of dtype {tensor.dtype} is not a real number")
    if tensor.device.type == "cpu":
        return tensor.item()  # no device involved: reading it costs ~1 µs
    if tensor.device.type == "meta":
        raise TypeError("a tensor on the meta device has no value")
    return PendingScalar(tensor)
