"""The training loop, written once: ``fit`` for dlcourse models, ``fit_torch`` for PyTorch twins.

Both run the same loop (:func:`_run`): per mini-batch forward, loss, backward, update, with an
optional learning-rate scheduler (per batch or per epoch), data augmentation, validation after
each epoch, early stopping on a validation metric, a tqdm progress bar and two hooks,
``on_step(step, loss)`` and ``on_epoch(epoch, history)``, either of which stops training by
returning True. Both return a :class:`History` (loss, accuracy and seconds per epoch), so curves
and tables of the two libraries are drawn by the same code. Every training loop of the package
runs through here: the chapter-3 toy training, the learning-rate range test, the widgets.

Divergence has one rule, :class:`Divergence`, and one policy switch, ``on_divergence``:

* a step's training loss has diverged when it is NaN or infinite, or when it is above
  ``max(limit, factor * first_loss)`` (defaults ``limit=1e4``, ``factor=100``; ``first_loss`` is
  the loss of the first step). A finite blow-up counts: SGD at lr 1e3 gives losses of 1e7 that
  later fall back to a few hundred, a run that learned nothing. For cross-entropy, which starts
  near ln(C), the bound is 1e4 (logits thousands apart); a loss that starts large (an MSE on
  unscaled targets) gets a proportionally larger bound.
* ``on_divergence='raise'`` (the default) raises :class:`TrainingDivergedError`, whose message
  and ``.step`` say where; ``'stop'`` ends training and records the step in
  ``history.diverged_at`` (the widgets draw "diverged at step k" from it).

NaN or inf in the *data* is not divergence: ``fit`` checks the arrays once, up front, and raises a
``ValueError`` naming the array and the first bad index.

A run that ends in an exception keeps what it learned: the exception carries the History as
``err.history``, and with early stopping the best epoch's weights are restored before it propagates.

Evaluation is done right: :func:`evaluate` / :func:`evaluate_torch` switch the model to eval
mode (dropout off, batch-norm running statistics), compute no gradient and update nothing,
and restore the previous mode. The test set is only ever passed to these.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .nn.loss import CrossEntropyLoss, NonFiniteLossError
from .nn.module import Module, input_grad_mode

ON_DIVERGENCE = ("raise", "stop")


class TrainingDivergedError(NonFiniteLossError):
    """The training loss diverged (NaN/inf or a blow-up, see :class:`Divergence`); ``step`` says where."""

    def __init__(self, message: str, step: int | None = None, loss: float = math.nan):
        super().__init__(message)
        self.step, self.loss = step, loss


@dataclass(frozen=True)
class Divergence:
    """The one divergence rule: a loss is NaN/inf, or above ``max(limit, factor * first_loss)``."""

    limit: float = 1e4
    factor: float = 100.0

    def __post_init__(self):
        if not (self.limit > 0 and self.factor > 0):
            raise ValueError(f"Divergence: expected limit > 0 and factor > 0, got limit={self.limit}, "
                             f"factor={self.factor}")

    def bound(self, first_loss: float) -> float:
        return max(self.limit, self.factor * first_loss) if math.isfinite(first_loss) else self.limit

    def __call__(self, loss: float, first_loss: float) -> bool:
        """Has ``loss`` diverged, given the first step's loss ``first_loss``?"""
        return not math.isfinite(loss) or loss > self.bound(first_loss)

    def first(self, losses, first_loss: float) -> int | None:
        """Index of the first diverged loss in ``losses`` (an array), or None."""
        losses = np.asarray(losses, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(losses) | (losses > self.bound(first_loss))
        return int(np.argmax(bad)) if bad.any() else None

    def describe(self, loss: float, first_loss: float) -> str:
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        return (f"the loss {loss:.4g} is above max({self.limit:g}, {self.factor:g} x the first loss "
                f"{first_loss:.4g}) = {self.bound(first_loss):.4g}")


DIVERGENCE = Divergence()


@dataclass
class History:
    """What happened in each epoch (lists of equal length, one entry per epoch)."""

    train_loss: list = field(default_factory=list)  # mean mini-batch loss, in train mode
    train_acc: list = field(default_factory=list)  # running accuracy of the mini-batches, in train mode
    val_loss: list = field(default_factory=list)  # in eval mode, after the epoch (NaN without val data)
    val_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)  # learning rate at the end of the epoch
    seconds: list = field(default_factory=list)  # wall-clock seconds of the epoch's training steps
    best_epoch: int | None = None  # 1-based epoch whose weights were kept (early stopping)
    stopped_early: bool = False  # by early stopping or a hook
    steps: int = 0  # optimizer steps taken (a diverged step makes none)
    diverged_at: int | None = None  # the step whose loss diverged (with on_divergence='stop')

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def seconds_per_epoch(self) -> float:
        """Median seconds per epoch (the first epoch, which warms caches, counts like the others)."""
        return float(np.median(self.seconds)) if self.seconds else math.nan


