"""Mutation test of every build-it check: no wrong variant of a reference may get a ✓.

For each registered exercise, ``tests/mutation.py`` makes the mutants of its reference (one automatic edit at a
time) and runs the checker on each. The test of an exercise fails when

- a mutant passes the check and is not listed as equivalent in ``tests/mutation_equivalents/chNN.txt``
  (the failure lists each survivor with its id and the line it changed), or
- an entry of those files no longer matches any mutant, or its mutant is now rejected (a stale entry).

The last test prints the overall mutation score (a ``MutationScore`` warning, so that it shows in the warnings
summary of every run, CI included). ``.venv/bin/python tests/mutation.py ch2.`` shows the same, for one chapter.
"""

import ast
import importlib.util
import sys
import textwrap
import warnings

import numpy as np
import pytest
import repo_paths

from dlcourse.course.checker import REGISTRY, exercise

_spec = importlib.util.spec_from_file_location("mutation", repo_paths.ROOT / "tests" / "mutation.py")
mutation = sys.modules.setdefault("mutation", importlib.util.module_from_spec(_spec))
if not hasattr(mutation, "run_exercise"):
    _spec.loader.exec_module(mutation)

NAMES = sorted(REGISTRY)
EQUIVALENTS = mutation.load_equivalents()
RESULTS: dict = {}


# defined in tests/mutation.py (on sys.path in every process): under xdist the controller imports the warning's
# module by name to show it, and this file's folder is not on its path
MutationScore = mutation.MutationScore


def _result(name):
    if name not in RESULTS:
        RESULTS[name] = mutation.run_exercise(name, EQUIVALENTS)
    return RESULTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_mutant_of_the_reference_fails_the_check(name, record_property):
    r = _result(name)
    record_property("mutation_score", (r.killed, r.non_equivalent, len(r.equivalent)))
    problems = [f"survivor (a wrong function that gets a ✓):\n{mutation.format_survivor(m)}" for m in r.survivors]
    problems += [f"stale equivalents entry, matches no mutant of {name}: {mid}" for mid in r.stale]
    problems += [f"listed as equivalent, but the check rejects it ({msg[:120]}): {m.id}"
                 for m, msg in r.equivalent_killed]
    assert not problems, (f"{name}: {r.killed}/{r.non_equivalent} mutants killed; "
                          f"{len(problems)} problem(s):\n" + "\n".join(problems))


def test_equivalents_files_are_well_formed():
    """Every entry names a registered exercise of its own chapter's file, once, with a reason."""
    seen, problems = set(), []
    for mid, (reason, filename, line) in EQUIVALENTS.items():
        name = mid.split("|")[0]
        where = f"{filename}:{line}"
        if name not in REGISTRY:
            problems.append(f"{where}: no exercise {name!r}")
        elif mutation.chapter_of(name) + ".txt" != filename:
            problems.append(f"{where}: {name} belongs in {mutation.chapter_of(name)}.txt")
        if not reason:
            problems.append(f"{where}: no reason given (write `id  # why it is equivalent`)")
        if mid.count("|") != 4:
            problems.append(f"{where}: not a mutant id (exercise|function|kind|old -> new|k): {mid}")
        seen.add(mid)
    for path in sorted(mutation.EQUIVALENTS_DIR.glob("ch*.txt")):  # duplicates, which the dict above merges
        ids = [ln.strip().partition("  #")[0].strip() for ln in path.read_text().splitlines()
               if ln.strip() and not ln.strip().startswith("#")]
        problems += [f"{path.name}: listed twice: {i}" for i in sorted({i for i in ids if ids.count(i) > 1})]
    assert not problems, "\n".join(problems)


# ---- the tool itself ----

_EVERY_KIND = '''
def every_kind(x, W, n):
    """One of each construct the tool mutates."""
    y = x.copy()
    y += -x * 2 + W.T.sum(axis=0, keepdims=True) / n ** 2
    if n > 1 and np.max(y) >= 0:
        y = np.maximum(y, 0.0)
    while not n:
        n -= 1
    return y, np.dot(x, W)
'''


