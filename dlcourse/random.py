"""One random generator for the whole package, seeded like ``torch.manual_seed``.

Layers draw their initial weights and dropout masks from it, so a notebook that calls
``dlcourse.manual_seed(0)`` once gives the same numbers on every run.
"""

from __future__ import annotations

import numpy as np

_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the package's generator (and return it)."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def get_rng() -> np.random.Generator:
    """The package's generator (layers call this at construction and in training)."""
    return _rng
