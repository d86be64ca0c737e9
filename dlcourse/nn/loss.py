"""Loss layers (``torch.nn.MSELoss`` and friends).

Contract for the family: ``loss = criterion.forward(pred, target)`` (or ``criterion(pred,
target)``) returns a Python float (an array for ``reduction='none'``) and caches pred and
target; ``criterion.backward()`` returns dLoss/dpred, the shape of ``pred``.
A NaN or infinite prediction or loss raises :class:`NonFiniteLossError` (a ValueError)
that says so, instead of letting NaN flow silently into the next update.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_array
from . import functional as F
from .module import Module


class NonFiniteLossError(ValueError):
    """The loss (or the prediction it was computed from) is NaN or infinite."""


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self._pred = self._target = None

    def _check_pred(self, pred):
        pred = as_array(pred, f"{type(self).__name__} prediction")
        if pred.ndim and pred.shape[0] == 0:
            raise ValueError(f"{type(self).__name__}: expected a non-empty batch, got prediction shape {pred.shape}")
        if not np.isfinite(pred).all():
            n_bad = int((~np.isfinite(pred)).sum())
            raise NonFiniteLossError(
                f"{type(self).__name__}: the prediction contains {n_bad} NaN/inf value(s) - the model has "
                "diverged (try a smaller learning rate) or its input contains NaN")
        return pred

    def _check_same_shape(self, pred, target):
        target = as_array(target, f"{type(self).__name__} target").astype(pred.dtype, copy=False)
        if target.shape != pred.shape:
            raise ValueError(f"{type(self).__name__}: expected target of shape {pred.shape} (the prediction's), "
                             f"got {target.shape}")
        return target

    def _finish(self, loss):
        if np.ndim(loss) == 0:
            if not np.isfinite(loss):
                raise NonFiniteLossError(f"{type(self).__name__}: the loss is {float(loss)} - training has diverged "
                                         "or the target contains NaN/inf")
            return float(loss)
        return loss

    def _grad_scale(self, grad):
        if self._pred is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return grad

    def backward(self, grad=None):
        raise NotImplementedError

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


def _apply_upstream(g, grad, reduction):
    """Multiply the local gradient by the upstream one (a scalar, or an array for 'none')."""
    if grad is None:
        if reduction == "none":
            raise ValueError("backward: reduction='none' needs the upstream gradient (the loss array's shape)")
        return g
    return g * grad


class MSELoss(_Loss):
    """Mean squared error: L = (1/n) sum (pred - target)^2; dL/dpred = (2/n)(pred - target)."""

    def forward(self, pred, target):
        pred = self._check_pred(pred)
        target = self._check_same_shape(pred, target)
        self._pred, self._target = pred, target
        return self._finish(F.mse_loss(pred, target, self.reduction))

    def backward(self, grad=None):
        self._grad_scale(grad)
        g = F.mse_loss_backward(self._pred, self._target, self.reduction)
        return _apply_upstream(g, grad, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax + negative log-likelihood on logits, as ``torch.nn.CrossEntropyLoss``.

    pred: logits (N, C), any real values (stable for +-1000); target: integer labels (N,)
    in [0, C), or class probabilities (N, C). dL/dlogits = (softmax(logits) - onehot) / N.
    """

    def forward(self, pred, target):
        pred = self._check_pred(pred)
        if pred.ndim != 2:
            raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, C), got {pred.shape}")
        n, c = pred.shape
        if hasattr(target, "detach"):
            target = target.detach().cpu().numpy()
        target = np.asarray(target)
        if target.ndim == 2:
            target = self._check_same_shape(pred, target)
        else:
            if target.shape != (n,):
                raise ValueError(f"CrossEntropyLoss: expected integer labels of shape ({n},), got {target.shape}")
            if not np.issubdtype(target.dtype, np.integer):
                raise ValueError(f"CrossEntropyLoss: expected integer class labels, got dtype {target.dtype} "
                                 "(use y.astype(np.int64), or pass one-hot probabilities of shape (N, C))")
            bad = (target < 0) | (target >= c)
            if bad.any():
                raise ValueError(f"CrossEntropyLoss: label {int(target[bad][0])} is out of range for {c} classes "
                                 f"(labels must be in [0, {c - 1}])")
        self._pred, self._target = pred, target
        return self._finish(F.cross_entropy(pred, target, self.reduction))

    def backward(self, grad=None):
        self._grad_scale(grad)
        g = F.cross_entropy_backward(self._pred, self._target, self.reduction)
        if grad is not None and self.reduction == "none":
            return g * np.asarray(grad)[:, None]
        return _apply_upstream(g, grad, "mean" if grad is None else self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits: L = -[y log s(x) + (1 - y) log(1 - s(x))], s = sigmoid.

    Computed as max(x, 0) - x y + log(1 + e^-|x|), stable for any x. dL/dx = (s(x) - y) / n.
    """

    def forward(self, pred, target):
        pred = self._check_pred(pred)
        target = self._check_same_shape(pred, target)
        self._pred, self._target = pred, target
        return self._finish(F.binary_cross_entropy_with_logits(pred, target, self.reduction))

    def backward(self, grad=None):
        self._grad_scale(grad)
        g = F.binary_cross_entropy_with_logits_backward(self._pred, self._target, self.reduction)
        return _apply_upstream(g, grad, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities p in [0, 1]: L = -[y log p + (1 - y) log(1 - p)]."""

    def forward(self, pred, target):
        pred = self._check_pred(pred)
        if pred.size and (pred.min() < 0 or pred.max() > 1):
            raise ValueError(f"BCELoss: expected probabilities in [0, 1], got values in [{pred.min():.4g}, "
                             f"{pred.max():.4g}] (pass logits to BCEWithLogitsLoss instead)")
        target = self._check_same_shape(pred, target)
        self._pred, self._target = pred, target
        return self._finish(F.binary_cross_entropy(pred, target, self.reduction))

    def backward(self, grad=None):
        self._grad_scale(grad)
        g = F.binary_cross_entropy_backward(self._pred, self._target, self.reduction)
        return _apply_upstream(g, grad, self.reduction)
