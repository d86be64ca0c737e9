"""MaxPool2d, AvgPool2d and Flatten against torch.nn, on random shapes, kernels, strides and paddings.

Pooling has no parameters: the forward output and the input gradient are compared (float64
exactly up to round-off, float32 to 1e-4), including ties (the gradient goes to the first
maximum, as in PyTorch), ceil_mode, dilation and count_include_pad.
"""

import numpy as np
import pytest
import torch

from dlcourse import nn
from dlcourse.compare import compare, max_rel_diff
from dlcourse.gradcheck import gradcheck
from dlcourse.nn import functional as F

TOL = {np.float64: 1e-8, np.float32: 1e-4}


def random_pool_config(seed, kind):
    rng = np.random.default_rng(seed)
    while True:
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = None if rng.random() < 0.3 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = (int(rng.integers(0, k[0] // 2 + 1)), int(rng.integers(0, k[1] // 2 + 1)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if kind == "max" else (1, 1)
        ceil_mode = bool(rng.random() < 0.3)
        H, W = int(rng.integers(2, 13)), int(rng.integers(2, 13))
        ext = [d * (kk - 1) + 1 for d, kk in zip(dilation, k)]
        if H + 2 * padding[0] < ext[0] or W + 2 * padding[1] < ext[1]:
            continue
        # A window lying entirely in the padding makes PyTorch's max-pool backward write out of bounds; avoid it.
        if kind == "max" and (max(padding[0], padding[1]) > 0 and min(H, W) < max(ext)):
            continue
        kwargs = dict(kernel_size=k, stride=stride, padding=padding, ceil_mode=ceil_mode)
        if kind == "max":
            kwargs["dilation"] = dilation
        else:
            kwargs["count_include_pad"] = bool(rng.random() < 0.5)
        return kwargs, (int(rng.integers(1, 4)), int(rng.integers(1, 4)), H, W)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_matches_torch(kind, seed, dtype):
    kwargs, x_shape = random_pool_config(seed, kind)
    ours_cls, theirs_cls = (nn.MaxPool2d, torch.nn.MaxPool2d) if kind == "max" else (nn.AvgPool2d, torch.nn.AvgPool2d)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape)
    if seed % 3 == 0:
        x = np.round(x)  # many ties: the gradient must go to the first maximum only
    report = compare(ours_cls(**kwargs), theirs_cls(**kwargs), x.astype(dtype), dtype=dtype)
    assert report.ok(TOL[dtype]), str(report)


def test_max_pool_ties_go_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    pool = nn.MaxPool2d(2)
    pool(x)
    dx = pool.backward(np.ones((1, 1, 1, 1)))
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])
    xt = torch.zeros(1, 1, 2, 2, requires_grad=True)
    torch.nn.functional.max_pool2d(xt, 2).backward(torch.ones(1, 1, 1, 1))
    np.testing.assert_array_equal(dx, xt.grad.numpy())


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_functional_pooling_matches_autograd(layout):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 5, 9, 10))
    if layout == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for fn, bwd, tfn, args in [(F.max_pool2d, F.max_pool2d_backward, torch.nn.functional.max_pool2d, (3, 2, 1)),
                               (F.avg_pool2d, F.avg_pool2d_backward, torch.nn.functional.avg_pool2d, (3, 2, 1)),
                               (F.max_pool2d, F.max_pool2d_backward, torch.nn.functional.max_pool2d, (2,))]:
        xt = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
        yt = tfn(xt, *args)
        y = fn(x, *args)
        g = rng.standard_normal(y.shape)
        yt.backward(torch.tensor(g))
        assert max_rel_diff(y, yt) < 1e-12
        assert max_rel_diff(bwd(g, x, *args), xt.grad) < 1e-12


def test_pooling_gradcheck():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 6))  # continuous values: no ties
    assert gradcheck(nn.MaxPool2d(3, stride=2, padding=1), x).ok
    assert gradcheck(nn.AvgPool2d(2, stride=1, padding=1, count_include_pad=False), x).ok


def test_the_common_case_has_the_textbook_shapes():
    x = np.random.default_rng(0).standard_normal((64, 32, 28, 28)).astype(np.float32)
    y = nn.MaxPool2d(2)(x)
    assert y.shape == (64, 32, 14, 14) and y.dtype == np.float32
    np.testing.assert_array_equal(y, x.reshape(64, 32, 14, 2, 14, 2).max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x), x.reshape(64, 32, 14, 2, 14, 2).mean(axis=(3, 5)), atol=1e-6)


def test_unbatched_input():
    x = np.random.default_rng(0).standard_normal((3, 6, 6))
    pool = nn.MaxPool2d(2)
    y = pool(x)
    assert y.shape == (3, 3, 3)
    assert pool.backward(np.ones_like(y)).shape == x.shape


def test_flatten_matches_torch_order_and_round_trips():
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    x_cl = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels-last memory
    flat = nn.Flatten()
    for arr in (x, x_cl):
        y = flat(arr)
        np.testing.assert_array_equal(y, torch.nn.Flatten()(torch.tensor(x)).numpy())
        assert flat.backward(y).shape == x.shape
        np.testing.assert_array_equal(flat.backward(y), x)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5) == tuple(torch.nn.Flatten(0, 1)(torch.tensor(x)).shape)


def test_pooling_errors_name_the_sizes():
    with pytest.raises(ValueError, match=r"2x2 \(padded to 2x2\).*extent 3x3"):
        nn.MaxPool2d(3)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match="padding should be between 0 and half the kernel size"):
        nn.MaxPool2d(2, padding=2)(np.zeros((1, 1, 8, 8)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*got shape \(4, 4\)"):
        nn.AvgPool2d(2)(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="do not fit"):
        nn.Flatten(start_dim=3)(np.zeros((2, 3)))


def test_maxpool_positional_order_and_return_indices_follow_torch():
    x = np.random.default_rng(0).standard_normal((2, 3, 7, 7))
    ours = nn.MaxPool2d(3, 2, 1, 1, True)  # torch: return_indices=True (not ceil_mode)
    theirs = torch.nn.MaxPool2d(3, 2, 1, 1, True)
    (y, idx), (yt, idxt) = ours.forward(x), theirs(torch.tensor(x))
    assert np.array_equal(idx, idxt.numpy()) and np.allclose(y, yt.numpy())
