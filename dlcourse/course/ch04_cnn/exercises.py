"""Chapter 4 exercises.

Build-it steps inside the lesson (the notebook uses the learner's functions afterwards): the convolution's forward
and backward passes as plain loops (cs231n's naive version), im2col and its adjoint col2im, the fast forward and
backward passes on them, max pooling's backward pass with ties, batch normalisation's backward pass node by node
on its computational graph and then as the compact formula. End-of-chapter practice: output sizes, a
single-channel convolution and its weight gradient, receptive fields.
"""

import numpy as np

from ...i18n import N_
from ...nn import functional as F
from ..checker import exercise


def _rng():
    return np.random.default_rng(404)


def _out_hw(x, kh, kw, stride, padding):
    _, _, H, W = x.shape
    return (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1


# Shapes of the convolution cases: (N, C, O, H, W, kh, kw, stride, padding). Strides 1, 2 and 3, padding 0-2,
# kernels that are not square, a stride that does not divide H + 2p - k (the last rows are never read), and two
# cases whose output is 1x1 (a wrong output-size formula that gives -1 there cannot hide behind a reshape that
# infers one axis).
_CONV_SHAPES = [(1, 1, 1, 4, 4, 2, 2, 1, 0), (2, 3, 4, 7, 6, 3, 3, 1, 1), (2, 2, 3, 8, 7, 3, 2, 2, 1),
                (3, 4, 2, 9, 9, 5, 5, 2, 2), (1, 2, 3, 3, 3, 3, 3, 1, 0), (2, 2, 3, 4, 5, 3, 3, 3, 0),
                (1, 2, 2, 6, 7, 2, 3, 3, 2)]
_NAIVE_SHAPES = [(1, 1, 1, 4, 4, 2, 2, 1, 0), (2, 3, 2, 5, 6, 3, 3, 1, 1), (2, 2, 3, 7, 6, 3, 2, 2, 1),
                 (1, 2, 3, 3, 3, 3, 3, 1, 0), (1, 2, 2, 6, 7, 2, 3, 3, 2)]  # small: the loops are slow


def _conv_cases_of(shapes):
    rng = _rng()
    cases = []
    for N, C, O, H, W, kh, kw, stride, padding in shapes:
        cases.append((rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, kh, kw)),
                      rng.standard_normal(O), stride, padding))
    return cases


def _backward_cases_of(shapes):
    rng = np.random.default_rng(405)
    cases = []
    for x, weight, _, stride, padding in _conv_cases_of(shapes):
        H_out, W_out = _out_hw(x, *weight.shape[2:], stride, padding)
        cases.append((x, weight, rng.standard_normal((x.shape[0], weight.shape[0], H_out, W_out)), stride, padding))
    return cases


# ---------------------------------------------------------------------------------------------------------------
# Build-it: the convolution with plain loops (cs231n's naive version)
# ---------------------------------------------------------------------------------------------------------------


def _naive_ignoring_stride(x, w, b, stride=1, pad=0):
    """Right output size, but every window starts at (i, j) instead of (i*stride, j*stride)."""
    N, C, H, W = x.shape
    F_, _, kh, kw = w.shape
    H_out, W_out = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.zeros((N, F_, H_out, W_out))
    for n in range(N):
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    out[n, f, i, j] = np.sum(x_pad[n, :, i:i + kh, j:j + kw] * w[f]) + b[f]
    return out


@exercise("ch4.conv_forward_naive", lambda: _conv_cases_of(_NAIVE_SHAPES),
          hints=[N_("Four loops: over the images n, the filters f, and the output rows i and columns j. Each output "
                    "value is one filter laid over one window of the padded input: multiply elementwise, add up, add "
                    "the filter's bias."),
                 N_("Pad first: np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))) pads only height and width. "
                    "With stride s, output (i, j) reads the window whose top-left corner is (i*s, j*s) of the "
                    "padded input."),
                 N_("out[n, f, i, j] = np.sum(x_pad[n, :, i*stride:i*stride + kh, j*stride:j*stride + kw] * w[f]) "
                    "+ b[f], with H_out = (H + 2*pad - kh) // stride + 1 (and the same for W_out).")],
          wrong=_naive_ignoring_stride)
