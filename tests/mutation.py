"""Mutation testing of the build-it checks: can a wrong function get a ✓?

For every registered exercise (``REGISTRY`` in :mod:`dlcourse.course.checker`) this makes *mutants* of the
reference, one small automatic edit of its source at a time (an operator swapped, a term dropped, a sign or a
comparison flipped, a constant changed, ``+=`` turned into ``=``, a keyword such as ``axis=``/``keepdims=`` dropped,
a statement removed, two arguments swapped, ``max`` for ``min``, ``sum`` for ``mean``, a ``.copy()`` or ``.T``
dropped, ...), runs the checker on each (``checker._run``, silent) and counts the mutants it rejects (*killed*).
A mutant that passes every hidden case is a *survivor*: a wrong answer that would get a ✓, unless it is
*equivalent* (it computes the same thing, e.g. ``x * 2`` vs ``x + x``); those are listed, one by one with the
reason, in ``tests/mutation_equivalents/chNN.txt`` and set aside.

What gets mutated: the reference function; the module-level functions and classes of the same module that it uses
(its helpers, not other exercises' references); for a probe (a closure that turns the learner's class or function
into a function of numbers, e.g. chapter 2's ``op_probe(Value)``), what it was built around, rebuilt around each
mutant by the same factory: a function, or a class (only the methods the exercise is about when ``CLASS_METHODS``
or the probe's ``__wrapped__`` method says so), with the classes and functions of its module that it uses.
A mutant that raises or runs past the time limit counts as killed (the checker says so to a learner too); a mutant
whose source does not compile, or that is the same source as another, is dropped.

Mutant ids do not depend on line numbers: ``exercise|function|kind|original -> replacement|k``, with ``k`` counting
the earlier sites of the same function with the same kind and the same text, so that an unrelated edit elsewhere
leaves the ids alone.

Usage (from the repository root)::

    .venv/bin/python tests/mutation.py            # every exercise
    .venv/bin/python tests/mutation.py ch2.       # a name prefix
    .venv/bin/python tests/mutation.py ch2.bce -v # also list the killed mutants with the checker's message

Prints each survivor (its id and the mutated line), then the score per exercise and overall.
``tests/course/test_check_mutants.py`` runs the same in the test suite.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import hashlib
import inspect
import io
import re
import sys
import textwrap
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class MutationScore(UserWarning):
    """Carries the mutation score to the end of the test run's output (tests/course/test_check_mutants.py)."""


ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dlcourse.course import checker  # noqa: E402

EQUIVALENTS_DIR = Path(__file__).resolve().parent / "mutation_equivalents"
MAX_MUTANTS = 200        # per exercise; beyond that a fixed, id-hashed subset (stable from run to run)
TIME_LIMIT_FACTOR = 20   # a mutant may take this many times the reference's time per case ...
TIME_LIMIT_MIN = 1.0     # ... but at least this many seconds

# For a probe that wraps a class: the methods each exercise is about (the rest are given to the learner).
CLASS_METHODS = {
    "ch2.value_ops": ("__init__", "__add__", "__mul__", "tanh", "relu", "exp", "log", "__neg__", "__sub__", "__radd__",
                      "__rmul__", "__rsub__", "__truediv__"),
}

# ---------------------------------------------------------------------------------------------------------------
# Mutation operators
# ---------------------------------------------------------------------------------------------------------------

_BINOP_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.Mult: [ast.Div, ast.Add], ast.Div: [ast.Mult],
                ast.FloorDiv: [ast.Div, ast.Mult], ast.Mod: [ast.FloorDiv], ast.Pow: [ast.Mult],
                ast.MatMult: [ast.Mult]}
_NONCOMMUTATIVE = (ast.Sub, ast.Div, ast.FloorDiv, ast.Pow, ast.MatMult, ast.Mod)
_CMP_SWAPS = {ast.Lt: [ast.LtE, ast.Gt], ast.LtE: [ast.Lt, ast.GtE], ast.Gt: [ast.GtE, ast.Lt],
              ast.GtE: [ast.Gt, ast.LtE], ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq], ast.Is: [ast.IsNot],
              ast.IsNot: [ast.Is], ast.In: [ast.NotIn], ast.NotIn: [ast.In]}
