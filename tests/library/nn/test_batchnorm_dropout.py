"""BatchNorm1d / BatchNorm2d and Dropout against torch.nn.

Batch norm: training mode (output, input gradient, gamma and beta gradients, running statistics
with PyTorch's momentum convention and the unbiased running variance), then eval mode after
several training steps, momentum=None (cumulative average), affine=False,
track_running_stats=False, and state_dict both ways including num_batches_tracked.
Dropout: inverted scaling, the identity in eval mode, masks from dlcourse's generator.
"""

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse import nn
from dlcourse.compare import compare, max_rel_diff
from dlcourse.gradcheck import gradcheck

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}
BN = {"1d": (nn.BatchNorm1d, torch.nn.BatchNorm1d), "2d": (nn.BatchNorm2d, torch.nn.BatchNorm2d)}


def make_twins(kind, C, dtype, seed, **kwargs):
    ours_cls, theirs_cls = BN[kind]
    theirs = theirs_cls(C, **kwargs).to(TORCH_DT[dtype])
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(1 + 0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    ours = ours_cls(C, **kwargs, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def random_input(kind, seed, C, dtype):
    rng = np.random.default_rng(seed)
    # At least 4 values per channel: with 2, x_hat = +-1 whatever x is and dx vanishes, so the relative
    # comparison of dx would only compare round-off.
    N = int(rng.integers(4, 7))
    shape = {"1d": [(N, C), (N, C, int(rng.integers(1, 5)))][seed % 2], "2d": (N, C, *rng.integers(1, 6, 2))}[kind]
    return (rng.standard_normal(shape) * 3 + rng.standard_normal((1, C) + (1,) * (len(shape) - 2))).astype(dtype)


def assert_buffers_match(ours, theirs, dtype):
    for name, value in theirs.state_dict().items():
        mine = ours.state_dict()[name]
        if name.endswith("num_batches_tracked"):
            assert int(mine) == int(value), name
        else:
            assert max_rel_diff(mine, value) < TOL[dtype], name


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_batchnorm_train_then_eval_matches_torch(kind, seed, dtype):
    C = 1 + seed % 4
    momentum = [0.1, 0.3, None][seed % 3]
    ours, theirs = make_twins(kind, C, dtype, seed, momentum=momentum)
    for step in range(4):  # training steps: batch statistics, running statistics updated
        report = compare(ours, theirs, random_input(kind, 10 * seed + step, C, dtype), dtype=dtype, copy=False)
        assert report.ok(TOL[dtype]), str(report)
        assert_buffers_match(ours, theirs, dtype)
    assert int(ours.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    report = compare(ours, theirs, random_input(kind, 99, C, dtype), dtype=dtype, copy=False)
    assert report.ok(TOL[dtype]), str(report)
    assert_buffers_match(ours, theirs, dtype)  # eval mode leaves them alone


@pytest.mark.parametrize("kwargs", [dict(affine=False), dict(track_running_stats=False), dict(eps=1e-3, momentum=1.0)])
def test_batchnorm_options_match_torch(kwargs):
    ours, theirs = make_twins("2d", 3, np.float64, 0, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for mode in ("train", "eval"):
        getattr(ours, mode)()
        getattr(theirs, mode)()
        report = compare(ours, theirs, random_input("2d", 5, 3, np.float64), copy=False)
        assert report.ok(), str(report)


def test_batchnorm_gradcheck_train_and_eval():
    dlcourse.manual_seed(0)
    bn = nn.BatchNorm2d(3).double()
    bn.weight.data[:] = [0.5, 1.5, -2.0]
    bn.bias.data[:] = [0.1, -0.3, 0.7]
    # (gradcheck draws its upstream gradient from seed 0: x must not be that same array, or dx = 0 exactly)
    x = 2 + 3 * np.random.default_rng(42).standard_normal((4, 3, 2, 3))
    assert gradcheck(bn, x).ok, str(gradcheck(bn, x))
    bn.eval()
    assert gradcheck(bn, x).ok
    assert gradcheck(nn.BatchNorm1d(4).double(), np.random.default_rng(1).standard_normal((5, 4))).ok


def test_batchnorm_state_dict_moves_both_ways():
    theirs = torch.nn.BatchNorm2d(4)
    theirs(torch.randn(8, 4, 3, 3) * 2 + 1)
    theirs(torch.randn(8, 4, 3, 3))
    ours = nn.BatchNorm2d(4)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == \
        ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    assert ours.state_dict()["num_batches_tracked"].dtype == np.int64
    ours.load_state_dict(theirs.state_dict())
    assert int(ours.num_batches_tracked) == 2
    back = torch.nn.BatchNorm2d(4)
    back.load_state_dict({k: torch.as_tensor(v) for k, v in ours.state_dict().items()})
    for k, v in theirs.state_dict().items():
        assert torch.equal(back.state_dict()[k], v), k
    # float32 by default; .double() casts parameters and running statistics, not the counter
    ours.double()
    assert ours.running_var.dtype == np.float64 and ours.num_batches_tracked.dtype == np.int64


def test_batchnorm_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"num_features=3 channels.*\(2, 4, 5, 5\) with 4 channels"):
        nn.BatchNorm2d(3)(np.zeros((2, 4, 5, 5)))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"\(N, 3\) or \(N, 3, L\)"):
        nn.BatchNorm1d(3)(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(np.zeros((1, 3)))
    nn.BatchNorm1d(3).eval()(np.zeros((1, 3)))  # fine in eval mode, as in PyTorch


# -- Dropout ------------------------------------------------------------------------------


def test_dropout_is_inverted_and_unbiased():
    dlcourse.manual_seed(0)
    p = 0.3
    drop = nn.Dropout(p)
    x = np.random.default_rng(0).uniform(1, 2, (200, 500)).astype(np.float32)
    y = drop(x)
    kept = y != 0
    assert y.dtype == np.float32
    assert abs(1 - kept.mean() - p) < 0.005  # a fraction p is dropped
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-6)  # survivors scaled by 1/(1-p)
    assert abs(y.mean() / x.mean() - 1) < 0.01  # so the expectation is unchanged
    # torch's dropout has the same form: y in {0, x / (1 - p)}
    yt = torch.nn.functional.dropout(torch.tensor(x), p, training=True).numpy()
    kept_t = yt != 0
    np.testing.assert_allclose(yt[kept_t], x[kept_t] / (1 - p), rtol=1e-6)
    # backward uses the same mask
    g = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    np.testing.assert_allclose(drop.backward(g), g * kept / (1 - p), rtol=1e-6)


def test_dropout_eval_mode_and_edge_probabilities_match_torch():
    x = np.random.default_rng(0).standard_normal((4, 5))
    g = np.ones_like(x)
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is not None and np.array_equal(drop(x), x) and np.array_equal(drop.backward(g), g)
    t = torch.nn.Dropout(0.5).eval()
    np.testing.assert_array_equal(t(torch.tensor(x)).numpy(), x)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)
    np.testing.assert_array_equal(nn.Dropout(1.0)(x), torch.nn.Dropout(1.0)(torch.tensor(x)).numpy())


def test_dropout_masks_come_from_the_package_generator():
    x = np.ones((10, 10))
    dlcourse.manual_seed(5)
    a = nn.Dropout(0.5)(x)
    dlcourse.manual_seed(5)
    b = nn.Dropout(0.5)(x)
    c = nn.Dropout(0.5)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout_bad_probability():
    with pytest.raises(ValueError, match=r"0 <= p <= 1, got p=1.5"):
        nn.Dropout(1.5)


def test_cnn_with_batchnorm_and_dropout_in_eval_mode_matches_torch():
    def build(lib):
        return lib.Sequential(lib.Conv2d(2, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.AvgPool2d(2),
                              lib.Flatten(), lib.Dropout(0.5), lib.Linear(4 * 3 * 3, 6), lib.BatchNorm1d(6))

    theirs = build(torch.nn).double()
    for _ in range(3):
        theirs(torch.randn(8, 2, 6, 6, dtype=torch.float64))  # some running statistics
    theirs.eval()
    ours = build(nn).eval()
    report = compare(ours, theirs, np.random.default_rng(0).standard_normal((5, 2, 6, 6)))
    assert report.ok(), str(report)


# -- issue 20 (left from round one) ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind, shape", [("1d", (0, 3)), ("1d", (0, 3, 5)), ("2d", (0, 3, 4, 4))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_an_empty_training_batch_counts_in_num_batches_tracked_as_in_torch(kind, shape, momentum):
    """Before: an empty batch in training mode was not counted; PyTorch counts it and leaves the statistics."""
    ours_cls, theirs_cls = BN[kind]
    ours, theirs = ours_cls(3, momentum=momentum), theirs_cls(3, momentum=momentum)
    x = np.random.default_rng(0).standard_normal((4,) + shape[1:]).astype(np.float32)
    for batch in (x, x[:0], x):  # the empty batch in the middle: with momentum=None it changes the next average
        out = ours(batch)
        out_t = theirs(torch.from_numpy(batch))
        assert out.shape == tuple(out_t.shape)
    assert int(ours.num_batches_tracked) == int(theirs.num_batches_tracked) == 3
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), rtol=1e-6)
    ours.eval()
    ours(x[:0])
    assert int(ours.num_batches_tracked) == 3  # eval mode counts nothing


def test_batchnorm_running_stats_never_see_a_nan_batch():
    bn = nn.BatchNorm1d(2)
    x = np.ones((4, 2))
    x[0, 0] = np.nan
    with pytest.raises(ValueError):
        bn.forward(x)
    assert np.array_equal(bn.running_mean, [0, 0]) and np.array_equal(bn.running_var, [1, 1])
    assert int(bn.num_batches_tracked) == 0
