"""Chapter 1's build-it checks cannot be fooled by the classic mistakes, and the learner's gradient check works.

The mutation test (tests/mutation.py) covers automatic edits of the references; these are the hand-written semantic
mistakes that issue 19 found passing: a softmax without its per-row max shift, and a perceptron whose mistake test
ignores the bias.
"""

import numpy as np
import pytest

from dlcourse import gradcheck
from dlcourse.course.checker import REGISTRY, check, reference
from dlcourse.nn import functional as F


def _shifted_softmax(shift):
    def softmax(z):
        e = np.exp(z - shift(z))
        return e / e.sum(axis=1, keepdims=True)
    return softmax


UNSTABLE_SOFTMAXES = {
    "no shift": _shifted_softmax(lambda z: 0.0),
    "one global max": _shifted_softmax(lambda z: z.max()),
    "row mean": _shifted_softmax(lambda z: z.mean(axis=1, keepdims=True)),
    "row minimum": _shifted_softmax(lambda z: z.min(axis=1, keepdims=True)),
}


@pytest.mark.parametrize("mistake", list(UNSTABLE_SOFTMAXES))
def test_softmax_without_a_per_row_max_shift_fails(mistake, capsys):
    with np.errstate(all="ignore"):
        assert not check("ch1.softmax", UNSTABLE_SOFTMAXES[mistake])
    assert "NaN or inf" in capsys.readouterr().out


def test_softmax_cases_really_overflow_float64():
    """At least one case has |z| >= 1000 in rows of different magnitudes, where exp itself overflows."""
    cases = REGISTRY["ch1.softmax"].cases()
    big = [z for (z,) in cases if np.abs(z).max() >= 1000]
    assert big
    with np.errstate(over="ignore"):
        assert any(not np.all(np.isfinite(np.exp(z))) for z in big)
    assert any(z.shape[0] > 1 and np.ptp(z.max(axis=1)) >= 1000 for z in big)  # rows at different magnitudes


def test_perceptron_mistake_test_ignoring_the_bias_fails(capsys):
    def ignores_bias(w, b, x, y, lr):
        if y * (x @ w) <= 0:
            return w + lr * y * x, b + lr * y
        return w, b

    assert not check("ch1.perceptron_update", ignores_bias)
    assert "differ" in capsys.readouterr().out


def test_hand_wired_xor_from_sigmoid_neurons():
    """The chapter's XOR network built from neuron_forward (weights x10) gives XOR read at 0.5."""
    neuron_forward = reference("ch1.neuron_forward")
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    W_hidden, b_hidden = np.array([[1.0, 1.0], [-1.0, -1.0]]), np.array([-0.5, 1.5])
    hidden = np.stack([neuron_forward(X, 10 * W_hidden[j], 10 * b_hidden[j]) for j in range(2)], axis=1)
    out = neuron_forward(hidden, 10 * np.array([1.0, 1.0]), 10 * -1.5)
    assert np.array_equal(out > 0.5, [False, True, True, False])


def test_learner_gradient_check_passes_a_right_and_fails_a_wrong_derivative():
    z = np.random.default_rng(1).standard_normal(8) * 3
    right = gradcheck(F.sigmoid, z, backward=lambda z, g: g * reference("ch1.sigmoid_grad")(z))
    assert right and right.max_error < 1e-8
    sigma = F.sigmoid
    wrong = gradcheck(F.sigmoid, z, backward=lambda z, g: g * sigma(z) * (1 - sigma(z)) * 2)  # off by a factor
    assert not wrong and wrong.max_error > 0.1
