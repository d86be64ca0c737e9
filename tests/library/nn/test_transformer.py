"""TransformerEncoderLayer, TransformerEncoder and the sinusoidal positional encoding against torch.

Random shapes and random non-zero weights; output, dLoss/dsrc and every parameter gradient,
float64 to 1e-8 relative, float32 to 1e-4; post-norm and pre-norm, relu and gelu, batch_first
both ways, masks (bool and float src_mask, causal, key padding), unbatched input, bias=False.
Comparisons run in eval mode (dropout off); train-mode dropout is checked on its own.
"""

import math

import numpy as np
import pytest
import torch
from test_attention import TORCH_DT, assert_close, compare_param_grads, load_from
from torch_twins import randomize

import dlcourse
from dlcourse import nn
from dlcourse.gradcheck import gradcheck, numerical_gradient, relative_error
from dlcourse.runtime import num_threads


@pytest.fixture(autouse=True)
def _one_thread():
    with num_threads(1):
        yield


def encoder_layer_case(seed, dtype, norm_first=False, activation="relu", batch_first=False, src_mask=None,
                       key_padding=False, batched=True, bias=True):
    rng = np.random.default_rng(seed)
    H = int(rng.integers(1, 4))
    E, FF = H * int(rng.integers(1, 4)), int(rng.integers(1, 9))
    N, L = int(rng.integers(1, 4)), int(rng.integers(1, 6))
    eps = float(rng.choice([1e-5, 1e-3]))
    kwargs = dict(dim_feedforward=FF, dropout=0.2, activation=activation, layer_norm_eps=eps,
                  batch_first=batch_first, norm_first=norm_first, bias=bias)
    theirs = randomize(torch.nn.TransformerEncoderLayer(E, H, dtype=TORCH_DT[dtype], **kwargs), seed).eval()
    ours = load_from(nn.TransformerEncoderLayer(E, H, **kwargs), theirs).eval()
    shape = ((N, L, E) if batch_first else (L, N, E)) if batched else (L, E)
    x = rng.standard_normal(shape).astype(dtype)
    fwd = {}
    if src_mask == "bool":
        m = rng.random((L, L)) < 0.4  # True = blocked
        m[:, 0] = False
        fwd["src_mask"] = m
    elif src_mask == "float":
        m = rng.standard_normal((L, L)).astype(dtype)  # added to the scores; -inf blocks
        m[rng.random((L, L)) < 0.3] = -np.inf
        m[:, 0] = 0.5
        fwd["src_mask"] = m
    elif src_mask == "causal":
        fwd["src_mask"] = nn.generate_square_subsequent_mask(L, dtype)
        fwd["is_causal"] = True
    if key_padding:
        kpm = rng.random((N, L) if batched else (L,)) < 0.4
        kpm[..., 0] = False
        fwd["src_key_padding_mask"] = kpm if src_mask != "float" and src_mask != "causal" else \
            np.where(kpm, -np.inf, 0).astype(dtype)
    xt = torch.tensor(x, requires_grad=True)
    y = theirs(xt, **{k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in fwd.items()})
    g = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(torch.tensor(g))
    what = "TransformerEncoderLayer"
    assert_close(what, "output", ours.forward(x, **fwd), y, dtype)
    assert_close(what, "grad src", ours.backward(g), xt.grad, dtype)
    compare_param_grads(what, ours, theirs, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("seed", range(2))
def test_encoder_layer_matches_torch(seed, norm_first, activation, batch_first, dtype):
    encoder_layer_case(seed, dtype, norm_first, activation, batch_first)


@pytest.mark.parametrize("src_mask, key_padding", [("bool", False), ("float", False), ("causal", False),
                                                   (None, True), ("bool", True), ("causal", True)])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_encoder_layer_masks_match_torch(src_mask, key_padding, norm_first, dtype):
    encoder_layer_case(3, dtype, norm_first, "gelu", batch_first=norm_first, src_mask=src_mask,
                       key_padding=key_padding)


@pytest.mark.parametrize("kw", [{"batched": False}, {"batched": False, "batch_first": True, "src_mask": "bool"},
                                {"bias": False}, {"bias": False, "norm_first": True}])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_encoder_layer_options_match_torch(kw, dtype):
    encoder_layer_case(4, dtype, **kw)


def test_encoder_layer_state_dict_keys_like_torch():
    for kw in ({}, {"bias": False, "norm_first": True}):
        ours = nn.TransformerEncoderLayer(8, 2, 16, **kw)
        theirs = torch.nn.TransformerEncoderLayer(8, 2, 16, **kw)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert all(ours.state_dict()[k].shape == tuple(v.shape) for k, v in theirs.state_dict().items())


def test_encoder_layer_gradcheck():
    rng = np.random.default_rng(0)
    for norm_first in (False, True):
        layer = nn.TransformerEncoderLayer(4, 2, 6, dropout=0.0, activation="gelu", norm_first=norm_first).double()
        for p in layer.parameters():
            p.data = rng.standard_normal(p.shape) * 0.5
        result = gradcheck(layer, rng.standard_normal((3, 2, 4)))
        assert result.ok, result


def test_encoder_layer_dropout_train_vs_eval():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 2, 8))
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.3).double()
    dlcourse.manual_seed(0)
    a, b = layer.forward(x), layer.forward(x)
    assert not np.allclose(a, b)
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x))

    layer.train()  # train-mode backward with a fixed mask (same seed before every forward)
    g = rng.standard_normal(x.shape)

    def f():
        dlcourse.manual_seed(3)
        return float(np.sum(layer.forward(x) * g))
    f()
    layer.zero_grad()
    dx = layer.backward(g)
    assert relative_error(dx, numerical_gradient(f, x)) < 1e-6


