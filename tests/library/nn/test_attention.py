"""Embedding, LayerNorm, scaled_dot_product_attention and MultiheadAttention against torch.

Every case uses random shapes and random non-zero weights and biases, and compares the output,
the attention weights, dLoss/dquery, dLoss/dkey, dLoss/dvalue and every parameter gradient:
float64 to 1e-8 relative (to the largest magnitude), float32 to 1e-4. Dropout cases compare in
eval mode (exact) and check train mode separately; central-difference gradient checks cover the
backward passes independently of PyTorch.
"""

import math

import numpy as np
import pytest
import torch
from torch_twins import randomize

import dlcourse
from dlcourse import nn
from dlcourse.compare import max_rel_diff
from dlcourse.gradcheck import gradcheck, numerical_gradient, relative_error
from dlcourse.nn import functional as F
from dlcourse.runtime import num_threads

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}
MAX_ERR: dict = {}  # (what, dtype name) -> largest relative difference seen (read by the report)


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1):
        yield


def assert_close(what, name, ours, theirs, dtype):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    assert ours is not None, f"{what} {name}: missing"
    assert np.shape(ours) == theirs.shape, f"{what} {name}: shape {np.shape(ours)} vs {theirs.shape}"
    assert np.asarray(ours).dtype == dtype, f"{what} {name}: dtype {np.asarray(ours).dtype}, expected {dtype}"
    assert np.isfinite(theirs).all() and np.isfinite(ours).all(), f"{what} {name}: not finite"
    err = max_rel_diff(ours, theirs)
    key = (what, np.dtype(dtype).name)
    MAX_ERR[key] = max(MAX_ERR.get(key, 0.0), err)
    assert err < TOL[dtype], f"{what} {name}: relative difference {err:.2e} >= {TOL[dtype]:.0e}"


def load_from(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours


def compare_param_grads(what, ours, theirs, dtype):
    theirs_params = dict(theirs.named_parameters())
    ours_params = dict(ours.named_parameters())
    assert sorted(ours_params) == sorted(theirs_params)
    for name, p in ours_params.items():
        assert_close(what, f"grad {name}", p.grad, theirs_params[name].grad, dtype)


# ---------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------
# LayerNorm
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("affine, bias", [(True, True), (True, False), (False, False)])
@pytest.mark.parametrize("seed", range(3))
def test_layer_norm_matches_torch(seed, affine, bias, dtype):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 3))
    normalized = tuple(int(n) for n in rng.integers(2, 6, size=k))
    lead = tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(1, 3))))
    arg = normalized[0] if (k == 1 and seed % 2 == 0) else normalized  # int or tuple
    eps = float(rng.choice([1e-5, 1e-3]))
    theirs = torch.nn.LayerNorm(arg, eps=eps, elementwise_affine=affine, bias=bias, dtype=TORCH_DT[dtype])
    randomize(theirs, seed)
    ours = load_from(nn.LayerNorm(arg, eps=eps, elementwise_affine=affine, bias=bias), theirs)
    x = (rng.standard_normal(lead + normalized) * 3 + 1).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    y = theirs(xt)
    y.backward(torch.tensor(g))
    assert_close("LayerNorm", "output", ours.forward(x), y, dtype)
    assert_close("LayerNorm", "grad input", ours.backward(g), xt.grad, dtype)
    compare_param_grads("LayerNorm", ours, theirs, dtype)


def test_layer_norm_gradcheck():
    ln = nn.LayerNorm((3, 4)).double()
    rng = np.random.default_rng(0)
    ln.weight.data = rng.standard_normal((3, 4))
    ln.bias.data = rng.standard_normal((3, 4))
    result = gradcheck(ln, rng.standard_normal((2, 3, 4)))
    assert result.ok, result


def test_layer_norm_bad_input():
    with pytest.raises(ValueError, match=r"expected input of shape \(\*, 4\) .* got shape \(2, 3\)"):
        nn.LayerNorm(4).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(\*, 2, 3\) .* got shape \(3, 2\)"):
        nn.LayerNorm((2, 3)).forward(np.zeros((3, 2)))
    with pytest.raises(ValueError, match="expected normalized_shape of positive sizes, got"):
        nn.LayerNorm(0)