_AUG_SWAPS = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult}
# function or method names replaced by a plausible wrong one
_NAME_SWAPS = {"max": ["min"], "min": ["max"], "amax": ["amin"], "amin": ["amax"], "maximum": ["minimum"],
               "minimum": ["maximum"], "argmax": ["argmin"], "argmin": ["argmax"], "sum": ["mean"],
               "mean": ["sum"], "zeros": ["ones"], "ones": ["zeros"], "zeros_like": ["ones_like"],
               "ones_like": ["zeros_like"], "log": ["log1p"], "log1p": ["log"], "exp": ["expm1"],
               "var": ["std"], "std": ["var"], "tanh": ["sigmoid"], "sigmoid": ["tanh"],
               "cumsum": ["cumprod"], "tril": ["triu"], "triu": ["tril"], "floor": ["ceil"], "ceil": ["floor"]}
# calls dropped, keeping their (first) argument or the object they are called on
_DROPPABLE_CALLS = {"abs", "sqrt", "copy", "transpose", "squeeze", "ravel", "flatten", "reshape", "astype",
                    "clip", "exp", "log", "tanh", "float", "detach", "zero_grad", "deepcopy", "flip", "round",
                    "reversed"}


def _text(node, limit=60) -> str:
    """One-line source of ``node`` for ids and reports (whitespace around punctuation removed, truncated)."""
    try:
        s = ast.unparse(node)
    except Exception:  # noqa: BLE001  (a node unparse cannot print)
        s = type(node).__name__
    s = s.splitlines()[0] if s else s
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r"\s*([^\w\s'\"])\s*", r"\1", s)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def _num(value):
    return ast.Constant(value=value)


def _call_name(call: ast.Call) -> str | None:
    f = call.func
    return f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None


