"""Chapter 5's RNN and LSTM build-it references: the layer that runs the learner's RNN functions equals
torch.nn.RNN (forward, every gradient), the LSTM step drives a whole sequence like the library's layer, and the
parameter count matches torch; the notebook builds, uses and hides its solutions."""

import numpy as np
import pytest
import torch
from notebook_checks import assert_builds_uses_and_hides_the_solutions

from dlcourse import nn
from dlcourse.course.ch05_rnn_lstm.your_rnn import YourRNN, lstm_sequence
from dlcourse.course.checker import reference

rng = np.random.default_rng(0)


def _t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


@pytest.mark.parametrize("batch_first", [False, True])
def test_your_rnn_with_the_references_equals_torch(batch_first):
    ours = YourRNN(reference("ch5.rnn_step"), reference("ch5.rnn_backward"), 3, 4, batch_first=batch_first,
                   dtype=np.float64)
    for p in ours.parameters():
        p.data[:] = rng.standard_normal(p.data.shape) * 0.5
    theirs = torch.nn.RNN(3, 4, batch_first=batch_first).double()
    theirs.load_state_dict({k: _t(v) for k, v in ours.state_dict().items()})
    x = rng.standard_normal((2, 6, 3) if batch_first else (6, 2, 3))
    h0 = rng.standard_normal((1, 2, 4))
    out, h_n = ours.forward(x, h0)
    xt, h0t = _t(x, True), _t(h0, True)
    out_t, h_n_t = theirs(xt, h0t)
    g, g_n = rng.standard_normal(out.shape), rng.standard_normal(h_n.shape)
    ((out_t * _t(g)).sum() + (h_n_t * _t(g_n)).sum()).backward()
    dx = ours.backward(g, g_n)
    assert np.allclose(out, out_t.detach().numpy(), atol=1e-12) and np.allclose(h_n, h_n_t.detach().numpy())
    assert np.allclose(dx, xt.grad.numpy(), atol=1e-12) and np.allclose(ours.grad_h0, h0t.grad.numpy(), atol=1e-12)
    grads = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert np.allclose(p.grad, grads[name].grad.numpy(), atol=1e-12), name


def test_lstm_sequence_with_the_reference_step_equals_the_layer():
    lstm = nn.LSTM(2, 3, batch_first=True, dtype=np.float64)
    x = rng.standard_normal((4, 7, 2))
    out, (h, c) = lstm_sequence(reference("ch5.lstm_step"), lstm, x)
    out_lib, (h_n, c_n) = lstm.forward(x)
    assert np.allclose(out, out_lib, atol=1e-13) and np.allclose(h, h_n[0]) and np.allclose(c, c_n[0])


def test_lstm_parameter_count_reference_matches_torch():
    count = reference("ch5.lstm_num_parameters")
    for args in [(28, 128, 2), (3, 7, 3), (1, 1, 1)]:
        assert count(*args) == sum(p.numel() for p in torch.nn.LSTM(*args).parameters())


def test_notebook_builds_uses_and_hides_the_solutions():
    assert_builds_uses_and_hides_the_solutions("05_rnn_lstm", "ch5.")