def conv_forward_naive(x, w, b, stride=1, pad=0):
    """Convolution (PyTorch's conv2d) with plain loops over images, filters and output pixels.

    x (N, C, H, W), w (F, C, kh, kw), b (F,) -> out (N, F, H_out, W_out).
    """
    N, C, H, W = x.shape
    F_, _, kh, kw = w.shape
    H_out, W_out = (H + 2 * pad - kh) // stride + 1, (W + 2 * pad - kw) // stride + 1
    out = np.empty((N, F_, H_out, W_out))               # every entry is written below
    for n in range(N):
        x_pad = np.pad(x[n], ((0, 0), (pad, pad), (pad, pad)))  # (C, H + 2 pad, W + 2 pad)
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    window = x_pad[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]
    return out


def _naive_backward_overwriting(x, w, grad_out, stride=1, pad=0):
    """dw and db right, but dx_pad's windows are assigned (=) instead of accumulated (+=): where windows overlap,
    only the last one's gradient survives."""
    _, dw, db = conv_backward_naive(x, w, grad_out, stride, pad)
    N, C, H, W = x.shape
    F_, _, kh, kw = w.shape
    dx_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    for n in range(N):
        for f in range(F_):
            for i in range(grad_out.shape[2]):
                for j in range(grad_out.shape[3]):
                    dx_pad[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw] = grad_out[n, f, i, j] * w[f]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db


@exercise("ch4.conv_backward_naive", lambda: _backward_cases_of(_NAIVE_SHAPES),
          hints=[N_("Walk the forward pass's loops again. One step computed out[n, f, i, j] = sum(window * w[f]) + "
                    "b[f]; its upstream gradient g = grad_out[n, f, i, j] flows back to each of the three things "
                    "it used."),
                 N_("That step sends g * w[f] to the window of the padded input, g * window to w[f], and g to b[f]. "
                    "Windows overlap and every filter reads the same pixels, so all three gradients are *accumulated* "
                    "(+=) over the loops, never assigned."),
                 N_("dx_pad[n, :, rows, cols] += g * w[f]; dw[f] += g * x_pad[n, :, rows, cols]; db[f] += g, with "
                    "rows = slice(i*stride, i*stride + kh); at the end cut the padding off: "
                    "dx = dx_pad[:, :, pad:pad + H, pad:pad + W].")],
          wrong=_naive_backward_overwriting, outputs=("dx", "dw", "db"))
def conv_backward_naive(x, w, grad_out, stride=1, pad=0):
    """Gradients of out = conv_forward_naive(x, w, b, stride, pad), with the forward pass's loops.

    x (N, C, H, W), w (F, C, kh, kw), grad_out = dL/dout (N, F, H_out, W_out) -> (dx, dw, db) shaped like
    x, w and (F,).
    """
    N, C, H, W = x.shape
    F_, _, kh, kw = w.shape
    _, _, H_out, W_out = grad_out.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dx_pad, dw, db = np.zeros(x_pad.shape), np.zeros(w.shape), np.zeros(F_)
    for n in range(N):
        for f in range(F_):
            for i in range(H_out):
                for j in range(W_out):
                    rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
                    g = grad_out[n, f, i, j]
                    dx_pad[n, :, rows, cols] += g * w[f]
                    dw[f] += g * x_pad[n, :, rows, cols]
                    db[f] += g
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db


# ---------------------------------------------------------------------------------------------------------------
# Build-it: im2col and its adjoint col2im
# ---------------------------------------------------------------------------------------------------------------