def test_encoder_layer_bad_input():
    with pytest.raises(ValueError, match="expected embed_dim divisible by num_heads, got embed_dim=6, num_heads=4"):
        nn.TransformerEncoderLayer(6, 4)
    with pytest.raises(ValueError, match="expected activation 'relu' or 'gelu'"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
    with pytest.raises(ValueError, match="expected activation 'relu' or 'gelu'"):
        nn.TransformerEncoderLayer(8, 2, activation=torch.tanh)
    assert isinstance(nn.TransformerEncoderLayer(8, 2, activation=torch.nn.functional.gelu).activation, nn.GELU)
    assert isinstance(nn.TransformerEncoderLayer(8, 2, activation=nn.functional.relu).activation, nn.ReLU)
    layer = nn.TransformerEncoderLayer(8, 2, 16)
    with pytest.raises(ValueError, match=r"expected src of shape \(L, N, d_model=8\) .* got \(3, 2, 7\)"):
        layer.forward(np.zeros((3, 2, 7)))
    with pytest.raises(ValueError, match=r"expected attn_mask of shape \(3, 3\) or \(4, 3, 3\), got \(2, 3\)"):
        layer.forward(np.zeros((3, 2, 8)), src_mask=np.zeros((2, 3), bool))
    with pytest.raises(ValueError, match=r"expected key_padding_mask of shape \(2, 3\)"):
        layer.forward(np.zeros((3, 2, 8)), src_key_padding_mask=np.zeros((3, 2), bool))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_encoder_stack_matches_torch(dtype):
    rng = np.random.default_rng(5)
    layer_t = torch.nn.TransformerEncoderLayer(8, 2, 12, dropout=0.1, batch_first=True, dtype=TORCH_DT[dtype])
    theirs = torch.nn.TransformerEncoder(layer_t, 3, norm=torch.nn.LayerNorm(8, dtype=TORCH_DT[dtype]),
                                         enable_nested_tensor=False)
    randomize(theirs, 5).eval()
    ours = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 12, dropout=0.1, batch_first=True), 3,
                                 norm=nn.LayerNorm(8))
    load_from(ours, theirs).eval()
    x = rng.standard_normal((2, 5, 8)).astype(dtype)
    mask = nn.generate_square_subsequent_mask(5, dtype)
    xt = torch.tensor(x, requires_grad=True)
    y = theirs(xt, mask=torch.tensor(mask), is_causal=True)
    g = rng.standard_normal(tuple(y.shape)).astype(dtype)
    y.backward(torch.tensor(g))
    assert_close("TransformerEncoder", "output", ours.forward(x, mask=mask, is_causal=True), y, dtype)
    assert_close("TransformerEncoder", "grad src", ours.backward(g), xt.grad, dtype)
    compare_param_grads("TransformerEncoder", ours, theirs, dtype)


