"""Every run-time setting of the package, read in this one place.

Each setting is an environment variable, read when asked for (not at import), so that a notebook's first cell, a
test or a kernel's environment can set it:

======================  ==========================================================================================
``DLCOURSE_QUICK``      ``1``: quick mode — smaller data sets and fewer epochs, so every notebook executes in CI
                        within its budget (the test run and the quick book set it). Unset: the full setting, which
                        reproduces the headline numbers.
``DLCOURSE_DATA``       the course's data folder; MNIST is looked for in ``$DLCOURSE_DATA/mnist``.
``DLCOURSE_LANG``       ``zh``: the package's messages (checks, hints, widgets, figures) in Simplified Chinese; the
                        Chinese notebooks set it in their first cell. Unset: English.
``DLCOURSE_BOOK``       ``1`` while the book is built: widgets also render a static figure (no kernel behind the page).
``DLCOURSE_PROGRESS``   where ``check`` records a learner's passed steps: a file path, or ``off`` (the test run).
                        Unset: the user's data folder.
``DLCOURSE_MALLOC``     ``default``: leave glibc's malloc as it is. Unset: ``dlcourse`` lets malloc keep freed blocks
                        of up to 32 MB for reuse, which saves a page fault per 4 KB of every large temporary
                        (``runtime.keep_freed_memory``).
``DLCOURSE_BLAS_SPIN``  ``default``: leave OpenBLAS's idle worker threads as they are. Unset: they sleep at once
                        before ``dlcourse`` splits work over Python threads, and spin again before the LSTM's time
                        loop (``nn._batch_threads.blas_workers_spin``).
``NBGRADER_EXECUTION``  set by nbgrader, not by us: ``autograde`` or ``validate`` while it grades a notebook, when a
                        failing ``check`` raises (so the grader sees it) instead of printing.
======================  ==========================================================================================
"""

from __future__ import annotations

import os
from pathlib import Path

QUICK_ENV = "DLCOURSE_QUICK"
DATA_ENV = "DLCOURSE_DATA"
LANG_ENV = "DLCOURSE_LANG"
BOOK_ENV = "DLCOURSE_BOOK"
PROGRESS_ENV = "DLCOURSE_PROGRESS"
MALLOC_ENV = "DLCOURSE_MALLOC"
BLAS_SPIN_ENV = "DLCOURSE_BLAS_SPIN"
NBGRADER_ENV = "NBGRADER_EXECUTION"

LANGUAGES = ("en", "zh")
_TRUE = {"1", "true", "yes", "on"}


def _setting(name: str) -> str:
    return os.environ.get(name, "").strip()


def quick_mode() -> bool:
    """True when ``$DLCOURSE_QUICK`` is ``1``/``true``/``yes``/``on`` (set by the test run)."""
    return _setting(QUICK_ENV).lower() in _TRUE


def pick(full, quick):
    """Return ``quick`` in quick mode and ``full`` otherwise: ``num_epochs = pick(20, 2)``."""
    return quick if quick_mode() else full


def keep_freed_memory_enabled() -> bool:
    """False when ``$DLCOURSE_MALLOC`` is ``default`` (leave glibc's malloc alone); True otherwise."""
    return _setting(MALLOC_ENV).lower() != "default"


def blas_spin_enabled() -> bool:
    """False when ``$DLCOURSE_BLAS_SPIN`` is ``default`` (leave OpenBLAS's idle workers as they are); True otherwise."""
    return _setting(BLAS_SPIN_ENV).lower() != "default"


def data_dir() -> Path | None:
    """``$DLCOURSE_DATA`` as a path, or None when it is not set."""
    value = _setting(DATA_ENV)
    return Path(value).expanduser() if value else None


def language() -> str:
    """``"zh"`` when ``$DLCOURSE_LANG`` asks for Chinese (``zh``, ``zh_CN``, ``zh-CN``), else ``"en"``."""
    value = _setting(LANG_ENV).lower().replace("-", "_")
    return "zh" if value.split("_")[0] == "zh" else "en"


def book_build() -> bool:
    """True while book/build.py executes the notebooks (``$DLCOURSE_BOOK``)."""
    return _setting(BOOK_ENV).lower() in _TRUE


def progress_setting() -> str:
    """``$DLCOURSE_PROGRESS`` as given: a path, ``off``, or empty (the user's data folder)."""
    return _setting(PROGRESS_ENV)


def nbgrader_grading() -> bool:
    """True while nbgrader executes a notebook to grade or validate it (``$NBGRADER_EXECUTION`` is ``autograde`` or
    ``validate``)."""
    return _setting(NBGRADER_ENV) in ("autograde", "validate")


def development_data_dir(repo_root: Path) -> Path | None:
    """A development checkout's data: ``shared/data`` beside the repository (how CI lays it out), if it exists."""
    candidate = Path(repo_root).resolve().parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
