"""Exercises with a checker: ``check("ch2.sigmoid_grad", my_function)``.

Each exercise runs the learner's function on hidden cases and compares with the reference
solution. It prints ``✓`` and returns True, or says which case failed, what was expected,
what came, and a hint. Chapter modules (``ch1.py``, ``ch2.py``, ...) register their
exercises with :func:`exercise`; every module named ``ch*.py`` here is loaded automatically.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

import numpy as np

REGISTRY: dict[str, "Exercise"] = {}


@dataclass
class Exercise:
    name: str
    reference: Callable
    cases: Callable[[], list]  # returns a list of argument tuples
    hint: str
    wrong: Callable | None = None  # a typical wrong answer, which the tests prove fails
    rtol: float = 1e-6
    atol: float = 1e-9
    description: str = ""


def exercise(name: str, cases, hint: str, wrong=None, rtol: float = 1e-6, atol: float = 1e-9):
    """Decorator for a reference solution: registers it under ``name``."""
    def register(reference):
        REGISTRY[name] = Exercise(name, reference, cases, hint, wrong, rtol, atol, (reference.__doc__ or "").strip())
        return reference
    return register


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _short(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return f"{arr.item():.6g}" if np.issubdtype(arr.dtype, np.number) else repr(arr.item())
    with np.printoptions(precision=4, suppress=True, threshold=12, edgeitems=3):
        return f"{arr!r}".replace("\n", " ")


def _compare(expected, got, ex: Exercise) -> str | None:
    """None when they agree, else a message saying how they differ."""
    exp_t, got_t = _as_tuple(expected), _as_tuple(got)
    if len(exp_t) != len(got_t):
        return f"expected {len(exp_t)} return value(s), got {len(got_t)}"
    for i, (e, g) in enumerate(zip(exp_t, got_t)):
        label = f"return value {i}: " if len(exp_t) > 1 else ""
        e_arr = np.asarray(e)
        try:
            g_arr = np.asarray(g, dtype=np.float64 if np.issubdtype(e_arr.dtype, np.number) else None)
        except (TypeError, ValueError):
            return f"{label}expected a number or array, got {type(g).__name__}"
        if e_arr.shape != g_arr.shape:
            return f"{label}expected shape {e_arr.shape}, got {g_arr.shape}"
        if np.issubdtype(e_arr.dtype, np.number):
            if not np.allclose(g_arr, e_arr, rtol=ex.rtol, atol=ex.atol, equal_nan=False):
                return f"{label}expected {_short(e_arr)}, got {_short(g_arr)}"
        elif not np.array_equal(e_arr, g_arr):
            return f"{label}expected {_short(e_arr)}, got {_short(g_arr)}"
    return None


def check(name: str, fn: Callable, verbose: bool = True) -> bool:
    """Run ``fn`` on the hidden cases of exercise ``name``; print the verdict and return True/False."""
    if name not in REGISTRY:
        raise ValueError(f"check: unknown exercise {name!r}; expected one of {sorted(REGISTRY)}")
    ex = REGISTRY[name]
    cases = ex.cases()
    for k, args in enumerate(cases, 1):
        args = _as_tuple(args)
        expected = ex.reference(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
        try:
            got = fn(*[np.copy(a) if isinstance(a, np.ndarray) else a for a in args])
        except NotImplementedError:
            if verbose:
                print(f"✗ {name}: not implemented yet. Hint: {ex.hint}")
            return False
        except Exception as err:  # the learner's code raised: say which case and why
            if verbose:
                print(f"✗ {name}: case {k} of {len(cases)} raised {type(err).__name__}: {err}. Hint: {ex.hint}")
            return False
        problem = _compare(expected, got, ex)
        if problem:
            if verbose:
                print(f"✗ {name}: case {k} of {len(cases)}: {problem}. Hint: {ex.hint}")
            return False
    if verbose:
        print(f"✓ {name}: all {len(cases)} hidden cases pass")
    return True


def solution(name: str) -> Callable:
    """The reference solution of exercise ``name`` (read it after trying!)."""
    return REGISTRY[name].reference


def list_exercises(prefix: str = "") -> list[str]:
    return sorted(k for k in REGISTRY if k.startswith(prefix))


for _mod in pkgutil.iter_modules(__path__):
    if _mod.name.startswith("ch"):
        importlib.import_module(f"{__name__}.{_mod.name}")
