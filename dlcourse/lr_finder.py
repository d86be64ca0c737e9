"""The learning-rate range test: raise the learning rate exponentially, batch by batch, and watch the loss.

Start far too small (the loss barely moves), end far too large (the loss explodes). The useful
range lies in between; a robust pick is a tenth of the rate at the smoothed loss's minimum
(the rate where it falls fastest is another, noisier one). The model's weights are restored afterwards.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from .nn.loss import NonFiniteLossError
from .optim.sgd import SGD


def lr_range_test(model, criterion, batches, optimizer_cls=SGD, start_lr: float = 1e-6, end_lr: float = 10.0,
                  num_steps: int = 100, smooth: float = 0.05, diverge_factor: float = 4.0, **optimizer_kwargs) -> dict:
    """Train ``model`` for ``num_steps`` mini-batches with lr growing geometrically from ``start_lr`` to ``end_lr``.

    ``batches`` is an iterable of (x, y) that is cycled (e.g. a :class:`dlcourse.data.BatchIterator`).
    Stops early once the smoothed loss exceeds ``diverge_factor`` times its minimum (or is NaN).
    Returns a dict: ``lrs``, ``losses`` (raw), ``smoothed`` (exponential moving average, bias
    corrected), ``min_lr`` (the rate at the smoothed minimum), ``suggested_lr`` (``min_lr / 10``, a
    robust default), ``steepest_lr`` (where the smoothed loss falls fastest per log-lr, before its
    minimum; noisy when the curve is flat) and ``diverged_at`` (step index or None).
    """
    if not 0 < start_lr < end_lr:
        raise ValueError(f"lr_range_test: expected 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if num_steps < 2:
        raise ValueError(f"lr_range_test: expected num_steps >= 2, got {num_steps}")
    saved = model.state_dict()
    optimizer = optimizer_cls(model.parameters(), lr=start_lr, **optimizer_kwargs)
    factor = (end_lr / start_lr) ** (1.0 / (num_steps - 1))
    lrs, losses, smoothed = [], [], []
    avg, best, diverged_at = 0.0, math.inf, None
    stream = itertools.cycle(batches) if not hasattr(batches, "__next__") else batches
    for step in range(num_steps):
        lr = start_lr * factor ** step
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(stream)
        try:
            loss = criterion(model(x), y)
        except NonFiniteLossError:  # the expected end of a range test: the loss blew up
            diverged_at = step
            break
        avg = (1 - smooth) * avg + smooth * loss
        value = avg / (1 - (1 - smooth) ** (step + 1))
        lrs.append(lr)
        losses.append(loss)
        smoothed.append(value)
        best = min(best, value)
        if value > diverge_factor * best or not math.isfinite(value):
            diverged_at = step
            break
        optimizer.zero_grad()
        model.backward(criterion.backward())
        optimizer.step()
    model.load_state_dict(saved)
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
