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
from .recurrent_functional import (
    gru_layer_backward,
    gru_layer_forward,
    lstm_layer_backward,
    lstm_layer_forward,
    rnn_layer_backward,
    rnn_layer_forward,
)


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
