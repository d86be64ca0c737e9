"""Recurrent layers as plain functions: one layer, one direction, over a whole time-major sequence.

``rnn_layer_forward(x, h0, W_ih, W_hh, b_ih, b_hh)``, ``lstm_layer_forward(x, h0, c0, ...)`` and
``gru_layer_forward(x, h0, ...)`` map x (T, N, I) and the initial states (N, H) to out (T, N, H), the
tuple of final states ((h_n,) or (h_n, c_n)) and a named cache; ``*_layer_backward(grad_out,
grad_h_n[, grad_c_n], cache, need_dx)`` is backpropagation through time from that cache and returns
(dx, the tuple of initial-state gradients, (dW_ih, dW_hh, db_ih, db_hh)). The same signatures for the
three let the modules pick a kernel from a table. ``recurrent.py`` stacks them into the
modules ``RNN``, ``LSTM``, ``GRU`` (layers, directions, dropout, layouts and checks).

Speed: the input products W_ih x_t of all time steps are one matrix product before the loop, the
parameter gradients are one matrix product after it, and the loop itself works in preallocated
buffers; only the recurrent product h_{t-1} W_hh^T and a few elementwise operations run per step.
The per-step math is the readable one of ``rnn_cells.py``, which the tests check against the same
PyTorch layers. With more than one thread allowed (``dlcourse.runtime.num_threads``), ``layer_forward``
and ``layer_backward`` run a kernel on slices of the batch on that many threads (see the end of the file).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ._batch_threads import blas_threads

# ---------------------------------------------------------------------------------------
# What the forward passes keep for backpropagation through time
# ---------------------------------------------------------------------------------------


@dataclass
class RNNLayerCache:
    """One RNN layer and direction: the input x (T, N, I), hs (T+1, N, H) = [h0, h_1, ..., h_T]
    (the activation's derivative is read off h_t), the weights and the nonlinearity."""

    x: np.ndarray
    hs: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    has_bias: bool
    nonlinearity: str


@dataclass
class LSTMLayerCache:
    """One LSTM layer and direction: x (T, N, I), hs and cs (T+1, N, H) from h0 and c0 on,
    the gate activations acts (T, N, 4H) in the order i, f, g, o, tanh(c_t) (T, N, H), the weights."""

    x: np.ndarray
    hs: np.ndarray
    cs: np.ndarray
    acts: np.ndarray
    tanh_cs: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    has_bias: bool


@dataclass
class GRULayerCache:
    """One GRU layer and direction: x (T, N, I), hs (T+1, N, H), the gate activations acts (T, N, 3H)
    in the order r, z, n, gh_n = W_hn h_{t-1} + b_hn (T, N, H), the weights."""

    x: np.ndarray
    hs: np.ndarray
    acts: np.ndarray
    gh_n: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    has_bias: bool


# ---------------------------------------------------------------------------------------
# One layer, one direction, time-major: x (T, N, I) -> out (T, N, H)
# ---------------------------------------------------------------------------------------


def _input_products(x, weight_ih, bias_ih, bias_hh, dtype):
    """x_t W_ih^T + b_ih + b_hh for every t at once: (T, N, G)."""
    T, N, I = x.shape
    pre = np.empty((T, N, weight_ih.shape[0]), dtype)
    np.matmul(x.reshape(T * N, I), _transposed(weight_ih), out=pre.reshape(T * N, -1))
    if bias_ih is not None:
        pre += bias_ih + bias_hh
    return pre


def _transposed(weight):
    """W^T as a contiguous array: OpenBLAS multiplies by it faster than by the transposed view (small copy)."""
    return np.ascontiguousarray(weight.T)


def _param_grads(dpre_x, dpre_h, x, h_prev, has_bias):
    """dW_ih = sum_t dpre_t^T x_t, dW_hh = sum_t dpre_t^T h_{t-1}, biases: sums over t and n."""
    G = dpre_x.shape[-1]
    dx2 = dpre_x.reshape(-1, G)
    dh2 = dx2 if dpre_h is dpre_x else dpre_h.reshape(-1, G)
    d_w_ih = dx2.T @ x.reshape(-1, x.shape[-1])
    d_w_hh = dh2.T @ h_prev.reshape(-1, h_prev.shape[-1])
    if not has_bias:
        return d_w_ih, d_w_hh, None, None
    d_b_ih = dx2.sum(axis=0)
    return d_w_ih, d_w_hh, d_b_ih, d_b_ih.copy() if dh2 is dx2 else dh2.sum(axis=0)  # RNN, LSTM: the same sum


def rnn_layer_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity="tanh"):
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh): returns (out (T, N, H), (h_n,), cache)."""
    T, N, _ = x.shape
    dtype = np.result_type(x, h0, weight_ih)
    hs = np.empty((T + 1, N, weight_hh.shape[1]), dtype)  # hs[0] = h0, hs[t + 1] = h_t
    hs[0] = h0
    hs[1:] = _input_products(x, weight_ih, bias_ih, bias_hh, dtype)
    rec = np.empty_like(hs[0])
    w_hh_t = _transposed(weight_hh)
    for t in range(T):
        pre = hs[t + 1]
        pre += np.matmul(hs[t], w_hh_t, out=rec)
        if nonlinearity == "tanh":
            np.tanh(pre, out=pre)
        else:
            np.maximum(pre, 0, out=pre)
    cache = RNNLayerCache(x, hs, weight_ih, weight_hh, bias_ih is not None, nonlinearity)
    return hs[1:], (hs[T],), cache


def rnn_layer_backward(grad_out, grad_h_n, cache: RNNLayerCache, need_dx: bool = True):
    """BPTT: dh_t = grad_out_t + dpre_{t+1} W_hh, dpre_t = dh_t * act'(h_t).

    Returns (dx (T, N, I), (dh0 (N, H),), (dW_ih, dW_hh, db_ih, db_hh)); dx is None with ``need_dx=False``.
    """
    x, hs, weight_ih, weight_hh = cache.x, cache.hs, cache.weight_ih, cache.weight_hh
    has_bias, nonlinearity = cache.has_bias, cache.nonlinearity
    T = x.shape[0]
    dpre = np.empty((T,) + hs.shape[1:], hs.dtype)
    # the activation's derivative at every step at once (it depends on the forward pass only)
    if nonlinearity == "tanh":
        deriv = 1 - hs[1:] * hs[1:]
    else:
        deriv = (hs[1:] > 0).astype(hs.dtype)
    dh = np.zeros_like(hs[0]) if grad_h_n is None else np.array(grad_h_n, dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
        if grad_out is not None:
            dh += grad_out[t]
        np.multiply(dh, deriv[t], out=dpre[t])
        dh = dpre[t] @ weight_hh
    grads = _param_grads(dpre, dpre, x, hs[:-1], has_bias)
    dx = (dpre.reshape(-1, dpre.shape[-1]) @ weight_ih).reshape(x.shape) if need_dx else None
    return dx, (dh,), grads


def _sigmoid_(a):
    """a <- 1 / (1 + exp(-a)) in place: four fast ufunc passes (NumPy's exp is vectorised, expit is not)."""
    np.negative(a, out=a)
    np.exp(a, out=a)  # may overflow to inf for a < -88 (float32): 1 / (1 + inf) = 0 is then exact
    a += 1
    np.reciprocal(a, out=a)
    return a


def lstm_layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """LSTM over a sequence: returns (out (T, N, H), (h_n, c_n), cache); gates i, f, g, o."""
    T, N, _ = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, h0, c0, weight_ih)
    # sigmoid(a) = (1 + tanh(a / 2)) / 2: with the rows of i, f and o in the weights and biases halved (exact in
    # binary), one tanh over all four gates gives g = tanh(.) at once, and i, f, o after "* 1/2 + 1/2".
    scale = np.full(4 * H, 0.5, dtype)
    scale[2 * H:3 * H] = 1
    shift = np.where(scale == 1, 0, scale).astype(dtype)
    acts = _input_products(x, weight_ih * scale[:, None], None if bias_ih is None else bias_ih * scale,
                           None if bias_hh is None else bias_hh * scale, dtype)  # becomes the gate activations
    hs = np.empty((T + 1, N, H), dtype)
    cs = np.empty((T + 1, N, H), dtype)
    tanh_cs = np.empty((T, N, H), dtype)
    hs[0], cs[0] = h0, c0
    rec = np.empty((N, 4 * H), dtype)
    i_g = np.empty((N, H), dtype)
    w_hh_t = _transposed(weight_hh * scale[:, None])
    for t in range(T):
        a = acts[t]                                      # [i/2, f/2, g, o/2] pre-activations, (N, 4H)
        a += np.matmul(hs[t], w_hh_t, out=rec)
        np.tanh(a, out=a)
        a *= scale
        a += shift                                       # i, f, o = sigmoid, g = tanh
        np.multiply(a[:, H:2 * H], cs[t], out=cs[t + 1])  # c_t = f * c_{t-1}
        cs[t + 1] += np.multiply(a[:, :H], a[:, 2 * H:3 * H], out=i_g)  # ... + i * g
        np.tanh(cs[t + 1], out=tanh_cs[t])
        np.multiply(a[:, 3 * H:], tanh_cs[t], out=hs[t + 1])  # h_t = o * tanh(c_t)
    cache = LSTMLayerCache(x, hs, cs, acts, tanh_cs, weight_ih, weight_hh, bias_ih is not None)
    return hs[1:], (hs[T], cs[T]), cache