# ---------------------------------------------------------------------------------------
# scaled_dot_product_attention (functional)
# ---------------------------------------------------------------------------------------

def _random_bool_mask(rng, shape, p=0.4):
    """True = take part (sdpa's convention); key 0 always takes part, so no query is fully blocked."""
    mask = rng.random(shape) > p
    mask[..., 0] = True
    return mask


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mask_kind", ["none", "bool", "bool_broadcast", "float", "causal", "scale"])
@pytest.mark.parametrize("seed", range(2))
def test_sdpa_matches_torch(seed, mask_kind, dtype):
    rng = np.random.default_rng(seed)
    batch = tuple(int(n) for n in rng.integers(1, 4, size=int(rng.integers(0, 3))))
    L, S, E, Ev = (int(n) for n in rng.integers(1, 7, size=4))
    q = rng.standard_normal(batch + (L, E)).astype(dtype)
    k = rng.standard_normal(batch + (S, E)).astype(dtype)
    v = rng.standard_normal(batch + (S, Ev)).astype(dtype)
    kwargs = {}
    if mask_kind == "bool":
        kwargs["attn_mask"] = _random_bool_mask(rng, batch + (L, S))
    elif mask_kind == "bool_broadcast":
        kwargs["attn_mask"] = _random_bool_mask(rng, (L, S))
    elif mask_kind == "float":
        m = rng.standard_normal((L, S)).astype(dtype)
        m[:, 1:][rng.random((L, S - 1)) < 0.3] = -np.inf
        kwargs["attn_mask"] = m
    elif mask_kind == "causal":
        kwargs["is_causal"] = True
    elif mask_kind == "scale":
        kwargs["scale"] = float(rng.uniform(0.1, 2.0))
    g = rng.standard_normal(batch + (L, Ev)).astype(dtype)
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
    y = torch.nn.functional.scaled_dot_product_attention(*ts, **tkw)
    y.backward(torch.tensor(g))

    out = F.scaled_dot_product_attention(q, k, v, **kwargs)
    assert_close("scaled_dot_product_attention", "output", out, y, dtype)
    weights = F.attention_weights(q, k, **kwargs)
    grads = F.scaled_dot_product_attention_backward(g, q, k, v, weights, scale=kwargs.get("scale"))
    for name, ours, t in zip(("query", "key", "value"), grads, ts):
        assert_close("scaled_dot_product_attention", f"grad {name}", ours, t.grad, dtype)


def test_sdpa_broadcast_key_value_gradients_are_summed():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((2, 3, 4, 5))
    k, v = rng.standard_normal((4 + 2, 5)), rng.standard_normal((6, 2))  # shared by every batch element
    ts = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    y = torch.nn.functional.scaled_dot_product_attention(*ts)
    g = rng.standard_normal(tuple(y.shape))
    y.backward(torch.tensor(g))
    grads = F.scaled_dot_product_attention_backward(g, q, k, v, F.attention_weights(q, k))
    for ours, t in zip(grads, ts):
        assert ours.shape == tuple(t.shape) and max_rel_diff(ours, t.grad) < 1e-8


def test_sdpa_fully_masked_query_gives_zeros_like_torch():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((3, 4)) for _ in range(3))
    mask = np.ones((3, 3), bool)
    mask[1] = False  # query 1 may attend to nothing
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    theirs = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)),
                                                              attn_mask=torch.tensor(mask))
    assert np.isfinite(out).all() and not out[1].any()
    assert max_rel_diff(out, theirs) < 1e-12


def _numeric_sdpa_grads(q, k, v, g, **kwargs):
    def f():
        return float(np.sum(F.scaled_dot_product_attention(q, k, v, **kwargs) * g))
    return [numerical_gradient(f, a) for a in (q, k, v)]


@pytest.mark.parametrize("kwargs", [{}, {"is_causal": True}, {"scale": 0.7}])
def test_sdpa_gradcheck(kwargs):
    rng = np.random.default_rng(1)
    q, k, v = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 5))
    g = rng.standard_normal((2, 4, 5))
    analytic = F.scaled_dot_product_attention_backward(g, q, k, v, F.attention_weights(q, k, **kwargs),
                                                       scale=kwargs.get("scale"))
    for a, n in zip(analytic, _numeric_sdpa_grads(q, k, v, g, **kwargs)):
        assert relative_error(a, n) < 1e-7


