"""dlcourse.train: the one training loop, its divergence rule and policy, data checks and hooks.

``fit`` and ``fit_torch`` share the loop; each promise is tested on both where it applies.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import dlcourse  # noqa: E402
from dlcourse import nn, optim  # noqa: E402
from dlcourse.data import BatchIterator, make_moons  # noqa: E402
from dlcourse.models import mlp  # noqa: E402
from dlcourse.train import DIVERGENCE, Divergence, TrainingDivergedError, TrainOptions, fit, fit_torch  # noqa: E402
from dlcourse.train.divergence import Diverged, DivergenceGuard  # noqa: E402


@pytest.fixture(scope="module")
def moons():
    return make_moons(256, noise=0.2, seed=0)


def twins(seed=0, dtype=np.float64):
    """A small MLP in both libraries with the same weights."""
    dlcourse.manual_seed(seed)
    ours = mlp(2, (16, 16), 2, dtype=dtype)
    theirs = mlp(2, (16, 16), 2, dtype=dtype, library="torch")
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    return ours, theirs


def run_both(moons, lr, **kw):
    ours, theirs = twins()
    x, y = moons
    args = dict(num_epochs=3, batch_size=32, progress=False) | kw
    return (lambda: fit(ours, optim.SGD(ours.parameters(), lr=lr), x, y, **args),
            lambda: fit_torch(theirs, torch.optim.SGD(theirs.parameters(), lr=lr), x, y, **args))


# ---------------------------------------------------------------------------------------
# Divergence: one rule, one policy switch
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_sgd_at_lr_1e3_does_not_return_normally(moons, library):
    """Before: fit returned a history of losses like 5.6e7, 416, 303 (finite, so "fine")."""
    train = run_both(moons, lr=1e3)[library]
    with pytest.raises(TrainingDivergedError, match=r"training diverged at epoch 1, step \d+: the loss .* is "
                                                    r"above max\(10000, 100 x the first loss"):
        train()


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_stop_policy_reports_the_step_and_the_diverged_step_updates_nothing(moons, library):
    seen = {}

    def on_step(step, loss):
        model = trained[library]
        seen[step] = [(p.detach().numpy() if hasattr(p, "detach") else p.data).copy() for p in model.parameters()]

    trained = twins()
    x, y = moons
    if library == 0:
        hist = fit(trained[0], optim.SGD(trained[0].parameters(), lr=1e3), x, y, num_epochs=3, batch_size=32,
                   on_divergence="stop", on_step=on_step, progress=False)
    else:
        hist = fit_torch(trained[1], torch.optim.SGD(trained[1].parameters(), lr=1e3), x, y, num_epochs=3,
                         batch_size=32, on_divergence="stop", on_step=on_step, progress=False)
    k = hist.diverged_at
    assert k is not None and k >= 2 and hist.steps == max(seen) == k - 1  # steps: updates made
    now = [p.detach().numpy() if hasattr(p, "detach") else p.data for p in trained[library].parameters()]
    for a, b in zip(seen[k - 1], now):
        np.testing.assert_array_equal(a, b)  # the weights are those after step k - 1


def test_fit_and_fit_torch_diverge_at_the_same_step_and_the_deferred_check_agrees(moons):
    fit_np, fit_t = run_both(moons, lr=30.0, on_divergence="stop", num_epochs=5)
    steps = {fit_np().diverged_at, fit_t().diverged_at}
    ours, theirs = twins()
    # "cpu:0" is not "cpu": fit_torch takes its accelerator path (losses checked once per epoch)
    hist = fit_torch(theirs, torch.optim.SGD(theirs.parameters(), lr=30.0), *moons, num_epochs=5, batch_size=32,
                     on_divergence="stop", device="cpu:0", progress=False)
    steps.add(hist.diverged_at)
    assert len(steps) == 1 and None not in steps, steps


def test_a_healthy_run_is_not_called_diverged(moons):
    for train in run_both(moons, lr=0.5):
        hist = train()
        assert hist.diverged_at is None and hist.epochs == 3 and hist.train_loss[-1] < hist.train_loss[0]


def test_nan_weights_are_divergence_not_a_layer_error(moons):
    dlcourse.manual_seed(0)
    model = mlp(2, (8,), 2, dtype=np.float64)
    model[2].weight.data[0, 0] = np.nan  # the second layer gets NaN-free input, its output is NaN
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1, step 1: the loss is nan"):
        fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=1, progress=False)
    model[0].weight.data[0, 0] = np.inf  # the second layer is handed inf/NaN: still divergence
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=1, progress=False,
               on_divergence="stop")
    assert hist.diverged_at == 1 and hist.epochs == 0


@pytest.mark.parametrize("loss, first, diverged", [
    (math.nan, 0.7, True), (math.inf, 0.7, True), (-math.inf, 0.7, True),
    (9_999.0, 0.7, False), (10_001.0, 0.7, True),  # cross-entropy: the absolute bound 1e4 applies
    (5e4, 1e3, False), (1.1e5, 1e3, True),  # a loss that starts large: 100 x its first value
    (2e4, -5.0, True),  # a negative first loss: the absolute bound
    (0.5, math.nan, False),
])
def test_the_rule(loss, first, diverged):
    assert DIVERGENCE(loss, first) is diverged
    assert (DIVERGENCE.first(np.array([first if math.isfinite(first) else 0.1, loss]), first) == 1) is diverged


def test_a_custom_rule_and_a_large_starting_loss_regression():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3))
    y = (x @ np.array([1.0, -2.0, 3.0]))[:, None] * 300.0  # MSE starts near 1e6: not divergence by itself
    dlcourse.manual_seed(0)
    model = mlp(3, (8,), 1, dtype=np.float64)
    hist = fit(model, optim.SGD(model.parameters(), lr=1e-5), x, y, criterion=nn.MSELoss(), num_epochs=2,
               batch_size=16, progress=False)
    assert hist.diverged_at is None and hist.train_loss[0] > 1e4 and math.isnan(hist.train_acc[0])
    strict = Divergence(limit=1.0, factor=1.0)
    hist = fit(model, optim.SGD(model.parameters(), lr=1e-5), x, y, criterion=nn.MSELoss(), num_epochs=2,
               batch_size=16, divergence=strict, on_divergence="stop", progress=False)
    assert hist.diverged_at is not None


# ---------------------------------------------------------------------------------------
# Bad data is blamed on the data, once, up front
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("library", ["fit", "fit_torch"])
def test_nan_in_the_data_is_a_data_error_naming_the_array_and_index(moons, library):
    x, y = moons
    x = x.copy()
    x[37, 1] = np.nan
    x[90, 0] = np.inf
    ours, theirs = twins()
    train = (lambda: fit(ours, optim.SGD(ours.parameters(), lr=0.1), x, y, num_epochs=1, progress=False)) \
        if library == "fit" else \
        (lambda: fit_torch(theirs, torch.optim.SGD(theirs.parameters(), lr=0.1), x, y, num_epochs=1, progress=False))
    with pytest.raises(ValueError, match=rf"{library}: the data x contain NaN or inf \(2 values, the first, nan, "
                                         r"at index \(37, 1\)\); clean the data"):
        train()


def test_nan_in_validation_data_and_in_a_loader_batch(moons):
    x, y = moons
    bad = x.copy()
    bad[3, 0] = np.nan
    model, _ = twins()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"the data x of val_data contain NaN or inf .* index \(3, 0\)"):
        fit(model, opt, x, y, num_epochs=1, val_data=(bad, y), progress=False)
    loader = [(x[:100], y[:100]), (bad[:100], y[:100])]
    with pytest.raises(ValueError, match=r"the data x of batch 2 contain NaN or inf .* index \(3, 0\)"):
        fit(model, opt, loader, num_epochs=1, progress=False)


# ---------------------------------------------------------------------------------------
# Hooks, loaders, step limits
# ---------------------------------------------------------------------------------------


def test_on_step_sees_every_loss_and_can_stop(moons):
    model, _ = twins()
    losses = []
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=2, batch_size=32, progress=False,
               on_step=lambda step, loss: losses.append((step, loss)))
    assert [s for s, _ in losses] == list(range(1, 17)) and hist.steps == 16
    assert np.mean([l for _, l in losses[:8]]) == pytest.approx(hist.train_loss[0], rel=1e-12)
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=2, batch_size=32, progress=False,
               on_step=lambda step, loss: step == 5)
    assert hist.steps == 5 and hist.stopped_early and hist.epochs == 1
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=9, batch_size=32, progress=False,
               on_epoch=lambda epoch, h: epoch == 2)
    assert hist.epochs == 2 and hist.stopped_early


def test_max_steps_and_a_partial_epoch(moons):
    model, _ = twins()
    hist = fit(model, optim.SGD(model.parameters(), lr=0.1), *moons, num_epochs=5, batch_size=32, max_steps=11,
               progress=False)
    assert hist.steps == 11 and hist.epochs == 2 and not hist.stopped_early


def test_a_loader_gives_the_same_run_as_the_arrays(moons):
    x, y = moons
    a, _ = twins()
    b, _ = twins()
    h_arrays = fit(a, optim.SGD(a.parameters(), lr=0.1), x, y, num_epochs=2, batch_size=50, shuffle=False,
                   progress=False)
    h_loader = fit(b, optim.SGD(b.parameters(), lr=0.1), BatchIterator(x, y, batch_size=50, shuffle=False),
                   num_epochs=2, progress=False)
    assert h_arrays.train_loss == h_loader.train_loss and h_arrays.steps == h_loader.steps == 12
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    one_shot = iter(BatchIterator(x, y, batch_size=50, shuffle=False))  # runs out after one epoch
    assert fit(b, optim.SGD(b.parameters(), lr=0.1), one_shot, num_epochs=5, progress=False).epochs == 1


def test_fit_skips_the_input_gradient_and_restores_the_setting(moons):
    """Inside fit nobody needs dLoss/dInput (the input is data); the weights are those of a full backward."""
    x, y = moons
    a, _ = twins()
    b, _ = twins()
    skipped = []
    first, original = a[0], type(a[0]).backward
    first.backward = lambda grad_out: skipped.append(original(first, grad_out) is None)
    fit(a, optim.SGD(a.parameters(), lr=0.1), x, y, num_epochs=1, batch_size=64, progress=False)
    assert skipped == [True] * 4 and a.needs_input_grad  # skipped in each of the 4 steps; the setting is back
    opt, criterion = optim.SGD(b.parameters(), lr=0.1), nn.CrossEntropyLoss()
    order = np.random.default_rng(0).permutation(len(x))  # fit's order for seed=0
    for start in range(0, len(x), 64):
        idx = order[start:start + 64]
        criterion(b(x[idx]), y[idx])
        opt.zero_grad()
        assert b.backward(criterion.backward()).shape == (len(idx), 2)  # the full backward, dx included
        opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_bad_arguments_say_what_was_expected(moons):
    x, y = moons
    model, _ = twins()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"on_divergence must be one of \('raise', 'stop'\), got 'ignore'"):
        fit(model, opt, x, y, num_epochs=1, on_divergence="ignore")
    with pytest.raises(ValueError, match=r"expected max_steps >= 1 \(or None\), got 0"):
        fit(model, opt, x, y, num_epochs=1, max_steps=0)
    with pytest.raises(ValueError, match="expected labels y with the inputs x, or a loader .* got ndarray and y=None"):
        fit(model, opt, x, num_epochs=1)
    with pytest.raises(ValueError, match="expected the loader to yield \\(x, y\\) batches, got ndarray"):
        fit(model, opt, [x], num_epochs=1, progress=False)
    with pytest.raises(ValueError, match="Divergence: expected limit > 0 and factor > 0, got limit=0, factor=100"):
        Divergence(limit=0)
    with pytest.raises(ValueError, match="fit: the loader yielded no batches"):
        fit(model, opt, [], num_epochs=1, progress=False)
    with pytest.raises(ValueError, match="expected num_epochs >= 1 and batch_size >= 1, got 0 and 128"):
        fit(model, opt, x, y, num_epochs=0)
    with pytest.raises(ValueError, match="expected a non-empty training set, got 0 samples"):
        fit(model, opt, x[:0], y[:0], num_epochs=1)



@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_fit_and_fit_torch_take_one_set_of_options(moons, library):
    """Both trainers build one TrainOptions from their keyword arguments: a misspelt option or a missing
    num_epochs is a TypeError naming it (and the options), before any update."""
    x, y = moons
    model = twins()[library]
    opt = (optim.SGD if library == 0 else torch.optim.SGD)(model.parameters(), lr=0.1)
    train, where = (fit, "fit") if library == 0 else (fit_torch, "fit_torch")
    before = _weights(model)
    with pytest.raises(TypeError, match=rf"{where}\(\) got an unexpected keyword argument 'epochs'; its options are "
                                        r"num_epochs, batch_size, .*, desc"):
        train(model, opt, x, y, epochs=3)
    with pytest.raises(TypeError, match=rf"{where}\(\) missing the keyword argument 'num_epochs'"):
        train(model, opt, x, y, batch_size=32)
    for a, b in zip(before, _weights(model)):
        np.testing.assert_array_equal(a, b)
    assert [f.name for f in dataclasses.fields(TrainOptions)][:2] == ["num_epochs", "batch_size"]
    with pytest.raises(TypeError, match="fit_torch\\(\\) got an unexpected keyword argument 'device'"):
        TrainOptions.from_keywords("fit_torch", {"num_epochs": 1, "device": "cpu"})  # fit_torch's own argument


def test_the_divergence_guard_is_the_one_place_that_decides():
    """attempt: a non-finite loss, or a ValueError while a weight is NaN, is divergence (None); a ValueError with
    finite weights is a bug and propagates. check: named losses each against their own first value. The policy."""
    model = mlp(2, (4,), 2, dtype=np.float64)
    guard = DivergenceGuard("test")

    def refuse(err):
        raise err

    assert guard.attempt(lambda: refuse(nn.NonFiniteLossError("nan loss")), model) is None
    with pytest.raises(ValueError, match="a bug"):
        guard.attempt(lambda: refuse(ValueError("a bug")), model)
    model[0].weight.data[0, 0] = np.nan
    assert guard.attempt(lambda: refuse(ValueError("NaN input")), model) is None
    assert guard.attempt(lambda: 7, model) == 7

    guard.check(1, {"L_D": 1.4, "L_G": 0.7})
    guard.check(2, {"L_D": 100.0, "L_G": 60.0})  # L_G: 86 x its first value, under the bound 1e4
    with pytest.raises(Diverged, match=r"^L_G = the loss is nan$") as caught:
        guard.check(3, {"L_D": 1.0, "L_G": math.nan})
    assert caught.value.step == 3
    with pytest.raises(TrainingDivergedError, match="stopped here") as raised:
        guard.stop_or_raise(caught.value, "stopped here")
    assert raised.value.step == 3 and math.isnan(raised.value.loss)
    assert DivergenceGuard("test", "stop").stop_or_raise(caught.value, "no raise") is None
    many = DivergenceGuard("test")
    with pytest.raises(Diverged, match="the loss 2e\\+04 is above") as caught:
        many.check_many(11, np.array([0.7, 0.6, 2e4, math.nan]))
    assert caught.value.step == 13
    with pytest.raises(ValueError, match=r"train_gan: on_divergence must be one of \('raise', 'stop'\), got 'skip'"):
        DivergenceGuard("train_gan", "skip")

# ---------------------------------------------------------------------------------------
# Issue 20: fit's inputs checked up front, validation with the run's criterion, a failed run keeps its History
# ---------------------------------------------------------------------------------------


def _weights(model):
    return [(p.detach().numpy() if hasattr(p, "detach") else p.data).copy() for p in model.parameters()]


@pytest.mark.parametrize("device", ["cpu", "cpu:0", "torch.device"])
def test_fit_torch_on_cpu0_checks_every_step_before_its_update(moons, device):
    """Before: device="cpu:0" was taken for an accelerator, so the check ran per epoch: 6 updates, not 1."""
    _, theirs = twins()
    x, y = moons
    hist = fit_torch(theirs, torch.optim.SGD(theirs.parameters(), lr=1e5), x, y, num_epochs=3, batch_size=32,
                     device=torch.device("cpu") if device == "torch.device" else device, on_divergence="stop",
                     progress=False)
    assert (hist.steps, hist.diverged_at) == (1, 2)


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_a_float_batch_size_is_a_type_error_before_any_update(moons, library):
    """Before: fit(batch_size=len(X) / 4) failed inside the batching with "'float' object cannot be interpreted"."""
    x, y = moons
    model = twins()[library]
    before = _weights(model)
    train = (lambda **kw: fit(model, optim.SGD(model.parameters(), lr=0.1), x, y, progress=False, **kw)) \
        if library == 0 else \
        (lambda **kw: fit_torch(model, torch.optim.SGD(model.parameters(), lr=0.1), x, y, progress=False, **kw))
    with pytest.raises(TypeError, match=r"expected batch_size to be an integer, got float 64.0 \(e.g. batch_size=64"):
        train(num_epochs=1, batch_size=len(x) / 4)
    with pytest.raises(TypeError, match="expected num_epochs to be an integer, got float 2.0"):
        train(num_epochs=2.0)
    for a, b in zip(before, _weights(model)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_and_batch_iterator_take_python_lists(moons, shuffle):
    """Before: lists worked with shuffle=False only ("only integer scalar arrays can be converted")."""
    x, y = moons
    runs = []
    for data in ((x, y), (x.tolist(), y.tolist())):
        model, _ = twins()
        runs.append(fit(model, optim.SGD(model.parameters(), lr=0.1), *data, num_epochs=2, batch_size=32,
                        shuffle=shuffle, progress=False).train_loss)
        loader = BatchIterator(*data, batch_size=100, shuffle=shuffle, seed=3)
        runs.append([xb.sum() for xb, _ in loader])
    assert runs[0] == runs[2] and runs[1] == runs[3]


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
@pytest.mark.parametrize("val, message", [
    ("x only", r"expected val_data=\(x_val, y_val\), a pair of arrays, got a tuple of 1"),
    ("empty tuple", r"expected val_data=\(x_val, y_val\), a pair of arrays, got a tuple of 0"),
    ("no samples", "expected a non-empty val_data, got 0 samples"),
    ("lengths", "expected as many labels as inputs in val_data, got 10 inputs and 9 labels"),
    ("label 7", "val_data has label 7 at index 3, out of range for the model's 2 outputs"),
    ("float labels", "val_data does not fit the model and the criterion .* expected integer class labels"),
])
def test_bad_val_data_fails_before_the_first_epoch(moons, library, val, message):
    """Before: each of these failed only after a whole epoch of training (or, label 7, after it)."""
    x, y = moons
    val_data = {"x only": (x,), "empty tuple": (), "no samples": (x[:0], y[:0]), "lengths": (x[:10], y[:9]),
                "label 7": (x[:10], np.where(np.arange(10) == 3, 7, y[:10])),
                "float labels": (x[:10], y[:10].astype(float))}[val]
    steps = []
    model = twins()[library]
    opt = optim.SGD(model.parameters(), lr=0.1) if library == 0 else torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=message):
        (fit if library == 0 else fit_torch)(model, opt, x, y, num_epochs=2, val_data=val_data,
                                             on_step=lambda step, loss: steps.append(step), progress=False)
    assert steps == []


def test_an_out_of_range_training_label_fails_before_the_first_update(moons):
    x, y = moons
    model, _ = twins()
    y_bad = y.copy()
    y_bad[-1] = 2  # in the last batch: before, 7 updates ran first
    steps = []
    with pytest.raises(ValueError, match=r"the training data \(x, y\) has label 2 at index 255, out of range for "
                                         r"the model's 2 outputs"):
        fit(model, optim.SGD(model.parameters(), lr=0.1), x, y_bad, num_epochs=1, batch_size=32, progress=False,
            on_step=lambda step, loss: steps.append(step))
    assert steps == []


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_validation_uses_the_runs_criterion(moons, library):
    """Before: validation always used cross-entropy, so MSELoss with val_data failed after the first epoch."""
    x, _ = moons
    target = (x[:, :1] ** 2).astype(np.float64)
    dlcourse.manual_seed(0)
    ours = mlp(2, (8,), 1, dtype=np.float64)
    theirs = mlp(2, (8,), 1, dtype=np.float64, library="torch")
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in ours.state_dict().items()})
    model = (ours, theirs)[library]
    if library == 0:
        hist = fit(ours, optim.SGD(ours.parameters(), lr=0.05), x, target, num_epochs=2, criterion=nn.MSELoss(),
                   val_data=(x[:50], target[:50]), progress=False)
        expected = nn.MSELoss()(dlcourse.train.predict_logits(ours, x[:50]), target[:50])
    else:
        hist = fit_torch(theirs, torch.optim.SGD(theirs.parameters(), lr=0.05), x, target, num_epochs=2,
                         criterion=torch.nn.MSELoss(), val_data=(x[:50], target[:50]), progress=False)
        expected = nn.MSELoss()(dlcourse.train.predict_logits_torch(theirs, x[:50]), target[:50])
    assert model.training  # validation ran in eval mode and put the mode back
    assert hist.val_loss[-1] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(hist.val_acc[-1])  # a regression has no accuracy


class _FailsInEpoch2:
    """A loader whose second epoch fails, as a file that vanished would."""

    def __init__(self, x, y, error):
        self.x, self.y, self.error, self.epoch = x, y, error, 0

    def __len__(self):
        return 4

    def __iter__(self):
        self.epoch += 1
        for k in range(4):
            if self.epoch == 2 and k == 2:
                raise self.error
            yield self.x[64 * k:64 * (k + 1)], self.y[64 * k:64 * (k + 1)]


@pytest.mark.parametrize("error", [OSError("disk gone"), KeyboardInterrupt()], ids=["OSError", "Ctrl-C"])
def test_a_run_that_fails_in_epoch_2_keeps_its_history(moons, error):
    """Before: the exception carried nothing; the epoch-1 History was lost."""
    x, y = moons
    model, _ = twins()
    with pytest.raises(type(error)) as info:
        fit(model, optim.SGD(model.parameters(), lr=0.1), _FailsInEpoch2(x, y, error), num_epochs=3, progress=False)
    history = info.value.history
    assert history.epochs == 1 and history.steps == 6 and len(history.train_loss) == 1


@pytest.mark.parametrize("library", [0, 1], ids=["fit", "fit_torch"])
def test_an_interrupted_run_with_early_stopping_holds_the_best_weights(moons, library):
    """Before: Ctrl-C left the weights of the last update, not those early stopping had kept."""
    x, y = moons
    model = twins()[library]
    early = dlcourse.train.EarlyStopping(patience=10)
    at_interrupt = []

    def interrupt(epoch, history):
        if epoch == 4:
            at_interrupt.extend(_weights(model))
            raise KeyboardInterrupt

    opt = optim.SGD(model.parameters(), lr=0.5) if library == 0 else torch.optim.SGD(model.parameters(), lr=0.5)
    with pytest.raises(KeyboardInterrupt) as info:
        (fit if library == 0 else fit_torch)(model, opt, x, y, num_epochs=8, batch_size=32, val_data=(x, y),
                                             early_stopping=early, on_epoch=interrupt, progress=False)
    history = info.value.history
    assert history.epochs == 4 and history.best_epoch == early.best_epoch is not None
    best = [np.asarray(v) for k, v in early.best_state.items() if "running" not in k]
    assert any(not np.array_equal(a, b) for a, b in zip(best, at_interrupt))  # else the test proves nothing
    for a, b in zip(best, _weights(model)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------


def test_accuracy_refuses_one_column_scores():
    """Before: accuracy([[.9], [.8], [.1], [.7]], [1, 1, 0, 1]) returned 0.25 (argmax of one column is 0)."""
    with pytest.raises(ValueError, match=r"got scores of shape \(4, 1\): the argmax of one column is always 0.*"
                                         r"\(p\[:, 0\] > 0.5\) for probabilities"):
        dlcourse.train.accuracy([[.9], [.8], [.1], [.7]], [1, 1, 0, 1])
    assert dlcourse.train.accuracy([[.1, .9], [.8, .2]], [1, 0]) == 1.0


def test_confusion_matrix_takes_whole_float_labels_and_refuses_others():
    """Before: float labels failed in bincount ("Cannot cast array data from dtype('float64')")."""
    cm = dlcourse.train.confusion_matrix(np.array([0.0, 1, 2, 2]), np.array([0.0, 2, 2, 1]))
    np.testing.assert_array_equal(cm, dlcourse.train.confusion_matrix([0, 1, 2, 2], [0, 2, 2, 1]))
    with pytest.raises(ValueError, match=r"expected integer class labels in y_pred, got 1.5 at index 1"):
        dlcourse.train.confusion_matrix([0, 1], [0.0, 1.5])
