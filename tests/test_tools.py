"""The checking tools themselves must be able to fail: gradcheck catches a wrong backward pass,
compare catches a wrong forward, cmp reports a difference."""

import numpy as np
import torch

from dlcourse import cmp, compare, gradcheck, nn
from dlcourse.data import BatchIterator, train_val_split


class BuggySigmoid(nn.Sigmoid):
    def backward(self, grad_out):  # forgets the upstream gradient's partner factor (1 - s)
        return grad_out * self._cache


def test_gradcheck_catches_a_wrong_backward(rng):
    result = gradcheck(BuggySigmoid(), rng.standard_normal((3, 4)))
    assert not result and result.max_error > 1e-2


def test_gradcheck_on_plain_functions(rng):
    from dlcourse.nn import functional as F
    assert gradcheck(F.tanh, rng.standard_normal(5), backward=lambda x, g: F.tanh_backward(g, F.tanh(x)))
    assert not gradcheck(F.tanh, rng.standard_normal(5), backward=lambda x, g: g * F.tanh(x))


def test_compare_catches_a_wrong_forward(rng):
    report = compare(nn.Tanh(), torch.nn.Sigmoid(), rng.standard_normal((3, 3)))
    assert not report.ok() and report.max_diff > 0.1
    assert "output" in str(report) and "<table>" in report._repr_html_()


def test_cmp_prints_one_line(capsys):
    diff = cmp("weights", np.ones(3), torch.ones(3) + 1e-3)
    assert abs(diff - 1e-3) < 1e-6 and "max diff" in capsys.readouterr().out


def test_batch_iterator_covers_every_sample_once():
    X, y = np.arange(10)[:, None], np.arange(10)
    batches = list(BatchIterator(X, y, batch_size=4, seed=1))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate([b[1] for b in batches])) == list(range(10))
    assert len(BatchIterator(X, y, batch_size=4, drop_last=True)) == 2


def test_train_val_split_is_disjoint_and_stratified():
    X, y = np.arange(100)[:, None], np.repeat([0, 1], 50)
    Xtr, Xva, ytr, yva = train_val_split(X, y, val_fraction=0.2, stratify=y)
    assert len(Xva) == 20 and set(Xtr[:, 0]).isdisjoint(Xva[:, 0]) and (yva == 0).sum() == 10
