"""dlcourse._checks: a layer's input that is not finite or not real is refused with a ValueError naming the layer
and where (issue 12); a NaN input counts as divergence for the training loops."""

import numpy as np
import pytest

from dlcourse import nn


@pytest.mark.parametrize("layer,shape,index", [
    (nn.Linear(3, 2), (2, 3), (1, 2)), (nn.Conv2d(1, 1, 2), (1, 1, 3, 3), (0, 0, 1, 2)),
    (nn.BatchNorm1d(3), (2, 3), (1, 2)), (nn.MaxPool2d(2), (1, 1, 2, 2), (0, 0, 1, 1)),
], ids=["Linear", "Conv2d", "BatchNorm1d", "MaxPool2d"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_names_layer_and_index(layer, shape, index, bad):
    x = np.ones(shape)
    x[index] = bad
    name = type(layer).__name__
    with pytest.raises(ValueError, match=rf"{name} input: expected finite values, got {bad} at index "
                                         + str(index).replace("(", r"\(").replace(")", r"\)")):
        layer.forward(x)
    assert issubclass(nn.NonFiniteInputError, nn.NonFiniteLossError)  # training loops report divergence


@pytest.mark.parametrize("layer", [nn.Linear(2, 1), nn.ReLU(), nn.MSELoss()], ids=["Linear", "ReLU", "MSELoss"])
def test_complex_input_is_refused(layer):
    z = np.array([[1 + 2j, 3 - 1j]])
    with pytest.raises(ValueError, match="complex"):
        layer.forward(z) if not isinstance(layer, nn.MSELoss) else layer.forward(z, z)
