"""Chapter 7 build-it steps and exercises: the training loop (one epoch, then early stopping on the validation
loss), which the notebook trains every NumPy model with, the confusion matrix, the most confident mistakes, and the
small pieces of an honest MNIST pipeline.
"""

import copy
import math
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

from dlcourse import nn, optim
from dlcourse import random as package_random
from dlcourse.nn import functional as F
from dlcourse.train import evaluate

from ...i18n import N_
from ..checker import exercise


class Curves(NamedTuple):
    """What :func:`fit_early_stopping` returns: per-epoch lists, the kept (best) epoch and its validation loss."""

    train_loss: list   # mean mini-batch loss of each epoch, in train mode
    train_acc: list    # running accuracy of the epoch's mini-batches, in train mode
    val_loss: list     # after each epoch, in eval mode
    val_acc: list
    best_epoch: int    # 1-based epoch whose weights the model holds at the end
    kept_val_loss: float  # validation loss of the weights left in the model

    @property
    def epochs(self) -> int:
        return len(self.train_loss)


def _rng():
    return np.random.default_rng(707)


def _one_hot_cases():
    rng = _rng()
    return [(np.array([3, 0, 9]), 10), (rng.integers(0, 4, 7), 4), (np.array([1]), 2)]


@exercise("ch7.one_hot", _one_hot_cases,
          hints=[N_("Row n stands for sample n; it has one entry per class. Which entry is 1?"),
                 N_("Start from an (N, num_classes) array of zeros and set one entry in each row."),
                 N_("Integer-array indexing sets one entry per row at once: out[rows, columns] = 1 with rows = "
                    "np.arange(N).")],
          wrong=lambda labels, num_classes: np.eye(num_classes)[:, labels])
def one_hot(labels, num_classes):
    """(N,) integer labels -> (N, num_classes) one-hot rows."""
    out = np.zeros((len(labels), num_classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def _standardize_cases():
    rng = _rng()
    return [(rng.uniform(0, 255, (20, 6)), rng.uniform(0, 255, (5, 6))),
            (rng.normal(3, 2, (50, 4)), rng.normal(5, 1, (10, 4)))]


def _standardize_leaky(train, test):
    return (train - train.mean()) / train.std(), (test - test.mean()) / test.std()


@exercise("ch7.standardize", _standardize_cases,
          hints=[N_("Which of the two sets is allowed to decide the preprocessing? The other one only receives it."),
                 N_("Compute one mean and one standard deviation over all the training values (not per column)."),
                 N_("Apply those same two numbers to the test set; never its own statistics.")],
          wrong=_standardize_leaky)
def standardize(train, test):
    """Return (train, test) standardised with the mean and standard deviation of all training values."""
    mean, std = train.mean(), train.std()
    return (train - mean) / std, (test - mean) / std


def _accuracy_cases():
    rng = _rng()
    return [(rng.standard_normal((12, 10)), rng.integers(0, 10, 12)),
            (np.array([[2.0, 1.0], [0.0, 3.0], [5.0, -1.0]]), np.array([0, 0, 0])),
            (rng.standard_normal((9, 3)), rng.integers(0, 3, 9))]


@exercise("ch7.accuracy", _accuracy_cases,
          hints=[N_("The predicted class of a sample is the class with the largest logit. Along which axis?"),
                 N_("Rows are samples, columns classes: argmax along axis=1 gives the N predictions."),
                 N_("Accuracy is the mean of a boolean array: predictions == labels.")],
          wrong=lambda logits, labels: float(np.mean(logits.argmax(axis=0)[: len(labels)] == labels)))
def accuracy(logits, labels):
    """Fraction of samples whose largest logit is at the label's index (logits (N, C), labels (N,))."""
    return float(np.mean(logits.argmax(axis=1) == labels))


def _cm_cases():
    rng = _rng()
    return [(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 1, 1]), 3),
            (np.array([1, 1, 1, 0]), np.array([1, 1, 0, 0]), 2),          # the same (true, predicted) pair twice
            (rng.integers(0, 5, 40), rng.integers(0, 5, 40), 5)]


