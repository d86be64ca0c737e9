"""A one-layer LSTM computed by the learner's functions (chapter 5's build-it steps), for training with them.

:class:`YourLSTM` subclasses ``dlcourse.nn.LSTM`` (so parameters, PyTorch's initialisation, ``state_dict``,
optimizers and ``gradient_norm_vs_distance`` work unchanged) and runs

- forward: ``lstm_step(x_t, h, c, W_ih, W_hh, b_ih, b_hh) -> (h_t, c_t)`` in a loop over time; it caches the input,
  the initial states and every (h_t, c_t), which are the inputs of each step;
- backward: backpropagation through time, one call of
  ``lstm_step_backward(x_t, h_(t-1), c_(t-1), W_ih, W_hh, b_ih, b_hh, dh_t, dc_t)
  -> (dx_t, dh_(t-1), dc_(t-1), dW_ih, dW_hh, db)`` per step, from the last step to the first. dh_t is the loss's
  own gradient at step t plus what step t + 1 sent back; dc_t comes back from step t + 1 only (the loss reads c_t
  only through h_t, except ``grad_c_n`` at the end). The weight gradients add up over the steps.

Shapes follow ``nn.LSTM``: x (L, N, I), or (N, L, I) with ``batch_first``; ``out, (h_n, c_n) = forward(x, hx=None)``
with hx = (h0, c0), each (1, N, H); ``dx = backward(grad_out, grad_h_n=None, grad_c_n=None)``, dL/dh0 and dL/dc0 in
``grad_h0`` and ``grad_c0`` (1, N, H).

:func:`compare_lstm_with_torch` checks such a layer against ``torch.nn.LSTM`` with copied weights: outputs, final
states, the input and initial-state gradients and every parameter gradient, with upstream gradients into ``out``,
``h_n`` and ``c_n`` alike.
"""

from __future__ import annotations

import numpy as np

from ... import nn
from ...compare import ComparisonReport, max_abs_diff, max_rel_diff


class YourLSTM(nn.LSTM):
    def __init__(self, lstm_step, lstm_step_backward, input_size, hidden_size, batch_first=False,
                 dtype=np.float32):
        super().__init__(input_size, hidden_size, batch_first=batch_first, dtype=dtype)
        self._step, self._step_backward = lstm_step, lstm_step_backward
        self._cache = None

    def _params(self):
        return self.weight_ih_l0.data, self.weight_hh_l0.data, self.bias_ih_l0.data, self.bias_hh_l0.data

    def _state(self, hx, k, N, dtype):
        if hx is None:
            return np.zeros((N, self.hidden_size), dtype=dtype)
        s = np.asarray(hx[k], dtype=dtype)
        if s.shape != (1, N, self.hidden_size):
            raise ValueError(f"YourLSTM: expected {('h0', 'c0')[k]} of shape (1, {N}, {self.hidden_size}), "
                             f"got {s.shape}")
        return s[0]

    def forward(self, x, hx=None):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.input_size:
            layout = "(N, L, {})" if self.batch_first else "(L, N, {})"
            raise ValueError(f"YourLSTM: expected input of shape {layout.format(self.input_size)}, got {x.shape}")
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise ValueError(f"YourLSTM: expected hx to be a tuple (h0, c0) or None, got {type(hx).__name__}")
        xs = x.transpose(1, 0, 2) if self.batch_first else x           # time-major (L, N, I)
        h, c = (self._state(hx, k, xs.shape[1], x.dtype) for k in (0, 1))
        h0, c0, hs, cs = h, c, [], []
        for x_t in xs:
            h, c = self._step(x_t, h, c, *self._params())
            h, c = np.asarray(h, dtype=x.dtype), np.asarray(c, dtype=x.dtype)
            hs.append(h)
            cs.append(c)
        hs, cs = np.stack(hs), np.stack(cs)
        self._cache = (xs, h0, c0, hs, cs)
        out = hs.transpose(1, 0, 2) if self.batch_first else hs
        return self.end_forward((out, (hs[-1][None], cs[-1][None])))

    def backward(self, grad_out=None, grad_h_n=None, grad_c_n=None, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph, optional=True)
        xs, h0, c0, hs, cs = self._cache
        g = np.zeros_like(hs) if grad_out is None else grad_out.astype(hs.dtype, copy=False)
        g = g.transpose(1, 0, 2) if self.batch_first else g
        # What reaches h_t and c_t from the future: after the last step, only grad_h_n and grad_c_n.
        dh = np.zeros_like(h0) if grad_h_n is None else np.array(grad_h_n, dtype=hs.dtype)[0]
        dc = np.zeros_like(c0) if grad_c_n is None else np.array(grad_c_n, dtype=hs.dtype)[0]
        params = self._params()
        dx = np.empty_like(xs)
        totals = [np.zeros_like(p) for p in params[:3]]                # dW_ih, dW_hh, db, summed over time
        for t in reversed(range(len(xs))):
            h_prev, c_prev = (hs[t - 1], cs[t - 1]) if t > 0 else (h0, c0)
            dx_t, dh, dc, *grads = self._step_backward(xs[t], h_prev, c_prev, *params, g[t] + dh, dc)
            dx[t] = dx_t
            for total, grad in zip(totals, grads):
                total += grad
        dW_ih, dW_hh, db = totals
        self.weight_ih_l0.accumulate(dW_ih)
        self.weight_hh_l0.accumulate(dW_hh)
        self.bias_ih_l0.accumulate(db)
        self.bias_hh_l0.accumulate(db.copy())
        self.grad_h0, self.grad_c0 = np.asarray(dh)[None], np.asarray(dc)[None]
        return dx.transpose(1, 0, 2) if self.batch_first else dx


