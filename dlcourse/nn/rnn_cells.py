"""One time step of a recurrent network: ``RNNCell``, ``LSTMCell``, ``GRUCell`` (as in ``torch.nn``).

The three recurrences, with PyTorch's weight layout (``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H),
``bias_ih`` and ``bias_hh`` (G*H,); G = 1, 4, 3 gates; H = hidden_size, I = input_size):

RNN   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)            (or relu)

LSTM  [i, f, g, o] = W_ih x + b_ih + W_hh h + b_hh       (gate order i, f, g, o)
      i, f, o = sigmoid(.),  g = tanh(.)
      c' = f * c + i * g
      h' = o * tanh(c')

GRU   [r, z] = sigmoid(W_ir/iz x + b_ir/iz + W_hr/hz h + b_hr/hz)       (gate order r, z, n)
      n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
      h' = (1 - z) * n + z * h

Each cell is written twice, readably: a pointwise part that maps the gate pre-activations to the
new state (``lstm_pointwise`` and friends) with its backward, and a full step (``lstm_cell``...)
that adds the two matrix products. The sequence layers in ``recurrent.py`` run the same math over
all time steps, with the input products of every step hoisted out of the loop.

Cell modules follow the layer contract: ``forward(input, hx=None)`` caches the step, and
``backward(grad_h)`` (LSTM: ``backward(grad_h, grad_c=None)``) returns dLoss/dinput, accumulates
every parameter gradient, and leaves dLoss/dhx in ``cell.grad_hx`` (LSTM: a tuple (dh, dc)),
which is what the previous time step needs in backpropagation through time.
Shapes: input (N, I) or unbatched (I,); h and c (N, H) or (H,); a missing hx means zeros.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_array, check_finite
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

# ---------------------------------------------------------------------------------------
# Pointwise parts: gate pre-activations -> new state, and back
# ---------------------------------------------------------------------------------------


#: nonlinearity -> (the activation of the pre-activation, its derivative read off the output h')
RNN_ACTIVATIONS = {
    "tanh": (np.tanh, lambda h: 1 - h * h),
    "relu": (lambda pre: np.maximum(pre, 0), lambda h: h > 0),
}


def rnn_activation(pre, nonlinearity: str = "tanh"):
    """h' = tanh(pre) or relu(pre), pre = W_ih x + b_ih + W_hh h + b_hh."""
    if nonlinearity not in RNN_ACTIVATIONS:
        raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return RNN_ACTIVATIONS[nonlinearity][0](pre)


def rnn_activation_backward(grad_h, h, nonlinearity: str = "tanh"):
    """dLoss/dpre from dLoss/dh' and the cached output h': tanh' = 1 - h'^2, relu' = 1[h' > 0]."""
    return grad_h * RNN_ACTIVATIONS[nonlinearity][1](h)


def lstm_pointwise(gates, c_prev):
    """LSTM gates (N, 4H) pre-activations [i, f, g, o] and c (N, H) -> (h', c', acts, tanh(c')).

    ``acts`` holds the four gate activations side by side, (N, 4H); with tanh(c') it is what the
    backward pass needs.
    """
    H = c_prev.shape[-1]
    acts = np.empty_like(gates)
    acts[..., :2 * H] = F.sigmoid(gates[..., :2 * H])        # input gate i, forget gate f
    acts[..., 2 * H:3 * H] = np.tanh(gates[..., 2 * H:3 * H])  # candidate g
    acts[..., 3 * H:] = F.sigmoid(gates[..., 3 * H:])         # output gate o
    i, f, g, o = (acts[..., k * H:(k + 1) * H] for k in range(4))
    c = f * c_prev + i * g
    tanh_c = np.tanh(c)
    return o * tanh_c, c, acts, tanh_c


