"""``python -m dlcourse.grade``: a class of chapter-1 submissions, good, wrong, untouched and bad, graded once.

Each behaviour the teacher relies on is one test over that one run (a kernel per submission is the slow part):
every stub filled in passes every step; each registered typical wrong answer fails its own step only; untouched
stubs are "not attempted"; a file that is no notebook, a notebook of another chapter, a hang, a crashed kernel, a
memory hog, a write outside the folder, an edited check cell and a tampered checker each become what they are,
and the batch goes on; grading the same submission twice gives the same verdicts.
"""

from __future__ import annotations

import csv
import subprocess
import sys

import nbformat
import pytest
import repo_paths

from dlcourse import grade as G
from dlcourse.course.checker import REGISTRY

ROOT = repo_paths.ROOT
CHAPTER = ROOT / "notebooks" / "01_neurons.ipynb"


def _course():
    return G.load_chapter(CHAPTER), nbformat.read(str(CHAPTER), as_version=4)


def _submission(answers: dict[str, str], extra: dict[str, str] | None = None):
    return G.sample_submission(CHAPTER, answers, extra)


STEPS = [s.name for s in G.load_chapter(CHAPTER).steps]
ALL_RIGHT = {s: "reference" for s in STEPS}
ODD_WRONG = {s: ("wrong" if k % 2 == 0 else "reference") for k, s in enumerate(STEPS)}
EVEN_WRONG = {s: ("reference" if k % 2 == 0 else "wrong") for k, s in enumerate(STEPS)}
FIRST, SECOND, LAST = STEPS[0], STEPS[1], STEPS[-1]
TARGET = {s.name: s.target for s in G.load_chapter(CHAPTER).steps}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("class")
    outside = tmp_path_factory.mktemp("elsewhere") / "written-by-a-submission.txt"
    subs = {
        "good": _submission(ALL_RIGHT),
        "good_again": _submission(ALL_RIGHT),
        "odd_wrong": _submission(ODD_WRONG),
        "even_wrong": _submission(EVEN_WRONG),
        "untouched": _submission({}),
        "hangs": _submission(ALL_RIGHT, {TARGET[SECOND]: "while True:\n    pass"}),
        "crashes": _submission(ALL_RIGHT, {TARGET[SECOND]: "import os\nos._exit(3)"}),
        "hog": _submission(ALL_RIGHT, {TARGET[SECOND]: "import numpy as _np\n_big = _np.ones(int(4e8))"}),
        "writes_outside": _submission(ALL_RIGHT, {TARGET[FIRST]: f"open({str(outside)!r}, 'w').write('x')",
                                                  TARGET[SECOND]: "import socket\n"
                                                                  "socket.create_connection(('192.0.2.1', 80), 1)"}),
        "tampers": _submission({**ALL_RIGHT, LAST: "wrong"}, {TARGET[LAST]: (
            "from dlcourse.course import checker as _E\n"
            f"_E.REGISTRY[{LAST!r}].reference = {TARGET[LAST]}")}),
    }
    edited = _submission({**ALL_RIGHT, FIRST: "wrong"})
    chapter, _ = _course()
    check_cell = next(s.cell for s in chapter.steps if s.name == FIRST)
    edited.cells[check_cell].source = 'print("✓ all hidden cases pass")'
    subs["edits_checks"] = edited
    for learner, nb in subs.items():
        (base / learner).mkdir()
        nbformat.write(nb, str(base / learner / "01_neurons.ipynb"))
    (base / "not_json").mkdir()
    (base / "not_json" / "01_neurons.ipynb").write_text("this is not a notebook {", encoding="utf-8")
    results = G.grade([str(base)], jobs=2, timeout=240, cell_timeout=30, memory_gib=1.5)
    return {r.learner: r for r in results}, outside, base


def _statuses(result):
    return {name: status for name, (status, _) in result.steps.items()}


def test_every_stub_filled_in_passes_every_step(graded):
    r = graded[0]["good"]
    assert _statuses(r) == {s: G.PASSED for s in STEPS}, r.steps
    assert r.ran_to_end and not r.problem, (r.problem, r.notes)


@pytest.mark.parametrize("learner, answers", [("odd_wrong", ODD_WRONG), ("even_wrong", EVEN_WRONG)])
def test_each_typical_wrong_answer_fails_its_own_step_only(graded, learner, answers):
    r = graded[0][learner]
    expected = {s: (G.FAILED if how == "wrong" else G.PASSED) for s, how in answers.items()}
    assert _statuses(r) == expected, r.steps
    for name, (status, message) in r.steps.items():
        if status == G.FAILED:
            assert "case" in message, message  # check's own message: which case, how far off