def _cm_fancy_index(y_true, y_pred, num_classes):
    """cm[y_true, y_pred] += 1 counts a repeated (true, predicted) pair only once."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    cm[y_true, y_pred] += 1
    return cm


@exercise("ch7.confusion_matrix", _cm_cases,
          hints=[N_("Start from a (K, K) array of zeros. Each sample adds 1 to exactly one cell: which row, which "
                    "column?"),
                 N_("Row = true class, column = predicted class; the diagonal holds the correct answers, and all "
                    "entries add up to N."),
                 N_("A loop over the samples is fine. Careful with the vectorised cm[rows, cols] += 1: a pair that "
                    "occurs twice is counted once (numpy's unbuffered np.add.at counts it twice).")],
          wrong=_cm_fancy_index)
def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) counts: rows are true classes, columns predicted classes (y_true, y_pred (N,))."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _mistake_cases():
    rng = _rng()
    logits = rng.standard_normal((30, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 30)
    small = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    # many ties in confidence among more than 16 mistakes: NumPy's default (unstable) sort reorders them
    conf = rng.choice([0.4, 0.55, 0.7], 40)
    pred = rng.integers(0, 4, 40)
    tied = np.repeat(((1 - conf) / 3)[:, None], 4, axis=1)
    tied[np.arange(40), pred] = conf
    tie_labels = np.where(rng.random(40) < 0.15, pred, (pred + rng.integers(1, 4, 40)) % 4)
    return [(probs, labels, 5), (small, np.array([1, 1, 1, 0]), 2), (tied, tie_labels, 25)]


def _confident_any(probs, labels, k):
    return np.argsort(-probs.max(axis=1), kind="stable")[:k]


@exercise("ch7.most_confident_mistakes", _mistake_cases,
          hints=[N_("Two steps: find the mistakes, then rank them by how sure the model was."),
                 N_("A mistake is a row whose argmax differs from its label; the model's confidence in a row is the "
                    "probability of its predicted class."),
                 N_("np.argsort sorts ascending: sort by minus the confidence (kind='stable' keeps ties in index "
                    "order), and map the positions back to indices of the whole array.")],
          wrong=_confident_any)
def most_confident_mistakes(probs, labels, k):
    """Indices of the k misclassified samples with the highest predicted-class probability, most confident first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    order = np.argsort(-probs[wrong, pred[wrong]], kind="stable")
    return wrong[order][:k]


# ---------------------------------------------------------------------------------------
# Section 4's common mistake: the squared error on softmax outputs, and its gradient at the logits
# ---------------------------------------------------------------------------------------


