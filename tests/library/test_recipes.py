"""Chapter 7's shared code: preprocessing, augmentation, twin models, the training loops, recipes.

The NumPy models are checked against their PyTorch twins (forward and every gradient, float64
tight, float32 loose), ``fit`` against ``fit_torch`` over whole training runs (same weights,
same batches, same optimizer and schedule: the same trajectory), and the training loop's
promises (eval mode, no update on evaluation, early stopping, divergence) one by one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse import nn, optim
from dlcourse import recipes as mm
from dlcourse.compare import compare
from dlcourse.data import transforms
from dlcourse.train import (
    EarlyStopping,
    History,
    TrainingDivergedError,
    accuracy,
    confusion_matrix,
    evaluate,
    evaluate_torch,
    fit,
    fit_torch,
    predict_logits,
    predict_proba,
)


def toy_images(n=300, seed=0):
    """Tiny 'digits': class k lights up a 6x6 block in the k-th of ten positions, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    x = rng.integers(0, 60, (n, 28, 28))
    for k in range(10):
        r, c = divmod(k, 4)
        x[y == k, 2 + 6 * r:8 + 6 * r, 2 + 6 * c:8 + 6 * c] = 250
    return x.astype(np.uint8), y.astype(np.int64)


# ---------------------------------------------------------------------------------------
# Preprocessing and augmentation
# ---------------------------------------------------------------------------------------


def test_preprocess_standardises_and_shapes():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    flat = transforms.preprocess(images, flatten=True)
    assert flat.shape == (1, 4) and flat.dtype == np.float32
    expected = (np.array([0, 255, 51, 102]) / 255 - transforms.MNIST_MEAN) / transforms.MNIST_STD
    np.testing.assert_allclose(flat[0], expected, rtol=1e-6)
    chw = transforms.preprocess(images)
    assert chw.shape == (1, 1, 2, 2)
    np.testing.assert_array_equal(chw.reshape(1, 4), flat)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 28 * 28), np.uint8), r"shape \(N, H, W\)"),
    (np.zeros((2, 28, 28), np.float32), "uint8"),
])
def test_preprocess_refuses_the_wrong_input(bad, message):
    with pytest.raises(ValueError, match=message):
        transforms.preprocess(bad)


def test_random_shift_moves_each_image_by_its_own_offset():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2, 9, 9)).astype(np.float32) + 5  # minimum well above the fill
    out = transforms.random_shift(x, np.random.default_rng(1), max_shift=2, fill=-1.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for a, b in zip(x, out):
        padded = np.pad(a, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)
        matches = [(dy, dx) for dy in range(5) for dx in range(5)
                   if np.array_equal(padded[:, dy:dy + 9, dx:dx + 9], b)]
        assert len(matches) == 1  # each output is exactly one shift of its own input
        seen.add(matches[0])
    assert len(seen) > 15  # the shifts vary (25 possible)
    assert (out == -1.0).any() and not (x == -1.0).any()


def test_random_shift_flat_and_default_fill():
    x = transforms.preprocess(toy_images(16)[0], flatten=True)
    out = transforms.random_shift(x, np.random.default_rng(0), max_shift=3)
    assert out.shape == (16, 784)
    assert out.min() == x.min()  # the border takes the background value, even after standardising
    np.testing.assert_array_equal(transforms.random_shift(x, np.random.default_rng(0), max_shift=0), x)
    with pytest.raises(ValueError, match="square"):
        transforms.random_shift(np.zeros((2, 10)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="max_shift >= 0"):
        transforms.random_shift(x, np.random.default_rng(0), max_shift=-1)


# ---------------------------------------------------------------------------------------
# Twin models: same keys and shapes, same numbers
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("build, twin, kwargs", [
    (mm.mlp, mm.torch_mlp, {"hidden_sizes": (32, 16), "dropout": 0.2}),
    (mm.cnn, mm.torch_cnn, {"channels": (4, 6), "hidden_size": 12}),
])
def test_twins_have_the_same_state_dict(build, twin, kwargs):
    ours, theirs = build(**kwargs).state_dict(), twin(**kwargs).state_dict()
    assert list(ours) == list(theirs)
    assert all(tuple(v.shape) == tuple(theirs[k].shape) for k, v in ours.items())


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-8), (np.float32, 1e-4)])
def test_mlp_matches_torch_forward_and_gradients(dtype, rtol):
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    ours, theirs = mm.mlp((20, 12)), mm.torch_mlp((20, 12))
    report = compare(ours, theirs, rng.standard_normal((7, 784)), dtype=dtype)
    assert report.ok(rtol), report


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-8), (np.float32, 1e-4)])
def test_cnn_matches_torch_forward_and_gradients(dtype, rtol):
    torch.manual_seed(2)
    rng = np.random.default_rng(2)
    ours, theirs = mm.cnn((3, 5), hidden_size=16), mm.torch_cnn((3, 5), hidden_size=16)
    ours.eval()
    theirs.eval()  # dropout off in both (its masks are not PyTorch's)
    report = compare(ours, theirs, rng.standard_normal((3, 1, 28, 28)), dtype=dtype)
    assert report.ok(rtol), report
    assert len(report.rows) == 2 + 8  # output, grad input, and the eight parameters' gradients


