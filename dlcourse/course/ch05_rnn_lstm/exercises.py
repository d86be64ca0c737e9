"""Chapter 5 exercises.

Build-it steps inside the lesson (the notebook uses the learner's functions afterwards): one RNN step,
backpropagation through time through it, one LSTM step and its backward pass. End-of-chapter practice: the recurrent
Jacobian, gradient clipping, counting an LSTM's parameters.
"""

import numpy as np
from scipy import special

from ...i18n import N_
from ..checker import exercise


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
          hints=[N_("The new state mixes the input and the old state through their own weight matrices, adds the "
                    "biases and squashes the sum with tanh."),
                 N_("Rows are samples: x is (N, I) and W_ih is (H, I), so W_ih x_t becomes x @ W_ih.T; likewise for h. "
                    "PyTorch keeps two biases, b_ih and b_hh: both count."),
                 N_("h' = np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh).")],
          wrong=lambda x, h, W_ih, W_hh, b_ih, b_hh: np.tanh(x @ W_ih.T + h @ W_hh.T + b_ih))
def rnn_step(x, h, W_ih, W_hh, b_ih, b_hh):
    """One step of a tanh RNN, PyTorch's layout: x (N, I), h (N, H), W_ih (H, I), W_hh (H, H)."""
    return np.tanh(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh)


def _rnn_backward_cases():
    rng = _rng()
    cases = []
    for T, N, I, H in [(3, 1, 1, 2), (5, 4, 3, 2), (7, 2, 2, 5)]:
        W_ih, W_hh, b_ih, b_hh = _rnn_weights(rng, I, H)
        x, h = rng.standard_normal((T, N, I)), rng.standard_normal((N, H))
        h0, hs = h, []
        for t in range(T):
            h = rnn_step(x[t], h, W_ih, W_hh, b_ih, b_hh)
            hs.append(h)
        cases.append((x, h0, np.array(hs), W_ih, W_hh, rng.standard_normal((T, N, H))))
    return cases


def _backward_one_step_only(x, h0, hs, W_ih, W_hh, grad_hs):
    """Forgets that h_t also reaches the loss through h_{t+1}: no gradient carried back in time."""
    h_prev = np.concatenate([h0[None], hs[:-1]])
    da = grad_hs * (1 - hs ** 2)
    return (da @ W_ih, da[0] @ W_hh, np.einsum("tnh,tni->hi", da, x), np.einsum("tnh,tnk->hk", da, h_prev),
            da.sum(axis=(0, 1)))


@exercise("ch5.rnn_backward", _rnn_backward_cases,
          hints=[N_("Go backwards in time, t = T, ..., 1, and carry one array along: the gradient that reaches h_t "
                    "from the future (zero after the last step). At each step, the total dL/dh_t is the loss's own "
                    "gradient at t plus what came back from t + 1."),
                 N_("Through tanh: dL/da_t = dL/dh_t * (1 - h_t^2). From dL/da_t: dx_t = dL/da_t @ W_ih, the gradient "
                    "handed to h_{t-1} is dL/da_t @ W_hh, and the weights' gradients ADD UP over the steps "
                    "(dW_ih += da_t.T @ x_t, dW_hh += da_t.T @ h_{t-1}, db += da_t summed over the batch)."),
                 N_("h_{t-1} is h0 at the first step and hs[t - 1] after it; dh0 is what is carried back after the "
                    "loop ends. Return (dx, dh0, dW_ih, dW_hh, db).")],
          wrong=_backward_one_step_only, outputs=("dx", "dh0", "dW_ih", "dW_hh", "db"))
def rnn_backward(x, h0, hs, W_ih, W_hh, grad_hs):
    """Backpropagation through time for a tanh RNN (the states hs come from rnn_step, run forward).

    x (T, N, I), h0 (N, H), hs (T, N, H) = h_1 .. h_T, W_ih (H, I), W_hh (H, H), grad_hs (T, N, H) = dl_t/dh_t,
    the loss's direct gradient at every step. Returns (dx (T, N, I), dh0 (N, H), dW_ih (H, I), dW_hh (H, H),
    db (H,)); db is the gradient of b_ih and of b_hh alike.
    """
    T = x.shape[0]
    dx = np.zeros_like(x)
    dW_ih, dW_hh, db = np.zeros_like(W_ih), np.zeros_like(W_hh), np.zeros(W_hh.shape[0])
    from_future = np.zeros_like(h0)                 # dL/dh_t through h_{t+1}; nothing after the last step
    for t in reversed(range(T)):
        da = (grad_hs[t] + from_future) * (1 - hs[t] ** 2)   # (N, H): through tanh
        h_prev = hs[t - 1] if t > 0 else h0
        dx[t] = da @ W_ih
        dW_ih += da.T @ x[t]
        dW_hh += da.T @ h_prev
        db += da.sum(axis=0)
        from_future = da @ W_hh
    return dx, from_future, dW_ih, dW_hh, db


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
    return special.expit(z)  # 1 / (1 + exp(-z)), without overflow for large negative z, and fast


