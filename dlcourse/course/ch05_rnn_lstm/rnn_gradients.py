"""Chapter 5 widget: how far back does a gradient reach in an RNN and in an LSTM?

``gradient_norm_vs_distance(model, seq_len)`` measures, with the model's own backward pass
(BPTT), the norm of dLoss/dx_t for a loss that only looks at the last hidden state h_T, as a
function of the distance k = T - t. :class:`RNNGradientExplorer` redraws these curves for a
plain tanh RNN and an LSTM as the sequence length, the hidden size, the scale of the recurrent
weights and the LSTM's forget-gate bias change.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dlcourse.course.widget import InteractiveFigure
from dlcourse.i18n import _
from dlcourse.nn.recurrent import LSTM, RNN
from dlcourse.random import manual_seed


def gradient_norm_vs_distance(model, seq_len: int, batch_size: int = 16, seed: int = 0) -> np.ndarray:
    """||dLoss/dx_{T-k}|| for k = 0..seq_len-1, averaged over a batch, with Loss = <g, h_T>.

    x and g are standard normal (seeded). Entry k is the gradient that reaches k steps back;
    the model's parameter gradients are left untouched (they are saved and restored).
    Works for any dlcourse RNN / LSTM / GRU, batch_first or not.
    """
    rng = np.random.default_rng(seed)
    dtype = next(model.parameters()).data.dtype
    x = rng.standard_normal((seq_len, batch_size, model.input_size)).astype(dtype)  # time-major
    if model.batch_first:
        x = x.transpose(1, 0, 2)
    out, _ = model.forward(x)
    grad_out = np.zeros_like(out)
    last = (slice(None), -1) if model.batch_first else (-1,)
    grad_out[last] = rng.standard_normal(grad_out[last].shape)
    saved = [(p, None if p.grad is None else p.grad.copy()) for p in model.parameters()]
    dx = model.backward(grad_out)
    for p, g in saved:
        p.grad = g
    if model.batch_first:
        dx = dx.transpose(1, 0, 2)
    norms = np.linalg.norm(dx, axis=2).mean(axis=1)  # (T,): one norm per time step
    return norms[::-1]  # index = distance from the last step


def make_models(input_size: int, hidden_size: int, w_hh_scale: float = 1.0, forget_bias: float = 0.0,
                seed: int = 0):
    """A tanh RNN and an LSTM (float64, PyTorch's init), W_hh scaled, ``forget_bias`` added to b_f."""
    manual_seed(seed)
    rnn = RNN(input_size, hidden_size, dtype=np.float64)
    lstm = LSTM(input_size, hidden_size, dtype=np.float64)
    for model in (rnn, lstm):
        model.weight_hh_l0.data *= w_hh_scale
    H = hidden_size
    lstm.bias_hh_l0.data[H:2 * H] += forget_bias  # the forget gate's slice (gate order i, f, g, o)
    return rnn, lstm


class RNNGradientExplorer(InteractiveFigure):
    """Gradient norm against time distance for a tanh RNN and an LSTM (log scale).

    Controls: sequence length, hidden size, the scale of W_hh (relative to PyTorch's init) and a
    constant added to the LSTM's forget-gate bias. ``curves`` holds the last measured curves.
    """

    def __init__(self, seq_len: int = 60, hidden_size: int = 32, w_hh_scale: float = 1.0, forget_bias: float = 0.0,
                 input_size: int = 4):
        self.input_size = input_size
        self.curves: dict = {}
        style = {"description_width": "initial"}
        controls = {
            "seq_len": widgets.IntSlider(value=seq_len, min=10, max=200, step=10, description=_("sequence length"),
                                         continuous_update=False, style=style),
            "hidden_size": widgets.IntSlider(value=hidden_size, min=4, max=128, step=4, description=_("hidden size"),
                                             continuous_update=False, style=style),
            "w_hh_scale": widgets.FloatLogSlider(value=w_hh_scale, base=10, min=-1, max=1, step=0.05,
                                                 description=_("W_hh scale"), continuous_update=False, style=style),
            "forget_bias": widgets.FloatSlider(value=forget_bias, min=-2.0, max=6.0, step=0.5,
                                               description=_("LSTM forget-gate bias +"), continuous_update=False,
                                               style=style),
        }
        super().__init__(controls, figsize=(8, 3.6), title=_("How far back does the gradient reach?"))

    def draw(self, seq_len, hidden_size, w_hh_scale, forget_bias) -> str:
        rnn, lstm = make_models(self.input_size, hidden_size, w_hh_scale, forget_bias)
        self.curves = {"RNN (tanh)": gradient_norm_vs_distance(rnn, seq_len),
                       "LSTM": gradient_norm_vs_distance(lstm, seq_len)}
        ax = self.axes[0]
        floor = np.finfo(np.float64).tiny
        for name, curve in self.curves.items():
            ax.semilogy(np.arange(seq_len), np.maximum(curve / curve[0], floor), label=name)
        W = rnn.weight_hh_l0.data
        sigma, rho = np.linalg.norm(W, 2), np.max(np.abs(np.linalg.eigvals(W)))
        ax.set(xlabel=_("distance k = T - t (steps back)"), ylabel="||dL/dx_{T-k}|| / ||dL/dx_T||",
               title=_("RNN's W_hh: largest singular value {sigma:.2f}, spectral radius {rho:.2f}").format(
                   sigma=sigma, rho=rho))
        ax.legend()
        k = seq_len - 1
        ratio = {name: c[k] / c[0] for name, c in self.curves.items()}
        return _("{k} steps back the gradient is {rnn:.1e} of its size at the last step for the "
                 "RNN and {lstm:.1e} for the LSTM").format(k=k, rnn=ratio["RNN (tanh)"], lstm=ratio["LSTM"])



__all__ = ["RNNGradientExplorer", "gradient_norm_vs_distance", "make_models"]
