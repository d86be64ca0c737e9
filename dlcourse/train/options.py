"""What a run is given, checked before its first update: its options (:class:`TrainOptions`) and its data.

``fit`` and ``fit_torch`` take the same keyword arguments; each builds one :class:`TrainOptions` from them
(:meth:`TrainOptions.from_keywords`, which checks every argument that can be checked before training) and hands
that one object to its trainer and to the loop. :class:`TrainingData` holds the training data (arrays, or a
loader of batches), :func:`check_data_finite` refuses NaN/inf in data, and :func:`probe` runs the model on the
first samples of the training and validation data, so that a mistake costs no epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

import numpy as np

from ..metrics import as_data, batch_indices
from ..nn.loss import NonFiniteLossError
from .divergence import DIVERGENCE, Divergence, check_policy


@dataclass(frozen=True)
class TrainOptions:
    """Every option of :func:`~dlcourse.train.fit` and :func:`~dlcourse.train.fit_torch` (their keyword
    arguments; what each does is in ``fit``'s docstring). Only ``num_epochs`` has no default."""

    num_epochs: int
    batch_size: int = 128
    criterion: Any = None  # None: cross-entropy of the trainer's library
    shuffle: bool = True
    val_data: tuple | None = None  # (x_val, y_val); after from_keywords, a pair of arrays
    scheduler: Any = None
    scheduler_step: str = "batch"  # or "epoch"
    augment: Callable | None = None  # augment(xb, rng) -> a new batch
    early_stopping: Any = None  # an EarlyStopping
    on_step: Callable | None = None  # on_step(step, loss) -> True stops training
    on_epoch: Callable | None = None  # on_epoch(epoch, history) -> True stops training
    max_steps: int | None = None
    on_divergence: str = "raise"  # or "stop"
    divergence: Divergence = DIVERGENCE
    seed: int = 0
    progress: bool = True
    desc: str = ""

    @classmethod
    def from_keywords(cls, where: str, keywords: dict) -> TrainOptions:
        """The options of one run of ``where`` ("fit" or "fit_torch") from its keyword arguments, checked:
        names, types and ranges, ``val_data``'s form (turned into a pair of arrays) and NaN/inf in it."""
        names = [f.name for f in fields(cls)]
        unknown = [name for name in keywords if name not in names]
        if unknown:
            raise TypeError(f"{where}() got an unexpected keyword argument {unknown[0]!r}; its options are "
                            f"{', '.join(names)}")
        if "num_epochs" not in keywords:
            raise TypeError(f"{where}() missing the keyword argument 'num_epochs'")
        options = cls(**keywords)
        return replace(options, val_data=options._checked_val_data(where))

    def _checked_val_data(self, where: str):
        """Every option that can be checked before training, checked; returns val_data as (x_val, y_val) arrays."""
        num_epochs, batch_size, max_steps, val_data = self.num_epochs, self.batch_size, self.max_steps, self.val_data
        for name, value in (("num_epochs", num_epochs), ("batch_size", batch_size), ("max_steps", max_steps)):
            if value is None and name == "max_steps":
                continue
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{where}: expected {name} to be an integer, got {type(value).__name__} {value!r}"
                                + (f" (e.g. {name}={int(value)} or math.ceil)" if isinstance(value, float) else ""))
        if num_epochs < 1 or batch_size < 1:
            raise ValueError(f"{where}: expected num_epochs >= 1 and batch_size >= 1, got {num_epochs} and "
                             f"{batch_size}")
        if self.scheduler_step not in ("batch", "epoch"):
            raise ValueError(f"{where}: scheduler_step must be 'batch' or 'epoch', got {self.scheduler_step!r}")
        if self.early_stopping is not None and val_data is None:
            raise ValueError(f"{where}: early stopping needs val_data=(x_val, y_val) (never the test set)")
        check_policy(where, self.on_divergence)
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"{where}: expected max_steps >= 1 (or None), got {max_steps}")
        if val_data is None:
            return None
        if not isinstance(val_data, (tuple, list)) or len(val_data) != 2:
            shown = f"a {type(val_data).__name__} of {len(val_data)}" if isinstance(val_data, (tuple, list)) else \
                type(val_data).__name__
            raise ValueError(f"{where}: expected val_data=(x_val, y_val), a pair of arrays, got {shown}")
        x_val, y_val = as_data(val_data[0], "x of val_data", where), as_data(val_data[1], "y of val_data", where)
        if len(x_val) != len(y_val):
            raise ValueError(f"{where}: expected as many labels as inputs in val_data, got {len(x_val)} inputs and "
                             f"{len(y_val)} labels")
        if len(x_val) == 0:
            raise ValueError(f"{where}: expected a non-empty val_data, got 0 samples")
        check_data_finite(x_val, "x of val_data", where)
        return x_val, y_val


class TrainingData:
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
        x, y = as_data(x, "x", where), as_data(y, "y", where)
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
            yield from batch_indices(self.n, self.batch_size, rng if self.shuffle else None)
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


def probe(where, what, predict_fn, evaluate_fn, x, y, criterion):
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
