"""Chapter 8: the attention explorer (driven through its controls) and its forward pass against PyTorch."""

import numpy as np
import pytest
import torch

from dlcourse.course.ch08_attention.attention_explorer import AttentionExplorer, attend, recall_forward
from dlcourse.course.ch08_attention.recall import make_associative_recall, torch_recall_transformer

NHEAD = 4


@pytest.fixture(scope="module")
def torch_model():
    torch.manual_seed(3)
    model = torch_recall_transformer(num_keys=16, num_values=5, d_model=16, nhead=NHEAD, num_layers=2,
                                     dim_feedforward=24, max_len=16).double()
    with torch.no_grad():  # non-zero biases everywhere, so a bias bug cannot hide
        for name, p in model.named_parameters():
            if "bias" in name:
                p.copy_(0.3 * torch.randn(p.shape, dtype=torch.float64))
    return model


def _state(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


def _explorer(model, num_pairs=6):
    x, _ = make_associative_recall(3, num_pairs, num_keys=16, num_values=5, seed=1)
    return AttentionExplorer(_state(model), {f"sequence {i}": x[i] for i in range(3)}, nhead=NHEAD, num_values=5)


def test_forward_matches_pytorch_probabilities_and_attention_weights(torch_model):
    x, _ = make_associative_recall(4, 7, num_keys=16, num_values=5, seed=0)
    probs, maps = recall_forward(_state(torch_model), x, NHEAD)
    xt = torch.tensor(x)
    with torch.no_grad():
        expected = torch.softmax(torch_model(xt), dim=-1).numpy()
        h = torch_model.key_embedding(xt[..., 0]) + torch_model.value_embedding(xt[..., 1]) + torch_model.pe[:8]
        for layer, ours in zip(torch_model.layers, maps):
            a = layer.norm1(h)
            weights = layer.self_attn(a, a, a, need_weights=True, average_attn_weights=False)[1].numpy()
            np.testing.assert_allclose(ours, weights, rtol=1e-9, atol=1e-12)
            h = layer(h)
    np.testing.assert_allclose(probs, expected, rtol=1e-9, atol=1e-12)


def test_attend_masks_and_scales_like_pytorch():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 5, 8)) for _ in range(3))
    for causal in (False, True):
        out, w = attend(q, k, v, causal=causal)
        expected = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), is_causal=causal)
        np.testing.assert_allclose(out, expected.numpy(), rtol=1e-10, atol=1e-12)
        assert np.allclose(w.sum(-1), 1) and (not causal or np.all(np.triu(w[0, 0], 1) == 0))
    out, _ = attend(q, k, v, scaled=False)
    expected = torch.nn.functional.scaled_dot_product_attention(*map(torch.tensor, (q, k, v)), scale=1.0)
    np.testing.assert_allclose(out, expected.numpy(), rtol=1e-10, atol=1e-12)


def test_head_and_layer_sliders_redraw_the_map_and_the_readout(torch_model):
    w = _explorer(torch_model)
    before, text, n = w.weights.copy(), w.readout.value, w.n_updates
    w.controls["head"].value = 2
    assert w.n_updates == n + 1 and "head 2" in w.readout.value and w.readout.value != text
    assert not np.allclose(w.weights, before)
    np.testing.assert_allclose(w.axes[0].get_images()[0].get_array(), w.weights)
    w.controls["layer"].value = 1
    assert "Layer 1" in w.readout.value and w.n_updates == n + 2


def test_causal_mask_and_scaling_switches(torch_model):
    w = _explorer(torch_model)
    full = w.weights.copy()
    w.controls["causal"].value = True
    assert np.all(np.triu(w.weights, 1) == 0) and np.allclose(w.weights.sum(-1), 1)
    assert np.abs(np.triu(full, 1)).sum() > 0.1  # without the mask, queries did look ahead
    w.controls["causal"].value = False
    np.testing.assert_allclose(w.weights, full)
    w.controls["scaled"].value = False  # scores sqrt(d) = 2 times larger: each row puts more weight on its maximum
    assert w.weights.max(-1).mean() > full.max(-1).mean()
    assert "no 1/√d" in w.axes[0].get_title()


def test_editing_a_token_changes_the_answer_and_the_output(torch_model):
    w = _explorer(torch_model)
    tokens = w.tokens
    matched = int(np.flatnonzero(tokens[:-1, 0] == tokens[-1, 0])[0])
    n = w.n_updates
    w.controls["position"].value = matched  # the sliders show that pair's tokens, with one redraw
    assert w.n_updates == n + 1
    assert (w.controls["key"].value, w.controls["value"].value) == tuple(tokens[matched])
    old_answer, old_probs = w.answer(), w.probs.copy()
    new_value = (old_answer + 1) % 5
    w.controls["value"].value = new_value
    assert w.answer() == new_value and w.tokens[matched, 1] == new_value
    assert f"the right answer is {new_value}" in w.readout.value
    assert not np.allclose(w.probs, old_probs)
    # choosing another sequence drops the edit
    w.controls["sequence"].value = "sequence 1"
    np.testing.assert_array_equal(w.tokens, w.sequences["sequence 1"])
    assert w.controls["key"].value == w.tokens[w.controls["position"].value, 0]


def test_recall_data_is_seeded_and_answers_are_the_stored_values():
    x, y = make_associative_recall(50, 8, num_keys=20, num_values=7, seed=4)
    assert x.shape == (50, 9, 2) and y.shape == (50,) and x.dtype == y.dtype == np.int64
    for row, answer in zip(x, y):
        keys = row[:-1, 0]
        assert len(set(keys)) == 8 and row[-1, 1] == 7
        assert row[np.flatnonzero(keys == row[-1, 0])[0], 1] == answer
    x2, y2 = make_associative_recall(50, 8, num_keys=20, num_values=7, seed=4)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    with pytest.raises(ValueError, match="num_pairs <= num_keys=20"):
        make_associative_recall(5, 21, num_keys=20)


def test_unknown_token_ids_and_too_long_sequences_are_refused_by_name(torch_model):
    """Issue 20. Before: an unknown id was an IndexError (or, negative, silently the table's last row) and a sequence
    longer than the positional table a raw broadcast error."""
    state = _state(torch_model)
    x, _ = make_associative_recall(2, 6, num_keys=16, num_values=5, seed=1)
    bad_key = x.copy()
    bad_key[1, 2, 0] = 16
    with pytest.raises(ValueError, match=r"unknown key token id 16 at \(1, 2\): the model knows ids 0..15"):
        recall_forward(state, bad_key, NHEAD)
    negative = x.copy()
    negative[0, 0, 1] = -1
    with pytest.raises(ValueError, match=r"unknown value token id -1 at \(0, 0\)"):
        recall_forward(state, negative, NHEAD)
    too_long = np.concatenate([x[:1]] * 3, axis=1)  # 3 x 7 = 21 pairs, the table has 16 positions
    with pytest.raises(ValueError, match="a sequence of 21 pairs is longer than the model's positional table "
                                         r"\(16 positions\)"):
        recall_forward(state, too_long, NHEAD)
    with pytest.raises(ValueError, match="AttentionExplorer: sequence 'long': a sequence of 21 pairs is longer"):
        AttentionExplorer(state, {"long": too_long[0]}, nhead=NHEAD, num_values=5)
    with pytest.raises(ValueError, match="AttentionExplorer: sequence 'odd': unknown key token id 16"):
        AttentionExplorer(state, {"odd": bad_key[1]}, nhead=NHEAD, num_values=5)
