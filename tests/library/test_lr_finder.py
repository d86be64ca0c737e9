"""dlcourse.lr_finder.lr_range_test: the learning-rate range test finds a range, restores the weights, and
re-iterates its loader (a fresh order each epoch)."""

import numpy as np
import pytest

from dlcourse import nn
from dlcourse.lr_finder import lr_range_test


def test_lr_range_test_finds_a_range_and_restores_the_weights():
    from dlcourse.course.ch03_optimizers.toy_training import make_mlp
    from dlcourse.data import BatchIterator, make_moons
    X, y = make_moons(512, noise=0.2, seed=0)
    model = make_mlp(2, (32,), 2)
    before = model.state_dict()
    result = lr_range_test(model, nn.CrossEntropyLoss(), BatchIterator(X, y, batch_size=32, seed=0),
                                 start_lr=1e-4, end_lr=100.0, num_steps=150)
    assert result["diverged_at"] is not None, "the loss should explode at lr = 100"
    assert np.all(np.diff(result["lrs"]) > 0)
    assert 1e-3 < result["steepest_lr"] <= result["min_lr"] < 30 and result["suggested_lr"] == result["min_lr"] / 10
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_lr_range_test_runs_through_fit_a_fresh_order_each_epoch():
    """The test re-iterates its loader (a new order each epoch), not a cached copy of the first pass."""
    from dlcourse.course.ch03_optimizers.toy_training import make_mlp
    from dlcourse.data import BatchIterator, make_moons

    class Counting:
        def __init__(self, loader):
            self.loader, self.passes = loader, 0

        def __iter__(self):
            self.passes += 1
            return iter(self.loader)

        def __len__(self):
            return len(self.loader)

    X, y = make_moons(200, noise=0.2, seed=0)
    loader = Counting(BatchIterator(X, y, batch_size=50, seed=0))  # 4 batches per pass
    result = lr_range_test(make_mlp(2, (8,), 2), nn.CrossEntropyLoss(), loader, start_lr=1e-4, end_lr=1e-3,
                           num_steps=10)
    assert loader.passes == 3 and len(result["lrs"]) == 10 and result["diverged_at"] is None
    np.testing.assert_allclose(result["lrs"], np.geomspace(1e-4, 1e-3, 10), rtol=1e-12)
    with pytest.raises(ValueError, match=r"expected 0 < start_lr < end_lr, got start_lr=1.0, end_lr=0.1"):
        lr_range_test(make_mlp(2, (8,), 2), nn.CrossEntropyLoss(), loader, start_lr=1.0, end_lr=0.1)
    with pytest.raises(ValueError, match="expected num_steps >= 2, got 1"):
        lr_range_test(make_mlp(2, (8,), 2), nn.CrossEntropyLoss(), loader, num_steps=1)
