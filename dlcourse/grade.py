"""Grade a class's chapter notebooks with the course's own checks.

    python -m dlcourse.grade SUBMISSIONS... --out grades.csv [--chapter 04_cnn] [--jobs 2]
    python -m dlcourse.grade --nbgrader-setup COURSE_DIR [--chapter 04_cnn]   # an nbgrader course folder

SUBMISSIONS are notebooks or folders (searched recursively for ``*.ipynb``). The learner is named by the
submission's folder (``alice/04_cnn.ipynb`` is alice's), or by the file's name when it lies directly in a folder
that was given. For every build-it step of the chapter the grader reports one of

    passed          the learner's function passes the course's hidden cases
    failed          it does not (the message is ``check``'s: which case, how far off; never the answer)
    not attempted   the stub is as the course ships it
    error           the learner's cell raised, or the function it should define does not exist
    not reached     the kernel died or the time ran out before the step

plus whether the chapter ran to the end with the learner's code. It writes ``grades.csv`` (one row per
learner and step) and ``grades.md`` beside it (a step × learner table and how many passed each step).

How a submission is graded, and why a learner's edits cannot turn a failure into a pass:

* The grader runs the **course's** notebook (from ``--course``, by default the repository's ``notebooks/``)
  with only the learner's build-it cells (tag ``exercise``) put in, matched by cell id, else by order. The
  learner's other cells, their ``check`` cells included, are not run; a submission whose check cells differ from
  the course's is graded all the same and says so in its ``notes``.
* After each cell that checks a step, a cell of the grader's own runs the checker of
  ``dlcourse.course.checker`` on the function the course's check cell names. Before the first learner cell the
  grader keeps the checker's functions and each step's reference and cases; a step whose checker has been
  replaced by then is reported as an error ("the checking code was changed"). This stops accidents and casual
  tampering; a kernel runs the learner's Python, so it is not a sandbox against a determined attacker.
* Each notebook runs in its own kernel process, in its own temporary folder (``HOME``, ``TMPDIR``, the
  IPython and Matplotlib folders inside it), in quick mode (``--full`` for the full setting), with a time limit per
  cell (``--cell-timeout``) and per notebook (``--timeout``) and a memory limit (``--memory-gib``, on the kernel's
  resident memory). Inside the kernel an audit hook refuses writes outside that folder and network connections
  to anything but this machine; a refused attempt is named in ``notes``.
* Bad submissions never stop the batch: a file that is not a notebook, a notebook of another chapter (or of no
  chapter), a hang, a kernel that dies, each becomes a row that says so.
* The same submission graded twice gets the same result: the course's seeds are fixed, and nothing of one
  submission's run is seen by another's.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import csv
import json
import multiprocessing
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import PROGRESS_ENV, QUICK_ENV

PASSED, FAILED, NOT_ATTEMPTED, ERROR, NOT_REACHED = "passed", "failed", "not attempted", "error", "not reached"
DEFAULT_COURSE = Path(__file__).resolve().parents[1] / "notebooks"


# -- the course's notebooks: which steps each checks, and where ---------------------------------------------------

@dataclass
class Step:
    name: str        # "ch4.conv2d_forward"
    target: str      # the expression the course's check cell passes: "conv2d_forward"
    cell: int        # index of the course's cell that checks it


@dataclass
class Chapter:
    stem: str                  # "04_cnn"
    path: Path
    steps: list[Step]
    exercise_cells: list[int]  # indices of the cells tagged `exercise`


def _parse(source: str):
    try:
        return ast.parse(source)
    except SyntaxError:
        return None


def _check_calls(source: str) -> list[tuple[str, str]]:
    """(step name, the function expression) of every ``check("name", fn)`` call in a cell's source."""
    tree = _parse(source)
    calls = []
    for node in ast.walk(tree) if tree else ():
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)):
            calls.append((node.args[0].value, ast.unparse(node.args[1])))
    return calls


def _is_exercise(cell) -> bool:
    return cell.get("cell_type") == "code" and "exercise" in cell.get("metadata", {}).get("tags", [])


def load_chapter(path: Path) -> Chapter:
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    steps, seen = [], set()
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for name, target in _check_calls(cell.source):
            if name not in seen:
                seen.add(name)
                steps.append(Step(name, target, i))
    return Chapter(path.stem, path, steps, [i for i, c in enumerate(nb.cells) if _is_exercise(c)])