def test_sdpa_dropout_backward_with_fixed_mask():
    rng = np.random.default_rng(2)
    q, k, v = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal((5, 2))
    g = rng.standard_normal((3, 2))
    D = (rng.random((3, 5)) > 0.3) / 0.7

    def f():
        return float(np.sum((F.attention_weights(q, k) * D) @ v * g))
    analytic = F.scaled_dot_product_attention_backward(g, q, k, v, F.attention_weights(q, k), dropout_mask=D)
    for a, x in zip(analytic, (q, k, v)):
        assert relative_error(a, numerical_gradient(f, x)) < 1e-7
    dlcourse.manual_seed(0)
    dropped = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
    assert not np.allclose(dropped, F.scaled_dot_product_attention(q, k, v))


def test_sdpa_bad_input():
    q, k, v = np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 5, 6))
    with pytest.raises(ValueError, match=r"expected key's last dimension E=4 \(query's\), got key of shape "
                                         r"\(2, 5, 3\)"):
        F.scaled_dot_product_attention(q, np.zeros((2, 5, 3)), v)
    with pytest.raises(ValueError, match=r"expected value \(\.\.\., S=5, Ev\) .* got value of shape \(2, 4, 6\)"):
        F.scaled_dot_product_attention(q, k, np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match=r"expected attn_mask broadcastable to the scores' shape \(2, 3, 5\) "
                                         r"\(\.\.\., L, S\), got shape \(3, 4\)"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="expected attn_mask of dtype bool .* or float .* got dtype int64"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), np.int64))
    with pytest.raises(ValueError, match="expected either attn_mask or is_causal=True, got both"):
        F.scaled_dot_product_attention(q, k, v, attn_mask=np.ones((3, 5), bool), is_causal=True)


# ---------------------------------------------------------------------------------------
# MultiheadAttention
# ---------------------------------------------------------------------------------------