def lstm_pointwise_backward(grad_h, grad_c, acts, c_prev, tanh_c):
    """Backward of :func:`lstm_pointwise`: (dLoss/dgates (N, 4H), dLoss/dc_prev (N, H)).

    dc = grad_c + grad_h * o * (1 - tanh(c')^2)    (c' reaches the loss directly and through h')
    do = grad_h * tanh(c'),  di = dc * g,  dg = dc * i,  df = dc * c_prev,  dc_prev = dc * f,
    then each through its activation: sigma' = s (1 - s), tanh' = 1 - t^2.
    """
    H = c_prev.shape[-1]
    i, f, g, o = (acts[..., k * H:(k + 1) * H] for k in range(4))
    dc = grad_h * o * (1 - tanh_c * tanh_c)
    if grad_c is not None:
        dc = dc + grad_c
    dgates = np.empty_like(acts)
    dgates[..., :H] = dc * g * i * (1 - i)
    dgates[..., H:2 * H] = dc * c_prev * f * (1 - f)
    dgates[..., 2 * H:3 * H] = dc * i * (1 - g * g)
    dgates[..., 3 * H:] = grad_h * tanh_c * o * (1 - o)
    return dgates, dc * f


def gru_pointwise(gi, gh, h_prev):
    """GRU: input products gi (N, 3H) = W_ih x + b_ih, hidden products gh (N, 3H) = W_hh h + b_hh.

    Returns (h', acts) with acts = [r, z, n] (N, 3H); the backward pass also needs gh's n part.
    """
    H = h_prev.shape[-1]
    rz = F.sigmoid(gi[..., :2 * H] + gh[..., :2 * H])
    r, z = rz[..., :H], rz[..., H:]
    n = np.tanh(gi[..., 2 * H:] + r * gh[..., 2 * H:])
    h = n + z * (h_prev - n)  # = (1 - z) n + z h_prev
    return h, np.concatenate([rz, n], axis=-1)


def gru_pointwise_backward(grad_h, acts, gh_n, h_prev):
    """Backward of :func:`gru_pointwise`: (dLoss/dgi, dLoss/dgh, the direct part of dLoss/dh_prev).

    The full dLoss/dh_prev is the direct part (grad_h * z) plus dgh @ W_hh.
    """
    H = h_prev.shape[-1]
    r, z, n = acts[..., :H], acts[..., H:2 * H], acts[..., 2 * H:]
    dn_pre = grad_h * (1 - z) * (1 - n * n)          # through n = tanh(n_pre)
    dz_pre = grad_h * (h_prev - n) * z * (1 - z)
    dr_pre = dn_pre * gh_n * r * (1 - r)
    dgi = np.concatenate([dr_pre, dz_pre, dn_pre], axis=-1)
    dgh = np.concatenate([dr_pre, dz_pre, dn_pre * r], axis=-1)
    return dgi, dgh, grad_h * z


# ---------------------------------------------------------------------------------------
# Full steps (the functional forms of torch's cells)
# ---------------------------------------------------------------------------------------


def _affine(x, weight, bias):
    y = x @ weight.T
    return y if bias is None else y + bias


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None, nonlinearity: str = "tanh"):
    """One RNN step: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)."""
    return rnn_activation(_affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh), nonlinearity)


