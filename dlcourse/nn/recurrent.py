"""Recurrent layers over whole sequences: ``RNN``, ``LSTM``, ``GRU`` (as in ``torch.nn``).

Contract of the family (PyTorch's):

* ``out, h_n = rnn.forward(x, h0=None)``, ``out, (h_n, c_n) = lstm.forward(x, hx=None)`` with hx a
  tuple (h0, c0), ``out, h_n = gru.forward(x, h0=None)``. A missing initial state means zeros.
* Shapes (L = sequence length, N = batch, D = 2 if bidirectional else 1, H = hidden_size):
  x (L, N, input_size), or (N, L, input_size) with ``batch_first=True``, or unbatched (L, input_size);
  out (L, N, D*H) (batch_first: (N, L, D*H); unbatched: (L, D*H)) holds the last layer's h_t at
  every step; h0, h_n, c0, c_n are (num_layers*D, N, H) whatever batch_first says (unbatched:
  (num_layers*D, H)).
* ``backward(grad_out, grad_h_n=None, grad_c_n=None)`` is backpropagation through time: it returns
  dLoss/dx, accumulates every parameter gradient, and leaves dLoss/dh0 (and dLoss/dc0) in
  ``grad_h0`` (and ``grad_c0``). ``grad_out=None`` means the loss does not use ``out``.
* Parameters carry PyTorch's names and shapes: ``weight_ih_l{k}`` (G*H, input size of layer k),
  ``weight_hh_l{k}`` (G*H, H), ``bias_ih_l{k}``, ``bias_hh_l{k}`` (G*H,), with the suffix ``_reverse``
  for the backward direction; G = 1 (RNN), 4 (LSTM, gate order i, f, g, o), 3 (GRU, order r, z, n).
  Initialisation as in PyTorch: everything ~ U(-1/sqrt(H), 1/sqrt(H)).
* Forward caches, per layer and direction, the layer input and every hidden state (LSTM: also the
  cell states, the gate activations and tanh(c_t); GRU: the gate activations and W_hn h + b_hn), as
  the named :class:`RNNLayerCache`, :class:`LSTMLayerCache`, :class:`GRULayerCache`, gathered in a
  :class:`SequenceCache`.
* With ``needs_input_grad = False`` (the input is data; see ``Module``) backward skips the first
  layer's dLoss/dx and returns None; ``grad_h0`` and ``grad_c0`` are still computed.

Speed: the input products W_ih x_t of all time steps are one matrix product before the loop, the
parameter gradients are one matrix product after it, and the loop itself works in preallocated
buffers; only the recurrent product h_{t-1} W_hh^T and a few elementwise operations run per step.
The per-step math is the readable one of ``rnn_cells.py``, which the tests check against the same
PyTorch layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_array, check_finite
from ..random import get_rng
from . import init
from .module import Module
from .parameter import Parameter

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


@dataclass
class SequenceCache:
    """A whole recurrent module's forward pass: ``layers[layer][direction]`` is a layer cache above,
    ``dropout_masks[layer]`` the mask applied to that layer's output (None without dropout), and the
    time-major input shape (T, N, input_size), whether the input had a batch axis, and the dtype."""

    layers: list
    dropout_masks: list
    input_shape: tuple
    batched: bool
    dtype: np.dtype


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
    """h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh): returns (out (T, N, H), h_n, cache)."""
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
    return hs[1:], hs[T], cache


def rnn_layer_backward(grad_out, grad_h_n, cache: RNNLayerCache, need_dx: bool = True):
    """BPTT: dh_t = grad_out_t + dpre_{t+1} W_hh, dpre_t = dh_t * act'(h_t).

    Returns (dx (T, N, I), dh0 (N, H), (dW_ih, dW_hh, db_ih, db_hh)); dx is None with ``need_dx=False``.
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
    return dx, dh, grads


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