BLOCK_BYTES = 1 << 18  # backward: the forward-only factors of this many bytes of steps at a time stay in cache


def _block_steps(N, G, dtype):
    """How many time steps of (N, G) factors fit in BLOCK_BYTES (at least one)."""
    return max(1, BLOCK_BYTES // (N * G * np.dtype(dtype).itemsize))


def _lstm_factors(a4, c_prev, tanh_c, K, dc_from_h):
    """The factors of the LSTM's backward that depend on the forward pass only, for a block of steps:
    dgates = [dc, dc, dc, dh] * K with K = [g i(1-i), c_{t-1} f(1-f), i (1-g^2), tanh(c_t) o(1-o)]
    (each gate's local derivative times what it multiplies), and dc_t += dh_t * dc_from_h with
    dc_from_h = o (1 - tanh^2 c_t). a4 (b, N, 4, H) holds the gate activations; K and dc_from_h are filled."""
    i, g, o = a4[:, :, 0], a4[:, :, 2], a4[:, :, 3]
    np.subtract(1, a4, out=K)
    K *= a4                                   # s (1 - s) for i, f, o
    np.multiply(g, g, out=K[:, :, 2])
    np.subtract(1, K[:, :, 2], out=K[:, :, 2])  # 1 - g^2 for g
    K[:, :, 0] *= g
    K[:, :, 1] *= c_prev
    K[:, :, 2] *= i
    K[:, :, 3] *= tanh_c
    np.multiply(tanh_c, tanh_c, out=dc_from_h)
    np.subtract(1, dc_from_h, out=dc_from_h)
    dc_from_h *= o


def lstm_layer_backward(grad_out, grad_h_n, grad_c_n, cache: LSTMLayerCache, need_dx: bool = True):
    """BPTT through the LSTM; returns (dx, (dh0, dc0), (dW_ih, dW_hh, db_ih, db_hh)) (dx None without need_dx).

    Per step: dh_t = grad_out_t + dgates_{t+1} W_hh, dc_t = dc_{t+1} * f_{t+1} + dh_t * o_t * (1 - tanh^2 c_t),
    then di = dc * g * i(1-i), df = dc * c_{t-1} * f(1-f), dg = dc * i * (1-g^2), do = dh * tanh c_t * o(1-o).
    The factors that depend on the forward pass only (:func:`_lstm_factors`) are computed for a block of
    steps at a time, just before the loop needs them (still in cache); the parameter gradients and dx are
    one product each after the loop.
    """
    x, hs, cs, acts, tanh_cs = cache.x, cache.hs, cache.cs, cache.acts, cache.tanh_cs
    weight_ih, weight_hh = cache.weight_ih, cache.weight_hh
    T, N, H = tanh_cs.shape
    dtype = hs.dtype
    a4 = acts.reshape(T, N, 4, H)
    dgates = np.empty_like(a4)
    dgates_flat = dgates.reshape(T, N, 4 * H)
    B = min(T, _block_steps(N, 4 * H, dtype))
    K, dc_from_h = np.empty((B, N, 4, H), dtype), np.empty((B, N, H), dtype)
    dh = np.zeros((N, H), dtype) if grad_h_n is None else np.array(grad_h_n, dtype=dtype)
    dc = np.zeros((N, H), dtype) if grad_c_n is None else np.array(grad_c_n, dtype=dtype)
    tmp = np.empty((N, H), dtype)
    for stop in range(T, 0, -B):
        start = max(0, stop - B)
        b = stop - start
        _lstm_factors(a4[start:stop], cs[start:stop], tanh_cs[start:stop], K[:b], dc_from_h[:b])
        for t in range(stop - 1, start - 1, -1):
            k = t - start
            if grad_out is not None:
                dh += grad_out[t]
            dc += np.multiply(dh, dc_from_h[k], out=tmp)
            np.multiply(dc[:, None, :], K[k, :, :3], out=dgates[t, :, :3])
            np.multiply(dh, K[k, :, 3], out=dgates[t, :, 3])
            dc *= a4[t, :, 1]  # f_t
            np.matmul(dgates_flat[t], weight_hh, out=dh)
    grads = _param_grads(dgates_flat, dgates_flat, x, hs[:-1], cache.has_bias)
    dx = (dgates_flat.reshape(T * N, 4 * H) @ weight_ih).reshape(x.shape) if need_dx else None
    return dx, (dh, dc), grads


def gru_layer_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """GRU over a sequence: returns (out (T, N, H), (h_n,), cache); gates r, z, n."""
    T, N, _ = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, h0, weight_ih)
    gi = np.empty((T, N, 3 * H), dtype)
    np.matmul(x.reshape(T * N, -1), _transposed(weight_ih), out=gi.reshape(T * N, -1))
    if bias_ih is not None:
        gi += bias_ih
    hs = np.empty((T + 1, N, H), dtype)
    hs[0] = h0
    acts = gi  # overwritten step by step with [r, z, n]
    gh_n = np.empty((T, N, H), dtype)
    gh = np.empty((N, 3 * H), dtype)
    tmp = np.empty((N, H), dtype)
    w_hh_t = _transposed(weight_hh)
    with np.errstate(over="ignore"):
        for t in range(T):
            np.matmul(hs[t], w_hh_t, out=gh)
            if bias_hh is not None:
                gh += bias_hh
            a = acts[t]
            a[:, :2 * H] += gh[:, :2 * H]
            _sigmoid_(a[:, :2 * H])                                  # r, z
            gh_n[t] = gh[:, 2 * H:]                                  # W_hn h + b_hn, kept for backward
            a[:, 2 * H:] += np.multiply(a[:, :H], gh_n[t], out=tmp)  # + r * (W_hn h + b_hn)
            np.tanh(a[:, 2 * H:], out=a[:, 2 * H:])                  # n
            # h_t = n + z * (h_{t-1} - n)
            np.subtract(hs[t], a[:, 2 * H:], out=hs[t + 1])
            hs[t + 1] *= a[:, H:2 * H]
            hs[t + 1] += a[:, 2 * H:]
    cache = GRULayerCache(x, hs, acts, gh_n, weight_ih, weight_hh, bias_ih is not None)
    return hs[1:], (hs[T],), cache