class EarlyStopping:
    """Stop when the validation metric has not improved by ``min_delta`` for ``patience`` epochs.

    ``monitor`` is ``"val_loss"`` (lower is better, the default) or ``"val_acc"`` (higher is
    better). Keeps a copy of the best weights (``state_dict``), which ``fit`` restores at the
    end, so the model returned is the one of the best validation epoch, chosen without ever
    looking at test data.
    """

    def __init__(self, patience: int = 3, min_delta: float = 0.0, monitor: str = "val_loss",
                 restore_best: bool = True):
        if patience < 1:
            raise ValueError(f"EarlyStopping: expected patience >= 1, got {patience}")
        if monitor not in ("val_loss", "val_acc"):
            raise ValueError(f"EarlyStopping: monitor must be 'val_loss' or 'val_acc', got {monitor!r}")
        self.patience, self.min_delta, self.monitor, self.restore_best = patience, min_delta, monitor, restore_best
        self.best, self.best_epoch, self.best_state, self.bad_epochs = math.inf, None, None, 0

    def update(self, epoch: int, value: float, model) -> bool:
        """Record the monitored ``value`` of epoch ``epoch`` (1-based); return True when training should stop."""
        score = value if self.monitor == "val_loss" else -value  # lower is better
        if score < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = score, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------
# dlcourse models
# ---------------------------------------------------------------------------------------