def _im2col_cases():
    rng = _rng()
    return [(rng.standard_normal((N, C, H, W)), kh, kw, stride, padding)
            for N, C, _, H, W, kh, kw, stride, padding in _CONV_SHAPES]


def _im2col_kernel_major(x, kh, kw, stride=1, padding=0):
    """Rows ordered (kernel row, kernel column, channel) instead of (channel, kernel row, kernel column): a
    consistent layout on its own, but not the one weight.reshape(O, -1) (and PyTorch's unfold) uses."""
    N, C = x.shape[:2]
    cols = im2col(x, kh, kw, stride, padding)
    return cols.reshape(N, C, kh * kw, -1).transpose(0, 2, 1, 3).reshape(N, C * kh * kw, -1)


@exercise("ch4.im2col", _im2col_cases,
          hints=[N_("Kernel entry (i, j) meets, at output pixel (p, q), the padded input pixel (p*s + i, q*s + j). For "
                    "a fixed (i, j) those pixels, over all output positions, form a strided slice of the padded input: "
                    "loop over the kh*kw kernel entries, not over the pixels."),
                 N_("x_pad[:, :, i:i + s*H_out:s, j:j + s*W_out:s] has shape (N, C, H_out, W_out): it is what "
                    "kernel entry (i, j) sees everywhere. Store it in cols[:, :, i, j] of an array (N, C, kh, kw, "
                    "H_out, W_out)."),
                 N_("After the loops, cols.reshape(N, C*kh*kw, H_out*W_out): rows in (channel, kernel row, kernel "
                    "column) order, the order of weight.reshape(O, -1); columns in row-major output order.")],
          wrong=_im2col_kernel_major)
def im2col(x, kh, kw, stride=1, padding=0):
    """Unfold x (N, C, H, W) into columns (N, C*kh*kw, H_out*W_out), as ``torch.nn.functional.unfold``.

    Column p*W_out + q holds the (padded) window of output pixel (p, q), rows in (channel, kernel row, kernel
    column) order. One strided slice of the padded input per kernel entry (i, j): no loop over pixels.
    """
    N, C, H, W = x.shape
    H_out, W_out = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((N, C, kh, kw, H_out, W_out))   # every entry is written below
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = x_pad[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride]
    return cols.reshape(N, C * kh * kw, H_out * W_out)


def _col2im_cases():
    rng = np.random.default_rng(406)
    cases = []
    for x, kh, kw, stride, padding in _im2col_cases():
        N, C, H, W = x.shape
        H_out, W_out = _out_hw(x, kh, kw, stride, padding)
        cases.append((rng.standard_normal((N, C * kh * kw, H_out * W_out)), H, W, kh, kw, stride, padding))
    return cases


def _col2im_overwriting(cols, H, W, kh, kw, stride=1, padding=0):
    """Puts each kernel entry's values back with = instead of +=: a pixel shared by overlapping windows keeps only
    the last copy's value instead of the sum of all of them."""
    N, C = cols.shape[0], cols.shape[1] // (kh * kw)
    H_out, W_out = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    c6 = cols.reshape(N, C, kh, kw, H_out, W_out)
    out = np.zeros((N, C, H + 2 * padding, W + 2 * padding))
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] = c6[:, :, i, j]
    return out[:, :, padding:padding + H, padding:padding + W]


@exercise("ch4.col2im", _col2im_cases,
          hints=[N_("col2im is im2col run backwards: im2col copied padded pixel (p*s + i, q*s + j) into row (c, i, j), "
                    "column (p, q); col2im sends every entry of the columns back to the pixel it was copied from."),
                 N_("A pixel inside several windows was copied several times, so it receives the *sum* of those "
                    "entries (that is what makes col2im the adjoint of im2col, and dx the sum over every use of x): "
                    "accumulate with +=, for each kernel entry (i, j), into a zero padded array."),
                 N_("c6 = cols.reshape(N, C, kh, kw, H_out, W_out); for each (i, j): "
                    "out[:, :, i:i + s*H_out:s, j:j + s*W_out:s] += c6[:, :, i, j]; finally cut the padding off.")],
          wrong=_col2im_overwriting)
