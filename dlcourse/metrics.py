"""Scoring a model: accuracy, the confusion matrix, predictions and evaluation in eval mode (dlcourse and torch)."""

from __future__ import annotations

import math

import numpy as np

from .nn.loss import CrossEntropyLoss
from .nn.module import Module


def accuracy(pred, y) -> float:
    """Fraction of correct predictions; ``pred`` is labels (N,) or class scores (N, C) with C >= 2.

    Scores of one column (N, 1) are refused: the argmax of one column is always class 0. A binary
    classifier's single output is thresholded by the caller, who knows whether it is a probability
    (``p[:, 0] > 0.5``) or a logit (``z[:, 0] > 0``). (PyTorch itself has no accuracy function.)
    """
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.ndim == 2:
        if pred.shape[1] == 1:
            raise ValueError(f"accuracy: expected labels (N,) or class scores (N, C) with C >= 2, got scores of shape "
                             f"{pred.shape}: the argmax of one column is always 0. Threshold a binary output "
                             "first: (p[:, 0] > 0.5) for probabilities, (z[:, 0] > 0) for logits")
        pred = pred.argmax(axis=1)
    if pred.shape != y.shape:
        raise ValueError(f"accuracy: expected predictions of shape {y.shape} (the labels'), got {pred.shape}")
    return float(np.mean(pred == y)) if y.size else math.nan


def _labels(arr, name: str) -> np.ndarray:
    """Integer labels: integer arrays as they are, floats only when whole numbers (1.0 -> 1), else ValueError."""
    arr = np.asarray(arr)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        whole = np.isfinite(arr) & (arr == np.round(arr))
        if not whole.all():
            i = int(np.argmin(whole))
            raise ValueError(f"confusion_matrix: expected integer class labels in {name}, got {arr.flat[i]} at index "
                             f"{i} (dtype {arr.dtype}); pass labels, e.g. scores.argmax(axis=1)")
        return arr.astype(np.int64)
    raise ValueError(f"confusion_matrix: expected integer class labels in {name}, got dtype {arr.dtype}")


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class i predicted as class j (rows: truth).

    Labels are integers; floats are accepted when they are whole numbers (``1.0``), anything else is refused.
    """
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"confusion_matrix: expected two label arrays of the same shape (N,), "
                         f"got {y_true.shape} and {y_pred.shape}")
    if num_classes is None:
        num_classes = int(max(y_true.max(initial=-1), y_pred.max(initial=-1))) + 1
    for name, arr in (("y_true", y_true), ("y_pred", y_pred)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"confusion_matrix: {name} has labels outside [0, {num_classes})")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def batch_indices(n: int, batch_size: int, rng=None):
    """Indices of each mini-batch: a fresh permutation from ``rng``, or slices in order without one."""
    if rng is None:
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))
        return
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def as_data(a, name: str, where: str):
    """Arrays and tensors as they are; a list or tuple as a NumPy array (``x[index_array]`` needs an array)."""
    if isinstance(a, (list, tuple)):
        try:
            return np.asarray(a)
        except ValueError as err:
            raise ValueError(f"{where}: expected {name} as an array (or a list of equal-length rows), got a ragged "
                             f"{type(a).__name__}") from err
    if not hasattr(a, "__len__") or not hasattr(a, "shape"):
        raise TypeError(f"{where}: expected {name} as an array, got {type(a).__name__}")
    return a


def predict_logits(model: Module, x, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on ``x`` in eval mode, in batches (no gradient, no update)."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([np.asarray(model.forward(x[idx]))
                               for idx in batch_indices(len(x), batch_size)])
    finally:
        model.train(was_training)


def predict_proba(model: Module, x, batch_size: int = 256) -> np.ndarray:
    """Softmax probabilities (N, C) in eval mode."""
    from .nn.functional import softmax
    return softmax(predict_logits(model, x, batch_size).astype(np.float64), dim=1)


def evaluate(model: Module, x, y, batch_size: int = 256, criterion=None) -> tuple[float, float]:
    """(loss, accuracy) of ``model`` on (x, y), in eval mode, with no update.

    ``criterion``: a dlcourse loss (default ``CrossEntropyLoss()``), applied to the whole set's outputs
    in float64. The accuracy is NaN unless the outputs are class scores (N, C) and y integer labels (N,).
    """
    x, y = as_data(x, "x", "evaluate"), as_data(y, "y", "evaluate")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"evaluate: expected as many labels as inputs, at least one, got {len(x)} inputs and "
                         f"{len(y)} labels")
    logits = predict_logits(model, x, batch_size)
    loss = (CrossEntropyLoss() if criterion is None else criterion).forward(logits.astype(np.float64), y)
    return float(loss), (accuracy(logits, y) if criterion is None or is_classification(logits, y) else math.nan)


def is_classification(out, yb) -> bool:
    return out is not None and out.ndim == 2 and yb.ndim == 1 and len(out) == len(yb) and yb.dtype.kind in "iu"


def to_tensor(a, device, dtype=None):
    import torch
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def _predict_torch(model, x, batch_size, device):
    import torch
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            xt = to_tensor(x, device)
            return torch.cat([model(xt[i:i + batch_size]) for i in range(0, len(xt), batch_size)])
    finally:
        model.train(was_training)


def predict_logits_torch(model, x, batch_size: int = 1000, device: str = "cpu") -> np.ndarray:
    """A torch model's outputs on ``x`` in eval mode, without autograd, as a NumPy array."""
    return _predict_torch(model, x, batch_size, device).cpu().numpy()


def evaluate_torch(model, x, y, batch_size: int = 1000, device: str = "cpu", criterion=None) -> tuple[float, float]:
    """(loss, accuracy) of a torch model, in eval mode, without autograd.

    ``criterion``: a torch loss, applied on ``device`` to the whole set's outputs (default: cross-entropy,
    computed in float64 by dlcourse). The accuracy is NaN unless the outputs are class scores (N, C) and
    y integer labels (N,).
    """
    import torch
    x, y = as_data(x, "x", "evaluate_torch"), as_data(y, "y", "evaluate_torch")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"evaluate_torch: expected as many labels as inputs, at least one, got {len(x)} inputs and "
                         f"{len(y)} labels")
    out = _predict_torch(model, x, batch_size, device)
    logits = out.cpu().numpy()
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if criterion is None:
        return CrossEntropyLoss().forward(logits.astype(np.float64), y_np), accuracy(logits, y_np)
    with torch.no_grad():
        target = to_tensor(y, device)
        if target.is_floating_point():
            target = target.to(out.dtype)
        loss = float(criterion(out, target))
    return loss, (accuracy(logits, y_np) if is_classification(logits, y_np) else math.nan)
