"""Chapter 6 build-it steps and exercises: the optimal discriminator, the JS divergence, both GAN losses on the
discriminator's logits (value and gradient), and one alternating GAN step, which the notebook then trains with.
"""

import numpy as np

from dlcourse import optim
from dlcourse.nn.functional import sigmoid

from ...i18n import N_
from ..checker import exercise
from . import gan


def _rng():
    return np.random.default_rng(606)


# ---------------------------------------------------------------------------------------
# Section 3: the optimal discriminator and the Jensen-Shannon divergence
# ---------------------------------------------------------------------------------------


def _density_cases():
    rng = _rng()
    x = np.linspace(-3, 3, 13)
    p_data = np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    p_g = np.exp(-0.5 * (x - 1) ** 2 / 2.25) / np.sqrt(2 * np.pi * 2.25)
    return [(p_data, p_g), (rng.uniform(0.02, 0.98, 5), rng.uniform(0.02, 0.98, 5)),
            (np.array([0.2, 0.0, 0.3]), np.array([0.2, 0.4, 0.0]))]


@exercise("ch6.optimal_discriminator", _density_cases,
          hints=[N_("For a fixed G, V is an integral over x: choose D(x) separately at every x to maximise "
                    "p_data(x) log D + p_g(x) log(1 - D)."),
                 N_("Set the derivative of a log y + b log(1 - y) with respect to y to zero."),
                 N_("a / y = b / (1 - y): solve for y, with a = p_data(x) and b = p_g(x).")],
          wrong=lambda p_data, p_g: p_g / (p_data + p_g))
def optimal_discriminator(p_data, p_g):
    """D*(x) from the two densities evaluated at the same points x (arrays of the same shape)."""
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
          hints=[N_("Build the mixture of the two distributions first; the JS divergence compares each of them "
                    "with it."),
                 N_("JSD(p, q) is the average of KL(p || m) and KL(q || m), in nats (natural log)."),
                 N_("Entries with p_i = 0 contribute 0 to KL(p || m) (0 log 0 = 0): leave them out of the sum. "
                    "Sanity checks: JSD(p, p) = 0, and JSD never exceeds log 2.")],
          wrong=lambda p, q: _kl(p, (p + q) / 2) + _kl(q, (p + q) / 2))
def js_divergence(p, q):
    """The Jensen-Shannon divergence (natural log) of two discrete distributions p, q (arrays (K,))."""
    m = (p + q) / 2
    return 0.5 * _kl(p, m) + 0.5 * _kl(q, m)


# ---------------------------------------------------------------------------------------
# Section 4: the two players' losses, from D's logits, with their gradients
# ---------------------------------------------------------------------------------------


def _logits(rng, n, scale=3.0):
    return rng.standard_normal((n, 1)) * scale


def _d_loss_cases():
    rng = _rng()
    return [(_logits(rng, 8), _logits(rng, 8)),
            (_logits(rng, 5) + 4, _logits(rng, 12) - 4),                           # a confident D, halves of 5 and 12
            (np.zeros((4, 1)), np.zeros((4, 1))),                                 # D cannot tell: log 4
            (np.array([[40.0], [-40.0]]), np.array([[-40.0], [40.0], [0.0]])),   # large logits: stay finite
            (np.array([[1000.0], [-1000.0]]), np.array([[-1000.0], [1000.0]]))]  # np.exp(1000) overflows


def _d_loss_one_sign(logits_real, logits_fake):
    """The minus sign on the first term only: fakes that D calls real are rewarded."""
    s_r, s_f = sigmoid(logits_real), sigmoid(logits_fake)
    loss = float(np.mean(np.logaddexp(0, -logits_real)) - np.mean(np.logaddexp(0, logits_fake)))
    return loss, (s_r - 1) / len(logits_real), -s_f / len(logits_fake)


@exercise("ch6.discriminator_loss", _d_loss_cases,
          hints=[N_("It is binary cross-entropy on D's logits: label 1 for the real samples, label 0 for the fakes; "
                    "each half is averaged over its own size and the two means are added."),
                 N_("In terms of a logit l: -log sigmoid(l) = log(1 + e^(-l)) and -log(1 - sigmoid(l)) = log(1 + e^l). "
                    "Their derivatives with respect to l are sigmoid(l) - 1 and sigmoid(l)."),
                 N_("np.logaddexp(0, x) = log(1 + e^x) without overflow, and dlcourse.nn.functional.sigmoid is stable; "
                    "each half's gradient is divided by that half's size.")],
          wrong=_d_loss_one_sign)