def gru_layer_backward(grad_out, grad_h_n, cache: GRULayerCache, need_dx: bool = True):
    """BPTT through the GRU; returns (dx, (dh0,), (dW_ih, dW_hh, db_ih, db_hh)) (dx None without need_dx)."""
    x, hs, acts, gh_n = cache.x, cache.hs, cache.acts, cache.gh_n
    weight_ih, weight_hh, has_bias = cache.weight_ih, cache.weight_hh, cache.has_bias
    T, N, H = gh_n.shape
    a3 = acts.reshape(T, N, 3, H)
    r, z, n = a3[:, :, 0], a3[:, :, 1], a3[:, :, 2]
    k_n = (1 - z) * (1 - n * n)                # dn_pre = dh * k_n
    k_z = (hs[:-1] - n) * z * (1 - z)          # dz_pre = dh * k_z
    k_r = k_n * gh_n * r * (1 - r)             # dr_pre = dh * k_r
    dgi = np.empty((T, N, 3, H), hs.dtype)
    dgh = np.empty((T, N, 3, H), hs.dtype)
    dh = np.zeros((N, H), hs.dtype) if grad_h_n is None else np.array(grad_h_n, dtype=hs.dtype)
    for t in range(T - 1, -1, -1):
        if grad_out is not None:
            dh += grad_out[t]
        np.multiply(dh, k_r[t], out=dgi[t, :, 0])
        np.multiply(dh, k_z[t], out=dgi[t, :, 1])
        np.multiply(dh, k_n[t], out=dgi[t, :, 2])
        dgh[t, :, :2] = dgi[t, :, :2]
        np.multiply(dgi[t, :, 2], r[t], out=dgh[t, :, 2])
        dh = dh * z[t] + dgh[t].reshape(N, 3 * H) @ weight_hh
    dgi, dgh = dgi.reshape(T, N, 3 * H), dgh.reshape(T, N, 3 * H)
    grads = _param_grads(dgi, dgh, x, hs[:-1], has_bias)
    dx = (dgi.reshape(T * N, -1) @ weight_ih).reshape(x.shape) if need_dx else None
    return dx, (dh,), grads