def _batches(n: int, batch_size: int, rng=None):
    """Indices of each mini-batch: a fresh permutation from ``rng``, or slices in order without one."""
    if rng is None:
        for start in range(0, n, batch_size):
            yield slice(start, min(start + batch_size, n))
        return
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def predict_logits(model: Module, x, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on ``x`` in eval mode, in batches (no gradient, no update)."""
    was_training = model.training
    model.eval()
    try:
        return np.concatenate([np.asarray(model.forward(x[idx]))
                               for idx in _batches(len(x), batch_size)])
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
    x, y = _as_data(x, "x", "evaluate"), _as_data(y, "y", "evaluate")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"evaluate: expected as many labels as inputs, at least one, got {len(x)} inputs and "
                         f"{len(y)} labels")
    logits = predict_logits(model, x, batch_size)
    loss = (CrossEntropyLoss() if criterion is None else criterion).forward(logits.astype(np.float64), y)
    return float(loss), (accuracy(logits, y) if criterion is None or _is_classification(logits, y) else math.nan)


class _NoBar:
    """What ``progress=False`` gets: no tqdm at all (the widgets call fit on every slider move)."""

    disable = True

    def update(self, n=1):
        pass

    def close(self):
        pass


def _progress(total: int | None, desc: str, progress: bool):
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, unit="batch", leave=True)


# ---------------------------------------------------------------------------------------
# The loop, shared by fit and fit_torch
# ---------------------------------------------------------------------------------------


class _Diverged(Exception):
    def __init__(self, step: int, loss: float, reason: str):
        super().__init__(reason)
        self.step, self.loss, self.reason = step, loss, reason


class _Monitor:
    """Applies the divergence rule to each step's loss (or to an epoch's losses at once)."""

    def __init__(self, rule: Divergence):
        self.rule, self.first = rule, None

    def check(self, step: int, loss: float) -> None:
        if self.first is None:
            self.first = loss
        if self.rule(loss, self.first):
            raise _Diverged(step, loss, self.rule.describe(loss, self.first))

    def check_many(self, first_step: int, losses) -> None:
        if len(losses) and self.first is None:
            self.first = float(losses[0])
        i = self.rule.first(losses, self.first) if len(losses) else None
        if i is not None:
            loss = float(losses[i])
            raise _Diverged(first_step + i, loss, self.rule.describe(loss, self.first))


class _Data:
    """The training data: arrays ``x, y`` (batched here, shuffled by the loop's generator) or a loader.

    A loader is any re-iterable of ``(xb, yb)`` batches (a :class:`dlcourse.data.BatchIterator`, a list);
    it is iterated once per epoch and its batches are checked for NaN/inf as they come. A one-shot
    iterator (a generator) ends training when it runs out.
    """

    def __init__(self, x, y, batch_size: int, shuffle: bool, where: str):
        self.loader = y is None
        self.where = where
        if self.loader:
            if isinstance(x, np.ndarray) or not hasattr(x, "__iter__"):
                raise ValueError(f"{where}: expected labels y with the inputs x, or a loader of (x, y) batches "
                                 f"as x, got {type(x).__name__} and y=None")
            self.x, self.y, self.n = x, None, None
            self.steps_per_epoch = len(x) if hasattr(x, "__len__") else None
            return
        x, y = _as_data(x, "x", where), _as_data(y, "y", where)
        if len(x) != len(y):
            raise ValueError(f"{where}: expected as many labels as inputs, got {len(x)} inputs and {len(y)} labels")
        if len(x) == 0:
            raise ValueError(f"{where}: expected a non-empty training set, got 0 samples")
        check_data_finite(x, "x", where)
        check_data_finite(y, "y", where)
        self.x, self.y, self.n = x, y, len(x)
        self.batch_size, self.shuffle = batch_size, shuffle
        self.steps_per_epoch = math.ceil(self.n / batch_size)

    def epoch(self, rng):
        """One epoch's batches: index arrays (or slices) into x and y, or a loader's (xb, yb) tuples."""
        if not self.loader:
            yield from _batches(self.n, self.batch_size, rng if self.shuffle else None)
            return
        for k, batch in enumerate(self.x, start=1):
            if not (isinstance(batch, (tuple, list)) and len(batch) == 2):
                raise ValueError(f"{self.where}: expected the loader to yield (x, y) batches, got "
                                 f"{type(batch).__name__}")
            check_data_finite(batch[0], f"x of batch {k}", self.where)
            yield tuple(batch)


def check_data_finite(arr, name: str, where: str = "fit") -> None:
    """Refuse NaN/inf in training data up front (a data problem, not a learning-rate problem)."""
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    arr = np.asarray(arr)
    if not np.issubdtype(arr.dtype, np.floating) or np.isfinite(arr).all():
        return
    bad = ~np.isfinite(arr)
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    raise ValueError(f"{where}: the data {name} contain NaN or inf ({int(bad.sum())} values, the first, "
                     f"{arr[index]}, at index {index}); clean the data - this is not the learning rate's fault")


def _check_fit_args(where, num_epochs, batch_size, scheduler_step, early_stopping, val_data, on_divergence,
                    max_steps):
    """Every argument that can be checked before training, checked; returns val_data as (x_val, y_val) arrays."""
    for name, value in (("num_epochs", num_epochs), ("batch_size", batch_size), ("max_steps", max_steps)):
        if value is None and name == "max_steps":
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{where}: expected {name} to be an integer, got {type(value).__name__} {value!r}"
                            + (f" (e.g. {name}={int(value)} or math.ceil)" if isinstance(value, float) else ""))
    if num_epochs < 1 or batch_size < 1:
        raise ValueError(f"{where}: expected num_epochs >= 1 and batch_size >= 1, got {num_epochs} and {batch_size}")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"{where}: scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if early_stopping is not None and val_data is None:
        raise ValueError(f"{where}: early stopping needs val_data=(x_val, y_val) (never the test set)")
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"{where}: on_divergence must be one of {ON_DIVERGENCE}, got {on_divergence!r}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"{where}: expected max_steps >= 1 (or None), got {max_steps}")
    if val_data is None:
        return None
    if not isinstance(val_data, (tuple, list)) or len(val_data) != 2:
        shown = f"a {type(val_data).__name__} of {len(val_data)}" if isinstance(val_data, (tuple, list)) else \
            type(val_data).__name__
        raise ValueError(f"{where}: expected val_data=(x_val, y_val), a pair of arrays, got {shown}")
    x_val, y_val = _as_data(val_data[0], "x of val_data", where), _as_data(val_data[1], "y of val_data", where)
    if len(x_val) != len(y_val):
        raise ValueError(f"{where}: expected as many labels as inputs in val_data, got {len(x_val)} inputs and "
                         f"{len(y_val)} labels")
    if len(x_val) == 0:
        raise ValueError(f"{where}: expected a non-empty val_data, got 0 samples")
    check_data_finite(x_val, "x of val_data", where)
    return x_val, y_val


def _as_data(a, name: str, where: str):
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


def _probe(where, what, predict_fn, evaluate_fn, x, y, criterion):
    """Validation on the first 2 samples of (x, y) before training starts, so that a wrong val_data (or labels,
    or a criterion that does not fit the outputs) fails now, not after an epoch; then, for cross-entropy, every
    integer label in range of the model's classes. Changes nothing (eval mode, no gradient, no update; the
    package's random generator is put back). A NaN/inf loss is left to the loop, which reports divergence."""
    from .random import get_rng
    rng_state = get_rng().bit_generator.state
    try:
        out = predict_fn(x[:2])
        evaluate_fn(x[:2], y[:2])
    except (NonFiniteLossError, FloatingPointError):
        return
    except Exception as err:  # noqa: BLE001 - any failure here is reported with what was checked
        raise ValueError(f"{where}: {what} does not fit the model and the criterion (checked on its first samples, "
                         f"before training): {type(err).__name__}: {err}") from err
    finally:
        get_rng().bit_generator.state = rng_state
    if criterion is not None and type(criterion).__name__ != "CrossEntropyLoss":
        return
    labels = y.detach().cpu().numpy() if hasattr(y, "detach") else np.asarray(y)
    if np.ndim(out) < 2 or labels.ndim != 1 or labels.dtype.kind not in "iu":
        return
    c, ignore = out.shape[1], getattr(criterion, "ignore_index", -100)
    bad = ((labels < 0) | (labels >= c)) & (labels != ignore)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{where}: {what} has label {int(labels[i])} at index {i}, out of range for the model's "
                         f"{c} outputs (labels must be in [0, {c - 1}]); checked before training")


