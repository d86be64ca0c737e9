"""Chapter 4's build-it steps added for issue 19: the convolution with loops (forward and backward), im2col and
col2im, batch norm's backward pass node by node. The references agree with PyTorch (float64, tight); the layers
that run the learner's loops equal the library's; typical mistakes (a size formula that gives -1 on a 1x1 output,
an overwriting col2im, a backward pass that forgets the mean) are rejected; the notebook gradient-checks the
learner's own function and answers its 'by how much' with a computed number."""

import re

import nbformat
import numpy as np
import pytest
import repo_paths
import torch

from dlcourse import nn
from dlcourse.course.ch04_cnn import exercises as ch4
from dlcourse.course.ch04_cnn.your_layers import YourConv2d
from dlcourse.course.checker import REGISTRY, _run, reference

rng = np.random.default_rng(4)
NOTEBOOK = repo_paths.ROOT / "notebooks" / "04_cnn.ipynb"
NEW_STEPS = ("ch4.conv_forward_naive", "ch4.conv_backward_naive", "ch4.im2col", "ch4.col2im",
             "ch4.batchnorm_backward_graph")


def _t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


@pytest.mark.parametrize("stride,padding,kh,kw", [(1, 0, 3, 3), (2, 1, 3, 2), (3, 2, 2, 3), (1, 1, 1, 1)])
def test_naive_references_match_torch(stride, padding, kh, kw):
    x, w, b = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, kh, kw)), rng.standard_normal(4)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    yt = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=padding)
    y = reference("ch4.conv_forward_naive")(x, w, b, stride, padding)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(y.shape)
    yt.backward(_t(g))
    grads = reference("ch4.conv_backward_naive")(x, w, g, stride, padding)
    for ours, theirs in zip(grads, (xt, wt, bt)):
        np.testing.assert_allclose(ours, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("stride,padding,kh,kw", [(1, 0, 3, 3), (2, 1, 3, 2), (3, 2, 2, 3), (2, 0, 4, 4)])
def test_im2col_and_col2im_references_match_unfold_and_fold(stride, padding, kh, kw):
    x = rng.standard_normal((2, 3, 9, 8))
    cols = reference("ch4.im2col")(x, kh, kw, stride, padding)
    cols_t = torch.nn.functional.unfold(_t(x), (kh, kw), stride=stride, padding=padding).numpy()
    assert np.array_equal(cols, cols_t)
    c = rng.standard_normal(cols.shape)
    back = reference("ch4.col2im")(c, 9, 8, kh, kw, stride, padding)
    back_t = torch.nn.functional.fold(_t(c), (9, 8), (kh, kw), stride=stride, padding=padding).numpy()
    np.testing.assert_allclose(back, back_t, rtol=1e-12, atol=1e-12)
    # col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_batchnorm_graph_reference_matches_torch_and_the_compact_formula():
    x, gamma, g = rng.standard_normal((12, 4)) * 3 + 1, rng.uniform(-2, 2, 4), rng.standard_normal((12, 4))
    xt, gt, bt = _t(x, True), _t(gamma, True), _t(np.zeros(4), True)
    torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True, eps=1e-5).backward(_t(g))
    staged = reference("ch4.batchnorm_backward_graph")(x, gamma, g, 1e-5)
    compact = reference("ch4.batchnorm_backward")(x, gamma, g, 1e-5)
    for a, b, theirs in zip(staged, compact, (xt, gt, bt)):
        np.testing.assert_allclose(a, theirs.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_your_conv_on_the_naive_references_equals_the_library_layer():
    conv = YourConv2d(reference("ch4.conv_forward_naive"), reference("ch4.conv_backward_naive"), 2, 3, 3,
                      stride=2, padding=1, dtype=np.float64)
    lib = nn.Conv2d(2, 3, 3, stride=2, padding=1).double()
    lib.load_state_dict(conv.state_dict())
    x = rng.standard_normal((2, 2, 7, 6))
    y, y_lib = conv(x), lib(x)
    g = rng.standard_normal(y.shape)
    np.testing.assert_allclose(y, y_lib, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(conv.backward(g), lib.backward(g), rtol=1e-10, atol=1e-12)
    for (name, p), (_, q) in zip(conv.named_parameters(), lib.named_parameters()):
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-10, atol=1e-12, err_msg=name)


def _output_hw(name, args):
    if name == "ch4.col2im":  # (cols, H, W, kh, kw, stride, padding)
        _, H, W, kh, kw, s, p = args
    elif name == "ch4.im2col":  # (x, kh, kw, stride, padding)
        x, kh, kw, s, p = args
        H, W = x.shape[2:]
    else:  # (x, weight, bias or grad_out, stride, padding)
        x, weight, _, s, p = args
        (H, W), (kh, kw) = x.shape[2:], weight.shape[2:]
    return (H + 2 * p - kh) // s + 1, (W + 2 * p - kw) // s + 1


def test_every_conv_check_has_a_case_with_a_1x1_output():
    """A size formula that is off by two gives -1 on a 1x1 output; with both sizes -1 no reshape can infer them."""
    for name in ("ch4.conv_forward_naive", "ch4.conv_backward_naive", "ch4.im2col", "ch4.col2im",
                 "ch4.conv2d_forward", "ch4.conv2d_backward"):
        sizes = [_output_hw(name, args) for args in REGISTRY[name].cases()]
        assert (1, 1) in sizes, (name, sizes)


def _forward_with_size_off_by_two_at_one(x, weight, bias, stride=1, padding=0):
    """A learner's size formula that is right except where the output is 1 pixel (there it says -1), reshaped
    the way the stub suggests."""
    N, C, H, W = x.shape
    O, _, kh, kw = weight.shape
    size = lambda n, k: (n + 2 * padding - k) // stride + 1 if n + 2 * padding - k >= stride else -1  # noqa: E731
    cols = ch4.F.im2col(x, (kh, kw), stride=stride, padding=padding)
    return (weight.reshape(O, -1) @ cols + bias[:, None]).reshape(N, O, size(H, kh), size(W, kw))


@pytest.mark.parametrize("name,mistake,message", [
    ("ch4.conv2d_forward", _forward_with_size_off_by_two_at_one, "raised ValueError"),
    ("ch4.col2im", ch4._col2im_overwriting, "differ"),
    ("ch4.conv_backward_naive", ch4._naive_backward_overwriting, "differ"),
    ("ch4.im2col", ch4._im2col_kernel_major, "differ"),
    ("ch4.batchnorm_backward_graph", ch4._bn_graph_without_mean_path, "differ"),
    ("ch4.conv_forward_naive", ch4._naive_ignoring_stride, "differ"),
])
def test_typical_mistakes_are_rejected_clearly(name, mistake, message):
    problem = _run(name, mistake)
    assert problem is not None and message in problem, problem


def test_output_size_formulas_that_give_zero_or_less_are_rejected():
    for wrong in (lambda H, k, s, p: (H + 2 * p - k) // s,          # forgets the window at 0: 0 for a 1-wide output
                  lambda H, k, s, p: (H - 2 * p - k) // s + 1):      # padding subtracted: can go negative
        assert _run("ch4.output_size", wrong) is not None


def test_new_steps_have_three_hints_and_a_wrong_answer():
    for name in NEW_STEPS:
        ex = REGISTRY[name]
        assert len(ex.hints) == 3 and ex.wrong is not None, name


def _code(nb):
    return [c.source for c in nb.cells if c.cell_type == "code"]


def test_notebook_gradchecks_the_learners_own_backward_before_torch():
    code = _code(nbformat.read(NOTEBOOK, 4))
    i = next(k for k, s in enumerate(code) if 'use("ch4.conv_backward_naive"' in s)
    cell = code[i]
    assert cell.count("gradcheck(") == 3 and cell.count("backward=") == 3 and "conv_backward_naive(" in cell
    assert cell.index("gradcheck(") < cell.index("torch.nn.functional.conv2d")  # before the PyTorch comparison
    assert "assert all(result.ok" in cell


def test_notebook_builds_each_new_step_and_uses_it_later():
    code = _code(nbformat.read(NOTEBOOK, 4))
    joined = "\n".join(code)
    for name in NEW_STEPS + ("ch4.conv2d_forward", "ch4.conv2d_backward", "ch4.batchnorm_backward"):
        fn = name.split(".")[1]
        assert f'check("{name}", {fn})' in joined and f'{fn} = use("{name}", {fn})' in joined, name
    # the fast convolution calls the learner's im2col/col2im, not the library's
    for stub in (s for s in code if s.startswith(("def conv2d_forward", "def conv2d_backward"))):
        assert "F.im2col" not in stub and "F.col2im" not in stub and "im2col(x, kh, kw" in stub
    assert "getsource" not in joined  # im2col is now the learner's: its source is not printed


def test_notebook_measures_loops_against_im2col_and_answers_by_how_much():
    code = _code(nbformat.read(NOTEBOOK, 4))
    speed = next(s for s in code if "t_naive" in s)
    assert "conv_forward_naive(x_sp" in speed and "conv2d_forward(x_sp" in speed and "faster" in speed
    assert re.search(r"dlcourse\.pick\(\(\d+, \d+, \d+, \d+\), \(\d+, \d+, \d+, \d+\)\)", speed)
    bn = next(s for s in code if "bn_runs[with_bn] = train_sgd" in s)
    assert "Answer: after one epoch" in bn and "percentage points" in bn
