"""Convolution as plain functions: ``conv2d``, its backward pass, ``im2col`` / ``col2im``.

Notation (as in ``torch.nn.functional.conv2d``): input x (N, C, H, W), weight
(O, C / groups, kh, kw), bias (O,), output y (N, O, OH, OW) with

    y[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] * x_pad[n, c, p*s + i*d, q*s + j*d]
    OH = floor((H + pad_top + pad_bottom - d*(kh - 1) - 1) / s) + 1        (same for OW)

How it is fast (the layout trick PyTorch calls "channels last"): the arrays are *logically*
NCHW, as PyTorch's, but ``conv2d`` computes in an N, H, W, C memory layout and returns
``y_nhwc.transpose(0, 3, 1, 2)``, a view. The next layer transposes it back for free, so a
stack of convolutions, ReLUs and poolings never copies to change layout. One convolution is

1. ``cols`` (N*OH*OW, kh*kw*C + 1): one row per output pixel holding the receptive field it
   sees, filled by kh*kw strided copies (one per kernel offset; the padding is written into
   cols as zeros, the input is not padded) or, for stride 1 along W, by kh copies of whole
   kernel rows; plus a column of ones;
2. one matrix product ``cols @ W_mat`` with W_mat (kh*kw*C + 1, O) whose last row is the
   bias, so the bias costs no extra pass (this is "im2col", the matrix product does the work).

The backward pass reuses the cached ``cols``: with g (N*OH*OW, O) the upstream gradient,
``dW_mat = cols^T g`` (its last row is db) and ``dcols = g W^T``, which ``col2im`` adds back
onto the input positions (kh*kw strided adds). The last step is itself a convolution of g
with the flipped kernel: the gradient of a convolution is a convolution. (With groups == 1 the
same sums run one kernel offset at a time, ``g W_ij^T`` added where that offset read: a block the
size of dx instead of the tall dcols; see ``_input_grad_by_offset``.)

With more than one BLAS thread, the copies of step 1 and the adds of the backward pass are split over
the batch on that many threads too (``_batch_threads``), so the whole layer scales with threads, not
only its matrix products.

``im2col`` / ``col2im`` below use ``torch.nn.functional.unfold`` / ``fold``'s layout
(N, C*kh*kw, L) for teaching and checking; ``conv2d`` uses the channels-last layout above.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ._batch_threads import over_batch
from .geometry import check_positive, conv_output_size, kernel_offsets, output_shape, pair, resolve_padding, valid_range

__all__ = ["ConvCache", "col2im", "conv2d", "conv2d_backward", "conv2d_backward_cached", "conv2d_forward",
           "conv_output_size", "im2col", "is_channels_last"]

def _zero_outside(arr, r, c):
    """Zero arr[:, rows outside r, :] and arr[:, r, cols outside c] (arr is (N, OH, OW, ...))."""
    arr[:, :r.start] = 0
    arr[:, r.stop:] = 0
    arr[:, r, :c.start] = 0
    arr[:, r, c.stop:] = 0


def is_channels_last(x) -> bool:
    """True when (N, C, H, W) array ``x`` is stored N, H, W, C in memory (channels vary fastest)."""
    return x.ndim == 4 and x.strides[1] <= x.strides[3] and x.strides[1] <= x.strides[2]


# ---------------------------------------------------------------------------------------
# Convolution (channels-last im2col + one matrix product)
# ---------------------------------------------------------------------------------------


class ConvCache:
    """What ``conv2d_forward`` keeps for the backward pass: the im2col matrix and the geometry."""

    __slots__ = ("cols", "w_mat", "x_shape", "out_hw", "kernel", "stride", "pad4", "dilation", "groups",
                 "has_bias")

    def __init__(self, **kw):
        for k, v in kw.items():
            setattr(self, k, v)


def _check_conv_args(x, weight, bias, stride, padding, dilation, groups, who="conv2d"):
    if x.ndim != 4:
        raise ValueError(f"{who}: expected input of shape (N, C, H, W), got shape {x.shape}")
    if weight.ndim != 4:
        raise ValueError(f"{who}: expected weight of shape (out_channels, in_channels / groups, kh, kw), "
                         f"got shape {weight.shape}")
    stride, dilation = pair(stride, f"{who} stride"), pair(dilation, f"{who} dilation")
    check_positive(stride, "stride", who)
    check_positive(dilation, "dilation", who)
    groups = int(groups)
    O, Cg, kh, kw = weight.shape
    if groups <= 0 or O % groups:
        raise ValueError(f"{who}: expected groups > 0 dividing out_channels={O}, got groups={groups}")
    if x.shape[1] != Cg * groups:
        raise ValueError(f"{who}: expected input with {Cg * groups} channels (weight {weight.shape}, "
                         f"groups={groups}), got input of shape {x.shape} with {x.shape[1]} channels")
    if x.shape[0] == 0:
        raise ValueError(f"{who}: expected a non-empty batch, got input shape {x.shape}")
    if bias is not None and np.shape(bias) != (O,):
        raise ValueError(f"{who}: expected bias of shape ({O},), got {np.shape(bias)}")
    pad4 = resolve_padding(padding, (kh, kw), dilation, stride, who)
    return stride, pad4, dilation, groups


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """``conv2d`` that also returns the :class:`ConvCache` its backward pass needs: (y, cache)."""
    x, weight = np.asarray(x), np.asarray(weight)
    stride, pad4, dilation, groups = _check_conv_args(x, weight, bias, stride, padding, dilation, groups)
    dtype = np.result_type(x.dtype, weight.dtype, np.float32)
    N, C, H, W = x.shape
    O, Cg, kh, kw = weight.shape
    G, Og = groups, O // groups
    OH, OW = output_shape(H, W, (kh, kw), stride, pad4, dilation, "conv2d")
    Kg = kh * kw * Cg
    fold_bias = bias is not None and G == 1

    # 1. im2col, channels last: cols[n, p, q, g, i, j, c] = x[n, g*Cg + c, p*s + i*d - pad, ...]
    width = G * Kg + (1 if fold_bias else 0)
    cols = np.empty((N, OH, OW, width), dtype=dtype)
    view = cols[..., :G * Kg].reshape(N, OH, OW, G, kh, kw, Cg)
    x_nhwc = x.transpose(0, 2, 3, 1)
    relayout = C > 1 and not is_channels_last(x)  # one transposing copy makes the copies below contiguous
    row_trick = G == 1 and C > 1 and stride[1] == 1 and dilation[1] == 1
    offsets = None if row_trick else kernel_offsets((kh, kw), stride, pad4, dilation, (H, W), (OH, OW))

    def fill(b):  # the samples b of cols (a slice of the batch; several run at once on large batches)
        if row_trick:
            # Row trick: with stride 1 along W, the kw*C values of one kernel row are contiguous in the input, so
            # kh copies of (kw*C)-long runs fill cols instead of kh*kw copies of C-long runs. Only W is padded
            # (the transposing copy, when needed, goes straight into the padded buffer).
            # (With C == 1 the per-offset copies below already run along whole image rows, which is faster.)
            pl, pr = pad4[2], pad4[3]
            xb = x_nhwc[b]
            if pl or pr:
                xw = np.empty((xb.shape[0], H, W + pl + pr, C), dtype=dtype)
                xw[:, :, :pl] = 0
                xw[:, :, pl + W:] = 0
                xw[:, :, pl:pl + W] = xb
            else:
                xw = np.ascontiguousarray(xb) if relayout else xb
            rows_of_windows = sliding_window_view(xw, kw, axis=2)[:, :, :OW].transpose(0, 1, 2, 4, 3)  # (n,H,OW,kw,C)
            view6 = view[b][:, :, :, 0]  # (n, OH, OW, kh, kw, C), G == 1
            for i in range(kh):
                r0, r1, rows = valid_range(i * dilation[0] - pad4[0], OH, H, stride[0])
                target = view6[:, :, :, i]
                target[:, r0:r1] = rows_of_windows[:, rows]
                target[:, :r0] = 0
                target[:, r1:] = 0
        else:
            xb = (np.ascontiguousarray(x_nhwc[b]) if relayout else x_nhwc[b]).reshape(-1, H, W, G, Cg)
            for i, j, r, c, rows, cs in offsets:
                target = view[b][:, :, :, :, i, j, :]
                target[:, r, c] = xb[:, rows, cs]
                if r.stop - r.start < OH or c.stop - c.start < OW:
                    _zero_outside(target, r, c)

    over_batch(fill, N, cols.nbytes)
    if fold_bias:
        cols[..., -1] = 1

    # 2. one matrix product per group (a single one when groups == 1)
    w_mat = np.empty((G, width if G == 1 else Kg, Og), dtype=dtype)
    w_mat[:, :Kg] = weight.reshape(G, Og, Cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(G, Kg, Og)
    if fold_bias:
        w_mat[0, -1] = bias
    M = N * OH * OW
    if G == 1:
        y = cols.reshape(M, width) @ w_mat[0]
    else:
        y = np.empty((M, G, Og), dtype=dtype)
        cols_g = cols.reshape(M, G, Kg).transpose(1, 0, 2)
        for g in range(G):
            np.matmul(cols_g[g], w_mat[g], out=y[:, g])
        y = y.reshape(M, O)
        if bias is not None:
            y += bias
    cache = ConvCache(cols=cols, w_mat=w_mat, x_shape=x.shape, out_hw=(OH, OW), kernel=(kh, kw),
                      stride=stride, pad4=pad4, dilation=dilation, groups=G, has_bias=bias is not None)
    return y.reshape(N, OH, OW, O).transpose(0, 3, 1, 2), cache


def conv2d_backward_cached(grad_out, cache: ConvCache, need_dx: bool = True):
    """Backward pass from a :class:`ConvCache`: returns (dx, dW, db); db is None without a bias.

    With ``need_dx=False`` dx is None: the product g W^T and col2im (half the work) are skipped.
    """
    N, C, H, W = cache.x_shape
    OH, OW = cache.out_hw
    kh, kw = cache.kernel
    G = cache.groups
    cols, w_mat = cache.cols, cache.w_mat
    O = w_mat.shape[2] * G
    Og, Cg = O // G, C // G
    Kg = kh * kw * Cg
    grad_out = np.asarray(grad_out)
    if grad_out.shape != (N, O, OH, OW):
        raise ValueError(f"conv2d_backward: expected grad_out of shape {(N, O, OH, OW)} (the output's), "
                         f"got {grad_out.shape}")
    M = N * OH * OW
    g2 = grad_out.transpose(0, 2, 3, 1).reshape(M, O).astype(cols.dtype, copy=False)  # a view when channels-last
    width = cols.shape[-1]
    cols2 = cols.reshape(M, width)

    # dW_mat = cols^T g (the bias row, when folded, gives db); dcols = g W^T
    if G == 1:
        dw_mat = _at_b(g2, cols2)[None]  # (1, O, width)
        dcols = None  # dx below, one kernel offset at a time
    else:
        dw_mat = np.empty((G, Og, Kg), dtype=cols.dtype)
        dcols = np.empty((M, G, Kg), dtype=cols.dtype) if need_dx else None
        cols_g = cols2.reshape(M, G, Kg)
        for g in range(G):
            gg = g2[:, g * Og:(g + 1) * Og]
            dw_mat[g] = _at_b(gg, cols_g[:, g])
            if need_dx:
                np.matmul(gg, w_mat[g].T, out=dcols[:, g])
    dW = dw_mat[:, :, :Kg].reshape(G, Og, kh, kw, Cg).transpose(0, 1, 4, 2, 3).reshape(O, Cg, kh, kw)
    if not cache.has_bias:
        db = None
    elif G == 1:
        db = dw_mat[0, :, -1].copy()
    else:
        db = g2.sum(axis=0)

    if not need_dx:
        return None, dW, db
    if G == 1:
        dx = _input_grad_by_offset(g2.reshape(N, OH, OW, O), w_mat[0, :Kg].reshape(kh, kw, C, O), (N, H, W, C),
                                   cache)
        return dx.transpose(0, 3, 1, 2), dW, db
    dcols = dcols.reshape(N, OH, OW, G, kh, kw, Cg).transpose(4, 5, 0, 1, 2, 3, 6)  # (kh, kw, ...) view
    # col2im: add every kernel offset's slice of dcols back onto the input positions it came from
    dx = _col2im_nhwc(dcols, (N, H, W, C), cache)
    return dx.transpose(0, 3, 1, 2), dW, db


def _input_grad_by_offset(g4, w4, x_nhwc_shape, cache):
    """dx (N, H, W, C) for groups == 1 from g4 (N, OH, OW, O) and w4 (kh, kw, C, O): for each kernel offset (i, j),
    the product g W_ij^T (the gradient of the inputs that offset read) added where it read them.

    The same sums as dcols = g W^T followed by col2im, but each offset's block is the size of dx (it stays in cache)
    and is added as whole rows of W*C values, where col2im adds runs of C values out of the tall dcols (measured,
    Conv2d(32, 64, 3, padding=1) at batch 64: 8.5 -> 6.4 ms at 1 thread). With several threads allowed, the batch is
    split over them, BLAS at one thread each: the products are too narrow (C columns) for BLAS's own threads.
    """
    N, H, W, C = x_nhwc_shape
    OH, OW = cache.out_hw
    offsets, first = _offsets_and_full_one(cache, H, W)
    dx = (np.empty if first is not None else np.zeros)((N, H, W, C), dtype=np.result_type(g4, w4))
    w_t = {(o.i, o.j): np.ascontiguousarray(w4[o.i, o.j].T) for o in offsets + [first] if o is not None}  # (O, C)

    def part(b):  # the samples b (a slice of the batch, one per thread)
        gb, dxb = g4[b], dx[b]
        g2 = gb.reshape(-1, gb.shape[-1])
        block = np.empty((gb.shape[0], OH, OW, C), dtype=dx.dtype)
        if first is not None:
            np.matmul(g2, w_t[first.i, first.j], out=block.reshape(-1, C))
            np.copyto(dxb, block[:, first.out_rows, first.out_cols])
        for o in offsets:
            if not o.empty:
                np.matmul(g2, w_t[o.i, o.j], out=block.reshape(-1, C))
                dxb[:, o.in_rows, o.in_cols] += block[:, o.out_rows, o.out_cols]

    over_batch(part, N, dx.nbytes, one_blas_thread=True)
    return dx


def _offsets_and_full_one(cache, H, W):
    """The kernel offsets of the backward pass, and apart from them one that reads the whole input (the centre of a
    stride-1 'same' conv; None when there is none): dx starts as its block, with no zero fill."""
    offsets = kernel_offsets(cache.kernel, cache.stride, cache.pad4, cache.dilation, (H, W), cache.out_hw)
    full = [k for k, o in enumerate(offsets) if o.in_rows == slice(0, H, 1) and o.in_cols == slice(0, W, 1)]
    return offsets, (offsets.pop(full[0]) if full else None)


def _at_b(a, b):
    """a^T b for tall a (K, m) and b (K, n), K = batch x pixels: the product with the longer side as its rows.

    OpenBLAS splits a product's threads along the rows of the result; with few rows (m = 64 output channels) and
    a long sum (K = 12544), two threads on a busy machine took 30x longer than one. (b^T a)^T is the same matrix.
    """
    return a.T @ b if a.shape[1] >= b.shape[1] else (b.T @ a).T


def _col2im_nhwc(dcols, x_nhwc_shape, cache):
    """dx (N, H, W, C) from dcols (kh, kw, N, OH, OW, G, Cg): each kernel offset's block added where it came from."""
    N, H, W, C = x_nhwc_shape
    G, Cg = cache.groups, C // cache.groups
    offsets, first = _offsets_and_full_one(cache, H, W)
    dx = (np.empty if first is not None else np.zeros)((N, H, W, G, Cg), dtype=dcols.dtype)

    def add(b):  # the samples b of dx (a slice of the batch; several run at once on large batches)
        dxb = dx[b]
        if first is not None:
            np.copyto(dxb, dcols[first.i, first.j][b, first.out_rows, first.out_cols])
        for i, j, r, c, rows, cs in offsets:
            if r.stop > r.start and c.stop > c.start:
                dxb[:, rows, cs] += dcols[i, j][b, r, c]

    over_batch(add, N, dcols.nbytes)
    return dx.reshape(N, H, W, C)


