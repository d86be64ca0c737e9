"""Parameter, Module, Sequential: names, state_dict both ways with torch, train/eval, zero_grad."""

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse import nn


def make_pair(dtype=np.float64):
    ours = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3))
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    return ours, theirs


def test_named_parameters_match_torch():
    ours, theirs = make_pair()
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (_, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert p.shape == tuple(q.shape)


def test_state_dict_torch_to_ours_and_back(rng):
    ours, theirs = make_pair()
    ours.load_state_dict(theirs.state_dict())
    for k, v in ours.state_dict().items():
        assert v.dtype == np.float32  # takes the incoming dtype
        np.testing.assert_array_equal(v, theirs.state_dict()[k].numpy())
    # ours -> torch: perturb ours, load into a fresh torch model, outputs must agree
    for p in ours.parameters():
        p.data = p.data + rng.standard_normal(p.shape).astype(p.data.dtype)
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3))
    fresh.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ours(x), fresh(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_load_state_dict_takes_float64():
    ours, theirs = make_pair()
    ours.load_state_dict(theirs.double().state_dict())
    assert all(p.dtype == np.float64 for p in ours.parameters())


def test_load_state_dict_errors_name_the_problem():
    ours, theirs = make_pair()
    sd = theirs.state_dict()
    sd["0.weight"] = torch.zeros(5, 4)
    with pytest.raises(ValueError, match=r"'0.weight' expected shape \(6, 4\), got \(5, 4\)"):
        ours.load_state_dict(sd)
    sd = theirs.state_dict()
    del sd["2.bias"]
    with pytest.raises(ValueError, match="missing.*2.bias"):
        ours.load_state_dict(sd)


def test_backward_accumulates_and_zero_grad_resets(rng):
    lin = nn.Linear(3, 2, dtype=np.float64)
    x = rng.standard_normal((4, 3))
    g = rng.standard_normal((4, 2))
    lin.forward(x)
    lin.backward(g)
    first = lin.weight.grad.copy()
    lin.forward(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, 2 * first)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    lin.forward(x)
    lin.backward(g)
    np.testing.assert_allclose(lin.weight.grad, first)


def test_train_eval_propagates_to_children():
    ours, _ = make_pair()
    ours.eval()
    assert not any(m.training for m in ours.modules())
    ours.train()
    assert all(m.training for m in ours.modules())


def test_sequential_indexing_and_repr():
    ours, _ = make_pair()
    assert isinstance(ours[0], nn.Linear) and len(ours) == 3
    assert "Linear(in_features=4, out_features=6, bias=True)" in repr(ours)
    with pytest.raises(ValueError, match="expected Module"):
        nn.Sequential(nn.Linear(2, 2), "relu")


def test_manual_seed_makes_init_reproducible():
    dlcourse.manual_seed(3)
    a = nn.Linear(5, 4).weight.data.copy()
    dlcourse.manual_seed(3)
    b = nn.Linear(5, 4).weight.data
    np.testing.assert_array_equal(a, b)
    assert np.abs(a).max() <= 1 / np.sqrt(5)


def test_double_and_float_cast():
    lin = nn.Linear(3, 2)
    assert lin.weight.dtype == np.float32
    lin.double()
    assert lin.weight.dtype == np.float64 and lin.bias.dtype == np.float64


def test_quick_mode_switch(monkeypatch):
    monkeypatch.setenv("DLCOURSE_QUICK", "1")
    assert dlcourse.quick_mode() and dlcourse.pick(100, 3) == 3
    monkeypatch.setenv("DLCOURSE_QUICK", "0")
    assert not dlcourse.quick_mode() and dlcourse.pick(100, 3) == 100


# -- issue 20: Module.to and load_state_dict as torch.nn.Module has them ------------------------------------------


@pytest.mark.parametrize("args, kwargs, dtype", [
    (("cpu",), {}, np.float32), (("cpu:0",), {}, np.float32), ((torch.device("cpu"),), {}, np.float32),
    ((torch.float64,), {}, np.float64), (("cpu", torch.float64), {}, np.float64),
    ((), {"dtype": torch.float64}, np.float64),
    ((), {"device": "cpu", "dtype": torch.float64, "non_blocking": True}, np.float64),
    ((torch.zeros(1, dtype=torch.float64),), {}, np.float64), ((torch.float16,), {}, np.float16),
    ((np.float64,), {}, np.float64), (("float64",), {}, np.float64),  # NumPy's spellings: dlcourse only
])
def test_module_to_takes_what_torch_takes(args, kwargs, dtype):
    """Before: .to("cpu") said "data type 'cpu' not understood", .to(torch.float64) "Cannot interpret"."""
    ours, theirs = make_pair()
    assert ours.to(*args, **kwargs) is ours
    assert {p.dtype for p in ours.parameters()} == {np.dtype(dtype)}
    if not any(isinstance(a, (type, str)) and not str(a).startswith("cpu") for a in args):
        assert theirs.to(*args, **kwargs) is theirs
        assert {str(p.dtype) for p in theirs.parameters()} == {f"torch.{np.dtype(dtype).name}"}


@pytest.mark.parametrize("dtype", [np.int64, torch.int64, torch.bool, "int32"])
def test_module_to_refuses_integer_dtypes_as_torch_does(dtype):
    """Before: nn.Linear(2, 3).to(np.int64) turned every weight into 0."""
    ours, theirs = make_pair()
    before = [p.data.copy() for p in ours.parameters()]
    with pytest.raises(TypeError, match="Module.to only accepts floating point or complex dtypes, but got desired "
                                        "dtype="):
        ours.to(dtype)
    if isinstance(dtype, torch.dtype):
        with pytest.raises(TypeError, match="Module.to only accepts floating point or complex dtypes"):
            theirs.to(dtype)
    for a, p in zip(before, ours.parameters()):
        np.testing.assert_array_equal(a, p.data)


@pytest.mark.parametrize("device", ["cuda", "cuda:1", "mps", torch.device("meta"), 0])
def test_module_to_an_accelerator_says_dlcourse_runs_on_the_cpu(device):
    ours, _ = make_pair()
    with pytest.raises(ValueError, match="dlcourse.nn runs on the CPU .* got device '(cuda|mps|meta)"):
        ours.to(device)
    assert ours.cpu() is ours


def test_load_state_dict_strict_false_returns_the_keys_as_torch_does():
    """Before: load_state_dict({"module." + k: v}, strict=False) loaded nothing and returned the model."""
    ours, theirs = make_pair()
    renamed = {"module." + k: v for k, v in theirs.state_dict().items()}
    renamed["0.bias"] = theirs.state_dict()["0.bias"]
    before = ours.state_dict()
    got = ours.load_state_dict(renamed, strict=False)
    expected = theirs.load_state_dict(renamed, strict=False)
    assert got == (expected.missing_keys, expected.unexpected_keys)
    assert got.missing_keys == ["0.weight", "2.weight", "2.bias"] and got.unexpected_keys[0] == "module.0.weight"
    np.testing.assert_array_equal(ours[0].bias.data, theirs[0].bias.detach().numpy())  # the one key both have
    np.testing.assert_array_equal(ours[0].weight.data, before["0.weight"])
    assert repr(ours.load_state_dict(theirs.state_dict(), strict=False)) == "<All keys matched successfully>"


def test_load_state_dict_strict_names_the_missing_and_unexpected_keys():
    ours, theirs = make_pair()
    sd = theirs.state_dict()
    sd["extra"] = sd.pop("2.bias")
    with pytest.raises(ValueError, match=r"missing \['2.bias'\], unexpected \['extra'\]"):
        ours.load_state_dict(sd)


def test_load_state_dict_casts_into_the_buffers_dtype_as_torch_does():
    """Before: BatchNorm running statistics loaded from int lists were int64, and the next forward raised
    UFuncTypeError."""
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    state = {"weight": [1, 2, 3], "bias": [0, 0, 1], "running_mean": [0, 1, 2], "running_var": [1, 2, 3],
             "num_batches_tracked": 4.0}
    ours.load_state_dict(state)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in state.items()})
    assert ours.running_mean.dtype == ours.running_var.dtype == np.float32
    assert ours.num_batches_tracked.dtype == np.int64 and int(ours.num_batches_tracked) == 4
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.from_numpy(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"buffer 'num_batches_tracked' holds integers .* got values that are not "
                                         "whole numbers"):
        ours.load_state_dict(state | {"num_batches_tracked": 2.5})


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bfloat16_state_dict_loads_into_the_parameters_dtype(dtype):
    """Before: "Got unsupported ScalarType BFloat16", naming no key."""
    ours, theirs = make_pair()
    ours.to(dtype)
    theirs = theirs.to(torch.bfloat16)
    ours.load_state_dict(theirs.state_dict())
    for name, p in ours.named_parameters():
        assert p.dtype == dtype
        np.testing.assert_array_equal(p.data, theirs.state_dict()[name].float().numpy())  # bfloat16 is exact in both


