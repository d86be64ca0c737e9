"""Mutation test of every build-it check: no wrong variant of a reference may get a ✓.

For each registered exercise, ``tests/mutation.py`` makes the mutants of its reference (one automatic edit at a
time) and runs the checker on each. The test of an exercise fails when

- a mutant passes the check and is not listed as equivalent in ``tests/mutation_equivalents/chNN.txt``
  (the failure lists each survivor with its id and the line it changed), or
- an entry of those files no longer matches any mutant, or its mutant is now rejected (a stale entry).

The last test prints the overall mutation score (a ``MutationScore`` warning, so that it shows in the warnings
summary of every run, CI included). ``.venv/bin/python tests/mutation.py ch2.`` shows the same, for one chapter.
"""

import importlib.util
import sys
import warnings
from pathlib import Path

import pytest

from dlcourse.course.exercises import REGISTRY

_spec = importlib.util.spec_from_file_location("mutation", Path(__file__).with_name("mutation.py"))
mutation = sys.modules.setdefault("mutation", importlib.util.module_from_spec(_spec))
if not hasattr(mutation, "run_exercise"):
    _spec.loader.exec_module(mutation)

NAMES = sorted(REGISTRY)
EQUIVALENTS = mutation.load_equivalents()
RESULTS: dict = {}


class MutationScore(UserWarning):
    """Carries the mutation score to the end of the test run's output."""


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
