"""Chapter 3 build-it steps and exercises: the stable learning rate, a gradient, the momentum, Adam and AdamW steps, a
schedule.

In the lesson (each used by the cells after it): ``ch3.max_stable_lr``, ``ch3.rosenbrock_grad`` (the gradient every
Rosenbrock run of the chapter then uses, gradient-checked by the learner), ``ch3.sgd_momentum_step``, ``ch3.adam_step``
and ``ch3.adamw_step`` (the optimizers of the chapter's comparisons). For practice at the end: ``ch3.cosine_lr``.
"""

import math

import numpy as np

from ...i18n import N_
from ..checker import exercise


def _rng():
    return np.random.default_rng(303)


def _rosenbrock_cases():
    rng = _rng()
    return [(np.array([-1.5, 2.5]),),            # the chapter's start
            (np.array([1.0, 1.0]),),             # the minimum: the gradient is zero
            (np.array([0.5, 0.25]),),            # on the parabola w2 = w1^2: only the (1 - w1)^2 term pulls
            (np.array([0.0, 0.0]),),
            (np.array([2.0, -1.0]),),
            (rng.standard_normal(2) * 2,)]


def _rosenbrock_chain_rule_forgotten(w):
    w1, w2 = w
    return np.array([2 * (1 - w1) + 200 * (w2 - w1 ** 2) * 2 * w1, 200 * (w2 - w1 ** 2)])


@exercise("ch3.rosenbrock_grad", _rosenbrock_cases,
          hints=[N_("Two partial derivatives, one per coordinate. Each term of f is a square of something, so the "
                    "chain rule gives 2 (something) times the derivative of that something."),
                 N_("The inner derivatives: d(1 - w1)/dw1 = -1, d(w2 - w1^2)/dw1 = -2 w1 and d(w2 - w1^2)/dw2 = 1. "
                    "Mind both minus signs."),
                 N_("df/dw1 = -2 (1 - w1) - 400 w1 (w2 - w1^2) and df/dw2 = 200 (w2 - w1^2); return them as "
                    "np.array([df_dw1, df_dw2]).")],
          wrong=_rosenbrock_chain_rule_forgotten)
def rosenbrock_grad(w):
    """The gradient (2,) of Rosenbrock's f(w) = (1 - w1)^2 + 100 (w2 - w1^2)^2 at the point w (2,)."""
    w1, w2 = w
    return np.array([-2 * (1 - w1) - 400 * w1 * (w2 - w1 ** 2), 200 * (w2 - w1 ** 2)])


def _momentum_cases():
    rng = _rng()
    return [(np.array([1.0, -2.0]), np.array([0.5, 0.1]), np.array([0.2, -0.4]), 0.1, 0.9),
            (rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(6), 0.03, 0.5)]


@exercise("ch3.sgd_momentum_step", _momentum_cases,
          hints=[N_("Two updates, in order: first the momentum buffer, then the weights, which move along the buffer "
                    "(not along the raw gradient)."),
                 N_("PyTorch's form has no (1 - momentum) factor: the buffer is a plain decaying sum of the gradients, "
                    "b_t = momentum b_{t-1} + g_t. Return both the new w and the new buffer."),
                 N_("buf = momentum * buf + g; return w - lr * buf, buf.")],
          wrong=lambda w, buf, g, lr, mom: (w - lr * (mom * buf + (1 - mom) * g), mom * buf + (1 - mom) * g),
          outputs=("w", "buf"))
def sgd_momentum_step(w, buf, g, lr, momentum):
    """One SGD step with momentum (PyTorch's form, a momentum buffer that already exists): returns (w, buf)."""
    buf = momentum * buf + g
    return w - lr * buf, buf


def _adam_cases():
    rng = _rng()
    return [(np.array([0.5, -1.0]), np.zeros(2), np.zeros(2), np.array([0.1, -3.0]), 1, 1e-2, 0.9, 0.999, 1e-8),
            (rng.standard_normal(5), 0.1 * rng.standard_normal(5), 0.01 * rng.random(5), rng.standard_normal(5), 7,
             1e-3, 0.8, 0.99, 1e-8),
            # tiny gradients (~1e-8): sqrt(v_hat) is about eps, so where eps goes (outside the root) matters
            (np.array([0.01, -0.02, 0.005]), np.zeros(3), np.zeros(3), np.array([3e-8, -1e-8, 5e-9]), 1, 1e-2, 0.9,
             0.999, 1e-8),
            (rng.standard_normal(4), 1e-9 * rng.standard_normal(4), 1e-17 * rng.random(4),
             2e-8 * rng.standard_normal(4), 4, 1e-2, 0.9, 0.999, 1e-8)]


