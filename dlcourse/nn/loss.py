"""Loss layers (``torch.nn.MSELoss`` and friends), with PyTorch's constructor arguments in PyTorch's order.

Contract for the family: ``loss = criterion.forward(input, target)`` (or ``criterion(input,
target)``) returns a Python float (an array for ``reduction='none'``) and caches input and
target; ``criterion.backward()`` returns dLoss/dinput, the shape of ``input``. With
``reduction='none'``, ``backward(grad)`` takes the upstream gradient (the loss array's shape).
A NaN or infinite prediction or loss raises :class:`NonFiniteLossError` (a ValueError)
that says so, instead of letting NaN flow silently into the next update; complex input is refused.

Constructors follow ``torch.nn`` argument for argument, so code copied from PyTorch means the same:
``MSELoss(size_average=None, reduce=None, reduction='mean')``,
``CrossEntropyLoss(weight=None, size_average=None, ignore_index=-100, reduce=None, reduction='mean',
label_smoothing=0.0)``, ``BCELoss(weight=None, size_average=None, reduce=None, reduction='mean')``,
``BCEWithLogitsLoss(weight=None, size_average=None, reduce=None, reduction='mean', pos_weight=None)``.
``size_average`` and ``reduce`` are PyTorch's deprecated spellings of ``reduction``: they are refused
with a message that says which ``reduction`` to use (so ``MSELoss('sum')``, which in PyTorch sets
``size_average``, does not silently mean something else here). ``weight`` and ``pos_weight`` are
buffers, as in PyTorch (they appear in ``state_dict`` when given).
"""

from __future__ import annotations

import numpy as np

from .._checks import NonFiniteInputError, NonFiniteLossError, as_array, to_numpy
from . import functional as F
from .module import Module

