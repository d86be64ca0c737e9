"""The checker of the build-it steps and exercises, in the style of Kaggle Learn: check / hint / solution / use.

This module is the framework; each chapter's content lives in its own ``dlcourse/course/chNN_topic/exercises.py``,
which registers the reference of each step with :func:`exercise` when it is imported (hidden cases, hints from
gentle to specific, a typical wrong answer that the tests prove fails). In the notebook, right after the
derivation::

    def linear_backward(x, W, grad_out):
        grad_W = ...  # your code
        return grad_W

    check("ch2.linear_backward", linear_backward)        # ✓ or which case failed and how, never the answer
    hint("ch2.linear_backward")                          # one more hint per call
    linear_backward = use("ch2.linear_backward", linear_backward)   # yours if it passes, else the reference
    solution("ch2.linear_backward")                      # prints the reference's source; only when asked

The checker imports no chapter. A step's name says its chapter (``"ch2.linear_backward"``: chapter 2), and the
first lookup of a name loads that chapter's ``exercises`` module only (:data:`REGISTRY` does it), found by its
folder's number (``ch02_*``) without importing the others: ``check`` in chapter 1 never loads the GAN code. What
lists every step (iterating over :data:`REGISTRY`, :func:`progress`, the error for an unknown name) loads every
chapter.

What ``check`` accepts and how it compares (each case gets fresh copies of its arguments):

- NumPy arrays, Python numbers and torch tensors (``requires_grad`` or not, any device); a list wherever a tuple
  of several return values is expected;
- numbers are compared element by element with ``|yours - reference| <= atol + rtol * |reference|``: by default
  ``rtol = 1e-6``, ``atol = 1e-9`` (:data:`RTOL`, :data:`ATOL`) for float64 answers, and for float32 answers
  ``rtol = 1e-4`` plus ``atol = 1e-5`` times the reference's largest magnitude (:data:`RTOL32`, :data:`ATOL32`);
  a chapter may set its own per exercise; every failure message states the tolerance it used;
- float16 / bfloat16, complex numbers, strings (``"0.69"``), objects, dicts, generators and ragged lists are
  refused with a message that says so (``check`` itself never crashes on what a function returns);
- a function that changes one of its array arguments in place fails ("your function changed its input `x` in
  place"), unless the reference does the same;
- each case has a time limit (at least :data:`TIME_LIMIT` seconds, or :data:`TIME_LIMIT_FACTOR` times the
  reference's own time on it): a function that does not return in time fails with the case and the limit named.
  ``exit()``/``sys.exit()`` (``SystemExit``) and other escapes from the function are reported as a failure of the
  case; ``KeyboardInterrupt`` (the notebook's stop button) still stops the check.

A failure names the case, the output (``dW``: from ``exercise(..., outputs=("dx", "dW", "db"))``, else from the
names in the reference's ``return dx, dW, db``) and how far off it is relative to the reference's largest
magnitude (two significant digits), never the expected values.

A passing ``check`` (and ``use`` when it takes the learner's function) records the step in the learner's progress
(:mod:`dlcourse.course.progress`). Under nbgrader (``NBGRADER_EXECUTION`` is ``autograde`` or ``validate``) a
failing ``check`` raises ``AssertionError`` after printing its verdict, so that each check cell is an autograder test.
"""

from __future__ import annotations

import ast
import copy
import ctypes
import importlib
import inspect
import pkgutil
import re
import signal
import textwrap
import threading
import time
import types
import warnings
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .. import config
from ..i18n import N_, _
from . import progress as _progress
from .progress import clear_progress  # noqa: F401 (for learners: beside progress())

RTOL, ATOL = 1e-6, 1e-9          # float64 answers (and Python numbers)
RTOL32, ATOL32 = 1e-4, 1e-5      # float32 answers; ATOL32 is relative to the reference's largest magnitude
TIME_LIMIT = 10.0                # seconds per case, at least ...
TIME_LIMIT_FACTOR = 50.0         # ... or this many times the reference's own time on the case


