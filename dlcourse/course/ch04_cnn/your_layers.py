"""Layers whose computation is the learner's own functions (chapter 4's build-it steps), for training with them.

Each subclasses the ``dlcourse.nn`` layer it replaces, so parameters, initialisation, ``state_dict`` and the
optimizers work unchanged; only ``forward``/``backward`` call the functions handed in:

- :class:`YourConv2d`: ``conv_forward(x, weight, bias, stride, padding)`` and
  ``conv_backward(x, weight, grad_out, stride, padding) -> (dx, dW, db)`` (the learner's im2col versions, or their
  loops: both have these signatures); caches the input x.
- :class:`YourMaxPool2d`: 2x2, stride 2; the forward pass is the library's, the backward pass is
  ``pool_backward(x, grad_out)``; caches x.
- :class:`YourBatchNorm2d`: the forward pass (and running statistics) is the library's; in training mode the
  backward pass is ``bn_backward(x2d, gamma, grad_out2d, eps) -> (dx, dgamma, dbeta)`` on the (N*H*W, C) view;
  caches x.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from ...nn import functional as F


def _square(pair, name):
    if pair[0] != pair[1]:
        raise ValueError(f"{name}: expected the same value for height and width, got {pair}")
    return pair[0]


class YourConv2d(nn.Conv2d):
    """``nn.Conv2d`` (square stride and padding, no dilation or groups) computed by the functions handed in."""

    def __init__(self, conv_forward, conv_backward, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dtype=np.float32):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, dtype=dtype)
        self._fwd, self._bwd = conv_forward, conv_backward
        self._s, self._p = _square(self.stride, "YourConv2d stride"), _square(self.padding, "YourConv2d padding")
        self._x = None

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"YourConv2d: expected input of shape (N, {self.in_channels}, H, W), got {x.shape}")
        self._x = x
        return self.end_forward(np.asarray(self._fwd(x, self.weight.data, self.bias.data, self._s, self._p),
                                           dtype=x.dtype))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        dx, dW, db = self._bwd(self._x, self.weight.data, grad_out, self._s, self._p)
        self.weight.accumulate(np.asarray(dW, dtype=self.weight.data.dtype))
        self.bias.accumulate(np.asarray(db, dtype=self.bias.data.dtype))
        return np.asarray(dx, dtype=self._x.dtype)


class YourMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d(2)`` whose backward pass is the function handed in (H and W must be even)."""

    def __init__(self, pool_backward):
        super().__init__(2)
        self._bwd = pool_backward
        self._x = None

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 4 or x.shape[2] % 2 or x.shape[3] % 2:
            raise ValueError(f"YourMaxPool2d: expected input of shape (N, C, H, W) with H and W even, got {x.shape}")
        self._x = x
        return self.end_forward(F.max_pool2d(x, 2))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return np.asarray(self._bwd(self._x, grad_out), dtype=self._x.dtype)


class YourBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode backward pass is the function handed in."""

    def __init__(self, bn_backward, num_features, **kwargs):
        super().__init__(num_features, **kwargs)
        self._bwd = bn_backward
        self._x = None

    def forward(self, x):
        self._x = np.asarray(x)
        return super().forward(x)

    def backward(self, grad_out, retain_graph: bool = False):
        if not self.training:  # the library's backward pass, choke point included
            return super().backward(grad_out, retain_graph)
        grad_out = self.begin_backward(grad_out, retain_graph)
        C = self.num_features
        to_rows = lambda a: np.asarray(a).transpose(0, 2, 3, 1).reshape(-1, C)  # noqa: E731  (N*H*W, C)
        dx, dgamma, dbeta = self._bwd(to_rows(self._x), self.weight.data, to_rows(grad_out), self.eps)
        self.weight.accumulate(np.asarray(dgamma, dtype=self.weight.data.dtype))
        self.bias.accumulate(np.asarray(dbeta, dtype=self.bias.data.dtype))
        N, _, H, W = self._x.shape
        return np.asarray(dx, dtype=self._x.dtype).reshape(N, H, W, C).transpose(0, 3, 1, 2)