def load_course(course_dir: Path) -> dict[str, Chapter]:
    chapters = {}
    for path in sorted(Path(course_dir).glob("[0-9][0-9]_*.ipynb")):
        chapter = load_chapter(path)
        if chapter.steps:
            chapters[chapter.stem] = chapter
    if not chapters:
        raise ValueError(f"grade: expected the course's chapter notebooks (NN_topic.ipynb with check cells) in "
                         f"{course_dir}, found none")
    return chapters


# -- one submission -----------------------------------------------------------------------------------------------

@dataclass
class Result:
    submission: str
    learner: str
    chapter: str = ""
    steps: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, message)
    ran_to_end: bool = False
    problem: str = ""       # why the submission could not be graded in full ("" when it could)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _defined_names(tree) -> dict[str, str]:
    """Top-level name -> the source of every statement of one cell that binds it (``def``, ``class``, ``=``)."""
    out: dict[str, list[str]] = {}
    for node in tree.body if tree else ():
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        else:
            continue
        for name in names:
            out.setdefault(name, []).append(ast.unparse(node))
    return {name: "\n".join(sources) for name, sources in out.items()}


def _identify(sub_nb, chapters: dict[str, Chapter], wanted: str | None, filename: str) -> tuple[str | None, str]:
    """The chapter a submission belongs to, from the steps its cells check; (None, why) when none fits."""
    names = {name for cell in sub_nb.cells if cell.get("cell_type") == "code"
             for name, _ in _check_calls(cell.get("source", ""))}
    scores = {stem: len(names & {s.name for s in ch.steps}) for stem, ch in chapters.items()}
    best = max(scores, key=scores.get)
    if scores[best] == 0:
        by_name = [stem for stem in chapters if stem in filename]
        if not by_name:
            return None, "not a chapter notebook of the course (it checks none of the course's build-it steps)"
        best = by_name[0]
    if wanted and best != wanted:
        return None, f"wrong chapter: expected {wanted}, got {best}"
    return best, ""


def _match_exercise_cells(course_nb, chapter: Chapter, sub_nb) -> dict[int, dict]:
    """Course exercise cell index -> the learner's version of it (by cell id, else by order among exercise cells)."""
    sub_ex = [c for c in sub_nb.cells if _is_exercise(c)]
    by_id = {c.get("id"): c for c in sub_ex if c.get("id")}
    matched = {}
    for k, i in enumerate(chapter.exercise_cells):
        cid = course_nb.cells[i].get("id")
        if cid in by_id:
            matched[i] = by_id[cid]
        elif k < len(sub_ex) and not any(c.get("id") == sub_ex[k].get("id") for c in course_nb.cells
                                         if sub_ex[k].get("id")):
            matched[i] = sub_ex[k]
    return matched


SETUP = r'''
def __dlcourse_grader_setup(nonce, workdir, allowed):
    import importlib, json, os, sys, types
    ex = importlib.import_module("dlcourse.course.checker")
    kept = {"_run": ex._run, "_compare": ex._compare, "check": ex.check, "REGISTRY": dict(ex.REGISTRY)}
    kept_steps = {name: (e.reference, e.cases) for name, e in ex.REGISTRY.items()}
    refused = []
    roots = tuple(os.path.realpath(p) for p in [workdir, *allowed])

    def outside(path):
        if isinstance(path, int):
            return False
        path = os.path.realpath(os.fsdecode(path))
        return not (path.startswith(roots) or path.startswith("/dev/") or path.startswith("/proc/"))

    def hook(event, args):
        if event == "open" and args and args[0] is not None:
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(m in mode for m in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing and outside(args[0]):
                refused.append(f"write to {os.fsdecode(args[0])}")
                raise PermissionError(f"grader: writing outside the submission's folder is not allowed: {args[0]}")
        elif event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.truncate") and args:
            if outside(args[0]):
                refused.append(f"{event} {os.fsdecode(args[0])}")
                raise PermissionError(f"grader: changing files outside the submission's folder is not allowed")
        elif event == "socket.connect" and len(args) > 1 and isinstance(args[1], tuple):
            host = str(args[1][0])
            if host not in ("127.0.0.1", "::1", "localhost"):
                refused.append(f"network connection to {host}")
                raise PermissionError(f"grader: network access is not allowed ({host})")

    sys.addaudithook(hook)

    def record(name, target):
        out = {"step": name}
        try:
            fn = target()
        except Exception as err:
            out.update(status="error", message=f"{type(err).__name__}: {err}")
        else:
            changed = [k for k in ("_run", "_compare", "check") if getattr(ex, k) is not kept[k]]
            if name in kept_steps and (ex.REGISTRY.get(name) is not kept["REGISTRY"][name]
                                       or (ex.REGISTRY[name].reference, ex.REGISTRY[name].cases)
                                       != kept_steps[name]):
                changed.append(f"REGISTRY[{name!r}]")
            if changed:
                out.update(status="error", message="the checking code was changed: " + ", ".join(changed))
            else:
                try:
                    problem = kept["_run"](name, fn)
                except Exception as err:
                    problem = f"{type(err).__name__}: {err}"
                out.update(status="passed" if problem is None else "failed", message=problem or "")
        out["refused"] = list(refused)
        print(nonce + json.dumps(out), flush=True)

    return types.SimpleNamespace(record=record, refused=refused)
'''