@dataclass
class Exercise:
    name: str
    reference: Callable
    cases: Callable[[], list]  # returns a list of argument tuples
    hints: list[str]
    wrong: Callable | None = None  # a typical wrong answer, which the tests prove fails
    rtol: float = RTOL
    atol: float = ATOL
    description: str = ""
    outputs: tuple | None = None   # names of the return values, for messages ("dW")
    rtol32: float = RTOL32         # tolerances for float32 answers (atol32 relative to the largest magnitude)
    atol32: float = ATOL32
    time_limit: float | None = None  # seconds per case; None: TIME_LIMIT or TIME_LIMIT_FACTOR x the reference's
    hints_shown: int = field(default=0, repr=False)


@cache
def chapter_modules() -> dict[int, str]:
    """Chapter number -> the module of its exercises (``dlcourse.course.chNN_topic.exercises``), from the folder
    names next to this file; nothing is imported."""
    found = {}
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        match = re.fullmatch(r"ch(\d+)_\w+", mod.name)
        if mod.ispkg and match:
            found[int(match.group(1))] = f"{__package__}.{mod.name}.exercises"
    return found


def _chapter_number(name: str) -> int | None:
    match = re.match(r"ch(\d+)\.", name)
    return int(match.group(1)) if match else None


class Registry(MutableMapping):
    """Step name -> :class:`Exercise`, filled by the chapters' :func:`exercise` decorators as they are imported.

    Looking up ``"chN.xxx"`` imports chapter N's ``exercises`` module first (once); iterating or counting imports
    every chapter's. Any other name (a test's ``"test.toy"``) is only what was registered under it.
    """

    def __init__(self):
        self._steps: dict[str, Exercise] = {}

    def load_chapter(self, number: int) -> None:
        module = chapter_modules().get(number)
        if module is not None:
            importlib.import_module(module)  # a no-op after the first time; registers the chapter's steps

    def load_all(self) -> None:
        for number in sorted(chapter_modules()):
            self.load_chapter(number)

    def __getitem__(self, name: str) -> Exercise:
        if name not in self._steps and isinstance(name, str) and _chapter_number(name) is not None:
            self.load_chapter(_chapter_number(name))
        return self._steps[name]

    def __setitem__(self, name: str, ex: Exercise) -> None:
        self._steps[name] = ex

    def __delitem__(self, name: str) -> None:
        del self._steps[name]

    def __iter__(self) -> Iterator[str]:
        self.load_all()
        return iter(list(self._steps))

    def __len__(self) -> int:
        self.load_all()
        return len(self._steps)

    def __repr__(self) -> str:
        return f"Registry({sorted(self._steps)} loaded)"


REGISTRY = Registry()


def exercise(name: str, cases, *, hints, wrong=None, rtol: float = RTOL, atol: float = ATOL, outputs=None,
             rtol32: float = RTOL32, atol32: float = ATOL32, time_limit: float | None = None):
    """Decorator for a reference solution: registers it under ``name``.

    ``hints``: one string or a list of strings, from a gentle nudge to the last step before the
    answer; :func:`hint` reveals them one at a time. ``rtol``/``atol``: the tolerance for float64 answers;
    ``rtol32``/``atol32``: for float32 answers (``atol32`` times the reference's largest magnitude).
    ``outputs``: the names of the return values for the messages, e.g. ``("dx", "dW", "db")`` (default: the
    names in the reference's ``return`` statement, when it returns plain names). ``time_limit``: seconds per case
    (default: :data:`TIME_LIMIT`, or :data:`TIME_LIMIT_FACTOR` times the reference's time when that is longer).
    """
    levels = [hints] if isinstance(hints, str) else list(hints or [])
    if not levels:
        raise ValueError(f"exercise {name!r}: expected at least one hint, got none")
    if outputs is not None:
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)

    def register(reference):
        REGISTRY[name] = Exercise(name, reference, cases, levels, wrong, rtol, atol,
                                  (reference.__doc__ or "").strip(), outputs, rtol32, atol32, time_limit)
        return reference
    return register


def _get(name: str) -> Exercise:
    if name not in REGISTRY:  # loads the name's chapter
        raise ValueError(_("unknown exercise {name!r}; expected one of {names}").format(
            name=name, names=sorted(REGISTRY)))  # loads them all
    return REGISTRY[name]


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


_LOW_PRECISION = ("bfloat16", "float16")


