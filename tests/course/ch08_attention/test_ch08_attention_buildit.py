"""Chapter 8's capstone on the learner's code: the transformer block built from the six build-it functions
(dlcourse/course/ch08_attention/your_transformer.py) against torch.nn, and the checks of its pieces against the
mistakes they exist to catch; the six references against PyTorch (autograd included), not against themselves."""


import nbformat
import numpy as np
import pytest
import repo_paths
import torch

import dlcourse
from dlcourse import compare
from dlcourse.course.ch08_attention.recall import (
    RecallTransformer,
    make_associative_recall,
    torch_twin,
    train_recall,
)
from dlcourse.course.ch08_attention.your_transformer import (
    Pieces,
    YourLayerNorm,
    YourMultiheadAttention,
    YourRecallTransformer,
    YourTransformerBlock,
)
from dlcourse.course.checker import REGISTRY, check, reference

NOTEBOOK = repo_paths.ROOT / "notebooks" / "08_attention.ipynb"


# -- a learner's own six functions (written from the chapter's formulas, not the references) ----------------------
def my_attention_forward(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = e / e.sum(axis=-1, keepdims=True)
    return weights @ V, weights


def my_attention_backward(grad_out, Q, K, V, weights):
    grad_weights = grad_out @ np.swapaxes(V, -1, -2)
    grad_scores = weights * (grad_weights - (grad_weights * weights).sum(axis=-1, keepdims=True))
    scale = 1 / np.sqrt(Q.shape[-1])
    grad_v = np.swapaxes(weights, -1, -2) @ grad_out
    return grad_scores @ K * scale, np.swapaxes(grad_scores, -1, -2) @ Q * scale, grad_v


def my_split_heads(x, num_heads):
    N, L, E = x.shape
    return np.stack(np.split(x, num_heads, axis=-1), axis=1)


def my_merge_heads(x):
    return np.concatenate(list(np.moveaxis(x, 1, 0)), axis=-1)


def my_layer_norm(x, weight, bias, eps):
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps) * weight + bias


def my_layer_norm_backward(grad_out, x, weight, eps):
    centred = x - x.mean(axis=-1, keepdims=True)
    s = np.sqrt((centred ** 2).mean(axis=-1, keepdims=True) + eps)
    x_hat, g = centred / s, grad_out * weight
    dx = (g - g.mean(axis=-1, keepdims=True) - x_hat * (g * x_hat).mean(axis=-1, keepdims=True)) / s
    lead = tuple(range(x.ndim - 1))
    return dx, (grad_out * x_hat).sum(axis=lead), grad_out.sum(axis=lead)


MINE = Pieces(my_attention_forward, my_attention_backward, my_split_heads, my_merge_heads, my_layer_norm,
              my_layer_norm_backward)


def _random_twin(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return module


def test_the_learners_functions_pass_their_checks(capsys):
    for name, fn in zip(["attention_forward", "attention_backward", "split_heads", "merge_heads", "layer_norm",
                         "layer_norm_backward"], vars(MINE).values()):
        assert check(f"ch8.{name}", fn), capsys.readouterr().out
    assert all(MINE.whose().values()) and not any(Pieces.references().whose().values())


@pytest.mark.parametrize("pieces", [MINE, Pieces.references()], ids=["learner", "reference"])
@pytest.mark.parametrize("norm_first", [True, False])
def test_block_matches_torch_encoder_layer_float64(pieces, norm_first):
    twin = _random_twin(torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True,
                                                         norm_first=norm_first), seed=3)
    x = np.random.default_rng(1).standard_normal((3, 6, 16))
    report = compare(YourTransformerBlock(16, 4, 32, pieces, norm_first=norm_first), twin, x)
    assert report.ok(), report
    assert max(row[2] for row in report.rows) < 1e-12, report


