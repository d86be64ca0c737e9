"""Convolution's copies split over the batch on several threads give exactly the one-thread result."""

import numpy as np
import pytest

from dlcourse.nn import _batch_threads
from dlcourse.nn.conv_functional import conv2d_backward_cached, conv2d_forward

CASES = [  # (N, C, H, W, O, k, stride, padding, dilation, groups)
    (5, 3, 9, 8, 4, 3, 1, 1, 1, 1),        # the row trick, padded
    (4, 3, 7, 7, 2, 3, 1, 0, 1, 1),        # the row trick, no padding
    (3, 1, 10, 9, 3, 3, 1, 1, 1, 1),       # one input channel: per-offset copies
    (7, 4, 9, 9, 6, (2, 3), 2, 1, (2, 1), 2),  # strided, dilated, grouped
    (2, 2, 6, 6, 2, 3, 1, "same", 2, 1),
]


def _run(x, w, b, g, args):
    y, cache = conv2d_forward(x, w, b, *args)
    return (y, *conv2d_backward_cached(g, cache))


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("case", CASES)
def test_threaded_copies_give_the_one_thread_result(monkeypatch, case, threads):
    N, C, H, W, O, k, stride, padding, dilation, groups = case
    rng = np.random.default_rng(0)
    kh, kw = (k, k) if np.isscalar(k) else k
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((O, C // groups, kh, kw))
    b = rng.standard_normal(O)
    args = (stride, padding, dilation, groups)
    y = conv2d_forward(x, w, b, *args)[0]
    g = rng.standard_normal(y.shape)
    monkeypatch.setattr(_batch_threads, "blas_threads", lambda: 1)
    one = _run(x, w, b, g, args)
    monkeypatch.setattr(_batch_threads, "MIN_BYTES", 0)
    monkeypatch.setattr(_batch_threads, "blas_threads", lambda: threads)
    many = _run(x, w, b, g, args)
    for a, c, name in zip(one, many, ["y", "dx", "dW", "db"]):
        np.testing.assert_array_equal(c, a, err_msg=name)


def test_blas_threads_follows_the_thread_limit():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        assert _batch_threads.blas_threads() == 1
    calls = []
    _batch_threads.over_batch(calls.append, 10, 0)  # below MIN_BYTES: one call over the whole batch
    assert calls == [slice(0, 10)]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), (2, 1, 0)])
def test_threaded_max_pooling_gives_the_one_thread_result(monkeypatch, channels_last, kernel, stride, padding):
    from dlcourse.nn.pool_functional import max_pool2d_backward_cached, max_pool2d_forward
    rng = np.random.default_rng(1)
    x = np.maximum(rng.standard_normal((5, 3, 8, 8)), 0)  # ReLU-like: many ties at 0
    if channels_last:
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    g = rng.standard_normal(max_pool2d_forward(x, kernel, stride, padding)[0].shape)

    def run():
        y, cache = max_pool2d_forward(x, kernel, stride, padding)
        return y, max_pool2d_backward_cached(g, cache)

    monkeypatch.setattr(_batch_threads, "blas_threads", lambda: 1)
    one = run()
    monkeypatch.setattr(_batch_threads, "MIN_BYTES", 0)
    monkeypatch.setattr(_batch_threads, "blas_threads", lambda: 2)
    for a, c in zip(one, run()):
        np.testing.assert_array_equal(c, a)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_relu_gives_the_one_thread_result(monkeypatch, channels_last, threads):
    """ReLU and its backward split large batches over threads: the same values, dtype and memory layout."""
    from dlcourse.nn import functional as F
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 3, 5, 4)).astype(np.float32)
    x[:, :, 0] = 0  # ReLU'(0) = 0
    if channels_last:  # a convolution's output: (N, C, H, W) over channels-last memory
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    g = rng.standard_normal(x.shape).astype(np.float32)
    monkeypatch.setattr(_batch_threads, "MIN_BYTES", 0)
    monkeypatch.setattr(_batch_threads, "blas_threads", lambda: threads)
    y, dx = F.relu(x), F.relu_backward(g, x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(dx, g * (x > 0))
    assert y.dtype == dx.dtype == np.float32
    assert y.strides == x.strides  # the layout is kept: the next layer's copies stay contiguous
