"""Chapter 4 exercises: output sizes, the convolution and its backward pass, pooling, receptive fields."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(404)


def _size_cases():
    return [(28, 3, 1, 1), (28, 3, 1, 0), (32, 5, 2, 2), (7, 3, 2, 0), (224, 7, 2, 3), (10, 4, 3, 1)]


@exercise("ch4.output_size", _size_cases,
          hint="out = floor((H + 2p - k) / s) + 1: the padding is added on both sides, and the +1 counts the first "
               "window position.",
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
          hint="y[p, q] = sum_{i, j} w[i, j] * x[p + i, q + j] for p < H - kh + 1, q < W - kw + 1; deep-learning "
               "'convolution' does not flip the kernel (it is a cross-correlation).",
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
          hint="dL/dw[i, j] = sum_{p, q} g[p, q] * x[p + i, q + j]: the weight gradient is itself a 'valid' "
               "convolution, of the input x with the upstream gradient g as the kernel (no flip).",
          wrong=lambda x, g: conv2d_valid(x, g[::-1, ::-1]))
def conv_weight_grad(x, grad_out):
    """dL/dw of y = conv2d_valid(x, w), given x (H, W) and g = dL/dy (H - kh + 1, W - kw + 1)."""
    return conv2d_valid(x, grad_out)


def _pool_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 4)), rng.standard_normal((2, 2))),
            (rng.standard_normal((6, 4)), rng.standard_normal((3, 2))),
            (np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[5.0]]))]


def _spread_evenly(x, g):
    return np.kron(g, np.ones((2, 2))) / 4


@exercise("ch4.max_pool_backward", _pool_cases,
          hint="each output of a 2x2 max pool came from one input, the maximum of its window: that input gets the "
               "whole upstream gradient, the other three get 0 (spreading g / 4 is average pooling's backward pass).",
          wrong=_spread_evenly)
def max_pool_backward(x, grad_out):
    """dL/dx of a 2x2, stride-2 max pooling of x (H, W) (H, W even, no ties), given g = dL/dy (H/2, W/2)."""
    H, W = x.shape
    windows = x.reshape(H // 2, 2, W // 2, 2)
    is_max = windows == windows.max(axis=(1, 3), keepdims=True)
    return (is_max * grad_out[:, None, :, None]).reshape(H, W)


def _rf_cases():
    return [([3, 3],), ([3, 3, 3],), ([5],), ([3, 3, 3, 3, 3],), ([7, 3, 3],)]


@exercise("ch4.receptive_field", _rf_cases,
          hint="each stride-1 k x k layer widens the region one output pixel sees by k - 1: r = 1 + sum (k_l - 1).",
          wrong=lambda kernel_sizes: int(sum(kernel_sizes)))
def receptive_field(kernel_sizes):
    """Receptive field (in input pixels, along one side) of stacked stride-1 convolutions of these kernel sizes."""
    return 1 + int(sum(k - 1 for k in kernel_sizes))
