"""RNN / LSTM / GRU and their cells against torch.nn, with random non-zero weights and biases.

Every case compares the output, h_n (and c_n), dLoss/dx, dLoss/dh0 (and dLoss/dc0) and every
parameter gradient, for a loss that uses out, h_n and c_n, so that each path of backpropagation
through time is exercised. float64 to 1e-8 relative, float32 to 1e-4.
"""

import itertools

import numpy as np
import pytest
import torch
from torch_twins import randomize

import dlcourse
from dlcourse import nn
from dlcourse.compare import compare, max_rel_diff
from dlcourse.gradcheck import gradcheck, numerical_gradient, relative_error
from dlcourse.runtime import num_threads

TOL = {np.float64: 1e-8, np.float32: 1e-4}


@pytest.fixture(autouse=True)
def _one_thread():
    """Small matrices: one thread is fastest, and NumPy's and torch's pools do not fight."""
    with num_threads(1):
        yield


TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}

SEQ = {  # name -> (our class, torch class, extra constructor arguments)
    "rnn_tanh": (nn.RNN, torch.nn.RNN, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNN, torch.nn.RNN, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTM, torch.nn.LSTM, {}),
    "gru": (nn.GRU, torch.nn.GRU, {}),
}
CELLS = {
    "rnn_tanh": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "tanh"}),
    "rnn_relu": (nn.RNNCell, torch.nn.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, torch.nn.LSTMCell, {}),
    "gru": (nn.GRUCell, torch.nn.GRUCell, {}),
}




def twins(kind, table, seed, dtype, **kwargs):
    ours_cls, torch_cls, extra = table[kind]
    torch.manual_seed(seed)
    theirs = randomize(torch_cls(**kwargs, **extra).to(TORCH_DT[dtype]), seed)
    ours = ours_cls(**kwargs, **extra, dtype=dtype)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def assert_close(name, ours, theirs, dtype):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    assert ours is not None, f"{name}: missing"
    assert np.shape(ours) == tuple(theirs.shape), f"{name}: shape {np.shape(ours)} vs {theirs.shape}"
    err = max_rel_diff(ours, theirs)
    assert err < TOL[dtype], f"{name}: relative difference {err:.2e} >= {TOL[dtype]:.0e}"


def run_sequence_case(kind, dtype, seed, batch_first=False, with_state=True, num_layers=1,
                      bidirectional=False, batched=True, bias=True, use_out=True):
    rng = np.random.default_rng(seed)
    I, H = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    T, N = int(rng.integers(1, 8)), int(rng.integers(1, 5))
    D = 2 if bidirectional else 1
    ours, theirs = twins(kind, SEQ, seed, dtype, input_size=I, hidden_size=H, num_layers=num_layers,
                         batch_first=batch_first, bidirectional=bidirectional, bias=bias)
    lstm = kind == "lstm"
    x_shape = ((N, T, I) if batch_first else (T, N, I)) if batched else (T, I)
    s_shape = (num_layers * D, N, H) if batched else (num_layers * D, H)
    o_shape = x_shape[:-1] + (D * H,)
    x = rng.standard_normal(x_shape).astype(dtype)
    states = [rng.standard_normal(s_shape).astype(dtype) for _ in range(2 if lstm else 1)]
    g_out = rng.standard_normal(o_shape).astype(dtype) if use_out else None
    g_states = [rng.standard_normal(s_shape).astype(dtype) for _ in states]

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    if lstm:
        out_t, (h_t, c_t) = theirs(xt, tuple(st) if with_state else None)
        finals_t = [h_t, c_t]
        out_o, (h_o, c_o) = ours.forward(x, tuple(states) if with_state else None)
        finals_o = [h_o, c_o]
    else:
        out_t, h_t = theirs(xt, st[0] if with_state else None)
        finals_t = [h_t]
        out_o, h_o = ours.forward(x, states[0] if with_state else None)
        finals_o = [h_o]
    loss = sum((f * torch.tensor(g)).sum() for f, g in zip(finals_t, g_states))
    if use_out:
        loss = loss + (out_t * torch.tensor(g_out)).sum()
    loss.backward()
    ours.zero_grad()
    if lstm:
        dx = ours.backward(g_out, grad_h_n=g_states[0], grad_c_n=g_states[1])
    else:
        dx = ours.backward(g_out, grad_h_n=g_states[0])

    assert out_o.dtype == dtype
    assert_close("output", out_o, out_t, dtype)
    for name, f_o, f_t in zip(["h_n", "c_n"], finals_o, finals_t):
        assert_close(name, f_o, f_t, dtype)
    assert_close("grad x", dx, xt.grad, dtype)
    if with_state:
        assert_close("grad h0", ours.grad_h0, st[0].grad, dtype)
        if lstm:
            assert_close("grad c0", ours.grad_c0, st[1].grad, dtype)
    ours_params = dict(ours.named_parameters())
    assert set(ours_params) == {n for n, _ in theirs.named_parameters()}
    for name, p in theirs.named_parameters():
        assert_close(f"grad {name}", ours_params[name].grad, p.grad, dtype)