def _lstm_wrong_order(x, h, c, W_ih, W_hh, b_ih, b_hh):
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    i, f, o, g = np.split(z, 4, axis=1)  # the gate order of some other libraries, not PyTorch's
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_new), c_new


@exercise("ch5.lstm_step", _lstm_step_cases,
          hints=[N_("All four gates come from ONE affine map of x and h, with 4H outputs; cut it into four blocks of H "
                    "columns. Three gates are fractions in (0, 1), the candidate is in (-1, 1)."),
                 N_("PyTorch's order of the blocks is i, f, g, o (np.split(z, 4, axis=1)); i, f, o go through the "
                    "sigmoid, g through tanh."),
                 N_("c' = f * c + i * g, then h' = o * tanh(c'); return the pair (h', c').")],
          wrong=_lstm_wrong_order, outputs=("h_new", "c_new"))
def lstm_step(x, h, c, W_ih, W_hh, b_ih, b_hh):
    """One LSTM step, PyTorch's layout and gate order (i, f, g, o): returns (h', c')."""
    z = x @ W_ih.T + b_ih + h @ W_hh.T + b_hh
    zi, zf, zg, zo = np.split(z, 4, axis=1)
    c_new = _sigmoid(zf) * c + _sigmoid(zi) * np.tanh(zg)
    return _sigmoid(zo) * np.tanh(c_new), c_new


def _lstm_step_backward_cases():
    """Upstream gradients dh' and dc' both non-zero and not 1; N, I, H and 4H all different (a transposed product or
    a sum over the wrong axis changes a shape); N > 1 (a mean instead of a sum over the batch differs); gates and
    cell values away from 0 and 1 (random weights of size 0.5, states of size 1), so no term vanishes."""
    rng = _rng()
    cases = []
    for N, I, H in [(1, 2, 3), (3, 4, 2), (5, 3, 4)]:
        W_ih, W_hh = rng.standard_normal((4 * H, I)) * 0.5, rng.standard_normal((4 * H, H)) * 0.5
        b_ih, b_hh = rng.standard_normal(4 * H) * 0.5, rng.standard_normal(4 * H) * 0.5
        x, h, c = rng.standard_normal((N, I)), rng.standard_normal((N, H)), rng.standard_normal((N, H)) * 1.5
        dh_next, dc_next = rng.standard_normal((N, H)) * 1.7, rng.standard_normal((N, H)) * 0.8 + 0.3
        cases.append((x, h, c, W_ih, W_hh, b_ih, b_hh, dh_next, dc_next))
    return cases


def _lstm_backward_without_the_cell_path(x, h, c, W_ih, W_hh, b_ih, b_hh, dh_next, dc_next):
    """Forgets that c' also reaches the loss directly (through the next step's cell state): dc_next is dropped."""
    return lstm_step_backward(x, h, c, W_ih, W_hh, b_ih, b_hh, dh_next, np.zeros_like(dc_next))


@exercise("ch5.lstm_step_backward", _lstm_step_backward_cases,
          hints=[N_("Walk the forward lines backwards: h' = o * tanh(c'), then c' = f * c + i * g, then each "
                    "gate's activation, then the affine map z = x W_ih^T + b_ih + h W_hh^T + b_hh. The new cell "
                    "state c' reaches the loss in two ways: directly (dc_next, through the next step's cell state) "
                    "and through h'."),
                 N_("dc = dc_next + dh_next * o * (1 - tanh(c')^2). Then do = dh_next * tanh(c'), di = dc * g, "
                    "dg = dc * i, df = dc * c (the OLD cell state), and each through its activation: "
                    "sigma' = s (1 - s) for i, f, o and tanh' = 1 - g^2 for g; put the four blocks side by side, "
                    "order i, f, g, o: dz (N, 4H)."),
                 N_("From dz as for a Linear layer: dx = dz @ W_ih, dh_prev = dz @ W_hh, dW_ih = dz.T @ x, "
                    "dW_hh = dz.T @ h, db = dz.sum(axis=0); along the cell path dc_prev = dc * f. Return "
                    "(dx, dh_prev, dc_prev, dW_ih, dW_hh, db).")],
          wrong=_lstm_backward_without_the_cell_path,
          outputs=("dx", "dh_prev", "dc_prev", "dW_ih", "dW_hh", "db"))
