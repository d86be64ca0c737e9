"""dlcourse.models.mlp: the one MLP builder, for both libraries, checked against its torch twin."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dlcourse  # noqa: E402
from dlcourse import nn  # noqa: E402
from dlcourse.compare import compare  # noqa: E402
from dlcourse.models import ACTIVATIONS, mlp  # noqa: E402


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-8), (np.float32, 1e-4)])
def test_mlp_twins_agree_forward_and_every_gradient(activation, dtype, rtol):
    torch.manual_seed(0)
    kwargs = dict(activation=activation, negative_slope=0.2)
    ours, theirs = mlp(5, (7, 6), 3, **kwargs), mlp(5, (7, 6), 3, library="torch", **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    report = compare(ours, theirs, np.random.default_rng(1).standard_normal((4, 5)), dtype=dtype)
    assert report.ok(rtol), report
    assert len(report.rows) == 2 + 6  # output, input gradient, three weights and three biases


def test_layers_in_order_with_dropout_and_dtype():
    model = mlp(4, (8, 8), 2, activation="tanh", dropout=0.25, dtype=np.float64)
    assert [type(m).__name__ for m in model] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert all(p.data.dtype == np.float64 for p in model.parameters())
    twin = mlp(4, (8, 8), 2, activation="tanh", dropout=0.25, dtype=np.float64, library="torch")
    assert [type(m).__name__ for m in twin] == [type(m).__name__ for m in model]
    assert all(p.dtype == torch.float64 for p in twin.parameters())
    assert mlp(4, 8, 2, activation=nn.Sigmoid, bias=False)[1].__class__ is nn.Sigmoid
    assert mlp(4, 8, 2, bias=False)[0].bias is None


def test_weights_are_drawn_as_the_layers_draw_them():
    """Seeded builds equal layers built one by one (so seeded chapter results did not change)."""
    dlcourse.manual_seed(3)
    built = mlp(3, (5,), 2, dtype=np.float64)
    dlcourse.manual_seed(3)
    by_hand = nn.Sequential(nn.Linear(3, 5, dtype=np.float64), nn.ReLU(), nn.Linear(5, 2, dtype=np.float64))
    for (name, a), (_, b) in zip(built.named_parameters(), by_hand.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_sizes=()), r"one or more positive hidden sizes, got \(\)"),
    (dict(hidden_sizes=(4, 0)), r"positive hidden sizes, got \(4, 0\)"),
    (dict(out_features=0), "positive in_features and out_features, got 3 and 0"),
    (dict(activation="swish"), "expected an activation in .* got 'swish'"),
    (dict(dropout=1.0), r"expected 0 <= dropout < 1, got 1.0"),
    (dict(library="jax"), "expected library 'numpy' or 'torch', got 'jax'"),
])
def test_bad_arguments_say_what_was_expected(kwargs, message):
    args = dict(in_features=3, hidden_sizes=(4,), out_features=2) | kwargs
    with pytest.raises(ValueError, match=message):
        mlp(**args)


# -- issue 20 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("sizes", [(2, (12.5,), 3), (2.0, (12,), 3), (2, (12,), 3.0), (2, 12.0, 3), (2, (True,), 3)])
def test_mlp_refuses_non_integer_sizes_as_torch_linear_does(library, sizes):
    """Before: mlp(2, (12.5,), 3) built width 12 in both libraries; torch.nn.Linear(2, 12.5) is a TypeError."""
    import torch

    with pytest.raises(TypeError):
        torch.nn.Linear(2, 12.5)
    with pytest.raises(TypeError, match="mlp: expected (in_features|out_features|hidden size 0) to be an integer"):
        mlp(*sizes, library=library)


@pytest.mark.parametrize("library", ["numpy", "torch"])
def test_mlp_takes_an_activation_module_and_copies_it_per_layer(library):
    """Before: activation=nn.Tanh() (an instance) failed with "forward() missing 1 required positional argument"."""
    import torch

    lib = nn if library == "numpy" else torch.nn
    act = lib.LeakyReLU(0.2)
    model = mlp(2, (4, 4), 3, activation=act, library=library)
    layers = [m for m in model if isinstance(m, lib.LeakyReLU)]
    assert len(layers) == 2 and layers[0] is not layers[1] and act not in layers
    assert all(m.negative_slope == 0.2 for m in layers)
    other = torch.nn.Tanh() if library == "numpy" else nn.Tanh()
    with pytest.raises(TypeError, match=f"mlp\\(library='{library}'\\): expected an activation module of that "
                                        "library, got"):
        mlp(2, (4,), 3, activation=other, library=library)
