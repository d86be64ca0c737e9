"""Linear, activations and losses against torch: forward, input gradient and every parameter
gradient, on random shapes with random non-zero weights and biases; float64 tight, float32 loose."""

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

from dlcourse import compare, gradcheck, nn

DTYPES = [(np.float64, 1e-8), (np.float32, 1e-4)]


def random_shape(rng, ndim=2):
    return tuple(int(s) for s in rng.integers(1, 7, size=ndim))


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("seed", range(4))
def test_linear_matches_torch(dtype, rtol, seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = (int(v) for v in rng.integers(1, 9, size=2))
    lead = random_shape(rng, ndim=int(rng.integers(1, 3)))
    theirs = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():  # random non-zero weights and biases, larger than the default init
        theirs.weight.copy_(torch.from_numpy(rng.uniform(0.5, 2, (n_out, n_in)) * rng.choice([-1, 1], (n_out, n_in))))
        theirs.bias.copy_(torch.from_numpy(rng.uniform(0.5, 2, n_out)))
    report = compare(nn.Linear(n_in, n_out), theirs, rng.standard_normal((*lead, n_in)), dtype=dtype)
    assert report.ok(rtol), report


ACTIVATIONS = [
    (nn.ReLU, torch.nn.ReLU, {}),
    (nn.Sigmoid, torch.nn.Sigmoid, {}),
    (nn.Tanh, torch.nn.Tanh, {}),
    (nn.LeakyReLU, torch.nn.LeakyReLU, {"negative_slope": 0.2}),
    (nn.GELU, torch.nn.GELU, {}),
    (nn.GELU, torch.nn.GELU, {"approximate": "tanh"}),
    (nn.Softmax, torch.nn.Softmax, {"dim": 1}),
    (nn.Softmax, torch.nn.Softmax, {"dim": -1}),
]


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("ours_cls,theirs_cls,kwargs", ACTIVATIONS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_activation_matches_torch(ours_cls, theirs_cls, kwargs, dtype, rtol, rng):
    x = 3 * rng.standard_normal(random_shape(rng, 3))
    report = compare(ours_cls(**kwargs), theirs_cls(**kwargs), x, dtype=dtype)
    assert report.ok(rtol), report


@pytest.mark.parametrize("layer", [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.1), nn.GELU(),
                                   nn.GELU("tanh"), nn.Softmax(dim=1)], ids=repr)
def test_activation_gradcheck(layer, rng):
    x = rng.standard_normal((3, 5))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from ReLU's kink, where the derivative is undefined
    assert gradcheck(layer, x)


def test_mlp_gradcheck(rng):
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.GELU(), nn.Linear(4, 2)).double()
    result = gradcheck(model, rng.standard_normal((6, 3)))
    assert result.max_error < 1e-7, result


# -- losses ---------------------------------------------------------------------------------

def _torch_loss(name, pred, target, reduction):
    if name == "mse":
        return TF.mse_loss(pred, target, reduction=reduction)
    if name == "ce":
        return TF.cross_entropy(pred, target, reduction=reduction)
    if name == "bce_logits":
        return TF.binary_cross_entropy_with_logits(pred, target, reduction=reduction)
    return TF.binary_cross_entropy(pred, target, reduction=reduction)


def _make_loss_inputs(name, rng, dtype):
    n, c = int(rng.integers(1, 9)), int(rng.integers(2, 6))
    if name == "mse":
        return nn.MSELoss, rng.standard_normal((n, c)).astype(dtype), rng.standard_normal((n, c)).astype(dtype)
    if name == "ce":
        return nn.CrossEntropyLoss, 4 * rng.standard_normal((n, c)).astype(dtype), rng.integers(0, c, n)
    if name == "bce_logits":
        logits = 4 * rng.standard_normal((n, c)).astype(dtype)
        return nn.BCEWithLogitsLoss, logits, rng.uniform(0, 1, (n, c)).astype(dtype)
    return nn.BCELoss, rng.uniform(0.01, 0.99, (n, c)).astype(dtype), rng.integers(0, 2, (n, c)).astype(dtype)


@pytest.mark.parametrize("dtype,rtol", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("name", ["mse", "ce", "bce_logits", "bce"])
@pytest.mark.parametrize("seed", range(3))
def test_loss_matches_torch(name, reduction, dtype, rtol, seed):
    rng = np.random.default_rng(seed)
    cls, pred, target = _make_loss_inputs(name, rng, dtype)
    crit = cls(reduction=reduction)
    loss = crit.forward(pred, target)
    assert isinstance(loss, float)
    grad = crit.backward()
    pt = torch.tensor(pred, requires_grad=True)
    tl = _torch_loss(name, pt, torch.as_tensor(target), reduction)
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=rtol, atol=rtol)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=rtol, atol=rtol * 1e-2)