def lstm_step_backward(x, h, c, W_ih, W_hh, b_ih, b_hh, dh_next, dc_next):
    """Backward of :func:`lstm_step`, PyTorch's gate order (i, f, g, o).

    x (N, I), h and c (N, H): the step's inputs, W_ih (4H, I), W_hh (4H, H), b_ih and b_hh (4H,): its weights (all
    that the forward step needs to keep: the gates are recomputed from them); dh_next = dL/dh', dc_next = dL/dc'
    (N, H). Returns (dx (N, I), dh_prev (N, H), dc_prev (N, H), dW_ih (4H, I), dW_hh (4H, H), db (4H,)); db is the
    gradient of b_ih and of b_hh alike.
    """
    zi, zf, zg, zo = np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)   # the forward step, recomputed
    i, f, g, o = _sigmoid(zi), _sigmoid(zf), np.tanh(zg), _sigmoid(zo)
    tanh_c = np.tanh(f * c + i * g)
    dc = dc_next + dh_next * o * (1 - tanh_c ** 2)   # c' reaches the loss directly and through h' = o * tanh(c')
    dz = np.concatenate([dc * g * i * (1 - i),          # input gate
                         dc * c * f * (1 - f),          # forget gate: it multiplies the old cell state
                         dc * i * (1 - g ** 2),         # candidate, through tanh
                         dh_next * tanh_c * o * (1 - o)], axis=1)  # output gate
    return dz @ W_ih, dz @ W_hh, dc * f, dz.T @ x, dz.T @ h, dz.sum(axis=0)


def _jacobian_cases():
    rng = _rng()
    return [(np.tanh(rng.standard_normal(3)), rng.standard_normal((3, 3))),
            (np.tanh(rng.standard_normal(5)), rng.standard_normal((5, 5)))]


@exercise("ch5.recurrent_jacobian", _jacobian_cases,
          hints=[N_("Chain rule through h_t = tanh(a_t), a_t = W_hh h_{t-1} + ...: first the derivative of a_t with "
                    "respect to h_{t-1}, then that of tanh, expressed with h_t itself."),
                 N_("da_t/dh_{t-1} = W_hh and tanh'(a) = 1 - tanh(a)^2 = 1 - h_t^2, elementwise: the Jacobian is "
                    "diag(1 - h_t^2) W_hh."),
                 N_("Multiplying by a diagonal matrix from the left scales the ROWS: row k by 1 - h_t[k]^2 "
                    "(use [:, None] to broadcast).")],
          wrong=lambda h, W_hh: W_hh * (1 - h ** 2)[None, :])
def recurrent_jacobian(h_t, W_hh):
    """The Jacobian dh_t/dh_{t-1} (H, H) of one tanh-RNN step, given h_t (H,) and W_hh (H, H)."""
    return (1 - h_t ** 2)[:, None] * W_hh


def _clip_cases():
    """Norms far above, far below and just below max_norm. The last two are small (about 1e-3), so that PyTorch's
    1e-6 in max_norm / (total + 1e-6) changes the result by far more than the checker's tolerance: a norm without it,
    or shifted by another amount, fails there. In the last case the total norm is 4e-7 below max_norm, and the 1e-6
    still scales the gradients down a little: only min(1, max_norm / (total + 1e-6)) gets that right."""
    rng = _rng()
    big = (rng.standard_normal((3, 4)) * 5, rng.standard_normal(4) * 5, rng.standard_normal((2, 2)))
    small = (rng.standard_normal((2, 3)) * 0.01, rng.standard_normal(3) * 0.01)
    tiny = (rng.standard_normal((3, 2)) * 2e-3, rng.standard_normal(4) * 2e-3)
    tiny_total = np.sqrt(sum(float(np.sum(g * g)) for g in tiny))
    just_below = tuple(g * (1e-3 - 4e-7) / tiny_total for g in tiny)
    return [(big, 1.0), (small, 1.0), (big, 4.0), (tiny, 1e-3), (just_below, 1e-3)]


def _clip_each(grads, max_norm):
    return tuple(g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads)


@exercise("ch5.clip_grad_norm", _clip_cases,
          hints=[N_("Clipping keeps the direction of the whole update: all gradients are scaled by ONE common factor, "
                    "and only when they are too long together."),
                 N_("The total norm is sqrt(sum of the squares of every entry of every gradient); the factor is "
                    "min(1, max_norm / (total + 1e-6)), PyTorch's formula."),
                 N_("Return tuple(g * factor for g in grads).")],
          wrong=_clip_each)
def clip_grad_norm(grads, max_norm):
    """Gradients (a tuple of arrays) rescaled together so that their total 2-norm is at most max_norm."""
    total = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
    scale = min(1.0, max_norm / (total + 1e-6))  # PyTorch's formula, with its 1e-6
    return tuple(g * scale for g in grads)


def _count_cases():
    return [(1, 1, 1), (28, 128, 1), (10, 20, 2), (3, 7, 3)]


@exercise("ch5.lstm_num_parameters", _count_cases,
          hints=[N_("Count per layer: four gates, each with an input weight matrix, a hidden weight matrix and biases. "
                    "PyTorch keeps TWO bias vectors per gate (b_ih and b_hh)."),
                 N_("One layer with input size I has 4H (I + H + 2) numbers."),
                 N_("Layers after the first read the H outputs of the layer below: their input size is H.")],
          wrong=lambda I, H, L: 4 * H * (I + H + 1) + (L - 1) * 4 * H * (2 * H + 1))
def lstm_num_parameters(input_size, hidden_size, num_layers):
    """How many numbers torch.nn.LSTM(input_size, hidden_size, num_layers) trains (unidirectional)."""
    H = hidden_size
    return 4 * H * (input_size + H + 2) + (num_layers - 1) * 4 * H * (H + H + 2)