def _to_plain(value):
    """torch tensors (even with requires_grad, even on a GPU, any dtype) become NumPy arrays (bfloat16 and float16
    ones a :class:`_LowPrecision`, which the comparison refuses with a message); lists/tuples recursively."""
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        t = value.detach().cpu()
        if str(t.dtype).split(".")[-1] in _LOW_PRECISION:
            return _LowPrecision(t.float().numpy(), str(t.dtype).split(".")[-1])
        return t.resolve_conj().numpy() if t.is_complex() else t.numpy()
    if isinstance(value, list):
        return [_to_plain(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_to_plain(v) for v in value)
    return value


class _LowPrecision:
    """A bfloat16/float16 torch result, converted to float32 only so that it can be described."""

    def __init__(self, array, dtype):
        self.array, self.dtype_name = array, dtype


def _describe(value) -> str:
    try:
        arr = np.asarray(value) if not isinstance(value, (str, bytes)) else None
    except Exception:  # noqa: BLE001  (a ragged list or an object NumPy refuses)
        return type(value).__name__
    if arr is None or arr.dtype == object:
        return type(value).__name__
    return f"shape {arr.shape}, dtype {arr.dtype}" if arr.ndim else f"{type(value).__name__} {arr.item()!r}"


def _output_names(ex: Exercise, count: int) -> tuple | None:
    """The names of the ``count`` return values: ``outputs=`` if given, else the plain names of the reference's
    last ``return a, b, c``; None when neither gives ``count`` names."""
    if ex.outputs is not None:
        return ex.outputs if len(ex.outputs) == count else None
    if count < 2:
        return None
    key = (ex.name, id(ex.reference), count)
    if key not in _NAMES_CACHE:
        _NAMES_CACHE[key] = _names_from_return(ex.reference, count)
    return _NAMES_CACHE[key]


_NAMES_CACHE: dict = {}


def _names_from_return(reference: Callable, count: int) -> tuple | None:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(reference)))
    except (OSError, TypeError, SyntaxError):
        return None
    returns = [n for n in ast.walk(tree.body[0]) if isinstance(n, ast.Return) and isinstance(n.value, ast.Tuple)]
    for ret in reversed(returns):
        if len(ret.value.elts) == count and all(isinstance(e, (ast.Name, ast.Attribute)) for e in ret.value.elts):
            return tuple(ast.unparse(e) for e in ret.value.elts)
    return None


def _numbers(g, label: str):
    """(NumPy array of real numbers or booleans, None) for a numeric answer ``g``, else (None, why it is not one)."""
    kind = type(g).__name__
    if isinstance(g, (str, bytes)):
        return None, _("{label}expected a number or an array of numbers, got a string ({kind}): return the "
                       "number").format(label=label, kind=kind)
    if isinstance(g, (types.GeneratorType, map, filter, zip, dict, set, frozenset)) or (
            hasattr(g, "__next__") and not isinstance(g, np.ndarray)):
        return None, _("{label}expected a number or an array of numbers, got a {kind}").format(label=label, kind=kind)
    if isinstance(g, _LowPrecision):
        return None, _("{label}is {dtype}, which keeps only about 3 significant digits: compute in float32 "
                       "or float64 (e.g. .float() or .double())").format(label=label, dtype=g.dtype_name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning if hasattr(np, "exceptions")
                                  else np.ComplexWarning)
            raw = np.asarray(g)
            if raw.dtype.kind == "O":  # a list of objects: numbers of mixed types, or something else
                if any(isinstance(x, complex) for x in raw.ravel()):
                    raw = raw.astype(complex)
                else:
                    raw = raw.astype(np.float64)
    except Exception:  # noqa: BLE001  (ragged lists, lists of objects, anything NumPy refuses)
        return None, _("{label}expected a number or an array of numbers, got a {kind} that NumPy cannot turn into "
                       "one (a ragged list, or objects that are not numbers?)").format(label=label, kind=kind)
    if raw.dtype.kind == "c":
        return None, _("{label}expected real numbers, got complex ones ({dtype})").format(label=label,
                                                                                          dtype=raw.dtype)
    if raw.dtype.kind in "USa":
        return None, _("{label}expected a number or an array of numbers, got strings ({kind} of {dtype})").format(
            label=label, kind=kind, dtype=raw.dtype)
    if raw.dtype.kind == "f" and raw.dtype.itemsize < 4:
        return None, _("{label}is {dtype}, which keeps only about 3 significant digits: compute in float32 or "
                       "float64").format(label=label, dtype=raw.dtype)
    if raw.dtype.kind not in "fiub":
        return None, _("{label}expected a number or an array of numbers, got {kind} of {dtype}").format(
            label=label, kind=kind, dtype=raw.dtype)
    return raw, None


