"""Build-it steps and exercises with a checker, in the style of Kaggle Learn: check / hint / solution / use.

A chapter registers the reference of each step with :func:`exercise` in its
``dlcourse/course/chNN_topic/exercises.py`` (hidden cases, hints from gentle to specific, a typical wrong
answer that the tests prove fails). In the notebook, right after the derivation::

    def linear_backward(x, W, grad_out):
        grad_W = ...  # your code
        return grad_W

    check("ch2.linear_backward", linear_backward)        # ✓ or which case failed and how, never the answer
    hint("ch2.linear_backward")                          # one more hint per call
    linear_backward = use("ch2.linear_backward", linear_backward)   # yours if it passes, else the reference
    solution("ch2.linear_backward")                      # prints the reference's source; only when asked

All chapters' exercises are loaded automatically. ``check`` accepts NumPy arrays, Python numbers and torch
tensors (``requires_grad`` included) as return values.
"""

from __future__ import annotations

import ast
import copy
import importlib
import inspect
import pkgutil
import textwrap
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

REGISTRY: dict[str, "Exercise"] = {}


@dataclass
class Exercise:
    name: str
    reference: Callable
    cases: Callable[[], list]  # returns a list of argument tuples
    hints: list[str]
    wrong: Callable | None = None  # a typical wrong answer, which the tests prove fails
    rtol: float = 1e-6
    atol: float = 1e-9
    description: str = ""
    hints_shown: int = field(default=0, repr=False)

    @property
    def hint(self) -> str:  # the first hint (kept for old callers)
        return self.hints[0]


def exercise(name: str, cases, hint=None, wrong=None, rtol: float = 1e-6, atol: float = 1e-9, hints=None):
    """Decorator for a reference solution: registers it under ``name``.

    ``hints`` (or ``hint``): one string or a list of strings, from a gentle nudge to the last step before the
    answer; :func:`hint` reveals them one at a time.
    """
    given = hints if hints is not None else hint
    if given is None:
        raise ValueError(f"exercise {name!r}: expected at least one hint, got none")
    levels = [given] if isinstance(given, str) else list(given)

    def register(reference):
        REGISTRY[name] = Exercise(name, reference, cases, levels, wrong, rtol, atol,
                                  (reference.__doc__ or "").strip())
        return reference
    return register


def _get(name: str) -> Exercise:
    if name not in REGISTRY:
        raise ValueError(f"unknown exercise {name!r}; expected one of {sorted(REGISTRY)}")
    return REGISTRY[name]


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _to_plain(value):
    """torch tensors (even with requires_grad, even on a GPU) become NumPy arrays; lists/tuples recursively."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    return value


def _describe(value) -> str:
    arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    if arr is None or arr.dtype == object:
        return type(value).__name__
    return f"shape {arr.shape}, dtype {arr.dtype}" if arr.ndim else f"{type(value).__name__} {arr.item()!r}"


def _compare(expected, got, ex: Exercise) -> str | None:
    """None when they agree, else a message saying how they differ (never the expected values)."""
    if got is None:
        return "your function returned None: is a `return` missing?"
    if got is Ellipsis or (isinstance(got, tuple) and any(g is Ellipsis for g in got)):
        return "your function still returns `...`: replace each `...  # your code` with your code"
    exp_t = _as_tuple(expected)
    got_t = _as_tuple(got) if isinstance(got, tuple) or len(exp_t) > 1 else (got,)
    if len(exp_t) > 1 and not isinstance(got, tuple):
        return f"expected a tuple of {len(exp_t)} return values, got one {type(got).__name__}"
    if len(exp_t) != len(got_t):
        return f"expected {len(exp_t)} return value(s), got {len(got_t)}"
    for i, (e, g) in enumerate(zip(exp_t, got_t)):
        label = f"return value {i + 1} of {len(exp_t)}: " if len(exp_t) > 1 else ""
        if g is None:
            return f"{label}is None: is something not computed or not returned?"
        g = _to_plain(g)
        e_arr = np.asarray(_to_plain(e))
        numeric = np.issubdtype(e_arr.dtype, np.number) or e_arr.dtype == bool
        try:
            g_arr = np.asarray(g, dtype=np.float64 if numeric and e_arr.dtype != bool else None)
        except (TypeError, ValueError):
            return f"{label}expected a number or an array, got {type(g).__name__}"
        if np.iscomplexobj(g_arr):
            return f"{label}expected real numbers, got complex ones"
        if e_arr.shape != g_arr.shape:
            return f"{label}expected shape {e_arr.shape}, got shape {g_arr.shape}"
        if numeric and e_arr.dtype != bool:
            if not np.all(np.isfinite(g_arr)) and np.all(np.isfinite(e_arr)):
                return f"{label}contains NaN or inf (an overflow, a log of 0 or a division by 0?)"
            bad = ~np.isclose(g_arr, e_arr, rtol=ex.rtol, atol=ex.atol)
            if bad.any():
                idx = np.unravel_index(np.argmax(np.abs(g_arr - e_arr) * bad), e_arr.shape) if e_arr.ndim else ()
                where = f" (largest at index {tuple(int(i) for i in idx)})" if e_arr.ndim else ""
                n_bad = int(bad.sum())
                # How far off, relative to the reference's size: an absolute difference would print the answer
                # itself whenever the learner's value is 0.
                scale = float(np.max(np.abs(e_arr)))
                size = (f"by up to {float(np.max(np.abs(g_arr - e_arr))) / scale:.0%} of the reference's largest "
                        f"magnitude" if scale > 0 else "where the reference is all zeros")
                return f"{label}{n_bad} of {bad.size} value(s) differ from the reference {size}{where}"
        elif not np.array_equal(e_arr, g_arr):
            return f"{label}{int(np.sum(e_arr != g_arr))} of {e_arr.size} value(s) differ from the reference"
    return None


def _still_has_placeholder(fn: Callable) -> bool:
    """True when ``fn``'s source still has a bare ``...`` statement (a ``...  # your code`` line left in).

    Works for functions defined in a notebook cell too (IPython keeps cell sources for ``inspect``); False when the
    source cannot be read.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
               for node in ast.walk(tree))