def _run(trainer, model, optimizer, *, num_epochs, scheduler, scheduler_step, early_stopping, val_fn, on_step,
         on_epoch, max_steps, on_divergence, seed, progress, desc) -> History:
    """The loop. ``trainer`` knows one library: its ``step`` does forward, loss, backward and update on
    one batch (checking the loss with the divergence rule), ``end_epoch`` returns (mean loss, accuracy)."""
    rng = np.random.default_rng(seed)
    history = History()
    total = trainer.data.steps_per_epoch * num_epochs if trainer.data.steps_per_epoch is not None else None
    if max_steps is not None:
        total = max_steps if total is None else min(total, max_steps)
    bar = _progress(total, desc or type(model).__name__, progress)
    model.train()
    step, epoch = 0, 0
    try:
        try:
            for epoch in range(1, num_epochs + 1):
                t0 = time.perf_counter()
                first_step = step + 1
                trainer.start_epoch(first_step)
                asked_to_stop = out_of_steps = False
                for batch in trainer.data.epoch(rng):
                    step += 1
                    loss = trainer.step(batch, step, rng)
                    history.steps = step
                    if scheduler is not None and scheduler_step == "batch":
                        scheduler.step()
                    bar.update(1)
                    if on_step is not None and on_step(step, loss) is True:
                        asked_to_stop = True
                    out_of_steps = max_steps is not None and step >= max_steps
                    if asked_to_stop or out_of_steps:
                        break
                if step == first_step - 1:  # a loader with nothing (more) to give: a one-shot iterator ran out
                    if epoch == 1:
                        raise ValueError(f"{trainer.data.where}: the loader yielded no batches")
                    break
                train_loss, train_acc = trainer.end_epoch()  # fit_torch: the epoch's one device sync
                seconds = time.perf_counter() - t0
                if scheduler is not None and scheduler_step == "epoch":
                    scheduler.step()
                val = val_fn() if val_fn is not None else (math.nan, math.nan)
                _end_epoch(history, seconds, train_loss, train_acc, optimizer.param_groups[0]["lr"], val, bar)
                if on_epoch is not None and on_epoch(epoch, history) is True:
                    asked_to_stop = True
                if early_stopping is not None and early_stopping.update(epoch, _monitored(history, early_stopping),
                                                                         model):
                    asked_to_stop = True
                if asked_to_stop:
                    history.stopped_early = True
                if asked_to_stop or out_of_steps:
                    break
        except _Diverged as d:
            history.diverged_at = d.step
            if on_divergence == "raise":
                raise TrainingDivergedError(f"training diverged at epoch {epoch}, step {d.step}: {d.reason} "
                                            "(try a smaller learning rate)", d.step, d.loss) from None
    except BaseException as err:  # a loader's OSError, a hook's error, Ctrl-C, TrainingDivergedError, ...
        # The run keeps what it learned: the History of the epochs done rides on the exception, and with early
        # stopping the model gets the best epoch's weights back, as at a normal end.
        with contextlib.suppress(Exception):
            _restore_best(model, history, early_stopping)
        with contextlib.suppress(AttributeError, TypeError):
            err.history = history
        raise
    finally:
        bar.close()
    _restore_best(model, history, early_stopping)
    return history


