"""``LayerNorm``: normalise each sample over its last dimensions (``torch.nn.LayerNorm``).

For x (*, *normalized_shape), over the last k = len(normalized_shape) axes of each sample:

    mu = mean(x),  var = mean((x - mu)^2)  (biased),  x_hat = (x - mu) / sqrt(var + eps),
    y = weight * x_hat + bias

Unlike BatchNorm the statistics are per sample, so training and eval behave the same and the
batch size does not matter. Backward (m = number of normalised values, g_hat = g * weight):

    dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / sqrt(var + eps)
    dweight = sum over the leading axes of g * x_hat,   dbias = sum of g

Caches: x_hat and rstd = 1 / sqrt(var + eps).
"""

from __future__ import annotations

import numbers

import numpy as np

from .._checks import as_array, check_finite
from .module import Module
from .parameter import Parameter


def _axes(x, normalized_shape, where):
    k = len(normalized_shape)
    if x.ndim < k or tuple(x.shape[x.ndim - k:]) != tuple(normalized_shape):
        raise ValueError(f"{where}: expected input of shape (*, {', '.join(map(str, normalized_shape))}) "
                         f"ending in normalized_shape={tuple(normalized_shape)}, got shape {x.shape}")
    return tuple(range(x.ndim - k, x.ndim))


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5, return_cache=False):
    """y = weight * (x - mean) / sqrt(var + eps) + bias over the last len(normalized_shape) axes.

    With ``return_cache=True`` returns (y, (x_hat, rstd)) for :func:`layer_norm_backward`.
    """
    x = as_array(x, "layer_norm input")
    axes = _axes(x, tuple(normalized_shape), "layer_norm")
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = np.mean(xc * xc, axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = xc * rstd
    y = x_hat if weight is None else x_hat * weight
    if bias is not None:
        y = y + bias
    return (y, (x_hat, rstd)) if return_cache else y


def layer_norm_backward(grad_out, x_hat, rstd, normalized_shape, weight=None):
    """Return (dx, dweight, dbias) for :func:`layer_norm` (dweight/dbias summed over the leading axes)."""
    g = np.asarray(grad_out)
    k = len(normalized_shape)
    axes = tuple(range(g.ndim - k, g.ndim))
    lead = tuple(range(g.ndim - k))
    g_hat = g if weight is None else g * weight
    dx = (g_hat - g_hat.mean(axis=axes, keepdims=True)
          - x_hat * (g_hat * x_hat).mean(axis=axes, keepdims=True)) * rstd
    return dx, (g * x_hat).sum(axis=lead), g.sum(axis=lead)


class LayerNorm(Module):
    """Layer normalisation over ``normalized_shape`` (an int or a tuple: the input's last dimensions).

    Parameters (with ``elementwise_affine``): ``weight`` (ones) and ``bias`` (zeros, unless
    ``bias=False``), both of shape normalized_shape, as in PyTorch. No buffers.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True, bias: bool = True,
                 dtype=np.float32):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (int(normalized_shape),)
        normalized_shape = tuple(int(n) for n in normalized_shape)
        if not normalized_shape or any(n <= 0 for n in normalized_shape):
            raise ValueError(f"LayerNorm: expected normalized_shape of positive sizes, got {normalized_shape}")
        self.normalized_shape, self.eps, self.elementwise_affine = normalized_shape, eps, elementwise_affine
        self.weight = Parameter(np.ones(normalized_shape, dtype=dtype)) if elementwise_affine else None
        self.bias = Parameter(np.zeros(normalized_shape, dtype=dtype)) if elementwise_affine and bias else None
        self._cache = None

    def forward(self, input):
        x = as_array(input, "LayerNorm input")
        check_finite(x, "LayerNorm input")
        y, self._cache = layer_norm(x, self.normalized_shape, None if self.weight is None else self.weight.data,
                                    None if self.bias is None else self.bias.data, self.eps, return_cache=True)
        return self.end_forward(y)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        x_hat, rstd = self._cache
        weight = None if self.weight is None else self.weight.data
        dx, dw, db = layer_norm_backward(grad_out, x_hat, rstd, self.normalized_shape, weight)
        if self.weight is not None:
            self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(db)
        return dx

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