def _fmt(x: float) -> str:
    """A relative difference or tolerance with two significant digits (never "0%")."""
    return f"{x:.2g}"


def _compare(expected, got, ex: Exercise) -> str | None:
    """None when they agree, else a message saying how they differ (never the expected values)."""
    if got is None:
        return _("your function returned None: is a `return` missing?")
    if got is Ellipsis or (isinstance(got, (tuple, list)) and any(g is Ellipsis for g in got)):
        return _("your function still returns `...`: replace each `...  # your code` with your code")
    exp_t = _as_tuple(expected)
    if len(exp_t) > 1 and isinstance(got, list) and not isinstance(expected, list):
        got = tuple(got)  # a list where a tuple of return values is expected: fine
    got_t = _as_tuple(got) if isinstance(got, tuple) or len(exp_t) > 1 else (got,)
    if len(exp_t) > 1 and not isinstance(got, tuple):
        return _("expected a tuple of {count} return values, got one {kind}").format(count=len(exp_t),
                                                                                     kind=type(got).__name__)
    if len(exp_t) != len(got_t):
        return _("expected {count} return value(s), got {got}").format(count=len(exp_t), got=len(got_t))
    for i, (e, g) in enumerate(zip(exp_t, got_t)):
        problem = _compare_one(e, g, ex, "")
        if problem:  # name the output only now: reading the reference's source takes time
            names = _output_names(ex, len(exp_t))
            if len(exp_t) > 1:
                label = (_("`{name}` (return value {number} of {count}): ") if names else
                         _("return value {number} of {count}: ")).format(name=names[i] if names else "",
                                                                         number=i + 1, count=len(exp_t))
            else:
                label = f"`{names[0]}`: " if names else ""
            return label + problem
    return None


def _compare_one(e, g, ex: Exercise, label: str) -> str | None:
    if g is None:
        return _("{label}is None: is something not computed or not returned?").format(label=label)
    if isinstance(e, str):
        return None if g == e else _("{label}expected a string, got {kind}").format(
            label=label, kind=type(g).__name__) if not isinstance(
            g, str) else _("{label}differs from the reference").format(label=label)
    g = _to_plain(g)
    e_arr = np.asarray(_to_plain(e))
    if e_arr.dtype == bool:
        g_arr, problem = _numbers(g, label)
        if problem:
            return problem
        if g_arr.dtype != bool:
            return _("{label}expected booleans (True/False, dtype bool), got dtype {dtype}").format(
                label=label, dtype=g_arr.dtype)
        if e_arr.shape != g_arr.shape:
            return _("{label}expected shape {want}, got shape {got}").format(label=label, want=e_arr.shape,
                                                                             got=g_arr.shape)
        if not np.array_equal(e_arr, g_arr):
            return _("{label}{bad} of {size} value(s) differ from the reference").format(
                label=label, bad=int(np.sum(e_arr != g_arr)), size=e_arr.size)
        return None
    if not (np.issubdtype(e_arr.dtype, np.number)):  # the reference returns something else: compare as objects
        try:
            same = bool(np.all(e_arr == np.asarray(g, dtype=e_arr.dtype)))
        except Exception:  # noqa: BLE001
            same = False
        return None if same else _("{label}differs from the reference").format(label=label)
    g_arr, problem = _numbers(g, label)
    if problem:
        return problem
    single = g_arr.dtype == np.float32
    g_arr = g_arr.astype(np.float64)
    e_arr = e_arr.astype(np.float64)
    if e_arr.shape != g_arr.shape:
        return _("{label}expected shape {want}, got shape {got}").format(label=label, want=e_arr.shape,
                                                                         got=g_arr.shape)
    if not np.all(np.isfinite(g_arr) | ~np.isfinite(e_arr)):
        return _("{label}contains NaN or inf (an overflow, a log of 0 or a division by 0?)").format(label=label)
    finite = np.isfinite(e_arr)
    scale = float(np.max(np.abs(e_arr[finite]))) if finite.any() else 0.0
    if single:
        rtol, atol = max(ex.rtol, ex.rtol32), max(ex.atol, ex.atol32 * scale)
        allowed = _("float32 answers may differ by {rtol} x |reference| + {atol} (float64 keeps "
                    "every digit)").format(rtol=_fmt(rtol), atol=_fmt(atol))
    else:
        rtol, atol = ex.rtol, ex.atol
        allowed = _("allowed: {rtol} x |reference| + {atol}").format(rtol=_fmt(rtol), atol=_fmt(atol))
    with np.errstate(invalid="ignore"):
        bad = ~np.isclose(g_arr, e_arr, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return None
    with np.errstate(invalid="ignore"):
        diff = np.where(bad, np.abs(g_arr - e_arr), 0.0)
    diff = np.where(np.isnan(diff), np.inf, diff)
    idx = np.unravel_index(np.argmax(diff), e_arr.shape) if e_arr.ndim else ()
    where = _(" (largest at index {index})").format(index=tuple(int(i) for i in idx)) if e_arr.ndim else ""
    n_bad = int(bad.sum())
    # How far off, relative to the reference's size: an absolute difference would print the answer itself
    # whenever the learner's value is 0.
    size = (_("by up to {ratio} of the reference's largest magnitude").format(ratio=_fmt(float(np.max(diff)) / scale))
            if scale > 0 else _("where the reference is all zeros"))
    return _("{label}{bad} of {size} value(s) differ from the reference {how}{where}; {allowed}").format(
        label=label, bad=n_bad, size=bad.size, how=size, where=where, allowed=allowed)



def _still_has_placeholder(fn: Callable) -> bool:
    """True when ``fn``'s source still has a bare ``...`` statement or a ``name = ...`` (a ``...  # your code`` line
    left in).

    Works for functions defined in a notebook cell too (IPython keeps cell sources for ``inspect``); False when the
    source cannot be read.
    """
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign, ast.AugAssign))
               and isinstance(node.value, ast.Constant) and node.value.value is Ellipsis
               for node in ast.walk(tree))


