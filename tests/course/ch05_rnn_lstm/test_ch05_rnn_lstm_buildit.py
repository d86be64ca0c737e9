"""Chapter 5's LSTM build-it steps: the backward reference agrees with PyTorch's autograd, ``YourLSTM`` built on the
references agrees with ``torch.nn.LSTM`` and with the library's ``nn.LSTM`` (forward, every gradient) and passes a
finite-difference check, and the checks' cases reach what the chapter teaches."""

import numpy as np
import pytest
import torch

from dlcourse import gradcheck, nn
from dlcourse.course.ch05_rnn_lstm.your_lstm import YourLSTM, compare_lstm_with_torch
from dlcourse.course.checker import REGISTRY, _run, reference

rng = np.random.default_rng(5)


def _your_lstm(I, H, batch_first=False, dtype=np.float64):
    return YourLSTM(reference("ch5.lstm_step"), reference("ch5.lstm_step_backward"), I, H, batch_first=batch_first,
                    dtype=dtype)


@pytest.mark.parametrize("N,I,H", [(1, 1, 1), (4, 3, 5), (2, 6, 2)])
def test_lstm_step_backward_reference_matches_torch_autograd(N, I, H):
    args = [rng.standard_normal(s) for s in [(N, I), (N, H), (N, H), (4 * H, I), (4 * H, H), (4 * H,), (4 * H,)]]
    dh, dc = rng.standard_normal((N, H)) * 2, rng.standard_normal((N, H)) * 3
    t = [torch.tensor(a, requires_grad=True) for a in args]
    h_new, c_new = torch._VF.lstm_cell(t[0], (t[1], t[2]), *t[3:])
    torch.autograd.backward([h_new, c_new], [torch.tensor(dh), torch.tensor(dc)])
    dx, dh_prev, dc_prev, dW_ih, dW_hh, db = reference("ch5.lstm_step_backward")(*args, dh, dc)
    for ours, theirs in [(dx, t[0]), (dh_prev, t[1]), (dc_prev, t[2]), (dW_ih, t[3]), (dW_hh, t[4]), (db, t[5]),
                         (db, t[6])]:
        assert np.allclose(ours, theirs.grad.numpy(), rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("batch_first", [False, True])
def test_your_lstm_with_the_references_equals_torch(batch_first):
    ours = _your_lstm(3, 4, batch_first)
    for p in ours.parameters():
        p.data[:] = rng.standard_normal(p.data.shape) * 0.5
    x = rng.standard_normal((2, 6, 3) if batch_first else (6, 2, 3))
    hx = (rng.standard_normal((1, 2, 4)), rng.standard_normal((1, 2, 4)))
    report = compare_lstm_with_torch(ours, x, hx)
    names = [row[0] for row in report.rows]
    assert names[:6] == ["output", "h_n", "c_n", "grad input", "grad h0", "grad c0"] and len(names) == 10
    assert report.ok() and report.max_rel < 1e-12, report


def test_compare_lstm_with_torch_sees_a_wrong_backward():
    def backward_without_cell_path(*args):
        return REGISTRY["ch5.lstm_step_backward"].wrong(*args)

    ours = YourLSTM(reference("ch5.lstm_step"), backward_without_cell_path, 2, 3, dtype=np.float64)
    report = compare_lstm_with_torch(ours, rng.standard_normal((5, 2, 2)), (np.zeros((1, 2, 3)),) * 2)
    assert not report.ok()


def test_your_lstm_equals_the_library_lstm_in_float32():
    ours, lib = _your_lstm(2, 5, True, np.float32), nn.LSTM(2, 5, batch_first=True)
    lib.load_state_dict(ours.state_dict())
    x = rng.standard_normal((3, 7, 2)).astype(np.float32)
    (out, (h_n, c_n)), (out_l, (h_l, c_l)) = ours.forward(x), lib.forward(x)
    g, gh, gc = (rng.standard_normal(a.shape).astype(np.float32) for a in (out, h_n, c_n))
    dx, dx_l = ours.backward(g, gh, gc), lib.backward(g, gh, gc)
    assert out.dtype == np.float32 and dx.dtype == np.float32
    for a, b in [(out, out_l), (h_n, h_l), (c_n, c_l), (dx, dx_l), (ours.grad_h0, lib.grad_h0),
                 (ours.grad_c0, lib.grad_c0)]:
        assert np.allclose(a, b, rtol=1e-4, atol=1e-5)
    for (name, p), (_, q) in zip(ours.named_parameters(), lib.named_parameters()):
        assert p.grad.dtype == np.float32 and np.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5), name


def test_your_lstm_passes_gradcheck_and_a_wrong_backward_does_not():
    x = rng.standard_normal((2, 4, 2))
    assert gradcheck(_your_lstm(2, 3, True), x).ok
    wrong = YourLSTM(reference("ch5.lstm_step"), REGISTRY["ch5.lstm_step_backward"].wrong, 2, 3, batch_first=True,
                     dtype=np.float64)
    assert not gradcheck(wrong, x).ok