def test_network_without_input_grad_gives_the_same_parameter_gradients():
    dlcourse.manual_seed(0)
    a = mm.mlp((16,)).double()
    b = mm.mlp((16,), input_grad=False).double()
    b.load_state_dict(a.state_dict())
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal((5, 784)), rng.standard_normal((5, 10))
    for net in (a, b):
        net.zero_grad()
        net.forward(x)
    dx = a.backward(g)
    assert dx.shape == x.shape and b.backward(g) is None
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_allclose(pb.grad, pa.grad, rtol=1e-12, err_msg=name)
    assert "input_grad=False" in repr(b)


def test_model_builders_refuse_bad_sizes():
    with pytest.raises(ValueError, match="hidden sizes"):
        mm.mlp(())
    with pytest.raises(ValueError, match="dropout"):
        mm.mlp((8,), dropout=1.0)
    with pytest.raises(ValueError, match="channel counts"):
        mm.cnn((8,))


# ---------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------


def test_confusion_matrix_and_accuracy():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = confusion_matrix(y_true, y_pred, 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert cm.sum() == 6 and np.trace(cm) == 4
    assert accuracy(y_pred, y_true) == pytest.approx(4 / 6)
    assert accuracy(np.eye(3)[y_pred], y_true) == pytest.approx(4 / 6)  # scores work too
    with pytest.raises(ValueError, match="outside"):
        confusion_matrix(y_true, y_pred + 1, 3)
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(y_true, y_pred[:3])


# ---------------------------------------------------------------------------------------
# The training loop
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy():
    x, y = toy_images(400)
    return transforms.preprocess(x, flatten=True), y


def test_fit_learns_and_records_history(toy):
    x, y = toy
    dlcourse.manual_seed(0)
    model = mm.mlp((32,))
    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=3 * 4)
    hist = fit(model, opt, x[:300], y[:300], num_epochs=3, batch_size=80, val_data=(x[300:], y[300:]),
               scheduler=sched, progress=False)
    assert isinstance(hist, History) and hist.epochs == 3
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"):
        assert len(getattr(hist, key)) == 3
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.val_acc[-1] > 0.9
    assert hist.lr[-1] == pytest.approx(0.0, abs=1e-12)  # cosine, stepped once per batch, ends at 0
    assert hist.best_epoch == 3 and not hist.stopped_early
    assert hist.seconds_per_epoch > 0


