"""Chapter 4's build-it references (convolution, max pooling, batch norm) agree with PyTorch, and the layers that
run the learner's functions agree with the library's layers (forward, input gradient, every parameter gradient); the
notebook builds, uses and hides its solutions."""

import numpy as np
import pytest
import torch
from notebook_checks import assert_builds_uses_and_hides_the_solutions

from dlcourse import nn
from dlcourse.course.ch04_cnn.your_layers import YourBatchNorm2d, YourConv2d, YourMaxPool2d
from dlcourse.course.checker import REGISTRY, reference

rng = np.random.default_rng(0)


def _t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


@pytest.mark.parametrize("stride,padding,k", [(1, 0, 3), (2, 1, 3), (3, 2, 5), (2, 0, 2)])
def test_conv_references_match_torch(stride, padding, k):
    x, w, b = rng.standard_normal((2, 3, 11, 9)), rng.standard_normal((4, 3, k, k)), rng.standard_normal(4)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y = reference("ch4.conv2d_forward")(x, w, b, stride, padding)
    assert np.allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(_t(g))
    dx, dW, db = reference("ch4.conv2d_backward")(x, w, g, stride, padding)
    for ours, theirs in [(dx, xt.grad), (dW, wt.grad), (db, bt.grad)]:
        assert np.allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_max_pool_backward_reference_matches_torch_on_ties():
    x = np.round(rng.standard_normal((3, 2, 6, 8)))  # rounded: many ties
    x[0, 0] = 1.0  # a channel of equal values
    xt = _t(x, True)
    g = rng.standard_normal((3, 2, 3, 4))
    torch.nn.functional.max_pool2d(xt, 2).backward(_t(g))
    dx = reference("ch4.max_pool_backward")(x, g)
    assert np.array_equal(dx, xt.grad.numpy())
    assert np.count_nonzero(dx[0, 0]) == g[0, 0].size  # one input per window, even where all four tie


def test_every_tied_max_is_rejected():
    from dlcourse.course.checker import _run
    assert "differ" in _run("ch4.max_pool_backward", REGISTRY["ch4.max_pool_backward"].wrong)


def test_batchnorm_backward_reference_matches_torch():
    x, gamma, g = rng.standard_normal((10, 4)) * 3 + 1, rng.uniform(0.5, 2, 4), rng.standard_normal((10, 4))
    xt, gt = _t(x, True), _t(gamma, True)
    bt = _t(np.zeros(4), True)
    torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(_t(g))
    dx, dgamma, dbeta = reference("ch4.batchnorm_backward")(x, gamma, g, 1e-5)
    for ours, theirs in [(dx, xt.grad), (dgamma, gt.grad), (dbeta, bt.grad)]:
        assert np.allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)


def _compare_layers(ours, lib, x):
    y, y_lib = ours(x), lib(x)
    g = rng.standard_normal(y.shape)
    dx, dx_lib = ours.backward(g), lib.backward(g)
    assert np.allclose(y, y_lib, rtol=1e-10, atol=1e-12) and np.allclose(dx, dx_lib, rtol=1e-10, atol=1e-12)
    for (name, p), (_, q) in zip(ours.named_parameters(), lib.named_parameters()):
        assert np.allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12), name


def test_your_layers_with_the_references_equal_the_library_layers():
    conv = YourConv2d(reference("ch4.conv2d_forward"), reference("ch4.conv2d_backward"), 3, 5, 3, stride=2,
                      padding=1, dtype=np.float64)
    lib = nn.Conv2d(3, 5, 3, stride=2, padding=1).double()
    lib.load_state_dict(conv.state_dict())
    _compare_layers(conv, lib, rng.standard_normal((2, 3, 9, 8)))
    _compare_layers(YourMaxPool2d(reference("ch4.max_pool_backward")), nn.MaxPool2d(2),
                    rng.standard_normal((2, 3, 6, 8)))
    bn = YourBatchNorm2d(reference("ch4.batchnorm_backward"), 3, dtype=np.float64)
    bn_lib = nn.BatchNorm2d(3, dtype=np.float64)
    bn.weight.data[:] = bn_lib.weight.data[:] = rng.uniform(0.5, 1.5, 3)
    _compare_layers(bn, bn_lib, rng.standard_normal((4, 3, 5, 6)) * 2 + 1)


def test_your_conv_rejects_a_wrong_channel_count():
    conv = YourConv2d(reference("ch4.conv2d_forward"), reference("ch4.conv2d_backward"), 3, 5, 3)
    with pytest.raises(ValueError, match="expected input of shape"):
        conv(np.zeros((1, 2, 8, 8)))


def test_notebook_builds_uses_and_hides_the_solutions():
    assert_builds_uses_and_hides_the_solutions("04_cnn", "ch4.")