def _mutations(node, parent_field: str | None):
    """Every mutation of this one node: (kind, replacement node) pairs; the replacement ``None`` removes a
    statement (it becomes ``pass``)."""
    c = copy.deepcopy
    out = []
    if isinstance(node, ast.BinOp):
        for op in _BINOP_SWAPS.get(type(node.op), []):
            out.append(("op", ast.BinOp(c(node.left), op(), c(node.right))))
        out.append(("drop-right", c(node.left)))
        if isinstance(node.op, (ast.Add, ast.Mult)):
            out.append(("drop-left", c(node.right)))
        if isinstance(node.op, ast.Sub):
            out.append(("drop-left", ast.UnaryOp(ast.USub(), c(node.right))))
        if isinstance(node.op, _NONCOMMUTATIVE):
            out.append(("swap-operands", ast.BinOp(c(node.right), c(node.op), c(node.left))))
    elif isinstance(node, ast.UnaryOp):
        if isinstance(node.op, (ast.USub, ast.Not, ast.Invert)):
            out.append(("sign" if isinstance(node.op, ast.USub) else "not", c(node.operand)))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            for new in _CMP_SWAPS.get(type(op), []):
                m = c(node)
                m.ops[i] = new()
                out.append(("compare", m))
    elif isinstance(node, ast.BoolOp):
        out.append(("boolop", ast.BoolOp(ast.Or() if isinstance(node.op, ast.And) else ast.And(), c(node.values))))
        for i in range(len(node.values)):
            rest = [c(v) for j, v in enumerate(node.values) if j != i]
            out.append(("drop-operand", rest[0] if len(rest) == 1 else ast.BoolOp(c(node.op), rest)))
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        v = node.value
        for new in (0, 1, 2, v + 1, v - 1, -v, v * 2, v / 2 if isinstance(v, float) else None):
            if new is not None and new != v and type(new)(new) == new:
                out.append(("const", _num(type(v)(new) if isinstance(v, float) else new)))
    elif isinstance(node, ast.Constant) and isinstance(node.value, bool):
        out.append(("const", _num(not node.value)))
    elif isinstance(node, ast.AugAssign):
        out.append(("augassign", ast.Assign([c(node.target)], c(node.value), lineno=node.lineno)))
        if type(node.op) in _AUG_SWAPS:
            out.append(("augop", ast.AugAssign(c(node.target), _AUG_SWAPS[type(node.op)](), c(node.value))))
    elif isinstance(node, ast.Call):
        for i, kw in enumerate(node.keywords):
            if kw.arg is not None:
                m = c(node)
                del m.keywords[i]
                out.append(("drop-kw", m))
        pos = [a for a in node.args if not isinstance(a, ast.Starred)]
        if len(pos) == len(node.args):
            for i in range(len(node.args) - 1):
                m = c(node)
                m.args[i], m.args[i + 1] = m.args[i + 1], m.args[i]
                out.append(("swap-args", m))
        name = _call_name(node)
        for new in _NAME_SWAPS.get(name, []):
            m = c(node)
            if isinstance(m.func, ast.Name):
                m.func.id = new
            else:
                m.func.attr = new
            out.append(("name", m))
        if name in _DROPPABLE_CALLS:
            if isinstance(node.func, ast.Attribute) and not (isinstance(node.func.value, ast.Name)
                                                             and node.func.value.id in ("np", "math", "torch",
                                                                                        "copy", "F")):
                out.append(("drop-call", c(node.func.value)))   # x.copy() -> x
            elif node.args:
                out.append(("drop-call", c(node.args[0])))      # np.sqrt(x) -> x
    elif isinstance(node, ast.Attribute) and node.attr == "T" and isinstance(node.ctx, ast.Load):
        out.append(("drop-T", c(node.value)))
    elif isinstance(node, (ast.If, ast.While)) and not isinstance(node.test, ast.Compare):
        m = c(node)
        m.test = ast.UnaryOp(ast.Not(), m.test)
        out.append(("negate-test", m))
    elif isinstance(node, ast.IfExp) and not isinstance(node.test, ast.Compare):
        out.append(("negate-test", ast.IfExp(ast.UnaryOp(ast.Not(), c(node.test)), c(node.body), c(node.orelse))))
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
        for i in range(len(node.value.elts) - 1):
            m = c(node)
            m.value.elts[i], m.value.elts[i + 1] = m.value.elts[i + 1], m.value.elts[i]
            out.append(("swap-return", m))
    if (isinstance(node, ast.stmt) and parent_field in ("body", "orelse", "finalbody")
            and not isinstance(node, (ast.Return, ast.FunctionDef, ast.ClassDef, ast.Pass, ast.Global,
                                      ast.Nonlocal, ast.Import, ast.ImportFrom))
            and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))):
        out.append(("remove", None))
    return out


def _walk(node, path=()):
    """(path, node, parent field) for every node under ``node``, depth first, in source order."""
    yield path, node, (path[-1][0] if path else None)
    for name, value in ast.iter_fields(node):
        if name in ("decorator_list", "returns", "type_comment", "annotation"):
            continue
        if name == "args" and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue  # not the signature: default values that the cases override are not the learner's code
        if isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, ast.AST):
                    yield from _walk(item, path + ((name, i),))
        elif isinstance(value, ast.AST):
            yield from _walk(value, path + ((name, None),))


def _replace(root, path, new):
    node = root
    for name, index in path[:-1]:
        node = getattr(node, name) if index is None else getattr(node, name)[index]
    name, index = path[-1]
    if new is None:
        new = ast.Pass()
    if index is None:
        setattr(node, name, new)
    else:
        getattr(node, name)[index] = new


# ---------------------------------------------------------------------------------------------------------------
# What to mutate for one exercise
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Target:
    """One function or class whose source gets mutated, and where its mutants run."""
    label: str                    # function name (Class.method for a method) in mutant ids
    tree: ast.stmt                # the definition, decorators stripped
    scope: tuple = ()             # path of the sub-tree to mutate (() = all of it)


