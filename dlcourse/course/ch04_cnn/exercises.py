"""Chapter 4 exercises.

Build-it steps inside the lesson (the notebook uses the learner's functions afterwards): the convolution's
forward pass via im2col, its backward pass (dx, dW, db, any stride and padding), max pooling's backward pass with
ties, batch normalisation's backward pass. End-of-chapter practice: output sizes, a single-channel convolution and
its weight gradient, receptive fields.
"""

import numpy as np

from ...nn import functional as F
from ..exercises import exercise


def _rng():
    return np.random.default_rng(404)


def _out_hw(x, kh, kw, stride, padding):
    H, W = x.shape[2:]
    return (H + 2 * padding - kh) // stride + 1, (W + 2 * padding - kw) // stride + 1


# ---------------------------------------------------------------------------------------------------------------
# Build-it: the convolution's forward pass as one matrix product (im2col)
# ---------------------------------------------------------------------------------------------------------------


def _conv_forward_cases():
    rng = _rng()
    cases = []
    for N, C, O, H, W, kh, kw, stride, padding in [(1, 1, 1, 4, 4, 2, 2, 1, 0), (2, 3, 4, 7, 6, 3, 3, 1, 1),
                                                   (2, 2, 3, 8, 7, 3, 2, 2, 1), (3, 4, 2, 9, 9, 5, 5, 2, 2)]:
        cases.append((rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, kh, kw)),
                      rng.standard_normal(O), stride, padding))
    return cases


def _conv_forward_flipped(x, weight, bias, stride=1, padding=0):
    return conv2d_forward(x, weight[:, :, ::-1, ::-1], bias, stride, padding)  # the signal-processing flip


@exercise("ch4.conv2d_forward", _conv_forward_cases,
          hints=["Every column of X_cols is one receptive field, and each output channel is one filter: a dot product "
                 "of one row of weights with one column gives one output pixel of one channel.",
                 "weight.reshape(O, -1) lists each filter's numbers in the same order as a column (channel, then "
                 "kernel row, then kernel column). `@` with a 3-D array multiplies every image of the batch at once.",
                 "Y = W_mat @ X_cols has shape (N, O, H_out*W_out); the bias is one number per output channel, so it "
                 "needs the shape (O, 1) to be added to every pixel of its channel."],
          wrong=_conv_forward_flipped)
def conv2d_forward(x, weight, bias, stride=1, padding=0):
    """Convolution (PyTorch's conv2d) as one matrix product.

    x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, H_out, W_out).
    """
    N = x.shape[0]
    O, C, kh, kw = weight.shape
    H_out, W_out = _out_hw(x, kh, kw, stride, padding)
    cols = F.im2col(x, (kh, kw), stride=stride, padding=padding)  # X_cols (N, C*kh*kw, H_out*W_out)
    Y = weight.reshape(O, -1) @ cols + bias[:, None]               # (N, O, H_out*W_out)
    return Y.reshape(N, O, H_out, W_out)


# ---------------------------------------------------------------------------------------------------------------
# Build-it: its backward pass
# ---------------------------------------------------------------------------------------------------------------


def _conv_backward_cases():
    rng = _rng()
    cases = []
    for x, weight, _, stride, padding in _conv_forward_cases():
        H_out, W_out = _out_hw(x, *weight.shape[2:], stride, padding)
        cases.append((x, weight, rng.standard_normal((x.shape[0], weight.shape[0], H_out, W_out)), stride, padding))
    return cases


def _conv_backward_ignoring_stride(x, weight, grad_out, stride=1, padding=0):
    """dW and db right; dx by the stride-1 formula (full convolution of g with the flipped kernel), stride ignored."""
    _, dW, db = conv2d_backward(x, weight, grad_out, stride, padding)
    kh = weight.shape[2]
    dx = F.conv2d(grad_out, weight.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1], padding=kh - 1 - padding)
    return dx, dW, db


