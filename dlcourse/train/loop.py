"""The loop shared by fit and fit_torch, its History, early stopping and the checks made before training."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..metrics import _as_data, _batches
from ..nn.loss import NonFiniteLossError
from .divergence import ON_DIVERGENCE, TrainingDivergedError, _Diverged


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


def _probe(where, what, predict_fn, evaluate_fn, x, y, criterion):
    """Validation on the first 2 samples of (x, y) before training starts, so that a wrong val_data (or labels,
    or a criterion that does not fit the outputs) fails now, not after an epoch; then, for cross-entropy, every
    integer label in range of the model's classes. Changes nothing (eval mode, no gradient, no update; the
    package's random generator is put back). A NaN/inf loss is left to the loop, which reports divergence."""
    from ..random import get_rng
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
