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
  the named ``RNNLayerCache``, ``LSTMLayerCache``, ``GRULayerCache`` of ``recurrent_functional``,
  gathered in a :class:`SequenceCache`.
* With ``needs_input_grad = False`` (the input is data; see ``Module``) backward skips the first
  layer's dLoss/dx and returns None; ``grad_h0`` and ``grad_c0`` are still computed.

The modules stack layers and directions and check shapes; one layer in one direction is a kernel
of ``recurrent_functional.py``, picked from the table :data:`RECURRENCES` by the mode (how many gates,
how many states, which forward and backward kernel), and run through ``layer_forward`` /
``layer_backward`` there, which split the batch over threads when more than one is allowed (RNN, GRU; the
LSTM's kernel uses BLAS's threads).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from .._checks import as_array, check_finite
from ..random import get_rng
from . import init
from . import recurrent_functional as RF
from .module import Module
from .parameter import Parameter


@dataclass(frozen=True)
class Recurrence:
    """What differs between RNN, LSTM and GRU: the number of gates G (weights have G*H rows), the names of
    the states (h, or h and c) and the two kernels. ``forward(x, *states0, w_ih, w_hh, b_ih, b_hh)`` returns
    (out, final states, cache); ``backward(grad_out, *grad_final_states, cache, need_dx)`` returns
    (dx, grad initial states, (dW_ih, dW_hh, db_ih, db_hh)). ``split_batch``: with several threads allowed,
    run the kernel on slices of the batch, one per thread (the LSTM's kernel uses BLAS's threads instead)."""

    gates: int
    states: tuple
    forward: Callable
    backward: Callable
    split_batch: bool = True


RECURRENCES = {
    "RNN_TANH": Recurrence(1, ("h",), partial(RF.rnn_layer_forward, nonlinearity="tanh"), RF.rnn_layer_backward),
    "RNN_RELU": Recurrence(1, ("h",), partial(RF.rnn_layer_forward, nonlinearity="relu"), RF.rnn_layer_backward),
    "LSTM": Recurrence(4, ("h", "c"), RF.lstm_layer_forward, RF.lstm_layer_backward, split_batch=False),
    "GRU": Recurrence(3, ("h",), RF.gru_layer_forward, RF.gru_layer_backward),
}


@dataclass
class SequenceCache:
    """A whole recurrent module's forward pass: ``layers[layer][direction]`` is a layer cache of
    ``recurrent_functional``, ``dropout_masks[layer]`` the mask applied to that layer's output (None without
    dropout), and the time-major input shape (T, N, input_size), whether the input had a batch axis, and the
    dtype."""

    layers: list
    dropout_masks: list
    input_shape: tuple
    batched: bool
    dtype: np.dtype