@dataclass
class Plan:
    name: str
    module: types.ModuleType
    defs: list                    # every definition to exec into the mutant's globals (ast nodes, unmutated)
    targets: list
    build: object                 # globals -> the function to check
    skipped: str = ""


@dataclass
class Mutant:
    id: str
    target: str
    kind: str
    line: str                     # the original line, for reports
    new: str                      # what the mutated node reads
    defs: list                    # definitions to exec, with the mutated one


def _definition(obj) -> ast.stmt | None:
    try:
        src = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(src).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return None
    if not isinstance(tree, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
        return None
    tree.decorator_list = []
    tree._lines = src.splitlines()  # for reports: the original line of a mutated node
    return tree


def _called_helpers(tree, module, exclude, classes=False) -> list:
    """Module-level functions (and, with ``classes``, classes) of ``module`` that ``tree`` uses by name (its
    helpers), recursively; not the references of other exercises (the learner's own earlier step plays that part,
    checked on its own). A function's classes (e.g. a NamedTuple it returns) are the chapter's, not the learner's."""
    references = {id(e.reference) for e in checker.REGISTRY.values()}
    found, todo = [], [tree]
    while todo:
        t = todo.pop()
        for node in ast.walk(t):
            if isinstance(node, ast.Name) and node.id not in exclude:
                obj = getattr(module, node.id, None)
                if isinstance(obj, types.FunctionType):
                    ok = obj.__code__.co_freevars == () and obj.__name__ == node.id
                elif isinstance(obj, type) and classes:
                    ok = obj.__name__ == node.id
                else:
                    ok = False
                if ok and obj.__module__ == module.__name__ and id(obj) not in references:
                    d = _definition(obj)
                    if d is not None:
                        exclude.add(node.id)
                        found.append(d)
                        todo.append(d)
    return found


def _targets(tree, methods=None) -> list:
    """What to mutate in one definition: a function whole; a class method by method (only ``methods`` if given)."""
    if isinstance(tree, ast.ClassDef):
        return [Target(f"{tree.name}.{item.name}", tree, (("body", i),)) for i, item in enumerate(tree.body)
                if isinstance(item, ast.FunctionDef) and (methods is None or item.name in methods)]
    return [Target(tree.name, tree)]


def _probe(ref):
    """For a probe (a closure that turns the learner's class or function into a function of numbers, e.g.
    ``engine.op_probe(Value)``): (the factory that built it, what it was built around); else None."""
    if not ref.__closure__:
        return None
    subjects = []
    for cell in ref.__closure__:
        try:
            content = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(content, type) or inspect.isfunction(content):
            subjects.append(content)
    factory = getattr(inspect.getmodule(ref), ref.__qualname__.split(".")[0], None)
    if factory is None or not callable(factory) or len(subjects) != 1:
        return None
    return factory, subjects[0]


def plan(name: str) -> Plan:
    ex = checker.REGISTRY[name]
    ref = ex.reference
    if not inspect.isfunction(ref):
        return Plan(name, None, [], [], None, skipped=f"reference is a {type(ref).__name__}")
    build_around = None
    if ref.__code__.co_freevars:
        probe = _probe(ref)
        if probe is None:
            return Plan(name, None, [], [], None, skipped="reference is a closure that is not a probe")
        build_around, subject = probe
    else:
        subject = ref
    module = inspect.getmodule(subject)
    tree = _definition(subject)
    if tree is None:
        return Plan(name, module, [], [], None, skipped="cannot read the reference's source")
    methods = None
    if isinstance(subject, type):
        # a probe around a class: the methods the exercise is about (ch2.value_backward: __wrapped__ is
        # Value.backward), else all of them and the classes and functions of the module they use
        wrapped = getattr(ref, "__wrapped__", subject)
        if name in CLASS_METHODS:
            methods = CLASS_METHODS[name]
        elif inspect.isfunction(wrapped) and wrapped.__qualname__.startswith(subject.__name__ + "."):
            methods = (wrapped.__name__,)
    helpers = ([] if methods is not None else
               _called_helpers(tree, module, {tree.name}, classes=isinstance(subject, type)))
    defs = helpers + [tree]
    targets = [t for d in helpers for t in _targets(d)] + _targets(tree, methods)
    if build_around is None:
        return Plan(name, module, defs, targets, lambda g: g[tree.name])
    return Plan(name, module, defs, targets, lambda g: build_around(g[tree.name]))


def mutants(p: Plan) -> list[Mutant]:
    """Every distinct, compilable mutant of the plan's targets (ids stable, see the module docstring)."""
    out, seen_src, counts = [], set(), {}
    originals = {id(d): ast.unparse(d) for d in p.defs}
    for t in p.targets:
        sub = t.tree
        for name, index in t.scope:
            sub = getattr(sub, name) if index is None else getattr(sub, name)[index]
        for path, node, parent_field in _walk(sub, t.scope):
            if path == t.scope and t.scope == ():
                continue  # not the whole definition
            for kind, new in _mutations(node, parent_field):
                old_text = _text(node)
                new_text = "pass" if new is None else _text(new)
                key = (t.label, kind, old_text, new_text)
                k = counts.get(key, 0)
                counts[key] = k + 1
                root = copy.deepcopy(t.tree)
                try:
                    _replace(root, path, copy.deepcopy(new) if new is not None else None)
                    ast.fix_missing_locations(root)
                    src = ast.unparse(root)
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # e.g. "'int' object is not subscriptable"
                        compile(src, "<mutant>", "exec")
                except Exception:  # noqa: BLE001  (a mutant that does not compile is dropped)
                    continue
                if src == originals[id(t.tree)] or (t.label, src) in seen_src:
                    continue
                seen_src.add((t.label, src))
                defs = [root if d is t.tree else d for d in p.defs]
                out.append(Mutant(f"{p.name}|{t.label}|{kind}|{old_text} -> {new_text}|{k}", t.label, kind,
                                  _line_of(t.tree, node), new_text, defs))
    if len(out) > MAX_MUTANTS:
        out = sorted(out, key=lambda m: hashlib.sha1(m.id.encode()).hexdigest())[:MAX_MUTANTS]
    return out


def _line_of(tree, node) -> str:
    """The original source line that holds ``node``."""
    lines, n = getattr(tree, "_lines", []), getattr(node, "lineno", None)
    return lines[n - 1].strip() if n and n <= len(lines) else _text(node, 100)


# ---------------------------------------------------------------------------------------------------------------
# Running the checker on mutants
# ---------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet():
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), \
            np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@dataclass
