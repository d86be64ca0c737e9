"""book/build.py stops on a cell that raises, naming the notebook and the error: CI relies on it.

Under CI's main Python the book build is the one run of every notebook (English and Chinese); pytest then runs
`pytest tests` without nbval's second execution (README, "Tests and CI"). So a notebook cell that raises must fail the
build, as nbval would fail the test run. Here the build's own executor (``execute_all``: spawned worker, nbclient,
a fresh kernel) runs a two-cell notebook whose second cell raises; the build must exit with a message that names
the notebook and the exception, and must not cache the failed execution.
"""

from __future__ import annotations

import subprocess
import sys

import nbformat
import repo_paths

ROOT = repo_paths.ROOT

SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {book!r})
import build
tmp = Path({tmp!r})
build.notebooks_dir = lambda lang: tmp / "notebooks"
build.cache_dir = lambda setting, lang: tmp / "cache"
try:
    build.execute_all(["00_broken.ipynb"], "quick", 1, 120, ("en",))
except SystemExit as stop:
    print("STOPPED:", str(stop).replace("\\n", " "))
else:
    print("BUILT")
"""


def test_a_cell_that_raises_stops_the_book_build(tmp_path):
    (tmp_path / "notebooks").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\nprint('first cell ran')"),
                nbformat.v4.new_code_cell("raise ZeroDivisionError('deliberately broken cell')")]
    nbformat.write(nb, tmp_path / "notebooks" / "00_broken.ipynb")
    code = SCRIPT.format(book=str(ROOT / "book"), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    last = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr[-2000:]
    assert last.startswith("STOPPED:"), last
    assert "00_broken.ipynb" in last and "CellExecutionError" in last and "deliberately broken cell" in last
    assert not (tmp_path / "cache" / "00_broken.ipynb").exists()  # a failed run is never cached as executed