def test_parameter_data_takes_a_torch_tensor_as_a_numpy_copy():
    """Before: p.data = tensor stored the tensor, and the next forward failed inside NumPy."""
    ours, _ = make_pair()
    t = torch.ones(6, 4)
    ours[0].weight.data = t
    assert type(ours[0].weight.data) is np.ndarray and ours[0].weight.dtype == np.float32
    ours[0].weight.data *= 2
    assert float(t[0, 0]) == 1.0  # the tensor is not changed through the parameter
    with pytest.raises(TypeError, match="Parameter.data: expected an array of real numbers, got str"):
        ours[0].weight.data = "weights"


# -- the forward/backward contract: grad_out checked, one backward per forward (issue 12) --------------------------


def _layers():
    return [
        ("Sigmoid", nn.Sigmoid(), (4, 1)), ("Tanh", nn.Tanh(), (4, 1)), ("ReLU", nn.ReLU(), (4, 1)),
        ("LeakyReLU", nn.LeakyReLU(), (4, 1)), ("GELU", nn.GELU(), (4, 1)), ("Softmax", nn.Softmax(dim=1), (4, 1)),
        ("Dropout", nn.Dropout(0.5), (4, 1)), ("Linear", nn.Linear(3, 1), (4, 3)), ("Flatten", nn.Flatten(), (4, 1)),
        ("BatchNorm1d", nn.BatchNorm1d(1), (4, 1)), ("Conv2d", nn.Conv2d(1, 1, 1), (4, 1, 1, 1)),
        ("MaxPool2d", nn.MaxPool2d(1), (4, 1, 1, 1)), ("AvgPool2d", nn.AvgPool2d(1), (4, 1, 1, 1)),
    ]