def test_block_with_a_causal_mask_and_in_float32():
    twin = _random_twin(torch.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=True),
                        seed=5).double()
    block = YourTransformerBlock(8, 2, 16, MINE)
    block.load_state_dict({k: v.numpy() for k, v in twin.state_dict().items()})
    x = np.random.default_rng(2).standard_normal((2, 5, 8))
    blocked = np.triu(np.ones((5, 5), dtype=bool), k=1)
    g = np.random.default_rng(3).standard_normal((2, 5, 8))
    xt = torch.tensor(x, requires_grad=True)
    out_t = twin(xt, src_mask=torch.tensor(blocked))
    out_t.backward(torch.tensor(g))
    out = block.forward(x, blocked)
    assert np.max(np.abs(out - out_t.detach().numpy())) < 1e-12
    assert np.max(np.abs(block.backward(g) - xt.grad.numpy())) < 1e-12
    # float32 stays float32 although the learner's / np.sqrt(d) promotes to float64 inside
    block32 = YourTransformerBlock(8, 2, 16, MINE)
    block32.load_state_dict({k: v.float().numpy() for k, v in twin.state_dict().items()})
    out32 = block32.forward(x.astype(np.float32), blocked)
    assert out32.dtype == np.float32 and np.max(np.abs(out32 - out_t.detach().numpy())) < 1e-4
    grad32 = block32.backward(g.astype(np.float32))
    assert grad32.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in block32.parameters())
    with pytest.raises(TypeError, match="boolean attn_mask"):
        block.forward(x, blocked.astype(float))


def test_block_gradcheck_float64():
    dlcourse.manual_seed(4)
    block = YourTransformerBlock(8, 2, 12, MINE).double()
    result = dlcourse.gradcheck(block, np.random.default_rng(6).standard_normal((2, 4, 8)))
    assert result, result


def test_cross_attention_matches_torch_per_head_weights():
    E, h = 12, 3
    mha_t = _random_twin(torch.nn.MultiheadAttention(E, h, batch_first=True).double(), seed=1)
    ours = YourMultiheadAttention(E, h, MINE)
    ours.load_state_dict({k: v.numpy() for k, v in mha_t.state_dict().items()})
    rng = np.random.default_rng(8)
    q, k, v = rng.standard_normal((2, 4, E)), rng.standard_normal((2, 7, E)), rng.standard_normal((2, 7, E))
    tensors = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    out_t, w_t = mha_t(*tensors, average_attn_weights=False)
    out, w = ours.forward(q, k, v, average_attn_weights=False)
    g = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(g))
    grads = ours.backward(g)
    assert np.max(np.abs(out - out_t.detach().numpy())) < 1e-12 and np.max(np.abs(w - w_t.detach().numpy())) < 1e-12
    for ours_g, t in zip(grads, tensors):
        assert np.max(np.abs(ours_g - t.grad.numpy())) < 1e-12
    params = dict(ours.named_parameters())
    for name, p in mha_t.named_parameters():
        assert np.max(np.abs(params[name].grad - p.grad.numpy())) < 1e-12, name
    assert ours.forward(q, k, v, need_weights=False)[1] is None
    assert ours.forward(q, k, v)[1].shape == (2, 4, 7)  # averaged over the heads, as torch


def test_layer_norm_module_matches_torch():
    ln_t = _random_twin(torch.nn.LayerNorm(10).double(), seed=2)
    report = compare(YourLayerNorm(10, MINE), ln_t, np.random.default_rng(9).standard_normal((3, 4, 10)) * 3 + 1)
    assert report.ok(), report
    with pytest.raises(ValueError, match=r"\(\.\.\., 10\)"):
        YourLayerNorm(10, MINE).forward(np.zeros((2, 9)))


def test_a_wrong_piece_shows_in_the_block():
    """The block really runs on its pieces: the typical wrong attention backward breaks the block's gradients."""
    wrong = Pieces(**{**vars(MINE), "attention_backward": REGISTRY["ch8.attention_backward"].wrong})
    twin = _random_twin(torch.nn.TransformerEncoderLayer(16, 4, 32, dropout=0.0, batch_first=True, norm_first=True),
                        seed=3)
    report = compare(YourTransformerBlock(16, 4, 32, wrong), twin, np.random.default_rng(1).standard_normal((3, 6, 16)))
    assert not report.ok()


