"""Embedding against torch.nn.Embedding: output and weight gradient (padding_idx, scale_grad_by_freq) on random
sizes with random weights, float64 to 1e-8 relative, float32 to 1e-4; from_pretrained; bad ids and arguments."""

import numpy as np
import pytest
import torch
from torch_twins import randomize

from dlcourse import nn
from dlcourse.compare import max_rel_diff

TOL = {np.float64: 1e-8, np.float32: 1e-4}
TORCH_DT = {np.float64: torch.float64, np.float32: torch.float32}


def assert_close(what, name, ours, theirs, dtype):
    theirs = theirs.detach().numpy()
    assert np.shape(ours) == theirs.shape, f"{what} {name}: shape {np.shape(ours)} vs {theirs.shape}"
    assert np.asarray(ours).dtype == dtype, f"{what} {name}: dtype {np.asarray(ours).dtype}, expected {dtype}"
    err = max_rel_diff(ours, theirs)
    assert err < TOL[dtype], f"{what} {name}: relative difference {err:.2e} >= {TOL[dtype]:.0e}"


def load_from(ours, theirs):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    return ours


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("seed", range(4))
def test_embedding_matches_torch(seed, dtype):
    rng = np.random.default_rng(seed)
    V, D = int(rng.integers(2, 12)), int(rng.integers(1, 7))
    padding_idx = [None, 0, -1, int(rng.integers(0, V))][seed]
    scale_grad_by_freq = seed % 2 == 1
    theirs = torch.nn.Embedding(V, D, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq,
                                dtype=TORCH_DT[dtype])
    randomize(theirs, seed)
    ours = load_from(nn.Embedding(V, D, padding_idx=padding_idx, scale_grad_by_freq=scale_grad_by_freq), theirs)
    ids = rng.integers(0, V, size=tuple(rng.integers(1, 5, size=int(rng.integers(1, 4)))))
    if padding_idx is not None:
        ids.flat[0] = padding_idx % V  # the padding row is used and must get no gradient
    g = rng.standard_normal(ids.shape + (D,)).astype(dtype)
    y = theirs(torch.tensor(ids))
    y.backward(torch.tensor(g))
    out = ours.forward(ids)
    assert_close("Embedding", "output", out, y, dtype)
    assert ours.backward(g) is None  # integer input: no input gradient
    assert_close("Embedding", "grad weight", ours.weight.grad, theirs.weight.grad, dtype)
    if padding_idx is not None:
        assert not ours.weight.grad[padding_idx % V].any()


def test_embedding_padding_row_starts_at_zero_and_grads_accumulate():
    emb = nn.Embedding(5, 3, padding_idx=2)
    assert not emb.weight.data[2].any() and emb.weight.data[[0, 1, 3, 4]].all()
    ids = np.array([[1, 1, 2]])
    g = np.ones((1, 3, 3), np.float32)
    emb.forward(ids)
    emb.backward(g)
    emb.forward(ids)
    emb.backward(g)
    np.testing.assert_array_equal(emb.weight.grad[1], 4.0)  # twice per pass, two passes
    np.testing.assert_array_equal(emb.weight.grad[2], 0.0)


def test_embedding_from_pretrained_freezes():
    table = np.arange(12, dtype=np.float64).reshape(4, 3)
    emb = nn.Embedding.from_pretrained(table)
    np.testing.assert_array_equal(emb.forward(np.array([3, 0])), table[[3, 0]])
    emb.backward(np.ones((2, 3)))
    assert emb.weight.grad is None
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad


@pytest.mark.parametrize("ids, match", [
    (np.array([0, 5]), r"expected ids in \[0, 5\) \(num_embeddings=5\), got 5"),
    (np.array([[-1, 2]]), r"expected ids in \[0, 5\) \(num_embeddings=5\), got -1"),
    (np.array([0.0, 1.0]), r"expected integer token ids .* got dtype float64"),
    (np.array([True, False]), r"expected integer token ids .* got dtype bool"),
])
def test_embedding_bad_input(ids, match):
    with pytest.raises(ValueError, match=match):
        nn.Embedding(5, 2).forward(ids)


def test_embedding_bad_arguments():
    with pytest.raises(ValueError, match=r"expected padding_idx in \[-4, 4\), got 4"):
        nn.Embedding(4, 2, padding_idx=4)
    with pytest.raises(ValueError, match="max_norm is not supported"):
        nn.Embedding(4, 2, max_norm=1.0)
    with pytest.raises(ValueError, match=r"expected grad_out of shape \(2, 2\).*got (shape )?\(2, 3\)"):
        emb = nn.Embedding(4, 2)
        emb.forward(np.array([0, 1]))
        emb.backward(np.zeros((2, 3)))