@pytest.mark.parametrize("kind", list(SEQ))
@pytest.mark.parametrize("batch_first,with_state,num_layers,bidirectional",
                         list(itertools.product([False, True], [False, True], [1, 2], [False, True])))
def test_sequence_float64(kind, batch_first, with_state, num_layers, bidirectional):
    for seed in range(2):
        run_sequence_case(kind, np.float64, seed, batch_first, with_state, num_layers, bidirectional)


@pytest.mark.parametrize("kind", list(SEQ))
@pytest.mark.parametrize("batch_first,with_state", [(False, False), (True, True)])
def test_sequence_float32(kind, batch_first, with_state):
    for seed in range(3):
        run_sequence_case(kind, np.float32, 10 + seed, batch_first, with_state, num_layers=2)


@pytest.mark.parametrize("kind", list(SEQ))
def test_sequence_unbatched_no_bias_and_state_only_loss(kind):
    run_sequence_case(kind, np.float64, 3, batched=False, with_state=True, num_layers=2, bidirectional=True)
    run_sequence_case(kind, np.float64, 4, bias=False, with_state=True)
    run_sequence_case(kind, np.float64, 5, use_out=False, with_state=True, num_layers=2)


@pytest.mark.parametrize("kind", list(SEQ))
def test_batch_split_over_threads_matches_torch(kind, monkeypatch):
    """With several BLAS threads allowed, the RNN and the GRU run the recurrence on one slice of the batch per
    thread (recurrent_functional.layer_forward / layer_backward); the LSTM keeps the whole batch (its kernel
    uses BLAS's threads). Outputs and every gradient must not change."""
    from dlcourse.nn import recurrent_functional as RF
    monkeypatch.setattr(RF, "blas_threads", lambda: 3)  # three slices, of unequal sizes for most batches
    monkeypatch.setattr(RF, "MIN_ROWS", 1)
    options = [{}, {"num_layers": 2, "bidirectional": True, "batch_first": True},
               {"use_out": False, "with_state": True}, {"bias": False, "with_state": True}]
    for seed, kw in enumerate(options):
        run_sequence_case(kind, np.float64, 20 + seed, **kw)
        run_sequence_case(kind, np.float32, 30 + seed, **kw)
    rnn = SEQ[kind][0](3, 4, **SEQ[kind][2])
    rnn.forward(np.zeros((5, 7, 3), np.float32))
    cache = rnn._cache.layers[0][0]
    if kind == "lstm":
        assert isinstance(cache, RF.LSTMLayerCache)
    else:
        assert isinstance(cache, RF.BatchSlices) and [(s.start, s.stop) for s in cache.slices] == [(0, 2), (2, 4),
                                                                                                    (4, 7)]


