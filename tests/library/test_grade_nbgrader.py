"""nbgrader, for real, on chapter 1: the course folder from ``--nbgrader-setup``, ``nbgrader generate_assignment``
(the student version keeps the course's stubs) and ``nbgrader autograde`` give the same verdict per step as
``python -m dlcourse.grade`` on the same submissions. nbgrader is a teacher's extra (requirements-teacher.txt);
without it this test skips.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from test_grade import ALL_RIGHT, CHAPTER, EVEN_WRONG, STEPS, _submission

from dlcourse import grade as G

pytest.importorskip("nbgrader")

BIN = Path(sys.executable).parent
ASSIGNMENT = CHAPTER.stem


def _run(args, cwd):
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # nbgrader calls alembic
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("nbgrader-course")
    _run([sys.executable, "-m", "dlcourse.grade", "--nbgrader-setup", str(root), "--chapter", ASSIGNMENT], root)
    _run([str(BIN / "nbgrader"), "generate_assignment", ASSIGNMENT, "--force"], root)
    learners = {"all_right": ALL_RIGHT, "even_wrong": EVEN_WRONG, "untouched": {}}
    for learner, answers in learners.items():
        folder = root / "submitted" / learner / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(_submission(answers), str(folder / f"{ASSIGNMENT}.ipynb"))
    _run([str(BIN / "nbgrader"), "autograde", ASSIGNMENT, "--create"], root)
    return root, learners


def test_the_student_version_keeps_the_course_stubs(course):
    root, _ = course
    released = nbformat.read(str(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"), as_version=4)
    ours = nbformat.read(str(CHAPTER), as_version=4)
    assert [c.source for c in released.cells] == [c.source for c in ours.cells]


def test_autograde_scores_each_step_as_dlcourse_grade_does(course):
    from nbgrader.api import Gradebook

    root, learners = course
    # dlcourse.grade's verdicts on these same submissions (sample_submission is deterministic) are pinned by
    # test_grade.py: every step passed (ALL_RIGHT), each wrong answer failed its own step only (EVEN_WRONG), every step
    # not attempted (untouched). Grading them again here only repeated three kernel runs (~20 s of CPU).
    ours_passed = {learner: {step: answers.get(step) == "reference" for step in STEPS}
                   for learner, answers in learners.items()}
    source = nbformat.read(str(CHAPTER), as_version=4)
    grade_id = {name: c.metadata["nbgrader"]["grade_id"] for c in source.cells if c.cell_type == "code"
                and c.metadata.get("nbgrader", {}).get("grade") for name, _ in G._check_calls(c.source)}
    assert set(grade_id) == set(STEPS), "every step has an nbgrader test cell"
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for learner in learners:
            graded = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, learner)
            scores = {g.name: (g.score, g.max_score) for g in graded.grades}
            for step in STEPS:
                score, full = scores[grade_id[step]]
                nbgrader_passed = score == full
                assert nbgrader_passed == ours_passed[learner][step], (learner, step, score)
