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
into the output (in place). The work follows the input's memory layout: for the
channels-last arrays ``conv2d`` returns, the innermost loop runs over contiguous channels
(the output is channels-last too); a plain C-ordered (N, C, H, W) array is pooled in that
order. The backward pass multiplies the upstream gradient by an equality mask per offset
instead of scattering with argmax indices.
"""

from __future__ import annotations

import numpy as np

from ._batch_threads import over_batch
from .conv_functional import is_channels_last
from .geometry import check_positive, kernel_offsets, output_shape, pair


def _pool_args(x, kernel_size, stride, padding, dilation, who):
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{who}: expected input of shape (N, C, H, W), got shape {x.shape}")
    if x.shape[0] == 0:
        raise ValueError(f"{who}: expected a non-empty batch, got input shape {x.shape}")
    kernel = pair(kernel_size, f"{who} kernel_size")
    stride = kernel if stride is None or (not np.isscalar(stride) and len(stride) == 0) else pair(stride, who)
    padding, dilation = pair(padding, f"{who} padding"), pair(dilation, f"{who} dilation")
    check_positive(kernel, "kernel_size", who)
    check_positive(stride, "stride", who)
    check_positive(dilation, "dilation", who)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2 or min(padding) < 0:
        raise ValueError(f"{who}: padding should be between 0 and half the kernel size, got padding={padding} "
                         f"for kernel_size={kernel}")
    return x, kernel, stride, (padding[0], padding[0], padding[1], padding[1]), dilation


class _Layout:
    """Index (N, C, H, W) data in its memory order: channels-last works on x.transpose(0, 2, 3, 1)."""

    def __init__(self, x):
        self.channels_last = is_channels_last(x)

    def view(self, a):
        """The working view of an (N, C, H, W) array."""
        return a.transpose(0, 2, 3, 1) if self.channels_last else a

    def shape(self, N, C, H, W):
        return (N, H, W, C) if self.channels_last else (N, C, H, W)

    def at(self, rows, cols):
        """Index of the spatial window (rows, cols) in the working view."""
        return (slice(None), rows, cols) if self.channels_last else (slice(None), slice(None), rows, cols)

    def back(self, a):
        """From the working view back to (N, C, H, W)."""
        return a.transpose(0, 3, 1, 2) if self.channels_last else a


class PoolCache:
    """What a pooling forward keeps for its backward: the layout, the input's shape (N, C, H, W), the
    output's (OH, OW), the window offsets and whether the windows tile the input (``covers_exactly``);
    max pooling adds its working input and output, average pooling the reciprocal divisors."""

    __slots__ = ("x_work", "out_work", "layout", "x_shape", "out_hw", "offsets", "divisor", "covers_exactly")

    def __init__(self, layout, x_shape, out_hw, offsets, *, x_work=None, out_work=None, divisor=None):
        self.layout, self.x_shape, self.out_hw, self.offsets = layout, x_shape, out_hw, offsets
        self.x_work, self.out_work, self.divisor = x_work, out_work, divisor
        self.covers_exactly = _covers_exactly(offsets, *x_shape[2:])

    def checked_grad_out(self, grad_out, who):
        """grad_out as an array; ValueError unless it has the output's shape (N, C, OH, OW)."""
        grad_out = np.asarray(grad_out)
        expected = self.x_shape[:2] + tuple(self.out_hw)
        if grad_out.shape != expected:
            raise ValueError(f"{who}: expected grad_out of shape {expected} (the output's), got {grad_out.shape}")
        return grad_out


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
    OH, OW = output_shape(H, W, kernel, stride, pad4, dilation, "max_pool2d", ceil_mode)
    offsets = kernel_offsets(kernel, stride, pad4, dilation, (H, W), (OH, OW))
    lay = _Layout(x)
    xw = lay.view(x)
    # an offset every window sees (there is one unless the padding is wide): start from it, not from -inf
    start = next((o for o in offsets if o.covers((OH, OW))), None)
    out = np.empty(lay.shape(N, C, OH, OW), dtype=x.dtype)
    if start is None:
        out.fill(-np.inf)

    def pool(b):  # the samples b (a slice of the batch; several run at once on large batches)
        xb, ob = xw[b], out[b]
        if start is not None:
            np.copyto(ob, xb[lay.at(start.in_rows, start.in_cols)])
        for o in offsets:
            if not o.empty and o is not start:
                region = ob[lay.at(o.out_rows, o.out_cols)]
                np.maximum(region, xb[lay.at(o.in_rows, o.in_cols)], out=region)

    over_batch(pool, N, x.nbytes)
    cache = PoolCache(lay, x.shape, (OH, OW), offsets, x_work=xw, out_work=out)
    return lay.back(out), cache