def lstm_cell(x, hx, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One LSTM step: hx = (h, c) -> (h', c')."""
    h, c = hx
    gates = _affine(x, weight_ih, bias_ih) + _affine(h, weight_hh, bias_hh)
    h_new, c_new, _, _ = lstm_pointwise(gates, c)
    return h_new, c_new


def gru_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One GRU step: h -> h'."""
    h_new, _ = gru_pointwise(_affine(x, weight_ih, bias_ih), _affine(h, weight_hh, bias_hh), h)
    return h_new


# ---------------------------------------------------------------------------------------
# Cell modules
# ---------------------------------------------------------------------------------------


@dataclass
class CellCache:
    """What a cell's forward keeps for its backward: the input x (N, I), the state h (N, H) it started
    from, whether the input had a batch axis, and per cell: RNN the new state ``h_new``; LSTM the cell
    state ``c``, the gate activations ``acts`` (N, 4H) and ``tanh_c`` = tanh(c'); GRU ``acts`` (N, 3H)
    and ``gh_n`` = W_hn h + b_hn."""

    x: np.ndarray
    h: np.ndarray
    batched: bool
    h_new: np.ndarray | None = None
    c: np.ndarray | None = None
    acts: np.ndarray | None = None
    tanh_c: np.ndarray | None = None
    gh_n: np.ndarray | None = None


class _CellBase(Module):
    _num_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"{type(self).__name__}: expected positive sizes, got input_size={input_size}, "
                             f"hidden_size={hidden_size}")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G = self._num_gates * hidden_size
        self.weight_ih = Parameter(np.zeros((G, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.zeros((G, hidden_size), dtype=dtype))
        if bias:
            self.bias_ih = Parameter(np.zeros(G, dtype=dtype))
            self.bias_hh = Parameter(np.zeros(G, dtype=dtype))
        else:
            self.bias_ih = self.bias_hh = None
        self.reset_parameters()
        self._cache = None

    def reset_parameters(self) -> None:
        """PyTorch's: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)), through ``nn.init``."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            if p is not None:
                init.uniform_(p, -bound, bound)
        self.grad_hx = None

    def _params(self):
        b_ih = None if self.bias_ih is None else self.bias_ih.data
        b_hh = None if self.bias_hh is None else self.bias_hh.data
        return self.weight_ih.data, self.weight_hh.data, b_ih, b_hh

    def _check_input(self, x):
        name = type(self).__name__
        x = as_array(x, f"{name} input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{name}: expected input of shape (batch, input_size={self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        if x.ndim == 2 and x.shape[0] == 0:
            raise ValueError(f"{name}: expected a non-empty batch, got input shape {x.shape}")
        check_finite(x, f"{name} input")
        batched = x.ndim == 2
        return (x if batched else x[None]), batched

    def _check_state(self, s, what, n, batched, dtype=None):
        """A state (h, c) or a gradient of one, (N, H) (unbatched (H,)), as a batched array; None becomes zeros
        of ``dtype`` (None stays None without a dtype)."""
        if s is None:
            return None if dtype is None else np.zeros((n, self.hidden_size), dtype=dtype)
        name = type(self).__name__
        s = as_array(s, f"{name} {what}")
        want = (n, self.hidden_size) if batched else (self.hidden_size,)
        if s.shape != want:
            raise ValueError(f"{name}: expected {what} of shape {want}, got {s.shape}")
        return s if batched else s[None]

    def _accumulate(self, dpre_i, dpre_h, x, h):
        """Parameter gradients from the pre-activation gradients of the x- and h-products."""
        self.weight_ih.accumulate(dpre_i.T @ x)
        self.weight_hh.accumulate(dpre_h.T @ h)
        if self.bias_ih is not None:
            self.bias_ih.accumulate(dpre_i.sum(axis=0))
            self.bias_hh.accumulate(dpre_h.sum(axis=0))

    def _input_grad(self, dpre_i, batched):
        """dLoss/dinput = dpre_i W_ih, or None with ``needs_input_grad = False`` (see ``Module``)."""
        if not self.needs_input_grad:
            return None
        dx = dpre_i @ self.weight_ih.data
        return dx if batched else dx[0]

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


class RNNCell(_CellBase):
    """Elman RNN cell, h' = tanh(W_ih x + b_ih + W_hh h + b_hh) (``nonlinearity='relu'`` for relu).

    Caches x, h and h' (tanh' and relu' are read off the output).
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype=np.float32):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        x, batched = self._check_input(input)
        h = self._check_state(hx, "hx", x.shape[0], batched, x.dtype)
        h_new = rnn_cell(x, h, *self._params(), nonlinearity=self.nonlinearity)
        self._cache = CellCache(x, h, batched, h_new=h_new)
        return self.end_forward(h_new if batched else h_new[0])

    def backward(self, grad_h, retain_graph: bool = False):
        grad_h = self.begin_backward(grad_h, retain_graph)
        x, h, h_new, batched = self._cache.x, self._cache.h, self._cache.h_new, self._cache.batched
        grad_h = grad_h if batched else grad_h[None]
        dpre = rnn_activation_backward(grad_h, h_new, self.nonlinearity)
        self._accumulate(dpre, dpre, x, h)
        dh = dpre @ self.weight_hh.data
        self.grad_hx = dh if batched else dh[0]
        return self._input_grad(dpre, batched)

    def extra_repr(self):
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity!r}")