def test_recall_transformer_on_the_learners_pieces_trains_as_its_torch_twin():
    dlcourse.manual_seed(0)
    library = RecallTransformer(d_model=16, nhead=2, num_layers=1, dim_feedforward=32)
    dlcourse.manual_seed(0)
    mine = YourRecallTransformer(MINE, d_model=16, nhead=2, num_layers=1, dim_feedforward=32)
    assert list(mine.state_dict()) == list(library.state_dict())
    assert all(np.array_equal(a, b) for a, b in zip(mine.state_dict().values(), library.state_dict().values()))
    twin = torch_twin(mine)
    x, y = make_associative_recall(256, 3, seed=1)
    losses, _ = train_recall(mine, x, y, 16, lr=3e-3, progress=False)
    losses_t, _ = train_recall(twin, x, y, 16, lr=3e-3, progress=False)
    assert np.max(np.abs(losses[:6] - losses_t[:6])) < 1e-4
    assert losses[-4:].mean() < losses[:4].mean() - 0.1  # it learns


def test_pieces_refuse_what_is_not_a_function():
    with pytest.raises(TypeError, match="layer_norm"):
        Pieces(*list(vars(MINE).values())[:4], "not a function", my_layer_norm_backward)


# -- the checks reject the mistakes they exist to catch --------------------------------------------------------------
def _softmax_attention(shift):
    def attention(Q, K, V, mask=None):
        scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(Q.shape[-1])
        if mask is not None:
            scores = np.where(mask, scores, -np.inf)
        with np.errstate(all="ignore"):
            e = np.exp(shift(scores))
            weights = e / e.sum(axis=-1, keepdims=True)
        return weights @ V, weights
    return attention


@pytest.mark.parametrize("shift", [
    lambda s: s,  # no shift
    lambda s: s - s.max(),  # one global maximum
    lambda s: s - np.where(np.isfinite(s), s, 0).mean(axis=-1, keepdims=True),  # the row mean
    lambda s: s - np.where(np.isfinite(s), s, np.inf).min(axis=-1, keepdims=True),  # the row minimum
], ids=["no shift", "global max", "row mean", "row min"])
def test_attention_forward_check_needs_each_rows_own_maximum(shift, capsys):
    assert not check("ch8.attention_forward", _softmax_attention(shift))
    assert "NaN or inf" in capsys.readouterr().out
    assert check("ch8.attention_forward", _softmax_attention(lambda s: s - s.max(axis=-1, keepdims=True)))


@pytest.mark.parametrize("wrong", [
    lambda x, w, b, eps: (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + eps) * w + b,
    lambda x, w, b, eps: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True, ddof=1) + eps) * w + b,
    lambda x, w, b, eps: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True)) * w + b,
    lambda x, w, b, eps: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + eps) * w,
], ids=["eps outside the root", "unbiased variance", "no eps", "no bias"])
def test_layer_norm_check_rejects_typical_mistakes(wrong, capsys):
    assert not check("ch8.layer_norm", wrong)


# -- the notebook: the capstone runs on what use() returned, the learner's gradcheck comes first ----------------------
def _code():
    return [c for c in nbformat.read(NOTEBOOK, as_version=4).cells if c.cell_type == "code"]


def test_notebook_trains_the_learners_block():
    cells = _code()
    sources = "\n".join(c.source for c in cells)
    assert "Pieces(attention_forward, attention_backward, split_heads, merge_heads, layer_norm, layer_norm_backward)" \
        in sources
    for name in ("attention_forward", "attention_backward", "split_heads", "merge_heads", "layer_norm",
                 "layer_norm_backward"):
        assert f'{name} = use("ch8.{name}", {name})' in sources, name
    assert "model_np = YourRecallTransformer(pieces)" in sources
    assert "transformer = YourRecallTransformer(pieces)" in sources
    assert "RecallTransformer()" not in sources  # no library transformer stands in for the learner's


