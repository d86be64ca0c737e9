"""Chapter 1 build-it steps and exercises: the neuron, the perceptron rule, activations and softmax.

In the lesson (each used by the cells after it): ``ch1.neuron_forward``, ``ch1.perceptron_update``,
``ch1.sigmoid_grad``, ``ch1.softmax``. For practice at the end: ``ch1.relu_grad``, ``ch1.softmax_jacobian``.
"""

import numpy as np

from ...i18n import N_
from ..checker import exercise


def _rng():
    return np.random.default_rng(101)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _neuron_cases():
    rng = _rng()
    return [(rng.standard_normal(3), rng.standard_normal(3), 0.5),
            (rng.standard_normal((4, 2)), rng.standard_normal(2), -1.25),
            (np.zeros(5), rng.standard_normal(5), 2.0),
            (rng.standard_normal((6, 3)), np.zeros(3), 0.0)]


@exercise("ch1.neuron_forward", _neuron_cases,
          hints=[N_("Two steps: a weighted sum of the inputs plus the bias, then the activation function applied "
                    "to it."),
                 N_("For a batch x of shape (N, d) and w of shape (d,), one matrix-vector product gives all N weighted "
                    "sums at once; the bias is added to each of them. The sigmoid is 1 / (1 + e^(-z))."),
                 N_("z = x @ w + b works for one input (d,) and for a batch (N, d); then return 1 / (1 + "
                    "np.exp(-z)).")],
          wrong=lambda x, w, b: _sigmoid(x @ w))
def neuron_forward(x, w, b):
    """A sigmoid neuron's output a = sigmoid(x . w + b) for one input x (d,) or a batch (N, d); w (d,), b a number."""
    return _sigmoid(x @ w + b)


def _perceptron_cases():
    w = np.array([0.5, -0.5])
    return [(np.zeros(2), 0.0, np.array([1.0, 2.0]), 1, 0.1),   # the very first step: score 0 counts as a mistake
            (w, 0.0, np.array([1.0, 2.0]), 1, 0.1),             # misclassified: update
            (w, 0.0, np.array([2.0, 1.0]), 1, 0.1),             # correct: no change
            (w, 0.2, np.array([1.0, 1.0]), -1, 0.5),            # z = b = 0.2 > 0 but y = -1: update
            (np.array([1.0, 1.0, -2.0]), -0.5, np.array([0.3, -0.2, -1.0]), -1, 0.25),  # y = -1, correct
            # the bias decides: w . x alone says the opposite of w . x + b
            (w, -1.0, np.array([2.0, 1.0]), 1, 0.1),            # w . x = 0.5 > 0, but z = -0.5: a mistake
            (w, 1.0, np.array([1.0, 2.0]), 1, 0.1),             # w . x = -0.5 < 0, but z = 0.5: correct
            (w, -0.3, np.array([1.0, 2.0]), -1, 0.1)]           # y = -1, w . x = -0.5, z = -0.8: correct


def _perceptron_always(w, b, x, y, lr):
    return w + lr * y * x, b + lr * y


@exercise("ch1.perceptron_update", _perceptron_cases,
          hints=[N_("The rule changes nothing when the sample is already on its correct side. When is a sample "
                    "misclassified, in terms of its label y in {-1, +1} and its score w . x + b?"),
                 N_("A sample is misclassified when y (w . x + b) <= 0 (a score of exactly 0 counts as a mistake, or "
                    "a perceptron started at zero would never move). Otherwise return w and b unchanged."),
                 N_("On a mistake the boundary moves towards the sample: add lr * y * x to w and lr * y to b.")],
          wrong=_perceptron_always, outputs=("w", "b"))
def perceptron_update(w, b, x, y, lr):
    """One step of the perceptron rule for a sample x (d,) with label y in {-1, +1}: returns (w, b)."""
    if y * (x @ w + b) <= 0:
        return w + lr * y * x, b + lr * y
    return w, b


def _z_cases():
    rng = _rng()
    return [(np.array([0.0]),), (rng.standard_normal(6) * 3,), (np.array([-30.0, -2.0, 0.5, 2.0, 30.0]),)]


