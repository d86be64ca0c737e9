"""A one-layer tanh RNN computed by the learner's functions (chapter 5's build-it steps), for training with them.

:class:`YourRNN` subclasses ``dlcourse.nn.RNN`` (so parameters, initialisation, ``state_dict``, optimizers and
``gradient_norm_vs_distance`` work unchanged) and runs

- forward: ``rnn_step(x_t, h, W_ih, W_hh, b_ih, b_hh) -> h_t`` in a loop over time; caches x, h0 and the states;
- backward: ``rnn_backward(x, h0, hs, W_ih, W_hh, grad_hs) -> (dx, dh0, dW_ih, dW_hh, db)`` (BPTT).

Shapes follow ``nn.RNN``: x (L, N, I), or (N, L, I) with ``batch_first``; ``out, h_n = forward(x, h0=None)`` with
h_n (1, N, H); ``dx = backward(grad_out, grad_h_n=None)``, dL/dh0 in ``grad_h0`` (1, N, H).

:func:`lstm_sequence` runs the learner's ``lstm_step`` over a sequence with a trained ``nn.LSTM``'s weights.
"""

from __future__ import annotations

import numpy as np

from ... import nn


class YourRNN(nn.RNN):
    def __init__(self, rnn_step, rnn_backward, input_size, hidden_size, batch_first=False, dtype=np.float32):
        super().__init__(input_size, hidden_size, batch_first=batch_first, dtype=dtype)
        self._step, self._bwd = rnn_step, rnn_backward
        self._cache = None

    def _params(self):
        return self.weight_ih_l0.data, self.weight_hh_l0.data, self.bias_ih_l0.data, self.bias_hh_l0.data

    def forward(self, x, h0=None):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(N, L, {})" if self.batch_first else "(L, N, {})"
            raise ValueError(f"YourRNN: expected input of shape {layout.format(self.input_size)}, got {x.shape}")
        xs = x.transpose(1, 0, 2) if self.batch_first else x           # time-major (L, N, I)
        h = np.zeros((xs.shape[1], self.hidden_size), dtype=x.dtype) if h0 is None else np.asarray(h0)[0]
        h_init, hs = h, []
        for x_t in xs:
            h = np.asarray(self._step(x_t, h, *self._params()), dtype=x.dtype)
            hs.append(h)
        hs = np.stack(hs)
        self._cache = (xs, h_init, hs)
        out = hs.transpose(1, 0, 2) if self.batch_first else hs
        return self.end_forward((out, hs[-1][None]))

    def backward(self, grad_out=None, grad_h_n=None, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph, optional=True)
        xs, h_init, hs = self._cache
        g = np.zeros_like(hs) if grad_out is None else grad_out.astype(hs.dtype, copy=False)
        g = g.transpose(1, 0, 2).copy() if self.batch_first else g.copy()
        if grad_h_n is not None:
            g[-1] += np.asarray(grad_h_n)[0]
        W_ih, W_hh, _, _ = self._params()
        dx, dh0, dW_ih, dW_hh, db = self._bwd(xs, h_init, hs, W_ih, W_hh, g)
        self.weight_ih_l0.accumulate(np.asarray(dW_ih, dtype=W_ih.dtype))
        self.weight_hh_l0.accumulate(np.asarray(dW_hh, dtype=W_hh.dtype))
        self.bias_ih_l0.accumulate(np.asarray(db, dtype=W_ih.dtype))
        self.bias_hh_l0.accumulate(np.asarray(db, dtype=W_ih.dtype))
        self.grad_h0 = np.asarray(dh0)[None]
        dx = np.asarray(dx, dtype=xs.dtype)
        return dx.transpose(1, 0, 2) if self.batch_first else dx


def lstm_sequence(lstm_step, lstm, x, hx=None):
    """Run ``lstm_step(x_t, h, c, W_ih, W_hh, b_ih, b_hh) -> (h, c)`` over x with a one-layer ``nn.LSTM``'s weights.

    x (N, L, I) if ``lstm.batch_first`` else (L, N, I); hx = (h, c), each (N, H), zeros if None.
    Returns (out in x's layout, (h, c) after the last step).
    """
    weights = [p.data for p in (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    xs = np.asarray(x).transpose(1, 0, 2) if lstm.batch_first else np.asarray(x)
    zeros = np.zeros((xs.shape[1], lstm.hidden_size), dtype=xs.dtype)
    h, c = (zeros, zeros) if hx is None else hx
    outs = []
    for x_t in xs:
        h, c = lstm_step(x_t, h, c, *weights)
        outs.append(h)
    out = np.stack(outs)
    return (out.transpose(1, 0, 2) if lstm.batch_first else out), (h, c)
