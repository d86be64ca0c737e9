"""The two trainers: fit (dlcourse models) and fit_torch (PyTorch twins)."""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ..metrics import _is_classification, _to_tensor, evaluate, evaluate_torch, predict_logits, predict_logits_torch
from ..nn.loss import CrossEntropyLoss, NonFiniteLossError
from ..nn.module import Module, input_grad_mode
from .divergence import DIVERGENCE, Divergence, _Monitor, _params_finite
from .loop import EarlyStopping, History, _check_fit_args, _Data, _probe, _run


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