@exercise("ch1.sigmoid_grad", _z_cases,
          hints=[N_("Differentiate 1 / (1 + e^(-z)) with the quotient (or chain) rule, then write the result using "
                    "sigma(z) itself."),
                 N_("The derivative is sigma(z) (1 - sigma(z)). Evaluate sigma at the pre-activation z first; "
                    "z (1 - z) is not it."),
                 N_("s = 1 / (1 + np.exp(-z)); return s * (1 - s).")],
          wrong=lambda z: z * (1 - z))
def sigmoid_grad(z):
    """The derivative of the sigmoid at the pre-activation z (any shape)."""
    s = _sigmoid(z)
    return s * (1 - s)


def _softmax_cases():
    rng = _rng()
    return [(rng.standard_normal((2, 4)),), (np.array([[1000.0, 999.0, -1000.0]]),), (np.array([[0.0, 0.0]]),),
            (rng.standard_normal((3, 5)) * 10,),
            # rows at very different magnitudes, |z| >= 1000: exp overflows (or underflows to 0 / 0) in float64
            # unless each row is shifted by its own maximum (one global shift, a row mean or the minimum is not enough)
            (np.array([[1000.0, -1000.0, 0.0, 998.0], [-1000.0, -1001.0, -1003.0, -1000.5],
                       [2.0, -1.0, 0.5, 0.0]]),),
            (np.array([[-1500.0, 1500.0], [3000.0, 2999.0]]),)]


def _naive_softmax(z):
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)


@exercise("ch1.softmax", _softmax_cases,
          hints=[N_("Exponentiate, then normalise each row so that it sums to 1. Then look at case 2: what does "
                    "np.exp(1000.0) give?"),
                 N_("softmax(z) = softmax(z - c) for any constant c per row (e^(-c) cancels). Choose c so that no "
                    "exponent is positive."),
                 N_("Subtract z.max(axis=1, keepdims=True) before np.exp, and divide by the row sums with "
                    "keepdims=True.")],
          wrong=_naive_softmax)
def softmax(z):
    """Row-wise softmax of a (N, C) array, stable for logits of +-1000."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---- practice at the end of the chapter ----

def _relu_cases():
    return [(np.array([-2.0, 0.0, 3.0]),), (np.linspace(-1, 1, 9),), (np.array([[0.5, -0.5], [0.0, 2.0]]),)]


@exercise("ch1.relu_grad", _relu_cases,
          hints=[N_("ReLU is the identity on one side of 0 and constant on the other: what is the slope on each side?"),
                 N_("The slope is 1 where z > 0 and 0 where z < 0. At exactly z = 0 PyTorch uses 0: mind > versus >=."),
                 N_("A comparison gives booleans; turn them into floats with .astype(float).")],
          wrong=lambda z: (z >= 0).astype(float))
def relu_grad(z):
    """The derivative of ReLU, with ReLU'(0) = 0 (PyTorch's convention)."""
    return (z > 0).astype(float)


def _jacobian_cases():
    rng = _rng()
    return [(np.array([0.0, 0.0]),), (rng.standard_normal(4),), (np.array([1000.0, 999.0, -1000.0]),)]


def _diagonal_only(z):
    s = softmax(z[None, :])[0]
    return np.diag(s * (1 - s))


@exercise("ch1.softmax_jacobian", _jacobian_cases,
          hints=[N_("Every output s_i depends on every input z_j (through the sum in the denominator), so most "
                    "entries of the Jacobian are not zero."),
                 N_("ds_i/dz_j = s_i (delta_ij - s_j): s_i (1 - s_i) on the diagonal, -s_i s_j off it."),
                 N_("With s the (stable) softmax of z: np.diag(s) - np.outer(s, s).")],
          wrong=_diagonal_only)
def softmax_jacobian(z):
    """The (C, C) Jacobian ds_i/dz_j of the softmax of one score vector z (C,)."""
    s = softmax(z[None, :])[0]
    return np.diag(s) - np.outer(s, s)