def test_untouched_stubs_are_not_attempted(graded):
    r = graded[0]["untouched"]
    assert set(_statuses(r).values()) == {G.NOT_ATTEMPTED}, r.steps
    assert r.ran_to_end, r.notes  # the reference takes over: the chapter still runs to the end


def test_the_same_submission_graded_twice_gets_the_same_verdicts(graded):
    assert graded[0]["good"].steps == graded[0]["good_again"].steps


def test_a_file_that_is_not_a_notebook_is_one_row_saying_so(graded):
    r = graded[0]["not_json"]
    assert not r.steps and "not a readable notebook" in r.problem


def test_a_hanging_cell_is_stopped_and_the_steps_before_it_count(graded):
    r = graded[0]["hangs"]
    assert "time limit" in r.problem
    assert r.steps[FIRST][0] == G.PASSED and r.steps[LAST][0] == G.NOT_REACHED
    assert not r.ran_to_end


def test_a_crashed_kernel_is_one_problem_not_a_stopped_batch(graded):
    r = graded[0]["crashes"]
    assert "kernel died" in r.problem, r.problem
    assert r.steps[FIRST][0] == G.PASSED and r.steps[LAST][0] == G.NOT_REACHED


def test_a_memory_hog_is_killed(graded):
    r = graded[0]["hog"]
    assert "memory limit" in r.problem, r.problem


def test_a_write_outside_the_folder_and_the_network_are_refused_and_named(graded):
    r, outside = graded[0]["writes_outside"], graded[1]
    assert not outside.exists()
    assert any("refused" in n and str(outside) in n and "network connection to 192.0.2.1" in n for n in r.notes), \
        r.notes
    assert r.steps[FIRST][0] == G.PASSED  # the refusal is the learner cell's error; the step is still graded


def test_an_edited_check_cell_changes_nothing(graded):
    r = graded[0]["edits_checks"]
    assert r.steps[FIRST][0] == G.FAILED  # graded with the course's check, not the learner's print
    assert any("edited" in n and FIRST in n for n in r.notes), r.notes


def test_a_tampered_checker_is_caught(graded):
    r = graded[0]["tampers"]
    assert r.steps[LAST][0] == G.ERROR and "checking code was changed" in r.steps[LAST][1], r.steps[LAST]


def test_a_notebook_of_another_chapter_is_refused_by_name(tmp_path):
    path = tmp_path / "bob" / "02_backprop.ipynb"
    path.parent.mkdir()
    path.write_bytes((ROOT / "notebooks" / "02_backprop.ipynb").read_bytes())
    (r,) = G.grade([str(tmp_path)], chapter="01_neurons", jobs=1)
    assert r.learner == "bob" and not r.steps and "wrong chapter: expected 01_neurons, got 02_backprop" in r.problem


def test_csv_and_summary(graded, tmp_path):
    results = list(graded[0].values())
    out = tmp_path / "grades.csv"
    G.write_csv(results, out)
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {r["learner"] for r in rows} == set(graded[0])
    good = [r for r in rows if r["learner"] == "good"]
    assert [r["step"] for r in good] == STEPS and {r["status"] for r in good} == {G.PASSED}
    md = G.summary_markdown(results)
    assert "## 01_neurons" in md and f"| {FIRST} |" in md and "not a readable notebook" in md


def test_command_line_refuses_a_missing_folder(tmp_path):
    run = subprocess.run([sys.executable, "-m", "dlcourse.grade", str(tmp_path / "nowhere"), "--out",
                          str(tmp_path / "g.csv")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "does not exist" in run.stderr


def test_steps_match_the_registry():
    for chapter in G.load_course(ROOT / "notebooks").values():
        for step in chapter.steps:
            assert step.name in REGISTRY, f"{chapter.stem} checks {step.name}, which no chapter registers"


@pytest.mark.parametrize("path", sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_ready_for_teachers(path):
    """nbgrader metadata on every build-it and check cell, checks in cells of their own, progress() at the end:
    exactly what tools/teacher_cells.py writes (run it after changing a notebook)."""
    sys.path.insert(0, str(ROOT / "tools"))
    from teacher_cells import prepare

    nb = nbformat.read(str(path), as_version=4)
    assert prepare(nb) == nb, f"{path.name}: run python tools/teacher_cells.py"
    steps = {s.name for s in G.load_chapter(path).steps}
    graded = {name for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")
              for name, _ in G._check_calls(c.source)}
    assert graded == steps