def _params_finite(model) -> bool:
    return all(np.isfinite(p.data).all() for p in model.parameters())


def _is_classification(out, yb) -> bool:
    return out is not None and out.ndim == 2 and yb.ndim == 1 and len(out) == len(yb) and yb.dtype.kind in "iu"


class _NumpyTrainer:
    def __init__(self, model, optimizer, criterion, data, augment, rule):
        self.model, self.optimizer, self.criterion, self.data, self.augment = model, optimizer, criterion, data, augment
        self.monitor = _Monitor(rule)

    def start_epoch(self, first_step):
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def step(self, batch, step, rng):
        xb, yb = batch if self.data.loader else (self.data.x[batch], self.data.y[batch])
        xb, yb = np.asarray(xb), np.asarray(yb)
        if self.augment is not None:
            xb = self.augment(xb, rng)
        try:
            out = self.model.forward(xb)
            loss = self.criterion.forward(out, yb)
        except NonFiniteLossError:
            out, loss = None, math.nan
        except (ValueError, FloatingPointError):  # e.g. a layer refusing NaN input: blown-up weights?
            if _params_finite(self.model):
                raise
            out, loss = None, math.nan
        self.monitor.check(step, loss)  # raises _Diverged before a diverged loss updates anything
        self.optimizer.zero_grad()
        self.model.backward(self.criterion.backward())
        self.optimizer.step()
        n = len(yb)
        self.loss_sum += loss * n
        self.seen += n
        if self.correct is not None and _is_classification(out, yb):
            self.correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
        else:
            self.correct = None
        return loss

    def end_epoch(self):
        acc = self.correct / self.seen if self.correct is not None else math.nan
        return self.loss_sum / self.seen, acc