PLACEHOLDER_NOTE = N_(" (a `...  # your code` line is still in your function)")  # shown as _(PLACEHOLDER_NOTE)


def _copy_args(args):
    """A fresh deep copy of one case's arguments for each call (arrays, and also models, optimizers and random
    generators, copied together so that an optimizer still holds its own model's parameters)."""
    return copy.deepcopy(list(_as_tuple(args)))


def _same(before, after) -> bool:
    """True when ``after`` still holds what ``before`` holds: arrays and tensors (also inside lists, tuples and
    dicts) compared exactly; other objects (models, optimizers, generators) are not inspected."""
    try:
        if isinstance(before, np.ndarray):
            return (isinstance(after, np.ndarray) and before.shape == after.shape
                    and np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"))
        if type(before).__module__.startswith("torch") and hasattr(before, "detach"):
            import torch
            return bool(torch.equal(before.detach().cpu(), after.detach().cpu()))
        if isinstance(before, (list, tuple)):
            return len(before) == len(after) and all(_same(b, a) for b, a in zip(before, after))
        if isinstance(before, dict):
            return before.keys() == after.keys() and all(_same(before[k], after[k]) for k in before)
    except Exception:  # noqa: BLE001  (something replaced by an incomparable object: changed)
        return False
    return True


@dataclass
class _Case:
    args: tuple             # pristine arguments (each call gets a deep copy)
    expected: object        # the reference's result
    seconds: float          # the reference's time on it
    writes: tuple           # indices of the arguments the reference itself changes in place (allowed)


def _prepare(name: str) -> list[_Case]:
    """Run the reference on every case of ``name`` (its results, times, and which arguments it changes)."""
    ex = _get(name)
    prepared = []
    for args in ex.cases():
        call = _copy_args(args)
        start = time.perf_counter()
        expected = ex.reference(*call)
        seconds = time.perf_counter() - start
        writes = tuple(i for i, (b, a) in enumerate(zip(_as_tuple(args), call)) if not _same(b, a))
        prepared.append(_Case(args, expected, seconds, writes))
    return prepared


class _CaseTimeout(BaseException):
    """Raised inside the learner's function when its case runs past the time limit (a BaseException, so that an
    ``except Exception`` in the learner's code does not swallow it)."""


def _call_with_time_limit(fn: Callable, args: list, seconds: float | None):
    """``fn(*args)``, stopped with :class:`_CaseTimeout` after ``seconds``.

    In the main thread (a notebook, pytest) a SIGALRM timer interrupts it; elsewhere (or without SIGALRM) it runs
    in a helper thread that gets the exception injected when time is up (pure-Python loops stop at once, a long
    NumPy call when it returns).
    """
    if not seconds or seconds <= 0:
        return fn(*args)
    if hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread():
        outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL)
        if outer_delay and outer_delay <= seconds:  # someone else's timer fires first: leave it alone
            return fn(*args)

        def on_alarm(signum, frame):
            raise _CaseTimeout

        try:
            previous = signal.signal(signal.SIGALRM, on_alarm)
        except ValueError:  # not allowed here after all: use the thread
            pass
        else:
            start = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                return fn(*args)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)
                if outer_delay:  # give the outer timer what is left of its time
                    left = max(outer_delay - (time.monotonic() - start), 1e-3)
                    signal.setitimer(signal.ITIMER_REAL, left, outer_interval)
    result = {}

    def target():
        try:
            result["value"] = fn(*args)
        except BaseException as err:  # noqa: BLE001  (handed to the caller below)
            result["error"] = err

    worker = threading.Thread(target=target, daemon=True, name="check-case")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident), ctypes.py_object(_CaseTimeout))
        worker.join(1.0)
        raise _CaseTimeout
    if "error" in result:
        raise result["error"]
    return result["value"]


