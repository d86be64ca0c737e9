"""The package's layout is a tower: the library never imports the course part, and no dlcourse module
imports itself back through a cycle. Old paths of moved chapter material stay gone.

Imports are read from the source (every ``import``, also inside functions), so a lazy import
cannot hide a dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import repo_paths

ROOT = repo_paths.ROOT
PACKAGE = ROOT / "dlcourse"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_modules(name: str, path: Path) -> set[str]:
    """The dlcourse modules that ``name`` imports (``from X import Y`` counts as X.Y when Y is a module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in MODULES else prefix
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == "dlcourse" or t.startswith("dlcourse."))
    return found


GRAPH = {name: imported_modules(name, path) for name, path in MODULES.items()}


def test_the_module_list_is_what_we_think():
    assert "dlcourse.train" in GRAPH and "dlcourse.nn.linear" in GRAPH and "dlcourse.course.widget" in GRAPH
    assert "dlcourse.nn.init" in GRAPH["dlcourse.nn.linear"]  # relative imports resolve
    assert "dlcourse.train" in GRAPH["dlcourse.course.ch03_optimizers.toy_training"]


def test_every_import_names_a_module_that_exists():
    missing = {m: sorted(t for t in targets if t not in MODULES) for m, targets in GRAPH.items()}
    assert not {m: t for m, t in missing.items() if t}, missing


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("dlcourse.course")))
def test_the_library_never_imports_the_course_part(name):
    course = sorted(t for t in GRAPH[name] if t == "dlcourse.course" or t.startswith("dlcourse.course."))
    assert not course, f"{name} (library) imports the course part: {course}"


def test_no_import_cycles():
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in GRAPH:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in GRAPH[v]:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles among dlcourse modules: {cycles}"


@pytest.mark.parametrize("old", ["dlcourse/gan.py", "dlcourse/mnist_models.py", "dlcourse/optim/surfaces.py",
                                 "dlcourse/optim/toy_training.py"])
def test_moved_chapter_material_is_gone_from_its_old_path(old):
    assert not (ROOT / old).exists(), f"{old} is chapter material: it lives in dlcourse/course/chNN_topic/"


def test_every_chapter_notebook_has_its_course_folder():
    """Notebook NN_topic.ipynb finds its helpers in dlcourse/course/chNN_topic/ (where it has any)."""
    folders = {p.name for p in (PACKAGE / "course").iterdir() if p.is_dir() and p.name.startswith("ch")}
    for folder in folders:
        assert (ROOT / "notebooks" / f"{folder[2:]}.ipynb").exists(), f"course/{folder} has no notebook"
