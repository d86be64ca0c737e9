"""Chapter 1 exercises: the neuron, its activations and the perceptron rule."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(101)


def _weighted_sum_cases():
    rng = _rng()
    return [(rng.standard_normal(3), rng.standard_normal(3), 0.5),
            (rng.standard_normal((4, 2)), rng.standard_normal(2), -1.25),
            (np.zeros(5), rng.standard_normal(5), 2.0)]


@exercise("ch1.weighted_sum", _weighted_sum_cases,
          hint="z = x . w + b; with a batch x of shape (N, d) use x @ w, and do not forget the bias.",
          wrong=lambda x, w, b: x @ w)
def weighted_sum(x, w, b):
    """The neuron's pre-activation z = x . w + b, for one input (d,) or a batch (N, d)."""
    return x @ w + b


def _z_cases():
    rng = _rng()
    return [(np.array([0.0]),), (rng.standard_normal(6) * 3,), (np.array([-30.0, -2.0, 0.5, 2.0, 30.0]),)]


@exercise("ch1.sigmoid_grad", _z_cases,
          hint="sigma'(z) = sigma(z) (1 - sigma(z)): evaluate sigma first, at the pre-activation z.",
          wrong=lambda z: z * (1 - z))
def sigmoid_grad(z):
    """The derivative of the sigmoid at the pre-activation z."""
    s = 1.0 / (1.0 + np.exp(-z))
    return s * (1 - s)


def _relu_cases():
    return [(np.array([-2.0, 0.0, 3.0]),), (np.linspace(-1, 1, 9),)]


@exercise("ch1.relu_grad", _relu_cases,
          hint="ReLU'(z) is 1 where z > 0 and 0 elsewhere; at exactly z = 0 use 0, as PyTorch does.",
          wrong=lambda z: (z >= 0).astype(float))
def relu_grad(z):
    """The derivative of ReLU, with ReLU'(0) = 0 (PyTorch's convention)."""
    return (z > 0).astype(float)


def _softmax_cases():
    rng = _rng()
    return [(rng.standard_normal((2, 4)),), (np.array([[1000.0, 999.0, -1000.0]]),), (np.array([[0.0, 0.0]]),)]


def _naive_softmax(z):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


@exercise("ch1.softmax", _softmax_cases,
          hint="subtract each row's maximum before exp(): softmax is unchanged and exp() no longer overflows.",
          wrong=_naive_softmax)
def softmax(z):
    """Row-wise softmax of a (N, C) array, stable for logits of +-1000."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _perceptron_cases():
    w = np.array([0.5, -0.5])
    return [(w, 0.0, np.array([1.0, 2.0]), 1, 0.1),   # misclassified: update
            (w, 0.0, np.array([2.0, 1.0]), 1, 0.1),   # correct: no change
            (w, 0.2, np.array([1.0, 1.0]), -1, 0.5)]  # z = b = 0.2 > 0 but y = -1: update


def _perceptron_always(w, b, x, y, lr):
    return w + lr * y * x, b + lr * y


@exercise("ch1.perceptron_update", _perceptron_cases,
          hint="update only when the sample is misclassified, i.e. y (w . x + b) <= 0; then w += lr y x, b += lr y.",
          wrong=_perceptron_always)
def perceptron_update(w, b, x, y, lr):
    """One step of the perceptron rule for a sample x with label y in {-1, +1}: returns (w, b)."""
    if y * (x @ w + b) <= 0:
        return w + lr * y * x, b + lr * y
    return w, b