def test_lstm_work_arrays_are_reused_and_never_shared_with_a_cache(monkeypatch):
    """The LSTM's backward keeps its work arrays for the next call (no fresh pages per call), except those above
    SCRATCH_MAX_BYTES; nothing it returns or caches may live in them: two forward passes, then their backward
    passes in reverse order and one of them twice (retain_graph), must all give torch's gradients."""
    from dlcourse.nn import recurrent_functional as RF
    for limit in (RF.SCRATCH_MAX_BYTES, 0):  # kept, then allocated per call
        monkeypatch.setattr(RF, "SCRATCH_MAX_BYTES", limit)
        monkeypatch.setattr(RF, "_workspace", __import__("threading").local())
        options = [{}, {"num_layers": 2, "bidirectional": True}, {"use_out": False, "with_state": True}]
        for seed, kw in enumerate(options):
            run_sequence_case("lstm", np.float64, 40 + seed, **kw)
    rng = np.random.default_rng(5)
    ours, theirs = twins("lstm", SEQ, 3, np.float64, input_size=3, hidden_size=4)
    xs = [rng.standard_normal((6, 2, 3)) for _ in range(2)]
    gs = [rng.standard_normal((6, 2, 4)) for _ in range(2)]
    caches = []
    for x in xs:
        ours.forward(x)
        caches.append(ours._cache)
    for x, g, cache in reversed(list(zip(xs, gs, caches))):
        xt = torch.tensor(x, requires_grad=True)
        theirs.zero_grad()
        theirs(xt)[0].backward(torch.tensor(g))
        for _ in range(2):  # the same cache twice: backward must not have changed it
            ours.zero_grad()
            ours._cache = cache
            dx = ours._backward(g, [None, None])
            np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
            for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
                np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-10, atol=1e-12, err_msg=name)


def test_lstm_work_arrays_kept_stay_within_their_budget(monkeypatch):
    """The work arrays a thread keeps for the next call never add up to more than SCRATCH_MAX_BYTES (a notebook's
    memory, Binder's 2 GB); with a small budget the larger arrays are allocated per call and results do not change."""
    import threading

    from dlcourse.nn import recurrent_functional as RF
    rng = np.random.default_rng(6)
    x, g = rng.standard_normal((30, 16, 8)), rng.standard_normal((30, 16, 12))
    results = []
    for budget in (RF.SCRATCH_MAX_BYTES, 200_000):
        monkeypatch.setattr(RF, "SCRATCH_MAX_BYTES", budget)
        monkeypatch.setattr(RF, "_workspace", threading.local())
        lstm = nn.LSTM(8, 12, dtype=np.float64)
        dlcourse.manual_seed(0)
        lstm.reset_parameters()
        for _ in range(2):
            lstm.zero_grad()
            out, _ = lstm.forward(x)
            dx = lstm.backward(g)
        kept = sum(b.nbytes for b in RF._workspace.buffers.values())
        assert 0 < kept <= budget, (kept, budget)
        results.append((out, dx, [p.grad.copy() for p in lstm.parameters()]))
    (out1, dx1, grads1), (out2, dx2, grads2) = results
    np.testing.assert_array_equal(out1, out2)
    np.testing.assert_array_equal(dx1, dx2)
    for a, b in zip(grads1, grads2):
        np.testing.assert_array_equal(a, b)


def test_larger_lstm_random_sizes():
    """The benchmark's shape class (long sequence, wider layer) in float64."""
    for seed in range(2):
        rng = np.random.default_rng(100 + seed)
        I, H, T, N = (int(v) for v in rng.integers([10, 20, 30, 4], [30, 60, 60, 12]))
        ours, theirs = twins("lstm", SEQ, seed, np.float64, input_size=I, hidden_size=H, batch_first=True)
        # randomize() uses scale 0.5: keep the gates out of saturation so the gradients stay informative
        with torch.no_grad():
            for p in theirs.parameters():
                p.mul_(0.3)
        ours.load_state_dict(theirs.state_dict())
        report = compare(ours, theirs, rng.standard_normal((N, T, I)))
        assert report.ok(), report


