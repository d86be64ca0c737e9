"""``Parameter``: a NumPy array the optimizer updates, plus its accumulated gradient.

Mirrors ``torch.nn.Parameter``: ``p.data`` holds the values, ``p.grad`` is ``None`` until a
backward pass writes into it, and every backward pass *adds* to it (call ``zero_grad()``
between steps, exactly as in PyTorch).

Both attributes are always NumPy arrays: assigning a torch tensor (or a list) to ``p.data`` or
``p.grad`` stores a NumPy copy of it (a bfloat16 tensor, which NumPy cannot hold, as float32),
so ``p.grad = torch_param.grad; optimizer.step()`` works as it reads. An ndarray is stored as it is
(no copy: optimizers update ``p.data`` in place and rely on its identity).
"""

from __future__ import annotations

import numpy as np

from .._checks import to_numpy


def _as_numeric_array(value, what: str) -> np.ndarray:
    if type(value) is np.ndarray:  # the common case (every optimizer step): nothing to do
        return value
    arr = to_numpy(value, what)
    if hasattr(value, "detach"):
        arr = arr.copy()  # the tensor's memory stays the tensor's: updating p.data in place must not change it
    if arr.dtype == object or arr.dtype.kind in "USVb" or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{what}: expected an array of real numbers, got {type(value).__name__} of dtype {arr.dtype}")
    return arr


class Parameter:
    __slots__ = ("_data", "_grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self.data = data
        self._grad: np.ndarray | None = None
        self.requires_grad = requires_grad

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        self._data = _as_numeric_array(value, "Parameter.data")

    @property
    def grad(self) -> np.ndarray | None:
        return self._grad

    @grad.setter
    def grad(self, value) -> None:
        self._grad = None if value is None else _as_numeric_array(value, "Parameter.grad")

    # Shape-like conveniences, so a Parameter reads like a tensor in a notebook.
    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def size(self):
        return self._data.size

    def accumulate(self, grad: np.ndarray, fresh: bool = False) -> None:
        """Add ``grad`` into ``self.grad`` (allocating it on the first call), as autograd does.

        ``fresh=True``: ``grad`` is a new array that nothing else holds (a product the layer has just computed), so
        on the first call it becomes ``self.grad`` as it is, instead of being copied (a whole weight's worth of
        memory traffic per step).
        """
        if not self.requires_grad:
            return
        if self._grad is None:
            if (fresh and isinstance(grad, np.ndarray) and grad.dtype == self._data.dtype
                    and grad.shape == self._data.shape and grad.flags.c_contiguous and grad.flags.owndata):
                self._grad = grad
            else:
                self._grad = np.array(grad, dtype=self._data.dtype, copy=True)
        else:
            self._grad += grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none or self._grad is None:
            self._grad = None
        else:
            self._grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(shape={self._data.shape}, dtype={self._data.dtype})"
