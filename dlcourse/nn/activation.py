"""Activation layers (``torch.nn.ReLU`` and friends). Each caches what its derivative needs:

==========  =============================  ================================
layer       f(x)                           f'(x), from the cache
==========  =============================  ================================
Sigmoid     1 / (1 + e^-x)                 s (1 - s), s the cached output
Tanh        tanh x                         1 - t^2, t the cached output
ReLU        max(x, 0)                      1[x > 0], x the cached input
LeakyReLU   x if x > 0 else a x            1 or a, x the cached input
GELU        x Phi(x)                       Phi(x) + x phi(x), x cached
Softmax     e^x_i / sum_j e^x_j            s (g - <g, s>), s cached
==========  =============================  ================================
"""

from __future__ import annotations

import warnings

import numpy as np

from .._checks import as_array
from . import functional as F
from .module import Module


class _Activation(Module):
    def __init__(self):
        super().__init__()
        self._cache = None  # what f'(x) needs: the input or the output (table above)


class Sigmoid(_Activation):
    def forward(self, input):
        self._cache = F.sigmoid(as_array(input, "Sigmoid input"))
        return self.end_forward(self._cache)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return F.sigmoid_backward(grad_out, self._cache)


class Tanh(_Activation):
    def forward(self, input):
        self._cache = F.tanh(as_array(input, "Tanh input"))
        return self.end_forward(self._cache)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return F.tanh_backward(grad_out, self._cache)


class ReLU(_Activation):
    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = inplace  # accepted for PyTorch compatibility; the output is always a new array

    def forward(self, input):
        self._cache = as_array(input, "ReLU input")
        return self.end_forward(F.relu(self._cache))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return F.relu_backward(grad_out, self._cache)


class LeakyReLU(_Activation):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace  # accepted for PyTorch compatibility; the output is always a new array

    def forward(self, input):
        self._cache = as_array(input, "LeakyReLU input")
        return self.end_forward(F.leaky_relu(self._cache, self.negative_slope))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return F.leaky_relu_backward(grad_out, self._cache, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(_Activation):
    """Exact GELU (erf form) by default; ``approximate='tanh'`` as in PyTorch."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        self._cache = as_array(input, "GELU input")
        return self.end_forward(F.gelu(self._cache, self.approximate))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return F.gelu_backward(grad_out, self._cache, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(_Activation):
    """Softmax along ``dim``. ``dim=None`` (torch's default) follows torch's deprecated implicit choice, on
    purpose: dim 0 for 0-, 1- and 3-D input, else dim 1, with torch's warning to pass ``dim`` explicitly
    (for a (N, L, C) batch that is dim 0, the batch: rarely what is meant). Caches the output s."""

    def __init__(self, dim: int | None = None):
        super().__init__()
        self.dim = dim

    def _resolve_dim(self, ndim):
        if self.dim is not None:
            return self.dim
        warnings.warn("Softmax: implicit dimension choice (dim=None) is deprecated in PyTorch; pass dim "
                      "explicitly, e.g. Softmax(dim=-1)", UserWarning, stacklevel=3)
        return 0 if ndim in (0, 1, 3) else 1

    def forward(self, input):
        x = as_array(input, "Softmax input")
        dim = self._resolve_dim(x.ndim)
        if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
            raise ValueError(f"Softmax: dim={dim} is out of range for an input of shape {x.shape}")
        self._dim = dim
        self._cache = F.softmax(x.reshape(-1), 0).reshape(()) if x.ndim == 0 else F.softmax(x, dim)
        return self.end_forward(self._cache)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        out = self._cache
        if out.ndim == 0:
            return np.zeros_like(grad_out, dtype=out.dtype)  # softmax of one value is 1: no gradient
        return F.softmax_backward(grad_out, out, self._dim)

    def extra_repr(self):
        return f"dim={self.dim}"