@pytest.mark.parametrize("name,layer,shape", _layers(), ids=[n for n, _, _ in _layers()])
def test_backward_refuses_a_wrongly_shaped_grad_out(name, layer, shape):
    # A (4, 1) output with a (4,) gradient used to broadcast into a (4, 4) input gradient.
    out = layer.forward(np.random.default_rng(0).standard_normal(shape))
    assert out.shape[:2] == (4, 1)
    with pytest.raises(ValueError, match=rf"{name}\.backward: expected grad_out of shape .*got shape \(4,\)"):
        layer.backward(np.ones(4))


def test_linear_and_flatten_messages_replace_numpy_ones():
    lin = nn.Linear(3, 2)
    lin.forward(np.ones((5, 3)))
    with pytest.raises(ValueError, match=r"Linear\.backward: expected grad_out of shape \(5, 2\).*got shape \(5, 3\)"):
        lin.backward(np.ones((5, 3)))
    flat = nn.Flatten()
    flat.forward(np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match=r"Flatten\.backward: expected grad_out of shape \(2, 12\)"):
        flat.backward(np.ones((2, 11)))


def test_grad_out_as_list_and_torch_tensor_are_converted():
    lin = nn.Linear(2, 2, dtype=np.float64)
    x = np.ones((1, 2))
    lin.forward(x)
    dx_list = lin.backward([[1.0, 2.0]])
    lin.forward(x)
    dx_torch = lin.backward(torch.tensor([[1.0, 2.0]], requires_grad=True))
    assert np.allclose(dx_list, dx_torch) and isinstance(dx_torch, np.ndarray)
    lin.forward(x)
    with pytest.raises(TypeError, match="expected grad_out as an array"):
        lin.backward("ones")