def max_pool2d_backward_cached(grad_out, cache: PoolCache):
    """dx from a max-pooling cache: each g goes to the first maximum of its window."""
    grad_out = cache.checked_grad_out(grad_out, "max_pool2d_backward")
    N, C, H, W = cache.x_shape
    OH, OW = cache.out_hw
    lay, xw, out = cache.layout, cache.x_work, cache.out_work
    g = lay.view(grad_out)
    dtype = np.result_type(g.dtype, xw.dtype)
    exact = cache.covers_exactly
    # Tiling windows (kernel == stride, no padding): every input gets exactly one write, no zero fill.
    dx = (np.empty if exact else np.zeros)(lay.shape(N, C, H, W), dtype=dtype)
    active = [o for o in cache.offsets if o[2].stop > o[2].start and o[3].stop > o[3].start]
    if exact and all(o[2].stop - o[2].start == OH and o[3].stop - o[3].start == OW for o in active):
        # The common case (e.g. MaxPool2d(2) on even sizes): every offset is one full strided slice.
        # ``rest`` is the gradient no earlier offset has taken; the last offset takes what is left.
        def back(b):  # the samples b (a slice of the batch; several run at once on large batches)
            gb, xb, ob, dxb = g[b], xw[b], out[b], dx[b]
            rest = None
            for k, (_, _, _, _, rows, cs) in enumerate(active):
                dst = dxb[lay.at(rows, cs)]
                if k == len(active) - 1:
                    np.copyto(dst, gb if rest is None else rest)
                    break
                mask = xb[lay.at(rows, cs)] == ob
                if rest is None:
                    np.multiply(gb, mask, out=dst)
                    rest = gb - dst
                else:
                    np.multiply(rest, mask, out=dst)
                    rest -= dst

        over_batch(back, N, dx.nbytes)
        return lay.back(dx)
    claimed = None  # outputs whose gradient has already gone to an earlier (first) maximum
    for k, (_, _, r, c, rows, cs) in enumerate(active):
        src, dst = lay.at(r, c), lay.at(rows, cs)
        if claimed is None and r.stop - r.start == OH and c.stop - c.start == OW:
            mask = xw[dst] == out
            claimed = mask.copy() if k < len(active) - 1 else None
        elif claimed is None:
            claimed = np.zeros(out.shape, dtype=bool)
            mask = xw[dst] == out[src]
            claimed[src] = mask
        else:
            mask = xw[dst] == out[src]
            seen = claimed[src]
            mask &= ~seen
            seen |= mask
        if exact:
            np.multiply(g[src], mask, out=dx[dst])
        else:
            dx[dst] += g[src] * mask
    return lay.back(dx)


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
    OH, OW = output_shape(H, W, kernel, stride, pad4, (1, 1), "avg_pool2d", ceil_mode)
    offsets = kernel_offsets(kernel, stride, pad4, (1, 1), (H, W), (OH, OW))
    lay = _Layout(x)
    xw = lay.view(x)
    dtype = np.result_type(x.dtype, np.float32)
    out = np.zeros(lay.shape(N, C, OH, OW), dtype=dtype)
    for _, _, r, c, rows, cs in offsets:
        if r.stop > r.start and c.stop > c.start:
            out[lay.at(r, c)] += xw[lay.at(rows, cs)]
    divisor = _avg_divisor(H, W, OH, OW, kernel, stride, pad4, count_include_pad, divisor_override)
    inv = (1.0 / divisor).astype(dtype)
    if not lay.channels_last:
        inv = inv[..., 0]  # (OH, OW) broadcasts against (N, C, OH, OW)
    out *= inv
    cache = PoolCache(lay, x.shape, (OH, OW), offsets, divisor=inv)
    return lay.back(out), cache


def avg_pool2d_backward_cached(grad_out, cache: PoolCache):
    """dx from an average-pooling cache: each g, times its window's 1/divisor, goes to every input of the window."""
    grad_out = cache.checked_grad_out(grad_out, "avg_pool2d_backward")
    N, C, H, W = cache.x_shape
    lay = cache.layout
    g = lay.view(grad_out) * cache.divisor.astype(grad_out.dtype, copy=False)
    exact = cache.covers_exactly
    dx = (np.empty if exact else np.zeros)(lay.shape(N, C, H, W), dtype=g.dtype)
    for _, _, r, c, rows, cs in cache.offsets:
        if r.stop > r.start and c.stop > c.start:
            if exact:
                dx[lay.at(rows, cs)] = g[lay.at(r, c)]
            else:
                dx[lay.at(rows, cs)] += g[lay.at(r, c)]
    return lay.back(dx)


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Average pooling, ``torch.nn.functional.avg_pool2d``: x (N, C, H, W) -> (N, C, OH, OW)."""
    return avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)[0]


def avg_pool2d_backward(grad_out, x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                        divisor_override=None):
    """dL/dx of ``avg_pool2d``: every input gets g / divisor from each window it belongs to."""
    _, cache = avg_pool2d_forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)
    return avg_pool2d_backward_cached(grad_out, cache)