def lstm_layer_backward(grad_out, grad_h_n, grad_c_n, cache: LSTMLayerCache, need_dx: bool = True):
    """BPTT through the LSTM; returns (dx, (dh0, dc0), (dW_ih, dW_hh, db_ih, db_hh)) (dx None without need_dx).

    Per step: dh_t = grad_out_t + dgates_{t+1} W_hh, dc_t = dc_{t+1} * f_{t+1} + dh_t * o_t * (1 - tanh^2 c_t),
    then di = dc * g * i(1-i), df = dc * c_{t-1} * f(1-f), dg = dc * i * (1-g^2), do = dh * tanh c_t * o(1-o).
    Every factor that depends on the forward pass only is computed for all steps before the loop.
    """
    x, hs, cs, acts, tanh_cs = cache.x, cache.hs, cache.cs, cache.acts, cache.tanh_cs
    weight_ih, weight_hh = cache.weight_ih, cache.weight_hh
    T, N, H = tanh_cs.shape
    a4 = acts.reshape(T, N, 4, H)
    i, f, g, o = a4[:, :, 0], a4[:, :, 1], a4[:, :, 2], a4[:, :, 3]
    # K: dgates = [dc, dc, dc, dh] * K, each gate's local derivative times what it multiplies
    K = np.subtract(1, a4)
    K *= a4                                   # s (1 - s) for i, f, o
    np.multiply(g, g, out=K[:, :, 2])
    np.subtract(1, K[:, :, 2], out=K[:, :, 2])  # 1 - g^2 for g
    K[:, :, 0] *= g
    K[:, :, 1] *= cs[:-1]
    K[:, :, 2] *= i
    K[:, :, 3] *= tanh_cs
    dc_from_h = np.multiply(tanh_cs, tanh_cs)  # dc_t += dh_t * o_t (1 - tanh^2 c_t)
    np.subtract(1, dc_from_h, out=dc_from_h)
    dc_from_h *= o
    dgates = np.empty_like(a4)
    dh = np.zeros((N, H), hs.dtype) if grad_h_n is None else np.array(grad_h_n, dtype=hs.dtype)
    dc = np.zeros((N, H), hs.dtype) if grad_c_n is None else np.array(grad_c_n, dtype=hs.dtype)
    tmp = np.empty((N, H), hs.dtype)
    dgates_flat = dgates.reshape(T, N, 4 * H)
    for t in range(T - 1, -1, -1):
        if grad_out is not None:
            dh += grad_out[t]
        dc += np.multiply(dh, dc_from_h[t], out=tmp)
        np.multiply(dc[:, None, :], K[t, :, :3], out=dgates[t, :, :3])
        np.multiply(dh, K[t, :, 3], out=dgates[t, :, 3])
        dc *= f[t]
        np.matmul(dgates_flat[t], weight_hh, out=dh)
    grads = _param_grads(dgates_flat, dgates_flat, x, hs[:-1], cache.has_bias)
    dx = (dgates_flat.reshape(T * N, 4 * H) @ weight_ih).reshape(x.shape) if need_dx else None
    return dx, (dh, dc), grads


