"""When has a training run diverged, and what then: the rule, the guard that applies it, the policy.

* :class:`Divergence`, the rule: a loss has diverged when it is NaN or infinite, or above
  ``max(limit, factor * first_loss)`` (``first_loss``: the run's first step's loss).
* :class:`DivergenceGuard`, the one place a training loop asks "has this run diverged?" (``fit``,
  ``fit_torch`` and chapter 6's ``train_gan`` all do):

  - :meth:`~DivergenceGuard.attempt` runs a step's forward pass and loss; when it fails *because* the
    run blew up (a :class:`NonFiniteLossError`, or a ``ValueError`` / ``FloatingPointError`` raised
    while some weight is NaN/inf: a layer refusing the NaN of blown-up weights) it returns None, and
    the step's loss counts as NaN. Any other error propagates: with finite weights it is a bug or bad data.
  - :meth:`~DivergenceGuard.check` (one step's loss, or several named losses, each against its own
    first value) and :meth:`~DivergenceGuard.check_many` (an epoch's losses at once) raise
    :class:`Diverged`, before the diverged step updates anything.
  - :meth:`~DivergenceGuard.stop_or_raise`, the policy ``on_divergence``: ``'raise'`` raises
    :class:`TrainingDivergedError` with the loop's message; ``'stop'`` returns and the loop ends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..nn.loss import NonFiniteLossError

ON_DIVERGENCE = ("raise", "stop")


class TrainingDivergedError(NonFiniteLossError):
    """The training loss diverged (NaN/inf or a blow-up, see :class:`Divergence`); ``step`` says where."""

    def __init__(self, message: str, step: int | None = None, loss: float = math.nan):
        super().__init__(message)
        self.step, self.loss = step, loss


@dataclass(frozen=True)
class Divergence:
    """The one divergence rule: a loss is NaN/inf, or above ``max(limit, factor * first_loss)``."""

    limit: float = 1e4
    factor: float = 100.0

    def __post_init__(self):
        if not (self.limit > 0 and self.factor > 0):
            raise ValueError(f"Divergence: expected limit > 0 and factor > 0, got limit={self.limit}, "
                             f"factor={self.factor}")

    def bound(self, first_loss: float) -> float:
        return max(self.limit, self.factor * first_loss) if math.isfinite(first_loss) else self.limit

    def __call__(self, loss: float, first_loss: float) -> bool:
        """Has ``loss`` diverged, given the first step's loss ``first_loss``?"""
        return not math.isfinite(loss) or loss > self.bound(first_loss)

    def first(self, losses, first_loss: float) -> int | None:
        """Index of the first diverged loss in ``losses`` (an array), or None."""
        losses = np.asarray(losses, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(losses) | (losses > self.bound(first_loss))
        return int(np.argmax(bad)) if bad.any() else None

    def describe(self, loss: float, first_loss: float) -> str:
        if not math.isfinite(loss):
            return f"the loss is {loss}"
        return (f"the loss {loss:.4g} is above max({self.limit:g}, {self.factor:g} x the first loss "
                f"{first_loss:.4g}) = {self.bound(first_loss):.4g}")


DIVERGENCE = Divergence()


class Diverged(Exception):
    """Raised inside a training loop by :class:`DivergenceGuard` when a step's loss diverged; the loop catches it
    and applies the policy (:meth:`DivergenceGuard.stop_or_raise`)."""

    def __init__(self, step: int, loss: float, reason: str):
        super().__init__(reason)
        self.step, self.loss, self.reason = step, loss, reason


def check_policy(where: str, on_divergence: str) -> None:
    if on_divergence not in ON_DIVERGENCE:
        raise ValueError(f"{where}: on_divergence must be one of {ON_DIVERGENCE}, got {on_divergence!r}")


class DivergenceGuard:
    """The divergence rule and the ``on_divergence`` policy of one run (see the module docstring)."""

    def __init__(self, where: str, on_divergence: str = "raise", rule: Divergence = DIVERGENCE):
        check_policy(where, on_divergence)
        self.rule, self.on_divergence = rule, on_divergence
        self.first: dict | None = None  # the first step's loss(es): the rule's reference

    def attempt(self, compute, *models):
        """``compute()``, or None when it failed because the run blew up (see the module docstring): a
        :class:`NonFiniteLossError`, or a ``ValueError`` / ``FloatingPointError`` while a weight of ``models``
        is NaN/inf. With finite weights such an error is re-raised."""
        try:
            return compute()
        except NonFiniteLossError:
            return None
        except (ValueError, FloatingPointError):
            if all(params_finite(model) for model in models):
                raise
            return None

    def check(self, step: int, loss) -> None:
        """Raise :class:`Diverged` if ``loss`` has diverged. ``loss``: a float, or a dict of named losses (each
        judged against its own first value; the reason names the ones that diverged)."""
        losses = loss if isinstance(loss, dict) else {None: loss}
        if self.first is None:
            self.first = dict(losses)
        bad = [(name, value) for name, value in losses.items() if self.rule(value, self.first[name])]
        if bad:
            reason = "; ".join(("" if name is None else f"{name} = ") + self.rule.describe(value, self.first[name])
                               for name, value in bad)
            raise Diverged(step, bad[0][1], reason)

    def check_many(self, first_step: int, losses) -> None:
        """:meth:`check` for the losses of steps ``first_step, first_step + 1, ...`` (an array), all at once."""
        if not len(losses):
            return
        if self.first is None:
            self.first = {None: float(losses[0])}
        i = self.rule.first(losses, self.first[None])
        if i is not None:
            self.check(first_step + i, float(losses[i]))

    def stop_or_raise(self, diverged: Diverged, message: str) -> None:
        """The policy, once a step has diverged: ``'raise'`` raises :class:`TrainingDivergedError` (``message``,
        with the step and the loss); ``'stop'`` returns, and the caller ends training."""
        if self.on_divergence == "raise":
            raise TrainingDivergedError(message, diverged.step, diverged.loss) from None


def params_finite(model) -> bool:
    return all(np.isfinite(p.data).all() for p in model.parameters())
