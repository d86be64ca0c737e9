"""Chapter 2's build-it steps as a learner meets them.

The notebook's own stubs, filled in as a learner would (not the course's reference), pass their checks, `use` hands
them back, and the capstone MLP trains on them loss for loss like the same network in PyTorch. Typical mistakes of
each step get a ✗: the ones the old cases let through (a dropped ``* out.grad``, ``=`` for ``+=``, a missing number ->
Value conversion, a softmax without a per-row shift at logits of 1000, a training step that never zeroes ``.grad``).
"""

import inspect
import math
import random
import re
import textwrap

import nbformat
import numpy as np
import pytest
import repo_paths
import torch
import torch.nn.functional as TF

from dlcourse.course.ch02_backprop import engine, micro_mlp
from dlcourse.course.checker import check, reference, use
from dlcourse.data import make_spirals

NOTEBOOK = repo_paths.ROOT / "notebooks" / "02_backprop.ipynb"
PLACEHOLDER = re.compile(r"\.\.\.(:?)  # your code[^\n]*")  # "...:" in the header of a for loop


def _stub(first_line: str) -> str:
    """The source of the notebook's exercise cell that defines ``first_line`` (a ``def``/``class`` line)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    found = [c.source for c in nb.cells if "exercise" in c.metadata.get("tags", []) and first_line in c.source]
    assert len(found) == 1, f"expected one exercise cell with {first_line!r}, found {len(found)}"
    return found[0]


def _fill(source: str, answers: list[str]) -> str:
    """Replace the stub's ``...  # your code`` placeholders, in order, with ``answers``."""
    assert len(PLACEHOLDER.findall(source)) == len(answers), PLACEHOLDER.findall(source)
    it = iter(answers)
    return PLACEHOLDER.sub(lambda m: next(it) + m.group(1), source)


VALUE_ANSWERS = ["other.data * out.grad", "self.data * out.grad", "(1 - t ** 2) * out.grad",
                 "(out.data > 0) * out.grad", "out.data * out.grad"]
BACKWARD_ANSWERS = ["if node not in seen:\n            seen.add(node)\n            for parent in node._prev:\n"
                    "                visit(parent)\n            order.append(node)", "order[::-1]"]
MLP_ANSWERS = ["self.b + sum(w_i * x_i for w_i, x_i in zip(self.w, x))",
               "z.tanh() if self.nonlin else z", "[neuron(x) for neuron in self.neurons]",
               "[p for neuron in self.neurons for p in neuron.parameters()]", "layer(x)"]
STEP_ANSWERS = ["p.grad = 0.0", "sum(cross_entropy(model(x), label) for x, label in zip(X, y)) * (1.0 / len(X))",
                "loss.backward()", "p.data = p.data - lr * p.grad"]


@pytest.fixture(scope="module")
def learner():
    """The namespace of a learner who filled in every stub of chapter 2's engine and network."""
    ns = {"math": math, "random": random, "cross_entropy": micro_mlp.cross_entropy}
    exec(_fill(_stub("class Value:"), VALUE_ANSWERS), ns)
    exec(_fill(_stub("def backward(self):"), BACKWARD_ANSWERS), ns)
    exec(_fill(_stub("class Neuron:"), MLP_ANSWERS), ns)
    exec(_fill(_stub("def train_step(model, X, y, lr):"), STEP_ANSWERS), ns)
    return ns


def test_the_learners_engine_network_and_step_pass_and_are_used(learner, capsys):
    Value, MLP, step = learner["Value"], learner["MLP"], learner["train_step"]
    assert Value is not engine.Value and MLP is not micro_mlp.MLP
    assert check("ch2.value_ops", engine.op_probe(Value))
    assert check("ch2.value_backward", engine.graph_probe(Value))
    assert check("ch2.mlp", micro_mlp.mlp_probe(MLP))
    assert check("ch2.train_step", micro_mlp.train_step_probe(step))
    assert use("ch2.mlp", micro_mlp.mlp_probe(MLP)).MLP is MLP
    assert use("ch2.train_step", micro_mlp.train_step_probe(step)).train_step is step
    assert capsys.readouterr().out.count("using your") == 2


def _torch_twin(model):
    layers = []
    for k, layer in enumerate(model.layers):
        linear = torch.nn.Linear(len(layer.neurons[0].w), len(layer.neurons)).double()
        with torch.no_grad():
            linear.weight.copy_(torch.tensor([[w.data for w in n.w] for n in layer.neurons], dtype=torch.float64))
            linear.bias.copy_(torch.tensor([n.b.data for n in layer.neurons], dtype=torch.float64))
        layers += [linear] if k == len(model.layers) - 1 else [linear, torch.nn.Tanh()]
    return torch.nn.Sequential(*layers)