@exercise("ch4.conv2d_backward", _conv_backward_cases,
          hints=["Write the forward pass as Y = W_mat X_cols (+ b) for each image, with G = dL/dY of the same shape "
                 "(O, H_out*W_out). A matrix product's gradients are again matrix products: check the shapes.",
                 "dL/dW_mat = G X_cols^T and dL/dX_cols = W_mat^T G (per image). The weight is shared by every image, "
                 "so its gradient sums over the batch; so does the bias's, which also sums over the pixels.",
                 "dW = (G @ cols.transpose(0, 2, 1)).sum(axis=0) reshaped to weight.shape; db = G.sum(axis=(0, 2)); "
                 "dcols = W_mat.T @ G, then col2im adds each column back onto the pixels it came from."],
          wrong=_conv_backward_ignoring_stride)
def conv2d_backward(x, weight, grad_out, stride=1, padding=0):
    """Gradients of y = conv2d_forward(x, weight, bias, stride, padding).

    x (N, C, H, W), weight (O, C, kh, kw), grad_out = dL/dy (N, O, H_out, W_out) -> (dx, dW, db) with the shapes
    of x, weight and (O,).
    """
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    cols = F.im2col(x, (kh, kw), stride=stride, padding=padding)   # X_cols (N, C*kh*kw, L)
    G = grad_out.reshape(N, O, -1)                                 # (N, O, L)
    W_mat = weight.reshape(O, -1)                                  # (O, C*kh*kw)
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
    # windows: top left a tie in its top row, top right four equal values, bottom left a diagonal tie,
    # bottom right three equal maxima
    ties = np.array([[[[2.0, 2.0, 1.0, 1.0],
                       [1.0, 0.0, 1.0, 1.0],
                       [0.0, 3.0, 5.0, 0.0],
                       [3.0, 1.0, 5.0, 5.0]]]])
    relu_like = np.maximum(rng.standard_normal((2, 3, 4, 6)), 0)  # after ReLU: windows of zeros tie
    return [(rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 2, 2))),
            (rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 3, 2))),
            (ties, np.array([[[[10.0, 20.0], [30.0, 40.0]]]])),
            (relu_like, rng.standard_normal((2, 3, 2, 3)))]


def _every_tied_max(x, grad_out):
    """Sends g to every input equal to its window's maximum (wrong when there is a tie)."""
    N, C, H, W = x.shape
    windows = x.reshape(N, C, H // 2, 2, W // 2, 2)
    is_max = windows == windows.max(axis=(3, 5), keepdims=True)
    return (is_max * grad_out[:, :, :, None, :, None]).reshape(N, C, H, W)


@exercise("ch4.max_pool_backward", _pool_cases,
          hints=["Each output of the pool is one input of its window, the maximum: only that input influenced the "
                 "output, so only it receives the upstream gradient; the other inputs get 0. On a tie, PyTorch (and "
                 "the chapter) picks one: the first in row-major order.",
                 "Rearrange x into windows of 4 values, shape (N, C, H/2, W/2, 4): x.reshape(N, C, H/2, 2, W/2, 2), "
                 "then move the two within-window axes to the end. np.argmax returns the FIRST maximum.",
                 "Build a one-hot mask from the argmax (np.eye(4)[idx] or np.put_along_axis), multiply it by "
                 "grad_out[..., None], then undo the rearrangement to get back (N, C, H, W)."],
          wrong=_every_tied_max)
def max_pool_backward(x, grad_out):
    """dL/dx of a 2x2, stride-2 max pool of x (N, C, H, W) (H, W even), given grad_out = dL/dy (N, C, H/2, W/2).

    On a tie, the first maximum of the window in row-major order receives the gradient (as in PyTorch).
    """
    N, C, H, W = x.shape
    windows = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H // 2, W // 2, 4)
    first_max = np.argmax(windows, axis=-1)                        # (N, C, H/2, W/2), first on ties
    dwin = np.eye(4, dtype=grad_out.dtype)[first_max] * grad_out[..., None]
    return dwin.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)


# ---------------------------------------------------------------------------------------------------------------
# Build-it: batch normalisation's backward pass (training mode)
# ---------------------------------------------------------------------------------------------------------------