def gru_layer_forward(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """GRU over a sequence: returns (out (T, N, H), h_n, cache); gates r, z, n."""
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
    return hs[1:], hs[T], cache


def gru_layer_backward(grad_out, grad_h_n, cache: GRULayerCache, need_dx: bool = True):
    """BPTT through the GRU; returns (dx, dh0, (dW_ih, dW_hh, db_ih, db_hh)) (dx None without need_dx)."""
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
    return dx, dh, grads


# ---------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------


class _RNNBase(Module):
    _num_gates = {"RNN_TANH": 1, "RNN_RELU": 1, "LSTM": 4, "GRU": 3}

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, dtype=np.float32):
        super().__init__()
        name = type(self).__name__
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(f"{name}: expected positive sizes, got input_size={input_size}, "
                             f"hidden_size={hidden_size}, num_layers={num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: expected 0 <= dropout < 1, got {dropout}")
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        G = self._num_gates[mode] * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self._suffixes():
                sfx = f"_l{layer}{suffix}"
                setattr(self, "weight_ih" + sfx, Parameter(np.zeros((G, layer_input), dtype=dtype)))
                setattr(self, "weight_hh" + sfx, Parameter(np.zeros((G, hidden_size), dtype=dtype)))
                if bias:
                    setattr(self, "bias_ih" + sfx, Parameter(np.zeros(G, dtype=dtype)))
                    setattr(self, "bias_hh" + sfx, Parameter(np.zeros(G, dtype=dtype)))
        self.reset_parameters()
        self._cache = None
        self.grad_h0 = None
        self.grad_c0 = None

    def reset_parameters(self) -> None:
        """Every weight and bias ~ U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as torch, drawn through
        ``nn.init`` in registration order (layer by layer, direction by direction, w_ih, w_hh, b_ih, b_hh)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def _suffixes(self):
        return ["", "_reverse"][:self.num_directions]

    def _layer_params(self, layer, suffix):
        """[weight_ih, weight_hh, bias_ih, bias_hh] of one layer and direction (biases None without bias)."""
        sfx = f"_l{layer}{suffix}"
        return [self._parameters.get(n + sfx) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    # -- input checks ----------------------------------------------------------------------
    def _check_input(self, x):
        name = type(self).__name__
        x = as_array(x, f"{name} input")
        layout = "(batch, seq_len, input_size)" if self.batch_first else "(seq_len, batch, input_size)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape {layout} or (seq_len, input_size) with "
                             f"input_size={self.input_size}, got {x.shape}")
        if 0 in x.shape:
            raise ValueError(f"{name}: expected a non-empty sequence and batch, got input shape {x.shape}")
        check_finite(x, f"{name} input")
        batched = x.ndim == 3
        if not batched:
            x = x[:, None]
        elif self.batch_first:
            x = x.transpose(1, 0, 2)
        return np.ascontiguousarray(x), batched

    def _check_state(self, s, which, N, batched):
        name = type(self).__name__
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        want = (LD, N, H) if batched else (LD, H)
        if s is None:
            return None
        s = as_array(s, f"{name} {which}")
        if s.shape != want:
            raise ValueError(f"{name}: expected {which} of shape (num_layers * num_directions, batch, "
                             f"hidden_size) = {want}, got {s.shape}")
        check_finite(s, f"{name} {which}")
        return s if batched else s[:, None]

    def _to_time_major(self, g, batched, what, shape):
        """Bring a gradient in the output's layout to (T, N, D*H) (or None)."""
        if g is None:
            return None
        g = as_array(g, what)
        want = shape if batched else (shape[0], shape[2])
        if batched and self.batch_first:
            want = (shape[1], shape[0], shape[2])
        if g.shape != want:
            raise ValueError(f"{type(self).__name__}.backward: expected {what} of shape {want}, got {g.shape}")
        if not batched:
            return g[:, None]
        return g.transpose(1, 0, 2) if self.batch_first else g

    # -- forward / backward ----------------------------------------------------------------
    def _run(self, x, hx, batched):
        """Run every layer and direction; hx is a tuple of time-major states (h0,) or (h0, c0) or Nones."""
        T, N, _ = x.shape
        H, D = self.hidden_size, self.num_directions
        dtype = np.result_type(x, self.weight_ih_l0.data)
        states0 = [np.zeros((self.num_layers * D, N, H), dtype) if s is None else s for s in hx]
        finals = [np.empty((self.num_layers * D, N, H), dtype) for _ in states0]
        caches, masks = [], []
        layer_x = x
        for layer in range(self.num_layers):
            out = np.empty((T, N, D * H), dtype)
            layer_caches = []
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                w_ih, w_hh, b_ih, b_hh = (None if p is None else p.data for p in self._layer_params(layer, suffix))
                xin = layer_x if d == 0 else layer_x[::-1]
                s0 = [s[idx] for s in states0]
                if self.mode == "LSTM":
                    o, (h_n, c_n), cache = lstm_layer_forward(xin, s0[0], s0[1], w_ih, w_hh, b_ih, b_hh)
                    finals[1][idx] = c_n
                elif self.mode == "GRU":
                    o, h_n, cache = gru_layer_forward(xin, s0[0], w_ih, w_hh, b_ih, b_hh)
                else:
                    nonlin = "tanh" if self.mode == "RNN_TANH" else "relu"
                    o, h_n, cache = rnn_layer_forward(xin, s0[0], w_ih, w_hh, b_ih, b_hh, nonlin)
                finals[0][idx] = h_n
                out[:, :, d * H:(d + 1) * H] = o if d == 0 else o[::-1]
                layer_caches.append(cache)
            caches.append(layer_caches)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                mask = (get_rng().random(out.shape) < keep).astype(dtype) / keep
                out = out * mask
            masks.append(mask)
            layer_x = out
        self._cache = SequenceCache(caches, masks, x.shape, batched, dtype)
        return layer_x, finals

    def _finish_output(self, out, batched):
        if not batched:
            return out[:, 0]
        return out.transpose(1, 0, 2) if self.batch_first else out

    def _backward(self, grad_out, grad_finals):
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        cache_all = self._cache
        caches, masks, batched, dtype = cache_all.layers, cache_all.dropout_masks, cache_all.batched, cache_all.dtype
        T, N, _ = cache_all.input_shape
        H, D = self.hidden_size, self.num_directions
        shape = (T, N, D * H)
        g = self._to_time_major(grad_out, batched, "grad_out", shape)
        LD = self.num_layers * D
        gf = []
        for name, s in grad_finals:
            if s is not None:
                s = as_array(s, name)
                want = (LD, N, H) if batched else (LD, H)
                if s.shape != want:
                    raise ValueError(f"{type(self).__name__}.backward: expected {name} of shape {want}, got {s.shape}")
                s = s if batched else s[:, None]
            gf.append(s)
        grad_states0 = [np.zeros((LD, N, H), dtype) for _ in grad_finals]
        for layer in range(self.num_layers - 1, -1, -1):
            if masks[layer] is not None and g is not None:
                g = g * masks[layer]
            dx_layer = None
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                cache = caches[layer][d]
                g_dir = None if g is None else g[:, :, d * H:(d + 1) * H]
                if g_dir is not None and d == 1:
                    g_dir = g_dir[::-1]
                g_fin = [None if s is None else s[idx] for s in gf]
                need_dx = layer > 0 or self.needs_input_grad  # the first layer's dx only when the caller wants it
                if self.mode == "LSTM":
                    dx, (dh0, dc0), grads = lstm_layer_backward(g_dir, g_fin[0], g_fin[1], cache, need_dx)
                    grad_states0[1][idx] = dc0
                elif self.mode == "GRU":
                    dx, dh0, grads = gru_layer_backward(g_dir, g_fin[0], cache, need_dx)
                else:
                    dx, dh0, grads = rnn_layer_backward(g_dir, g_fin[0], cache, need_dx)
                grad_states0[0][idx] = dh0
                for p, gp in zip(self._layer_params(layer, suffix), grads):
                    if p is not None:
                        p.accumulate(gp)
                if dx is None:
                    continue
                if d == 1:
                    dx = dx[::-1]
                dx_layer = dx if dx_layer is None else dx_layer + dx
            g = dx_layer
        if not batched:
            grad_states0 = [s[:, 0] for s in grad_states0]
        self.grad_h0 = grad_states0[0]
        if self.mode == "LSTM":
            self.grad_c0 = grad_states0[1]
        return None if g is None else self._finish_output(g, batched)

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s