def mha_case(seed, dtype, batch_first=False, mode="self", bias=True, attn_mask=None, key_padding_mask=None,
             need_weights=True, average=True, batched=True, grad_weights=True, add_bias_kv=False,
             add_zero_attn=False):
    """Build twins and inputs, run forward and backward on both, compare everything; return ours."""
    rng = np.random.default_rng(seed)
    H = int(rng.integers(1, 4))
    E = H * int(rng.integers(1, 4))
    N, L = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    S = L if mode == "self" else int(rng.integers(1, 6))
    kdim = vdim = None
    if mode == "kvdim":
        kdim, vdim = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    torch.manual_seed(seed)
    options = dict(bias=bias, kdim=kdim, vdim=vdim, batch_first=batch_first, add_bias_kv=add_bias_kv,
                   add_zero_attn=add_zero_attn)
    theirs = torch.nn.MultiheadAttention(E, H, dtype=TORCH_DT[dtype], **options)
    randomize(theirs, seed)
    ours = load_from(nn.MultiheadAttention(E, H, **options), theirs)

    def shape(T, dim):
        if not batched:
            return (T, dim)
        return (N, T, dim) if batch_first else (T, N, dim)
    q = rng.standard_normal(shape(L, E)).astype(dtype)
    k = q if mode == "self" else rng.standard_normal(shape(S, kdim or E)).astype(dtype)
    v = q if mode == "self" else rng.standard_normal(shape(S, vdim or E)).astype(dtype)

    kwargs = {"need_weights": need_weights, "average_attn_weights": average}
    lead = (N * H,) if batched else (H,)
    if attn_mask == "bool":
        m = rng.random((L, S)) < 0.4  # True = blocked (MultiheadAttention's convention)
        m[:, 0] = False
        kwargs["attn_mask"] = m
    elif attn_mask == "bool3d":
        m = rng.random(lead + (L, S)) < 0.4
        m[..., 0] = False
        kwargs["attn_mask"] = m
    elif attn_mask == "float3d":
        m = rng.standard_normal(lead + (L, S)).astype(dtype)
        m[..., 1:][rng.random(lead + (L, S - 1)) < 0.3] = -np.inf
        kwargs["attn_mask"] = m
    elif attn_mask == "causal":
        kwargs["attn_mask"] = nn.generate_square_subsequent_mask(L, dtype)
        kwargs["is_causal"] = True
    if key_padding_mask is not None:
        kpm = rng.random((N, S) if batched else (S,)) < 0.4
        kpm[..., 0] = False
        kwargs["key_padding_mask"] = kpm if key_padding_mask == "bool" else np.where(kpm, -np.inf, 0).astype(dtype)

    t_in = [torch.tensor(q, requires_grad=True)]
    if mode != "self":
        t_in += [torch.tensor(k, requires_grad=True), torch.tensor(v, requires_grad=True)]
    tq, tk, tv = t_in if mode != "self" else t_in * 3
    tkw = {key: torch.tensor(val) if isinstance(val, np.ndarray) else val for key, val in kwargs.items()}
    y, w = theirs(tq, tk, tv, **tkw)
    g = rng.standard_normal(tuple(y.shape)).astype(dtype)
    loss = (y * torch.tensor(g)).sum()
    gw = None
    if need_weights and grad_weights:
        gw = rng.standard_normal(tuple(w.shape)).astype(dtype)
        loss = loss + (w * torch.tensor(gw)).sum()
    loss.backward()

    what = "MultiheadAttention"
    out, weights = ours.forward(q, k, v, **kwargs)
    assert_close(what, "output", out, y, dtype)
    if need_weights:
        assert_close(what, "weights", weights, w, dtype)
    else:
        assert weights is None and w is None
    grads = ours.backward(g, gw)
    assert isinstance(grads, tuple) and len(grads) == 3
    if mode == "self":
        assert_close(what, "grad input (sum of the three)", grads[0] + grads[1] + grads[2], tq.grad, dtype)
    else:
        for name, ours_g, t in zip(("query", "key", "value"), grads, t_in):
            assert_close(what, f"grad {name}", ours_g, t.grad, dtype)
    compare_param_grads(what, ours, theirs, dtype)
    return ours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mode", ["self", "cross", "kvdim"])
@pytest.mark.parametrize("seed", range(2))
def test_mha_matches_torch(seed, mode, batch_first, dtype):
    mha_case(seed, dtype, batch_first=batch_first, mode=mode)


@pytest.mark.parametrize("attn_mask, key_padding_mask", [
    ("bool", None), ("bool3d", None), ("float3d", None), (None, "bool"), (None, "float"), ("bool", "bool"),
    ("float3d", "float"), ("causal", None), ("causal", "bool"),
])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("seed", range(2))
def test_mha_masks_match_torch(seed, batch_first, attn_mask, key_padding_mask):
    mode = "self" if attn_mask == "causal" else ["self", "cross"][seed]
    mha_case(seed + 10, np.float64, batch_first=batch_first, mode=mode, attn_mask=attn_mask,
             key_padding_mask=key_padding_mask)
    if attn_mask != "causal":
        mha_case(seed + 20, np.float32, batch_first=batch_first, mode=mode, attn_mask=attn_mask,
                 key_padding_mask=key_padding_mask)


@pytest.mark.parametrize("kw", [
    {"need_weights": False}, {"average": False}, {"bias": False}, {"grad_weights": False},
    {"add_bias_kv": True}, {"add_zero_attn": True}, {"add_bias_kv": True, "add_zero_attn": True, "batch_first": True},
    {"add_bias_kv": True, "add_zero_attn": True, "mode": "cross", "attn_mask": "bool3d", "key_padding_mask": "bool"},
    {"add_bias_kv": True, "mode": "kvdim", "attn_mask": "float3d", "key_padding_mask": "float", "batch_first": True},
    {"add_zero_attn": True, "batched": False, "attn_mask": "bool", "key_padding_mask": "bool"},
    {"batched": False}, {"batched": False, "mode": "cross", "attn_mask": "bool3d", "key_padding_mask": "bool"},
    {"batched": False, "batch_first": True, "average": False, "mode": "kvdim"},
])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_mha_options_match_torch(kw, dtype):
    mha_case(5, dtype, **kw)