def _bn_cases():
    rng = _rng()
    return [(rng.standard_normal((6, 3)) * 2 + 1, rng.uniform(0.5, 1.5, 3), rng.standard_normal((6, 3)), 1e-5),
            (rng.standard_normal((32, 5)), rng.uniform(0.5, 1.5, 5), rng.standard_normal((32, 5)), 1e-5),
            (rng.standard_normal((2, 4)) * 0.1, rng.uniform(0.5, 1.5, 4), rng.standard_normal((2, 4)), 1e-3)]


def _bn_constant_stats(x, gamma, grad_out, eps=1e-5):
    """Treats the batch mean and variance as constants: misses two of the three paths from x to the loss."""
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + eps)
    return grad_out * gamma / np.sqrt(x.var(axis=0) + eps), (grad_out * x_hat).sum(axis=0), grad_out.sum(axis=0)


@exercise("ch4.batchnorm_backward", _bn_cases,
          hints=["x reaches the loss along three paths: directly through x_hat, through the batch mean mu and through "
                 "the batch variance. The gradients of gamma and beta are the easy part: sum over the batch.",
                 "dbeta = sum_m g, dgamma = sum_m g * x_hat. With dx_hat = g * gamma, the derivation of the chapter "
                 "collapses the three paths into one line that uses only dx_hat, x_hat and their batch means.",
                 "dx = (1 / sqrt(var + eps)) * (dx_hat - mean_m(dx_hat) - x_hat * mean_m(dx_hat * x_hat)), every mean "
                 "over axis 0 (the batch); var is the biased batch variance, x.var(axis=0)."],
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
          hints=["Count the positions where the window's first pixel can start so that its last pixel is still "
                 "inside the padded input.",
                 "The padded input has H + 2p pixels (padding on both sides); the last possible start is H + 2p - k, "
                 "and the starts are 0, s, 2s, ...",
                 "Integer-divide the last start by the stride (//) and add 1 for the start at 0."],
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
          hints=["The output has H - kh + 1 rows and W - kw + 1 columns; each output pixel is the sum of an "
                 "elementwise product of the kernel with one window of x.",
                 "Deep-learning 'convolution' does not flip the kernel: y[p, q] = sum_{i, j} w[i, j] x[p + i, q + j].",
                 "Loop over the kernel offsets (i, j), not the pixels: y += w[i, j] * (the slice of x shifted by "
                 "(i, j) with the output's shape)."],
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
          hints=["w[i, j] touches every output y[p, q], through the single term w[i, j] x[p + i, q + j]: sum the "
                 "chain rule over all outputs.",
                 "dL/dw[i, j] = sum_{p, q} g[p, q] x[p + i, q + j]: the same shape of sum as the forward pass, with g "
                 "in the kernel's place.",
                 "It is a 'valid' convolution of x with g as the kernel, with no flip: conv2d_valid(x, g)."],
          wrong=lambda x, g: conv2d_valid(x, g[::-1, ::-1]))
def conv_weight_grad(x, grad_out):
    """dL/dw of y = conv2d_valid(x, w), given x (H, W) and g = dL/dy (H - kh + 1, W - kw + 1)."""
    return conv2d_valid(x, grad_out)


def _rf_cases():
    return [([3, 3],), ([3, 3, 3],), ([5],), ([3, 3, 3, 3, 3],), ([7, 3, 3],)]


@exercise("ch4.receptive_field", _rf_cases,
          hints=["Start from one output pixel (a field of 1) and walk down: how many more input pixels does one "
                 "stride-1 k x k layer add along one side?",
                 "A k-wide window centred on each of r pixels covers r + k - 1 pixels.",
                 "r = 1 + sum over the layers of (k_l - 1)."],
          wrong=lambda kernel_sizes: int(sum(kernel_sizes)))
def receptive_field(kernel_sizes):
    """Receptive field (in input pixels, along one side) of stacked stride-1 convolutions of these kernel sizes."""
    return 1 + int(sum(k - 1 for k in kernel_sizes))
