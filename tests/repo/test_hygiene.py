"""Repository rules the test run enforces: outputs stripped, ruff clean, no data committed."""

import json
import shutil
import subprocess
import sys

import pytest
import repo_paths

ROOT = repo_paths.ROOT
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2, f"expected the chapter notebooks in notebooks/, found {NOTEBOOKS}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_stored_without_outputs(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    dirty = [i for i, c in enumerate(nb["cells"])
             if c["cell_type"] == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} are stored with outputs; run nbstripout {path.name}"


def test_ruff_finds_no_errors():
    ruff = [sys.executable, "-m", "ruff"] if shutil.which("ruff") is None else ["ruff"]
    result = subprocess.run([*ruff, "check", "--no-cache", str(ROOT)], capture_output=True, text=True)
    assert result.returncode == 0, f"ruff found errors:\n{result.stdout}\n{result.stderr}"


def test_no_data_sets_or_weights_in_the_repo():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    bad = [f for f in files if f.endswith((".npz", ".pt", ".pth", ".ckpt", ".pkl")) or "ubyte" in f]
    assert not bad, f"data or weights must not be committed: {bad}"
