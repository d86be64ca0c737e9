"""Run-time settings shared by the notebooks: quick mode and the random seed.

Quick mode shrinks data sets and epochs so that every notebook executes in CI within its
budget. It is on when the environment variable ``DLCOURSE_QUICK`` is set to ``1`` (the test
run sets it); the default is the full setting, which reproduces the headline numbers.
"""

from __future__ import annotations

import os

QUICK_ENV = "DLCOURSE_QUICK"


def quick_mode() -> bool:
    """True when ``$DLCOURSE_QUICK`` is ``1``/``true``/``yes`` (set by the test run)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def pick(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise: ``num_epochs = pick(20, 2)``."""
    return quick if quick_mode() else full
