"""The package's layout is a tower: the library never imports the course part, and no dlcourse module
imports itself back through a cycle. Old paths of moved chapter material stay gone. Every test file lives
in its home: tests/library/<subpackage>/, tests/course/<chapter folder>/ or tests/repo/.

Imports are read from the source (every ``import``, also inside functions, and every
``importlib.import_module("...")`` / ``__import__("...")`` of a literal name), so a lazy import cannot hide a
dependency. (A name computed at run time cannot be read: ``dlcourse.course.checker`` loads a chapter that way, by
design, and no chapter's name is written in it.)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import repo_paths

ROOT = repo_paths.ROOT
PACKAGE = ROOT / "dlcourse"


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules(package: Path) -> dict[str, Path]:
    """Module name -> file, for every module of the package in folder ``package``."""
    return {module_name(p, package.parent): p for p in sorted(package.rglob("*.py"))}


MODULES = package_modules(PACKAGE)


def _dynamic_import(node: ast.AST) -> str | None:
    """The module that ``importlib.import_module("x")``, ``import_module("x")`` or ``__import__("x")`` names
    (a relative name resolved against a literal ``package=`` argument), else None."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    first = node.args[0]
    if called not in ("import_module", "__import__") or not isinstance(first, ast.Constant) \
            or not isinstance(first.value, str):
        return None
    target = first.value
    if called == "import_module" and target.startswith("."):
        package = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "package"),
                                                               None)
        if not isinstance(package, ast.Constant) or not isinstance(package.value, str):
            return None
        base = package.value.split(".")
        level = len(target) - len(target.lstrip("."))
        base = base[:len(base) - (level - 1)]
        target = ".".join(base + ([target.lstrip(".")] if target.lstrip(".") else []))
    return target


def imported_modules(name: str, path: Path, modules: dict[str, Path] | None = None, top: str = "dlcourse") -> set[str]:
    """The modules of package ``top`` that ``name`` imports (``from X import Y`` counts as X.Y when Y is a module)."""
    modules = MODULES if modules is None else modules
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        dynamic = _dynamic_import(node)
        if dynamic is not None:
            targets = [dynamic]
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" if f"{prefix}.{alias.name}" in modules else prefix
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t == top or t.startswith(top + "."))
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    modules = package_modules(package)
    return {name: imported_modules(name, path, modules, package.name) for name, path in modules.items()}


GRAPH = import_graph(PACKAGE)


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


def course_imports(path: Path) -> list[str]:
    """The modules of dlcourse.course that the script ``path`` imports (also lazily, inside functions)."""
    found = imported_modules(path.stem, path)
    return sorted(t for t in found if t == "dlcourse.course" or t.startswith("dlcourse.course."))


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks").rglob("*.py")), ids=lambda p: p.name)
def test_benchmarks_import_the_library_only(path):
    """A benchmark measures the library, never a chapter (chapter 7's recipes are dlcourse.recipes for that)."""
    assert not course_imports(path), f"benchmarks/{path.name} imports the course part: {course_imports(path)}"


def test_a_benchmark_importing_a_chapter_is_reported(tmp_path):
    bench = tmp_path / "bench_x.py"
    bench.write_text("def worker():\n    from dlcourse.course.ch07_mnist_project import exercises\n"
                     "    return exercises\n")
    assert course_imports(bench) == ["dlcourse.course.ch07_mnist_project.exercises"]
    bench.write_text("from dlcourse import recipes\n")
    assert course_imports(bench) == []


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or through others (each group sorted)."""
    index, low, on_stack, stack, cycles = {}, {}, set(), [], []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in graph:
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
            if len(component) > 1 or v in graph[v]:
                cycles.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return cycles


def test_no_import_cycles():
    cycles = import_cycles(GRAPH)
    assert not cycles, f"import cycles among dlcourse modules: {cycles}"


@pytest.mark.parametrize("lazy_import", [
    'importlib.import_module("toypkg.b")',
    'importlib.import_module(".b", package="toypkg")',
    'importlib.import_module(".b", "toypkg")',
    '__import__("toypkg.b")',
])
def test_a_cycle_through_a_lazy_import_is_reported(tmp_path, lazy_import):
    """The hidden cycle of issue 21 (the checker imported the chapters with importlib, the chapters the checker)."""
    package = tmp_path / "toypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text(f"import importlib\n\n\ndef load():\n    return {lazy_import}\n")
    (package / "b.py").write_text("from .a import load\n")
    graph = import_graph(package)
    assert graph["toypkg.a"] == {"toypkg.b"} and graph["toypkg.b"] == {"toypkg.a"}
    assert import_cycles(graph) == [["toypkg.a", "toypkg.b"]]
    (package / "b.py").write_text("X = 1\n")
    assert not import_cycles(import_graph(package))


def test_the_checker_imports_no_chapter():
    """The framework finds a chapter from a step's name at run time; it names none in its imports."""
    chapters = sorted(t for t in GRAPH["dlcourse.course.checker"] if t.startswith("dlcourse.course.ch"))
    assert not chapters, chapters
    assert "dlcourse.course.checker" in GRAPH["dlcourse.course.ch01_neurons.exercises"]