class LSTMCell(_CellBase):
    """LSTM cell: (h, c) -> (h', c'), gates i, f, g, o (see the module docstring).

    Caches x, h, c, the four gate activations and tanh(c').
    """

    _num_gates = 4

    def forward(self, input, hx=None):
        x, batched = self._check_input(input)
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError("LSTMCell: expected hx to be a tuple (h, c) or None, "
                             f"got {type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        h = self._check_state(h0, "h", x.shape[0], batched, x.dtype)
        c = self._check_state(c0, "c", x.shape[0], batched, x.dtype)
        W_ih, W_hh, b_ih, b_hh = self._params()
        gates = _affine(x, W_ih, b_ih) + _affine(h, W_hh, b_hh)
        h_new, c_new, acts, tanh_c = lstm_pointwise(gates, c)
        self._cache = CellCache(x, h, batched, c=c, acts=acts, tanh_c=tanh_c)
        return self.end_forward((h_new, c_new) if batched else (h_new[0], c_new[0]))

    def backward(self, grad_h, grad_c=None, retain_graph: bool = False):
        grad_h = self.begin_backward(grad_h, retain_graph)
        cache = self._cache
        x, h, c, acts, tanh_c, batched = cache.x, cache.h, cache.c, cache.acts, cache.tanh_c, cache.batched
        grad_h = grad_h if batched else grad_h[None]
        grad_c = self._check_state(grad_c, "grad_c", x.shape[0], batched)
        dgates, dc = lstm_pointwise_backward(grad_h, grad_c, acts, c, tanh_c)
        self._accumulate(dgates, dgates, x, h)
        dh = dgates @ self.weight_hh.data
        self.grad_hx = (dh, dc) if batched else (dh[0], dc[0])
        return self._input_grad(dgates, batched)


class GRUCell(_CellBase):
    """GRU cell: h -> h', gates r, z, n (see the module docstring).

    Caches x, h, the gate activations [r, z, n] and the n part of W_hh h + b_hh.
    """

    _num_gates = 3

    def forward(self, input, hx=None):
        x, batched = self._check_input(input)
        h = self._check_state(hx, "hx", x.shape[0], batched, x.dtype)
        W_ih, W_hh, b_ih, b_hh = self._params()
        gh = _affine(h, W_hh, b_hh)
        h_new, acts = gru_pointwise(_affine(x, W_ih, b_ih), gh, h)
        self._cache = CellCache(x, h, batched, acts=acts, gh_n=gh[:, 2 * self.hidden_size:])
        return self.end_forward(h_new if batched else h_new[0])

    def backward(self, grad_h, retain_graph: bool = False):
        grad_h = self.begin_backward(grad_h, retain_graph)
        cache = self._cache
        x, h, acts, gh_n, batched = cache.x, cache.h, cache.acts, cache.gh_n, cache.batched
        grad_h = grad_h if batched else grad_h[None]
        dgi, dgh, dh = gru_pointwise_backward(grad_h, acts, gh_n, h)
        self._accumulate(dgi, dgh, x, h)
        dh = dh + dgh @ self.weight_hh.data
        self.grad_hx = dh if batched else dh[0]
        return self._input_grad(dgi, batched)
