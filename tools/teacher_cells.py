"""Make every chapter notebook ready for teachers: nbgrader's cell metadata, checks in cells of their own, and the
learner's progress table at the end.

    python tools/teacher_cells.py            # rewrite notebooks/NN_topic.ipynb in place (idempotent)
    python tools/teacher_cells.py --check    # exit 1 and name the notebooks that are not ready (the tests run this)

What it does to each notebook:
1. A ``check(...)`` line inside a build-it cell (tag ``exercise``) moves into a new cell right after it, so that
   the learner's answer and the test are separate cells, as nbgrader needs them.
2. Build-it cells become nbgrader "autograded answers" (``solution``), cells that call ``check`` become
   "autograder tests" (``grade``, locked, one point per step they check). ``dlcourse.grade`` and nbgrader then
   grade the same cells: the course's check raises under nbgrader (``NBGRADER_EXECUTION``) when it fails.
3. The notebook ends with a cell that shows the learner's progress over all chapters.
"""

from __future__ import annotations

import argparse
import ast
import copy
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlcourse.grade import _check_calls, _is_exercise  # noqa: E402

PROGRESS_MD = ("## Your progress\n\nThe build-it steps you have passed so far, in every chapter (kept on this "
               "computer only; `clear_progress()` starts again).")
PROGRESS_CODE = ("from dlcourse.course.checker import progress\n\n"
                 "progress()  # clear_progress(), from the same module, starts again")
PROGRESS_ID = "dlcourse-progress"


def _split_checks(cell):
    """(the cell without its top-level check lines, those lines) for a build-it cell; None when it has none."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return None
    lines = cell.source.split("\n")
    spans = [(node.lineno, node.end_lineno) for node in tree.body
             if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
             and isinstance(node.value.func, ast.Name) and node.value.func.id == "check"]
    if not spans:
        return None
    moved, keep = [], []
    taken = {i for a, b in spans for i in range(a - 1, b)}
    for i, line in enumerate(lines):
        (moved if i in taken else keep).append(line)
    return "\n".join(keep).rstrip() + "\n", "\n".join(moved).strip()


def prepare(nb):
    """A copy of ``nb`` made ready as described in the module docstring."""
    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if _is_exercise(cell):
            split = _split_checks(cell)
            if split and not split[0].strip():  # a build-it cell that only checks: it is the test cell itself
                cell.metadata["tags"] = [t for t in cell.metadata["tags"] if t != "exercise"]
                cell.source = split[1]
            elif split:
                cell.source, checks = split
                new = nbformat.v4.new_code_cell(checks)
                new.id = (cell.id + "-check")[:64]
                cells.append(new)
    nb.cells = cells
    used = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("nbgrader", None)
        if _is_exercise(cell):
            cell.metadata["nbgrader"] = {"grade": False, "grade_id": f"answer-{cell.id}", "locked": False,
                                         "schema_version": 3, "solution": True, "task": False}
            continue
        calls = _check_calls(cell.source)
        if calls:
            names = list(dict.fromkeys(name for name, _ in calls))
            grade_id = "check-" + "-".join(names).replace(".", "_")
            while grade_id in used:  # a step checked twice: nbgrader needs every grade_id once
                grade_id += "-again"
            used.add(grade_id)
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": grade_id,
                                         "locked": True, "points": len(names), "schema_version": 3,
                                         "solution": False, "task": False}
    for cell in nb.cells:  # keep the progress cells' text as this tool writes it
        if cell.get("id") == PROGRESS_ID:
            cell.source = PROGRESS_CODE
        elif cell.get("id") == PROGRESS_ID + "-md":
            cell.source = PROGRESS_MD
    if not any(c.get("id") == PROGRESS_ID for c in nb.cells):
        md = nbformat.v4.new_markdown_cell(PROGRESS_MD)
        md.id = PROGRESS_ID + "-md"
        code = nbformat.v4.new_code_cell(PROGRESS_CODE)
        code.id = PROGRESS_ID
        nb.cells += [md, code]
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which notebooks are not ready")
    args = parser.parse_args(argv)
    stale = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        ready = prepare(nb)
        if ready == nb:
            continue
        stale.append(path.name)
        if not args.check:
            nbformat.write(ready, str(path))
    if args.check and stale:
        print("not ready for teachers (run python tools/teacher_cells.py): " + ", ".join(stale))
        return 1
    print(("rewrote " if stale else "all notebooks ready: ") + ", ".join(stale))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
