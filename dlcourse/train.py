"""The training loop, written once: ``fit`` for dlcourse models, ``fit_torch`` for PyTorch twins.

Both run the same loop on plain arrays (init, then per mini-batch: forward, loss, backward,
update), with an optional learning-rate scheduler, data augmentation, validation after each
epoch, early stopping on the validation accuracy, and a tqdm progress bar. Both return a
:class:`History` (loss, accuracy and seconds per epoch), so curves and tables of the two
libraries are drawn by the same code.

Evaluation is done right: :func:`evaluate` / :func:`evaluate_torch` switch the model to eval
mode (dropout off, batch-norm running statistics), compute no gradient and update nothing,
and restore the previous mode. The test set is only ever passed to these.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .nn.loss import CrossEntropyLoss, NonFiniteLossError
from .nn.module import Module


class TrainingDivergedError(NonFiniteLossError):
    """The loss became NaN or infinite; the message says at which epoch and step."""


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
    stopped_early: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def seconds_per_epoch(self) -> float:
        """Median seconds per epoch (the first epoch, which warms caches, counts like the others)."""
        return float(np.median(self.seconds)) if self.seconds else math.nan

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds",
                                              "best_epoch", "stopped_early")}


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
    """Fraction of correct predictions; ``pred`` is labels (N,) or scores (N, C)."""
    pred, y = np.asarray(pred), np.asarray(y)
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.shape != y.shape:
        raise ValueError(f"accuracy: expected predictions of shape {y.shape} (the labels'), got {pred.shape}")
    return float(np.mean(pred == y)) if y.size else math.nan


def confusion_matrix(y_true, y_pred, num_classes: int | None = None) -> np.ndarray:
    """``cm[i, j]`` = number of samples of true class i predicted as class j (rows: truth)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
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
    order = rng.permutation(n) if rng is not None else np.arange(n)
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


def evaluate(model: Module, x, y, batch_size: int = 256) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on (x, y), in eval mode, with no update."""
    logits = predict_logits(model, x, batch_size)
    loss = CrossEntropyLoss().forward(logits.astype(np.float64), np.asarray(y))
    return loss, accuracy(logits, y)


def _progress(total: int, desc: str, progress: bool):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not progress, unit="batch", leave=True)


def fit(model: Module, optimizer, x, y, *, num_epochs: int, batch_size: int = 128, val_data=None,
        scheduler=None, scheduler_step: str = "batch", augment=None, early_stopping: EarlyStopping | None = None,
        seed: int = 0, progress: bool = True, desc: str = "") -> History:
    """Train a dlcourse ``model`` with cross-entropy on (x, y); return a :class:`History`.

    x: (N, ...) float inputs; y: (N,) int64 labels. ``optimizer`` is a ``dlcourse.optim``
    optimizer over ``model.parameters()``. ``scheduler.step()`` is called after every batch
    (``scheduler_step='batch'``) or every epoch (``'epoch'``). ``augment(xb, rng)`` returns an
    augmented copy of a training batch. ``val_data=(x_val, y_val)`` is evaluated (eval mode)
    after each epoch; with ``early_stopping`` the best validation weights are restored at the end.
    A NaN/inf loss raises :class:`TrainingDivergedError` naming the epoch and step.
    """
    _check_fit_args(x, y, num_epochs, batch_size, scheduler_step, early_stopping, val_data)
    criterion = CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    history = History()
    steps_per_epoch = math.ceil(len(x) / batch_size)
    bar = _progress(num_epochs * steps_per_epoch, desc or type(model).__name__, progress)
    model.train()
    step = 0
    try:
        for epoch in range(1, num_epochs + 1):
            t0 = time.perf_counter()
            loss_sum, correct = 0.0, 0
            for idx in _batches(len(x), batch_size, rng):
                xb, yb = x[idx], y[idx]
                if augment is not None:
                    xb = augment(xb, rng)
                step += 1
                try:
                    logits = model.forward(xb)
                    loss = criterion.forward(logits, yb)
                except NonFiniteLossError as err:
                    raise TrainingDivergedError(f"training diverged at epoch {epoch}, step {step}: {err}") from err
                optimizer.zero_grad()
                model.backward(criterion.backward())
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                loss_sum += loss * len(idx)
                correct += int(np.count_nonzero(logits.argmax(axis=1) == yb))
                bar.update(1)
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            _end_epoch(history, time.perf_counter() - t0, loss_sum / len(x), correct / len(x),
                       optimizer.param_groups[0]["lr"],
                       evaluate(model, *val_data) if val_data is not None else (math.nan, math.nan), bar)
            if early_stopping is not None and early_stopping.update(epoch, _monitored(history, early_stopping),
                                                                     model):
                history.stopped_early = True
                break
    finally:
        bar.close()
    _restore_best(model, history, early_stopping)
    return history


def _check_fit_args(x, y, num_epochs, batch_size, scheduler_step, early_stopping, val_data):
    if len(x) != len(y):
        raise ValueError(f"fit: expected as many labels as inputs, got {len(x)} inputs and {len(y)} labels")
    if len(x) == 0:
        raise ValueError("fit: expected a non-empty training set, got 0 samples")
    if num_epochs < 1 or batch_size < 1:
        raise ValueError(f"fit: expected num_epochs >= 1 and batch_size >= 1, got {num_epochs} and {batch_size}")
    if scheduler_step not in ("batch", "epoch"):
        raise ValueError(f"fit: scheduler_step must be 'batch' or 'epoch', got {scheduler_step!r}")
    if early_stopping is not None and val_data is None:
        raise ValueError("fit: early stopping needs val_data=(x_val, y_val) (never the test set)")


def _end_epoch(history, seconds, train_loss, train_acc, lr, val, bar):
    history.seconds.append(seconds)
    history.train_loss.append(float(train_loss))
    history.train_acc.append(float(train_acc))
    history.val_loss.append(float(val[0]))
    history.val_acc.append(float(val[1]))
    history.lr.append(float(lr))
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


def predict_logits_torch(model, x, batch_size: int = 1000, device: str = "cpu") -> np.ndarray:
    """A torch model's outputs on ``x`` in eval mode, without autograd, as a NumPy array."""
    import torch
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            xt = _to_tensor(x, device)
            return torch.cat([model(xt[i:i + batch_size]) for i in range(0, len(xt), batch_size)]).cpu().numpy()
    finally:
        model.train(was_training)


