"""Chapter 7's build-it references are right (against PyTorch and the library), and the claims the notebook
prints without asserting hold (the CI side of what used to be notebook asserts)."""

import numpy as np
import pytest
import torch

from dlcourse import optim
from dlcourse.course.ch07_mnist_project import exercises as ex7
from dlcourse.train import confusion_matrix as library_confusion_matrix


def test_train_epoch_matches_pytorch_sgd_on_the_same_batches():
    model, x, y, *_ = ex7._tiny_problem(90, n=45)
    twin = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).double()
    twin.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()})
    opt_t = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    order = np.random.default_rng(7).permutation(len(x))
    losses = []
    for start in range(0, len(x), 16):
        idx = order[start:start + 16]
        loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x[idx])), torch.from_numpy(y[idx]))
        opt_t.zero_grad()
        loss.backward()
        opt_t.step()
        losses.append(loss.item() * len(idx))

    mean_loss, _ = ex7.train_epoch(model, optim.SGD(model.parameters(), lr=0.1, momentum=0.9), x, y, 16,
                                   np.random.default_rng(7))
    assert mean_loss == pytest.approx(sum(losses) / len(x), rel=1e-10)
    for k, v in twin.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12)


def test_fit_early_stopping_stops_after_patience_and_keeps_the_best_weights():
    model, x, y, x_val, y_val, _ = ex7._tiny_problem(81, n=30, n_val=40, noise=2.5, hidden=32)
    curves = ex7.fit_early_stopping(model, optim.Adam(model.parameters(), lr=5e-2), x, y, x_val, y_val,
                                    max_epochs=30, patience=2, batch_size=10)
    best = int(np.argmin(curves.val_loss)) + 1
    assert curves.best_epoch == best
    assert curves.epochs == best + 2 < 30  # stopped two epochs after the best one
    assert curves.kept_val_loss == pytest.approx(min(curves.val_loss), rel=1e-12)


def test_confusion_matrix_agrees_with_the_library_and_counts_repeats(rng):
    y_true, y_pred = rng.integers(0, 6, 200), rng.integers(0, 6, 200)
    cm = ex7.confusion_matrix(y_true, y_pred, 6)
    np.testing.assert_array_equal(cm, library_confusion_matrix(y_true, y_pred, 6))
    assert cm.sum() == 200 and np.trace(cm) == np.sum(y_true == y_pred)


def test_most_confident_mistakes_are_mistakes_in_decreasing_confidence(rng):
    logits = rng.standard_normal((100, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 100)
    top = ex7.most_confident_mistakes(probs, labels, 12)
    pred = probs.argmax(axis=1)
    assert len(top) == 12 and np.all(pred[top] != labels[top])
    confidence = probs[top, pred[top]]
    assert np.all(np.diff(confidence) <= 0)
    others = np.setdiff1d(np.flatnonzero(pred != labels), top)
    assert probs[others, pred[others]].max() <= confidence.min()
