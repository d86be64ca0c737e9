"""Layers initialise through ``nn.init`` in ``reset_parameters()``, as torch's do, with torch's distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlcourse
from dlcourse import nn
from dlcourse.nn import init

LAYERS = {
    "Linear": (lambda: nn.Linear(5, 3), 1 / math.sqrt(5)),
    "Conv2d groups": (lambda: nn.Conv2d(4, 6, (2, 3), groups=2), 1 / math.sqrt(2 * 2 * 3)),
    "RNN 2 layers bidirectional": (lambda: nn.RNN(3, 5, num_layers=2, bidirectional=True), 1 / math.sqrt(5)),
    "LSTM": (lambda: nn.LSTM(3, 4), 1 / math.sqrt(4)),
    "GRU no bias": (lambda: nn.GRU(2, 3, bias=False), 1 / math.sqrt(3)),
    "RNNCell": (lambda: nn.RNNCell(3, 4), 1 / math.sqrt(4)),
    "LSTMCell": (lambda: nn.LSTMCell(2, 3), 1 / math.sqrt(3)),
    "GRUCell": (lambda: nn.GRUCell(2, 3), 1 / math.sqrt(3)),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_reset_parameters_redraws_what_the_constructor_drew(name):
    build, bound = LAYERS[name]
    dlcourse.manual_seed(3)
    layer = build()
    first = {k: v.copy() for k, v in layer.state_dict().items()}
    for p in layer.parameters():
        p.data[...] = 0.0
    dlcourse.manual_seed(3)
    layer.reset_parameters()
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, first[k], err_msg=k)
        assert v.dtype == np.float32 and 0 < np.abs(v).max() <= bound, k  # U(-bound, bound), torch's bound


def test_batchnorm_reset_parameters_restores_weights_and_running_statistics():
    bn = nn.BatchNorm1d(3)
    bn.forward(np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32) * 5 + 2)
    bn.weight.data[...] = 7.0
    bn.bias.data[...] = -1.0
    assert bn.num_batches_tracked == 1 and not np.allclose(bn.running_mean, 0)
    bn.reset_parameters()
    np.testing.assert_array_equal(bn.weight.data, 1.0)
    np.testing.assert_array_equal(bn.bias.data, 0.0)
    np.testing.assert_array_equal(bn.running_mean, 0.0)
    np.testing.assert_array_equal(bn.running_var, 1.0)
    assert bn.num_batches_tracked == 0


def test_init_functions_fill_in_place_and_check_shapes():
    p = nn.Parameter(np.zeros((4, 6)))
    data = p.data
    assert init.ones_(p) is p and p.data is data and np.all(p.data == 1)
    assert init.zeros_(p) is p and np.all(p.data == 0)
    init.xavier_uniform_(p)
    assert np.abs(p.data).max() <= math.sqrt(6 / 10)
    with pytest.raises(ValueError, match=r"init: expected a weight with at least 2 dimensions, got shape \(3,\)"):
        init.xavier_uniform_(nn.Parameter(np.zeros(3)))
