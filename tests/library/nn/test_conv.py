"""Conv2d and the convolution functions against torch.nn.Conv2d / torch.nn.functional.conv2d.

Random shapes, kernels, strides, paddings, dilations and groups, random non-zero weights and
biases; forward output, input gradient and both parameter gradients, float64 to 1e-8 relative
and float32 to 1e-4. Plus im2col/col2im against unfold/fold, gradient checks, state_dict both
ways, a small CNN end to end, and the errors that name the sizes.
"""

import numpy as np
import pytest
import torch
from torch_twins import randomize

import dlcourse
from dlcourse import nn
from dlcourse.compare import compare, max_rel_diff
from dlcourse.gradcheck import gradcheck
from dlcourse.nn import functional as F

pytestmark = pytest.mark.filterwarnings("ignore:Using padding=.same.:UserWarning")

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}




def random_conv_config(seed):
    """A random valid Conv2d configuration and input shape (int or tuple arguments, groups, 'same')."""
    rng = np.random.default_rng(seed)
    while True:
        groups = int(rng.choice([1, 1, 1, 2, 3]))
        in_ch, out_ch = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
        H, W = int(rng.integers(1, 13)), int(rng.integers(1, 13))
        as_int = rng.random() < 0.3  # also exercise plain-int arguments
        if as_int:
            k, stride, dilation, padding = ((v[0], v[0]) for v in (k, stride, dilation, padding))
        if rng.random() < 0.2:
            stride, padding = (1, 1), str(rng.choice(["same", "valid"]))
        pad = (0, 0) if isinstance(padding, str) else padding
        if padding != "same" and (H + 2 * pad[0] < dilation[0] * (k[0] - 1) + 1
                                  or W + 2 * pad[1] < dilation[1] * (k[1] - 1) + 1):
            continue

        def arg(v):
            return v if isinstance(v, str) else (v[0] if as_int else v)

        kwargs = dict(in_channels=in_ch, out_channels=out_ch, kernel_size=arg(k), stride=arg(stride),
                      padding=arg(padding), dilation=arg(dilation), groups=groups, bias=bool(rng.random() < 0.8))
        return kwargs, (int(rng.integers(1, 4)), in_ch, H, W)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(24))
def test_conv2d_module_matches_torch(seed, dtype):
    kwargs, x_shape = random_conv_config(seed)
    theirs = randomize(torch.nn.Conv2d(**kwargs).to(TORCH_DT[dtype]), seed)
    ours = nn.Conv2d(**kwargs, dtype=dtype)
    x = np.random.default_rng(seed).standard_normal(x_shape).astype(dtype)
    try:
        theirs(torch.tensor(x))
    except RuntimeError:
        pytest.skip("torch rejects this configuration")  # e.g. a kernel larger than the padded input
    report = compare(ours, theirs, x, dtype=dtype)
    assert report.ok(TOL[dtype]), str(report)
    names = {row[0] for row in report.rows}
    assert {"output", "grad input", "grad weight"} <= names
    assert ("grad bias" in names) == kwargs["bias"]


@pytest.mark.parametrize("layout", ["nchw", "channels_last"])
def test_functional_conv2d_and_backward_match_autograd(layout):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 9, 8))
    if layout == "channels_last":  # what a previous conv layer hands on: an NHWC array seen as NCHW
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    w, b = rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    xt, wt, bt = (torch.tensor(np.ascontiguousarray(a), requires_grad=True) for a in (x, w, b))
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    y = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    dx, dw, db = F.conv2d_backward(g, x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    for name, ours, theirs in [("y", y, yt), ("dx", dx, xt.grad), ("dW", dw, wt.grad), ("db", db, bt.grad)]:
        assert max_rel_diff(ours, theirs) < 1e-12, name
    assert F.conv2d_backward(g, x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2, bias=False)[2] is None


@pytest.mark.parametrize("seed", range(8))
def test_im2col_and_col2im_match_unfold_and_fold(seed):
    rng = np.random.default_rng(seed)
    k, s, p, d = ((int(rng.integers(1, 4)), int(rng.integers(1, 4))), int(rng.integers(1, 3)),
                  int(rng.integers(0, 2)), int(rng.integers(1, 3)))
    H, W = int(rng.integers(6, 10)), int(rng.integers(6, 10))
    x = rng.standard_normal((2, 3, H, W))
    cols = F.im2col(x, k, s, p, d)
    cols_t = torch.nn.functional.unfold(torch.tensor(x), k, d, p, s)
    np.testing.assert_allclose(cols, cols_t.numpy(), rtol=0, atol=0)
    back = F.col2im(cols, (H, W), k, s, p, d)
    np.testing.assert_allclose(back, torch.nn.functional.fold(cols_t, (H, W), k, d, p, s).numpy(), atol=1e-12)
    # a convolution is one matrix product on the columns
    w = rng.standard_normal((5, 3, *k))
    y = (w.reshape(5, -1) @ cols).reshape(2, 5, *F.conv2d(x, w, None, s, p, d).shape[2:])
    np.testing.assert_allclose(y, F.conv2d(x, w, None, s, p, d), atol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding=1), dict(kernel_size=(2, 3), stride=2, dilation=(2, 1)),
                                    dict(kernel_size=3, groups=2, bias=False)])