def col2im(cols, H, W, kh, kw, stride=1, padding=0):
    """Fold columns (N, C*kh*kw, H_out*W_out) back onto (N, C, H, W), *adding* overlaps
    (``torch.nn.functional.fold``): the adjoint of :func:`im2col`."""
    N, C = cols.shape[0], cols.shape[1] // (kh * kw)
    H_out, W_out = (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1
    c6 = cols.reshape(N, C, kh, kw, H_out, W_out)
    # zeros padded by np.pad rather than a bigger np.zeros: a padded array that is too tall would go unnoticed
    out = np.pad(np.zeros((N, C, H, W)), ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    for i in range(kh):
        for j in range(kw):
            out[:, :, i:i + stride * H_out:stride, j:j + stride * W_out:stride] += c6[:, :, i, j]
    return out[:, :, padding:padding + H, padding:padding + W]


# ---------------------------------------------------------------------------------------------------------------
# Build-it: the convolution's forward pass as one matrix product (on im2col)
# ---------------------------------------------------------------------------------------------------------------


def _conv_forward_cases():
    return _conv_cases_of(_CONV_SHAPES)


def _conv_forward_flipped(x, weight, bias, stride=1, padding=0):
    return conv2d_forward(x, weight[:, :, ::-1, ::-1], bias, stride, padding)  # the signal-processing flip


@exercise("ch4.conv2d_forward", _conv_forward_cases,
          hints=[N_("Every column of X_cols is one receptive field, and each output channel is one filter: a dot "
                    "product of one row of weights with one column gives one output pixel of one channel."),
                 N_("weight.reshape(O, -1) lists each filter's numbers in the same order as a column (channel, "
                    "then kernel row, then kernel column). `@` with a 3-D array multiplies every image of the "
                    "batch at once."),
                 N_("Y = W_mat @ X_cols has shape (N, O, H_out*W_out); the bias is one number per output channel, "
                    "so it needs the shape (O, 1) to be added to every pixel of its channel.")],
          wrong=_conv_forward_flipped)
def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """Convolution (PyTorch's conv2d) as one matrix product.

    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, H_out, W_out).
    """
    N = x.shape[0]
    O, C, kh, kw = weight.shape
    H_out, W_out = _out_hw(x, kh, kw, stride, padding)
    cols = F.im2col(x, (kh, kw), stride=stride, padding=padding)  # X_cols (N, C*kh*kw, H_out*W_out)
    Y = weight.reshape(O, C * kh * kw) @ cols + bias[:, None]      # (N, O, H_out*W_out)
    return Y.reshape(N, O, H_out, W_out)


# ---------------------------------------------------------------------------------------------------------------
# Build-it: its backward pass
# ---------------------------------------------------------------------------------------------------------------


def _conv_backward_cases():
    return _backward_cases_of(_CONV_SHAPES)


def _conv_backward_ignoring_stride(x, weight, grad_out, stride=1, padding=0):
    """dW and db right; dx by the stride-1 formula (full convolution of g with the flipped kernel), stride ignored."""
    _, dW, db = conv2d_backward(x, weight, grad_out, stride, padding)
    kh = weight.shape[2]
    dx = F.conv2d(grad_out, weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], padding=kh - 1 - padding)
    return dx, dW, db


@exercise("ch4.conv2d_backward", _conv_backward_cases,
          hints=[N_("Write the forward pass as Y = W_mat X_cols (+ b) for each image, with G = dL/dY of the same shape "
                    "(O, H_out*W_out). A matrix product's gradients are again matrix products: check the shapes."),
                 N_("dL/dW_mat = G X_cols^T and dL/dX_cols = W_mat^T G (per image). The weight is shared by every "
                    "image, so its gradient sums over the batch; so does the bias's, which also sums over the "
                    "pixels."),
                 N_("dW = (G @ cols.transpose(0, 2, 1)).sum(axis=0) reshaped to weight.shape; db = G.sum(axis=(0, 2)); "
                    "dcols = W_mat.T @ G, then col2im adds each column back onto the pixels it came from.")],
          wrong=_conv_backward_ignoring_stride)
def conv2d_backward(x, weight, grad_out, stride=1, padding=0):
    """Gradients of y = conv2d_forward(x, weight, bias, stride, padding).

    x (N, C, H, W), weight (O, C, kh, kw), grad_out = dL/dy (N, O, H_out, W_out) -> (dx, dW, db) with the shapes
    of x, weight and (O,).
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    _, _, H_out, W_out = grad_out.shape
    cols = F.im2col(x, (kh, kw), stride=stride, padding=padding)   # X_cols (N, C*kh*kw, L)
    G = grad_out.reshape(N, O, H_out * W_out)                      # (N, O, L)
    W_mat = weight.reshape(O, C * kh * kw)                         # (O, C*kh*kw)
    dW = (G @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(weight.shape)
    db = G.sum(axis=(0, 2))
    dcols = W_mat.T @ G                                            # (N, C*kh*kw, L)
    dx = F.col2im(dcols, (H, W), (kh, kw), stride=stride, padding=padding)
    return dx, dW, db


# ---------------------------------------------------------------------------------------------------------------
# Build-it: max pooling's backward pass (2x2, stride 2), ties to the first maximum
# ---------------------------------------------------------------------------------------------------------------


def _pool_cases():
    rng = _rng()
    # windows: top left a tie in its top row, top right four equal values, bottom left an anti-diagonal tie,
    # bottom right three equal maxima
    ties = np.array([[[[2.0, 2.0, 1.0, 1.0],
                       [1.0, 0.0, 1.0, 1.0],
                       [0.0, 3.0, 5.0, 0.0],
                       [3.0, 1.0, 5.0, 5.0]]]])
    # the other pairs: a tie down the left column, along the bottom row, down the right column, on the diagonal
    more_ties = np.array([[[[3.0, 0.0, -1.0, -1.0],
                            [3.0, 0.0, 4.0, 4.0],
                            [0.0, 4.0, 6.0, 0.0],
                            [0.0, 4.0, 0.0, 6.0]]]])
    relu_like = np.maximum(rng.standard_normal((2, 3, 4, 6)), 0)  # after ReLU: windows of zeros tie
    return [(rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2))),
            (rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 3, 2))),
            (ties, np.array([[[[10.0, 20.0], [30.0, 40.0]]]])),
            (more_ties, np.array([[[[-1.5, 2.5], [3.5, -4.5]]]])),
            (relu_like, rng.standard_normal((2, 3, 2, 3)))]


def _every_tied_max(x, grad_out):
    """Sends g to every input equal to its window's maximum (wrong when there is a tie)."""
    N, C, H, W = x.shape
    windows = x.reshape(N, C, H // 2, 2, W // 2, 2)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    return (is_max * grad_out[:, :, :, None, :, None]).reshape(N, C, H, W)


@exercise("ch4.max_pool_backward", _pool_cases,
          hints=[N_("Each output of the pool is one input of its window, the maximum: only that input influenced the "
                    "output, so only it receives the upstream gradient; the other inputs get 0. On a tie, PyTorch (and "
                    "the chapter) picks one: the first in row-major order."),
                 N_("Rearrange x into windows of 4 values, shape (N, C, H/2, W/2, 4): x.reshape(N, C, H/2, 2, W/2, 2), "
                    "then move the two within-window axes to the end. np.argmax returns the FIRST maximum."),
                 N_("Build a one-hot mask from the argmax (np.eye(4)[idx] or np.put_along_axis), multiply it by "
                    "grad_out[..., None], then undo the rearrangement to get back (N, C, H, W).")],
          wrong=_every_tied_max)
def max_pool_backward(x, grad_out):
    """dL/dx of a 2x2, stride-2 max pool of x (N, C, H, W) (H, W even), given grad_out = dL/dy (N, C, H/2, W/2).

    On a tie, the first maximum of the window in row-major order receives the gradient (as in PyTorch).
    """
    # Strided slices instead of reshapes: NumPy's reshape infers a negative size, so a wrong size there could hide.
    corners = [(0, 0), (0, 1), (1, 0), (1, 1)]                     # a window's four inputs, row-major
    values = np.stack([x[:, :, i::2, j::2] for i, j in corners])   # (4, N, C, H/2, W/2)
    first_max = np.argmax(values, axis=0)                          # (N, C, H/2, W/2), the first on ties
    dx = np.empty(x.shape)                                         # every entry is written below
    for k, (i, j) in enumerate(corners):
        dx[:, :, i::2, j::2] = np.where(first_max == k, grad_out, 0.0)
    return dx


# ---------------------------------------------------------------------------------------------------------------
# Build-it: batch normalisation's backward pass (training mode)
# ---------------------------------------------------------------------------------------------------------------


def _bn_cases():
    rng = _rng()
    return [(rng.standard_normal((6, 3)) * 2 + 1, rng.uniform(0.5, 1.5, 3), rng.standard_normal((6, 3)), 1e-5),
            (rng.standard_normal((32, 5)), rng.uniform(0.5, 1.5, 5), rng.standard_normal((32, 5)), 1e-5),
            (rng.standard_normal((2, 4)) * 0.1, rng.uniform(0.5, 1.5, 4), rng.standard_normal((2, 4)), 1e-3),
            # a tiny variance (about 1e-6, below eps = 1e-5): where eps sits decides the answer; gamma of both signs
            (rng.standard_normal((5, 3)) * 1e-3 + 2, np.array([1.5, -0.7, 0.3]), rng.standard_normal((5, 3)), 1e-5)]


def _bn_constant_stats(x, gamma, grad_out, eps=1e-5):
    """Treats the batch mean and variance as constants: misses two of the three paths from x to the loss."""
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
    return grad_out * gamma / np.sqrt(x.var(axis=0) + eps), (grad_out * x_hat).sum(axis=0), grad_out.sum(axis=0)


def _bn_graph_without_mean_path(x, gamma, grad_out, eps=1e-5):
    """Every node right except the last: x's gradient through the mean mu (dmu / M) is left out."""
    xc = x - x.mean(axis=0)
    var = (xc ** 2).mean(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = xc * inv_std
    dx_hat = grad_out * gamma
    dvar = (dx_hat * xc).sum(axis=0) * -0.5 * (var + eps) ** -1.5
    dxc = dx_hat * inv_std + 2 * xc * dvar / x.shape[0]
    return dxc, (grad_out * x_hat).sum(axis=0), grad_out.sum(axis=0)


@exercise("ch4.batchnorm_backward_graph", _bn_cases,
          hints=[N_("Go down the graph from y one node at a time. A node out = f(a, b) passes out's gradient to "
                    "each input times the local derivative; an input used by several nodes (xc, x) adds up what it "
                    "receives; a per-channel node (mu, var, inv_std, gamma, beta) that was broadcast over the M "
                    "rows sums over them (axis 0)."),
                 N_("y = gamma*x_hat + beta: dbeta = sum g, dgamma = sum g*x_hat, dx_hat = g*gamma. x_hat = "
                    "xc*inv_std: dxc = dx_hat*inv_std, dinv_std = sum dx_hat*xc. inv_std = 1/std: dstd = "
                    "-dinv_std/std**2. std = sqrt(var + eps): dvar = dstd / (2*std)."),
                 N_("var = mean(xc**2): dxc = dxc + 2*xc*dvar/M. xc = x - mu: dmu = -sum dxc (axis 0). "
                    "mu = mean(x): dx = dxc + dmu/M.")],
          wrong=_bn_graph_without_mean_path)
def batchnorm_backward_graph(x, gamma, grad_out, eps=1e-5):
    """Batch normalisation's backward pass, one node of its computational graph at a time (training mode).

    x (M, C) (statistics per column over the M rows), gamma (C,), grad_out = dL/dy (M, C)
    -> (dx (M, C), dgamma (C,), dbeta (C,)).
    """
    M = x.shape[0]
    mu = x.mean(axis=0)                  # (C,)
    xc = x - mu                          # (M, C) centred
    var = (xc ** 2).mean(axis=0)         # (C,)  biased batch variance
    std = np.sqrt(var + eps)             # (C,)
    inv_std = 1.0 / std                  # (C,)
    x_hat = xc * inv_std                 # (M, C)
    # y = gamma * x_hat + beta
    dbeta = grad_out.sum(axis=0)
    dgamma = (grad_out * x_hat).sum(axis=0)
    dx_hat = grad_out * gamma
    dxc = dx_hat * inv_std               # x_hat = xc * inv_std, through xc
    dinv_std = (dx_hat * xc).sum(axis=0)  # ... and through inv_std
    dstd = -dinv_std / std ** 2          # inv_std = 1 / std
    dvar = dstd / (2 * std)              # std = sqrt(var + eps)
    dxc = dxc + 2 * xc * dvar / M        # var = mean(xc ** 2): xc's second path
    dmu = -dxc.sum(axis=0)               # xc = x - mu
    dx = dxc + dmu / M                   # mu = mean(x): x's second path
    return dx, dgamma, dbeta


@exercise("ch4.batchnorm_backward", _bn_cases,
          hints=[N_("x reaches the loss along three paths: directly through x_hat, through the batch mean mu and "
                    "through the batch variance. The gradients of gamma and beta are the easy part: sum over the "
                    "batch."),
                 N_("dbeta = sum_m g, dgamma = sum_m g * x_hat. With dx_hat = g * gamma, the derivation of the chapter "
                    "collapses the three paths into one line that uses only dx_hat, x_hat and their batch means."),
                 N_("dx = (1 / sqrt(var + eps)) * (dx_hat - mean_m(dx_hat) - x_hat * mean_m(dx_hat * x_hat)), "
                    "every mean over axis 0 (the batch); var is the biased batch variance, x.var(axis=0).")],
          wrong=_bn_constant_stats)
def batchnorm_backward(x, gamma, grad_out, eps=1e-5):
    """Gradients of batch normalisation in training mode, y = gamma * (x - mu) / sqrt(var + eps) + beta.

    x (M, C) (statistics per column over the M rows), gamma (C,), grad_out = dL/dy (M, C)
    -> (dx (M, C), dgamma (C,), dbeta (C,)).
    """
    mu, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x - mu) * inv_std
    dbeta = grad_out.sum(axis=0)
    dgamma = (grad_out * x_hat).sum(axis=0)
    dx_hat = grad_out * gamma
    dx = inv_std * (dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0))
    return dx, dgamma, dbeta


# ---------------------------------------------------------------------------------------------------------------
# End-of-chapter practice
# ---------------------------------------------------------------------------------------------------------------


def _size_cases():
    return [(28, 3, 1, 1), (28, 3, 1, 0), (32, 5, 2, 2), (7, 3, 2, 0), (224, 7, 2, 3), (10, 4, 3, 1)]


@exercise("ch4.output_size", _size_cases,
          hints=[N_("Count the positions where the window's first pixel can start so that its last pixel is still "
                    "inside the padded input."),
                 N_("The padded input has H + 2p pixels (padding on both sides); the last possible start is H + 2p "
                    "- k, and the starts are 0, s, 2s, ..."),
                 N_("Integer-divide the last start by the stride (//) and add 1 for the start at 0.")],
          wrong=lambda H, k, s, p: (H + p - k) // s + 1)
def output_size(H, k, s, p):
    """Output height of a convolution with kernel k, stride s and padding p on an input of height H."""
    return (H + 2 * p - k) // s + 1


def _conv_cases():
    rng = _rng()
    return [(rng.standard_normal((5, 6)), rng.standard_normal((3, 3))),
            (rng.standard_normal((4, 4)), rng.standard_normal((2, 3))),
            (np.arange(16.0).reshape(4, 4), np.array([[1.0, 0.0], [0.0, -1.0]]))]


def _true_convolution(x, w):
    """Flips the kernel first (the signal-processing convolution), which deep-learning layers do not."""
    return conv2d_valid(x, w[::-1, ::-1])


@exercise("ch4.conv2d_valid", _conv_cases,
          hints=[N_("The output has H - kh + 1 rows and W - kw + 1 columns; each output pixel is the sum of an "
                    "elementwise product of the kernel with one window of x."),
                 N_("Deep-learning 'convolution' does not flip the kernel: y[p, q] = sum_{i, j} w[i, j] x[p + i, q "
                    "+ j]."),
                 N_("Loop over the kernel offsets (i, j), not the pixels: y += w[i, j] * (the slice of x shifted by "
                    "(i, j) with the output's shape).")],
          wrong=_true_convolution)
def conv2d_valid(x, w):
    """'Valid' 2-D convolution (cross-correlation) of an image x (H, W) with a kernel w (kh, kw), stride 1."""
    kh, kw = w.shape
    H, W = x.shape
    y = np.zeros((H - kh + 1, W - kw + 1))
    for i in range(kh):
        for j in range(kw):
            y += w[i, j] * x[i:i + H - kh + 1, j:j + W - kw + 1]
    return y


def _dw_cases():
    rng = _rng()
    return [(rng.standard_normal((5, 6)), rng.standard_normal((3, 4))),
            (rng.standard_normal((4, 4)), rng.standard_normal((2, 2))),
            (np.arange(12.0).reshape(3, 4), np.array([[1.0, -1.0]]))]


@exercise("ch4.conv_weight_grad", _dw_cases,
          hints=[N_("w[i, j] touches every output y[p, q], through the single term w[i, j] x[p + i, q + j]: sum the "
                    "chain rule over all outputs."),
                 N_("dL/dw[i, j] = sum_{p, q} g[p, q] x[p + i, q + j]: the same shape of sum as the forward pass, "
                    "with g in the kernel's place."),
                 N_("It is a 'valid' convolution of x with g as the kernel, with no flip: conv2d_valid(x, g).")],
          wrong=lambda x, g: conv2d_valid(x, g[::-1, ::-1]))
def conv_weight_grad(x, grad_out):
    """dL/dw of y = conv2d_valid(x, w), given x (H, W) and g = dL/dy (H - kh + 1, W - kw + 1)."""
    return conv2d_valid(x, grad_out)


def _rf_cases():
    return [([3, 3],), ([3, 3, 3],), ([5],), ([3, 3, 3, 3, 3],), ([7, 3, 3],)]


@exercise("ch4.receptive_field", _rf_cases,
          hints=[N_("Start from one output pixel (a field of 1) and walk down: how many more input pixels does one "
                    "stride-1 k x k layer add along one side?"),
                 N_("A k-wide window centred on each of r pixels covers r + k - 1 pixels."),
                 N_("r = 1 + sum over the layers of (k_l - 1).")],
          wrong=lambda kernel_sizes: int(sum(kernel_sizes)))
def receptive_field(kernel_sizes):
    """Receptive field (in input pixels, along one side) of stacked stride-1 convolutions of these kernel sizes."""
    return 1 + int(sum(k - 1 for k in kernel_sizes))