PLACEHOLDER_NOTE = " (a `...  # your code` line is still in your function)"


def _copy_args(args):
    """A fresh deep copy of one case's arguments for each call (arrays, and also models, optimizers and random
    generators, copied together so that an optimizer still holds its own model's parameters)."""
    return copy.deepcopy(list(_as_tuple(args)))


def _run(name: str, fn: Callable) -> str | None:
    """None when ``fn`` passes every hidden case, else what went wrong (for the learner)."""
    ex = _get(name)
    if not callable(fn):
        raise TypeError(f"check: expected a function for {name!r}, got {type(fn).__name__}")
    cases = ex.cases()
    for k, args in enumerate(cases, 1):
        expected = ex.reference(*_copy_args(args))
        shapes = ", ".join(_describe(a) for a in _as_tuple(args) if isinstance(a, np.ndarray))
        label = args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else None
        details = ", ".join(([repr(label)] if label else []) + ([f"inputs: {shapes}"] if shapes else []))
        case = f"case {k} of {len(cases)}" + (f" ({details})" if details else "")
        try:
            got = fn(*_copy_args(args))
        except NotImplementedError:
            return "not implemented yet"
        except Exception as err:  # the learner's code raised: say which case and why
            unfinished = (PLACEHOLDER_NOTE if _still_has_placeholder(fn) else
                          " (is a `...` still in your code?)" if "ellipsis" in str(err) else "")
            return f"{case} raised {type(err).__name__}: {err}{unfinished}"
        problem = _compare(expected, got, ex)
        if problem:
            unfinished = PLACEHOLDER_NOTE if "`...`" not in problem and _still_has_placeholder(fn) else ""
            return f"{case}: {problem}{unfinished}"
    return None


def check(name: str, fn: Callable, verbose: bool = True) -> bool:
    """Run ``fn`` on the hidden cases of exercise ``name``; print the verdict and return True/False.

    On a failure it says which case and how (shape, type, None, how far off), never the expected answer.
    """
    ex = _get(name)
    problem = _run(name, fn)
    if verbose:
        if problem is None:
            print(f"✓ {name}: all {len(ex.cases())} hidden cases pass")
        else:
            print(f"✗ {name}: {problem}.  Stuck? hint({name!r}) gives a hint.")
    return problem is None


def hint(name: str) -> None:
    """Print the next hint of exercise ``name`` (one more level per call), then say when there are no more."""
    ex = _get(name)
    if ex.hints_shown < len(ex.hints):
        ex.hints_shown += 1
        print(f"Hint {ex.hints_shown} of {len(ex.hints)} for {name}: {ex.hints[ex.hints_shown - 1]}")
    else:
        for k, text in enumerate(ex.hints, 1):
            print(f"Hint {k} of {len(ex.hints)} for {name}: {text}")
        print(f"That was the last hint. solution({name!r}) shows the reference code.")


def solution(name: str) -> None:
    """Print the reference solution's source of exercise ``name`` (only when you ask for it)."""
    print(inspect.getsource(_get(name).reference))


def reference(name: str) -> Callable:
    """The reference function of exercise ``name`` (for the course's own code and tests)."""
    return _get(name).reference


def use(name: str, fn: Callable) -> Callable:
    """Your ``fn`` when it passes ``check(name, fn)``, else the reference, with a one-line notice either way.

    The cells after a build-it step call what ``use`` returns, so a notebook runs end to end with an
    untouched stub, and with your own code as soon as it is right.
    """
    problem = _run(name, fn)
    if problem is None:
        print(f"→ using your {name} from here on")
        return fn
    print(f"→ using the course's reference {name} from here on (yours: {problem})")
    return reference(name)


def list_exercises(prefix: str = "") -> list[str]:
    return sorted(k for k in REGISTRY if k.startswith(prefix))


def _load_chapters() -> None:
    """Import every chapter's ``exercises`` module (``dlcourse/course/chNN_topic/exercises.py``)."""
    import dlcourse.course as course

    for mod in pkgutil.iter_modules(course.__path__):
        if mod.ispkg and mod.name.startswith("ch"):
            importlib.import_module(f"dlcourse.course.{mod.name}.exercises")


_load_chapters()
