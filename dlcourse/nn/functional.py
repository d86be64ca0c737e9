"""Plain functions of the course, each beside its backward pass (``dlcourse.nn.functional``).

The notebooks derive each formula with these before wrapping it in a Module. Every
``*_backward`` takes the upstream gradient ``grad_out`` (same shape as the forward output)
plus what the forward pass cached, and returns the gradient with respect to the input.
Later chapters add their own functions (convolution, pooling, ...) in their own files and
re-export them here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from ._batch_threads import over_batch

# ---------------------------------------------------------------------------------------
# Linear:  y = x W^T + b      x (N, *, in), W (out, in), b (out,), y (N, *, out)
# ---------------------------------------------------------------------------------------


def linear(x, weight, bias=None):
    y = x @ weight.T
    if bias is not None:
        y += bias
    return y


def linear_backward(grad_out, x, weight):
    """Return (dx, dW, db) for y = x W^T + b; leading batch dimensions are summed over."""
    x2 = x.reshape(-1, x.shape[-1])
    g2 = grad_out.reshape(-1, grad_out.shape[-1])
    dx = grad_out @ weight
    dW = g2.T @ x2
    db = g2.sum(axis=0)
    return dx, dW, db


# ---------------------------------------------------------------------------------------
# Activations. Backward passes use what is cheapest to cache: the input for ReLU-like
# functions, the output for sigmoid / tanh / softmax (sigma' = sigma (1 - sigma)).
# ---------------------------------------------------------------------------------------


def sigmoid(x):
    # special.expit is the numerically stable 1 / (1 + exp(-x)): no overflow for x = -1000.
    return special.expit(x)


def sigmoid_backward(grad_out, out):
    return grad_out * out * (1 - out)


def tanh(x):
    return np.tanh(x)


def tanh_backward(grad_out, out):
    return grad_out * (1 - out * out)


def relu(x):
    x = np.asarray(x)
    if x.ndim == 0:
        return np.maximum(x, 0)
    out = np.empty_like(x, dtype=np.result_type(x, 0))
    # large batches: one slice per thread BLAS may use (a convolution's output is several MB)
    over_batch(lambda b: np.maximum(x[b], 0, out=out[b]), len(x), x.nbytes)
    return out


def relu_backward(grad_out, x):
    # ReLU'(0) = 0, as in PyTorch.
    grad_out, x = np.asarray(grad_out), np.asarray(x)
    if grad_out.shape != x.shape or x.ndim == 0:
        return grad_out * (x > 0)
    out = np.empty_like(grad_out)
    over_batch(lambda b: np.multiply(grad_out[b], x[b] > 0, out=out[b]), len(x), x.nbytes)
    return out


def leaky_relu(x, negative_slope=0.01):
    return np.where(x > 0, x, negative_slope * x)


def leaky_relu_backward(grad_out, x, negative_slope=0.01):
    return grad_out * np.where(x > 0, 1.0, negative_slope).astype(grad_out.dtype)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(x, approximate="none"):
    """GELU(x) = x * Phi(x), Phi the standard normal CDF; ``approximate='tanh'`` as in PyTorch."""
    if approximate == "none":
        return 0.5 * x * (1.0 + special.erf(x / math.sqrt(2.0)))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x**3)))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def gelu_backward(grad_out, x, approximate="none"):
    if approximate == "none":
        # d/dx [x Phi(x)] = Phi(x) + x phi(x)
        cdf = 0.5 * (1.0 + special.erf(x / math.sqrt(2.0)))
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return grad_out * (cdf + x * pdf)
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = np.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
        return grad_out * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * d_inner)
    raise ValueError(f"gelu_backward: approximate must be 'none' or 'tanh', got {approximate!r}")


def softmax(x, dim=-1):
    # Subtracting the max changes nothing mathematically and keeps exp() from overflowing.
    shifted = x - x.max(axis=dim, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=dim, keepdims=True)


def softmax_backward(grad_out, out, dim=-1):
    # Jacobian-vector product of softmax: s * (g - <g, s>)
    return out * (grad_out - (grad_out * out).sum(axis=dim, keepdims=True))


def log_softmax(x, dim=-1):
    shifted = x - x.max(axis=dim, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))


# ---------------------------------------------------------------------------------------
# Losses (reduction='mean' unless told otherwise). Each returns (loss, dloss/dpred).
# ---------------------------------------------------------------------------------------


def _reduce(values, reduction):
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    if reduction == "none":
        return values
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def mse_loss(pred, target, reduction="mean"):
    """L = mean((pred - target)^2);   dL/dpred = 2 (pred - target) / n."""
    return _reduce((pred - target) ** 2, reduction)


def mse_loss_backward(pred, target, reduction="mean"):
    g = 2.0 * (pred - target)
    return g / pred.size if reduction == "mean" else g


def _class_targets(logits, target, weight=None, ignore_index=-100, label_smoothing=0.0):
    """The soft target q (the shape of ``logits``) and the mean's divisor, as PyTorch defines them.

    ``logits`` is (N, C, d1, ...); ``target`` holds class indices (N, d1, ...) or probabilities (the
    shape of ``logits``). Every loss term then reads  loss_i = -sum_c q_ic log softmax(logits)_ic:

    * indices:  q_ic = (1 - s) w_{y_i} [c = y_i] + (s / C) w_c, zero where y_i = ignore_index; the
      mean divides by sum_i w_{y_i} over the samples not ignored (the count, without weights);
    * probabilities:  q_ic = w_c ((1 - s) p_ic + s / C); the mean divides by the number of samples.

    (s = label_smoothing, w = weight, 1 when not given.)
    """
    c = logits.shape[1]
    w = None if weight is None else np.asarray(weight, dtype=logits.dtype).reshape((1, c) + (1,) * (logits.ndim - 2))
    if target.shape == logits.shape:  # class probabilities
        q = target if label_smoothing == 0 else target * (1 - label_smoothing) + label_smoothing / c
        q = q if w is None else q * w
        return q.astype(logits.dtype, copy=False), logits.size / c
    keep = target != ignore_index
    safe = np.where(keep, target, 0)
    per_sample = keep.astype(logits.dtype)
    if weight is not None:
        per_sample = per_sample * np.asarray(weight, dtype=logits.dtype)[safe]
    q = np.zeros_like(logits)
    np.put_along_axis(q, safe[:, None], ((1 - label_smoothing) * per_sample)[:, None], axis=1)
    if label_smoothing:
        q += (label_smoothing / c) * keep[:, None] * (1.0 if w is None else w)
    return q, per_sample.sum()


def _batched(logits, target):
    """Unbatched input (C,) with a label () or probabilities (C,) becomes a batch of one."""
    if logits.ndim == 1:
        return logits[None], np.asarray(target)[None], True
    return logits, target, False


def cross_entropy(logits, target, reduction="mean", weight=None, ignore_index=-100, label_smoothing=0.0):
    """Softmax cross-entropy on logits (N, C, d1, ...) or (C,), as ``torch.nn.functional.cross_entropy``.

    ``target``: integer labels (N, d1, ...) / () or class probabilities (the shape of ``logits``);
    ``weight`` (C,), ``ignore_index`` and ``label_smoothing`` as in PyTorch (see ``_class_targets``).

    A logit of -inf masks its class out: a class with target weight 0 contributes 0, never 0 x -inf
    (PyTorch's answer for labels, e.g. 1.7201 on [[0, -inf, 1], [2, 0, -inf]] with labels [0, 1]; for
    class probabilities PyTorch returns nan there, this returns the same finite value). A -inf logit
    on a class the target does weigh (the label itself, or any class under label smoothing) gives inf.
    """
    logits, target, unbatched = _batched(logits, target)
    q, divisor = _class_targets(logits, target, weight, ignore_index, label_smoothing)
    if np.isneginf(logits).any():  # masked classes: 0 x -inf is 0 here (the loss only reads the weighed ones)
        with np.errstate(invalid="ignore"):  # (a row masked entirely is nan, as in PyTorch)
            terms = np.where(q == 0, 0.0, q * log_softmax(logits, dim=1))
    else:
        terms = q * log_softmax(logits, dim=1)
    losses = -terms.sum(axis=1)
    if reduction == "mean":
        return losses.sum() / divisor
    out = _reduce(losses, reduction)
    return out[0] if unbatched and reduction == "none" else out


def cross_entropy_backward(logits, target, reduction="mean", weight=None, ignore_index=-100, label_smoothing=0.0):
    """dL/dlogits = softmax(logits) * sum_c q_c - q  (divided by the mean's divisor), q from ``_class_targets``.

    With one-hot q (plain labels) this is the familiar softmax(logits) - onehot(target).
    """
    shape = logits.shape
    logits, target, _ = _batched(logits, target)
    q, divisor = _class_targets(logits, target, weight, ignore_index, label_smoothing)
    grad = softmax(logits, dim=1) * q.sum(axis=1, keepdims=True) - q
    grad = grad / divisor if reduction == "mean" else grad
    return grad.reshape(shape)


def binary_cross_entropy(prob, target, reduction="mean", weight=None):
    """L = -w [y log p + (1 - y) log(1 - p)]; logs are clamped at -100 as in PyTorch."""
    with np.errstate(divide="ignore"):
        log_p = np.maximum(np.log(prob), -100)
        log_1mp = np.maximum(np.log1p(-prob), -100)
    losses = -(target * log_p + (1 - target) * log_1mp)
    return _reduce(losses if weight is None else losses * weight, reduction)


def binary_cross_entropy_backward(prob, target, reduction="mean", weight=None):
    # dL/dp = (p - y) / (p (1 - p)), with PyTorch's floor of 1e-12 on the denominator.
    g = (prob - target) / np.maximum(prob * (1 - prob), 1e-12)
    g = g if weight is None else g * weight
    return g / prob.size if reduction == "mean" else g


def binary_cross_entropy_with_logits(logits, target, reduction="mean", weight=None, pos_weight=None):
    """BCE on logits, stable for any x:  (1 - y) x + l (log(1 + exp(-|x|)) + max(-x, 0)),
    l = 1 + (pos_weight - 1) y (l = 1 without pos_weight: the plain max(x, 0) - x y + log(1 + e^-|x|))."""
    softplus_neg = np.log1p(np.exp(-np.abs(logits))) + np.maximum(-logits, 0)  # log(1 + e^-x)
    log_weight = 1.0 if pos_weight is None else 1 + (pos_weight - 1) * target
    losses = (1 - target) * logits + log_weight * softplus_neg
    return _reduce(losses if weight is None else losses * weight, reduction)


def binary_cross_entropy_with_logits_backward(logits, target, reduction="mean", weight=None, pos_weight=None):
    # dL/dx = (1 - y) - l sigmoid(-x); without pos_weight (l = 1) that is sigmoid(x) - y.
    if pos_weight is None:
        g = sigmoid(logits) - target
    else:
        g = (1 - target) - (1 + (pos_weight - 1) * target) * sigmoid(-logits)
    g = g if weight is None else g * weight
    return g / logits.size if reduction == "mean" else g


def one_hot(labels, num_classes: int, dtype=np.float32):
    """(N,) integer labels -> (N, num_classes) one-hot rows."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"one_hot: expected labels in [0, {num_classes}), got {bad}")
    out = np.zeros((labels.size, num_classes), dtype=dtype)
    out[np.arange(labels.size), labels.ravel()] = 1
    return out.reshape(*labels.shape, num_classes)


# Chapter 4 (convolution, pooling) and chapter 8 (embeddings, layer normalisation, attention): their own
# files, re-exported here.
from .attention_functional import (  # noqa: E402,F401
    attention_weights,
    causal_mask,
    scaled_dot_product_attention,
    scaled_dot_product_attention_backward,
)
from .conv_functional import col2im, conv2d, conv2d_backward, conv_output_size, im2col  # noqa: E402,F401
from .embedding import embedding, embedding_backward  # noqa: E402,F401
from .normalization import layer_norm, layer_norm_backward  # noqa: E402,F401
from .pool_functional import (  # noqa: E402,F401
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
)
