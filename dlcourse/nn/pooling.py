"""Pooling layers (``torch.nn.MaxPool2d``, ``torch.nn.AvgPool2d``), built on ``pool_functional``.

Shapes for the family: x (N, C, H, W) or unbatched (C, H, W) -> (N, C, OH, OW), with
OH = floor((H + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1 (``ceil`` with
``ceil_mode``) and ``stride`` defaulting to ``kernel_size``. No parameters.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_array, check_finite
from .geometry import pair
from .module import Module
from .pool_functional import (
    avg_pool2d_backward_cached,
    avg_pool2d_forward,
    max_pool2d_backward_cached,
    max_pool2d_forward,
)


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel_size = pair(kernel_size, f"{type(self).__name__} kernel_size")
        self.stride = self.kernel_size if stride is None else pair(stride, f"{type(self).__name__} stride")
        self.padding = pair(padding, f"{type(self).__name__} padding")
        self.ceil_mode = bool(ceil_mode)
        if min(self.kernel_size + self.stride) <= 0:
            raise ValueError(f"{type(self).__name__}: expected positive kernel_size and stride, got "
                             f"{self.kernel_size} and {self.stride}")
        self._cache = None
        self._unbatched = False

    def _prepare(self, x):
        x = as_array(x, f"{type(self).__name__} input")
        if x.ndim not in (3, 4):
            raise ValueError(f"{type(self).__name__}: expected input of shape (N, C, H, W) or (C, H, W), "
                             f"got shape {x.shape}")
        check_finite(x, f"{type(self).__name__} input")
        self._unbatched = x.ndim == 3
        return x[None] if self._unbatched else x

    def _finish(self, y):
        return y[0] if self._unbatched else y

    def _batched(self, grad_out):
        return grad_out[None] if self._unbatched else grad_out

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over each kh x kw window. Caches the input and the output: on the backward pass each
    upstream gradient goes to the first input of its window equal to the maximum."""

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False, ceil_mode=False):
        # torch's positional order: MaxPool2d(3, 2, 1, 1, True) sets return_indices, as in PyTorch
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.dilation = pair(dilation, "MaxPool2d dilation")
        self.return_indices = bool(return_indices)

    def forward(self, input):
        x = self._prepare(input)
        y, self._cache = max_pool2d_forward(x, self.kernel_size, self.stride, self.padding,
                                            self.dilation, self.ceil_mode)
        if not self.return_indices:
            return self.end_forward(self._finish(y))
        indices = _argmax_indices(x, y.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation)
        return self.end_forward((self._finish(y), self._finish(indices)))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return self._finish(max_pool2d_backward_cached(self._batched(grad_out), self._cache))

    def extra_repr(self):
        return super().extra_repr() + (f", dilation={self.dilation}" if self.dilation != (1, 1) else "")


class AvgPool2d(_Pool2d):
    """Mean over each window (zero padding counted unless ``count_include_pad=False``).
    Caches only the geometry: the backward pass spreads g / divisor evenly over each window."""

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                 divisor_override=None):
        super().__init__(kernel_size, stride, padding, ceil_mode)
        self.count_include_pad = count_include_pad
        if divisor_override is not None and divisor_override <= 0:
            raise ValueError(f"AvgPool2d: divisor_override must be positive, got {divisor_override}")
        self.divisor_override = divisor_override

    def forward(self, x):
        y, self._cache = avg_pool2d_forward(self._prepare(x), self.kernel_size, self.stride, self.padding,
                                            self.ceil_mode, self.count_include_pad, self.divisor_override)
        return self.end_forward(self._finish(y))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return self._finish(avg_pool2d_backward_cached(self._batched(grad_out), self._cache))


def _argmax_indices(x, out_hw, kernel, stride, padding, dilation):
    """For ``return_indices``: the flat index h * W + w in the input of each window's first maximum (torch's)."""
    N, C, H, W = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    OH, OW = out_hw
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    extra_h = max(0, (OH - 1) * sh + span_h - (H + 2 * ph))  # ceil_mode windows may run past the padding
    extra_w = max(0, (OW - 1) * sw + span_w - (W + 2 * pw))
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)), constant_values=-np.inf)
    win = np.lib.stride_tricks.sliding_window_view(xp, (span_h, span_w), axis=(2, 3))
    win = win[:, :, :(OH - 1) * sh + 1:sh, :(OW - 1) * sw + 1:sw, ::dh, ::dw].reshape(N, C, OH, OW, kh * kw)
    k = win.argmax(axis=-1)
    rows = np.arange(OH)[:, None] * sh - ph + (k // kw) * dh
    cols = np.arange(OW)[None, :] * sw - pw + (k % kw) * dw
    return (rows * W + cols).astype(np.int64)