def fit(model: Module, optimizer, x, y=None, *, num_epochs: int, batch_size: int = 128, criterion=None,
        shuffle: bool = True, val_data=None, scheduler=None, scheduler_step: str = "batch", augment=None,
        early_stopping: EarlyStopping | None = None, on_step=None, on_epoch=None, max_steps: int | None = None,
        on_divergence: str = "raise", divergence: Divergence = DIVERGENCE, seed: int = 0, progress: bool = True,
        desc: str = "") -> History:
    """Train a dlcourse ``model`` on (x, y); return a :class:`History`.

    x: (N, ...) float inputs; y: (N,) int64 labels (arrays; lists are converted once); or ``x`` a loader
    of ``(xb, yb)`` batches and ``y=None``. ``criterion`` (default ``CrossEntropyLoss()``) is a dlcourse
    loss. ``optimizer`` is any object with ``zero_grad()``, ``step()`` and ``param_groups`` (a
    ``dlcourse.optim`` optimizer). ``num_epochs``, ``batch_size`` and ``max_steps`` are integers.
    Each epoch visits the samples in a fresh order drawn from ``seed`` (``shuffle=False``: in order).
    ``scheduler.step()`` is called after every batch (``scheduler_step='batch'``) or every epoch
    (``'epoch'``). ``augment(xb, rng)`` returns an augmented copy of a training batch.
    ``val_data=(x_val, y_val)`` is evaluated after each epoch in eval mode with the run's ``criterion``
    (``val_acc`` is NaN unless the outputs are class scores and y integer labels).

    Checked before the first update, so that a mistake costs no epoch: the arguments' types and ranges,
    NaN/inf in the data, ``val_data``'s form, and (on the first 2 samples of the training data and of
    ``val_data``, in eval mode, changing nothing) that model, criterion and labels fit together; with
    cross-entropy every integer label is checked against the model's number of outputs.

    Which weights the model holds afterwards: with ``early_stopping`` (``restore_best=True``) those of
    the best validation epoch, however training ended (all epochs, early stopping, a hook or
    ``max_steps``, divergence, an exception or Ctrl-C); without it those after the last update (a
    diverged step makes none). An exception (a loader's ``OSError``, ``KeyboardInterrupt``,
    :class:`TrainingDivergedError`, a hook's error) propagates with the run's :class:`History` of the
    epochs completed attached as ``err.history``.

    Hooks: ``on_step(step, loss)`` after every update (step counts from 1, ``loss`` is the batch's
    loss before the update) and ``on_epoch(epoch, history)`` after every epoch; either stops
    training by returning True. ``max_steps`` ends training after that many steps.
    The input gradient is skipped while training (``model.needs_input_grad`` is False inside ``fit``
    and restored afterwards): the inputs are data, as autograd assumes for tensors without ``requires_grad``.
    Divergence (see the module docstring): ``on_divergence='raise'`` raises
    :class:`TrainingDivergedError` naming the epoch and step; ``'stop'`` returns with
    ``history.diverged_at`` set. A diverged step updates nothing.
    """
    val_data = _check_fit_args("fit", num_epochs, batch_size, scheduler_step, early_stopping, val_data, on_divergence,
                               max_steps)
    data = _Data(x, y, batch_size, shuffle, "fit")
    trainer = _NumpyTrainer(model, optimizer, CrossEntropyLoss() if criterion is None else criterion, data, augment,
                            divergence)
    predict = lambda xs: predict_logits(model, xs)  # noqa: E731
    score = lambda xs, ys: evaluate(model, xs, ys, criterion=criterion)  # noqa: E731
    if not data.loader:
        _probe("fit", "the training data (x, y)", predict, score, data.x, data.y, criterion)
    val_fn = None
    if val_data is not None:
        _probe("fit", "val_data", predict, score, *val_data, criterion)
        val_fn = lambda: evaluate(model, *val_data, criterion=criterion)  # noqa: E731
    # The input is data: nobody needs dLoss/dInput, so backward skips it (as autograd does for a tensor
    # without requires_grad); the parameter gradients are the same. The model's own setting comes back after.
    with input_grad_mode(model, False) if isinstance(model, Module) else contextlib.nullcontext():
        return _run(trainer, model, optimizer, num_epochs=num_epochs, scheduler=scheduler,
                    scheduler_step=scheduler_step, early_stopping=early_stopping, val_fn=val_fn, on_step=on_step,
                    on_epoch=on_epoch, max_steps=max_steps, on_divergence=on_divergence, seed=seed,
                    progress=progress, desc=desc)


