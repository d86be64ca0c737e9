"""``Flatten``: reshape (N, C, H, W) feature maps into (N, C*H*W) rows for a Linear layer."""

from __future__ import annotations

import numpy as np

from .._checks import as_array
from .module import Module


class Flatten(Module):
    """Flattens dimensions ``start_dim``..``end_dim`` into one, in C order, as ``torch.nn.Flatten``.

    (N, C, H, W) -> (N, C*H*W) by default, the order PyTorch uses, so a Linear layer's weight moves
    between the two libraries unchanged. Caches the input shape; backward reshapes the gradient back.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim
        self._shape = None

    def forward(self, x):
        x = as_array(x, "Flatten input")
        start = self.start_dim % x.ndim if x.ndim else 0
        end = self.end_dim % x.ndim if x.ndim else 0
        if x.ndim == 0 or not -x.ndim <= self.start_dim < x.ndim or not -x.ndim <= self.end_dim < x.ndim \
                or start > end:
            raise ValueError(f"Flatten: start_dim={self.start_dim}, end_dim={self.end_dim} do not fit an input "
                             f"of shape {x.shape}")
        self._shape = x.shape
        new_shape = x.shape[:start] + (int(np.prod(x.shape[start:end + 1])),) + x.shape[end + 1:]
        return self.end_forward(x.reshape(new_shape))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return grad_out.reshape(self._shape)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