def test_evaluate_is_eval_mode_and_changes_nothing(toy):
    x, y = toy
    dlcourse.manual_seed(0)
    model = mm.mlp((32,), dropout=0.5)
    before = model.state_dict()
    assert model.training
    loss1, acc1 = evaluate(model, x, y, batch_size=64)
    loss2, acc2 = evaluate(model, x, y, batch_size=1000)
    assert model.training  # the previous mode is restored
    assert loss1 == pytest.approx(loss2, rel=1e-5) and acc1 == acc2  # dropout was off: deterministic
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    assert all(p.grad is None for p in model.parameters())
    p = predict_proba(model, x[:5])
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    assert predict_logits(model, x[:5]).shape == (5, 10)


@pytest.mark.parametrize("monitor", ["val_loss", "val_acc"])
def test_early_stopping_keeps_the_best_validation_weights(toy, monitor):
    x, y = toy
    dlcourse.manual_seed(0)
    model = mm.mlp((32,))
    opt = optim.SGD(model.parameters(), lr=0.5)
    noisy = y[:200].copy()
    noisy[::3] = (noisy[::3] + 1) % 10  # a third of the training labels wrong: the model soon overfits them
    stopper = EarlyStopping(patience=2, monitor=monitor)
    hist = fit(model, opt, x[:200], noisy, num_epochs=30, batch_size=50, val_data=(x[200:], y[200:]),
               early_stopping=stopper, progress=False)
    values = hist.val_loss if monitor == "val_loss" else [-a for a in hist.val_acc]
    best = int(np.argmin(values)) + 1
    assert hist.best_epoch == best == stopper.best_epoch
    assert hist.stopped_early and hist.epochs == best + 2 < 30
    # the model now holds the best epoch's weights: evaluating it gives the best epoch's numbers
    loss, acc = evaluate(model, x[200:], y[200:])
    assert loss == pytest.approx(hist.val_loss[best - 1], rel=1e-6) and acc == hist.val_acc[best - 1]


def test_early_stopping_logic():
    class Dummy:
        def __init__(self):
            self.w = np.zeros(1)

        def state_dict(self):
            return {"w": self.w.copy()}

    m = Dummy()
    stop = EarlyStopping(patience=2, monitor="val_acc")
    decisions = []
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.7, 0.65], start=1):
        m.w[0] = epoch
        decisions.append(stop.update(epoch, acc, m))
    assert decisions == [False, False, False, True, True]
    assert stop.best_epoch == 2 and stop.best_state["w"][0] == 2
    stop = EarlyStopping(patience=1, min_delta=0.01)  # val_loss: lower is better, by at least min_delta
    assert [stop.update(e, v, m) for e, v in enumerate([1.0, 0.995], start=1)] == [False, True]
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=0)
    with pytest.raises(ValueError, match="monitor"):
        EarlyStopping(monitor="test_acc")


def test_fit_says_where_training_diverged(toy):
    x, y = toy
    dlcourse.manual_seed(0)
    model = mm.mlp((8,))
    opt = optim.SGD(model.parameters(), lr=0.1)
    model[0].weight.data[0, 0] = np.nan
    with pytest.raises(TrainingDivergedError, match="diverged at epoch 1, step 1"):
        fit(model, opt, x, y, num_epochs=1, progress=False)


def test_fit_refuses_bad_arguments(toy):
    x, y = toy
    model = mm.mlp((8,))
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="never the test set"):
        fit(model, opt, x, y, num_epochs=1, early_stopping=EarlyStopping(), progress=False)
    with pytest.raises(ValueError, match="as many labels"):
        fit(model, opt, x, y[:-1], num_epochs=1, progress=False)
    with pytest.raises(ValueError, match="scheduler_step"):
        fit(model, opt, x, y, num_epochs=1, scheduler_step="sometimes", progress=False)