def _end_epoch(history, seconds, train_loss, train_acc, lr, val, bar):
    history.seconds.append(seconds)
    history.train_loss.append(float(train_loss))
    history.train_acc.append(float(train_acc))
    history.val_loss.append(float(val[0]))
    history.val_acc.append(float(val[1]))
    history.lr.append(float(lr))
    if bar.disable:  # no progress bar: nothing to format (the widgets run an "epoch" per step)
        return
    info = {"epoch": history.epochs, "loss": f"{train_loss:.4f}", "train acc": f"{train_acc:.4f}"}
    if not math.isnan(val[1]):
        info["val acc"] = f"{val[1]:.4f}"
    bar.set_postfix(info, refresh=True)


def _monitored(history, early_stopping):
    return history.val_loss[-1] if early_stopping.monitor == "val_loss" else history.val_acc[-1]


def _restore_best(model, history, early_stopping):
    if early_stopping is not None and early_stopping.best_state is not None:
        history.best_epoch = early_stopping.best_epoch
        if early_stopping.restore_best:
            model.load_state_dict(early_stopping.best_state)
    elif history.epochs:
        history.best_epoch = history.epochs


# ---------------------------------------------------------------------------------------
# PyTorch twins: the same loop, on the device given
# ---------------------------------------------------------------------------------------


def _to_tensor(a, device, dtype=None):
    import torch
    t = a if isinstance(a, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(a))
    return t.to(device=device, dtype=dtype) if dtype is not None else t.to(device)


def _predict_torch(model, x, batch_size, device):
    import torch
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            xt = _to_tensor(x, device)
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
    x, y = _as_data(x, "x", "evaluate_torch"), _as_data(y, "y", "evaluate_torch")
    if len(x) == 0 or len(x) != len(y):
        raise ValueError(f"evaluate_torch: expected as many labels as inputs, at least one, got {len(x)} inputs and "
                         f"{len(y)} labels")
    out = _predict_torch(model, x, batch_size, device)
    logits = out.cpu().numpy()
    y_np = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    if criterion is None:
        return CrossEntropyLoss().forward(logits.astype(np.float64), y_np), accuracy(logits, y_np)
    with torch.no_grad():
        target = _to_tensor(y, device)
        if target.is_floating_point():
            target = target.to(out.dtype)
        loss = float(criterion(out, target))
    return loss, (accuracy(logits, y_np) if _is_classification(logits, y_np) else math.nan)


class _TorchTrainer:
    """One step of a torch model. The loss is read back (a device sync) every step on the CPU or when
    ``on_step`` needs it; elsewhere the epoch's losses are checked at its end, in one sync."""

    def __init__(self, model, optimizer, criterion, data, augment, rule, device, sync_each_step):
        import torch
        self.torch = torch
        self.model, self.optimizer, self.criterion, self.data, self.augment = model, optimizer, criterion, data, augment
        self.monitor, self.device, self.sync_each_step = _Monitor(rule), device, sync_each_step
        self.sum_dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64  # mps: no float64
        if not data.loader:  # whole sets go to the device once; batches are gathered there
            self.x_dev = _to_tensor(data.x, device) if augment is None else None
            self.y_dev = _to_tensor(np.asarray(data.y, dtype=np.int64) if np.asarray(data.y).dtype.kind in "iu"
                                    else data.y, device)

    def start_epoch(self, first_step):
        torch = self.torch
        self.first_step, self.pending, self.seen, self.classification = first_step, [], 0, True
        self.loss_sum = torch.zeros((), dtype=self.sum_dtype, device=self.device)
        self.correct = torch.zeros((), dtype=torch.int64, device=self.device)

    def _batch(self, batch, rng):
        if self.data.loader:
            xb, yb = batch
            if self.augment is not None:
                xb = self.augment(np.asarray(xb), rng)
            return _to_tensor(xb, self.device), _to_tensor(yb, self.device)
        idx = batch if isinstance(batch, slice) else _to_tensor(batch, self.device)
        if self.augment is None:
            xb = self.x_dev[idx]
        else:
            xb = _to_tensor(self.augment(self.data.x[batch], rng), self.device)
        return xb, self.y_dev[idx]

    def step(self, batch, step, rng):
        xb, yb = self._batch(batch, rng)
        out = self.model(xb)
        loss = self.criterion(out, yb)
        value = None
        if self.sync_each_step:
            value = loss.item()
            self.monitor.check(step, value)  # raises _Diverged before a diverged loss updates anything
        else:
            self.pending.append(loss.detach())
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        n = len(yb)
        self.loss_sum += loss.detach() * n
        self.seen += n
        if self.classification and out.ndim == 2 and yb.ndim == 1 and not yb.dtype.is_floating_point:
            self.correct += (out.detach().argmax(dim=1) == yb).sum()
        else:
            self.classification = False
        return value

    def end_epoch(self):
        if self.pending:
            self.monitor.check_many(self.first_step, self.torch.stack(self.pending).cpu().numpy())
        mean_loss = float(self.loss_sum) / self.seen
        return mean_loss, (int(self.correct) / self.seen if self.classification else math.nan)