class _SingleState(_RNNBase):
    """RNN and GRU: one state, ``out, h_n = forward(x, h0=None)``, ``backward(grad_out, grad_h_n=None)``."""

    def forward(self, x, h0=None):
        x, batched = self._check_input(x)
        h0 = self._check_state(h0, "h0", x.shape[1], batched)
        out, (h_n,) = self._run(x, (h0,), batched)
        return self._finish_output(out, batched), (h_n if batched else h_n[:, 0])

    def backward(self, grad_out=None, grad_h_n=None):
        return self._backward(grad_out, [("grad_h_n", grad_h_n)])


class RNN(_SingleState):
    """Elman RNN: h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh) (or relu), stacked ``num_layers`` deep.

    ``out, h_n = rnn.forward(x, h0=None)``; ``dx = rnn.backward(grad_out, grad_h_n=None)``.
    Shapes and caches: see the module docstring.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size, hidden_size,
                         num_layers, bias, batch_first, dropout, bidirectional, dtype)
        self.nonlinearity = nonlinearity


class GRU(_SingleState):
    """Gated recurrent unit, gates r, z, n (see ``rnn_cells.py``). Same interface as :class:`RNN`."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, dtype=np.float32):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)


class LSTM(_RNNBase):
    """Long short-term memory, gates i, f, g, o, stacked ``num_layers`` deep.

    ``out, (h_n, c_n) = lstm.forward(x, hx=None)`` with hx = (h0, c0);
    ``dx = lstm.backward(grad_out, grad_h_n=None, grad_c_n=None)``; dLoss/dh0, dLoss/dc0 land in
    ``grad_h0``, ``grad_c0``. Shapes and caches: see the module docstring.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0,
                 dtype=np.float32):
        if proj_size != 0:  # torch's argument, accepted at its default; the projection is not implemented here
            raise ValueError(f"LSTM: proj_size={proj_size} (an LSTM with projections, h_t = W_hr(o * tanh c_t)) is not "
                             "implemented in dlcourse; only proj_size=0, the plain LSTM of the course")
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype)

    def forward(self, x, hx=None):
        x, batched = self._check_input(x)
        if hx is None:
            h0 = c0 = None
        elif isinstance(hx, (tuple, list)) and len(hx) == 2:
            h0 = self._check_state(hx[0], "h0", x.shape[1], batched)
            c0 = self._check_state(hx[1], "c0", x.shape[1], batched)
        else:
            raise ValueError(f"LSTM: expected hx to be a tuple (h0, c0) or None, got {type(hx).__name__}")
        out, (h_n, c_n) = self._run(x, (h0, c0), batched)
        if not batched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return self._finish_output(out, batched), (h_n, c_n)

    def backward(self, grad_out=None, grad_h_n=None, grad_c_n=None):
        return self._backward(grad_out, [("grad_h_n", grad_h_n), ("grad_c_n", grad_c_n)])