def _mutants_of(source, name="tool.test"):
    source = textwrap.dedent(source)
    tree = ast.parse(source).body[-1]
    tree._lines = source.splitlines()
    p = mutation.Plan(name, None, [tree], [mutation.Target(tree.name, tree)], None)
    return mutation.mutants(p)


def test_every_mutation_kind_is_made():
    kinds = {m.kind for m in _mutants_of(_EVERY_KIND)}
    assert kinds >= {"op", "drop-right", "drop-left", "swap-operands", "sign", "compare", "boolop", "drop-operand",
                     "const", "augassign", "augop", "drop-kw", "swap-args", "name", "drop-call", "drop-T",
                     "negate-test", "swap-return", "remove"}, kinds


def test_mutant_ids_do_not_depend_on_line_numbers():
    """An unrelated edit above the function (lines added, another function) leaves every id as it was."""
    ids = [m.id for m in _mutants_of(_EVERY_KIND)]
    moved = "import math\n\n\ndef unrelated(a):\n    return a + 1\n\n" + _EVERY_KIND
    assert [m.id for m in _mutants_of(moved)] == ids
    assert len(set(ids)) == len(ids), "ids must be unique"
    assert all("  " not in i and i.count("|") == 4 for i in ids)


def _weak_double(x):
    return x * 2


@pytest.fixture
def weak_exercise():
    """A check too weak to tell x * 2 from x + 2 (its only case is x = 2)."""
    exercise("tool.weak", lambda: [(np.array([2.0]),)], hints=["one", "two"])(_weak_double)
    yield "tool.weak"
    REGISTRY.pop("tool.weak", None)


def test_a_survivor_is_reported_and_an_equivalents_entry_sets_it_aside(weak_exercise):
    survivor, stale, killed = ("tool.weak|_weak_double|op|x*2 -> x+2|0", "tool.weak|_weak_double|op|x*2 -> x-2|0",
                               "tool.weak|_weak_double|const|2 -> 3|0")
    r = mutation.run_exercise(weak_exercise, {})
    assert [m.id for m in r.survivors] == [survivor] and r.killed == r.total - 1 > 3, (r.survivors, r.total)
    r = mutation.run_exercise(weak_exercise, {survivor: ("2 x = x + 2 at x = 2 only", "x", 1),
                                              stale: ("no such mutant", "x", 2), killed: ("not equivalent", "x", 3)})
    assert not r.survivors and sorted(m.id for m, _ in r.equivalent) == sorted([survivor, killed])
    assert r.stale == [stale]
    assert [m.id for m, _ in r.equivalent_killed] == [killed]
    assert r.score == 100.0


def test_a_mutant_that_never_returns_counts_as_killed(weak_exercise):
    source = "def looping(x):\n    n = 1\n    while n > 0:\n        n += 1\n        break\n    return x * 2\n"
    ms = [m for m in _mutants_of(source, weak_exercise) if m.kind == "remove" and "break" in m.id]
    assert ms, [m.id for m in _mutants_of(source, weak_exercise)]
    g = {"np": np}
    exec(compile(ast.Module([ms[0].defs[0]], []), "<mutant>", "exec"), g)
    problem = mutation.checker._run(weak_exercise, g["looping"], time_limit=0.2)
    assert problem and "time limit of 0.2 s" in problem


def test_mutation_score():
    """Runs last in this file: reports the score over all exercises (computing any not run above)."""
    results = [_result(name) for name in NAMES]
    killed = sum(r.killed for r in results)
    total = sum(r.non_equivalent for r in results)
    equivalent = sum(len(r.equivalent) for r in results)
    by_chapter = {}
    for r in results:
        k, n = by_chapter.get(r.name.split(".")[0], (0, 0))
        by_chapter[r.name.split(".")[0]] = (k + r.killed, n + r.non_equivalent)
    chapters = ", ".join(f"{ch} {k}/{n}" for ch, (k, n) in by_chapter.items())
    warnings.warn(MutationScore(
        f"mutation score of the build-it checks: {killed}/{total} non-equivalent mutants killed "
        f"({100 * killed / max(total, 1):.1f}%), {equivalent} equivalent set aside, {len(results)} exercises "
        f"({chapters})"))
    assert total > 0
