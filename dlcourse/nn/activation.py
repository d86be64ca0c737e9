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

from .._checks import as_array
from . import functional as F
from .module import Module


class _Activation(Module):
    def __init__(self):
        super().__init__()
        self._cache = None

    def _check_cache(self):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return self._cache


class Sigmoid(_Activation):
    def forward(self, x):
        self._cache = F.sigmoid(as_array(x, "Sigmoid input"))
        return self._cache

    def backward(self, grad_out):
        return F.sigmoid_backward(grad_out, self._check_cache())


class Tanh(_Activation):
    def forward(self, x):
        self._cache = F.tanh(as_array(x, "Tanh input"))
        return self._cache

    def backward(self, grad_out):
        return F.tanh_backward(grad_out, self._check_cache())


class ReLU(_Activation):
    def forward(self, x):
        self._cache = as_array(x, "ReLU input")
        return F.relu(self._cache)

    def backward(self, grad_out):
        return F.relu_backward(grad_out, self._check_cache())


class LeakyReLU(_Activation):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        self._cache = as_array(x, "LeakyReLU input")
        return F.leaky_relu(self._cache, self.negative_slope)

    def backward(self, grad_out):
        return F.leaky_relu_backward(grad_out, self._check_cache(), self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class GELU(_Activation):
    """Exact GELU (erf form) by default; ``approximate='tanh'`` as in PyTorch."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        self._cache = as_array(x, "GELU input")
        return F.gelu(self._cache, self.approximate)

    def backward(self, grad_out):
        return F.gelu_backward(grad_out, self._check_cache(), self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Softmax(_Activation):
    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        x = as_array(x, "Softmax input")
        if not -x.ndim <= self.dim < x.ndim:
            raise ValueError(f"Softmax: dim={self.dim} is out of range for an input of shape {x.shape}")
        self._cache = F.softmax(x, self.dim)
        return self._cache

    def backward(self, grad_out):
        return F.softmax_backward(grad_out, self._check_cache(), self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