def conv2d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as in every deep-learning library), ``torch.nn.functional.conv2d``.

    x (N, C, H, W), weight (O, C/groups, kh, kw), bias (O,) or None -> y (N, O, OH, OW).
    ``padding`` is an int, a pair, 'valid' or 'same'. Computation follows the input dtype.
    """
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups)[0]


def conv2d_backward(grad_out, x, weight, stride=1, padding=0, dilation=1, groups=1, bias=True):
    """Gradients of ``conv2d``: returns (dx, dW, db) for upstream gradient ``grad_out`` (N, O, OH, OW).

    dx[n, c, h, w] = sum_{o, i, j} g[n, o, p, q] W[o, c, i, j] over (p, q) with p*s + i*d - pad = h, ...
    dW[o, c, i, j] = sum_{n, p, q} g[n, o, p, q] x_pad[n, c, p*s + i*d, q*s + j*d]
    db[o]          = sum_{n, p, q} g[n, o, p, q]                 (None with ``bias=False``)
    """
    x, weight = np.asarray(x), np.asarray(weight)
    b = np.zeros(weight.shape[0], dtype=weight.dtype) if bias else None
    _, cache = conv2d_forward(x, weight, b, stride, padding, dilation, groups)
    return conv2d_backward_cached(grad_out, cache)


# ---------------------------------------------------------------------------------------
# im2col / col2im in torch.nn.functional.unfold / fold's layout (teaching and checking)
# ---------------------------------------------------------------------------------------


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Unfold (N, C, H, W) into columns (N, C*kh*kw, OH*OW), as ``torch.nn.functional.unfold``.

    Column l = p*OW + q holds the receptive field of output pixel (p, q), channel-major
    then kernel row then kernel column. With it a convolution is one matrix product:
    ``y = (W.reshape(O, -1) @ im2col(x, ...)).reshape(N, O, OH, OW)``.
    Built from ``sliding_window_view``: a strided *view* of every window, copied once.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"im2col: expected input of shape (N, C, H, W), got shape {x.shape}")
    kernel, stride, dilation = pair(kernel_size, "im2col kernel_size"), pair(stride), pair(dilation)
    ph, pw = pair(padding, "im2col padding")
    N, C, H, W = x.shape
    OH, OW = output_shape(H, W, kernel, stride, (ph, ph, pw, pw), dilation, "im2col")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    extent = (dilation[0] * (kernel[0] - 1) + 1, dilation[1] * (kernel[1] - 1) + 1)
    windows = sliding_window_view(xp, extent, axis=(2, 3))  # (N, C, H', W', eh, ew), no copy
    windows = windows[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]][:, :, :OH, :OW]
    # (N, C, OH, OW, kh, kw) -> (N, C, kh, kw, OH, OW) -> (N, C*kh*kw, OH*OW): the one copy
    return windows.transpose(0, 1, 4, 5, 2, 3).reshape(N, C * kernel[0] * kernel[1], OH * OW)


def col2im(cols, output_size, kernel_size, stride=1, padding=0, dilation=1):
    """Fold columns (N, C*kh*kw, L) back to (N, C, H, W), *adding* overlaps (``torch.nn.functional.fold``).

    It is the adjoint (transpose) of :func:`im2col`, which is why it turns dcols into dx.
    """
    cols = np.asarray(cols)
    H, W = pair(output_size, "col2im output_size")
    kernel, stride, dilation = pair(kernel_size, "col2im kernel_size"), pair(stride), pair(dilation)
    ph, pw = pair(padding, "col2im padding")
    kh, kw = kernel
    OH, OW = output_shape(H, W, kernel, stride, (ph, ph, pw, pw), dilation, "col2im")
    if cols.ndim != 3 or cols.shape[1] % (kh * kw) or cols.shape[2] != OH * OW:
        raise ValueError(f"col2im: expected columns of shape (N, C*{kh * kw}, {OH * OW}) for output_size {(H, W)}, "
                         f"got {cols.shape}")
    N, C = cols.shape[0], cols.shape[1] // (kh * kw)
    c6 = cols.reshape(N, C, kh, kw, OH, OW)
    out = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dilation[0], j * dilation[1]
            out[:, :, r0:r0 + stride[0] * (OH - 1) + 1:stride[0], c0:c0 + stride[1] * (OW - 1) + 1:stride[1]] += \
                c6[:, :, i, j]
    return out[:, :, ph:ph + H, pw:pw + W]
