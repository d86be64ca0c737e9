"""The learning-rate range test: raise the learning rate exponentially, batch by batch, and watch the loss.

Start far too small (the loss barely moves), end far too large (the loss explodes). The useful
range lies in between; a robust pick is a tenth of the rate at the smoothed loss's minimum
(the rate where it falls fastest is another, noisier one). The model's weights are restored afterwards.
The loop is :func:`dlcourse.train.fit`: the rising rate is a per-step ``LambdaLR`` schedule, the
recording and the range test's own end (the smoothed loss far above its minimum) an ``on_step`` hook,
and a diverged loss (the package's one rule) ends it too.
"""

from __future__ import annotations

import math

import numpy as np

from .optim.lr_scheduler import LambdaLR
from .optim.sgd import SGD
from .train import fit


def lr_range_test(model, criterion, batches, optimizer_cls=SGD, start_lr: float = 1e-6, end_lr: float = 10.0,
                  num_steps: int = 100, smooth: float = 0.05, diverge_factor: float = 4.0, **optimizer_kwargs) -> dict:
    """Train ``model`` for ``num_steps`` mini-batches with lr growing geometrically from ``start_lr`` to ``end_lr``.

    ``batches`` yields (x, y) mini-batches: a re-iterable such as a :class:`dlcourse.data.BatchIterator`
    (iterated again, in a fresh order, each time it runs out) or a one-shot iterator (the test ends
    when it is exhausted). Stops early once the smoothed loss exceeds ``diverge_factor`` times its
    minimum, or when the loss diverges (:class:`dlcourse.train.Divergence`).
    Returns a dict: ``lrs``, ``losses`` (raw), ``smoothed`` (exponential moving average, bias
    corrected), ``min_lr`` (the rate at the smoothed minimum), ``suggested_lr`` (``min_lr / 10``, a
    robust default), ``steepest_lr`` (where the smoothed loss falls fastest per log-lr, before its
    minimum; noisy when the curve is flat) and ``diverged_at`` (the 0-based index of the step that
    ended the test, or None).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_range_test: expected 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if num_steps < 2:
        raise ValueError(f"lr_range_test: expected num_steps >= 2, got {num_steps}")
    saved = model.state_dict()
    optimizer = optimizer_cls(model.parameters(), lr=start_lr, **optimizer_kwargs)
    factor = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    schedule = LambdaLR(optimizer, lambda k: factor ** k)  # lr of step k (0-based): start_lr * factor**k
    lrs, losses, smoothed = [], [], []
    state = {"avg": 0.0, "best": math.inf, "ended_at": None}

    def record(step, loss):
        k = step - 1
        state["avg"] = (1 - smooth) * state["avg"] + smooth * loss
        value = state["avg"] / (1 - (1 - smooth) ** (k + 1))
        lrs.append(start_lr * factor ** k)
        losses.append(loss)
        smoothed.append(value)
        state["best"] = min(state["best"], value)
        if value > diverge_factor * state["best"] or not math.isfinite(value):
            state["ended_at"] = k
            return True  # the end of the range: stop

    try:
        history = fit(model, optimizer, batches, criterion=criterion, num_epochs=num_steps, max_steps=num_steps,
                      scheduler=schedule, on_step=record, on_divergence="stop", progress=False)
    finally:
        model.load_state_dict(saved)
    diverged_at = history.diverged_at - 1 if history.diverged_at is not None else state["ended_at"]
    lrs_a, smoothed_a = np.asarray(lrs), np.asarray(smoothed)
    if len(lrs_a) == 0:
        return dict(lrs=lrs_a, losses=np.asarray(losses), smoothed=smoothed_a, steepest_lr=start_lr,
                    min_lr=start_lr, suggested_lr=start_lr, diverged_at=diverged_at)
    lowest = int(np.argmin(smoothed_a))
    min_lr = float(lrs_a[lowest])
    if lowest >= 2:  # the steepest fall of the smoothed loss, looked for before its minimum only
        slope = np.gradient(smoothed_a[:lowest + 1], np.log(lrs_a[:lowest + 1]))
        steepest = float(lrs_a[int(np.argmin(slope))])
    else:
        steepest = float(lrs_a[0])
    return dict(lrs=lrs_a, losses=np.asarray(losses), smoothed=smoothed_a, steepest_lr=steepest, min_lr=min_lr,
                suggested_lr=min_lr / 10, diverged_at=diverged_at)