def build_grading_notebook(course_nb, chapter: Chapter, sub_nb, nonce: str, workdir: str, allowed: list[str]):
    """The course's notebook with the learner's exercise cells put in and the grader's record cells after checks."""
    import copy

    import nbformat

    nb = copy.deepcopy(course_nb)
    for i, learner_cell in _match_exercise_cells(course_nb, chapter, sub_nb).items():
        nb.cells[i].source = learner_cell.get("source", "")
    steps_after = {}
    for step in chapter.steps:
        steps_after.setdefault(step.cell, []).append(step)
    cells = [nbformat.v4.new_code_cell(
        SETUP + f"\n__dlcourse_grader__ = __dlcourse_grader_setup({nonce!r}, {workdir!r}, {allowed!r})\n"
        "del __dlcourse_grader_setup")]
    cells[0].metadata["dlcourse_grader"] = True
    for i, cell in enumerate(nb.cells):
        cell.metadata["dlcourse_course_cell"] = i
        cells.append(cell)
        for step in steps_after.get(i, []):
            rec = nbformat.v4.new_code_cell(f"__dlcourse_grader__.record({step.name!r}, lambda: {step.target})")
            rec.metadata["dlcourse_grader"] = True
            cells.append(rec)
    nb.cells = cells
    return nb


def _attempted(course_nb, chapter: Chapter, sub_nb) -> dict[str, bool]:
    """Step name -> whether the learner changed what the step checks (False: the stub is as the course ships it).

    What a step checks is the ``def``/``class`` of a build-it cell that its check expression names
    (``softmax``; ``Value`` in ``engine.op_probe(Value)``). Changed means that definition differs, or, when the
    learner's cell no longer defines it with ``def``/``class``, that their cell differs from the course's.
    """
    matched = _match_exercise_cells(course_nb, chapter, sub_nb)
    home = {}  # defined name -> (course cell index, its course source)
    for i in chapter.exercise_cells:
        for name, source in _defined_names(_parse(course_nb.cells[i].source)).items():
            home[name] = (i, source)
    out = {}
    for step in chapter.steps:
        tree = _parse(step.target)
        names = [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in home] if tree else []
        if not names:  # the step checks something no build-it cell defines: count it as attempted
            out[step.name] = True
            continue
        changed = False
        for name in names:
            i, course_source = home[name]
            learner_cell = matched.get(i)
            if learner_cell is None:
                continue
            theirs = _defined_names(_parse(learner_cell.get("source", "")))
            changed |= (theirs[name] != course_source if name in theirs else
                        learner_cell.get("source", "").strip() != course_nb.cells[i].source.strip())
        out[step.name] = changed
    return out


def _edited_check_cells(course_nb, chapter: Chapter, sub_nb) -> list[str]:
    by_id = {c.get("id"): c for c in sub_nb.cells if c.get("id")}
    edited = []
    for step in chapter.steps:
        i = step.cell
        if i in chapter.exercise_cells:
            continue
        cid = course_nb.cells[i].get("id")
        theirs = by_id.get(cid)
        if theirs is None or theirs.get("source", "").strip() != course_nb.cells[i].source.strip():
            edited.append(step.name)
    return edited