def _mse_cases():
    rng = _rng()
    return [(rng.standard_normal((6, 4)) * 2, rng.integers(0, 4, 6)),
            (np.array([[8.0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]), np.array([3])),        # confidently wrong: tiny gradient
            # exp overflows, and one shift for the whole batch underflows the second row (its max is 2000 lower)
            (np.array([[1000.0, -1000.0, 0.0], [-1500.0, -1000.0, -2500.0]]), np.array([1, 2])),
            (rng.standard_normal((5, 3)), np.array([2, 2, 0, 2, 1]))]


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _mse_no_jacobian(logits, labels):
    """Forgets the softmax: hands dL/dp back as if it were dL/dlogits."""
    p = _softmax(logits)
    diff = p - F.one_hot(labels, logits.shape[1], dtype=p.dtype)
    return float(np.mean(diff ** 2)), 2 * diff / diff.size


@exercise("ch7.mse_on_softmax", _mse_cases,
          hints=[N_("Two stages: the loss as a function of p = softmax(z), then the chain rule back through the "
                    "softmax, row by row (each row's softmax only depends on its own logits)."),
                 N_("L = mean over all N*C entries of (p - Y)^2, so dL/dp = 2 (p - Y) / (N C). The softmax's Jacobian "
                    "is diag(p) - p p^T for one row: dL/dz = p * (dL/dp - sum_j p_j dL/dp_j)."),
                 N_("Subtract each row's maximum before np.exp (logits of 1000 overflow); the row sum in the last step "
                    "is np.sum(p * grad_p, axis=1, keepdims=True).")],
          wrong=_mse_no_jacobian)
def mse_on_softmax(logits, labels):
    """L = mean over all N*C entries of (softmax(logits) - one_hot(labels))^2 and dL/dlogits.

    logits (N, C), labels (N,) -> (loss: float, grad (N, C)), as torch.nn.functional.mse_loss on softmax outputs.
    """
    p = _softmax(logits)
    diff = p - F.one_hot(labels, logits.shape[1], dtype=p.dtype)
    loss = float(np.mean(diff ** 2))
    grad_p = 2 * diff / diff.size
    grad_logits = p * (grad_p - np.sum(p * grad_p, axis=1, keepdims=True))
    return loss, grad_logits


# ---------------------------------------------------------------------------------------
# The training loop: one epoch, then epochs with early stopping on the validation loss
# ---------------------------------------------------------------------------------------


def _tiny_problem(seed, n=48, n_val=24, d=12, classes=3, hidden=16, noise=1.0):
    """A small float64 classification problem and a fresh MLP for it (for the hidden cases)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((classes, d)) * 1.5
    y, y_val = rng.integers(0, classes, n), rng.integers(0, classes, n_val)
    x = centers[y] + noise * rng.standard_normal((n, d))
    x_val = centers[y_val] + noise * rng.standard_normal((n_val, d))
    model = nn.Sequential(nn.Linear(d, hidden, dtype=np.float64), nn.ReLU(), nn.Linear(hidden, classes,
                                                                                        dtype=np.float64))
    for p in model.parameters():  # weights drawn from this case's generator, not the package's
        p.data[...] = rng.standard_normal(p.data.shape) * 0.3
    return model, x, y, x_val, y_val, rng


class _CaseDropout(nn.Dropout):
    """Dropout whose masks come from its own generator, which is copied with the case: the reference's call and
    yours draw the same masks (the package's generator would give each call different ones)."""

    def __init__(self, p, seed):
        super().__init__(p)
        self.rng = np.random.default_rng(seed)

    def forward(self, x):
        saved = package_random._rng
        package_random._rng = self.rng
        try:
            return super().forward(x)
        finally:
            package_random._rng = saved


def _train_epoch_cases():
    cases = []
    model, x, y, *_ = _tiny_problem(71)
    cases.append((model, optim.Adam(model.parameters(), lr=1e-2), x, y, 16, np.random.default_rng(1)))
    model, x, y, *_ = _tiny_problem(72, n=50)  # 50 = 3 batches of 16 + one of 2: the mean weighs by batch size
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=8)
    cases.append((model, opt, x, y, 16, np.random.default_rng(2), sched, _jitter))
    # a model with dropout, left in eval mode by an earlier evaluation: the epoch must switch it to train mode
    model, x, y, *_ = _tiny_problem(73, n=40)
    model = nn.Sequential(model[0], model[1], _CaseDropout(0.5, seed=74), model[2]).eval()
    cases.append((model, optim.Adam(model.parameters(), lr=1e-2), x, y, 16, np.random.default_rng(3)))
    return cases


def _jitter(xb, rng):
    """A stand-in augmentation for the hidden cases: a little noise on each batch."""
    return xb + 0.1 * rng.standard_normal(xb.shape)


def _batches_of(order, batch_size):
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def train_epoch(model, optimizer, x, y, batch_size, rng, scheduler=None, augment=None):
    """One epoch of mini-batch training with cross-entropy; returns (mean loss, accuracy) over the epoch.

    x (N, ...) inputs, y (N,) integer labels. The batches follow ``rng.permutation(N)``; ``augment(xb, rng)``
    returns an augmented copy of a batch; ``scheduler.step()`` runs after every update. The mean loss weighs each
    batch by its size; the accuracy counts the predictions made during training (in train mode).
    """
    criterion = nn.CrossEntropyLoss()
    model.train()
    loss_sum, correct = 0.0, 0
    for idx in _batches_of(rng.permutation(len(x)), batch_size):
        xb, yb = x[idx], y[idx]
        if augment is not None:
            xb = augment(xb, rng)
        logits = model(xb)                       # forward
        loss = criterion(logits, yb)             # loss
        optimizer.zero_grad()                    # forget the previous batch's gradients
        model.backward(criterion.backward())     # backward: every parameter's .grad
        optimizer.step()                         # update
        if scheduler is not None:
            scheduler.step()
        loss_sum += loss * len(idx)
        correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
    return loss_sum / len(x), correct / len(x)


def _train_epoch_no_zero_grad(model, optimizer, x, y, batch_size, rng, scheduler=None, augment=None):
    """Forgets optimizer.zero_grad(): every step uses the sum of all gradients so far."""
    forgetful = SimpleNamespace(zero_grad=lambda: None, step=optimizer.step)
    return train_epoch(model, forgetful, x, y, batch_size, rng, scheduler, augment)


exercise("ch7.train_epoch", _train_epoch_cases,
         hints=[N_("Each batch needs the same five steps, in this order: forward, loss, zero the gradients, backward, "
                   "update."),
                N_("The loss module's backward() returns dL/dlogits; model.backward(...) takes it and fills every "
                   "parameter's .grad; the optimizer reads the .grad."),
                N_("Without optimizer.zero_grad() before model.backward, the gradients of all earlier batches add "
                   "up.")],
         wrong=_train_epoch_no_zero_grad)(train_epoch)


def _fit_cases():
    cases = []
    # overfits quickly: noisy, small, a high learning rate -> early stopping triggers
    model, x, y, x_val, y_val, _ = _tiny_problem(81, n=30, n_val=40, noise=2.5, hidden=32)
    cases.append((model, optim.Adam(model.parameters(), lr=5e-2), x, y, x_val, y_val, 30, 2, 10, 0))
    # patience longer than the run: no early stop, the best epoch is still kept
    model, x, y, x_val, y_val, _ = _tiny_problem(82, n=40, n_val=20, noise=1.5)
    cases.append((model, optim.SGD(model.parameters(), lr=0.05), x, y, x_val, y_val, 6, 10, 8, 1))
    # ties: the learning rate drops to exactly 0 after the first epoch's 2 batches, so every later epoch ends with
    # the very same validation loss. A tie is no improvement: stop after `patience` epochs, keep epoch 1.
    model, x, y, x_val, y_val, _ = _tiny_problem(83, n=32, n_val=20)
    opt = optim.SGD(model.parameters(), lr=0.1)
    cases.append((model, opt, x, y, x_val, y_val, 6, 2, 16, 2, optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.0)))
    return cases