def compare_lstm_with_torch(model, x, hx, seed: int = 0, title: str | None = None) -> ComparisonReport:
    """``model`` (a one-layer dlcourse LSTM, e.g. :class:`YourLSTM`) against ``torch.nn.LSTM`` with its weights copied.

    Runs both on x and hx = (h0, c0) in the model's dtype, pushes the same random upstream gradients into out, h_n
    and c_n, and reports the largest difference of out, h_n, c_n, dL/dx, dL/dh0, dL/dc0 and every parameter
    gradient. The model's gradients are zeroed first.
    """
    import torch

    dtype = model.weight_ih_l0.data.dtype
    theirs = torch.nn.LSTM(model.input_size, model.hidden_size, batch_first=model.batch_first)
    theirs = theirs.to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    x, hx = np.asarray(x, dtype=dtype), tuple(np.asarray(s, dtype=dtype) for s in hx)
    xt, h0t, c0t = (torch.tensor(a, requires_grad=True) for a in (x, *hx))
    out_t, (h_n_t, c_n_t) = theirs(xt, (h0t, c0t))
    model.zero_grad()
    out, (h_n, c_n) = model.forward(x, hx)
    rng = np.random.default_rng(seed)
    g_out, g_h, g_c = (rng.standard_normal(a.shape).astype(dtype) for a in (out, h_n, c_n))
    torch.autograd.backward([out_t, h_n_t, c_n_t], [torch.tensor(g) for g in (g_out, g_h, g_c)])
    dx = model.backward(g_out, g_h, g_c)
    pairs = [("output", out, out_t), ("h_n", h_n, h_n_t), ("c_n", c_n, c_n_t), ("grad input", dx, xt.grad),
             ("grad h0", model.grad_h0, h0t.grad), ("grad c0", model.grad_c0, c0t.grad)]
    ours = dict(model.named_parameters())
    pairs += [(f"grad {name}", ours[name].grad, p.grad) for name, p in theirs.named_parameters()]
    rows = [[name, tuple(t.shape), max_abs_diff(o, t), max_rel_diff(o, t)] for name, o, t in pairs]
    return ComparisonReport(rows, dtype, title or f"{type(model).__name__} vs torch.nn.LSTM ({np.dtype(dtype).name})")
