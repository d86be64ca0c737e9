"""``Conv2d``: the 2-D convolution layer (``torch.nn.Conv2d``), built on ``conv_functional``."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array, check_finite
from . import init
from .conv_functional import conv2d_backward_cached, conv2d_forward
from .geometry import pair, resolve_padding
from .module import Module
from .parameter import Parameter


class Conv2d(Module):
    """2-D convolution over (N, C, H, W) images, with PyTorch's arguments and defaults.

    Shapes: x (N, in_channels, H, W) or unbatched (in_channels, H, W) -> y (N, out_channels,
    OH, OW) with OH = floor((H + 2*padding - dilation*(kh - 1) - 1) / stride) + 1.
    ``weight`` (out_channels, in_channels / groups, kh, kw) and ``bias`` (out_channels,),
    initialised like PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels/groups*kh*kw.
    ``padding`` is an int, a pair, 'valid' or 'same'; only ``padding_mode='zeros'``.
    Caches: the im2col matrix of the input (one row per output pixel), from which backward
    gets dW = cols^T g, db and dx = col2im(g W) without touching x again (dx is skipped, and
    backward returns None, with ``needs_input_grad = False``; see ``Module``).
    Output arrays are channels-last views (see ``conv_functional``); they behave as (N, C, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros", dtype=np.float32):
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"Conv2d: expected positive channel counts, got in_channels={in_channels}, "
                             f"out_channels={out_channels}")
        if groups <= 0 or in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d: groups={groups} must divide in_channels={in_channels} and "
                             f"out_channels={out_channels}")
        if padding_mode != "zeros":
            raise ValueError(f"Conv2d: only padding_mode='zeros' is implemented, got {padding_mode!r}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair(kernel_size, "Conv2d kernel_size")
        self.stride, self.dilation = pair(stride, "Conv2d stride"), pair(dilation, "Conv2d dilation")
        if min(self.kernel_size + self.stride + self.dilation) <= 0:
            raise ValueError(f"Conv2d: expected positive kernel_size, stride and dilation, got "
                             f"{self.kernel_size}, {self.stride}, {self.dilation}")
        self.padding = padding if isinstance(padding, str) else pair(padding, "Conv2d padding")
        resolve_padding(self.padding, self.kernel_size, self.dilation, self.stride, "Conv2d")  # validate now
        self.padding_mode = padding_mode
        self.weight = Parameter(np.zeros((out_channels, in_channels // groups, *self.kernel_size), dtype=dtype))
        self.bias = Parameter(np.zeros(out_channels, dtype=dtype)) if bias else None
        self.reset_parameters()
        self._cache = None
        self._unbatched = False

    def reset_parameters(self) -> None:
        """Weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in_channels / groups * kh * kw (as
        torch), from the package's generator through ``nn.init``."""
        bound = 1.0 / math.sqrt(self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        x = as_array(x, "Conv2d input")
        if x.ndim not in (3, 4):
            raise ValueError(f"Conv2d: expected input of shape (N, {self.in_channels}, H, W) or "
                             f"({self.in_channels}, H, W), got shape {x.shape}")
        self._unbatched = x.ndim == 3
        if self._unbatched:
            x = x[None]
        if x.shape[1] != self.in_channels:
            raise ValueError(f"Conv2d: expected input with in_channels={self.in_channels} channels, shape "
                             f"(N, {self.in_channels}, H, W), got shape {x.shape} with {x.shape[1]} channels")
        check_finite(x, "Conv2d input")
        y, self._cache = conv2d_forward(x, self.weight.data, None if self.bias is None else self.bias.data,
                                        self.stride, self.padding, self.dilation, self.groups)
        return self.end_forward(y[0] if self._unbatched else y)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        dx, dW, db = conv2d_backward_cached(grad_out[None] if self._unbatched else grad_out, self._cache,
                                            need_dx=self.needs_input_grad)
        self.weight.accumulate(dW)
        if self.bias is not None:
            self.bias.accumulate(db)
        if dx is None:  # needs_input_grad is False: the input is data (see Module)
            return None
        return dx[0] if self._unbatched else dx

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding not in ((0, 0), "valid"):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
