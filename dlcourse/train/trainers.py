"""The two trainers, one per library: :func:`fit` (dlcourse models) and :func:`fit_torch` (PyTorch twins).

Each builds the run's :class:`TrainOptions` once from its keyword arguments, wraps the data, and hands both with
a trainer (the library's one step: forward, loss, backward, update) to the loop, :func:`~.loop.run`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ..metrics import evaluate, evaluate_torch, is_classification, predict_logits, predict_logits_torch, to_tensor
from ..nn.loss import CrossEntropyLoss
from ..nn.module import Module, input_grad_mode
from .divergence import DivergenceGuard
from .loop import History, run
from .options import TrainingData, TrainOptions


class _NumpyTrainer:
    """One step of a dlcourse model (see :func:`~.loop.run` for what a trainer provides)."""

    def __init__(self, model, optimizer, data: TrainingData, options: TrainOptions):
        self.model, self.optimizer, self.data, self.augment = model, optimizer, data, options.augment
        self.criterion = CrossEntropyLoss() if options.criterion is None else options.criterion
        self.guard = DivergenceGuard(data.where, options.on_divergence, options.divergence)
        self.predict = lambda xs: predict_logits(model, xs)
        self.score = lambda xs, ys: evaluate(model, xs, ys, criterion=options.criterion)

    def start_epoch(self, first_step):
        self.loss_sum, self.correct, self.seen = 0.0, 0, 0

    def _forward(self, xb, yb):
        out = self.model.forward(xb)
        return out, self.criterion.forward(out, yb)

    def step(self, batch, step, rng):
        xb, yb = batch if self.data.loader else (self.data.x[batch], self.data.y[batch])
        xb, yb = np.asarray(xb), np.asarray(yb)
        if self.augment is not None:
            xb = self.augment(xb, rng)
        out, loss = self.guard.attempt(lambda: self._forward(xb, yb), self.model) or (None, math.nan)
        self.guard.check(step, loss)  # raises Diverged before a diverged loss updates anything
        self.optimizer.zero_grad()
        self.model.backward(self.criterion.backward())
        self.optimizer.step()
        n = len(yb)
        self.loss_sum += loss * n
        self.seen += n
        if self.correct is not None and is_classification(out, yb):
            self.correct += int(np.count_nonzero(out.argmax(axis=1) == yb))
        else:
            self.correct = None
        return loss

    def end_epoch(self):
        acc = self.correct / self.seen if self.correct is not None else math.nan
        return self.loss_sum / self.seen, acc


def fit(model: Module, optimizer, x, y=None, **options) -> History:
    """Train a dlcourse ``model`` on (x, y); return a :class:`History`.

    ``options`` are keyword arguments, collected once into a :class:`TrainOptions` (which lists them with their
    defaults): ``num_epochs`` (required), ``batch_size=128``, ``criterion=None``, ``shuffle=True``,
    ``val_data=None``, ``scheduler=None``, ``scheduler_step='batch'``, ``augment=None``, ``early_stopping=None``,
    ``on_step=None``, ``on_epoch=None``, ``max_steps=None``, ``on_divergence='raise'``,
    ``divergence=DIVERGENCE``, ``seed=0``, ``progress=True``, ``desc=''``.

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
    options = TrainOptions.from_keywords("fit", options)
    trainer = _NumpyTrainer(model, optimizer, TrainingData(x, y, options.batch_size, options.shuffle, "fit"), options)
    # The input is data: nobody needs dLoss/dInput, so backward skips it (as autograd does for a tensor
    # without requires_grad); the parameter gradients are the same. The model's own setting comes back after.
    with input_grad_mode(model, False) if isinstance(model, Module) else contextlib.nullcontext():
        return run(trainer, options)


class _TorchTrainer:
    """One step of a torch model. The loss is read back (a device sync) every step on the CPU or when
    ``on_step`` needs it; elsewhere the epoch's losses are checked at its end, in one sync."""

    def __init__(self, model, optimizer, data: TrainingData, options: TrainOptions, device):
        import torch
        self.torch = torch
        self.model, self.optimizer, self.data, self.augment = model, optimizer, data, options.augment
        self.criterion = torch.nn.CrossEntropyLoss() if options.criterion is None else options.criterion
        self.guard = DivergenceGuard(data.where, options.on_divergence, options.divergence)
        self.predict = lambda xs: predict_logits_torch(model, xs, device=device)
        self.score = lambda xs, ys: evaluate_torch(model, xs, ys, device=device, criterion=options.criterion)
        self.device = device
        self.sync_each_step = torch.device(device).type == "cpu" or options.on_step is not None
        self.sum_dtype = torch.float32 if torch.device(device).type == "mps" else torch.float64  # mps: no float64
        if not data.loader:  # whole sets go to the device once; batches are gathered there
            self.x_dev = to_tensor(data.x, device) if self.augment is None else None
            self.y_dev = to_tensor(np.asarray(data.y, dtype=np.int64) if np.asarray(data.y).dtype.kind in "iu"
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
            return to_tensor(xb, self.device), to_tensor(yb, self.device)
        idx = batch if isinstance(batch, slice) else to_tensor(batch, self.device)
        if self.augment is None:
            xb = self.x_dev[idx]
        else:
            xb = to_tensor(self.augment(self.data.x[batch], rng), self.device)
        return xb, self.y_dev[idx]

    def step(self, batch, step, rng):
        xb, yb = self._batch(batch, rng)
        out = self.model(xb)
        loss = self.criterion(out, yb)
        value = None
        if self.sync_each_step:
            value = loss.item()
            self.guard.check(step, value)  # raises Diverged before a diverged loss updates anything
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
            self.guard.check_many(self.first_step, self.torch.stack(self.pending).cpu().numpy())
        mean_loss = float(self.loss_sum) / self.seen
        return mean_loss, (int(self.correct) / self.seen if self.classification else math.nan)


def fit_torch(model, optimizer, x, y=None, *, device: str = "cpu", **options) -> History:
    """:func:`fit` for a ``torch.nn.Module`` (already on ``device``) and a ``torch.optim`` optimizer.

    The same loop and the same ``options`` (``criterion`` is a torch loss, default
    ``torch.nn.CrossEntropyLoss()``). The data stay NumPy arrays on the host; the batch order comes
    from the same seeded NumPy generator as in :func:`fit`, and ``augment(xb, rng)`` is the same
    NumPy function, so both libraries see the same batches. Whole training and validation sets go
    to the device once. The divergence rule is the same; on the CPU (or with ``on_step``) each
    step's loss is checked before its update, on an accelerator the epoch's losses are checked at
    the end of the epoch (one sync per epoch), so training stops there, naming the first bad step.
    ``device`` is a torch device or its name ("cpu", "cpu:0", "cuda:1"); every CPU device checks each step.
    The up-front checks, the weights a stopped run holds and ``err.history`` are as in :func:`fit`.
    """
    options = TrainOptions.from_keywords("fit_torch", options)
    data = TrainingData(x, y, options.batch_size, options.shuffle, "fit_torch")
    return run(_TorchTrainer(model, optimizer, data, options, device), options)