@pytest.mark.parametrize("old", ["dlcourse/gan.py", "dlcourse/mnist_models.py", "dlcourse/optim/surfaces.py",
                                 "dlcourse/optim/toy_training.py"])
def test_moved_chapter_material_is_gone_from_its_old_path(old):
    assert not (ROOT / old).exists(), f"{old} is chapter material: it lives in dlcourse/course/chNN_topic/"


def test_every_chapter_notebook_has_its_course_folder():
    """Notebook NN_topic.ipynb finds its helpers in dlcourse/course/chNN_topic/ (where it has any)."""
    folders = {p.name for p in (PACKAGE / "course").iterdir() if p.is_dir() and p.name.startswith("ch")}
    for folder in folders:
        assert (ROOT / "notebooks" / f"{folder[2:]}.ipynb").exists(), f"course/{folder} has no notebook"


# -- tests by home: a maintainer finds the test of anything by its path ------------------------------------------------

TEST_HOMES = ("library", "course", "repo")


def misplaced_tests(test_files: list[str], chapters: set[str], subpackages: set[str]) -> list[str]:
    """The test files (paths relative to tests/) that break the layout rule, each with the reason.

    Every test file lives under tests/library (the package: tests/library/<sub>/ for the subpackage dlcourse/<sub>),
    tests/course (the checker; tests/course/chNN_topic/ for the chapter folder dlcourse/course/chNN_topic) or
    tests/repo (the repository: layout, hygiene, book, binder).
    """
    wrong = []
    for rel in test_files:
        parts = Path(rel).parts
        if len(parts) < 2 or parts[0] not in TEST_HOMES:
            wrong.append(f"{rel}: not under tests/{{{','.join(TEST_HOMES)}}}")
        elif parts[0] == "course" and len(parts) > 2 and parts[1] not in chapters:
            wrong.append(f"{rel}: tests/course/{parts[1]}/ names no chapter folder of dlcourse/course")
        elif parts[0] == "library" and len(parts) > 2 and parts[1] not in subpackages:
            wrong.append(f"{rel}: tests/library/{parts[1]}/ names no subpackage of dlcourse")
        elif parts[0] == "repo" and len(parts) > 2:
            wrong.append(f"{rel}: tests/repo/ has no subfolders")
    return wrong


def _folders_with_init(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}


CHAPTERS = {name for name in _folders_with_init(PACKAGE / "course") if name.startswith("ch")}
SUBPACKAGES = _folders_with_init(PACKAGE)
TEST_FILES = sorted(str(p.relative_to(ROOT / "tests")) for p in (ROOT / "tests").rglob("test_*.py"))


def test_every_test_file_lives_in_its_home():
    assert len(TEST_FILES) > 40 and len(CHAPTERS) == 8 and {"nn", "optim", "data", "course"} <= SUBPACKAGES
    assert not misplaced_tests(TEST_FILES, CHAPTERS, SUBPACKAGES)


def test_each_chapter_folder_of_the_course_has_its_tests():
    tested = {Path(rel).parts[1] for rel in TEST_FILES if rel.startswith("course/") and len(Path(rel).parts) > 2}
    assert tested == CHAPTERS, f"chapters without tests/course/<chapter>/: {sorted(CHAPTERS - tested)}"


@pytest.mark.parametrize("rel, reason", [
    ("test_loose.py", "not under tests/"),
    ("nn/test_linear.py", "not under tests/"),
    ("course/ch09_diffusion/test_x.py", "names no chapter folder"),
    ("course/ch04_cnn_and_rnn/test_x.py", "names no chapter folder"),
    ("library/autograd/test_x.py", "names no subpackage"),
    ("repo/book/test_x.py", "no subfolders"),
])
def test_the_layout_rule_reports_a_misplaced_test(rel, reason):
    ok = ["library/test_train.py", "library/nn/test_conv.py", "course/test_checker.py", "course/ch04_cnn/test_x.py",
          "repo/test_layout.py"]
    assert not misplaced_tests(ok, {"ch04_cnn"}, {"nn"})
    [message] = misplaced_tests(ok + [rel], {"ch04_cnn"}, {"nn"})
    assert message.startswith(rel) and reason in message
