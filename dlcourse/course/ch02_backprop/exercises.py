"""Chapter 2 exercises: the chain rule, backward passes of Linear and the losses."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(202)


def _delta_cases():
    rng = _rng()
    return [(np.array([0.7]), np.array([1.0])), (rng.uniform(0.05, 0.95, 5), rng.integers(0, 2, 5).astype(float))]


@exercise("ch2.sigmoid_output_delta", _delta_cases,
          hint="chain rule: dJ/dz = dJ/da * da/dz, with J = (a - y)^2 and a = sigma(z), so da/dz = a (1 - a).",
          wrong=lambda a, y: 2 * (a - y))
def sigmoid_output_delta(a, y):
    """dJ/dz for J = (a - y)^2 per sample, where the output a = sigma(z) is given."""
    return 2 * (a - y) * a * (1 - a)


def _linear_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))),
            (rng.standard_normal((1, 5)), rng.standard_normal((5, 5)), rng.standard_normal((1, 5)))]


@exercise("ch2.linear_backward", _linear_cases,
          hint="y = x W^T + b with x (N, in), W (out, in): dx = g W, dW = g^T x (shape of W), db = sum of g over N.",
          wrong=lambda x, W, g: (g @ W, x.T @ g, g.sum(axis=0)))
def linear_backward(x, W, grad_out):
    """Gradients (dx, dW, db) of y = x W^T + b, given dL/dy = grad_out."""
    return grad_out @ W, grad_out.T @ x, grad_out.sum(axis=0)


def _ce_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])), (np.array([[2.0, -1.0]]), np.array([1]))]


def _ce_no_mean(logits, labels):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p


@exercise("ch2.softmax_ce_grad", _ce_cases,
          hint="for the mean cross-entropy over N samples, dL/dlogits = (softmax(logits) - onehot(labels)) / N.",
          wrong=_ce_no_mean)
def softmax_ce_grad(logits, labels):
    """dL/dlogits of the mean softmax cross-entropy."""
    return _ce_no_mean(logits, labels) / len(labels)


def _bce_cases():
    rng = _rng()
    return [(np.array([0.9, 0.2]), np.array([1.0, 0.0])),
            (rng.uniform(0.05, 0.95, 6), rng.integers(0, 2, 6).astype(float))]


@exercise("ch2.bce", _bce_cases,
          hint="the minus sign covers both terms: -[y log p + (1 - y) log(1 - p)], averaged over samples.",
          wrong=lambda p, y: np.mean(-y * np.log(p) + (1 - y) * np.log(1 - p)))
def bce(p, y):
    """Mean binary cross-entropy of probabilities p against labels y in {0, 1}."""
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _mse_cases():
    rng = _rng()
    return [(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])),
            (rng.standard_normal((4, 2)), rng.standard_normal((4, 2)))]


@exercise("ch2.mse_grad", _mse_cases,
          hint="L = (1/n) sum (y_hat - y)^2, so dL/dy_hat = (2/n)(y_hat - y): mind the sign and the 1/n.",
          wrong=lambda y_hat, y: 2 * (y - y_hat))
def mse_grad(y_hat, y):
    """dL/dy_hat of the mean squared error over all n entries."""
    return 2 * (y_hat - y) / y_hat.size