def test_your_lstm_accumulates_gradients_like_the_library():
    ours = _your_lstm(2, 3)
    x = rng.standard_normal((4, 2, 2))
    out, _ = ours.forward(x)
    ours.backward(np.ones_like(out))
    first = [p.grad.copy() for p in ours.parameters()]
    ours.forward(x)
    ours.backward(np.ones_like(out))
    assert all(np.allclose(p.grad, 2 * g) for p, g in zip(ours.parameters(), first))


def test_your_lstm_rejects_bad_input():
    ours = _your_lstm(2, 3)
    with pytest.raises(ValueError, match="expected input of shape"):
        ours.forward(np.zeros((4, 2, 3)))
    with pytest.raises(ValueError, match="expected hx to be a tuple"):
        ours.forward(np.zeros((4, 2, 2)), np.zeros((1, 2, 3)))
    with pytest.raises(ValueError, match="expected h0 of shape"):
        ours.forward(np.zeros((4, 2, 2)), (np.zeros((2, 3)), np.zeros((1, 2, 3))))
    with pytest.raises(RuntimeError, match="before forward"):
        _your_lstm(2, 3).backward(np.zeros((4, 2, 3)))


def test_lstm_backward_cases_push_gradients_into_both_states():
    """dh' and dc' both non-zero and not all 1 in every case; N, I, H and 4H all different in some case; N > 1."""
    cases = REGISTRY["ch5.lstm_step_backward"].cases()
    for x, h, c, W_ih, W_hh, b_ih, b_hh, dh, dc in cases:
        assert np.all(dh != 0) and np.all(dc != 0) and not np.allclose(dh, 1) and not np.allclose(dc, 1)
    sizes = [(x.shape[0], x.shape[1], h.shape[1]) for x, h, *_ in cases]
    assert any(len({N, I, H, 4 * H}) == 4 and N > 1 for N, I, H in sizes)


def _lstm_backward_variant(mistake):
    """The reference's math with one typical mistake."""
    def backward(x, h, c, W_ih, W_hh, b_ih, b_hh, dh_next, dc_next):
        sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
        zi, zf, zg, zo = np.split(x @ W_ih.T + b_ih + h @ W_hh.T + b_hh, 4, axis=1)
        i, f, g, o = sig(zi), sig(zf), np.tanh(zg), sig(zo)
        c_new = f * c + i * g
        tanh_c = np.tanh(c_new)
        dc = dc_next + dh_next * o * (1 if mistake == "no tanh'" else 1 - tanh_c ** 2)
        dz = np.concatenate([dc * g * i * (1 - i), dc * (c_new if mistake == "new cell in df" else c) * f * (1 - f),
                             dc * i * (1 - g ** 2), dh_next * tanh_c * o * (1 - o)], axis=1)
        db = dz.mean(axis=0) if mistake == "mean over the batch" else dz.sum(axis=0)
        dc_prev = dc if mistake == "no forget factor" else dc * f
        return dz @ W_ih, dz @ W_hh, dc_prev, dz.T @ x, dz.T @ h, db
    return backward


def test_the_variant_without_mistakes_passes():
    assert _run("ch5.lstm_step_backward", _lstm_backward_variant(None)) is None


@pytest.mark.parametrize("mistake", ["no tanh'", "new cell in df", "mean over the batch", "no forget factor"])
def test_typical_lstm_backward_mistakes_are_rejected(mistake):
    assert _run("ch5.lstm_step_backward", _lstm_backward_variant(mistake)) is not None


def test_clip_reference_matches_torch_on_every_case():
    for grads, max_norm in REGISTRY["ch5.clip_grad_norm"].cases():
        params = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = torch.tensor(g)
        torch.nn.utils.clip_grad_norm_(params, max_norm)
        for ours, p in zip(reference("ch5.clip_grad_norm")(grads, max_norm), params):
            assert np.allclose(ours, p.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("eps", [0.0, 5e-7, 2e-6, -1e-6])
def test_clip_with_a_shifted_norm_is_rejected(eps):
    def shifted(grads, max_norm):
        total = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
        return tuple(g * min(1.0, max_norm / (total + eps)) for g in grads)

    assert _run("ch5.clip_grad_norm", shifted) is not None


def test_clip_only_above_the_threshold_is_rejected():
    """Clipping only when the norm exceeds max_norm misses PyTorch's 1e-6 just below it (the last case)."""
    def only_above(grads, max_norm):
        total = np.sqrt(sum(float(np.sum(g * g)) for g in grads))
        return tuple(g * (max_norm / (total + 1e-6)) if total > max_norm else g for g in grads)

    assert _run("ch5.clip_grad_norm", only_above) is not None