def fit_early_stopping(model, optimizer, x, y, x_val, y_val, max_epochs, patience, batch_size=128, seed=0,
                       scheduler=None, augment=None):
    """Train with :func:`train_epoch` for at most ``max_epochs`` epochs, with early stopping on the validation loss.

    After every epoch: evaluate on (x_val, y_val) in eval mode; when the validation loss is lower than every earlier
    one, remember the epoch and a copy of the weights; after ``patience`` epochs in a row without improvement,
    stop. At the end put the best weights back. Returns :class:`Curves`.
    """
    rng = np.random.default_rng(seed)
    train_loss, train_acc, val_loss, val_acc = [], [], [], []
    best_loss, best_epoch, best_state, bad_epochs = math.inf, 0, None, 0
    for epoch in range(1, max_epochs + 1):
        loss, acc = train_epoch(model, optimizer, x, y, batch_size, rng, scheduler, augment)
        v_loss, v_acc = evaluate(model, x_val, y_val)
        train_loss.append(loss)
        train_acc.append(acc)
        val_loss.append(v_loss)
        val_acc.append(v_acc)
        if v_loss < best_loss:
            best_loss, best_epoch, bad_epochs = v_loss, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
    model.load_state_dict(best_state)
    kept_val_loss = evaluate(model, x_val, y_val)[0]
    return Curves(train_loss, train_acc, val_loss, val_acc, best_epoch, kept_val_loss)


def _fit_keeps_last(model, optimizer, x, y, x_val, y_val, max_epochs, patience, batch_size=128, seed=0,
                    scheduler=None, augment=None):
    """Stops at the right epoch but keeps the last weights instead of the best ones."""
    rng = np.random.default_rng(seed)
    train_loss, train_acc, val_loss, val_acc = [], [], [], []
    best_loss, best_epoch, bad_epochs = math.inf, 0, 0
    for epoch in range(1, max_epochs + 1):
        loss, acc = train_epoch(model, optimizer, x, y, batch_size, rng, scheduler, augment)
        v_loss, v_acc = evaluate(model, x_val, y_val)
        for values, value in ((train_loss, loss), (train_acc, acc), (val_loss, v_loss), (val_acc, v_acc)):
            values.append(value)
        if v_loss < best_loss:
            best_loss, best_epoch, bad_epochs = v_loss, epoch, 0
        else:
            bad_epochs += 1
            if bad_epochs >= patience:
                break
    return Curves(train_loss, train_acc, val_loss, val_acc, best_epoch, evaluate(model, x_val, y_val)[0])


exercise("ch7.fit_early_stopping", _fit_cases,
         hints=[N_("Three things to track across epochs: the lowest validation loss so far, the epoch it came from "
                   "(with a copy of its weights), and how many epochs in a row have not beaten it."),
                N_("A new best (strictly lower: an exact tie is no improvement) resets the count to 0 and stores "
                   "copy.deepcopy(model.state_dict()); otherwise the count grows, and training stops once it reaches "
                   "`patience`."),
                N_("After the loop, model.load_state_dict(...) with the stored copy: the model must end with the best "
                   "epoch's weights, not the last epoch's.")],
         wrong=_fit_keeps_last)(fit_early_stopping)