@pytest.mark.parametrize("name", ["mse", "ce", "bce_logits", "bce"])
def test_loss_reduction_none_matches_torch(name, rng):
    cls, pred, target = _make_loss_inputs(name, rng, np.float64)
    crit = cls(reduction="none")
    losses = crit.forward(pred, target)
    upstream = rng.standard_normal(np.shape(losses))
    grad = crit.backward(upstream)
    pt = torch.tensor(pred, requires_grad=True)
    tl = _torch_loss(name, pt, torch.as_tensor(target), "none")
    tl.backward(torch.from_numpy(upstream))
    np.testing.assert_allclose(losses, tl.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["mse", "ce", "bce_logits", "bce"])
def test_loss_gradcheck(name, rng):
    cls, pred, target = _make_loss_inputs(name, rng, np.float64)
    assert gradcheck(cls(), pred, target)


def test_cross_entropy_with_probability_targets(rng):
    logits = rng.standard_normal((5, 4))
    probs = rng.dirichlet(np.ones(4), size=5)
    crit = nn.CrossEntropyLoss()
    loss = crit.forward(logits, probs)
    grad = crit.backward()
    pt = torch.tensor(logits, requires_grad=True)
    tl = TF.cross_entropy(pt, torch.from_numpy(probs))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("scale", [1000.0, -1000.0])
def test_cross_entropy_stable_for_huge_logits(scale):
    logits = np.array([[scale, 0.0, -scale], [0.0, scale, 1.0]])
    target = np.array([2, 1])
    crit = nn.CrossEntropyLoss()
    loss = crit.forward(logits, target)
    grad = crit.backward()
    pt = torch.tensor(logits, requires_grad=True)
    tl = TF.cross_entropy(pt, torch.from_numpy(target))
    tl.backward()
    assert np.isfinite(loss) and np.isfinite(grad).all()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), atol=1e-12)


def test_bce_with_logits_stable_for_huge_logits():
    logits = np.array([1000.0, -1000.0, 0.0])
    target = np.array([0.0, 1.0, 1.0])
    crit = nn.BCEWithLogitsLoss()
    loss = crit.forward(logits, target)
    pt = torch.tensor(logits, requires_grad=True)
    tl = TF.binary_cross_entropy_with_logits(pt, torch.from_numpy(target))
    tl.backward()
    np.testing.assert_allclose(loss, tl.item(), rtol=1e-12)
    np.testing.assert_allclose(crit.backward(), pt.grad.numpy(), atol=1e-12)


# -- issue 20: -inf logits mask a class ---------------------------------------------------------------------------

MASKED = np.array([[0.0, -np.inf, 1.0], [2.0, 0.0, -np.inf]])


@pytest.mark.parametrize("options", [dict(), dict(reduction="sum"), dict(reduction="none"),
                                     dict(weight=np.array([1.0, 2.0, 3.0])), dict(ignore_index=1)])
