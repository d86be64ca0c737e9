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
PyTorch layers. Using more than one core: the RNN and GRU kernels run on slices of the batch on as many
threads as ``dlcourse.runtime.num_threads`` allows (see the end of the file); the LSTM keeps its states
feature-major, (H, N) per step, so that its per-step products are large enough for BLAS's own threads
(see ``lstm_layer_forward``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ._batch_threads import blas_threads, blas_workers_spin, on_threads

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
    """One LSTM layer and direction, feature-major (features by rows, the batch along columns):
    z (T+1, K, N) with z[t] = [h_{t-1}; x_t; 1] stacked (K = H + I, + 1 with biases; z[T] holds h_T),
    cs (T+1, H, N) = [c0, c_1, ..., c_T], the gate activations acts (T, 4H, N) in the order i, f, o, g,
    tanh(c_t) (T, H, N), the weights."""

    z: np.ndarray
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


@lru_cache(maxsize=None)
def _gate_rows(H: int, order: str) -> np.ndarray:
    """Row indices that take PyTorch's gate blocks (i, f, g, o, H rows each) to the order ``order``."""
    start = {"i": 0, "f": H, "g": 2 * H, "o": 3 * H}
    return np.concatenate([np.arange(start[k], start[k] + H) for k in order])


_workspace = threading.local()
SCRATCH_MAX_BYTES = 32 << 20  # work arrays kept per thread, in all; beyond that they are allocated per call


def _scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """A work array that lives only inside one kernel call, kept per thread for the next call (no page faults)."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    buffers = getattr(_workspace, "buffers", None)
    if buffers is None:
        buffers = _workspace.buffers = {}
    buf = buffers.get((name, dtype))
    if buf is None or buf.size < n:
        kept = sum(b.nbytes for key, b in buffers.items() if key != (name, dtype))
        if kept + n * dtype.itemsize > SCRATCH_MAX_BYTES:
            return np.empty(shape, dtype)
        buf = buffers[(name, dtype)] = np.empty(n, dtype)
    return buf[:n].reshape(shape)


def lstm_layer_forward(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """LSTM over a sequence: returns (out (T, N, H), (h_n, c_n), cache); gates i, f, g, o.

    Feature-major: each step works on (features, batch) arrays, a_t = W z_t (4H, N) with W = [W_hh | W_ih | b]
    and z_t = [h_{t-1}; x_t; 1], so the input product, the bias and the recurrent product are one matrix
    product per step, large enough for BLAS's threads (a (4H, K) x (K, N) product; batch-major h W^T was
    slower), and each gate is a contiguous block of rows. The gates are reordered i, f, o, g so that one
    operation turns the three sigmoid gates: sigmoid(a) = (1 + tanh(a / 2)) / 2, with their rows of W halved
    (exact in binary), so one tanh over all four gates gives g = tanh(.) and i, f, o after "* 1/2 + 1/2".
    """
    T, N, I = x.shape
    H = weight_hh.shape[1]
    dtype = np.result_type(x, h0, c0, weight_ih)
    has_bias = bias_ih is not None
    blas_workers_spin(long=True)  # one product per step, 80 us apart: BLAS's workers wait for it awake
    K = H + I + has_bias
    rows = _gate_rows(H, "ifog")
    W = np.empty((4 * H, K), dtype)
    W[:, :H] = weight_hh[rows]
    W[:, H:H + I] = weight_ih[rows]
    if has_bias:
        W[:, H + I] = (bias_ih + bias_hh)[rows]
    W[:3 * H] *= 0.5
    z = np.empty((T + 1, K, N), dtype)
    z[0, :H] = h0.T
    z[:T, H:H + I] = x.transpose(0, 2, 1)
    if has_bias:
        z[:T, H + I] = 1
    acts = np.empty((T, 4 * H, N), dtype)
    cs = np.empty((T + 1, H, N), dtype)
    tanh_cs = np.empty((T, H, N), dtype)
    cs[0] = c0.T
    i_g = _scratch("i_g", (H, N), dtype)
    H2, H3 = 2 * H, 3 * H
    for t in range(T):
        a = np.matmul(W, z[t], out=acts[t])         # [i/2, f/2, o/2, g] pre-activations, (4H, N)
        np.tanh(a, out=a)
        sig = a[:H3]
        sig *= 0.5
        sig += 0.5                                   # i, f, o = sigmoid, g = tanh
        c = cs[t + 1]
        np.multiply(a[H:H2], cs[t], out=c)           # c_t = f * c_{t-1}
        c += np.multiply(a[:H], a[H3:], out=i_g)     # ... + i * g
        np.tanh(c, out=tanh_cs[t])
        np.multiply(a[H2:H3], tanh_cs[t], out=z[t + 1, :H])  # h_t = o * tanh(c_t)
    out = z[1:, :H].transpose(0, 2, 1)  # a view: the module copies it into its output anyway
    cache = LSTMLayerCache(z, cs, acts, tanh_cs, weight_ih, weight_hh, has_bias)
    return out, (np.ascontiguousarray(out[-1]), np.ascontiguousarray(cs[T].T)), cache


def _lstm_factors(acts, c_prev, tanh_cs, K, dc_from_h):
    """The factors of the LSTM's backward that depend on the forward pass only, for every step at once:
    dgates = [dc, dc, dc, dh] * K in the order i, f, g, o, with K = [g i(1-i), c_{t-1} f(1-f), i (1-g^2),
    tanh(c_t) o(1-o)] (each gate's local derivative times what it multiplies), and dc_t += dh_t * dc_from_h
    with dc_from_h = o (1 - tanh^2 c_t). acts (T, 4H, N) holds the activations i, f, o, g; K and dc_from_h
    are filled."""
    H = tanh_cs.shape[1]
    H2, H3 = 2 * H, 3 * H
    i, o, g = acts[:, :H], acts[:, H2:H3], acts[:, H3:]
    np.subtract(1, acts[:, :H2], out=K[:, :H2])
    K[:, :H2] *= acts[:, :H2]                # i(1-i), f(1-f)
    K[:, :H] *= g
    K[:, H:H2] *= c_prev
    np.multiply(g, g, out=K[:, H2:H3])
    np.subtract(1, K[:, H2:H3], out=K[:, H2:H3])
    K[:, H2:H3] *= i                         # i (1 - g^2)
    np.subtract(1, o, out=K[:, H3:])
    K[:, H3:] *= o
    K[:, H3:] *= tanh_cs                     # tanh(c_t) o(1-o)
    np.multiply(tanh_cs, tanh_cs, out=dc_from_h)
    np.subtract(1, dc_from_h, out=dc_from_h)
    dc_from_h *= o


def lstm_layer_backward(grad_out, grad_h_n, grad_c_n, cache: LSTMLayerCache, need_dx: bool = True):
    """BPTT through the LSTM; returns (dx, (dh0, dc0), (dW_ih, dW_hh, db_ih, db_hh)) (dx None without need_dx).

    Per step: dh_t = grad_out_t + W_hh^T dgates_{t+1}, dc_t = dc_{t+1} * f_{t+1} + dh_t * o_t * (1 - tanh^2 c_t),
    then di = dc * g * i(1-i), df = dc * c_{t-1} * f(1-f), dg = dc * i * (1-g^2), do = dh * tanh c_t * o(1-o).
    The factors that depend on the forward pass only (:func:`_lstm_factors`) are computed for all steps before
    the loop; the parameter gradients are one product, dgates (4H, T*N) times the stacked inputs z, and dx one
    more, after it. The loop keeps the gates in the order i, f, g, o, so that dc multiplies three blocks at once.
    """
    z, cs, acts, tanh_cs = cache.z, cache.cs, cache.acts, cache.tanh_cs
    weight_ih, weight_hh = cache.weight_ih, cache.weight_hh
    T, H, N = tanh_cs.shape
    I = weight_ih.shape[1]
    dtype = acts.dtype
    H3 = 3 * H
    blas_workers_spin(long=True)
    K = _scratch("K", (T, 4 * H, N), dtype)
    dc_from_h = _scratch("dc_from_h", (T, H, N), dtype)
    _lstm_factors(acts, cs[:-1], tanh_cs, K, dc_from_h)
    rows = _gate_rows(H, "ifgo")
    w_hh_t = _transposed(weight_hh[rows])    # (H, 4H)
    dgates = _scratch("dgates", (T, 4 * H, N), dtype)
    dh = np.zeros((H, N), dtype) if grad_h_n is None else np.array(np.transpose(grad_h_n), dtype=dtype)
    dc = np.zeros((H, N), dtype) if grad_c_n is None else np.array(np.transpose(grad_c_n), dtype=dtype)
    grad_out_t = None if grad_out is None else grad_out.transpose(0, 2, 1)  # read (H, N) per step, no copy
    tmp = _scratch("tmp", (H, N), dtype)
    f = acts[:, H:2 * H]
    for t in range(T - 1, -1, -1):
        if grad_out is not None:
            dh += grad_out_t[t]
        dc += np.multiply(dh, dc_from_h[t], out=tmp)
        d = dgates[t]
        np.multiply(dc, K[t, :H3].reshape(3, H, N), out=d[:H3].reshape(3, H, N))  # di, df, dg
        np.multiply(dh, K[t, H3:], out=d[H3:])                                    # do
        dc *= f[t]
        np.matmul(w_hh_t, d, out=dh)
    # dW = sum_t dgates_t z_t^T: one product over (t, n), with dgates as (4H, T*N) and z as (T*N, K)
    dgates_2d = _scratch("dgates_2d", (4 * H, T * N), dtype)
    np.copyto(dgates_2d.reshape(4 * H, T, N), dgates.transpose(1, 0, 2))
    z_2d = _scratch("z_2d", (T * N, z.shape[1]), dtype)
    np.copyto(z_2d.reshape(T, N, -1), z[:T].transpose(0, 2, 1))
    d_w = (dgates_2d @ z_2d)[rows.argsort()]  # back to PyTorch's order i, f, g, o
    d_w_hh, d_w_ih = np.ascontiguousarray(d_w[:, :H]), np.ascontiguousarray(d_w[:, H:H + I])
    d_b_ih = d_w[:, H + I].copy() if cache.has_bias else None
    d_b_hh = None if d_b_ih is None else d_b_ih.copy()
    dx = (dgates_2d.T @ weight_ih[rows]).reshape(T, N, I) if need_dx else None
    return dx, (np.ascontiguousarray(dh.T), np.ascontiguousarray(dc.T)), (d_w_ih, d_w_hh, d_b_ih, d_b_hh)


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
# The time loop is sequential, and the RNN's and GRU's per-step products (N, H) @ (H, G*H) are too small for
# BLAS's threads to pay off: with 2 threads, NumPy would leave the second core mostly idle. The samples of a batch are
# independent, though, so each thread runs the whole recurrence on its own slice of the batch (BLAS at one
# thread each, NumPy releases the GIL inside its loops), and the parameter gradients of the slices are summed.
# The LSTM does not split: with about 15 NumPy calls per step, its two threads spent their time handing Python's
# lock to each other (2 cores, batch 32: 1.70x PyTorch split, about 1.5x with one feature-major product per step on
# BLAS's own threads, which wait for each other without Python).

MIN_ROWS = 16  # a slice of fewer samples loses more to handing work over than it gains


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


def layer_forward(forward, x, states0, *weights, split: bool = True):
    """``forward(x, *states0, *weights)`` (a kernel above) on the whole batch, split over threads when more
    than one is allowed and ``split`` (the LSTM's kernel uses BLAS's threads instead); the same (out, final
    states, cache) come back, the cache a :class:`BatchSlices` when split."""
    slices = _batch_slices(x.shape[1]) if split else [slice(None)]
    if len(slices) == 1:
        return forward(x, *states0, *weights)
    results = on_threads(lambda s: forward(np.ascontiguousarray(x[:, s]), *(h[s] for h in states0), *weights),
                         slices, one_blas_thread=True)
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
    results = on_threads(part, list(range(len(cache.slices))), one_blas_thread=True)
    dx = np.concatenate([r[0] for r in results], axis=1) if need_dx else None
    grads0 = tuple(np.concatenate(parts, axis=0) for parts in zip(*(r[1] for r in results)))
    param_grads = tuple(None if g[0] is None else sum(g[1:], g[0]) for g in zip(*(r[2] for r in results)))
    return dx, grads0, param_grads
