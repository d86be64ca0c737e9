"""A small training loop for classifiers on toy data: any optimizer, any batch size, losses and wall-clock.

Used by the optimizer chapter to compare full-batch gradient descent (batch_size = N), stochastic
gradient descent (batch_size = 1) and mini-batch SGD on the same model from the same start,
and by the learning-rate playground. A run whose loss turns NaN/inf or explodes stops and
reports ``diverged_at`` (the step) instead of raising or printing NaN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from dlcourse import nn
from dlcourse.models import mlp
from dlcourse.random import manual_seed
from dlcourse.runtime import num_threads


def make_mlp(in_features: int = 2, hidden_sizes=(16, 16), num_classes: int = 2, dtype=np.float64, seed: int = 0):
    """Linear-ReLU-...-Linear classifier (logits out), initialised from ``seed`` (:func:`dlcourse.models.mlp`)."""
    manual_seed(seed)
    return mlp(in_features, hidden_sizes, num_classes, dtype=dtype)


@dataclass
class TrainingRun:
    step_losses: list = field(default_factory=list)  # the mini-batch loss of every step
    epoch_losses: list = field(default_factory=list)  # full training loss: before training, then after each epoch
    epoch_times: list = field(default_factory=list)  # cumulative training seconds at each entry of epoch_losses
    steps_per_epoch: int = 0
    diverged_at: int | None = None  # the step at which the loss became NaN/inf or exceeded the limit

    @property
    def final_loss(self) -> float:
        return float(self.epoch_losses[-1] if self.epoch_losses else self.step_losses[-1])


def full_loss(model, criterion, X, y) -> float:
    return criterion(model(X), y)


def accuracy(model, X, y) -> float:
    return float(np.mean(model(X).argmax(axis=1) == y))


def train_classifier(model, X, y, optimizer, num_epochs: int = 1, batch_size: int | None = None, seed: int = 0,
                     scheduler=None, evaluate: bool = True, limit: float = 1e4, threads: int | None = 1) -> TrainingRun:
    """Train with cross-entropy; ``batch_size=None`` means full-batch gradient descent (one step per epoch).

    Each epoch visits the samples in a fresh random order (``seed``). ``scheduler`` (optional) is
    stepped after every optimizer step. With ``evaluate``, the full training loss is recorded
    before training and after each epoch, with the training time so far (evaluation excluded).
    BLAS runs with ``threads`` threads (see :func:`dlcourse.runtime.num_threads`).
    """
    with num_threads(threads, torch=False):
        return _train(model, X, y, optimizer, num_epochs, batch_size, seed, scheduler, evaluate, limit)


def _train(model, X, y, optimizer, num_epochs, batch_size, seed, scheduler, evaluate, limit):
    n = len(X)
    batch_size = n if batch_size is None else int(batch_size)
    if not 1 <= batch_size <= n:
        raise ValueError(f"train_classifier: expected 1 <= batch_size <= {n}, got {batch_size}")
    criterion = nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    run = TrainingRun(steps_per_epoch=-(-n // batch_size))
    if evaluate:
        run.epoch_losses.append(full_loss(model, criterion, X, y))
        run.epoch_times.append(0.0)
    elapsed, step = 0.0, 0
    for _ in range(num_epochs):
        t0 = time.perf_counter()
        order = rng.permutation(n) if batch_size < n else None
        for start in range(0, n, batch_size):
            step += 1
            if order is None:
                xb, yb = X, y
            else:
                idx = order[start:start + batch_size]
                xb, yb = X[idx], y[idx]
            try:
                loss = criterion(model(xb), yb)
            except nn.NonFiniteLossError:
                run.diverged_at = step
                return run
            if loss > limit:
                run.diverged_at = step
                return run
            run.step_losses.append(loss)
            optimizer.zero_grad()
            model.backward(criterion.backward())
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
        elapsed += time.perf_counter() - t0
        if evaluate:
            try:
                loss = full_loss(model, criterion, X, y)
            except nn.NonFiniteLossError:
                run.diverged_at = step
                return run
            run.epoch_losses.append(loss)
            run.epoch_times.append(elapsed)
    return run