def discriminator_loss(logits_real, logits_fake):
    """L_D = BCE(logits_real, 1) + BCE(logits_fake, 0) and its gradients with respect to both logit arrays.

    logits_real (N, 1), logits_fake (M, 1) -> (loss: float, grad_real (N, 1), grad_fake (M, 1)).
    """
    loss = float(np.mean(np.logaddexp(0, -logits_real)) + np.mean(np.logaddexp(0, logits_fake)))
    grad_real = (sigmoid(logits_real) - 1) / len(logits_real)
    grad_fake = sigmoid(logits_fake) / len(logits_fake)
    return loss, grad_real, grad_fake


def _g_loss_cases():
    rng = _rng()
    return [(_logits(rng, 10),), (_logits(rng, 6) - 5,), (np.zeros((1, 1)),), (np.array([[-50.0], [50.0]]),),
            (np.array([[-1000.0], [1000.0], [3.0]]),)]  # np.exp(1000) overflows


def _saturating(logits_fake):
    loss = float(-np.mean(np.logaddexp(0, logits_fake)))
    return loss, -sigmoid(logits_fake) / len(logits_fake)


def _non_saturating(logits_fake):
    loss = float(np.mean(np.logaddexp(0, -logits_fake)))
    return loss, (sigmoid(logits_fake) - 1) / len(logits_fake)


@exercise("ch6.generator_loss", _g_loss_cases,
          hints=[N_("The generator wants D to call its samples real. Which label does that mean in a binary "
                    "cross-entropy on the fake logits?"),
                 N_("The non-saturating loss is -mean log D(G(z)) = BCE(logits, 1), not the minimax "
                    "mean log(1 - D(G(z))). The derivative of -log sigmoid(l) with respect to l is sigmoid(l) - 1."),
                 N_("Average over the batch and divide the gradient by the batch size too; np.logaddexp(0, -l) "
                    "keeps large |l| finite.")],
          wrong=_saturating)
def generator_loss(logits_fake):
    """The non-saturating L_G = -mean log sigmoid(logits_fake) and its gradient: (M, 1) -> (float, (M, 1))."""
    return _non_saturating(logits_fake)


# ---------------------------------------------------------------------------------------
# Section 5: one alternating GAN step (k = 1), with the two losses above
# ---------------------------------------------------------------------------------------


def gan_step(G, D, opt_G, opt_D, real, z_D, z_G):
    """One discriminator update on ``real`` and G(z_D), then one generator update through a frozen D.

    real (N, 2); z_D, z_G (M, latent_dim). Returns (loss_D, loss_G, G(z_G) after the generator's update, D's .grad
    after the whole step flattened by ``gan.flat_grad``): the last two let ``check`` see both updates and that the
    generator's loss stayed out of D's .grad.
    """
    opt_D.zero_grad()                     # both players forget the previous step's gradients
    opt_G.zero_grad()
    # the discriminator's step: the fakes are constants (no G.backward here: PyTorch's G(z).detach())
    fake = G.forward(z_D)
    logits = D.forward(np.concatenate([real, fake]))  # one pass over both halves: D mixes no samples
    loss_D, grad_real, grad_fake = discriminator_loss(logits[:len(real)], logits[len(real):])
    D.backward(np.concatenate([grad_real, grad_fake]))
    opt_D.step()
    # the generator's step: the gradient flows through D into G, but not into D's .grad
    logits = D.forward(G.forward(z_G))
    loss_G, grad_logits = generator_loss(logits)
    with gan.frozen(D):
        grad_fake_input = D.backward(grad_logits)
    G.backward(grad_fake_input)
    opt_G.step()
    return loss_D, loss_G, G.forward(z_G), gan.flat_grad(D)


def _gan_step_not_detached(G, D, opt_G, opt_D, real, z_D, z_G):
    """The typical slip: D's loss is back-propagated into G too (no detach), so G's update carries the gradient of
    D's loss on top of its own."""
    opt_D.zero_grad()
    opt_G.zero_grad()
    fake = G.forward(z_D)
    logits = D.forward(np.concatenate([real, fake]))
    loss_D, grad_real, grad_fake = discriminator_loss(logits[:len(real)], logits[len(real):])
    G.backward(D.backward(np.concatenate([grad_real, grad_fake]))[len(real):])
    opt_D.step()
    logits = D.forward(G.forward(z_G))
    loss_G, grad_logits = generator_loss(logits)
    with gan.frozen(D):
        G.backward(D.backward(grad_logits))
    opt_G.step()
    return loss_D, loss_G, G.forward(z_G), gan.flat_grad(D)


