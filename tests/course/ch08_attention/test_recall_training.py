"""Chapter 8's recall models train through the library's one loop (fit / fit_torch) and agree with their twins."""

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse.course.ch08_attention.recall import (
    RecallLSTM,
    RecallTransformer,
    make_associative_recall,
    torch_twin,
    train_recall,
)
from dlcourse.train import evaluate, evaluate_torch

SMALL = dict(num_keys=16, num_values=5, d_model=16)


def _data(n=300, pairs=3):
    return make_associative_recall(n, pairs, num_keys=16, num_values=5, seed=1)


@pytest.mark.parametrize("make", [lambda: RecallTransformer(**SMALL, nhead=2, num_layers=1, dim_feedforward=32),
                                  lambda: RecallLSTM(**SMALL, hidden_size=16)], ids=["transformer", "lstm"])
def test_numpy_and_torch_twins_follow_the_same_losses_over_epochs(make):
    x, y = _data()
    dlcourse.manual_seed(0)
    model = make().double()
    twin = torch_twin(model).double()  # float64: Adam amplifies float32 rounding in near-zero gradients
    steps = 12  # 300 samples in batches of 32: 10 steps per epoch, so the second epoch's new order is used too
    losses_np, history_np = train_recall(model, x, y, steps, lr=3e-3, batch_size=32, progress=False)
    losses_t, history_t = train_recall(twin, x, y, steps, lr=3e-3, batch_size=32, progress=False)
    assert losses_np.shape == losses_t.shape == (steps,)
    assert history_np.steps == history_t.steps == steps and history_np.epochs == history_t.epochs == 2
    np.testing.assert_allclose(losses_np, losses_t, rtol=1e-8, atol=1e-10)  # same start, same batches
    for name, value in twin.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name], value.numpy(), rtol=1e-6, atol=1e-8, err_msg=name)
    assert model.needs_input_grad  # fit switched the input gradient off only while training


def test_val_data_gives_the_accuracy_after_the_last_step_and_training_learns():
    x, y = _data(n=400, pairs=2)
    xv, yv = make_associative_recall(200, 2, num_keys=16, num_values=5, seed=2)
    dlcourse.manual_seed(0)
    model = RecallTransformer(**SMALL, nhead=2, num_layers=1, dim_feedforward=32)
    twin = torch_twin(model)
    losses, history = train_recall(model, x, y, 30, lr=1e-2, batch_size=32, val_data=(xv, yv), progress=False)
    assert history.val_acc[-1] == evaluate(model, xv, yv)[1]
    assert losses[-5:].mean() < losses[0]  # it learned something: below the loss of the untrained model
    _, history_t = train_recall(twin, x, y, 30, lr=1e-2, batch_size=32, val_data=(xv, yv), progress=False)
    assert history_t.val_acc[-1] == evaluate_torch(twin, xv, yv)[1]


def test_bad_arguments_are_refused():
    x, y = _data(n=20)
    with pytest.raises(ValueError, match="num_steps"):
        train_recall(RecallLSTM(**SMALL, hidden_size=8), x, y, 0, progress=False)
    with pytest.raises(TypeError, match="dlcourse or torch module"):
        train_recall(object(), x, y, 5, progress=False)
    with pytest.raises(ValueError, match="labels"):
        train_recall(torch.nn.Linear(2, 2), x, y[:5], 5, progress=False)


def test_fit_trains_a_sequential_on_integer_tokens_like_fit_torch():
    """The first layer is an Embedding (integer input, backward returns None): fit skips the input gradient."""
    from dlcourse import nn, optim
    from dlcourse.train import fit, fit_torch

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 10, (96, 3)), rng.integers(0, 4, 96)
    dlcourse.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(24, 4)).double()
    twin = torch.nn.Sequential(torch.nn.Embedding(10, 8), torch.nn.Flatten(), torch.nn.Linear(24, 4)).double()
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    losses_np, losses_t = [], []
    fit(model, optim.Adam(model.parameters(), lr=1e-2), x, y, num_epochs=3, batch_size=16, progress=False,
        on_step=lambda step, loss: losses_np.append(loss))
    fit_torch(twin, torch.optim.Adam(twin.parameters(), lr=1e-2), x, y, num_epochs=3, batch_size=16, progress=False,
              on_step=lambda step, loss: losses_t.append(loss))
    assert len(losses_np) == len(losses_t) == 18
    np.testing.assert_allclose(losses_np, losses_t, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(model.state_dict()["0.weight"], twin.state_dict()["0.weight"].numpy(), rtol=1e-6,
                               atol=1e-9)
