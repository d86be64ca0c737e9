"""Chapter 2's MLP playground, driven by setting control values (observers fire synchronously), and the
hand-written training loop behind it."""

import numpy as np

from dlcourse.course.ch02_backprop.mlp_playground import MLPPlayground, train_by_hand


def test_mlp_playground_retrains_on_lr_change():
    w = MLPPlayground(num_steps=100)
    before = w.readout.value
    w.controls["lr"].value = 0.01
    assert w.readout.value != before and "final loss" in w.readout.value
    losses = w.axes[1].get_lines()[0].get_ydata()
    assert len(losses) == 100


def test_mlp_playground_reports_divergence_instead_of_nan():
    w = MLPPlayground(num_steps=100)
    w.controls["lr"].value = 100.0
    text = w.readout.value
    assert "nan" not in text.lower()
    assert "diverged at step" in text or "too large" in text


def test_train_by_hand_learns_spirals():
    from dlcourse.data import make_spirals
    X, y = make_spirals(60, 3, seed=0)
    model, losses, diverged = train_by_hand(X, y, hidden_size=64, lr=1.0, num_steps=600)
    assert diverged is None and losses[-1] < 0.5 * losses[0]
    assert np.mean(model(X).argmax(axis=1) == y) > 0.85
