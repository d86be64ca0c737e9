"""The exercise framework, dlcourse/course/checker.py (check / hint / solution / reference / use), and every
chapter's build-it steps.

- the checker imports no chapter: a step's name loads its own chapter, when first looked up;

- every reference passes its checker and every registered typical wrong answer fails;
- check says what is wrong without printing the expected values; hints come one level at a time and the first
  one is not the answer; solution prints the reference's source, and no notebook calls it;
- use() returns the learner's function when it passes, else the reference with a notice;
- returns of None, `...` and torch tensors are handled;
- each chapter notebook has at least three build-it cells (tag `exercise`) whose functions later go through use(),
  and at most one inspect.getsource printout; the untouched stubs of chapters 1-3 fail their checks and say why.
"""

import ast
import inspect
import linecache
import math
import re
import subprocess
import sys
import threading
import time

import nbformat
import numpy as np
import pytest
import repo_paths
import torch

from dlcourse.course import checker
from dlcourse.course.ch02_backprop import engine
from dlcourse.course.checker import REGISTRY, check, hint, reference, solution, use

NOTEBOOKS = repo_paths.ROOT / "notebooks"
CHAPTERS = sorted(NOTEBOOKS.glob("0[1-7]_*.ipynb"))


def _code_cells(path):
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


def _expected_numbers(name):
    """Every number the reference returns on the hidden cases, as floats."""
    ex = REGISTRY[name]
    values = []

    def collect(v):
        if isinstance(v, (tuple, list)):
            for item in v:
                collect(item)
            return
        arr = np.asarray(checker._to_plain(v))
        if arr.dtype != object and (np.issubdtype(arr.dtype, np.number)):
            values.extend(float(a) for a in arr.ravel())

    for args in ex.cases():
        collect(ex.reference(*checker._copy_args(args)))
    return values


def _spellings(value):
    """How a number could appear in printed text, for values specific enough that a match is not a coincidence."""
    if not math.isfinite(value) or value == int(value):
        return set()
    forms = {repr(value), f"{value:.6g}", f"{value:.5g}", f"{value:.4g}", f"{value:.4f}"}
    return {f for f in forms if len(f.lstrip("-").replace(".", "").lstrip("0")) >= 3}


# ---- references and typical wrong answers ----

def test_exercises_exist_for_early_chapters():
    for chapter in ("ch1.", "ch2.", "ch3."):
        assert sum(k.startswith(chapter) for k in REGISTRY) >= 5, chapter


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_reference_passes(name, capsys):
    assert check(name, reference(name))
    assert "✓" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_typical_wrong_answer_fails_with_a_hint(name, capsys):
    ex = REGISTRY[name]
    assert ex.wrong is not None, f"{name} needs a typical wrong answer (wrong=...) to prove its checker can fail"
    assert not check(name, ex.wrong)
    out = capsys.readouterr().out
    assert "✗" in out and "hint(" in out


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_check_never_prints_the_expected_values(name, capsys):
    ex = REGISTRY[name]
    check(name, ex.wrong)
    out = capsys.readouterr().out
    leaked = [s for v in _expected_numbers(name) for s in _spellings(v) if s in out]
    assert not leaked, f"check printed expected value(s) {leaked[:3]}: {out}"


# ---- hints and solutions ----

@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_hints_come_one_level_at_a_time(name, capsys):
    ex = REGISTRY[name]
    assert 2 <= len(ex.hints) <= 4, f"{name}: expected 2-4 hint levels (gentle to specific), got {len(ex.hints)}"
    saved = ex.hints_shown
    ex.hints_shown = 0
    try:
        for level in range(1, len(ex.hints) + 1):
            hint(name)
            out = capsys.readouterr().out
            assert f"Hint {level} of {len(ex.hints)}" in out and ex.hints[level - 1] in out
            assert all(h not in out for h in ex.hints[level:]), "a later hint was shown too early"
            assert "solution(" not in out
        hint(name)  # past the last level: everything again, and where the solution is
        out = capsys.readouterr().out
        assert all(h in out for h in ex.hints) and "solution(" in out
    finally:
        ex.hints_shown = saved


