"""The chapter 7 widget, driven through its controls as a learner would."""

import numpy as np
import pytest

from dlcourse.course.ch07_mnist_project.digit_browser import DigitBrowser


@pytest.fixture
def browser():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (30, 28, 28)).astype(np.uint8)
    labels = np.arange(30) % 10
    logits = rng.standard_normal((30, 10))
    logits[np.arange(30), labels] += 3  # mostly right ...
    logits[[4, 17, 25], labels[[4, 17, 25]]] -= 10  # ... with three sure mistakes
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return DigitBrowser(images, labels, probs)


def shown_image(w):
    return w.axes[0].images[0].get_array()


def bar_heights(w):
    return np.array([p.get_height() for p in w.axes[1].patches])


def test_starts_on_the_first_digit(browser):
    assert browser.n_updates == 1
    np.testing.assert_array_equal(shown_image(browser), browser.images[0])
    np.testing.assert_allclose(bar_heights(browser), browser.probs[0])
    assert "#0: true 0" in browser.readout.value and "1 of 30 digits" in browser.readout.value


def test_mistakes_filter_shows_only_mistakes(browser):
    mistakes = browser.selection("mistakes")
    assert set(mistakes) >= {4, 17, 25}
    assert all(browser.pred[i] != browser.labels[i] for i in mistakes)
    browser.controls["show"].value = "mistakes"
    assert browser.n_updates == 2  # one redraw, not one per control that moved
    first = mistakes[0]
    np.testing.assert_array_equal(shown_image(browser), browser.images[first])
    assert f"#{first}:" in browser.readout.value and "(wrong)" in browser.readout.value
    assert f"1 of {len(mistakes)} mistakes" in browser.readout.value
    assert browser.controls["position"].max == len(mistakes) - 1
    # the predicted (wrong) class is drawn red, the true class outlined
    pred, true = browser.pred[first], browser.labels[first]
    assert browser.axes[1].patches[pred].get_facecolor()[:3] == pytest.approx((0.839, 0.153, 0.157), abs=0.01)
    assert browser.axes[1].patches[true].get_linewidth() == 2


def test_class_filter_and_position(browser):
    browser.controls["show"].value = 7
    assert list(browser.selection(7)) == [7, 17, 27]
    browser.controls["position"].value = 2
    assert browser.n_updates == 3
    np.testing.assert_array_equal(shown_image(browser), browser.images[27])
    np.testing.assert_allclose(bar_heights(browser), browser.probs[27])
    assert "3 of 3 true 7s" in browser.readout.value
    browser.controls["show"].value = "all"  # a new filter starts at its first digit
    assert browser.controls["position"].value == 0 and browser.controls["position"].max == 29
    assert "#0:" in browser.readout.value


def test_no_mistakes_says_so():
    labels = np.arange(5)
    w = DigitBrowser(np.zeros((5, 28, 28)), labels, np.eye(5)[labels])
    w.controls["show"].value = "mistakes"
    assert "no digit matches" in w.readout.value


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 784)), np.zeros(3, int), np.full((3, 10), 0.1)), r"\(N, H, W\)"),
    ((np.zeros((3, 28, 28)), np.zeros(2, int), np.full((3, 10), 0.1)), "labels"),
    ((np.zeros((3, 28, 28)), np.zeros(3, int), np.ones((3, 10))), "summing to 1"),
    ((np.zeros((3, 28, 28)), np.full(3, 10), np.full((3, 10), 0.1)), r"labels in \[0, 10\)"),
])
def test_bad_input_is_a_value_error(args, message):
    with pytest.raises(ValueError, match=message):
        DigitBrowser(*args)