def test_conv2d_gradcheck(kwargs):
    dlcourse.manual_seed(3)
    conv = nn.Conv2d(4, 2, **kwargs).double()
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 7))
    result = gradcheck(conv, x)
    assert result.ok, str(result)


def test_functional_gradcheck_of_input():
    w = np.random.default_rng(1).standard_normal((3, 2, 3, 3))
    x = np.random.default_rng(2).standard_normal((1, 2, 5, 5))
    result = gradcheck(lambda x: F.conv2d(x, w, padding=1, stride=2), x,
                       backward=lambda x, g: F.conv2d_backward(g, x, w, padding=1, stride=2)[0])
    assert result.ok, str(result)


def test_output_size_formula_matches_torch():
    rng = np.random.default_rng(0)
    for _ in range(40):
        H, k, s, p, d = (int(rng.integers(5, 30)), int(rng.integers(1, 6)), int(rng.integers(1, 4)),
                         int(rng.integers(0, 3)), int(rng.integers(1, 3)))
        if H + 2 * p < d * (k - 1) + 1:
            continue
        out = torch.nn.functional.conv2d(torch.zeros(1, 1, H, H), torch.zeros(1, 1, k, k), stride=s, padding=p,
                                         dilation=d)
        assert F.conv_output_size(H, k, s, p, d) == out.shape[-1]


def test_state_dict_moves_both_ways():
    theirs = randomize(torch.nn.Conv2d(3, 5, (3, 2), padding=1), 0)
    ours = nn.Conv2d(3, 5, (3, 2), padding=1)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    assert ours.weight.shape == tuple(theirs.weight.shape) == (5, 3, 3, 2)
    ours.load_state_dict(theirs.state_dict())
    back = torch.nn.Conv2d(3, 5, (3, 2), padding=1)
    back.load_state_dict({k: torch.tensor(v) for k, v in ours.state_dict().items()})
    assert torch.equal(back.weight, theirs.weight) and torch.equal(back.bias, theirs.bias)


def test_init_bounds_follow_pytorch():
    dlcourse.manual_seed(0)
    conv = nn.Conv2d(8, 16, 3)
    bound = 1 / np.sqrt(8 * 9)
    assert conv.weight.dtype == np.float32
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.weight.data).max() > 0.9 * bound
    assert np.abs(conv.bias.data).max() <= bound


def test_float32_stays_float32_and_gradients_accumulate():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 5)).astype(np.float32)
    y = conv(x)
    assert y.dtype == np.float32 and y.shape == (2, 3, 5, 5)
    g = np.ones_like(y)
    dx = conv.backward(g)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    first = conv.weight.grad.copy()
    conv(x)
    conv.backward(g)
    np.testing.assert_allclose(conv.weight.grad, 2 * first, rtol=1e-6)


def test_unbatched_input_like_torch():
    theirs = randomize(torch.nn.Conv2d(2, 3, 3, padding=1).double(), 1)
    ours = nn.Conv2d(2, 3, 3, padding=1).load_state_dict(theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 6, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = theirs(xt)
    y = ours(x)
    assert y.shape == tuple(yt.shape) == (3, 6, 5)
    g = np.random.default_rng(1).standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    assert max_rel_diff(ours.backward(g), xt.grad) < 1e-12


def test_small_cnn_end_to_end_matches_torch():
    """The chapter's CNN: conv-relu-pool-conv-relu-pool-flatten-linear, one forward and backward."""
    def build(lib):
        return lib.Sequential(lib.Conv2d(1, 4, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
                              lib.Conv2d(4, 6, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
                              lib.Linear(6 * 3 * 3, 5))

    for dtype in (np.float64, np.float32):
        theirs = randomize(build(torch.nn).to(TORCH_DT[dtype]), 5)
        x = np.random.default_rng(2).standard_normal((4, 1, 12, 12)).astype(dtype)
        report = compare(build(nn), theirs, x, dtype=dtype)
        assert report.ok(TOL[dtype]), str(report)


# -- errors that name the sizes ------------------------------------------------------------


def test_wrong_channel_count_names_the_sizes():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(ValueError, match=r"in_channels=3.*\(2, 1, 28, 28\).*1 channels"):
        conv(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match="expected input with 4 channels"):
        F.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)), groups=2)


def test_too_small_input_names_the_sizes():
    with pytest.raises(ValueError, match=r"2x2 \(padded to 2x2\).*extent 3x3"):
        nn.Conv2d(1, 1, 3)(np.zeros((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=r"extent 5x5.*dilation=\(2, 2\)"):
        nn.Conv2d(1, 1, 3, dilation=2)(np.zeros((1, 1, 4, 4)))


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="groups=2 must divide in_channels=3"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        nn.Conv2d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match=r"shape \(N, C, H, W\)"):
        F.conv2d(np.zeros((5, 5)), np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        nn.Conv2d(1, 1, 3)(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="expected grad_out of shape"):
        conv = nn.Conv2d(1, 1, 3)
        conv(np.zeros((1, 1, 5, 5)))
        conv.backward(np.zeros((1, 1, 5, 5)))