def test_mha_state_dict_keys_and_init_like_torch():
    assert list(nn.MultiheadAttention(8, 2).state_dict()) == list(torch.nn.MultiheadAttention(8, 2).state_dict())
    assert (list(nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False).state_dict())
            == list(torch.nn.MultiheadAttention(8, 2, kdim=3, vdim=5, bias=False).state_dict()))
    assert (list(nn.MultiheadAttention(8, 2, add_bias_kv=True).state_dict())
            == list(torch.nn.MultiheadAttention(8, 2, add_bias_kv=True).state_dict()))
    mha = nn.MultiheadAttention(8, 2)
    assert mha.in_proj_weight.shape == (24, 8) and mha.in_proj_weight.dtype == np.float32
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()  # torch zeros both biases


@pytest.mark.parametrize("kw", [{}, {"kdim": 3, "vdim": 5, "add_bias_kv": True}])
def test_mha_reset_parameters_draws_torchs_distributions_through_nn_init(kw):
    """reset_parameters redraws what the constructor drew (the same order through nn.init), with torch's
    distributions: W_in ~ xavier_uniform (bound sqrt(6 / (fan_in + fan_out))), zero biases, out_proj a
    Linear's U(-1/sqrt(E), 1/sqrt(E)), bias_k and bias_v ~ xavier_normal (std 1/sqrt(E) for (1, 1, E))."""
    E = 64
    dlcourse.manual_seed(2)
    mha = nn.MultiheadAttention(E, 4, **kw)
    first = mha.state_dict()
    for p in mha.parameters():
        p.data[...] = 7.0
    dlcourse.manual_seed(2)
    mha.reset_parameters()
    for k, v in mha.state_dict().items():
        np.testing.assert_array_equal(v, first[k], err_msg=k)
    weights = [mha.in_proj_weight] if mha.in_proj_weight is not None else \
        [mha.q_proj_weight, mha.k_proj_weight, mha.v_proj_weight]
    for w in weights:
        fan_out, fan_in = (E, w.shape[1]) if len(weights) == 3 else (3 * E, E)
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert 0.9 * bound < np.abs(w.data).max() <= bound
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()
    assert 0.9 / math.sqrt(E) < np.abs(mha.out_proj.weight.data).max() <= 1 / math.sqrt(E)
    if mha.bias_k is not None:
        both = np.concatenate([mha.bias_k.data.ravel(), mha.bias_v.data.ravel()])
        assert abs(both.std() * math.sqrt(E) - 1) < 0.25  # 128 draws of N(0, 1/E)


@pytest.mark.parametrize("extra", [False, True])
def test_mha_gradcheck(extra):
    """Central differences for every input and parameter, with masks and a loss on the weights too."""
    rng = np.random.default_rng(4)
    mha = nn.MultiheadAttention(4, 2, kdim=3, vdim=5, add_bias_kv=extra, add_zero_attn=extra).double()
    for p in mha.parameters():
        p.data = rng.standard_normal(p.shape) * 0.5
    q, k, v = rng.standard_normal((3, 2, 4)), rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 2, 5))
    mask = rng.random((3, 4)) < 0.3
    mask[:, 0] = False
    kpm = np.array([[False, False, True, False], [False, True, False, False]])
    g, gw = rng.standard_normal((3, 2, 4)), rng.standard_normal((2, 3, 4 + 2 * extra))

    def f():
        out, w = mha.forward(q, k, v, attn_mask=mask, key_padding_mask=kpm)
        return float(np.sum(out * g) + np.sum(w * gw))
    mha.zero_grad()
    mha.forward(q, k, v, attn_mask=mask, key_padding_mask=kpm)
    grads = mha.backward(g, gw)
    for name, a, x in zip(("query", "key", "value"), grads, (q, k, v)):
        assert relative_error(a, numerical_gradient(f, x)) < 1e-7, name
    for name, p in mha.named_parameters():
        assert relative_error(p.grad, numerical_gradient(f, p.data)) < 1e-7, name