def test_the_capstone_trains_on_the_learners_code_like_pytorch(learner):
    """The notebook's quick setting, shortened: the learner's Value/MLP/train_step against PyTorch and against the
    course's reference classes, from the same starting weights."""
    X_sp, y_sp = make_spirals(60, 3, seed=0)
    X, y = X_sp[::5], y_sp[::5]
    runs = {}
    for who, MLP, step in [("learner", learner["MLP"], learner["train_step"]),
                           ("reference", micro_mlp.MLP, micro_mlp.train_step)]:
        random.seed(0)
        model = MLP(2, [8, 3])
        assert type(model.parameters()[0]) is (learner["Value"] if who == "learner" else engine.Value)
        twin = _torch_twin(model)
        runs[who] = [step(model, X.tolist(), y.tolist(), 1.0) for _ in range(20)]
    torch_losses = []
    for _ in range(20):
        loss = TF.cross_entropy(twin(torch.from_numpy(X)), torch.from_numpy(y))
        twin.zero_grad()
        loss.backward()
        with torch.no_grad():
            for p in twin.parameters():
                p -= 1.0 * p.grad
        torch_losses.append(loss.item())
    assert np.max(np.abs(np.array(runs["learner"]) - torch_losses)) < 1e-12
    assert np.max(np.abs(np.array(runs["learner"]) - runs["reference"])) < 1e-12
    assert runs["learner"][-1] < 0.9 * runs["learner"][0]


# ---- value_ops: the chain-rule slips that used to get a ✓ ----

def _value_mutant(*edits):
    """The course's Value with edits (old, new) of its source."""
    source = textwrap.dedent(inspect.getsource(engine.Value))
    for old, new in zip(edits[::2], edits[1::2]):
        assert old in source, old
        source = source.replace(old, new, 1)
    ns = {"math": math, "np": np}
    exec(source, ns)
    return ns["Value"]


VALUE_SLIPS = {
    "mul forgets out.grad": ("self.grad += other.data * out.grad", "self.grad += other.data"),
    "mul overwrites self.grad": ("self.grad += other.data * out.grad", "self.grad = other.data * out.grad"),
    "mul overwrites other.grad": ("other.grad += self.data * out.grad", "other.grad = self.data * out.grad"),
    "tanh forgets out.grad": ("(1 - t * t) * out.grad", "(1 - t * t)"),
    "relu forgets out.grad": ("(1.0 if self.data > 0 else 0.0) * out.grad", "(1.0 if self.data > 0 else 0.0)"),
    "relu slope 1 at 0": ("(1.0 if self.data > 0 else 0.0)", "(1.0 if self.data >= 0 else 0.0)"),
    "exp overwrites": ("self.grad += e * out.grad", "self.grad = e * out.grad"),
    "log overwrites": ("self.grad += out.grad / self.data", "self.grad = out.grad / self.data"),
    "add overwrites self.grad": ("self.grad += out.grad            # d(a + b)/da = 1", "self.grad = out.grad"),
    "add forgets the number -> Value conversion": (
        "other = other if isinstance(other, Value) else Value(other)\n        out = Value(self.data + other.data",
        "out = Value(self.data + other.data"),
    "mul forgets the number -> Value conversion": (
        "other = other if isinstance(other, Value) else Value(other)\n        out = Value(self.data * other.data",
        "out = Value(self.data * other.data"),
    "1 - a computed as a - 1": ("return (-self) + other", "return self - other"),
    "a / n computed as a * n": ("return self * (1.0 / number)", "return self * number"),
}


@pytest.mark.parametrize("slip", sorted(VALUE_SLIPS))
def test_value_ops_rejects_each_slip(slip):
    assert not check("ch2.value_ops", engine.op_probe(_value_mutant(*VALUE_SLIPS[slip])), verbose=False)


def test_relu_forgetting_out_grad_with_add_overwriting_fails_both_checks():
    """The old cases' worst survivor: d(relu(a) b)/da came out 1 instead of b, and both checks said ✓."""
    both = _value_mutant(*VALUE_SLIPS["relu forgets out.grad"], *VALUE_SLIPS["add overwrites self.grad"])
    a, b = both(2.0), both(3.0)
    (a.relu() * b).backward()
    assert a.grad == 1.0                          # instead of 3: the slip is real
    assert not check("ch2.value_ops", engine.op_probe(both), verbose=False)
    assert not check("ch2.value_backward", engine.graph_probe(both), verbose=False)


# ---- softmax_ce_grad: logits that really overflow ----