def _return_expressions(fn):
    """The source of every `return` expression of a reference function (empty for classes and probes)."""
    try:
        tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        return []
    return [ast.unparse(node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Return) and node.value is not None]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_first_hint_is_not_the_answer(name):
    first = re.sub(r"\s+", "", REGISTRY[name].hints[0])
    for expr in _return_expressions(reference(name)):
        compact = re.sub(r"\s+", "", expr)
        assert len(compact) < 8 or compact not in first, f"{name}: hint 1 contains the answer {expr!r}"


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_solution_prints_the_reference_source(name, capsys):
    solution(name)
    out = capsys.readouterr().out
    assert re.search(r"^\s*(def|class) \w+", out, re.M), out[:200]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_no_notebook_calls_solution(path):
    calls = [c.source for c in _code_cells(path) if re.search(r"\bsolution\s*\(", c.source)]
    assert not calls, f"{path.name} calls solution(): {calls[0][:200]}"


# ---- use(): the learner's function or the reference ----

def test_use_returns_the_learners_function_when_it_passes(capsys):
    def mine(x, w, b):
        return 1 / (1 + np.exp(-(x @ w + b)))

    assert use("ch1.neuron_forward", mine) is mine
    assert "using your ch1.neuron_forward" in capsys.readouterr().out


def test_use_falls_back_to_the_reference_with_a_notice(capsys):
    def mine(x, w, b):
        return ...  # an untouched stub

    got = use("ch1.neuron_forward", mine)
    out = capsys.readouterr().out
    assert got is reference("ch1.neuron_forward")
    assert "course's reference" in out and out.count("\n") == 1


def test_use_with_the_engine_probe_hands_back_the_class(capsys):
    class Broken(engine.Value):
        def exp(self):  # forgets to set _backward: the gradient stops at exp
            return engine.Value(math.exp(self.data), (self,), "exp")

    assert use("ch2.value_backward", engine.graph_probe(Broken)).Value is engine.Value
    assert use("ch2.value_backward", engine.graph_probe(engine.Value)).Value is engine.Value
    out = capsys.readouterr().out
    assert "course's reference" in out and "using your" in out


# ---- what learners return ----

def test_returning_none_is_explained(capsys):
    assert not check("ch1.sigmoid_grad", lambda z: None)
    assert "returned None" in capsys.readouterr().out


def test_returning_ellipsis_is_explained(capsys):
    assert not check("ch1.sigmoid_grad", lambda z: ...)
    assert "`...`" in capsys.readouterr().out
    assert not check("ch2.linear_backward", lambda x, W, g: (g @ W, ..., ...))
    assert "`...`" in capsys.readouterr().out


def test_arithmetic_on_ellipsis_is_explained(capsys):
    def stub(z):
        s = ...  # your code
        return s * (1 - s)

    assert not check("ch1.sigmoid_grad", stub)
    out = capsys.readouterr().out
    assert "`...` still in your code" in out or "`...  # your code` line is still in your function" in out


def test_a_placeholder_line_left_in_is_named(capsys):
    """A stub that runs (its loop body is only `...`) fails by its values; the check also names the `...` line."""
    def stub(z):
        out = np.zeros_like(z)
        for _ in range(len(z)):
            ...  # your code
        return out

    assert not check("ch1.sigmoid_grad", stub)
    out = capsys.readouterr().out
    assert "differ" in out and "`...  # your code` line is still in your function" in out

    def finished_but_wrong(z):
        return np.zeros_like(z)  # no placeholder: no note

    assert not check("ch1.sigmoid_grad", finished_but_wrong)
    assert "still in your function" not in capsys.readouterr().out


def test_torch_tensors_are_accepted(capsys):
    def with_torch(z):
        s = torch.sigmoid(torch.as_tensor(z).requires_grad_())
        return s * (1 - s)

    assert check("ch1.sigmoid_grad", with_torch)
    assert check("ch2.linear_backward", lambda x, W, g: tuple(torch.from_numpy(a) for a in reference(
        "ch2.linear_backward")(x, W, g)))


def test_wrong_shape_and_tuple_length_are_explained(capsys):
    assert not check("ch2.linear_backward", lambda x, W, g: (g @ W, g.T @ x))
    assert "expected 3 return value(s), got 2" in capsys.readouterr().out
    assert not check("ch2.linear_backward", lambda x, W, g: (g @ W, x.T @ g, g.sum(axis=0)))
    assert "expected shape" in capsys.readouterr().out


