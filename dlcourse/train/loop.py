"""The loop shared by ``fit`` and ``fit_torch`` (:func:`run`), what it records (:class:`History`) and early stopping.

The loop is written once; a *trainer* (``trainers.py``) knows one library and does one step of it. Divergence is
the guard's (``divergence.py``): the trainer's step asks it, the loop applies its policy.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .divergence import Diverged
from .options import TrainOptions, probe


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


def run(trainer, options: TrainOptions) -> History:
    """The loop, with ``options`` (:class:`TrainOptions`, already checked). ``trainer`` knows one library:

    * ``model``, ``optimizer``, ``data`` (a :class:`TrainingData`), ``guard`` (the run's :class:`DivergenceGuard`);
    * ``predict(x)`` and ``score(x, y)`` -> (loss, accuracy), in eval mode with no update: the checks before
      training (:func:`probe`) and the validation after each epoch;
    * ``start_epoch(first_step)``; ``step(batch, step, rng)``: forward, loss (checked by the guard, which raises
      :class:`Diverged` before the update), backward and update on one batch, returning the loss (None when it
      is not read back); ``end_epoch()`` -> (mean loss, accuracy).
    """
    model, optimizer, data = trainer.model, trainer.optimizer, trainer.data
    scheduler, scheduler_step, early_stopping = options.scheduler, options.scheduler_step, options.early_stopping
    on_step, on_epoch, max_steps = options.on_step, options.on_epoch, options.max_steps
    val_fn = _checked_before_training(trainer, options)
    rng = np.random.default_rng(options.seed)
    history = History()
    total = data.steps_per_epoch * options.num_epochs if data.steps_per_epoch is not None else None
    if max_steps is not None:
        total = max_steps if total is None else min(total, max_steps)
    bar = _progress(total, options.desc or type(model).__name__, options.progress)
    model.train()
    step, epoch = 0, 0
    try:
        try:
            for epoch in range(1, options.num_epochs + 1):
                t0 = time.perf_counter()
                first_step = step + 1
                trainer.start_epoch(first_step)
                asked_to_stop = out_of_steps = False
                for batch in data.epoch(rng):
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
                        raise ValueError(f"{data.where}: the loader yielded no batches")
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
        except Diverged as d:
            history.diverged_at = d.step
            trainer.guard.stop_or_raise(d, f"training diverged at epoch {epoch}, step {d.step}: {d.reason} "
                                           "(try a smaller learning rate)")
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


def _checked_before_training(trainer, options: TrainOptions):
    """:func:`probe` the training data (arrays) and ``val_data`` on their first samples; returns the validation
    run after each epoch (None without ``val_data``)."""
    data, where, criterion = trainer.data, trainer.data.where, options.criterion
    if not data.loader:
        probe(where, "the training data (x, y)", trainer.predict, trainer.score, data.x, data.y, criterion)
    if options.val_data is None:
        return None
    probe(where, "val_data", trainer.predict, trainer.score, *options.val_data, criterion)
    return lambda: trainer.score(*options.val_data)


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
