"""``Dropout``: inverted dropout (``torch.nn.Dropout``), the identity in eval mode."""

from __future__ import annotations

import numpy as np

from .._checks import as_array
from ..random import get_rng
from .module import Module


class Dropout(Module):
    """In training, zero each element with probability ``p`` and scale the survivors by 1 / (1 - p),
    so the expected output equals the input and eval mode needs no rescaling (inverted dropout).

    Shapes: any -> the same. Masks come from ``dlcourse.random.get_rng()``, so
    ``dlcourse.manual_seed`` makes them reproducible (they are not PyTorch's masks).
    Caches: the scaled mask m (0 or 1/(1-p)); backward returns g * m. In eval mode, or with
    p = 0, forward returns x itself and backward returns g.
    """

    def __init__(self, p: float = 0.5, inplace: bool = False):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: expected a probability 0 <= p <= 1, got p={p}")
        self.p = float(p)
        self.inplace = inplace  # accepted for PyTorch compatibility; the output is always a new array
        self._mask = None

    def forward(self, x):
        x = as_array(x, "Dropout input")
        if not self.training or self.p == 0.0:
            self._mask = None
            return self.end_forward(x)
        dtype = np.result_type(x.dtype, np.float32)
        if self.p == 1.0:
            self._mask = np.zeros(x.shape, dtype=dtype)
        else:
            keep = get_rng().random(x.shape, dtype=np.float32) >= self.p
            self._mask = keep * dtype.type(1.0 / (1.0 - self.p))
        return self.end_forward(x * self._mask)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return grad_out if self._mask is None else grad_out * self._mask

    def extra_repr(self):
        return f"p={self.p}"
