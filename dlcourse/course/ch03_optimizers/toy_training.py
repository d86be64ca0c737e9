"""Chapter 3's toy training: any optimizer, any batch size, on toy data, with losses and wall-clock.

Used by the optimizer chapter to compare full-batch gradient descent (batch_size = N), stochastic
gradient descent (batch_size = 1) and mini-batch SGD on the same model from the same start,
and by the learning-rate playground. The loop itself is :func:`dlcourse.train.fit` (per-step and
per-epoch hooks record what the chapter plots); a run whose loss diverges (the package's one
rule, :class:`dlcourse.train.Divergence`) stops and reports ``diverged_at`` (the step) instead of
raising or printing NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlcourse import nn
from dlcourse.models import mlp
from dlcourse.random import manual_seed
from dlcourse.runtime import num_threads
from dlcourse.train import fit


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
    diverged_at: int | None = None  # the step whose loss diverged (dlcourse.train.Divergence)

    @property
    def final_loss(self) -> float:
        return float(self.epoch_losses[-1] if self.epoch_losses else self.step_losses[-1])


def full_loss(model, criterion, X, y) -> float:
    return criterion(model(X), y)


def accuracy(model, X, y) -> float:
    return float(np.mean(model(X).argmax(axis=1) == y))


def train_classifier(model, X, y, optimizer, num_epochs: int = 1, batch_size: int | None = None, seed: int = 0,
                     scheduler=None, evaluate: bool = True, threads: int | None = 1) -> TrainingRun:
    """Train with cross-entropy; ``batch_size=None`` means full-batch gradient descent (one step per epoch).

    Each epoch visits the samples in a fresh random order (``seed``; full batches in their own order).
    ``scheduler`` (optional) is stepped after every optimizer step. With ``evaluate``, the full
    training loss is recorded before training and after each epoch, with the training time so far
    (evaluation excluded). BLAS runs with ``threads`` threads (see :func:`dlcourse.runtime.num_threads`).
    """
    n = len(X)
    batch_size = n if batch_size is None else int(batch_size)
    if not 1 <= batch_size <= n:
        raise ValueError(f"train_classifier: expected 1 <= batch_size <= {n}, got {batch_size}")
    criterion = nn.CrossEntropyLoss()
    run = TrainingRun(steps_per_epoch=-(-n // batch_size))

    def record_epoch(epoch, history):
        try:
            loss = full_loss(model, criterion, X, y)
        except ValueError:  # a non-finite loss, or a layer refusing the NaN made by blown-up weights
            if all(np.isfinite(p.data).all() for p in model.parameters()):
                raise
            run.diverged_at = history.steps
            return True  # stop training
        run.epoch_losses.append(loss)
        run.epoch_times.append(float(np.sum(history.seconds)))

    with num_threads(threads, torch=False):
        if evaluate:
            run.epoch_losses.append(full_loss(model, criterion, X, y))
            run.epoch_times.append(0.0)
        history = fit(model, optimizer, X, y, num_epochs=num_epochs, batch_size=batch_size, shuffle=batch_size < n,
                      scheduler=scheduler, seed=seed, on_step=lambda step, loss: run.step_losses.append(loss),
                      on_epoch=record_epoch if evaluate else None, on_divergence="stop", progress=False)
    if history.diverged_at is not None:
        run.diverged_at = history.diverged_at
    return run