class Result:
    name: str
    total: int = 0
    killed: int = 0
    survivors: list = field(default_factory=list)        # Mutant
    equivalent: list = field(default_factory=list)       # (Mutant, reason)
    equivalent_killed: list = field(default_factory=list)  # (Mutant, checker message)
    stale: list = field(default_factory=list)            # equivalents entries that match no mutant
    skipped: str = ""
    seconds: float = 0.0
    messages: dict = field(default_factory=dict)          # id -> checker message (killed ones)

    @property
    def non_equivalent(self) -> int:
        return self.total - len(self.equivalent)

    @property
    def score(self) -> float:
        return 100.0 * self.killed / self.non_equivalent if self.non_equivalent else 100.0


def load_equivalents(directory: Path = EQUIVALENTS_DIR) -> dict[str, tuple[str, str, int]]:
    """``{mutant id: (reason, file, line number)}`` from ``directory/chNN.txt`` (``id  # reason`` lines)."""
    found = {}
    for path in sorted(directory.glob("ch*.txt")):
        for n, raw in enumerate(path.read_text().splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            mid, _, reason = line.partition("  #")
            found[mid.strip()] = (reason.strip(), path.name, n)
    return found


def chapter_of(name: str) -> str:
    return f"ch{int(name.split('.')[0][2:]):02d}"


def run_exercise(name: str, equivalents: dict | None = None) -> Result:
    """Mutate exercise ``name``'s reference, run its checker on every mutant, and sort them."""
    equivalents = load_equivalents() if equivalents is None else equivalents
    res = Result(name)
    t0 = time.perf_counter()
    p = plan(name)
    if p.skipped:
        res.skipped = p.skipped
        res.stale = [m for m in equivalents if m.startswith(name + "|")]
        return res
    with _quiet():
        t_ref = time.perf_counter()
        prepared = checker._prepare(name)
        t_ref = (time.perf_counter() - t_ref) / max(1, len(prepared))
    kwargs = {"prepared": prepared, "time_limit": max(TIME_LIMIT_MIN, TIME_LIMIT_FACTOR * t_ref)}
    ms = mutants(p)
    ids = {m.id for m in ms}
    res.stale = [m for m in equivalents if m.startswith(name + "|") and m not in ids]
    for m in ms:
        res.total += 1
        g = dict(p.module.__dict__)
        try:
            with _quiet():
                for d in m.defs:
                    exec(compile(ast.Module([d], []), f"<mutant of {m.target}>", "exec"), g)
                fn = p.build(g)
        except Exception as err:  # noqa: BLE001  (cannot even be defined: killed)
            res.killed += 1
            res.messages[m.id] = f"definition raised {type(err).__name__}: {err}"
            continue
        try:
            with _quiet():
                problem = checker._run(name, fn, **kwargs)
        except Exception as err:  # noqa: BLE001  (the checker itself crashed: killed, but say so)
            problem = f"the checker crashed: {type(err).__name__}: {err}"
        if m.id in equivalents:
            res.equivalent.append((m, equivalents[m.id][0]))
            if problem is not None and "time limit" not in problem:
                res.equivalent_killed.append((m, problem))
            continue
        if problem is None:
            res.survivors.append(m)
        else:
            res.killed += 1
            res.messages[m.id] = problem
    res.seconds = time.perf_counter() - t0
    return res


def format_survivor(m: Mutant) -> str:
    return f"  {m.id}\n      in {m.target}: {m.line}   =>   {m.new}"


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    prefixes = [a for a in argv if not a.startswith("-")] or [""]
    names = [n for n in sorted(checker.REGISTRY) if any(n.startswith(p) for p in prefixes)]
    if not names:
        print(f"no exercise starts with {prefixes}")
        return 2
    equivalents = load_equivalents()
    total = killed = eq = 0
    by_chapter: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    failed = False
    for name in names:
        r = run_exercise(name, equivalents)
        total += r.non_equivalent
        killed += r.killed
        eq += len(r.equivalent)
        ch = by_chapter.setdefault(name.split(".")[0], [0, 0])
        ch[0] += r.killed
        ch[1] += r.non_equivalent
        for m in r.survivors:
            print(format_survivor(m))
        for mid in r.stale:
            print(f"  STALE equivalents entry (matches no mutant): {mid}")
        for m, problem in r.equivalent_killed:
            print(f"  listed as equivalent but killed: {m.id}\n      ({problem})")
        if verbose:
            for mid, msg in r.messages.items():
                print(f"    killed {mid}: {msg[:160]}")
        note = f" (skipped: {r.skipped})" if r.skipped else ""
        print(f"{name}: {r.killed}/{r.non_equivalent} killed ({r.score:.1f}%), {len(r.equivalent)} equivalent, "
              f"{len(r.survivors)} survivor(s), {r.seconds:.1f} s{note}", flush=True)
        failed |= bool(r.survivors or r.stale or r.equivalent_killed)
    for ch, (k, n) in by_chapter.items():
        print(f"{ch}: {k}/{n} killed ({100 * k / n if n else 100:.1f}%)")
    print(f"mutation score: {killed}/{total} non-equivalent mutants killed "
          f"({100 * killed / total if total else 100:.1f}%), {eq} equivalent set aside, "
          f"{len(names)} exercises, {time.perf_counter() - t0:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
