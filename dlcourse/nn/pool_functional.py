"""Max and average pooling as plain functions, with their backward passes.

x (N, C, H, W) -> y (N, C, OH, OW), each channel pooled on its own over kh x kw windows
(stride defaults to the kernel size, as in ``torch.nn.functional.max_pool2d``):

    max:  y[n, c, p, q] = max_{i, j} x_pad[n, c, p*s + i*d, q*s + j*d]       (pad with -inf)
    avg:  y[n, c, p, q] = (1 / divisor) sum_{i, j} x_pad[n, c, p*s + i, q*s + j]   (pad with 0)

Backward: max pooling sends each upstream gradient to the one input that was the maximum
(the first one in row-major window order on ties, as PyTorch); average pooling spreads it
evenly, g / divisor, over the window.

How it is fast: like ``conv2d``, the loops run over the kh*kw kernel offsets only, never
over pixels. Each offset is one strided slice of the input, combined with ``np.maximum``
into the output (in place); the arrays are laid out channels-last (``x.transpose(0, 2, 3,
1)``, a free view for the output of ``conv2d``) so the innermost loop runs over contiguous
channels. The backward pass multiplies the upstream gradient by an equality mask per offset
instead of scattering with argmax indices.
"""

from __future__ import annotations

import numpy as np

from .conv_functional import _check_positive, _offsets, _output_shape, _pair


def _pool_args(x, kernel_size, stride, padding, dilation, who):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{who}: expected input of shape (N, C, H, W), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{who}: expected a non-empty batch, got input shape {x.shape}")
    kernel = _pair(kernel_size, f"{who} kernel_size")
    stride = kernel if stride is None or (not np.isscalar(stride) and len(stride) == 0) else _pair(stride, who)
    padding, dilation = _pair(padding, f"{who} padding"), _pair(dilation, f"{who} dilation")
    _check_positive(kernel, "kernel_size", who)
    _check_positive(stride, "stride", who)
    _check_positive(dilation, "dilation", who)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2 or min(padding) < 0:
        raise ValueError(f"{who}: padding should be between 0 and half the kernel size, got padding={padding} "
                         f"for kernel_size={kernel}")
    return x, kernel, stride, (padding[0], padding[0], padding[1], padding[1]), dilation


class PoolCache:
    __slots__ = ("x_nhwc", "out_nhwc", "x_shape", "out_hw", "offsets", "divisor", "covers_exactly")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _covers_exactly(offsets, H, W):
    """True when the windows tile the input: every input position is in exactly one window."""
    seen = np.zeros((H, W), dtype=np.int64)
    for _, _, _, _, rows, cols in offsets:
        seen[rows, cols] += 1
    return bool((seen == 1).all())


# ---------------------------------------------------------------------------------------
# Max pooling
# ---------------------------------------------------------------------------------------


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """``max_pool2d`` that also returns the cache its backward pass needs: (y, cache)."""
    x, kernel, stride, pad4, dilation = _pool_args(x, kernel_size, stride, padding, dilation, "max_pool2d")
    N, C, H, W = x.shape
    OH, OW = _output_shape(H, W, kernel, stride, pad4, dilation, "max_pool2d", ceil_mode)
    offsets = _offsets(kernel, stride, pad4, dilation, (H, W), (OH, OW))
    x_nhwc = x.transpose(0, 2, 3, 1)
    out = None
    for _, _, r, c, rows, cs in offsets:
        if r.stop - r.start == OH and c.stop - c.start == OW:
            out = np.array(x_nhwc[:, rows, cs])  # an offset every window sees: start from it
            break
    if out is None:
        out = np.full((N, OH, OW, C), -np.inf, dtype=x.dtype)
    for _, _, r, c, rows, cs in offsets:
        if r.stop > r.start and c.stop > c.start:
            region = out[:, r, c]
            np.maximum(region, x_nhwc[:, rows, cs], out=region)
    cache = PoolCache(x_nhwc=x_nhwc, out_nhwc=out, x_shape=x.shape, out_hw=(OH, OW), offsets=offsets,
                      divisor=None, covers_exactly=_covers_exactly(offsets, H, W))
    return out.transpose(0, 3, 1, 2), cache