__all__ = ["MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "NonFiniteLossError", "NonFiniteInputError"]


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__()
        name = type(self).__name__
        if size_average is not None or reduce is not None:
            raise ValueError(f"{name}: size_average and reduce are PyTorch's deprecated arguments, got "
                             f"size_average={size_average!r}, reduce={reduce!r}; use reduction='mean', 'sum' or "
                             "'none' (by keyword)")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"{name}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction
        self._pred = self._target = None

    def _optional_buffer(self, name, value, what):
        """Store ``weight``/``pos_weight`` as a floating buffer (as torch does), or a plain None."""
        if value is None:
            setattr(self, name, None)
            return
        arr = as_array(to_numpy(value), f"{type(self).__name__} {what}")
        self.register_buffer(name, np.array(arr, copy=True))

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
        if not np.isfinite(loss).all():  # reduction='none' gets the same check as 'mean' and 'sum'
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(loss))[0])
            raise NonFiniteLossError(f"{type(self).__name__}: the loss is {loss[bad]} at index {bad} - training has "
                                     "diverged or the target contains NaN/inf")
        return loss

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

    def forward(self, input, target):
        pred = self._check_pred(input)
        target = self._check_same_shape(pred, target)
        self._pred, self._target = pred, target
        return self.end_forward(self._finish(F.mse_loss(pred, target, self.reduction)))

    def backward(self, grad=None, retain_graph: bool = False):
        grad = self.begin_backward(grad, retain_graph, optional=True)
        g = F.mse_loss_backward(self._pred, self._target, self.reduction)
        return _apply_upstream(g, grad, self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax + negative log-likelihood on logits, as ``torch.nn.CrossEntropyLoss``.

    input: logits (N, C), (N, C, d1, d2, ...) or unbatched (C,), any real values (stable for +-1000);
    target: integer labels (N,), (N, d1, ...) or () in [0, C) (or ``ignore_index``), or class
    probabilities of the input's shape. ``weight`` (C,) rescales each class, ``ignore_index`` labels
    contribute nothing (the mean divides by the weight of the labels kept), ``label_smoothing`` s mixes
    the target with the uniform distribution: (1 - s) target + s / C.
    dL/dlogits = softmax(logits) - onehot(target), divided by N for the mean (weighted: see
    ``functional._class_targets``). Caches the logits and the target.
    A logit of -inf masks its class (as in attention); NaN or +inf means the model has diverged, and so
    does an infinite loss (-inf on the label's own class), each a :class:`NonFiniteLossError`.
    """

    def __init__(self, weight=None, size_average=None, ignore_index: int = -100, reduce=None,
                 reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: expected 0 <= label_smoothing <= 1, got {label_smoothing}")
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)
        self._optional_buffer("weight", weight, "weight")
        self._probs = None  # the forward's softmax, kept for backward when the target is plain labels

    def _check_target(self, pred, target):
        c = pred.shape[0] if pred.ndim == 1 else pred.shape[1]
        label_shape = () if pred.ndim == 1 else pred.shape[:1] + pred.shape[2:]
        target = to_numpy(target)
        if np.issubdtype(target.dtype, np.floating) and target.shape == pred.shape:
            if self.ignore_index >= 0:
                raise ValueError(f"CrossEntropyLoss: ignore_index={self.ignore_index} needs integer labels, got "
                                 f"class probabilities of shape {target.shape}")
            return self._check_same_shape(pred, target)
        if target.shape != label_shape:
            hint = ""
            if target.shape == label_shape + (1,) or target.shape == label_shape[:1] + (1,) + label_shape[1:]:
                hint = " (labels with an extra dimension of size 1: use y.reshape(-1) or y[:, 0])"
            elif target.shape == pred.shape:
                hint = " (or pass class probabilities of the prediction's shape as floats)"
            raise ValueError(f"CrossEntropyLoss: expected integer labels of shape {label_shape} for logits of shape "
                             f"{pred.shape}, got shape {target.shape}{hint}")
        if not np.issubdtype(target.dtype, np.integer):
            raise ValueError(f"CrossEntropyLoss: expected integer class labels, got dtype {target.dtype} "
                             "(use y.astype(np.int64), or pass probabilities of the prediction's shape)")
        if target.size and target.min() >= 0 and target.max() < c and not 0 <= self.ignore_index < c:
            return target  # every label is a class and none is ignore_index: the checks below would pass
        if self.reduction == "mean" and target.size and (target == self.ignore_index).all():
            raise ValueError(f"CrossEntropyLoss: every label equals ignore_index={self.ignore_index}, so the mean "
                             "is over no labels at all (PyTorch returns nan); use reduction='sum' or keep some labels")
        bad = ((target < 0) | (target >= c)) & (target != self.ignore_index)
        if bad.any():
            raise ValueError(f"CrossEntropyLoss: label {int(target[bad].flat[0])} is out of range for {c} classes "
                             f"(labels must be in [0, {c - 1}])")
        return target

    def _options(self):
        return dict(weight=self.weight, ignore_index=self.ignore_index, label_smoothing=self.label_smoothing)

    def _plain_labels(self, pred, target):
        """(N, C) logits and (N,) integer labels, no weight, no smoothing, no label ignored: q is one-hot."""
        return (pred.ndim == 2 and target.ndim == 1 and target.dtype.kind in "iu" and self.weight is None
                and not self.label_smoothing and not (target == self.ignore_index).any())

    def _check_pred(self, pred):
        """As for every loss, except that -inf is a logit, not divergence: it masks a class out."""
        pred = as_array(pred, "CrossEntropyLoss prediction")
        if pred.ndim and pred.shape[0] == 0:
            raise ValueError(f"CrossEntropyLoss: expected a non-empty batch, got prediction shape {pred.shape}")
        if not np.isfinite(pred).all():
            bad = np.isnan(pred) | np.isposinf(pred)
            if bad.any():
                raise NonFiniteLossError(
                    f"CrossEntropyLoss: the prediction contains {int(bad.sum())} NaN/+inf value(s) - the model has "
                    "diverged (try a smaller learning rate) or its input contains NaN")
        return pred

    def forward(self, input, target):
        pred = self._check_pred(input)
        if pred.ndim == 0:
            raise ValueError(f"CrossEntropyLoss: expected logits of shape (N, C), (N, C, d1, ...) or (C,), "
                             f"got shape {pred.shape}")
        c = pred.shape[0] if pred.ndim == 1 else pred.shape[1]
        if self.weight is not None and self.weight.shape != (c,):
            raise ValueError(f"CrossEntropyLoss: expected weight of shape ({c},) (one per class), "
                             f"got {self.weight.shape}")
        target = self._check_target(pred, target)
        self._pred, self._target = pred, target
        self._probs = None
        if self._plain_labels(pred, target):  # the common case: one softmax serves forward and backward
            loss, self._probs = _labels_cross_entropy(pred, target, self.reduction)
        else:
            loss = F.cross_entropy(pred, target, self.reduction, **self._options())
        if not np.isfinite(loss).all() and np.isneginf(pred).any():
            raise NonFiniteLossError(
                "CrossEntropyLoss: the loss is inf because a class the target weighs has logit -inf (masked out: "
                "the label's own class, a row masked entirely, or any class under label smoothing); PyTorch gives "
                "inf or nan here. Mask only classes the target gives weight 0")
        return self.end_forward(self._finish(loss))

    def backward(self, grad=None, retain_graph: bool = False):
        grad = self.begin_backward(grad, retain_graph, optional=True)
        if self._probs is not None:  # plain labels: softmax - onehot, from the forward's softmax
            g = _labels_cross_entropy_backward(self._probs, self._target, self.reduction)
        else:
            g = F.cross_entropy_backward(self._pred, self._target, self.reduction, **self._options())
        if grad is not None and self.reduction == "none" and self._pred.ndim > 1:
            return g * np.expand_dims(np.asarray(grad), 1)  # one upstream value per sample (and position)
        return _apply_upstream(g, grad, "mean" if grad is None else self.reduction)

    def extra_repr(self):
        extra = "" if self.ignore_index == -100 else f", ignore_index={self.ignore_index}"
        extra += f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return super().extra_repr() + extra


def _labels_cross_entropy(logits, labels, reduction):
    """(loss, softmax) for (N, C) logits and (N,) labels in [0, C): the values of ``F.cross_entropy`` with a
    one-hot target, in four passes over the logits; the softmax is what backward needs."""
    with np.errstate(invalid="ignore"):  # a row of -inf only gives nan, which forward reports as a masked target
        shifted = logits - logits.max(axis=1, keepdims=True)  # exp() cannot overflow
    probs = np.exp(shifted)
    sum_exp = probs.sum(axis=1)
    losses = np.log(sum_exp) - shifted[np.arange(len(labels)), labels]  # -log softmax at the label
    probs /= sum_exp[:, None]
    if reduction == "mean":
        return losses.sum() / len(losses), probs
    return _reduce_losses(losses, reduction), probs


def _labels_cross_entropy_backward(probs, labels, reduction):
    """softmax - onehot(labels), divided by N for the mean (``F.cross_entropy_backward`` with a one-hot q)."""
    g = probs.copy()
    g[np.arange(len(labels)), labels] -= 1
    if reduction == "mean":
        g /= len(labels)
    return g


def _reduce_losses(losses, reduction):
    return losses.sum() if reduction == "sum" else losses


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits: L = -w [p y log s(x) + (1 - y) log(1 - s(x))], s = sigmoid.

    ``weight`` w broadcasts against the input; ``pos_weight`` p (one value per class, the last
    dimension) weighs the positive term, as in PyTorch. Computed in a form stable for any x;
    dL/dx = w ((1 - y) - (1 + (p - 1) y) s(-x)) / n, which is (s(x) - y) / n without weights.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self._optional_buffer("weight", weight, "weight")
        self._optional_buffer("pos_weight", pos_weight, "pos_weight")

    def forward(self, input, target):
        pred = self._check_pred(input)
        target = self._check_same_shape(pred, target)
        _check_broadcast(self, "weight", pred.shape)
        _check_broadcast(self, "pos_weight", pred.shape)
        self._pred, self._target = pred, target
        loss = F.binary_cross_entropy_with_logits(pred, target, self.reduction, self.weight, self.pos_weight)
        return self.end_forward(self._finish(loss))

    def backward(self, grad=None, retain_graph: bool = False):
        grad = self.begin_backward(grad, retain_graph, optional=True)
        g = F.binary_cross_entropy_with_logits_backward(self._pred, self._target, self.reduction, self.weight,
                                                        self.pos_weight)
        return _apply_upstream(g, grad, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities p in [0, 1]: L = -w [y log p + (1 - y) log(1 - p)].

    ``weight`` w (optional) broadcasts against the input, as in PyTorch.
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction: str = "mean"):
        super().__init__(size_average, reduce, reduction)
        self._optional_buffer("weight", weight, "weight")

    def forward(self, input, target):
        pred = self._check_pred(input)
        if pred.size and (pred.min() < 0 or pred.max() > 1):
            raise ValueError(f"BCELoss: expected probabilities in [0, 1], got values in [{pred.min():.4g}, "
                             f"{pred.max():.4g}] (pass logits to BCEWithLogitsLoss instead)")
        target = self._check_same_shape(pred, target)
        _check_broadcast(self, "weight", pred.shape)
        self._pred, self._target = pred, target
        return self.end_forward(self._finish(F.binary_cross_entropy(pred, target, self.reduction, self.weight)))

    def backward(self, grad=None, retain_graph: bool = False):
        grad = self.begin_backward(grad, retain_graph, optional=True)
        g = F.binary_cross_entropy_backward(self._pred, self._target, self.reduction, self.weight)
        return _apply_upstream(g, grad, self.reduction)


def _check_broadcast(loss, name, shape):
    """A weight must broadcast to the input's shape without growing it."""
    value = getattr(loss, name)
    if value is None:
        return
    try:
        ok = np.broadcast_shapes(value.shape, shape) == tuple(shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{type(loss).__name__}: {name} of shape {value.shape} does not broadcast to the input's "
                         f"shape {tuple(shape)}")