def test_cross_entropy_with_masked_logits_matches_torch(options):
    """Before: nn.functional.cross_entropy gave NaN (0 x -inf) and CrossEntropyLoss called the mask divergence;
    PyTorch gives 1.7201 on these logits and labels [0, 1]."""
    target = np.array([0, 1])
    torch_options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}
    pt = torch.tensor(MASKED, requires_grad=True)
    expected = TF.cross_entropy(pt, torch.from_numpy(target), **torch_options)
    expected.sum().backward()
    functional = nn.functional.cross_entropy(MASKED, target, **options)
    crit = nn.CrossEntropyLoss(**options)
    loss = crit(MASKED, target)
    grad = crit.backward(None if options.get("reduction") != "none" else np.ones(2))
    np.testing.assert_allclose(functional, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(loss, expected.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-12, atol=1e-15)
    if not options:
        assert round(loss, 4) == 1.7201


def test_cross_entropy_with_masked_logits_and_probability_targets_is_finite():
    """PyTorch gives nan here (0 x -inf); the loss is finite, and PyTorch's own gradient agrees with it."""
    probs = np.array([[0.5, 0.0, 0.5], [0.5, 0.5, 0.0]])
    crit = nn.CrossEntropyLoss()
    loss, grad = crit(MASKED, probs), crit.backward()
    pt = torch.tensor(MASKED, requires_grad=True)
    TF.cross_entropy(pt, torch.from_numpy(probs)).backward()
    log_p = MASKED - np.log(np.exp(MASKED).sum(axis=1, keepdims=True))  # log softmax, -inf where masked
    expected = -np.where(probs > 0, probs * np.where(probs > 0, log_p, 0.0), 0.0).sum(axis=1).mean()  # 0 log 0 = 0
    np.testing.assert_allclose(loss, expected, rtol=1e-12)
    np.testing.assert_allclose(grad, pt.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("logits, target, message", [
    ([[0.0, np.nan, 1.0]], [0], "NaN/\\+inf value\\(s\\) - the model has diverged"),
    ([[0.0, np.inf, 1.0]], [0], "NaN/\\+inf value\\(s\\) - the model has diverged"),
    ([[0.0, -np.inf, 1.0]], [1], "the loss is inf because a class the target weighs has logit -inf"),
    ([[-np.inf, -np.inf, -np.inf]], [0], "the loss is inf because"),
])
def test_cross_entropy_loss_still_refuses_divergence_and_a_masked_target(logits, target, message):
    """torch: nan for NaN/+inf logits, inf for a -inf logit at the label: not finite, so NonFiniteLossError."""
    assert not np.isfinite(TF.cross_entropy(torch.tensor(logits), torch.tensor(target)).item())
    with pytest.raises(nn.NonFiniteLossError, match=message):
        nn.CrossEntropyLoss()(np.array(logits), np.array(target))
    with pytest.raises(nn.NonFiniteLossError, match="label smoothing"):
        nn.CrossEntropyLoss(label_smoothing=0.1)(MASKED, np.array([0, 1]))


# -- bad input: a ValueError naming what was expected and what came; NaN losses reported -------------------------


def test_linear_wrong_width_names_both_sizes():
    with pytest.raises(ValueError, match=r"in_features=3, got shape \(2, 5\)"):
        nn.Linear(3, 4).forward(np.zeros((2, 5)))


def test_linear_empty_batch():
    with pytest.raises(ValueError, match="non-empty batch"):
        nn.Linear(3, 4).forward(np.zeros((0, 3)))


def test_cross_entropy_label_out_of_range_names_label_and_classes():
    with pytest.raises(ValueError, match=r"label 3 is out of range for 3 classes"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([-1, 0]))


def test_cross_entropy_float_labels_and_wrong_shape():
    with pytest.raises(ValueError, match="integer class labels, got dtype float64"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\) for logits of shape \(2, 3\), got shape \(3,\)"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"target of shape \(4, 1\).*got \(4,\)"):
        nn.MSELoss().forward(np.zeros((4, 1)), np.zeros(4))


def test_nan_prediction_is_reported_as_divergence():
    pred = np.array([[1.0, np.nan]])
    with pytest.raises(nn.NonFiniteLossError, match="diverged"):
        nn.MSELoss().forward(pred, np.zeros((1, 2)))
    assert issubclass(nn.NonFiniteLossError, ValueError)


def test_nan_target_makes_a_nan_loss_error():
    with pytest.raises(nn.NonFiniteLossError, match="loss is nan"):
        nn.MSELoss().forward(np.zeros((1, 2)), np.array([[np.nan, 0.0]]))


def test_bce_rejects_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        nn.BCELoss().forward(np.array([1.5]), np.array([1.0]))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="positive sizes"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_softmax_dim_out_of_range():
    with pytest.raises(ValueError, match=r"dim=2 is out of range for an input of shape \(2, 3\)"):
        nn.Softmax(dim=2).forward(np.zeros((2, 3)))


def test_loss_reduction_none_checks_non_finite_too():
    with pytest.raises(nn.NonFiniteLossError, match=r"loss is nan at index \(1, 0\)"):
        nn.MSELoss(reduction="none").forward(np.zeros((2, 1)), np.array([[0.0], [np.nan]]))


def test_cross_entropy_labels_shaped_n_by_1():
    with pytest.raises(ValueError, match=r"labels of shape \(4,\).*got shape \(4, 1\).*reshape\(-1\)"):
        nn.CrossEntropyLoss().forward(np.zeros((4, 3)), np.zeros((4, 1), dtype=np.int64))


def test_loss_positional_arguments_follow_torch():
    # torch: the first positional argument of a weighted loss is `weight`, of MSELoss `size_average`.
    w = np.array([1.0, 2.0, 3.0])
    assert np.array_equal(nn.CrossEntropyLoss(w).weight, w)
    with pytest.raises(ValueError, match="size_average.*use reduction="):
        nn.MSELoss("sum")


def test_torch_argument_names_accepted():
    assert nn.Linear(2, 3).forward(input=np.ones((1, 2))).shape == (1, 3)
    nn.ReLU(inplace=True)
    nn.LeakyReLU(0.1, inplace=True)
    with pytest.raises(ValueError, match="eps > 0"):
        nn.BatchNorm1d(3, eps=0)


def test_softmax_dim_none_follows_torch_with_its_warning():
    x = np.random.default_rng(0).standard_normal((2, 3, 4))
    with pytest.warns(UserWarning, match="implicit dimension"):
        ours = nn.Softmax()(x)
    with pytest.warns(UserWarning):
        theirs = torch.nn.Softmax()(torch.tensor(x))
    assert np.allclose(ours, theirs.numpy())  # dim 0 for 3-D input, as torch (surprising, hence the warning)


def test_cross_entropy_with_every_label_ignored_says_so():
    # torch returns nan here; dlcourse used to call that nan a divergence of training
    with pytest.raises(ValueError, match=r"every label equals ignore_index=1.*no labels"):
        nn.CrossEntropyLoss(ignore_index=1).forward(np.zeros((2, 3)), np.array([1, 1]))
    assert nn.CrossEntropyLoss(ignore_index=1, reduction="sum").forward(np.zeros((2, 3)), np.array([1, 1])) == 0.0
