"""Checks of a chapter notebook's source shared by the chapters' tests (on sys.path through pytest's pythonpath)."""

import re

import nbformat
import repo_paths


def assert_builds_uses_and_hides_the_solutions(notebook: str, prefix: str) -> None:
    """The notebook has build-it stubs, runs on what ``use`` returns, and never shows or asserts a solution."""
    nb = nbformat.read(repo_paths.ROOT / "notebooks" / f"{notebook}.ipynb", 4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    stubs = [c for c in nb.cells if "exercise" in c.metadata.get("tags", []) and "...  # your code" in c.source]
    used = set(re.findall(r'= use\("([\w.]+)"', code))
    assert len(stubs) >= 3 and len(used) >= 2 and all(name.startswith(prefix) for name in used)
    assert "solution(" not in code and code.count("getsource") <= 1
    assert "assert check(" not in code
