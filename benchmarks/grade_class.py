"""How long `python -m dlcourse.grade` takes for a class: 30 chapter-1 submissions on this machine's cores.

    .venv/bin/python benchmarks/grade_class.py                 # 30 submissions, --jobs = the cores
    .venv/bin/python benchmarks/grade_class.py --learners 10 --chapter 02_backprop --json

A third of the class hands in every stub filled in, a third the typical wrong answer of every other step, a third
untouched stubs. Each submission runs in its own kernel in quick mode, as the grader grades. Prints the wall-clock
time of the batch and per submission (and each submission's own seconds); `--json` writes
benchmarks/results/grade_class.json. Run it on a quiet machine: every submission is a full notebook run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlcourse import grade as G  # noqa: E402
from dlcourse.runtime import cpu_model  # noqa: E402


def make_class(folder: Path, chapter_path: Path, learners: int) -> None:
    steps = [s.name for s in G.load_chapter(chapter_path).steps]
    kinds = [{s: "reference" for s in steps},
             {s: ("wrong" if k % 2 else "reference") for k, s in enumerate(steps)},
             {}]
    for i in range(learners):
        (folder / f"learner{i:02d}").mkdir()
        nb = G.sample_submission(chapter_path, kinds[i % 3])
        nbformat.write(nb, str(folder / f"learner{i:02d}" / f"{chapter_path.stem}.ipynb"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=30)
    parser.add_argument("--chapter", default="01_neurons")
    parser.add_argument("--jobs", type=int, default=None)
    parser.add_argument("--json", nargs="?", const=str(ROOT / "benchmarks" / "results" / "grade_class.json"))
    args = parser.parse_args(argv)
    chapter_path = ROOT / "notebooks" / f"{args.chapter}.ipynb"
    jobs = args.jobs or os.cpu_count()
    with tempfile.TemporaryDirectory() as tmp:
        make_class(Path(tmp), chapter_path, args.learners)
        load0 = os.getloadavg()[0]
        t0 = time.perf_counter()
        results = G.grade([tmp], jobs=jobs)
        wall = time.perf_counter() - t0
    own = [r.seconds for r in results]
    problems = [r.learner for r in results if r.problem]
    report = {
        "chapter": args.chapter, "learners": args.learners, "jobs": jobs, "wall_s": round(wall, 1),
        "wall_per_submission_s": round(wall / args.learners, 2),
        "submission_s_median": round(statistics.median(own), 1), "submission_s_max": round(max(own), 1),
        "problems": problems, "cpu": cpu_model(), "cores": os.cpu_count(), "load_average_at_start": round(load0, 2),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    print(f"{args.learners} {args.chapter} submissions, {jobs} at a time: {wall:.0f} s "
          f"({wall / args.learners:.1f} s per submission; each ran {report['submission_s_median']:.1f} s median, "
          f"{report['submission_s_max']:.1f} s at most), on {report['cpu']}, load {load0:.2f} at the start")
    if problems:
        print("submissions with a problem (none expected):", problems)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
        print("wrote", args.json)


if __name__ == "__main__":
    main()