def _safe_str(err: BaseException) -> str:
    """``str(err)``, even for an exception whose ``__str__`` itself fails."""
    try:
        return str(err)
    except Exception:  # noqa: BLE001
        return f"<{type(err).__name__} that cannot be printed>"


def _argument_name(fn: Callable, index: int, count: int) -> str:
    """The name of ``fn``'s positional parameter ``index`` (of ``count`` passed), or "argument k"."""
    try:
        bound = inspect.signature(fn).bind(*range(count))
        for pname, value in bound.arguments.items():
            if value == index:
                return f"`{pname}`"
    except (TypeError, ValueError):
        pass
    return _("argument {number}").format(number=index + 1)


def _run(name: str, fn: Callable, *, prepared: list | None = None, time_limit: float | None = None) -> str | None:
    """None when ``fn`` passes every hidden case, else what went wrong (for the learner).

    ``prepared``: the reference's results from :func:`_prepare` (the mutation test computes them once);
    ``time_limit``: seconds per case instead of the exercise's own.
    """
    ex = _get(name)
    if not callable(fn):
        raise TypeError(_("check: expected a function for {name!r}, got {kind}").format(name=name,
                                                                                       kind=type(fn).__name__))

    cases = _prepare(name) if prepared is None else prepared
    for k, c in enumerate(cases, 1):
        args = c.args
        shapes = ", ".join(_describe(a) for a in _as_tuple(args) if isinstance(a, np.ndarray))
        label = args[0] if isinstance(args, tuple) and args and isinstance(args[0], str) else None
        details = ", ".join(([repr(label)] if label else [])
                            + ([_("inputs: {shapes}").format(shapes=shapes)] if shapes else []))
        case = _("case {number} of {count}").format(number=k, count=len(cases)) + (
            _(" ({details})").format(details=details) if details else "")
        limit = (time_limit if time_limit is not None else ex.time_limit if ex.time_limit is not None
                 else max(TIME_LIMIT, TIME_LIMIT_FACTOR * c.seconds))
        call = _copy_args(args)
        try:
            got = _call_with_time_limit(fn, call, limit)
        except NotImplementedError:
            return _("not implemented yet")
        except _CaseTimeout:
            return _("{case} did not finish within the time limit of {limit} s per case (an endless loop, or "
                     "a loop that never reaches its end?)").format(case=case, limit=_fmt(limit))
        except KeyboardInterrupt:  # the notebook's stop button: stop the check too
            raise
        except SystemExit as err:
            return _("{case} called exit() or sys.exit() (SystemExit: {code!r}): return the result instead of "
                     "exiting").format(case=case, code=err.code)
        except Exception as err:  # the learner's code raised: say which case and why
            unfinished = (_(PLACEHOLDER_NOTE) if _still_has_placeholder(fn) else
                          _(" (is a `...` still in your code?)") if "ellipsis" in _safe_str(err) else "")
            return _("{case} raised {error}: {message}{unfinished}").format(
                case=case, error=type(err).__name__, message=_safe_str(err), unfinished=unfinished)
        except BaseException as err:  # noqa: BLE001  (GeneratorExit and other escapes: a failure, not a crash)
            return _("{case} raised {error}: {message}{unfinished}").format(
                case=case, error=type(err).__name__, message=_safe_str(err), unfinished="")
        try:
            problem = _compare(c.expected, got, ex)
        except Exception as err:  # noqa: BLE001  (check never crashes on what a function returns)
            problem = _("check could not compare what your function returned ({kind}: "
                        "{error}); return numbers or arrays").format(kind=type(got).__name__,
                                                                     error=type(err).__name__)
        if problem is None:
            changed = [i for i, (b, a) in enumerate(zip(_as_tuple(args), call))
                       if i not in c.writes and not _same(b, a)]
            if changed:
                which = ", ".join(_argument_name(fn, i, len(call)) for i in changed)
                problem = (_("your function changed its input {which} in place; the results are right, but the "
                             "caller's arrays must stay as they were: work on a copy "
                             "(x = x.copy()) or build new arrays (x = x - m instead of x -= m)") if len(changed) > 1
                           else _("your function changed its input {which} in place; the results are right, but the "
                                  "caller's array must stay as they were: work on a copy "
                                  "(x = x.copy()) or build new arrays (x = x - m instead of x -= m)")).format(
                    which=which)
        if problem:
            unfinished = _(PLACEHOLDER_NOTE) if "`...`" not in problem and _still_has_placeholder(fn) else ""
            return _("{case}: {problem}{unfinished}").format(case=case, problem=problem, unfinished=unfinished)
    return None