def evaluate_torch(model, x, y, batch_size: int = 1000, device: str = "cpu") -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of a torch model, in eval mode, without autograd."""
    logits = predict_logits_torch(model, x, batch_size, device)
    return CrossEntropyLoss().forward(logits.astype(np.float64), np.asarray(y)), accuracy(logits, y)


def fit_torch(model, optimizer, x, y, *, num_epochs: int, batch_size: int = 128, val_data=None, scheduler=None,
              scheduler_step: str = "batch", augment=None, early_stopping: EarlyStopping | None = None,
              seed: int = 0, device: str = "cpu", progress: bool = True, desc: str = "") -> History:
    """:func:`fit` for a ``torch.nn.Module`` (already on ``device``) and a ``torch.optim`` optimizer.

    The data stay NumPy arrays on the host; the batch order comes from the same seeded NumPy
    generator as in :func:`fit`, and ``augment(xb, rng)`` is the same NumPy function, so both
    libraries see the same batches. Whole training and validation sets go to the device once.
    """
    import torch

    _check_fit_args(x, y, num_epochs, batch_size, scheduler_step, early_stopping, val_data)
    criterion = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    history = History()
    x_dev = _to_tensor(x, device) if augment is None else None
    y_dev = _to_tensor(np.asarray(y, dtype=np.int64), device)
    sum_dtype = torch.float32 if str(device).startswith("mps") else torch.float64  # mps has no float64
    steps_per_epoch = math.ceil(len(x) / batch_size)
    bar = _progress(num_epochs * steps_per_epoch, desc or type(model).__name__, progress)
    model.train()
    step = 0
    try:
        for epoch in range(1, num_epochs + 1):
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), dtype=sum_dtype, device=device)
            correct = torch.zeros((), dtype=torch.int64, device=device)
            for idx in _batches(len(x), batch_size, rng):
                idx_dev = _to_tensor(idx, device)
                if augment is None:
                    xb = x_dev[idx_dev]
                else:
                    xb = _to_tensor(augment(x[idx], rng), device)
                yb = y_dev[idx_dev]
                step += 1
                logits = model(xb)
                loss = criterion(logits, yb)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if scheduler is not None and scheduler_step == "batch":
                    scheduler.step()
                loss_sum += loss.detach() * len(idx)
                correct += (logits.detach().argmax(dim=1) == yb).sum()
                bar.update(1)
            if scheduler is not None and scheduler_step == "epoch":
                scheduler.step()
            mean_loss = float(loss_sum) / len(x)  # one device sync per epoch
            seconds = time.perf_counter() - t0
            if not math.isfinite(mean_loss):
                raise TrainingDivergedError(f"training diverged in epoch {epoch} (mean loss {mean_loss})")
            val = evaluate_torch(model, *val_data, device=device) if val_data is not None else (math.nan, math.nan)
            _end_epoch(history, seconds, mean_loss, int(correct) / len(x), optimizer.param_groups[0]["lr"], val, bar)
            if early_stopping is not None and early_stopping.update(epoch, _monitored(history, early_stopping),
                                                                     model):
                history.stopped_early = True
                break
    finally:
        bar.close()
    _restore_best(model, history, early_stopping)
    return history
