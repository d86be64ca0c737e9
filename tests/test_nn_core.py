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
