"""Chapter 5 exercises: one RNN step, one LSTM step, the recurrent Jacobian, gradient clipping, counting."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(505)


def _rnn_weights(rng, I, H):
    return (rng.standard_normal((H, I)) * 0.5, rng.standard_normal((H, H)) * 0.5,
            rng.standard_normal(H) * 0.5, rng.standard_normal(H) * 0.5)


def _rnn_step_cases():
    rng = _rng()
    return [(rng.standard_normal((1, 2)), rng.standard_normal((1, 3)), *_rnn_weights(rng, 2, 3)),
            (rng.standard_normal((4, 5)), rng.standard_normal((4, 2)), *_rnn_weights(rng, 5, 2))]


@exercise("ch5.rnn_step", _rnn_step_cases,
          hint="h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh); both biases count, and x is (N, input_size).",
          wrong=lambda x, h, W_ih, W_hh, b_ih, b_hh: np.tanh(x @ W_ih.T + h @ W_hh.T + b_ih))
def rnn_step(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step of a tanh RNN, PyTorch's layout: x (N, I), h (N, H), W_ih (H, I), W_hh (H, H)."""
    return np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)


def _lstm_step_cases():
    rng = _rng()
    cases = []
    for N, I, H in [(1, 2, 3), (3, 4, 2)]:
        W_ih, W_hh = rng.standard_normal((4 * H, I)) * 0.5, rng.standard_normal((4 * H, H)) * 0.5
        b_ih, b_hh = rng.standard_normal(4 * H) * 0.5, rng.standard_normal(4 * H) * 0.5
        cases.append((rng.standard_normal((N, I)), rng.standard_normal((N, H)), rng.standard_normal((N, H)),
                      W_ih, W_hh, b_ih, b_hh))
    return cases


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def _lstm_wrong_order(x, h, c, W_ih, W_hh, b_ih, b_hh):
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, o, g = np.split(z, 4, axis=1)  # the gate order of some other libraries, not PyTorch's
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_new), c_new


@exercise("ch5.lstm_step", _lstm_step_cases,
          hint="split the 4H pre-activations in PyTorch's order i, f, g, o; i, f, o = sigmoid, g = tanh; "
               "c' = f * c + i * g; h' = o * tanh(c'). Return (h', c').",
          wrong=_lstm_wrong_order)
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step, PyTorch's layout and gate order (i, f, g, o): returns (h', c')."""
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    zi, zf, zg, zo = np.split(z, 4, axis=1)
    c_new = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zg)
    return _sigmoid(zo) * np.tanh(c_new), c_new


def _jacobian_cases():
    rng = _rng()
    return [(np.tanh(rng.standard_normal(3)), rng.standard_normal((3, 3))),
            (np.tanh(rng.standard_normal(5)), rng.standard_normal((5, 5)))]


@exercise("ch5.recurrent_jacobian", _jacobian_cases,
          hint="h_t = tanh(a_t) with a_t = W_hh h_{t-1} + ...: dh_t/dh_{t-1} = diag(1 - h_t^2) W_hh; "
               "row k is scaled by 1 - h_t[k]^2 (the derivative of unit k), not column k.",
          wrong=lambda h, W_hh: W_hh * (1 - h ** 2)[None, :])
def recurrent_jacobian(h_t, W_hh):
    """The Jacobian dh_t/dh_{t-1} (H, H) of one tanh-RNN step, given h_t (H,) and W_hh (H, H)."""
    return (1 - h_t ** 2)[:, None] * W_hh


def _clip_cases():
    rng = _rng()
    big = (rng.standard_normal((3, 4)) * 5, rng.standard_normal(4) * 5, rng.standard_normal((2, 2)))
    small = (rng.standard_normal((2, 3)) * 0.01, rng.standard_normal(3) * 0.01)
    return [(big, 1.0), (small, 1.0), (big, 4.0)]


def _clip_each(grads, max_norm):
    return tuple(g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads)


@exercise("ch5.clip_grad_norm", _clip_cases,
          hint="one total norm over all gradients together, N = sqrt(sum of all squared entries); if N > max_norm "
               "scale every gradient by the same factor max_norm / N. Return a tuple of arrays.",
          wrong=_clip_each)
def clip_grad_norm(grads, max_norm):
    """Gradients (a tuple of arrays) rescaled together so that their total 2-norm is at most max_norm."""
    total = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    scale = min(1.0, max_norm / (total + 1e-6))  # PyTorch's formula, with its 1e-6
    return tuple(g * scale for g in grads)


def _count_cases():
    return [(1, 1, 1), (28, 128, 1), (10, 20, 2), (3, 7, 3)]


@exercise("ch5.lstm_num_parameters", _count_cases,
          hint="each layer has four gates, each with an input weight, a hidden weight and TWO biases (b_ih and "
               "b_hh): 4H (I + H + 2); layers after the first take the H outputs of the layer below as input.",
          wrong=lambda I, H, L: 4 * H * (I + H + 1) + (L - 1) * 4 * H * (2 * H + 1))
def lstm_num_parameters(input_size, hidden_size, num_layers):
    """How many numbers torch.nn.LSTM(input_size, hidden_size, num_layers) trains (unidirectional)."""
    H = hidden_size
    return 4 * H * (input_size + H + 2) + (num_layers - 1) * 4 * H * (H + H + 2)
