"""Chapter 7 exercises: the small pieces of an honest MNIST pipeline."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(707)


def _one_hot_cases():
    rng = _rng()
    return [(np.array([3, 0, 9]), 10), (rng.integers(0, 4, 7), 4), (np.array([1]), 2)]


@exercise("ch7.one_hot", _one_hot_cases,
          hint="row n is all zeros except a 1 in column labels[n]: out = np.zeros((N, num_classes)); "
               "out[np.arange(N), labels] = 1.",
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
          hint="compute ONE mean and ONE standard deviation over all training values, and apply those same two "
               "numbers to the test set: statistics of the test set must not leak into preprocessing.",
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
          hint="the predicted class is the index of the largest logit in each ROW (axis=1); "
               "accuracy is the fraction of rows where it equals the label.",
          wrong=lambda logits, labels: float(np.mean(logits.argmax(axis=0)[: len(labels)] == labels)))
def accuracy(logits, labels):
    """Fraction of samples whose largest logit is at the label's index (logits (N, C), labels (N,))."""
    return float(np.mean(logits.argmax(axis=1) == labels))


def _cm_cases():
    rng = _rng()
    return [(np.array([0, 1, 2, 2, 1]), np.array([0, 2, 2, 1, 1]), 3),
            (rng.integers(0, 5, 40), rng.integers(0, 5, 40), 5)]


@exercise("ch7.confusion_matrix", _cm_cases,
          hint="cm[i, j] counts samples whose TRUE class is i (row) and PREDICTED class is j (column); "
               "np.add.at(cm, (y_true, y_pred), 1) does it in one line.",
          wrong=lambda y_true, y_pred, k: np.histogram2d(y_pred, y_true, bins=k, range=[[0, k], [0, k]])[0])
def confusion_matrix(y_true, y_pred, num_classes):
    """(num_classes, num_classes) counts: rows are true classes, columns predicted classes."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    return cm


def _mistake_cases():
    rng = _rng()
    logits = rng.standard_normal((30, 10)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 10, 30)
    small = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    return [(probs, labels, 5), (small, np.array([1, 1, 1, 0]), 2)]


def _confident_any(probs, labels, k):
    return np.argsort(-probs.max(axis=1), kind="stable")[:k]


@exercise("ch7.most_confident_mistakes", _mistake_cases,
          hint="keep only the samples whose predicted class (argmax) differs from the label, then sort them by the "
               "probability of the predicted class, largest first, and return the first k indices.",
          wrong=_confident_any)
def most_confident_mistakes(probs, labels, k):
    """Indices of the k misclassified samples with the highest predicted-class probability, most confident first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    order = np.argsort(-probs[wrong, pred[wrong]], kind="stable")
    return wrong[order][:k]
