"""``Parameter``: a NumPy array the optimizer updates, plus its accumulated gradient.

Mirrors ``torch.nn.Parameter``: ``p.data`` holds the values, ``p.grad`` is ``None`` until a
backward pass writes into it, and every backward pass *adds* to it (call ``zero_grad()``
between steps, exactly as in PyTorch).
"""

from __future__ import annotations

import numpy as np


class Parameter:
    __slots__ = ("data", "grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self.data = np.asarray(data)
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad

    # Shape-like conveniences, so a Parameter reads like a tensor in a notebook.
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def size(self):
        return self.data.size

    def accumulate(self, grad: np.ndarray) -> None:
        """Add ``grad`` into ``self.grad`` (allocating it on the first call), as autograd does."""
        if not self.requires_grad:
            return
        if self.grad is None:
            self.grad = np.array(grad, dtype=self.data.dtype, copy=True)
        else:
            self.grad += grad

    def zero_grad(self, set_to_none: bool = True) -> None:
        if set_to_none or self.grad is None:
            self.grad = None
        else:
            self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.data.shape}, dtype={self.data.dtype})"