def _kernel_env(workdir: Path, full: bool, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_", "NBGRADER"))}
    env.pop("MPLBACKEND", None)
    env.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"), IPYTHONDIR=str(workdir / ".ipython"),
               MPLCONFIGDIR=str(cache / "matplotlib"), MPLBACKEND="agg", **{PROGRESS_ENV: "off"},
               OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1", no_proxy="*", http_proxy="", https_proxy="")
    env.pop(QUICK_ENV, None)
    if not full:
        env[QUICK_ENV] = "1"
    return env


def _watch(stop: threading.Event, deadline: float, memory_bytes: int, verdict: list) -> None:
    """Kill the worker's kernel (its only child) past the notebook's time limit or the memory limit."""
    import psutil

    while not stop.wait(0.5):
        for child in psutil.Process().children(recursive=True):
            try:
                rss = child.memory_info().rss
            except psutil.Error:
                continue
            reason = ("ran past the time limit" if time.monotonic() > deadline else
                      f"used more than the memory limit ({memory_bytes / 2**30:.1f} GiB)" if rss > memory_bytes
                      else None)
            if reason:
                verdict.append(reason)
                try:
                    child.kill()
                except psutil.Error:
                    pass
                return


def grade_one(submission: str, learner: str, course_dir: str, options: dict) -> Result:
    """Grade one submission (runs in a worker process of its own)."""
    import nbformat

    result = Result(submission=submission, learner=learner)
    t0 = time.perf_counter()
    try:
        chapters = load_course(Path(course_dir))
        try:
            sub_nb = nbformat.read(submission, as_version=4)
            if not isinstance(sub_nb.get("cells"), list):
                raise ValueError("no cells")
        except Exception as err:
            result.problem = f"not a readable notebook ({type(err).__name__}: {str(err)[:200]})"
            return result
        stem, why = _identify(sub_nb, chapters, options.get("chapter"), Path(submission).name)
        if stem is None:
            result.problem = why
            return result
        chapter = chapters[stem]
        result.chapter = stem
        course_nb = nbformat.read(str(chapter.path), as_version=4)
        edited = _edited_check_cells(course_nb, chapter, sub_nb)
        if edited:
            result.notes.append(f"edited or removed the check cell of {', '.join(edited)}: graded with the "
                                "course's own checks")
        attempted = _attempted(course_nb, chapter, sub_nb)
        _run_kernel(result, chapter, course_nb, sub_nb, attempted, Path(course_dir), options)
    except Exception as err:  # the grader's own failure on this submission: report it, keep the batch going
        result.problem = f"the grader could not run it: {type(err).__name__}: {str(err)[:300]}"
    finally:
        result.seconds = round(time.perf_counter() - t0, 1)
    return result


def _run_kernel(result, chapter, course_nb, sub_nb, attempted, course_dir: Path, options: dict) -> None:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nonce = "@@dlcourse-grade-" + secrets.token_hex(8) + "@@"
    with tempfile.TemporaryDirectory(prefix="dlcourse-grade-") as tmp:
        workdir = Path(tmp)
        (workdir / "tmp").mkdir()
        # the chapter's folder: data the notebook reads next to itself (read-only use)
        cache = Path(options["cache"])
        allowed = [str(cache)]
        nb = build_grading_notebook(course_nb, chapter, sub_nb, nonce, str(workdir), allowed)
        os.environ.clear()
        os.environ.update(_kernel_env(workdir, options.get("full", False), cache))
        from .nbexec import notebook_client

        client = notebook_client(nb, str(workdir), timeout=options["cell_timeout"], allow_errors=True,
                                 resources={"metadata": {"path": str(workdir)}})
        stop, killed = threading.Event(), []
        watcher = threading.Thread(target=_watch, args=(stop, time.monotonic() + options["timeout"],
                                                        int(options["memory_gib"] * 2**30), killed), daemon=True)
        watcher.start()
        try:
            client.execute(cleanup_kc=True)  # we made the kernel manager: shut its kernel down here
        except CellTimeoutError:
            result.problem = f"a cell ran past the per-cell time limit ({options['cell_timeout']} s)"
        except DeadKernelError:
            result.problem = ("the kernel " + killed[0] if killed else
                              "the kernel died (the learner's code crashed or exited the process)")
        except Exception as err:
            result.problem = ("the kernel " + killed[0] if killed else
                              f"the kernel failed: {type(err).__name__}: {str(err)[:200]}")
        finally:
            stop.set()
            watcher.join(timeout=5)
        _read_outputs(result, chapter, nb, nonce, attempted)


def _read_outputs(result: Result, chapter: Chapter, nb, nonce: str, attempted: dict[str, bool]) -> None:
    first_error = None
    refused = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if cell.metadata.get("dlcourse_grader"):
                for line in out.get("text", "").splitlines() if out.get("output_type") == "stream" else ():
                    if line.startswith(nonce):
                        rec = json.loads(line[len(nonce):])
                        result.steps[rec["step"]] = (rec["status"], rec["message"])
                        refused = rec.get("refused", refused)
            elif out.get("output_type") == "error" and first_error is None:
                first_error = (cell.metadata.get("dlcourse_course_cell"), out.get("ename"), out.get("evalue", ""))
    for step in chapter.steps:
        status = result.steps.get(step.name)
        if status is None:
            result.steps[step.name] = (NOT_REACHED, result.problem or "the notebook stopped before this step")
        elif not attempted.get(step.name, True) and status[0] != PASSED:
            result.steps[step.name] = (NOT_ATTEMPTED, "the stub is as the course ships it")
    executed = [c for c in nb.cells if not c.metadata.get("dlcourse_grader")]
    result.ran_to_end = (not result.problem and first_error is None
                         and all(c.get("execution_count") is not None or c.cell_type != "code" for c in executed))
    if first_error is not None:
        cell, ename, evalue = first_error
        result.notes.append(f"the chapter stopped running cleanly at cell {cell}: {ename}: {str(evalue)[:200]}")
    if refused:
        result.notes.append("refused: " + "; ".join(dict.fromkeys(refused)))


def sample_submission(chapter_path: Path, answers: dict[str, str], extra: dict[str, str] | None = None):
    """A chapter notebook as a learner might hand it in, to try a grading setup (the tests and benchmark use it).

    ``answers`` maps a step to ``"reference"`` (the course's own answer), ``"wrong"`` (the step's registered typical
    mistake) or ``"untouched"`` (the default); ``extra`` maps a function the chapter's build-it cells define to code
    appended to its cell (a hang, a crash, ...).
    """
    import copy

    import nbformat

    chapter = load_chapter(Path(chapter_path))
    nb = copy.deepcopy(nbformat.read(str(chapter_path), as_version=4))

    def cell_defining(target):
        for i in chapter.exercise_cells:
            if target in _defined_names(_parse(nb.cells[i].source)):
                return nb.cells[i]
        raise ValueError(f"sample_submission: no build-it cell of {chapter.stem} defines {target!r}")

    for step in chapter.steps:
        how = answers.get(step.name, "untouched")
        if how not in ("reference", "wrong", "untouched"):
            raise ValueError(f"sample_submission: expected 'reference', 'wrong' or 'untouched' for {step.name}, "
                             f"got {how!r}")
        if how == "reference":
            cell_defining(step.target).source += (
                f"\n\nfrom dlcourse.course.checker import reference as _reference\n"
                f"{step.target} = _reference({step.name!r})\n")
        elif how == "wrong":
            cell_defining(step.target).source += (
                f"\n\nfrom dlcourse.course.checker import REGISTRY as _REGISTRY\n"
                f"{step.target} = _REGISTRY[{step.name!r}].wrong\n")
    for target, code in (extra or {}).items():
        cell_defining(target).source += "\n\n" + code + "\n"
    return nb


# -- a class ------------------------------------------------------------------------------------------------------

def find_submissions(paths: list[str]) -> list[tuple[str, str]]:
    """(path, learner) of every notebook under ``paths``, sorted; checkpoints are skipped."""
    found = []
    for given in paths:
        p = Path(given)
        if p.is_dir():
            for nb in sorted(p.rglob("*.ipynb")):
                if ".ipynb_checkpoints" in nb.parts:
                    continue
                rel = nb.relative_to(p)
                found.append((str(nb), rel.parts[0] if len(rel.parts) > 1 else nb.stem))
        elif p.exists():
            found.append((str(p), p.parent.name if p.parent.name not in ("", ".") else p.stem))
        else:
            raise ValueError(f"grade: expected a notebook or a folder, got {given!r}, which does not exist")
    return found


def grade(paths: list[str], course_dir: Path = DEFAULT_COURSE, jobs: int | None = None, chapter: str | None = None,
          timeout: float = 900, cell_timeout: float = 300, memory_gib: float = 2.0, full: bool = False,
          progress=None) -> list[Result]:
    """Grade every submission under ``paths``; each in a spawned worker process with its own kernel."""
    chapters = load_course(Path(course_dir))
    if chapter is not None and chapter not in chapters:
        raise ValueError(f"grade: expected --chapter to be one of {sorted(chapters)}, got {chapter!r}")
    submissions = find_submissions(paths)
    jobs = jobs or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="dlcourse-grade-cache-") as cache:
        options = dict(chapter=chapter, timeout=timeout, cell_timeout=cell_timeout, memory_gib=memory_gib,
                       full=full, cache=cache)
        results: list[Result | None] = [None] * len(submissions)
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs, max_tasks_per_child=1,
                                                      mp_context=multiprocessing.get_context("spawn"))
        with pool:
            futures = {pool.submit(grade_one, path, learner, str(course_dir), options): k
                       for k, (path, learner) in enumerate(submissions)}
            for future in concurrent.futures.as_completed(futures):
                k = futures[future]
                path, learner = submissions[k]
                try:
                    results[k] = future.result()
                except Exception as err:  # the worker itself died
                    results[k] = Result(path, learner, problem=f"the grader's worker failed: {type(err).__name__}")
                if progress:
                    progress(results[k])
    return [r for r in results if r is not None]