# ---------------------------------------------------------------------------------------
# Using more than one core: the batch split over threads
# ---------------------------------------------------------------------------------------
# The time loop is sequential, and its per-step products (N, H) @ (H, G*H) are too small for BLAS's threads
# to pay off: with 2 threads, NumPy would leave the second core mostly idle. The samples of a batch are
# independent, though, so each thread runs the whole recurrence on its own slice of the batch (BLAS at one
# thread each, NumPy releases the GIL inside its loops), and the parameter gradients of the slices are summed.

MIN_ROWS = 16  # a slice of fewer samples loses more to handing work over than it gains
_pool: ThreadPoolExecutor | None = None


@dataclass
class BatchSlices:
    """The caches of a layer run on batch slices in parallel: ``slices[i]`` is the part of the batch whose
    layer cache is ``caches[i]``."""

    slices: list
    caches: list


def _batch_slices(N: int) -> list:
    """As many slices of range(N) as BLAS may use threads (``dlcourse.runtime.num_threads``), >= MIN_ROWS each."""
    k = max(1, min(blas_threads(), N // MIN_ROWS))
    return [slice(N * i // k, N * (i + 1) // k) for i in range(k)]


def _on_threads(fn, slices):
    """[fn(s) for s in slices], one slice per thread (this one included), BLAS at one thread meanwhile."""
    global _pool
    from ..runtime import num_threads
    if _pool is None or _pool._max_workers < len(slices) - 1:
        _pool = ThreadPoolExecutor(max_workers=len(slices) - 1, thread_name_prefix="dlcourse-rnn")
    with num_threads(1, torch=False):
        futures = [_pool.submit(fn, s) for s in slices[1:]]
        return [fn(slices[0])] + [f.result() for f in futures]


def layer_forward(forward, x, states0, *weights):
    """``forward(x, *states0, *weights)`` (a kernel above) on the whole batch, split over threads when more
    than one is allowed; the same (out, final states, cache) come back, the cache a :class:`BatchSlices`
    when split."""
    slices = _batch_slices(x.shape[1])
    if len(slices) == 1:
        return forward(x, *states0, *weights)
    results = _on_threads(lambda s: forward(np.ascontiguousarray(x[:, s]), *(h[s] for h in states0), *weights),
                          slices)
    out = np.concatenate([r[0] for r in results], axis=1)
    finals = tuple(np.concatenate(parts, axis=0) for parts in zip(*(r[1] for r in results)))
    return out, finals, BatchSlices(slices, [r[2] for r in results])


def layer_backward(backward, grad_out, grad_states_n, cache, need_dx: bool = True):
    """``backward(grad_out, *grad_states_n, cache, need_dx)`` for a cache of :func:`layer_forward`: the slices
    on as many threads, their dx and initial-state gradients put together, their parameter gradients summed."""
    if not isinstance(cache, BatchSlices):
        return backward(grad_out, *grad_states_n, cache, need_dx)

    def part(i):
        s = cache.slices[i]
        return backward(None if grad_out is None else grad_out[:, s],
                        *(None if g is None else g[s] for g in grad_states_n), cache.caches[i], need_dx)
    results = _on_threads(part, list(range(len(cache.slices))))
    dx = np.concatenate([r[0] for r in results], axis=1) if need_dx else None
    grads0 = tuple(np.concatenate(parts, axis=0) for parts in zip(*(r[1] for r in results)))
    param_grads = tuple(None if g[0] is None else sum(g[1:], g[0]) for g in zip(*(r[2] for r in results)))
    return dx, grads0, param_grads
