"""The divergence rule and the error a diverged run raises."""

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


class _Diverged(Exception):
    def __init__(self, step: int, loss: float, reason: str):
        super().__init__(reason)
        self.step, self.loss, self.reason = step, loss, reason


class _Monitor:
    """Applies the divergence rule to each step's loss (or to an epoch's losses at once)."""

    def __init__(self, rule: Divergence):
        self.rule, self.first = rule, None

    def check(self, step: int, loss: float) -> None:
        if self.first is None:
            self.first = loss
        if self.rule(loss, self.first):
            raise _Diverged(step, loss, self.rule.describe(loss, self.first))

    def check_many(self, first_step: int, losses) -> None:
        if len(losses) and self.first is None:
            self.first = float(losses[0])
        i = self.rule.first(losses, self.first) if len(losses) else None
        if i is not None:
            loss = float(losses[i])
            raise _Diverged(first_step + i, loss, self.rule.describe(loss, self.first))


def _params_finite(model) -> bool:
    return all(np.isfinite(p.data).all() for p in model.parameters())