def test_unimplemented_stub_says_so(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not check(sorted(REGISTRY)[0], stub)
    assert "not implemented yet" in capsys.readouterr().out


def test_unknown_exercise_is_a_value_error():
    with pytest.raises(ValueError, match="unknown exercise"):
        check("ch0.nothing", print)


def test_check_needs_a_function():
    with pytest.raises(TypeError, match="expected a function"):
        check("ch1.sigmoid_grad", 3.0)


def test_a_case_with_a_label_is_named(capsys):
    def value_ops(op, a, b):
        got = reference("ch2.value_ops")(op, a, b)
        return (got[0], got[1] + (op == "tanh"), got[2])  # wrong only for tanh

    assert not check("ch2.value_ops", value_ops)
    assert "'tanh'" in capsys.readouterr().out


# ---- the notebooks: build-it cells, use(), one getsource ----

def _defined_names(source):
    tree = ast.parse(source)
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def _names_passed_to_use(source):
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "use":
            for arg in node.args[1:]:
                names |= {n.id for n in ast.walk(arg) if isinstance(n, ast.Name)}
    return names


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_each_chapter_has_build_it_steps_used_later(path):
    cells = _code_cells(path)
    used_build_its = []
    for i, cell in enumerate(cells):
        if "exercise" not in cell.metadata.get("tags", []):
            continue
        later_uses = set().union(*(_names_passed_to_use(c.source) for c in cells[i + 1:]))
        if _defined_names(cell.source) & later_uses:
            used_build_its.append(sorted(_defined_names(cell.source)))
    assert len(used_build_its) >= 3, (f"{path.name}: expected at least 3 build-it cells (tag 'exercise') whose "
                                      f"function is later passed to use(), found {used_build_its}")


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_at_most_one_getsource_printout(path):
    count = sum(c.source.count("getsource(") for c in _code_cells(path))
    assert count <= 1, f"{path.name}: {count} inspect.getsource printouts (at most one)"


def _check_calls(source):
    return [(node.args[0].value, node.args[1]) for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check"]


def _definitions(source: str, methods: bool = False) -> ast.Module:
    """The imports, functions, classes and CONSTANTS a cell defines, without the statements that run anything."""
    try:
        body = ast.parse(source).body
    except SyntaxError:  # IPython magics
        body = []

    def defines(node) -> bool:
        if isinstance(node, ast.Assign):  # a constant, or (methods) one attached to a class: Value.backward = ...
            return all(isinstance(t, ast.Name) and t.id.isupper() and len(t.id) > 1
                       or methods and isinstance(t, ast.Attribute) for t in node.targets)
        return isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef))

    return ast.Module([node for node in body if defines(node)], [])


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_untouched_stubs_fail_their_check_and_say_why(path, capsys):
    """Define each build-it step of chapters 1-7 as shipped (with the imports, helper functions and constants of
    the cells before it; only definitions run, so no set-up such as thread limits leaks into the tests), then run
    its check: it must fail and say that the code is unfinished (not crash, not pass)."""
    from dlcourse import optim

    namespace = {"np": np, "math": math, "engine": engine, "optim": optim, "check": check}
    cells = _code_cells(path)
    checked = 0
    for i, cell in enumerate(cells):
        filename = f"{path.name}[{i}]"
        linecache.cache[filename] = (len(cell.source), None, cell.source.splitlines(True), filename)  # as IPython
        is_step = "exercise" in cell.metadata.get("tags", []) and "# your code" in cell.source
        exec(compile(_definitions(cell.source, methods=is_step), filename, "exec"), namespace)
        if not is_step:
            continue
        capsys.readouterr()
        calls = _check_calls(cell.source) or _check_calls(cells[i + 1].source if i + 1 < len(cells) else "")
        for name, arg in calls:
            fn = eval(compile(ast.Expression(arg), "check-arg", "eval"), namespace)
            assert not check(name, fn), f"{path.name}: the stub of {name} passes as shipped"
            out = capsys.readouterr().out
            assert any(s in out for s in ("`...`", "`...  # your code`", "not implemented")), out
            checked += 1
    assert checked >= 3


# ---- the checker cannot be fooled, and never crashes (issue 19, point 3) ----

def _toy_cases():
    rng = np.random.default_rng(19)
    return [(rng.standard_normal((3, 4)), rng.standard_normal((4, 2))), (rng.standard_normal((1, 2)) * 50,
                                                                         rng.standard_normal((2, 5)))]