def max_pool2d_backward_cached(grad_out, cache: PoolCache):
    """dx from a max-pooling cache: each g goes to the first maximum of its window."""
    N, C, H, W = cache.x_shape
    OH, OW = cache.out_hw
    grad_out = np.asarray(grad_out)
    if grad_out.shape != (N, C, OH, OW):
        raise ValueError(f"max_pool2d_backward: expected grad_out of shape {(N, C, OH, OW)} (the output's), "
                         f"got {grad_out.shape}")
    g = grad_out.transpose(0, 2, 3, 1)
    x_nhwc, out = cache.x_nhwc, cache.out_nhwc
    dtype = np.result_type(g.dtype, x_nhwc.dtype)
    exact = cache.covers_exactly
    # Tiling windows (kernel == stride, no padding): every input gets exactly one write, no zero fill.
    dx = np.empty((N, H, W, C), dtype=dtype) if exact else np.zeros((N, H, W, C), dtype=dtype)
    claimed = None  # outputs whose gradient has already gone to an earlier (first) maximum
    active = [o for o in cache.offsets if o[2].stop > o[2].start and o[3].stop > o[3].start]
    for k, (_, _, r, c, rows, cs) in enumerate(active):
        if claimed is None and r.stop - r.start == OH and c.stop - c.start == OW:
            mask = x_nhwc[:, rows, cs] == out
            claimed = mask.copy() if k < len(active) - 1 else None
        elif claimed is None:
            claimed = np.zeros(out.shape, dtype=bool)
            mask = x_nhwc[:, rows, cs] == out[:, r, c]
            claimed[:, r, c] = mask
        else:
            mask = x_nhwc[:, rows, cs] == out[:, r, c]
            seen = claimed[:, r, c]
            mask &= ~seen
            seen |= mask
        if exact:
            np.multiply(g[:, r, c], mask, out=dx[:, rows, cs])
        else:
            dx[:, rows, cs] += g[:, r, c] * mask
    return dx.transpose(0, 3, 1, 2)


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling, ``torch.nn.functional.max_pool2d``: x (N, C, H, W) -> (N, C, OH, OW)."""
    return max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)[0]


def max_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """dL/dx of ``max_pool2d`` (recomputes the forward pass to find each window's maximum)."""
    _, cache = max_pool2d_forward(x, kernel_size, stride, padding, dilation, ceil_mode)
    return max_pool2d_backward_cached(grad_out, cache)


# ---------------------------------------------------------------------------------------
# Average pooling
# ---------------------------------------------------------------------------------------


def _avg_divisor(H, W, OH, OW, kernel, stride, pad4, count_include_pad, divisor_override):
    """(OH, OW, 1) divisors, PyTorch's rule: the window clipped to the padded input, or to the input."""
    if divisor_override is not None:
        return np.full((OH, OW, 1), float(divisor_override))
    sizes = []
    for o, k, s, p, n in ((OH, kernel[0], stride[0], pad4[0], H), (OW, kernel[1], stride[1], pad4[2], W)):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, n + p)
        if count_include_pad:
            sizes.append(end - start)
        else:
            sizes.append(np.minimum(end, n) - np.maximum(start, 0))
    return (sizes[0][:, None] * sizes[1][None, :])[:, :, None].astype(np.float64)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                       divisor_override=None):
    """``avg_pool2d`` that also returns the cache its backward pass needs: (y, cache)."""
    x, kernel, stride, pad4, _ = _pool_args(x, kernel_size, stride, padding, 1, "avg_pool2d")
    N, C, H, W = x.shape
    OH, OW = _output_shape(H, W, kernel, stride, pad4, (1, 1), "avg_pool2d", ceil_mode)
    offsets = _offsets(kernel, stride, pad4, (1, 1), (H, W), (OH, OW))
    x_nhwc = x.transpose(0, 2, 3, 1)
    dtype = np.result_type(x.dtype, np.float32)
    out = np.zeros((N, OH, OW, C), dtype=dtype)
    for _, _, r, c, rows, cs in offsets:
        if r.stop > r.start and c.stop > c.start:
            out[:, r, c] += x_nhwc[:, rows, cs]
    divisor = _avg_divisor(H, W, OH, OW, kernel, stride, pad4, count_include_pad, divisor_override)
    inv = (1.0 / divisor).astype(dtype)
    out *= inv
    cache = PoolCache(x_nhwc=None, out_nhwc=None, x_shape=x.shape, out_hw=(OH, OW), offsets=offsets,
                      divisor=inv, covers_exactly=_covers_exactly(offsets, H, W))
    return out.transpose(0, 3, 1, 2), cache


def avg_pool2d_backward_cached(grad_out, cache: PoolCache):
    N, C, H, W = cache.x_shape
    OH, OW = cache.out_hw
    grad_out = np.asarray(grad_out)
    if grad_out.shape != (N, C, OH, OW):
        raise ValueError(f"avg_pool2d_backward: expected grad_out of shape {(N, C, OH, OW)} (the output's), "
                         f"got {grad_out.shape}")
    g = grad_out.transpose(0, 2, 3, 1) * cache.divisor.astype(grad_out.dtype, copy=False)
    exact = cache.covers_exactly
    dx = np.empty((N, H, W, C), dtype=g.dtype) if exact else np.zeros((N, H, W, C), dtype=g.dtype)
    for _, _, r, c, rows, cs in cache.offsets:
        if r.stop > r.start and c.stop > c.start:
            if exact:
                dx[:, rows, cs] = g[:, r, c]
            else:
                dx[:, rows, cs] += g[:, r, c]
    return dx.transpose(0, 3, 1, 2)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, ``torch.nn.functional.avg_pool2d``: x (N, C, H, W) -> (N, C, OH, OW)."""
    return avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)[0]


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """dL/dx of ``avg_pool2d``: every input gets g / divisor from each window it belongs to."""
    _, cache = avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return avg_pool2d_backward_cached(grad_out, cache)
