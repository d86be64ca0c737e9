"""Chapter 6's build-it references are right (the GAN losses against PyTorch, the GAN step against the library's),
and the claims the notebook prints without asserting hold (the CI side of what used to be notebook asserts)."""

import copy

import numpy as np
import pytest
import torch

from dlcourse import optim
from dlcourse.course.ch06_gan import exercises as ex6
from dlcourse.course.ch06_gan import gan


@pytest.mark.parametrize("n_real, n_fake", [(7, 7), (5, 11)])
def test_gan_losses_match_torch_bce_with_logits(rng, n_real, n_fake):
    lr, lf = rng.standard_normal((n_real, 1)) * 4, rng.standard_normal((n_fake, 1)) * 4
    tr, tf = torch.tensor(lr, requires_grad=True), torch.tensor(lf, requires_grad=True)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    loss_t = bce(tr, torch.ones_like(tr)) + bce(tf, torch.zeros_like(tf))
    loss_t.backward()
    loss, g_real, g_fake = ex6.discriminator_loss(lr, lf)
    assert loss == pytest.approx(loss_t.item(), rel=1e-12)
    np.testing.assert_allclose(g_real, tr.grad.numpy(), rtol=1e-10, atol=1e-15)
    np.testing.assert_allclose(g_fake, tf.grad.numpy(), rtol=1e-10, atol=1e-15)

    tf.grad = None
    loss_g = bce(tf, torch.ones_like(tf))
    loss_g.backward()
    loss, grad = ex6.generator_loss(lf)
    assert loss == pytest.approx(loss_g.item(), rel=1e-12)
    np.testing.assert_allclose(grad, tf.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_reference_gan_step_equals_the_library_step():
    """One forward pass over real and fake rows together gives the same update as the library's two passes."""
    G = gan.make_generator(2, 16, dtype=np.float64, seed=3)
    D = gan.make_discriminator(2, 16, dtype=np.float64, seed=4)
    G2, D2 = copy.deepcopy(G), copy.deepcopy(D)
    rng = np.random.default_rng(5)
    real, z_D, z_G = rng.standard_normal((32, 2)) + 1, rng.standard_normal((24, 2)), rng.standard_normal((24, 2))

    def adam(model):
        return optim.Adam(model.parameters(), lr=1e-2, betas=(0.5, 0.999))

    loss_D, loss_G, samples, d_grad = ex6.gan_step(G, D, adam(G), adam(D), real, z_D, z_G)
    stats = gan.gan_step(G2, D2, adam(G2), adam(D2), [real], [z_D], z_G)
    assert loss_D == pytest.approx(stats["loss_D"][0], rel=1e-12)
    assert loss_G == pytest.approx(stats["loss_G"], rel=1e-12)
    for a, b in zip(G.parameters(), G2.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)
    for a, b in zip(D.parameters(), D2.parameters()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(a.grad, b.grad, rtol=1e-10, atol=1e-14)  # D's .grad: its own loss only
    np.testing.assert_allclose(samples, G2.forward(z_G), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(d_grad, gan.flat_grad(D2), rtol=1e-10, atol=1e-14)


def _gauss(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))


def test_generator_losses_follow_their_divergences_against_a_frozen_optimal_discriminator():
    """Section 4's claim: with D = D* frozen, grad E[log(1 - D*)] = grad 2 JSD, grad E[-log D*] = grad (KL - 2 JSD)."""
    x = np.linspace(-8, 8, 8001)
    dx = x[1] - x[0]
    pd = 0.5 * _gauss(x, -1.5, 0.4) + 0.5 * _gauss(x, 1.5, 0.4)
    theta0 = np.array([0.3, 1.2])
    d_star = ex6.optimal_discriminator(pd, _gauss(x, *theta0))

    def two_jsd(th):
        return 2 * ex6.js_divergence(pd * dx, _gauss(x, *th) * dx)

    def kl(th):
        p = _gauss(x, *th)
        return np.sum(p * np.log(p / pd)) * dx

    def grad(f, h=1e-5):
        return np.array([(f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h) for e in np.eye(2)])

    sat = grad(lambda th: np.sum(_gauss(x, *th) * np.log(1 - d_star)) * dx)
    ns = grad(lambda th: np.sum(_gauss(x, *th) * -np.log(d_star)) * dx)
    np.testing.assert_allclose(sat, grad(two_jsd), atol=1e-6)
    np.testing.assert_allclose(ns, grad(lambda th: kl(th) - two_jsd(th)), atol=1e-6)
    assert np.abs(ns - sat).max() > 0.01  # different objectives, not one up to a constant


def test_c_of_g_is_two_jsd_minus_log_4_and_one_mode_jsd():
    rng = np.random.default_rng(0)
    p, q = rng.random(9), rng.random(9)
    p, q = p / p.sum(), q / q.sum()
    d = ex6.optimal_discriminator(p, q)
    c = np.sum(p * np.log(d) + q * np.log(1 - d))
    assert c == pytest.approx(2 * ex6.js_divergence(p, q) - np.log(4), abs=1e-12)
    # the predict-then-run exercise: one mode of eight copied perfectly
    jsd = ex6.js_divergence(np.full(8, 1 / 8), np.eye(8)[0])
    expected = 0.5 * (1 / 8 * np.log(2 / 9) + 7 / 8 * np.log(2) + np.log(16 / 9))
    assert jsd == pytest.approx(expected, rel=1e-12)