def _adam_no_bias_correction(w, m, v, g, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return w - lr * m / (np.sqrt(v) + eps), m, v


@exercise("ch3.adam_step", _adam_cases,
          hints=[N_("Three stages: update the two running averages with this step's gradient, correct their start-up "
                    "bias, then step. Which of them must be returned for the next step?"),
                 N_("m and v are exponential moving averages of g and g*g (weights 1 - beta). Bias correction divides "
                    "them by 1 - beta**t with this step's t; the step uses the corrected ones, the return value the "
                    "uncorrected ones."),
                 N_("m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t); w - lr * m_hat / (np.sqrt(v_hat) + eps); "
                    "eps goes outside the square root.")],
          wrong=_adam_no_bias_correction, outputs=("w", "m", "v"))
def adam_step(w, m, v, g, t, lr, beta1, beta2, eps):
    """Adam's step number t (t = 1 for the first step): returns (w, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def _adamw_cases():
    rng = _rng()
    return [(np.array([2.0, -1.0]), np.zeros(2), np.zeros(2), np.array([0.5, 0.5]), 1, 0.1, 0.1),
            (rng.standard_normal(4), 0.1 * rng.standard_normal(4), 0.1 * rng.random(4), rng.standard_normal(4), 3,
             0.01, 0.05),
            # tiny gradients (~1e-8): sqrt(v_hat) is about eps, so where eps goes (outside the root) matters
            (np.array([0.015, -0.005, 0.02]), 1e-9 * rng.standard_normal(3), 1e-17 * rng.random(3),
             np.array([2e-8, -1e-8, 4e-9]), 5, 0.01, 0.1)]


def _adam_with_l2(w, m, v, g, t, lr, weight_decay):
    return adam_step(w, m, v, g + weight_decay * w, t, lr, 0.9, 0.999, 1e-8)


@exercise("ch3.adamw_step", _adamw_cases,
          hints=[N_("AdamW differs from Adam + L2 in where the decay acts: on the weights directly, not through the "
                    "gradient (and so not through Adam's rescaling)."),
                 N_("Shrink the weights by the factor (1 - lr * weight_decay) first, then take an ordinary Adam step "
                    "(betas 0.9, 0.999, eps 1e-8) with the unchanged gradient."),
                 N_("Reuse your Adam step: adam_step(w * (1 - lr * weight_decay), m, v, g, t, lr, 0.9, 0.999, 1e-8).")],
          wrong=_adam_with_l2, outputs=("w", "m", "v"))
def adamw_step(w, m, v, g, t, lr, weight_decay):
    """AdamW's step t with betas (0.9, 0.999), eps 1e-8: returns (w, m, v)."""
    return adam_step(w * (1 - lr * weight_decay), m, v, g, t, lr, 0.9, 0.999, 1e-8)


def _hessian_cases():
    rng = _rng()
    a = rng.standard_normal((4, 4))
    return [(np.diag([1.0, 20.0]),), (np.array([[3.0, 1.0], [1.0, 2.0]]),), (a @ a.T + 0.1 * np.eye(4),)]


@exercise("ch3.max_stable_lr", _hessian_cases,
          hints=[N_("In the eigenvector basis of H the problem splits into one 1-D problem per eigenvalue; each must "
                    "converge."),
                 N_("Along an eigenvector with eigenvalue lambda, a step multiplies the coordinate by (1 - lr lambda). "
                    "Which eigenvalue makes |1 - lr lambda| < 1 hardest to satisfy?"),
                 N_("2 / the largest eigenvalue; np.linalg.eigvalsh(H) gives the eigenvalues of a symmetric matrix.")],
          wrong=lambda H: 2.0 / float(np.min(np.linalg.eigvalsh(H))))
def max_stable_lr(H):
    """The largest learning rate for which gradient descent converges on f(w) = w^T H w / 2 (H symmetric PD)."""
    return 2.0 / float(np.max(np.linalg.eigvalsh(H)))


def _cosine_cases():
    return [(0.1, 0.0, np.arange(0, 11), 10), (1.0, 0.01, np.array([0, 3, 25, 50]), 50)]


@exercise("ch3.cosine_lr", _cosine_cases,
          hints=[N_("The curve starts at base_lr for epoch 0 and ends at eta_min for epoch T_max, following half a "
                    "cosine period. What does (1 + cos x) / 2 do for x from 0 to pi?"),
                 N_("(1 + cos(pi epoch / T_max)) / 2 goes from 1 to 0; scale it to the range between eta_min and "
                    "base_lr."),
                 N_("eta_min + (base_lr - eta_min) * (1 + np.cos(np.pi * epoch / T_max)) / 2.")],
          wrong=lambda base_lr, eta_min, epoch, T_max: eta_min + (base_lr - eta_min) * np.cos(np.pi * epoch / T_max))
def cosine_lr(base_lr, eta_min, epoch, T_max):
    """The cosine-annealing learning rate at ``epoch`` (an array of epochs), 0 <= epoch <= T_max."""
    return eta_min + (base_lr - eta_min) * (1 + np.cos(math.pi * np.asarray(epoch) / T_max)) / 2