def test_second_backward_after_one_forward_is_refused():
    model = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    model.forward(np.ones((4, 3)))
    model.backward(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match="second time after one forward"):
        model.backward(np.ones((4, 2)))
    with pytest.raises(RuntimeError, match="Linear.backward called a second time"):
        model[0].backward(np.ones((4, 2)))
    model.forward(np.ones((4, 3)))  # a new forward allows a new backward
    model.backward(np.ones((4, 2)))


def test_retain_graph_accumulates_deliberately():
    lin = nn.Linear(3, 2, dtype=np.float64)
    lin.forward(np.ones((4, 3)))
    lin.backward(np.ones((4, 2)), retain_graph=True)
    once = lin.weight.grad.copy()
    lin.backward(np.ones((4, 2)))
    assert np.allclose(lin.weight.grad, 2 * once)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="Linear.backward called before forward"):
        nn.Linear(2, 2).backward(np.ones((1, 2)))


# -- the choke point: every layer's forward ends in end_forward, every backward starts in begin_backward (issue 21) --


def _dlcourse_module_classes():
    """Every Module subclass defined in the dlcourse package (the library and the course's own layers)."""
    import importlib
    import pkgutil
    for info in pkgutil.walk_packages(dlcourse.__path__, "dlcourse."):
        importlib.import_module(info.name)
    found, todo = [], [nn.Module]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith("dlcourse."):
                found.append(sub)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _calls(node, owner, method):
    """Whether ``node`` contains a call ``self.method(...)`` (owner 'self') or ``super().method(...)``."""
    import ast
    for call in ast.walk(node):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == method:
            target = call.func.value
            if owner == "self" and isinstance(target, ast.Name) and target.id == "self":
                return True
            if owner == "super" and isinstance(target, ast.Call) and getattr(target.func, "id", None) == "super":
                return True
    return False


def choke_point_violations(cls) -> list[str]:
    """What in ``cls``'s own forward/backward bypasses the choke point (empty: nothing).

    backward must call ``self.begin_backward(...)`` or hand the pass to ``super().backward(...)``; every
    ``return`` of forward must return ``self.end_forward(...)`` or ``super().forward(...)``.
    """
    import ast
    import inspect
    import textwrap
    problems = []
    for name in ("forward", "backward"):
        fn = cls.__dict__.get(name)
        if fn is None:
            continue
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        where = f"{cls.__module__}.{cls.__qualname__}.{name}"
        if name == "backward":
            if not (_calls(tree, "self", "begin_backward") or _calls(tree, "super", "backward")):
                problems.append(f"{where} calls neither self.begin_backward nor super().backward")
            continue
        nested = {id(n) for f in ast.walk(tree) if f is not tree and isinstance(f, (ast.FunctionDef, ast.Lambda))
                  for n in ast.walk(f)}
        returns = [r for r in ast.walk(tree) if isinstance(r, ast.Return) and id(r) not in nested]
        if not returns:
            problems.append(f"{where} has no return")
        for r in returns:
            value = r.value
            ok = (isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                  and (_calls(ast.Expr(value), "self", "end_forward") and value.func.attr == "end_forward"
                       or _calls(ast.Expr(value), "super", "forward") and value.func.attr == "forward"))
            if not ok:
                problems.append(f"{where} line {r.lineno}: returns without self.end_forward(...)")
    return problems