def check(name: str, fn: Callable, verbose: bool = True) -> bool:
    """Run ``fn`` on the hidden cases of exercise ``name``; print the verdict and return True/False.

    On a failure it says which case and how (shape, type, None, how far off), never the expected answer.
    """
    ex = _get(name)
    problem = _run(name, fn)
    if verbose:
        if problem is None:
            print(_("✓ {name}: all {count} hidden cases pass").format(name=name, count=len(ex.cases())))
        else:
            print(_("✗ {name}: {problem}.  Stuck? hint({name!r}) gives a hint.").format(name=name, problem=problem))
    if problem is None:
        _progress.record(name)
    elif config.nbgrader_grading():
        # under nbgrader a check cell is an autograder test: it scores only when the cell raises on a failure
        raise AssertionError(f"{name}: {problem}")
    return problem is None


def hint(name: str) -> None:
    """Print the next hint of exercise ``name`` (one more level per call), then say when there are no more."""
    ex = _get(name)
    if ex.hints_shown < len(ex.hints):
        ex.hints_shown += 1
        print(_("Hint {number} of {count} for {name}: {text}").format(
            number=ex.hints_shown, count=len(ex.hints), name=name, text=_(ex.hints[ex.hints_shown - 1])))
    else:
        for k, text in enumerate(ex.hints, 1):
            print(_("Hint {number} of {count} for {name}: {text}").format(number=k, count=len(ex.hints), name=name,
                                                                          text=_(text)))
        print(_("That was the last hint. solution({name!r}) shows the reference code.").format(name=name))


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
        _progress.record(name)
        print(_("→ using your {name} from here on").format(name=name))
        return fn
    print(_("→ using the course's reference {name} from here on (yours: {problem})").format(name=name,
                                                                                          problem=problem))

    return reference(name)


def progress() -> "_progress.Progress":
    """The learner's progress over every chapter's build-it steps (display it, or print it)."""
    steps: dict[int, list[str]] = {}
    for name in list_exercises():
        steps.setdefault(_progress.chapter_of(name), []).append(name)
    return _progress.Progress(steps, _progress.passed_steps())


def list_exercises(prefix: str = "") -> list[str]:
    """Every step whose name starts with ``prefix``, sorted (every chapter is loaded)."""
    return sorted(k for k in REGISTRY if k.startswith(prefix))