def _toy_backward(x, W):
    """A toy step with named return values: (y, dx, dW) of y = x @ W with an upstream gradient of ones."""
    y = x @ W
    dx = np.ones_like(y) @ W.T
    dW = x.T @ np.ones_like(y)
    return y, dx, dW


@pytest.fixture
def toy():
    """Register two throw-away exercises: "test.toy" (names from its return statement) and "test.toy_named"
    (names given with outputs=); removed afterwards."""
    hints = ["first", "second"]
    checker.exercise("test.toy", _toy_cases, hints=hints)(_toy_backward)
    checker.exercise("test.toy_named", _toy_cases, hints=hints, outputs=("out", "grad_x", "grad_W"))(_toy_backward)
    yield "test.toy"
    for name in ("test.toy", "test.toy_named"):
        REGISTRY.pop(name, None)


def _fails_with(name, fn, capsys, *needles):
    assert not check(name, fn)
    out = capsys.readouterr().out
    assert out.startswith("✗") and all(n in out for n in needles), out
    return out


def test_complex_results_are_refused(capsys):
    sg = reference("ch1.sigmoid_grad")
    _fails_with("ch1.sigmoid_grad", lambda z: sg(z) + 0j, capsys, "complex")       # zero imaginary part too
    _fails_with("ch1.sigmoid_grad", lambda z: list(sg(z) + 0j), capsys, "complex")
    _fails_with("ch1.sigmoid_grad", lambda z: torch.from_numpy(sg(z)).to(torch.complex64), capsys, "complex")
    _fails_with("ch2.bce", lambda *a: complex(reference("ch2.bce")(*a)), capsys, "complex")


def test_strings_are_refused(capsys):
    bce = reference("ch2.bce")
    _fails_with("ch2.bce", lambda *a: str(bce(*a)), capsys, "string")
    _fails_with("ch2.bce", lambda *a: repr(bce(*a)).encode(), capsys, "string")
    _fails_with("ch1.sigmoid_grad", lambda z: [str(v) for v in reference("ch1.sigmoid_grad")(z)], capsys, "string")


def test_writing_into_an_input_is_refused_and_named(capsys):
    def softmax(z):
        z -= z.max(axis=1, keepdims=True)  # right values, but the caller's array changes
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    _fails_with("ch1.softmax", softmax, capsys, "changed its input `z` in place")
    _fails_with("ch1.softmax", lambda *args: softmax(*args), capsys, "changed its input argument 1 in place")

    def softmax_copy(z):
        return softmax(z.copy())

    assert check("ch1.softmax", softmax_copy)


def test_a_function_that_never_returns_is_stopped_with_the_case_and_limit(capsys, monkeypatch):
    monkeypatch.setattr(REGISTRY["ch1.sigmoid_grad"], "time_limit", 0.3)

    def forever(z):
        while True:
            try:
                z = z + 1
            except Exception:  # the learner's own except does not swallow the time limit
                pass

    start = time.perf_counter()
    _fails_with("ch1.sigmoid_grad", forever, capsys, "case 1 of", "time limit of 0.3 s")
    assert time.perf_counter() - start < 5


def test_the_time_limit_also_holds_outside_the_main_thread(monkeypatch):
    monkeypatch.setattr(REGISTRY["ch1.sigmoid_grad"], "time_limit", 0.3)
    results = []

    def forever(z):
        while True:
            z = z + 1

    worker = threading.Thread(target=lambda: results.append(checker._run("ch1.sigmoid_grad", forever)))
    worker.start()
    worker.join(10)
    assert not worker.is_alive() and results and "time limit of 0.3 s" in results[0], results


def test_the_default_time_limit_is_stated_and_generous():
    assert checker.TIME_LIMIT >= 5 and checker.TIME_LIMIT_FACTOR >= 10
    assert "TIME_LIMIT" in checker.__doc__


def test_exit_is_reported_and_keyboard_interrupt_still_stops(capsys):
    _fails_with("ch1.sigmoid_grad", lambda z: sys.exit(3), capsys, "case 1 of", "SystemExit")
    _fails_with("ch1.sigmoid_grad", lambda z: exit(), capsys, "SystemExit")

    def escape(z):
        raise GeneratorExit

    _fails_with("ch1.sigmoid_grad", escape, capsys, "GeneratorExit")

    def interrupted(z):
        raise KeyboardInterrupt  # the notebook's stop button must stop the check

    with pytest.raises(KeyboardInterrupt):
        check("ch1.sigmoid_grad", interrupted)


