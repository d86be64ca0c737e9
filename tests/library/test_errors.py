"""Bad input raises ValueError naming what was expected and what came; NaN losses are reported."""

import numpy as np
import pytest

from dlcourse import gradcheck, nn


def test_linear_wrong_width_names_both_sizes():
    with pytest.raises(ValueError, match=r"in_features=3, got shape \(2, 5\)"):
        nn.Linear(3, 4).forward(np.zeros((2, 5)))


def test_linear_empty_batch():
    with pytest.raises(ValueError, match="non-empty batch"):
        nn.Linear(3, 4).forward(np.zeros((0, 3)))


def test_cross_entropy_label_out_of_range_names_label_and_classes():
    with pytest.raises(ValueError, match=r"label 3 is out of range for 3 classes"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"label -1 is out of range"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([-1, 0]))


def test_cross_entropy_float_labels_and_wrong_shape():
    with pytest.raises(ValueError, match="integer class labels, got dtype float64"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"labels of shape \(2,\) for logits of shape \(2, 3\), got shape \(3,\)"):
        nn.CrossEntropyLoss().forward(np.zeros((2, 3)), np.array([0, 1, 2]))


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"target of shape \(4, 1\).*got \(4,\)"):
        nn.MSELoss().forward(np.zeros((4, 1)), np.zeros(4))


def test_nan_prediction_is_reported_as_divergence():
    pred = np.array([[1.0, np.nan]])
    with pytest.raises(nn.NonFiniteLossError, match="diverged"):
        nn.MSELoss().forward(pred, np.zeros((1, 2)))
    assert issubclass(nn.NonFiniteLossError, ValueError)


def test_nan_target_makes_a_nan_loss_error():
    with pytest.raises(nn.NonFiniteLossError, match="loss is nan"):
        nn.MSELoss().forward(np.zeros((1, 2)), np.array([[np.nan, 0.0]]))


def test_bce_rejects_probabilities_outside_unit_interval():
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        nn.BCELoss().forward(np.array([1.5]), np.array([1.0]))


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="positive sizes"):
        nn.Linear(0, 3)
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("fast")
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="avg")


def test_softmax_dim_out_of_range():
    with pytest.raises(ValueError, match=r"dim=2 is out of range for an input of shape \(2, 3\)"):
        nn.Softmax(dim=2).forward(np.zeros((2, 3)))


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="expected float64"):
        gradcheck(nn.Linear(2, 2), np.zeros((1, 2)))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.Linear(2, 2).backward(np.zeros((1, 2)))
