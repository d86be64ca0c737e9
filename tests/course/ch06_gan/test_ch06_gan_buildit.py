"""Chapter 6's GAN step build-it: the check rejects every mistake the chapter warns about (a missing zero_grad,
the generator's loss written into D's .grad, D's loss back-propagated into G, D updated late), accepts the correct
orderings, and the notebook's gradient check of the learner's losses passes on the references."""

import copy

import numpy as np
import pytest

import dlcourse
from dlcourse.course.ch06_gan import exercises as ex6
from dlcourse.course.ch06_gan import gan
from dlcourse.course.checker import _run


def _step(zero_D=True, zero_G=True, zero_G_late=False, freeze=True, detach=True, d_step_late=False):
    """The GAN step with one mistake switched on (or none): the learner's likely variants."""
    def step(G, D, opt_G, opt_D, real, z_D, z_G):
        if zero_D:
            opt_D.zero_grad()
        if zero_G and not zero_G_late:
            opt_G.zero_grad()
        fake = G.forward(z_D)
        logits = D.forward(np.concatenate([real, fake]))
        loss_D, grad_real, grad_fake = ex6.discriminator_loss(logits[:len(real)], logits[len(real):])
        grad_input = D.backward(np.concatenate([grad_real, grad_fake]))
        if not detach:
            G.backward(grad_input[len(real):])
        if not d_step_late:
            opt_D.step()
        if zero_G and zero_G_late:
            opt_G.zero_grad()
        logits = D.forward(G.forward(z_G))
        loss_G, grad_logits = ex6.generator_loss(logits)
        if freeze:
            with gan.frozen(D):
                grad_fake = D.backward(grad_logits)
        else:
            grad_fake = D.backward(grad_logits)
        G.backward(grad_fake)
        if d_step_late:
            opt_D.step()
        opt_G.step()
        return loss_D, loss_G, G.forward(z_G), gan.flat_grad(D)
    return step


@pytest.mark.parametrize("variant", [{}, {"zero_G_late": True}], ids=["zero both first", "zero G before its step"])
def test_gan_step_check_accepts_correct_orderings(variant):
    assert _run("ch6.gan_step", _step(**variant)) is None


MISTAKES = {"no opt_D.zero_grad()": {"zero_D": False}, "no opt_G.zero_grad()": {"zero_G": False},
            "D.backward outside the freeze": {"freeze": False}, "fakes not detached": {"detach": False},
            "opt_D.step() after the generator's step": {"d_step_late": True}}


def _differs(expected, got, rtol=1e-7, atol=1e-10):
    return any(not np.allclose(np.asarray(g, np.float64), np.asarray(e, np.float64), rtol=rtol, atol=atol)
               for e, g in zip(expected, got))


@pytest.mark.parametrize("mistake", MISTAKES)
def test_gan_step_check_rejects_each_mistake_in_every_case(mistake):
    """Each case on its own catches the mistake: none of them starts from fresh, zero .grad."""
    assert _run("ch6.gan_step", _step(**MISTAKES[mistake])) is not None
    for args in ex6._gan_step_cases():
        expected = ex6.gan_step(*copy.deepcopy(args))
        assert _differs(expected, _step(**MISTAKES[mistake])(*copy.deepcopy(args))), f"{mistake} passes a case"


def test_late_zero_grad_without_detach_is_harmless():
    """Not detaching is only wasted work when opt_G.zero_grad() comes after the discriminator's step: the check
    accepts it, rightly, since every update and every .grad come out the same."""
    assert _run("ch6.gan_step", _step(detach=False, zero_G_late=True)) is None


def test_flat_grad_names_a_missing_grad():
    D = gan.make_discriminator(2, 4, dtype=np.float64, seed=0)
    with pytest.raises(ValueError, match="0.weight"):
        gan.flat_grad(D)


def test_notebook_gradchecks_pass_on_the_references_and_fail_on_a_wrong_gradient():
    logits = np.random.default_rng(0).standard_normal((9, 1)) * 3
    n_real = 4

    def d_loss(x):
        return ex6.discriminator_loss(x[:n_real], x[n_real:])[0]

    def d_grad(x, g):
        _, grad_real, grad_fake = ex6.discriminator_loss(x[:n_real], x[n_real:])
        return g * np.concatenate([grad_real, grad_fake])

    assert dlcourse.gradcheck(d_loss, logits, backward=d_grad).max_error < 1e-8
    assert dlcourse.gradcheck(lambda x: ex6.generator_loss(x)[0], logits,
                              backward=lambda x, g: g * ex6.generator_loss(x)[1]).max_error < 1e-8
    wrong = dlcourse.gradcheck(lambda x: ex6.generator_loss(x)[0], logits,
                               backward=lambda x, g: g * ex6._saturating(x)[1])
    assert not wrong