def test_generate_square_subsequent_mask_like_torch():
    np.testing.assert_array_equal(nn.generate_square_subsequent_mask(5),
                                  torch.nn.Transformer.generate_square_subsequent_mask(5).numpy())


# ---------------------------------------------------------------------------------------
# Positional encoding (PyTorch's transformer tutorial is the reference)
# ---------------------------------------------------------------------------------------

def tutorial_pe(d_model, max_len):
    """The table of PyTorch's "Language modeling with nn.Transformer" tutorial, in torch."""
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(max_len, 1, d_model, dtype=torch.float64)
    pe[:, 0, 0::2] = torch.sin(position * div_term)
    pe[:, 0, 1::2] = torch.cos(position * div_term)
    return pe


@pytest.mark.parametrize("batch_first", [False, True])
def test_positional_encoding_matches_tutorial(batch_first):
    rng = np.random.default_rng(0)
    pe = nn.PositionalEncoding(6, dropout=0.1, max_len=50, batch_first=batch_first, dtype=np.float64).eval()
    assert list(pe.state_dict()) == ["pe"] and pe.pe.shape == (50, 1, 6)
    assert np.abs(pe.pe - tutorial_pe(6, 50).numpy()).max() < 1e-12
    x = rng.standard_normal((3, 7, 6) if batch_first else (7, 3, 6))
    expected = x + (tutorial_pe(6, 50).numpy()[:7, 0][None] if batch_first else tutorial_pe(6, 50).numpy()[:7])
    assert np.abs(pe.forward(x) - expected).max() < 1e-12
    g = rng.standard_normal(x.shape)
    np.testing.assert_array_equal(pe.backward(g), g)  # eval mode: the encoding is a constant
    unbatched = rng.standard_normal((4, 6))
    assert np.abs(pe.forward(unbatched) - (unbatched + tutorial_pe(6, 50).numpy()[:4, 0])).max() < 1e-12


def test_positional_encoding_properties_and_errors():
    table = nn.sinusoidal_positional_encoding(100, 5, dtype=np.float64)  # odd d_model
    assert table.shape == (100, 5)
    np.testing.assert_allclose(table[0], [0, 1, 0, 1, 0])
    assert len({tuple(row) for row in np.round(table, 8)}) == 100  # every position has its own code
    pe = nn.PositionalEncoding(4, dropout=0.5, max_len=10)
    x = np.ones((6, 2, 4), np.float32)
    dlcourse.manual_seed(0)
    out = pe.forward(x)
    assert out.dtype == np.float32 and (out == 0).any()  # dropout in train mode
    np.testing.assert_array_equal(pe.backward(np.ones_like(out)), (out != 0) * 2.0)
    with pytest.raises(ValueError, match=r"expected a sequence of at most max_len=10 positions, got 11"):
        pe.forward(np.zeros((11, 2, 4)))
    with pytest.raises(ValueError, match=r"expected input of shape \(L, N, d_model=4\) .* got \(6, 2, 3\)"):
        pe.forward(np.zeros((6, 2, 3)))


def test_transformer_encoder_names_the_library_of_a_wrong_layer():
    """Issue 20 (left from round one). Before: "expected a TransformerEncoderLayer, got TransformerEncoderLayer"."""
    with pytest.raises(TypeError, match=r"expected encoder_layer to be a dlcourse.nn.TransformerEncoderLayer, got "
                                        r"torch.nn.modules.transformer.TransformerEncoderLayer \(a PyTorch module"):
        nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(8, 2), 2)
    with pytest.raises(TypeError, match=r"expected norm to be a dlcourse.nn.LayerNorm \(or None\), got "
                                        r"torch.nn.modules.normalization.LayerNorm"):
        nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2), 2, norm=torch.nn.LayerNorm(8))