def fit_torch(model, optimizer, x, y=None, *, num_epochs: int, batch_size: int = 128, criterion=None,
              shuffle: bool = True, val_data=None, scheduler=None, scheduler_step: str = "batch", augment=None,
              early_stopping: EarlyStopping | None = None, on_step=None, on_epoch=None, max_steps: int | None = None,
              on_divergence: str = "raise", divergence: Divergence = DIVERGENCE, seed: int = 0,
              device: str = "cpu", progress: bool = True, desc: str = "") -> History:
    """:func:`fit` for a ``torch.nn.Module`` (already on ``device``) and a ``torch.optim`` optimizer.

    The same loop and the same options (``criterion`` is a torch loss, default
    ``torch.nn.CrossEntropyLoss()``). The data stay NumPy arrays on the host; the batch order comes
    from the same seeded NumPy generator as in :func:`fit`, and ``augment(xb, rng)`` is the same
    NumPy function, so both libraries see the same batches. Whole training and validation sets go
    to the device once. The divergence rule is the same; on the CPU (or with ``on_step``) each
    step's loss is checked before its update, on an accelerator the epoch's losses are checked at
    the end of the epoch (one sync per epoch), so training stops there, naming the first bad step.
    ``device`` is a torch device or its name ("cpu", "cpu:0", "cuda:1"); every CPU device checks each step.
    The up-front checks, the weights a stopped run holds and ``err.history`` are as in :func:`fit`.
    """
    import torch

    val_data = _check_fit_args("fit_torch", num_epochs, batch_size, scheduler_step, early_stopping, val_data,
                               on_divergence, max_steps)
    data = _Data(x, y, batch_size, shuffle, "fit_torch")
    trainer = _TorchTrainer(model, optimizer, torch.nn.CrossEntropyLoss() if criterion is None else criterion, data,
                            augment, divergence, device,
                            sync_each_step=torch.device(device).type == "cpu" or on_step is not None)
    predict = lambda xs: predict_logits_torch(model, xs, device=device)  # noqa: E731
    score = lambda xs, ys: evaluate_torch(model, xs, ys, device=device, criterion=criterion)  # noqa: E731
    if not data.loader:
        _probe("fit_torch", "the training data (x, y)", predict, score, data.x, data.y, criterion)
    val_fn = None
    if val_data is not None:
        _probe("fit_torch", "val_data", predict, score, *val_data, criterion)
        val_fn = lambda: evaluate_torch(model, *val_data, device=device, criterion=criterion)  # noqa: E731
    return _run(trainer, model, optimizer, num_epochs=num_epochs, scheduler=scheduler, scheduler_step=scheduler_step,
                early_stopping=early_stopping, val_fn=val_fn, on_step=on_step, on_epoch=on_epoch,
                max_steps=max_steps, on_divergence=on_divergence, seed=seed, progress=progress, desc=desc)