@pytest.mark.parametrize("kind", list(CELLS))
@pytest.mark.parametrize("batched,with_state", [(True, True), (True, False), (False, True)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_cells(kind, batched, with_state, dtype):
    rng = np.random.default_rng(7)
    I, H, N = 3, 5, 4
    ours, theirs = twins(kind, CELLS, 1, dtype, input_size=I, hidden_size=H)
    lstm = kind == "lstm"
    shape_x, shape_h = ((N, I), (N, H)) if batched else ((I,), (H,))
    x = rng.standard_normal(shape_x).astype(dtype)
    states = [rng.standard_normal(shape_h).astype(dtype) for _ in range(2 if lstm else 1)]
    grads = [rng.standard_normal(shape_h).astype(dtype) for _ in states]
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    hx_t = (tuple(st) if lstm else st[0]) if with_state else None
    hx_o = (tuple(states) if lstm else states[0]) if with_state else None
    out_t = theirs(xt, hx_t)
    out_o = ours.forward(x, hx_o)
    outs_t, outs_o = (list(out_t), list(out_o)) if lstm else ([out_t], [out_o])
    sum((o * torch.tensor(g)).sum() for o, g in zip(outs_t, grads)).backward()
    dx = ours.backward(*grads)
    for o, t in zip(outs_o, outs_t):
        assert_close("output", o, t, dtype)
    assert_close("grad x", dx, xt.grad, dtype)
    if with_state:
        grad_hx = list(ours.grad_hx) if lstm else [ours.grad_hx]
        for k, (g_o, s) in enumerate(zip(grad_hx, st)):
            assert_close(f"grad hx[{k}]", g_o, s.grad, dtype)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert_close(f"grad {name}", ours_params[name].grad, p.grad, dtype)


def test_cell_functions_match_cells_and_layers():
    """The readable per-step functions and the fast sequence layer compute the same thing."""
    rng = np.random.default_rng(0)
    from dlcourse.nn.rnn_cells import gru_cell, lstm_cell, rnn_cell
    for kind, step in [("rnn_tanh", rnn_cell), ("lstm", lstm_cell), ("gru", gru_cell)]:
        ours, _ = twins(kind, SEQ, 2, np.float64, input_size=3, hidden_size=4)
        x = rng.standard_normal((6, 2, 3))
        out, _ = ours.forward(x)
        W = [ours._parameters[n].data for n in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")]
        state = (np.zeros((2, 4)), np.zeros((2, 4))) if kind == "lstm" else np.zeros((2, 4))
        for t in range(6):
            state = step(x[t], state, *W)
            h = state[0] if kind == "lstm" else state
            np.testing.assert_allclose(h, out[t], rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------
# dlcourse.compare and gradcheck on these modules
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(SEQ))
def test_compare_flattens_tuple_outputs(kind):
    rng = np.random.default_rng(1)
    ours, theirs = twins(kind, SEQ, 3, np.float64, input_size=3, hidden_size=4, num_layers=2)
    x = rng.standard_normal((5, 2, 3))
    report = compare(ours, theirs, x)
    assert report.ok(), report
    names = [r[0] for r in report.rows]
    if kind == "lstm":
        assert names[:4] == ["output[0]", "output[1][0]", "output[1][1]", "grad input"]
        state = (rng.standard_normal((2, 2, 4)), rng.standard_normal((2, 2, 4)))
    else:
        assert names[:3] == ["output[0]", "output[1]", "grad input"]
        state = rng.standard_normal((2, 2, 4))
    report = compare(ours, theirs, x, state)
    assert report.ok(), report
    # compare must notice a wrong parameter gradient: corrupt one bias and it has to fail
    ours.load_state_dict(theirs.state_dict())
    ours.bias_hh_l1.data = ours.bias_hh_l1.data + 0.1
    assert not compare(ours, theirs, x, copy=False).ok()


@pytest.mark.parametrize("kind", list(SEQ))
def test_gradcheck(kind):
    ours, _ = twins(kind, SEQ, 4, np.float64, input_size=2, hidden_size=3, num_layers=2, batch_first=True)
    x = np.random.default_rng(0).standard_normal((2, 4, 2))
    result = gradcheck(ours, x)
    assert result.ok, result
    assert len(result.errors) == 1 + 8  # input + four parameters per layer


@pytest.mark.parametrize("kind", list(CELLS))
def test_gradcheck_cells(kind):
    ours, _ = twins(kind, CELLS, 5, np.float64, input_size=3, hidden_size=2)
    result = gradcheck(ours, np.random.default_rng(0).standard_normal((3, 3)))
    assert result.ok, result


def test_lstm_bias_bug_would_be_caught():
    """A classic from-scratch bug (b_hh forgotten) only shows with non-zero biases: the test sees it."""
    ours, theirs = twins("lstm", SEQ, 6, np.float64, input_size=3, hidden_size=4)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    assert compare(ours, theirs, x, copy=False).ok()
    ours.bias_hh_l0.data = np.zeros_like(ours.bias_hh_l0.data)  # what "forgetting b_hh" computes
    assert not compare(ours, theirs, x, copy=False).ok()


# ---------------------------------------------------------------------------------------
# Dropout between layers, dtype, state dict, init
# ---------------------------------------------------------------------------------------


def test_dropout_between_layers():
    dlcourse.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=3, dropout=0.5, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((6, 2, 3))
    lstm.eval()
    out_eval, _ = lstm.forward(x)
    _, theirs = twins("lstm", SEQ, 0, np.float64, input_size=3, hidden_size=4, num_layers=3)
    theirs.load_state_dict({k: torch.tensor(v) for k, v in lstm.state_dict().items()})
    assert max_rel_diff(out_eval, theirs(torch.tensor(x))[0]) < 1e-10  # eval: no dropout at all
    lstm.train()
    g = np.random.default_rng(1).standard_normal(out_eval.shape)

    def loss():
        dlcourse.manual_seed(42)  # the same masks on every forward
        return float((lstm.forward(x)[0] * g).sum())

    dlcourse.manual_seed(42)
    out_a, _ = lstm.forward(x)
    assert not np.allclose(out_a, out_eval)  # masks are applied in training
    lstm.zero_grad()
    dx = lstm.backward(g)
    assert relative_error(dx, numerical_gradient(loss, x)) < 1e-7
    w = lstm.weight_ih_l1
    assert relative_error(w.grad, numerical_gradient(loss, w.data)) < 1e-7


def test_float32_stays_float32_and_state_dict_round_trip():
    lstm = nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    out, (h, c) = lstm.forward(x)
    assert out.dtype == h.dtype == c.dtype == np.float32
    assert out.shape == (3, 2, 12) and h.shape == c.shape == (4, 2, 6)
    lstm.backward(np.ones_like(out))
    assert all(p.grad.dtype == np.float32 for p in lstm.parameters())
    theirs = torch.nn.LSTM(4, 6, num_layers=2, bidirectional=True)
    assert list(lstm.state_dict()) == list(theirs.state_dict())  # names and order as in PyTorch
    theirs.load_state_dict({k: torch.tensor(v) for k, v in lstm.state_dict().items()})
    out_t, _ = theirs(torch.tensor(x))
    assert max_rel_diff(out, out_t) < 1e-5


def test_init_matches_pytorch_distribution():
    dlcourse.manual_seed(0)
    H = 50
    lstm = nn.LSTM(7, H)
    bound = 1 / np.sqrt(H)
    for name, p in lstm.named_parameters():
        assert p.data.shape == dict(torch.nn.LSTM(7, H).named_parameters())[name].shape
        assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.9 * bound


# ---------------------------------------------------------------------------------------
# Bad input says what was expected and what came
# ---------------------------------------------------------------------------------------


def test_errors():
    rnn = nn.RNN(3, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        rnn.forward(np.zeros((5, 2, 2)))
    with pytest.raises(ValueError, match=r"\(1, 2, 4\)"):
        rnn.forward(np.zeros((5, 2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="finite"):
        rnn.forward(np.full((5, 2, 3), np.nan))
    with pytest.raises(ValueError, match="non-empty"):
        rnn.forward(np.zeros((0, 2, 3)))
    with pytest.raises(ValueError, match="nonlinearity"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(RuntimeError, match="before forward"):
        nn.LSTM(3, 4).backward(np.zeros((5, 2, 4)))
    lstm = nn.LSTM(3, 4, batch_first=True)
    with pytest.raises(ValueError, match="tuple"):
        lstm.forward(np.zeros((2, 5, 3)), np.zeros((1, 2, 4)))
    lstm.forward(np.zeros((2, 5, 3)))
    with pytest.raises(ValueError, match=r"grad_out of shape \(2, 5, 4\)"):
        lstm.backward(np.zeros((5, 2, 4)))
    with pytest.raises(ValueError, match="grad_c_n"):
        lstm.backward(np.zeros((2, 5, 4)), grad_c_n=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="hidden_size"):
        nn.LSTM(3, 0)
    with pytest.raises(ValueError, match="input_size=3"):
        nn.LSTMCell(3, 4).forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"\(2, 4\)"):
        nn.GRUCell(3, 4).forward(np.zeros((2, 3)), np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------
# The chapter's data generators and widget
# ---------------------------------------------------------------------------------------


def test_sequence_generators():
    from dlcourse.data.sequences import make_adding_problem, make_sine_waves
    x, y, clean = make_sine_waves(8, 30, noise=0.1, seed=1)
    assert x.shape == y.shape == clean.shape == (8, 30, 1) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # y is x shifted by one step
    assert 0.05 < np.std(y - clean) < 0.15
    np.testing.assert_array_equal(make_sine_waves(8, 30, seed=1)[0], make_sine_waves(8, 30, seed=1)[0])
    x, y = make_adding_problem(500, 20, seed=2)
    assert x.shape == (500, 20, 2) and y.shape == (500, 1)
    marks = x[:, :, 1]
    assert (marks.sum(axis=1) == 2).all() and (marks[:, :10].sum(axis=1) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(axis=1), rtol=1e-6)
    assert abs(np.mean((y - 1) ** 2) - 1 / 6) < 0.03  # the constant predictor's error, as documented
    with pytest.raises(ValueError, match="length"):
        make_adding_problem(10, 1)


def test_gradient_norm_vs_distance_matches_jacobian_products():
    """The measured curve is the norm of the chained Jacobians diag(1 - h_t^2) W_hh, times W_ih."""
    from dlcourse.course.ch05_rnn_lstm.rnn_gradients import gradient_norm_vs_distance, make_models
    rnn, _ = make_models(3, 5, w_hh_scale=2.0)
    T = 7
    norms = gradient_norm_vs_distance(rnn, T, batch_size=1, seed=3)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((T, 1, 3))
    g = rng.standard_normal(5)
    out, _ = rnn.forward(x)
    hs = out[:, 0]
    W_ih, W_hh = rnn.weight_ih_l0.data, rnn.weight_hh_l0.data
    v = g * (1 - hs[-1] ** 2)  # dL/dpre_T
    expected = []
    for t in range(T - 1, -1, -1):
        expected.append(np.linalg.norm(v @ W_ih))
        if t:
            v = (v @ W_hh) * (1 - hs[t - 1] ** 2)
    np.testing.assert_allclose(norms, expected, rtol=1e-10)


def test_rnn_gradient_widget_redraws():
    from dlcourse.course.ch05_rnn_lstm.rnn_gradients import RNNGradientExplorer
    w = RNNGradientExplorer(seq_len=40, hidden_size=16)
    n, text = w.n_updates, w.readout.value
    assert len(w.curves["RNN (tanh)"]) == 40
    w.controls["seq_len"].value = 80
    assert w.n_updates == n + 1 and "79 steps back" in w.readout.value and w.readout.value != text
    assert len(w.axes[0].get_lines()[0].get_ydata()) == 80
    lstm_before = w.curves["LSTM"][-1] / w.curves["LSTM"][0]
    w.controls["forget_bias"].value = 4.0  # forget gates near 1: the LSTM's gradient reaches much further
    assert w.curves["LSTM"][-1] / w.curves["LSTM"][0] > 1e3 * lstm_before
    rnn_small = w.curves["RNN (tanh)"][-1] / w.curves["RNN (tanh)"][0]
    w.controls["w_hh_scale"].value = 3.0
    assert w.curves["RNN (tanh)"][-1] / w.curves["RNN (tanh)"][0] > 1e3 * rnn_small


def test_lstm_proj_size_zero_accepted_positive_refused():
    nn.LSTM(2, 3, proj_size=0)
    with pytest.raises(ValueError, match="proj_size=2.*not implemented"):
        nn.LSTM(2, 3, proj_size=2)