def _in_float32(value):
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        return value.astype(np.float32)
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_in_float32(v) for v in value)
    return value


# Cases that float32 cannot answer to the default float32 tolerance: a batch of near-equal values (its variance is a
# difference of nearly equal numbers), scores in the thousands (float32's rounding of a score alone moves a softmax
# weight by ~1e-4); their chapters may set exercise(..., atol32=...).
ILL_CONDITIONED_IN_FLOAT32 = {"ch4.batchnorm_backward", "ch4.batchnorm_backward_graph", "ch8.layer_norm",
                              "ch8.attention_forward"}


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_float32_answers_pass(name):
    """The reference computed in float32 from float32 inputs, its results float32 (as a learner working in torch's
    default dtype returns them) passes; before the float32 tolerance, 13 exercises refused it with "differ ... by up
    to 0%"."""
    ref = reference(name)
    problem = checker._run(name, lambda *args: _in_float32(ref(*_in_float32(list(args)))))
    if name in ILL_CONDITIONED_IN_FLOAT32:
        assert problem is None or "float32 answers may differ by" in problem, problem
    else:
        assert problem is None, problem


def test_float32_tolerance_is_stated_and_still_rejects_a_wrong_answer(capsys):
    sg = reference("ch1.sigmoid_grad")
    assert check("ch1.sigmoid_grad", lambda z: torch.from_numpy(sg(z)).float())
    capsys.readouterr()
    out = _fails_with("ch1.sigmoid_grad", lambda z: (sg(z) * 1.002).astype(np.float32), capsys,
                      "float32 answers may differ by 0.0001 x |reference|")
    assert "0.002 of the reference's largest magnitude" in out
    _fails_with("ch1.sigmoid_grad", lambda z: sg(z) * (1 + 3e-5), capsys, "allowed: 1e-06 x |reference| + 1e-09",
                "by up to 3e-05 of")  # two significant digits, never "0%"


def test_lists_are_accepted_where_a_tuple_is_expected(capsys, toy):
    assert check(toy, lambda x, W: list(_toy_backward(x, W)))
    assert check("ch2.linear_backward", lambda *a: list(reference("ch2.linear_backward")(*a)))


def test_messages_name_the_output(capsys, toy):
    def wrong_dW(x, W):
        y, dx, dW = _toy_backward(x, W)
        return y, dx, dW * 2

    _fails_with(toy, wrong_dW, capsys, "`dW` (return value 3 of 3)", "allowed:")
    _fails_with("test.toy_named", wrong_dW, capsys, "`grad_W` (return value 3 of 3)")


@pytest.mark.parametrize("dtype", ["bfloat16", "float16", "float32", "float64", "int64", "bool", "complex64"])
def test_any_torch_dtype_never_crashes_check(dtype, capsys):
    sg = reference("ch1.sigmoid_grad")
    got = check("ch1.sigmoid_grad", lambda z: torch.from_numpy(sg(z)).to(getattr(torch, dtype)))
    out = capsys.readouterr().out
    assert got == (dtype in ("float32", "float64")), out
    if dtype in ("bfloat16", "float16"):
        assert dtype in out and "float32 or float64" in out


class _Opaque:
    pass


WEIRD_RETURNS = {
    "object": lambda: _Opaque(), "dict": lambda: {"a": 1.0}, "generator": lambda: (v for v in [1.0, 2.0]),
    "map": lambda: map(float, [1, 2]), "ragged": lambda: [[1.0, 2.0], [3.0]], "set": lambda: {1.0},
    "function": lambda: print, "exception": lambda: ValueError("x"), "nested-dict": lambda: [{"a": 1}],
    "objects-in-list": lambda: [_Opaque(), 1.0], "nan": lambda: float("nan"), "empty": lambda: [],
    "bytes-array": lambda: np.array([b"a"]), "type": lambda: int, "tuple-of-dicts": lambda: ({}, {}, {}),
    "value": lambda: engine.Value(1.0), "huge-int": lambda: 10 ** 400,
}