def test_every_layer_goes_through_the_choke_point():
    classes = _dlcourse_module_classes()
    names = {c.__qualname__ for c in classes}
    assert {"Linear", "Sequential", "CrossEntropyLoss", "YourConv2d", "YourLSTM", "YourMultiheadAttention",
            "RecallTransformer"} <= names, "the search finds the library's and the course's layers"
    problems = [p for cls in classes for p in choke_point_violations(cls)]
    assert not problems, "\n".join(problems)


def test_the_choke_point_check_can_fail():
    class Bypass(nn.Module):
        def forward(self, x):
            if x is None:
                return self.end_forward(x)
            return x * 2  # forgets end_forward on this path

        def backward(self, grad_out):
            return grad_out * 2  # no begin_backward: no checks at all

    class Delegates(nn.Linear):
        def forward(self, input):
            return super().forward(input)

        def backward(self, grad_out, retain_graph=False):
            return super().backward(grad_out, retain_graph)

    problems = choke_point_violations(Bypass)
    assert len(problems) == 2 and "line" in problems[0] and "begin_backward" in problems[1], problems
    assert choke_point_violations(Delegates) == []


def test_no_rewritten_methods_and_state_in_plain_attributes():
    assert "__init_subclass__" not in nn.Module.__dict__ and type(nn.Module) is type
    lin = nn.Linear(3, 2)
    assert nn.Linear.forward is nn.Linear.__dict__["forward"]  # the layer's own function, not a wrapper
    assert (lin._output_shape, lin._graph) == (None, "none")
    lin(np.ones((4, 3)))  # module(x) and module.forward(x): the same path
    assert (lin._output_shape, lin._graph) == ((4, 2), "open")
    lin.backward(np.ones((4, 2)))
    assert lin._graph == "used"


def test_retain_graph_keeps_every_sub_layer_open_once():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2))).double()
    model.forward(np.ones((5, 3)))
    model.backward(np.ones((5, 2)), retain_graph=True)
    once = [p.grad.copy() for p in model.parameters()]
    model.backward(np.ones((5, 2)))  # allowed: the first pass was retained, in the sub-layers too
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g)
    with pytest.raises(RuntimeError, match="Sequential.backward called a second time"):
        model.backward(np.ones((5, 2)))
    with pytest.raises(RuntimeError, match="Linear.backward called a second time"):
        model[2][0].backward(np.ones((5, 2)))


def test_a_parameter_free_layer_may_run_backward_again_and_losses_take_no_gradient():
    relu = nn.ReLU()
    relu.forward(np.array([[-1.0, 2.0]]))
    assert np.array_equal(relu.backward(np.ones((1, 2))), relu.backward(np.ones((1, 2))))
    loss = nn.MSELoss()
    with pytest.raises(RuntimeError, match="MSELoss.backward called before forward"):
        loss.backward()
    loss.forward(np.zeros((2, 1)), np.ones((2, 1)))
    np.testing.assert_allclose(loss.backward(), -np.ones((2, 1)))
    np.testing.assert_allclose(loss.backward(torch.tensor(2.0)), -2 * np.ones((2, 1)))  # a scalar for a scalar
    with pytest.raises(ValueError, match=r"MSELoss\.backward: expected grad_out of shape \(\)"):
        loss.backward(np.ones(3))


def test_complex_grad_out_is_refused():
    lin = nn.Linear(2, 2)
    lin.forward(np.ones((1, 2)))
    with pytest.raises(ValueError, match="complex"):
        lin.backward(np.ones((1, 2)) * 1j)


def test_load_state_dict_refuses_models_and_lists():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"got a model \(torch.*pass model.state_dict\(\)"):
        lin.load_state_dict(torch.nn.Linear(2, 3))
    with pytest.raises(TypeError, match="got list"):
        lin.load_state_dict([np.ones((3, 2)), np.ones(3)])


def test_load_state_dict_casts_integer_weights():
    lin = nn.Linear(2, 3)
    lin.load_state_dict({"weight": np.ones((3, 2), dtype=np.int64), "bias": np.zeros(3, dtype=np.int64)})
    assert lin.weight.data.dtype == np.float32 and lin.bias.data.dtype == np.float32
