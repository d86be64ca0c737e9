"""``needs_input_grad``: a network whose input is data skips dLoss/dInput, as autograd does for an
input without ``requires_grad``, and every parameter gradient stays exactly what it was."""

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse import nn
from dlcourse.compare import compare
from dlcourse.nn.module import input_grad_mode


class Recorder(nn.Module):
    """A parameter-free layer that records whether its backward ran."""

    def __init__(self):
        super().__init__()
        self.backward_calls = 0

    def forward(self, x):
        return x

    def backward(self, grad_out):
        self.backward_calls += 1
        return grad_out


def _twins(build, seed=0):
    dlcourse.manual_seed(seed)
    a = build().double()
    b = build().double()
    b.load_state_dict(a.state_dict())
    return a, b


def _run(net, x, g):
    net.zero_grad()
    net.forward(x)
    return net.backward(g)


def _assert_same_param_grads(a, b):
    names = [name for name, _ in a.named_parameters()]
    assert names, "the model has parameters"
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert pb.grad is not None, name
        np.testing.assert_allclose(pb.grad, pa.grad, rtol=1e-12, atol=1e-14, err_msg=name)


BUILDERS = {
    "mlp": (lambda: nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5)), (7, 12), (7, 5)),
    "cnn": (lambda: nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(4 * 4 * 4, 3)), (3, 2, 8, 8), (3, 3)),
    "flatten_first": (lambda: nn.Sequential(nn.Flatten(), nn.Linear(2 * 3 * 3, 4), nn.Tanh(), nn.Linear(4, 2)),
                      (5, 2, 3, 3), (5, 2)),
    "nested": (lambda: nn.Sequential(nn.Sequential(nn.Linear(6, 8), nn.ReLU()), nn.Linear(8, 3)), (4, 6), (4, 3)),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_sequential_without_input_grad_returns_none_and_the_same_parameter_gradients(name):
    build, x_shape, g_shape = BUILDERS[name]
    a, b = _twins(build)
    b.needs_input_grad = False
    rng = np.random.default_rng(1)
    x, g = rng.standard_normal(x_shape), rng.standard_normal(g_shape)
    dx = _run(a, x, g)
    assert dx.shape == x.shape
    assert _run(b, x, g) is None
    _assert_same_param_grads(a, b)
    assert "needs_input_grad=False" in repr(b) and "needs_input_grad" not in repr(a)


@pytest.mark.parametrize("layer", [lambda: nn.Linear(5, 3), lambda: nn.Conv2d(2, 3, 3, padding=1),
                                   lambda: nn.Conv2d(4, 4, 3, stride=2, groups=2)],
                         ids=["linear", "conv", "conv_grouped_strided"])
def test_layers_skip_the_input_gradient_themselves(layer):
    a, b = _twins(layer)
    b.needs_input_grad = False
    shape = (3, 5) if isinstance(a, nn.Linear) else (2, a.in_channels, 7, 7)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    g = rng.standard_normal(a.forward(x).shape)
    assert _run(a, x, g).shape == x.shape
    assert _run(b, x, g) is None
    _assert_same_param_grads(a, b)


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_recurrent_layers_skip_only_the_first_layers_input_gradient(kind):
    a, b = _twins(lambda: getattr(nn, kind)(3, 5, num_layers=2, bidirectional=True))
    b.needs_input_grad = False
    rng = np.random.default_rng(3)
    x, g = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 10))
    assert _run(a, x, g).shape == x.shape
    assert _run(b, x, g) is None
    _assert_same_param_grads(a, b)
    np.testing.assert_allclose(b.grad_h0, a.grad_h0, rtol=1e-12)  # dLoss/dh0 is still there


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cells_skip_the_input_gradient(kind):
    a, b = _twins(lambda: getattr(nn, kind)(3, 4))
    b.needs_input_grad = False
    rng = np.random.default_rng(4)
    x, g = rng.standard_normal((2, 3)), rng.standard_normal((2, 4))
    for net in (a, b):
        net.zero_grad()
        net.forward(x)
    assert a.backward(g).shape == x.shape
    assert b.backward(g) is None
    _assert_same_param_grads(a, b)


def test_layers_before_the_first_trainable_layer_get_no_backward_call():
    rec = Recorder()
    frozen = nn.Linear(4, 4)
    for p in frozen.parameters():
        p.requires_grad = False
    net = nn.Sequential(rec, frozen, nn.ReLU(), nn.Linear(4, 2)).double()
    net.needs_input_grad = False
    x, g = np.ones((3, 4)), np.ones((3, 2))
    assert _run(net, x, g) is None
    assert rec.backward_calls == 0 and frozen.weight.grad is None  # a frozen layer counts as untrainable
    assert net[3].weight.grad is not None
    net.needs_input_grad = True
    assert _run(net, x, g).shape == x.shape and rec.backward_calls == 1


def test_the_flag_of_the_first_layer_is_restored_after_backward():
    net = nn.Sequential(nn.Linear(3, 2)).double()
    net.needs_input_grad = False
    _run(net, np.ones((2, 3)), np.ones((2, 2)))
    assert net[0].needs_input_grad is True and "needs_input_grad" not in net[0].__dict__


def test_input_grad_mode_restores_the_previous_setting():
    net = nn.Sequential(nn.Linear(3, 2)).double()
    net.needs_input_grad = False
    with input_grad_mode(net) as same:
        assert same is net and net.needs_input_grad is True
        assert _run(net, np.ones((2, 3)), np.ones((2, 2))).shape == (2, 3)
    assert net.needs_input_grad is False
    layer = nn.Linear(3, 2)
    with input_grad_mode(layer, False):
        assert layer.needs_input_grad is False
    assert layer.needs_input_grad is True and "needs_input_grad" not in layer.__dict__


def test_compare_still_gets_the_input_gradient_from_a_model_trained_without_it():
    ours = nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3))
    ours.needs_input_grad = False
    theirs = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 3))
    report = compare(ours, theirs, np.random.default_rng(5).standard_normal((6, 5)))
    assert report.ok(1e-8), report
    assert ours.needs_input_grad is False