CSV_FIELDS = ["learner", "submission", "chapter", "step", "status", "message", "ran_to_end", "problem", "notes",
              "seconds"]


def write_csv(results: list[Result], path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for r in results:
            base = dict(learner=r.learner, submission=r.submission, chapter=r.chapter, ran_to_end=r.ran_to_end,
                        problem=r.problem, notes=" | ".join(r.notes), seconds=r.seconds)
            if not r.steps:
                writer.writerow({**base, "step": "", "status": "not graded", "message": r.problem})
            for name, (status, message) in r.steps.items():
                writer.writerow({**base, "step": name, "status": status, "message": message})


SYMBOL = {PASSED: "✓", FAILED: "✗", NOT_ATTEMPTED: "·", ERROR: "!", NOT_REACHED: "–"}


def summary_markdown(results: list[Result]) -> str:
    """A step × learner table per chapter, how many passed each step, and the submissions that had a problem."""
    lines = ["# Grades", "", "✓ passed · ✗ failed · · not attempted · ! error · – not reached", ""]
    for chapter in sorted({r.chapter for r in results if r.chapter}):
        rows = [r for r in results if r.chapter == chapter]
        steps = list(dict.fromkeys(name for r in rows for name in r.steps))
        lines += [f"## {chapter} ({len(rows)} submissions)", "",
                  "| step | " + " | ".join(r.learner for r in rows) + " | passed |",
                  "|---|" + "---|" * len(rows) + "---:|"]
        for name in steps:
            marks = [SYMBOL[r.steps[name][0]] if name in r.steps else "" for r in rows]
            passed = sum(r.steps.get(name, ("",))[0] == PASSED for r in rows)
            lines.append(f"| {name} | " + " | ".join(marks) + f" | {passed}/{len(rows)} |")
        ends = sum(r.ran_to_end for r in rows)
        lines += ["| ran to the end | " + " | ".join("yes" if r.ran_to_end else "no" for r in rows)
                  + f" | {ends}/{len(rows)} |", ""]
        passes = {n: sum(r.steps.get(n, ("",))[0] == PASSED for r in rows) for n in steps}
        hardest = sorted((n for n in steps if passes[n] < max(passes.values())), key=passes.get)[:3]
        if hardest:
            lines += ["Hardest steps for this class: " + ", ".join(hardest) + ".", ""]
    problems = [r for r in results if r.problem or r.notes]
    if problems:
        lines += ["## Submissions with a problem or a note", ""]
        lines += [f"- {r.learner} ({r.submission}): " + "; ".join(([r.problem] if r.problem else []) + r.notes)
                  for r in problems]
    return "\n".join(lines) + "\n"


NBGRADER_CONFIG = """\
# nbgrader's configuration for the dlcourse chapters (written by `python -m dlcourse.grade --nbgrader-setup`).
import os

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "dlcourse"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# The course's build-it cells are stubs already (`...  # your code`): the student version keeps them as they are,
# so nbgrader's ClearSolutions, which would replace each answer cell by `raise NotImplementedError()`, is left out.
from nbgrader.preprocessors import (CheckCellMetadata, ClearHiddenTests, ClearMarkScheme, ClearOutput,  # noqa: E402
                                    ComputeChecksums, IncludeHeaderFooter, LockCells, SaveCells)

c.GenerateAssignment.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, CheckCellMetadata,
                                      ComputeChecksums, SaveCells, ClearHiddenTests, ClearMarkScheme,
                                      ComputeChecksums, CheckCellMetadata]
# nbclient's Output-widget stand-in echoes every captured output to the kernel on the shell channel while it waits
# there for the cell's reply; a run stalled on it once (see dlcourse/nbexec.py). Nothing reads the echo: drop it.
from nbclient.output_widget import OutputWidget  # noqa: E402

OutputWidget.sync_state = lambda self: None
# The check cells are the autograder tests: under nbgrader (NBGRADER_EXECUTION is set) a failing check raises.
# Quick mode, as `python -m dlcourse.grade` grades; delete this line to autograde in the full setting.
os.environ.setdefault("DLCOURSE_QUICK", "1")
c.ExecutePreprocessor.timeout = 600
"""


def setup_nbgrader(root: Path, chapters: list[str] | None = None, course_dir: Path = DEFAULT_COURSE) -> list[Path]:
    """Make ``root`` an nbgrader course folder: ``nbgrader_config.py`` and ``source/<chapter>/<chapter>.ipynb``."""
    available = load_course(Path(course_dir))
    wanted = chapters or sorted(available)
    unknown = [c for c in wanted if c not in available]
    if unknown:
        raise ValueError(f"grade: expected chapters among {sorted(available)}, got {unknown}")
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(NBGRADER_CONFIG, encoding="utf-8")
    written = []
    for stem in wanted:
        folder = root / "source" / stem
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(available[stem].path, folder / f"{stem}.ipynb")
        written.append(folder / f"{stem}.ipynb")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dlcourse.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="*", help="notebooks or folders of notebooks")
    parser.add_argument("--out", default="grades.csv", help="the CSV to write; the markdown summary goes beside it")
    parser.add_argument("--course", default=str(DEFAULT_COURSE), help="the course's notebooks folder")
    parser.add_argument("--chapter", help="the chapter every submission should be, e.g. 04_cnn")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: the cores)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default 900)")
    parser.add_argument("--cell-timeout", type=float, default=300, help="seconds per cell (default 300)")
    parser.add_argument("--memory-gib", type=float, default=2.0, help="kernel memory limit (default 2 GiB)")
    parser.add_argument("--full", action="store_true", help="run the full setting instead of quick mode")
    parser.add_argument("--nbgrader-setup", metavar="DIR",
                        help="instead of grading: make DIR an nbgrader course folder for the chapters (--chapter: one)")
    args = parser.parse_args(argv)
    if args.nbgrader_setup:
        try:
            written = setup_nbgrader(Path(args.nbgrader_setup), [args.chapter] if args.chapter else None,
                                     Path(args.course))
        except ValueError as err:
            print(err, file=sys.stderr)
            return 2
        print(f"nbgrader course folder {args.nbgrader_setup}: nbgrader_config.py and {len(written)} assignment(s)")
        return 0
    if not args.submissions:
        parser.error("expected notebooks or folders to grade (or --nbgrader-setup DIR)")
    t0 = time.perf_counter()

    def say(r: Result) -> None:
        passed = sum(s == PASSED for s, _ in r.steps.values())
        print(f"{r.learner}: {r.chapter or '-'} {passed}/{len(r.steps)} passed"
              + (f" ({r.problem})" if r.problem else "") + f", {r.seconds:.0f} s", flush=True)

    try:
        results = grade(args.submissions, Path(args.course), args.jobs, args.chapter, args.timeout,
                        args.cell_timeout, args.memory_gib, args.full, progress=say)
    except ValueError as err:
        print(err, file=sys.stderr)
        return 2
    out = Path(args.out)
    write_csv(results, out)
    out.with_suffix(".md").write_text(summary_markdown(results), encoding="utf-8")
    print(f"graded {len(results)} submission(s) in {time.perf_counter() - t0:.0f} s: {out}, {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
