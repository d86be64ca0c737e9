"""Chapter 8's exercise references are right: checked against PyTorch (autograd included), not against themselves."""

import numpy as np
import torch

from dlcourse.course.exercises import reference


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