def _junk_grads(rng, *models):
    """Leftover gradients in every parameter's .grad (what a previous step or a forgotten zero_grad leaves)."""
    for model in models:
        for p in model.parameters():
            p.grad = rng.standard_normal(p.data.shape)


def _gan_step_cases():
    """Three starts: leftover .grad from elsewhere (Adam), the third step of a run (SGD with momentum, state left by
    two earlier steps), and leftover .grad again with other sizes. None starts from fresh, zero state, so a missing
    zero_grad, a missing freeze or a missing detach each changes what the step returns."""
    cases = []
    settings = [(16, 16, 8, "adam", 0), (12, 20, 6, "sgd", 2), (9, 5, 4, "adam", 1)]
    for k, (n, m, hidden, opt_name, warmup) in enumerate(settings):
        rng = np.random.default_rng(660 + k)
        G = gan.make_generator(2, hidden, dtype=np.float64, seed=10 + k)
        D = gan.make_discriminator(2, hidden, dtype=np.float64, seed=20 + k)
        if opt_name == "adam":
            opt_G = optim.Adam(G.parameters(), lr=1e-2, betas=(0.5, 0.999))
            opt_D = optim.Adam(D.parameters(), lr=2e-2, betas=(0.5, 0.999))
        else:
            opt_G = optim.SGD(G.parameters(), lr=0.05, momentum=0.9)
            opt_D = optim.SGD(D.parameters(), lr=0.1, momentum=0.9)
        for _ in range(warmup):  # earlier steps of the same run: .grad and the optimizers' state are not fresh
            gan_step(G, D, opt_G, opt_D, rng.standard_normal((n, 2)) + [2.0, 0.0], rng.standard_normal((m, 2)),
                     rng.standard_normal((m, 2)))
        if warmup == 0:
            _junk_grads(rng, G, D)
        real = rng.standard_normal((n, 2)) + [2.0, 0.0]
        cases.append((G, D, opt_G, opt_D, real, rng.standard_normal((m, 2)), rng.standard_normal((m, 2))))
    return cases


exercise("ch6.gan_step", _gan_step_cases,
         hints=[N_("Two optimizers, two updates, in this order: D's (on the real rows and on fakes that are constants "
                   "for it), then G's (through D). Each update must use only its own loss's gradient: what is in the "
                   "two models' .grad when the step begins, and what must not be added to it on the way?"),
                N_("Start with opt_D.zero_grad() and opt_G.zero_grad(). Discriminator: D.forward on the real and fake "
                   "rows stacked, your discriminator_loss on the two halves, one D.backward with the two gradients "
                   "stacked in the same order, opt_D.step(); never G.backward here (that is PyTorch's .detach()). "
                   "Generator: D.forward(G.forward(z_G)), your generator_loss."),
                N_("Inside `with gan.frozen(D):`, grad = D.backward(grad_logits) returns the gradient with respect to "
                   "D's input and leaves D's .grad alone; then G.backward(grad) and opt_G.step().")],
         wrong=_gan_step_not_detached, rtol=1e-7, atol=1e-10)(gan_step)


# ---------------------------------------------------------------------------------------
# End-of-chapter exercise: the saturating loss (the game as written)
# ---------------------------------------------------------------------------------------


@exercise("ch6.saturating_generator_loss", _g_loss_cases,
          hints=[N_("The minimax game as written: G minimises mean log(1 - D(G(z))), i.e. minus the BCE with label 0."),
                 N_("log(1 - sigmoid(l)) = -log(1 + e^l); its derivative with respect to l is -sigmoid(l)."),
                 N_("Divide the gradient by the batch size; compare your gradient with the non-saturating one where "
                    "D(G(z)) is close to 0.")],
          wrong=_non_saturating)
def saturating_generator_loss(logits_fake):
    """L_G^sat = mean log(1 - sigmoid(logits_fake)) and its gradient: (M, 1) -> (float, (M, 1))."""
    return _saturating(logits_fake)