class _RNNBase(Module):
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
        self.recurrence = RECURRENCES[mode]
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = bidirectional
        self.num_directions = 2 if bidirectional else 1
        G = self.recurrence.gates * hidden_size
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

    def _check_state(self, s, what, N, batched):
        """An initial state (h0, c0) or a final state's gradient (grad_h_n, grad_c_n), (num_layers*D, N, H)
        (unbatched (num_layers*D, H)), as a batched array; None stays None."""
        if s is None:
            return None
        name = type(self).__name__
        LD, H = self.num_layers * self.num_directions, self.hidden_size
        want = (LD, N, H) if batched else (LD, H)
        s = as_array(s, f"{name} {what}")
        if s.shape != want:
            raise ValueError(f"{name}: expected {what} of shape (num_layers * num_directions, batch, "
                             f"hidden_size) = {want}, got {s.shape}")
        check_finite(s, f"{name} {what}")
        return s if batched else s[:, None]

    def _to_time_major(self, g, batched):
        """A gradient in the output's layout (begin_backward checked its shape) -> (T, N, D*H), or None."""
        if g is None:
            return None
        if not batched:
            return g[:, None]
        return g.transpose(1, 0, 2) if self.batch_first else g

    def _finish_output(self, out, batched):
        if not batched:
            return out[:, 0]
        return out.transpose(1, 0, 2) if self.batch_first else out

    # -- forward / backward ----------------------------------------------------------------
    def _forward(self, x, states0, batched):
        """Every layer and direction, time-major; states0 holds (h0,) or (h0, c0), each (LD, N, H) or None.
        Returns the last layer's out (T, N, D*H) and the final states, each (LD, N, H)."""
        input_shape, (T, N, _) = x.shape, x.shape
        H, D = self.hidden_size, self.num_directions
        dtype = np.result_type(x, self.weight_ih_l0.data)
        states0 = [np.zeros((self.num_layers * D, N, H), dtype) if s is None else s for s in states0]
        finals = [np.empty((self.num_layers * D, N, H), dtype) for _ in states0]
        caches, masks = [], []
        for layer in range(self.num_layers):
            out = np.empty((T, N, D * H), dtype)
            layer_caches = []
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                weights = [None if p is None else p.data for p in self._layer_params(layer, suffix)]
                o, states_n, cache = RF.layer_forward(self.recurrence.forward, x if d == 0 else x[::-1],
                                                      [s[idx] for s in states0], *weights,
                                                      split=self.recurrence.split_batch)
                for final, s in zip(finals, states_n):
                    final[idx] = s
                out[:, :, d * H:(d + 1) * H] = o if d == 0 else o[::-1]
                layer_caches.append(cache)
            caches.append(layer_caches)
            mask = None
            if self.training and self.dropout > 0 and layer < self.num_layers - 1:
                keep = 1.0 - self.dropout
                mask = (get_rng().random(out.shape) < keep).astype(dtype) / keep
                out = out * mask
            masks.append(mask)
            x = out
        self._cache = SequenceCache(caches, masks, input_shape, batched, dtype)
        return x, finals

    def _backward(self, grad_out, grad_finals):
        """BPTT through every layer (last first) and direction; grad_out as begin_backward returned it, grad_finals
        holds (grad_h_n,) or (grad_h_n, grad_c_n). Returns dLoss/dx in the input's layout (None with
        needs_input_grad False)."""
        cache = self._cache
        T, N, _ = cache.input_shape
        H, D = self.hidden_size, self.num_directions
        g = self._to_time_major(grad_out, cache.batched)
        grad_finals = [self._check_state(s, f"grad_{name}_n", N, cache.batched)
                       for name, s in zip(self.recurrence.states, grad_finals)]
        grad_states0 = [np.zeros((self.num_layers * D, N, H), cache.dtype) for _ in grad_finals]
        for layer in range(self.num_layers - 1, -1, -1):
            if cache.dropout_masks[layer] is not None and g is not None:
                g = g * cache.dropout_masks[layer]
            need_dx = layer > 0 or self.needs_input_grad  # the first layer's dx only when the caller wants it
            dx_layer = None
            for d, suffix in enumerate(self._suffixes()):
                idx = layer * D + d
                g_dir = None if g is None else g[:, :, d * H:(d + 1) * H]
                if g_dir is not None and d == 1:
                    g_dir = g_dir[::-1]
                dx, grads0, grads = RF.layer_backward(self.recurrence.backward, g_dir,
                                                      [None if s is None else s[idx] for s in grad_finals],
                                                      cache.layers[layer][d], need_dx)
                for grad_state0, gs in zip(grad_states0, grads0):
                    grad_state0[idx] = gs
                for p, gp in zip(self._layer_params(layer, suffix), grads):
                    if p is not None:
                        p.accumulate(gp)
                if dx is not None:
                    dx = dx if d == 0 else dx[::-1]
                    dx_layer = dx if dx_layer is None else dx_layer + dx
            g = dx_layer
        if not cache.batched:
            grad_states0 = [s[:, 0] for s in grad_states0]
        self.grad_h0 = grad_states0[0]
        if len(grad_states0) == 2:
            self.grad_c0 = grad_states0[1]
        return None if g is None else self._finish_output(g, cache.batched)

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
        out, (h_n,) = self._forward(x, [self._check_state(h0, "h0", x.shape[1], batched)], batched)
        return self.end_forward((self._finish_output(out, batched), h_n if batched else h_n[:, 0]))

    def backward(self, grad_out=None, grad_h_n=None, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph, optional=True)  # None: the loss uses h_n only
        return self._backward(grad_out, [grad_h_n])


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
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError(f"LSTM: expected hx to be a tuple (h0, c0) or None, got {type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        states0 = [self._check_state(h0, "h0", x.shape[1], batched), self._check_state(c0, "c0", x.shape[1], batched)]
        out, (h_n, c_n) = self._forward(x, states0, batched)
        if not batched:
            h_n, c_n = h_n[:, 0], c_n[:, 0]
        return self.end_forward((self._finish_output(out, batched), (h_n, c_n)))

    def backward(self, grad_out=None, grad_h_n=None, grad_c_n=None, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph, optional=True)  # None: the loss uses h_n, c_n only
        return self._backward(grad_out, [grad_h_n, grad_c_n])