def test_learners_gradcheck_comes_before_the_torch_comparison():
    sources = [c.source for c in _code()]
    grad = next(i for i, s in enumerate(sources) if "dlcourse.gradcheck(" in s)
    torch_cmp = next(i for i, s in enumerate(sources) if "grads_yours = attention_backward(" in s)
    used = next(i for i, s in enumerate(sources) if 'attention_backward = use("ch8.attention_backward"' in s)
    assert used < grad < torch_cmp


def test_end_of_chapter_exercises_are_tagged():
    for cell in _code():
        if cell.source.startswith("def my_"):
            assert "exercise" in cell.metadata.get("tags", []), cell.source[:40]


def _attention(Q, K, V, mask=None, *, mask_after=False, axis=-1, scale=None):
    scores = Q @ np.swapaxes(K, -1, -2) / (np.sqrt(Q.shape[-1]) if scale is None else scale(Q, K))
    if mask is not None and not mask_after:
        scores = np.where(mask, scores, -np.inf)
    e = np.exp(scores - scores.max(axis=axis, keepdims=True))
    weights = e / e.sum(axis=axis, keepdims=True)
    if mask is not None and mask_after:
        weights = weights * mask
    return weights @ V, weights


def _ref(name):
    return REGISTRY[name].reference


def _times(name, index, factor):
    """The reference of ``name`` with its return value ``index`` multiplied by ``factor(*args)``."""
    def wrong(*args):
        return tuple(r * factor(*args) if i == index else r for i, r in enumerate(_ref(name)(*args)))
    return wrong


def _ln_backward_without_weight_in_dx(g, x, w, eps):
    right = _ref("ch8.layer_norm_backward")(g, x, w, eps)
    return (_ref("ch8.layer_norm_backward")(g, x, np.ones_like(w), eps)[0], *right[1:])