@pytest.mark.parametrize("what", sorted(WEIRD_RETURNS))
@pytest.mark.parametrize("name", ["ch1.sigmoid_grad", "ch2.bce", "ch2.linear_backward", "ch8.causal_mask"])
def test_check_never_crashes_on_what_a_learner_returns(name, what, capsys):
    assert not check(name, lambda *args: WEIRD_RETURNS[what]())
    assert capsys.readouterr().out.startswith("✗")


def test_a_float_mask_is_not_a_boolean_mask(capsys):
    mask = reference("ch8.causal_mask")
    _fails_with("ch8.causal_mask", lambda *a: mask(*a).astype(float), capsys, "booleans")


def test_the_old_hint_property_is_gone():
    """Exercise.hint ("kept for old callers") had no callers; hints live in Exercise.hints."""
    assert not hasattr(checker.Exercise, "hint")


def test_an_exception_that_cannot_be_printed_is_still_reported(capsys):
    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    def raises(z):
        raise Unprintable

    _fails_with("ch1.sigmoid_grad", raises, capsys, "raised Unprintable")


@pytest.mark.parametrize("mode", ["autograde", "validate"])
def test_under_nbgrader_a_failing_check_raises_and_a_passing_one_does_not(mode, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_EXECUTION", mode)
    assert check("ch1.relu_grad", reference("ch1.relu_grad"))
    with pytest.raises(AssertionError, match="ch1.relu_grad"):
        check("ch1.relu_grad", REGISTRY["ch1.relu_grad"].wrong)
    assert "✗ ch1.relu_grad" in capsys.readouterr().out  # the verdict is printed before it raises


def test_outside_nbgrader_a_failing_check_only_prints(monkeypatch, capsys):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert check("ch1.relu_grad", REGISTRY["ch1.relu_grad"].wrong) is False


# ---- the checker loads a chapter only when one of its steps is looked up ----

LAZY_PROBE = """
import re
import sys
from dlcourse.course import checker

def chapters():
    return sorted(m.split(".")[2] for m in sys.modules if re.fullmatch(r"dlcourse[.]course[.]ch[0-9]+_[a-z_]+", m))

print(chapters())
checker.check("ch1.relu_grad", checker.reference("ch1.relu_grad"))
checker.hint("ch1.relu_grad")
print(chapters(), "torch" in sys.modules)
checker.REGISTRY["ch8.causal_mask"]
print(chapters())
try:
    checker.check("ch9.nope", print)
except ValueError as err:
    print("ValueError", "ch7.train_epoch" in str(err))
print(len(chapters()))
"""


def test_a_step_loads_its_own_chapter_only_and_an_unknown_name_lists_every_step():
    env = {**__import__("os").environ, "DLCOURSE_PROGRESS": "off"}
    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, env=env, timeout=120,
                         cwd=repo_paths.ROOT, check=True).stdout.splitlines()
    assert out[0] == "[]", "importing the checker imported a chapter"
    assert out[1].startswith("✓ ch1.relu_grad") and out[2].startswith("Hint 1 of")
    assert out[3] == "['ch01_neurons'] False", "check in chapter 1 loaded another chapter (or torch)"
    assert out[4] == "['ch01_neurons', 'ch08_attention']"
    assert out[5:] == ["ValueError True", str(len(checker.chapter_modules()))]


def test_chapter_modules_are_found_by_folder_number():
    folders = sorted(p.name for p in (repo_paths.ROOT / "dlcourse" / "course").glob("ch[0-9][0-9]_*") if p.is_dir())
    assert checker.chapter_modules() == {int(f[2:4]): f"dlcourse.course.{f}.exercises" for f in folders}
    assert len(folders) == 8


def test_an_unknown_step_is_a_value_error_naming_every_step():
    with pytest.raises(ValueError, match=r"unknown exercise 'ch1\.nope'; expected one of \['ch1\..*'ch8\."):
        check("ch1.nope", print)
    with pytest.raises(ValueError, match="unknown exercise 'linear_backward'"):
        hint("linear_backward")
    assert "ch1.nope" not in REGISTRY and "ch99.x" not in REGISTRY and "test.x" not in REGISTRY


def test_hints_are_a_keyword_and_at_least_one_is_required():
    with pytest.raises(TypeError):
        checker.exercise("test.positional", lambda: [], "a hint")
    with pytest.raises(ValueError, match="expected at least one hint"):
        checker.exercise("test.none", lambda: [], hints=[])
    assert "test.positional" not in REGISTRY and "test.none" not in REGISTRY