@pytest.mark.parametrize("recipe", [
    mm.Recipe("mlp", {"hidden_sizes": (24,)}, optimizer="adamw", lr=3e-3, weight_decay=0.01, schedule="cosine",
              num_epochs=3, batch_size=64),
    mm.Recipe("mlp", {"hidden_sizes": (24,)}, optimizer="sgd", lr=0.05, schedule="onecycle", num_epochs=2,
              batch_size=50, max_shift=1),
])
def test_fit_and_fit_torch_follow_the_same_trajectory(recipe):
    """Same initial weights, same batches, same augmentation, same optimizer and schedule, float64:
    the two training loops (and the two optimizers) must produce the same weights after whole epochs."""
    x_img, y = toy_images(256, seed=3)
    x = mm.prepare(recipe, x_img).astype(np.float64)
    torch.manual_seed(0)
    theirs = mm.build_model(recipe, "torch").double()
    ours = mm.build_model(recipe, "numpy")
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    steps = math.ceil(len(x) / recipe.batch_size)
    opt_o, sch_o = mm.build_optimizer(recipe, ours.parameters(), "numpy", steps)
    opt_t, sch_t = mm.build_optimizer(recipe, theirs.parameters(), "torch", steps)
    augment = (lambda xb, rng: transforms.random_shift(xb, rng, recipe.max_shift)) if recipe.max_shift else None
    kw = dict(num_epochs=recipe.num_epochs, batch_size=recipe.batch_size, augment=augment, seed=5, progress=False)
    h_o = fit(ours, opt_o, x, y, scheduler=sch_o, **kw)
    h_t = fit_torch(theirs, opt_t, x, y, scheduler=sch_t, **kw)
    np.testing.assert_allclose(h_o.train_loss, h_t.train_loss, rtol=1e-9)
    np.testing.assert_allclose(h_o.lr, h_t.lr, rtol=1e-12)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-7, atol=1e-9, err_msg=k)
    loss_o, acc_o = evaluate(ours, x, y)
    loss_t, acc_t = evaluate_torch(theirs, x, y)
    assert loss_o == pytest.approx(loss_t, rel=1e-8) and acc_o == acc_t


# ---------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------


def test_recipes_describe_themselves():
    assert mm.RECIPES["mlp"].describe().startswith("MLP 784-256-10, adam lr 0.001, cosine schedule, batch 128")
    assert "CNN conv32-conv64-128-10" in mm.RECIPES["cnn"].describe()
    assert "shifts of up to 2 px" in mm.RECIPES["cnn"].describe()
    d = mm.recipe_dict(mm.RECIPES["cnn"])
    assert d["model"] == "cnn" and "description" in d


@pytest.mark.parametrize("library", ["numpy", "torch"])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_train_recipe_runs_both_libraries(library, name):
    x, y = toy_images(96, seed=4)
    small = {"mlp": {"hidden_sizes": (16,)}, "cnn": {"channels": (2, 4), "hidden_size": 8, "dropout": 0.5}}[name]
    run = mm.train_recipe(mm.RECIPES[name], (x[:64], y[:64]), (x[64:], y[64:]), library=library, val=(x[64:], y[64:]),
                          progress=False, num_epochs=2, batch_size=32, model_args=small)
    assert run.history.epochs == 2 and 0 <= run.test_acc <= 1
    summary = run.summary()
    assert summary["library"] == library and summary["device"] == "cpu" and summary["epochs"] == 2
    assert math.isfinite(summary["seconds_per_epoch"])


def test_train_recipe_refuses_unknown_settings():
    x, y = toy_images(8)
    with pytest.raises(ValueError, match="library"):
        mm.train_recipe(mm.RECIPES["mlp"], (x, y), library="jax")
    with pytest.raises(ValueError, match="schedule"):
        mm.train_recipe(mm.RECIPES["mlp"], (x, y), schedule="sometimes", progress=False)
    with pytest.raises(ValueError, match="optimizer"):
        mm.train_recipe(mm.RECIPES["mlp"], (x, y), optimizer="lbfgs", progress=False)


def test_environment_names_cpu_and_versions():
    env = mm.environment(threads=2)
    assert env["cpu"] and env["numpy"] == np.__version__ and env["torch"] == torch.__version__
    assert env["threads"] == 2
    assert isinstance(nn.Linear, type)