# Hand-written mistakes a learner makes (the automatic mutants of tests/mutation.py are small edits of the
# references; these are whole wrong ideas). Each must be rejected.
SEMANTIC_MISTAKES = {
    "attention_forward: mask after the softmax":
        ("ch8.attention_forward", lambda Q, K, V, mask=None: _attention(Q, K, V, mask, mask_after=True)),
    "attention_forward: softmax over the queries":
        ("ch8.attention_forward", lambda Q, K, V, mask=None: _attention(Q, K, V, mask, axis=-2)),
    "attention_forward: divide by d":
        ("ch8.attention_forward", lambda Q, K, V, mask=None: _attention(Q, K, V, mask, scale=lambda Q, K: Q.shape[-1])),
    "attention_forward: divide by sqrt(Lk)":
        ("ch8.attention_forward",
         lambda Q, K, V, mask=None: _attention(Q, K, V, mask, scale=lambda Q, K: np.sqrt(K.shape[-2]))),
    "attention_forward: True = blocked":
        ("ch8.attention_forward", lambda Q, K, V, mask=None: _attention(Q, K, V, None if mask is None else ~mask)),
    "attention_backward: dK without 1/sqrt(d)":
        ("ch8.attention_backward", _times("ch8.attention_backward", 1, lambda g, Q, K, V, w: np.sqrt(Q.shape[-1]))),
    "split_heads: interleaved heads":
        ("ch8.split_heads",
         lambda x, h: x.reshape(x.shape[0], x.shape[1], x.shape[2] // h, h).transpose(0, 3, 1, 2)),
    "merge_heads: interleaved back":
        ("ch8.merge_heads", lambda x: x.transpose(0, 2, 3, 1).reshape(x.shape[0], x.shape[2], -1)),
    "layer_norm_backward: mean instead of sum for dweight":
        ("ch8.layer_norm_backward",
         _times("ch8.layer_norm_backward", 1, lambda g, x, w, eps: 1 / np.prod(x.shape[:-1]))),
    "layer_norm_backward: weight left out of dx": ("ch8.layer_norm_backward", _ln_backward_without_weight_in_dx),
    "causal_mask: float 0/1": ("ch8.causal_mask", lambda L: np.tril(np.ones((L, L)))),
    "causal_mask: int 0/1": ("ch8.causal_mask", lambda L: np.tril(np.ones((L, L), dtype=int))),
    "causal_mask: without the diagonal": ("ch8.causal_mask", lambda L: np.tril(np.ones((L, L), dtype=bool), -1)),
    "sinusoidal_encoding: sin and cos swapped":
        ("ch8.sinusoidal_encoding", lambda L, d: _ref("ch8.sinusoidal_encoding")(L, d)[:, np.arange(d) ^ 1]),
    "sinusoidal_encoding: positions from 1":
        ("ch8.sinusoidal_encoding", lambda L, d: _ref("ch8.sinusoidal_encoding")(L + 1, d)[1:]),
    "mha_num_parameters: no biases": ("ch8.mha_num_parameters", lambda E, h: 4 * E * E),
    "mha_num_parameters: no out_proj bias": ("ch8.mha_num_parameters", lambda E, h: 4 * E * E + 3 * E),
}


@pytest.mark.parametrize("mistake", sorted(SEMANTIC_MISTAKES))
def test_checks_reject_hand_written_mistakes(mistake, capsys):
    name, fn = SEMANTIC_MISTAKES[mistake]
    with np.errstate(all="ignore"):
        assert not check(name, fn), mistake
    out = capsys.readouterr().out
    assert out.startswith("✗"), out
    if mistake.startswith("causal_mask: float") or mistake.startswith("causal_mask: int"):
        assert "bool" in out, out


# -- the references against PyTorch (autograd included), not against themselves ----------------------------


def test_attention_forward_and_backward_match_torch_autograd():
    rng = np.random.default_rng(1)
    Q, K, V = rng.standard_normal((2, 3, 4, 8)), rng.standard_normal((2, 3, 6, 8)), rng.standard_normal((2, 3, 6, 5))
    G = rng.standard_normal((2, 3, 4, 5))
    for mask in (None, np.tri(4, 6, dtype=bool)):
        out, weights = reference("ch8.attention_forward")(Q, K, V, mask)
        qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (Q, K, V))
        expected = torch.nn.functional.scaled_dot_product_attention(
            qt, kt, vt, attn_mask=None if mask is None else torch.tensor(mask))
        expected.backward(torch.tensor(G))
        np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-10, atol=1e-12)
        grads = reference("ch8.attention_backward")(G, Q, K, V, weights)
        for ours, theirs in zip(grads, (qt.grad, kt.grad, vt.grad)):
            np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_split_and_merge_heads_are_inverse_and_match_multihead_layout():
    x = np.random.default_rng(2).standard_normal((2, 5, 12))
    split, merge = reference("ch8.split_heads"), reference("ch8.merge_heads")
    np.testing.assert_array_equal(merge(split(x, 3)), x)
    np.testing.assert_array_equal(split(x, 3)[:, 1], x[:, :, 4:8])  # head 1 gets features 4..7


def test_layer_norm_backward_matches_torch():
    rng = np.random.default_rng(3)
    x, w, b, g = rng.standard_normal((3, 4, 7)), rng.standard_normal(7), rng.standard_normal(7), rng.standard_normal(
        (3, 4, 7))
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    torch.nn.functional.layer_norm(xt, (7,), wt, bt, eps=1e-5).backward(torch.tensor(g))
    for ours, theirs in zip(reference("ch8.layer_norm_backward")(g, x, w, 1e-5), (xt.grad, wt.grad, bt.grad)):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-9, atol=1e-12)


def test_end_of_chapter_references():
    pe = reference("ch8.sinusoidal_encoding")(50, 16)
    pos, i = 37, 3
    assert np.isclose(pe[pos, 2 * i], np.sin(pos / 10000 ** (2 * i / 16)))
    assert np.isclose(pe[pos, 2 * i + 1], np.cos(pos / 10000 ** (2 * i / 16)))
    mask = reference("ch8.causal_mask")(5)
    expected = torch.ones(5, 5, dtype=torch.bool).tril().numpy()
    np.testing.assert_array_equal(mask, expected)
    for E, h in [(64, 4), (12, 3)]:
        n = sum(p.numel() for p in torch.nn.MultiheadAttention(E, h).parameters())
        assert reference("ch8.mha_num_parameters")(E, h) == n
