"""Chapter 6 exercises: the two GAN losses, the optimal discriminator and the JS divergence."""

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(606)


def _prob(rng, shape, low=0.02, high=0.98):
    return rng.uniform(low, high, shape)


def _d_loss_cases():
    rng = _rng()
    return [(_prob(rng, 8), _prob(rng, 8)),
            (_prob(rng, 5, 0.7, 0.99), _prob(rng, 12, 0.01, 0.3)),   # a confident D: a small loss
            (np.full(4, 0.5), np.full(4, 0.5))]                    # D cannot tell: log 4


@exercise("ch6.discriminator_loss", _d_loss_cases,
          hint="L_D = -[mean log D(x) + mean log(1 - D(G(z)))]: the minus sign covers BOTH terms "
               "(it is binary cross-entropy with label 1 for real and 0 for fake, each averaged over its half).",
          wrong=lambda d_real, d_fake: -np.mean(np.log(d_real)) + np.mean(np.log(1 - d_fake)))
def discriminator_loss(d_real, d_fake):
    """The discriminator's loss from its probabilities D(x) on real samples and D(G(z)) on fakes."""
    return -(np.mean(np.log(d_real)) + np.mean(np.log1p(-d_fake)))


def _g_loss_cases():
    rng = _rng()
    return [(_prob(rng, 10),), (_prob(rng, 6, 0.001, 0.05),), (np.array([0.5]),)]


@exercise("ch6.generator_loss", _g_loss_cases,
          hint="The non-saturating generator loss is -mean log D(G(z)): G wants D to call its samples real.",
          wrong=lambda d_fake: np.mean(np.log(1 - d_fake)))
def generator_loss(d_fake):
    """The non-saturating generator loss, from D's probabilities D(G(z)) on a batch of fakes."""
    return -np.mean(np.log(d_fake))


def _logit_cases():
    rng = _rng()
    return [(rng.standard_normal((6, 1)) * 3,), (np.array([[-8.0], [0.0], [8.0]]),)]


@exercise("ch6.nonsaturating_logit_grad", _logit_cases,
          hint="With D(G(z)) = sigmoid(l), d/dl [-log sigmoid(l)] = sigmoid(l) - 1; divide by the batch "
               "size for the mean. (The saturating loss log(1 - sigmoid(l)) would give -sigmoid(l) instead.)",
          wrong=lambda logits: -1 / (1 + np.exp(-logits)) / logits.size)
def nonsaturating_logit_grad(logits):
    """Gradient of L_G = -mean log sigmoid(logits) with respect to the logits (N, 1)."""
    return (1 / (1 + np.exp(-logits)) - 1) / logits.size


def _density_cases():
    rng = _rng()
    x = np.linspace(-3, 3, 13)
    p_data = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    p_g = np.exp(-0.5 * (x - 1) ** 2 / 2.25) / np.sqrt(2 * np.pi * 2.25)
    return [(p_data, p_g), (_prob(rng, 5), _prob(rng, 5)), (np.array([0.2, 0.0, 0.3]), np.array([0.2, 0.4, 0.0]))]


@exercise("ch6.optimal_discriminator", _density_cases,
          hint="For a fixed G, maximise p_data(x) log D + p_g(x) log(1 - D) point by point: the derivative "
               "p_data/D - p_g/(1 - D) is zero at D = p_data / (p_data + p_g).",
          wrong=lambda p_data, p_g: p_g / (p_data + p_g))
def optimal_discriminator(p_data, p_g):
    """D*(x) from the two densities evaluated at the same points x."""
    return p_data / (p_data + p_g)


def _dist_cases():
    rng = _rng()
    p = rng.random(6)
    q = rng.random(6)
    return [(p / p.sum(), q / q.sum()), (np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])),
            (np.array([0.25, 0.75]), np.array([0.25, 0.75]))]


def _kl(p, q):
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


@exercise("ch6.js_divergence", _dist_cases,
          hint="JSD(p, q) = 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q)/2, in nats; terms with p_i = 0 "
               "contribute 0. It is 0 for p = q and at most log 2.",
          wrong=lambda p, q: _kl(p, (p + q) / 2) + _kl(q, (p + q) / 2))
def js_divergence(p, q):
    """The Jensen-Shannon divergence (natural log) of two discrete distributions."""
    m = (p + q) / 2
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)
