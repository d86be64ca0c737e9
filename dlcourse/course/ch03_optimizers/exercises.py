"""Chapter 3 exercises: update rules (momentum, Adam, AdamW), the stable learning rate, a schedule."""

import math

import numpy as np

from ..exercises import exercise


def _rng():
    return np.random.default_rng(303)


def _momentum_cases():
    rng = _rng()
    return [(np.array([1.0, -2.0]), np.array([0.5, 0.1]), np.array([0.2, -0.4]), 0.1, 0.9),
            (rng.standard_normal(6), rng.standard_normal(6), rng.standard_normal(6), 0.03, 0.5)]


@exercise("ch3.sgd_momentum_step", _momentum_cases,
          hint="PyTorch's heavy ball: buf = momentum * buf + g (no (1 - momentum) factor), then w = w - lr * buf; "
               "return (new w, new buf).",
          wrong=lambda w, buf, g, lr, mom: (w - lr * (mom * buf + (1 - mom) * g), mom * buf + (1 - mom) * g))
def sgd_momentum_step(w, buf, g, lr, momentum):
    """One SGD step with momentum (PyTorch's form, a momentum buffer that already exists): returns (w, buf)."""
    buf = momentum * buf + g
    return w - lr * buf, buf


def _adam_cases():
    rng = _rng()
    return [(np.array([0.5, -1.0]), np.zeros(2), np.zeros(2), np.array([0.1, -3.0]), 1, 1e-2, 0.9, 0.999, 1e-8),
            (rng.standard_normal(5), 0.1 * rng.standard_normal(5), 0.01 * rng.random(5), rng.standard_normal(5), 7,
             1e-3, 0.8, 0.99, 1e-8)]


def _adam_no_bias_correction(w, m, v, g, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return w - lr * m / (np.sqrt(v) + eps), m, v


@exercise("ch3.adam_step", _adam_cases,
          hint="update m and v first, then divide them by (1 - beta1**t) and (1 - beta2**t) (bias correction) "
               "before w = w - lr * m_hat / (sqrt(v_hat) + eps); return (w, m, v) with the uncorrected m and v.",
          wrong=_adam_no_bias_correction)
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
             0.01, 0.05)]


def _adam_with_l2(w, m, v, g, t, lr, weight_decay):
    return adam_step(w, m, v, g + weight_decay * w, t, lr, 0.9, 0.999, 1e-8)


@exercise("ch3.adamw_step", _adamw_cases,
          hint="decoupled weight decay: first shrink w = w * (1 - lr * weight_decay), then an ordinary Adam step with "
               "the unchanged gradient (betas 0.9, 0.999, eps 1e-8). Adding weight_decay * w to g is Adam + L2.",
          wrong=_adam_with_l2)
def adamw_step(w, m, v, g, t, lr, weight_decay):
    """AdamW's step t with betas (0.9, 0.999), eps 1e-8: returns (w, m, v)."""
    return adam_step(w * (1 - lr * weight_decay), m, v, g, t, lr, 0.9, 0.999, 1e-8)


def _hessian_cases():
    rng = _rng()
    a = rng.standard_normal((4, 4))
    return [(np.diag([1.0, 20.0]),), (np.array([[3.0, 1.0], [1.0, 2.0]]),), (a @ a.T + 0.1 * np.eye(4),)]


@exercise("ch3.max_stable_lr", _hessian_cases,
          hint="on f(w) = w^T H w / 2, gradient descent multiplies each eigen-direction by (1 - lr * lambda); "
               "all of them shrink only if |1 - lr * lambda| < 1 for the LARGEST eigenvalue: lr < 2 / lambda_max.",
          wrong=lambda H: 2.0 / float(np.min(np.linalg.eigvalsh(H))))
def max_stable_lr(H):
    """The largest learning rate for which gradient descent converges on f(w) = w^T H w / 2 (H symmetric PD)."""
    return 2.0 / float(np.max(np.linalg.eigvalsh(H)))


def _cosine_cases():
    return [(0.1, 0.0, np.arange(0, 11), 10), (1.0, 0.01, np.array([0, 3, 25, 50]), 50)]


@exercise("ch3.cosine_lr", _cosine_cases,
          hint="eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: it starts at base_lr and ends at "
               "eta_min.",
          wrong=lambda base_lr, eta_min, epoch, T_max: eta_min + (base_lr - eta_min) * np.cos(np.pi * epoch / T_max))
def cosine_lr(base_lr, eta_min, epoch, T_max):
    """The cosine-annealing learning rate at ``epoch`` (an array of epochs), 0 <= epoch <= T_max."""
    return eta_min + (base_lr - eta_min) * (1 + np.cos(math.pi * np.asarray(epoch) / T_max)) / 2
