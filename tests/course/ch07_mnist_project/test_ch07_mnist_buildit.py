"""Chapter 7's build-it checks: the training epoch must switch the model to train mode, early stopping must not
count a tie as an improvement, and the squared error on softmax outputs matches PyTorch's autograd (value and
gradient) and passes the notebook's numerical gradient check."""

import copy
import inspect

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse.course.ch07_mnist_project import exercises as ex7
from dlcourse.course.checker import _run


def _variant(fn, old, new):
    """``fn`` with one line of its source replaced (the learner's likely slip), compiled in its module."""
    src = inspect.getsource(fn)
    assert old in src
    namespace = vars(ex7).copy()
    exec(src.replace(old, new), namespace)
    return namespace[fn.__name__]


def test_train_epoch_without_train_mode_fails_its_check():
    forgetful = _variant(ex7.train_epoch, "    model.train()\n", "")
    assert _run("ch7.train_epoch", forgetful) is not None


def test_the_dropout_case_starts_in_eval_mode_and_draws_the_same_masks_on_each_copy():
    *_, args = ex7._train_epoch_cases()
    assert not args[0].training
    first, second = ex7.train_epoch(*copy.deepcopy(args)), ex7.train_epoch(*copy.deepcopy(args))
    assert first == second


def test_early_stopping_counting_a_tie_as_an_improvement_fails_its_check():
    tie_lover = _variant(ex7.fit_early_stopping, "if v_loss < best_loss:", "if v_loss <= best_loss:")
    assert _run("ch7.fit_early_stopping", tie_lover) is not None


def test_the_tie_case_really_ties():
    args = ex7._fit_cases()[-1]
    curves = ex7.fit_early_stopping(*copy.deepcopy(args))
    assert curves.val_loss[1:] == curves.val_loss[:1] * (len(curves.val_loss) - 1)  # exactly equal
    assert curves.best_epoch == 1 and curves.epochs == 1 + args[7]                   # stopped after `patience`


@pytest.mark.parametrize("case", range(4))
def test_mse_on_softmax_matches_torch(case):
    logits, labels = ex7._mse_cases()[case]
    z = torch.tensor(logits, requires_grad=True)
    target = torch.nn.functional.one_hot(torch.from_numpy(labels), logits.shape[1]).double()
    loss_t = torch.nn.functional.mse_loss(torch.softmax(z, 1), target)
    loss_t.backward()
    loss, grad = ex7.mse_on_softmax(logits, labels)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(grad, z.grad.numpy(), rtol=1e-10, atol=1e-18)


def test_mse_gradcheck_passes_on_the_reference_and_fails_without_the_jacobian():
    logits = np.random.default_rng(0).standard_normal((5, 4)) * 2
    labels = np.array([0, 3, 3, 1, 2])

    def check_with(fn):
        return dlcourse.gradcheck(lambda z: fn(z, labels)[0], logits, backward=lambda z, g: g * fn(z, labels)[1])

    assert check_with(ex7.mse_on_softmax).max_error < 1e-8
    assert not check_with(ex7._mse_no_jacobian)