def _softmax_ce(shift):
    def grad(logits, labels):
        p = np.exp(logits - shift(logits))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(labels)), labels] -= 1
        return p / len(labels)
    return grad


@pytest.mark.parametrize("shift", [lambda z: 0.0, lambda z: z.max(), lambda z: z.mean(axis=1, keepdims=True),
                                   lambda z: z.min(axis=1, keepdims=True)],
                         ids=["no shift", "global max", "row mean", "row min"])
def test_softmax_ce_grad_needs_each_rows_own_max(shift):
    with np.errstate(all="ignore"):
        assert not check("ch2.softmax_ce_grad", _softmax_ce(shift), verbose=False)
    assert check("ch2.softmax_ce_grad", _softmax_ce(lambda z: z.max(axis=1, keepdims=True)), verbose=False)


# ---- the network and its training step ----

class _NoBias(micro_mlp.Neuron):
    def __call__(self, x):
        z = sum(w_i * x_i for w_i, x_i in zip(self.w, x))
        return z.tanh() if self.nonlin else z


def _mlp_with(neuron_cls=micro_mlp.Neuron, layer_parameters=None, last_tanh=False):
    class Layer(micro_mlp.Layer):
        def __init__(self, n_in, n_out, nonlin=True):
            self.neurons = [neuron_cls(n_in, nonlin or last_tanh) for _ in range(n_out)]

        def parameters(self):
            return layer_parameters(self) if layer_parameters else super().parameters()

    class MLP(micro_mlp.MLP):
        def __init__(self, n_in, n_outs):
            sizes = [n_in] + list(n_outs)
            self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i < len(n_outs) - 1) for i in range(len(n_outs))]
    return MLP


@pytest.mark.parametrize("mlp_cls", [
    _mlp_with(last_tanh=True), _mlp_with(neuron_cls=_NoBias),
    _mlp_with(layer_parameters=lambda layer: [w for n in layer.neurons for w in n.w]),
    _mlp_with(layer_parameters=lambda layer: [w for n in layer.neurons for w in n.w] + [n.b for n in layer.neurons]),
], ids=["tanh on the logits", "no bias", "parameters without the biases", "all weights, then all biases"])
def test_mlp_rejects_typical_mistakes(mlp_cls):
    assert check("ch2.mlp", micro_mlp.mlp_probe(_mlp_with()), verbose=False)
    assert not check("ch2.mlp", micro_mlp.mlp_probe(mlp_cls), verbose=False)


def _step(zero=True, mean=True, zero_after_backward=False, return_value=False):
    def step(model, X, y, lr):
        if zero:
            for p in model.parameters():
                p.grad = 0.0
        total = sum(micro_mlp.cross_entropy(model(x), label) for x, label in zip(X, y))
        loss = total / len(X) if mean else total
        loss.backward()
        if zero_after_backward:
            for p in model.parameters():
                p.grad = 0.0
        for p in model.parameters():
            p.data -= lr * p.grad
        return loss if return_value else loss.data
    return step


@pytest.mark.parametrize("kwargs", [dict(zero=False), dict(mean=False), dict(zero_after_backward=True)],
                         ids=["never zeroes .grad", "sum instead of mean", "zeroes after backward"])
def test_train_step_rejects_typical_mistakes(kwargs):
    assert check("ch2.train_step", micro_mlp.train_step_probe(_step()), verbose=False)
    assert not check("ch2.train_step", micro_mlp.train_step_probe(_step(**kwargs)), verbose=False)


def test_train_step_returning_the_value_is_explained(capsys):
    assert not check("ch2.train_step", micro_mlp.train_step_probe(_step(return_value=True)))
    assert "return loss.data" in capsys.readouterr().out


def test_a_changed_initialisation_is_named(capsys):
    class Wide(micro_mlp.Neuron):
        def __init__(self, n_in, nonlin=True):
            super().__init__(n_in, nonlin)
            self.w = [engine.Value(random.uniform(-1, 1)) for _ in range(n_in)]

    assert not check("ch2.mlp", micro_mlp.mlp_probe(_mlp_with(neuron_cls=Wide)))
    assert "uniform in [-1/sqrt(n_in), 1/sqrt(n_in)]" in capsys.readouterr().out


def test_the_probes_leave_pythons_random_state_alone():
    random.seed(5)
    expected = random.random()
    random.seed(5)
    check("ch2.mlp", reference("ch2.mlp"), verbose=False)
    assert random.random() == expected


def test_bce_refuses_a_string_that_reads_as_the_right_number(capsys):
    assert not check("ch2.bce", lambda p, y: str(reference("ch2.bce")(p, y)))
    assert "string" in capsys.readouterr().out