def test_mha_dropout_train_changes_output_eval_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 2, 8))
    mha = nn.MultiheadAttention(8, 2, dropout=0.5).double()
    dlcourse.manual_seed(1)
    out_a, w_a = mha.forward(x, x, x)
    out_b, w_b = mha.forward(x, x, x)
    assert not np.allclose(out_a, out_b) and not np.allclose(w_a, w_b)
    assert (w_a == 0).any()  # returned weights are after dropout, as torch's
    mha.eval()
    out_c, _ = mha.forward(x, x, x)
    out_d, _ = mha.forward(x, x, x)
    np.testing.assert_array_equal(out_c, out_d)
    theirs = torch.nn.MultiheadAttention(8, 2, dropout=0.5, dtype=torch.float64).eval()
    theirs.load_state_dict({k: torch.tensor(v) for k, v in mha.state_dict().items()})
    xt = torch.tensor(x)
    assert max_rel_diff(out_c, theirs(xt, xt, xt)[0]) < 1e-12


def test_mha_dropout_backward_in_train_mode():
    """With the same seed before every forward, dropout's mask is fixed, so central differences apply."""
    rng = np.random.default_rng(1)
    mha = nn.MultiheadAttention(4, 2, dropout=0.3).double()
    for p in mha.parameters():
        p.data = rng.standard_normal(p.shape) * 0.5
    x = rng.standard_normal((3, 2, 4))
    g = rng.standard_normal((3, 2, 4))

    def f():
        dlcourse.manual_seed(7)
        return float(np.sum(mha.forward(x, x, x)[0] * g))
    f()
    mha.zero_grad()
    dx = sum(mha.backward(g))
    assert relative_error(dx, numerical_gradient(f, x)) < 1e-7
    assert relative_error(mha.in_proj_weight.grad, numerical_gradient(f, mha.in_proj_weight.data)) < 1e-7


def test_mha_float32_stays_float32():
    mha = nn.MultiheadAttention(8, 2)
    x = np.random.default_rng(0).standard_normal((4, 3, 8)).astype(np.float32)
    out, w = mha.forward(x, x, x)
    assert out.dtype == np.float32 and w.dtype == np.float32
    assert all(gr.dtype == np.float32 for gr in mha.backward(np.ones_like(out)))
    assert all(p.grad.dtype == np.float32 for p in mha.parameters())


def test_mha_bad_arguments_and_input():
    with pytest.raises(ValueError, match="expected embed_dim divisible by num_heads, got embed_dim=10, num_heads=4"):
        nn.MultiheadAttention(10, 4)
    mha = nn.MultiheadAttention(8, 2)
    x = np.zeros((5, 3, 8), np.float32)
    with pytest.raises(ValueError, match=r"expected query with last dimension 8, got shape \(5, 3, 7\)"):
        mha.forward(np.zeros((5, 3, 7)), x, x)
    with pytest.raises(ValueError, match=r"expected key with last dimension 8, got shape \(5, 3, 6\)"):
        mha.forward(x, np.zeros((5, 3, 6)), x)
    with pytest.raises(ValueError, match="expected query, key, value all 3-D .* or all 2-D"):
        mha.forward(x, x[:, 0], x)
    with pytest.raises(ValueError, match=r"expected key and value with the same leading shape"):
        mha.forward(x, x, x[:4])
    with pytest.raises(ValueError, match=r"expected query and key with the same batch size"):
        mha.forward(x, x[:, :2], x[:, :2])
    with pytest.raises(ValueError, match=r"expected attn_mask of shape \(5, 5\) or \(6, 5, 5\), got \(5, 4\)"):
        mha.forward(x, x, x, attn_mask=np.zeros((5, 4), bool))
    with pytest.raises(ValueError, match="expected attn_mask of dtype bool .* got dtype int64"):
        mha.forward(x, x, x, attn_mask=np.zeros((5, 5), np.int64))
    with pytest.raises(ValueError, match=r"expected key_padding_mask of shape \(3, 5\) \(batch, keys\), "
                                         r"got \(5, 3\)"):
        mha.forward(x, x, x, key_padding_mask=np.zeros((5, 3), bool))
    with pytest.raises(ValueError, match="is_causal=True is a hint .* expected attn_mask"):
        mha.forward(x, x, x, is_causal=True)
    out, _ = mha.forward(x, x, x)
    with pytest.raises(ValueError, match=r"expected grad_out of .*shape \(5, 3, 8\).*got (shape )?\(5, 3, 7\)"):
        mha.backward(np.zeros((5, 3, 7)))


def test_mha_skips_input_gradients_when_not_needed():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 2, 8))
    mha = nn.MultiheadAttention(8, 2).double()
    mha.forward(x, x, x)
    full = sum(mha.backward(np.ones((4, 2, 8))))
    expected = {name: p.grad.copy() for name, p in mha.named_parameters()}
    assert full.shape == x.shape
    mha.zero_grad()
    mha.needs_input_grad = False  # the inputs are data: parameter gradients only
    mha.forward(x, x, x)
    assert mha.backward(np.ones((4, 2, 8))) is None
    for name, p in mha.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-12, atol=0)


def test_mha_fully_masked_query_matches_torch_without_weights():
    """A query with every key padded: zero weights, output = out_proj's bias (torch: the same with
    need_weights=False; NaN with need_weights=True, which we do not copy)."""
    rng = np.random.default_rng(0)
    theirs = randomize(torch.nn.MultiheadAttention(4, 2, dtype=torch.float64), 0)
    ours = load_from(nn.MultiheadAttention(4, 2), theirs)
    x = rng.standard_normal((3, 2, 4))
    kpm = np.array([[True, True, True], [False, True, False]])
    out, w = ours.forward(x, x, x, key_padding_mask=kpm)
    xt = torch.tensor(x)
    expected, _ = theirs(xt, xt, xt, key_padding_mask=torch.tensor(kpm), need_weights=False)
    assert np.isfinite(out).all() and not w[0].any()
    assert max_rel_diff(out, expected) < 1e-12
    np.testing.assert_allclose(out[:, 0], np.broadcast_to(ours.out_proj.bias.data, (3, 4)), rtol=0, atol=1e-15)


# -- issue 20 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("batch_first", [True, False])
def test_multihead_attention_with_zero_keys_matches_torch(batch_first):
    """Before: NumPy's "zero-size array to reduction operation maximum". PyTorch returns the output of no keys
    (attention over nothing is 0, so the output is out_proj's bias) and empty weights (N, L, 0)."""
    torch.manual_seed(0)
    theirs = randomize(torch.nn.MultiheadAttention(4, 2, batch_first=batch_first).double(), seed=0)
    ours = load_from(nn.MultiheadAttention(4, 2, batch_first=batch_first, dtype=np.float64), theirs)
    shape_q, shape_k = ((1, 3, 4), (1, 0, 4)) if batch_first else ((3, 1, 4), (0, 1, 4))
    q = torch.randn(shape_q, dtype=torch.float64, requires_grad=True)
    k = torch.zeros(shape_k, dtype=torch.float64, requires_grad=True)
    out_t, w_t = theirs(q, k, k)
    out, w = ours(q.detach().numpy(), k.detach().numpy(), k.detach().numpy())
    assert w.shape == tuple(w_t.shape) == (1, 3, 0)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-15)
    assert np.abs(out).max() > 0  # the bias, so a zero output from a missing projection would fail
    g = np.random.default_rng(0).standard_normal(out.shape)
    out_t.backward(torch.from_numpy(g))
    dq, dk, dv = ours.backward(g)
    np.testing.assert_allclose(dq, q.grad.numpy(), atol=1e-15)
    assert dk.shape == dv.shape == shape_k
    compare_param_grads("zero keys", ours, theirs, np.float64)


@pytest.mark.parametrize("make,n_inputs", [(lambda: nn.LayerNorm(4), 1), (lambda: nn.MultiheadAttention(4, 2), 3)],
                         ids=["LayerNorm", "MultiheadAttention"])
def test_non_finite_input_to_normalization_and_attention(make, n_inputs):
    x = np.ones((2, 3, 4))
    x[1, 2, 3] = np.inf
    with pytest.raises(ValueError, match=r"expected finite values, got inf at index \(1, 2, 3\)"):
        make().forward(*([x] * n_inputs))
