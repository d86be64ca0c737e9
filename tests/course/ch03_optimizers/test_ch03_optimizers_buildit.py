"""Chapter 3's build-it checks cannot be fooled by eps inside the square root; the learner's Rosenbrock gradient
can be gradient-checked; the chapter's Nesterov and playground statements hold.
"""

import numpy as np
import pytest
import torch

from dlcourse import gradcheck, optim
from dlcourse.course.ch03_optimizers import surfaces
from dlcourse.course.checker import REGISTRY, check, reference


def _adam_eps_inside(w, m, v, g, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    return w - lr * (m / (1 - beta1 ** t)) / np.sqrt(v / (1 - beta2 ** t) + eps), m, v


def test_adam_with_eps_inside_the_square_root_fails(capsys):
    assert not check("ch3.adam_step", _adam_eps_inside)
    assert "differ" in capsys.readouterr().out


def test_adamw_with_eps_inside_the_square_root_fails(capsys):
    def adamw_eps_inside(w, m, v, g, t, lr, weight_decay):
        return _adam_eps_inside(w * (1 - lr * weight_decay), m, v, g, t, lr, 0.9, 0.999, 1e-8)

    assert not check("ch3.adamw_step", adamw_eps_inside)
    assert "differ" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["ch3.adam_step", "ch3.adamw_step"])
def test_adam_cases_include_tiny_second_moments(name):
    """A case whose gradients are ~1e-8, so sqrt(v_hat) is about eps and its placement matters."""
    assert any(np.max(np.abs(case[3])) < 1e-7 for case in REGISTRY[name].cases())


def test_rosenbrock_gradient_passes_the_learners_gradient_check():
    grad = reference("ch3.rosenbrock_grad")
    rosen = surfaces.rosenbrock()
    for point in [rosen.start, (0.5, 0.25), (1.2, 1.0)]:
        w = np.array(point, dtype=float)
        assert np.allclose(grad(w), rosen.grad(w), rtol=1e-14, atol=0)
        assert gradcheck(rosen, w, backward=lambda w, g: g * grad(w))


def test_a_wrong_rosenbrock_gradient_fails_the_gradient_check():
    rosen = surfaces.rosenbrock()
    wrong = REGISTRY["ch3.rosenbrock_grad"].wrong
    assert not gradcheck(rosen, np.array(rosen.start, dtype=float), backward=lambda w, g: g * wrong(w))


def test_nesterov_stability_bound():
    """Spectral radius of Nesterov's (and heavy-ball's) iteration on a quadratic crosses 1 at the stated bounds."""
    mu = 0.9

    def radius(h, nesterov):
        m = np.array([[1 - h * (1 + mu), -mu * mu], [h, mu]]) if nesterov else np.array([[1 - h, -mu], [h, mu]])
        return np.max(np.abs(np.linalg.eigvals(m)))

    for nesterov, bound in [(True, 2 * (1 + mu) / (1 + 2 * mu)), (False, 2 * (1 + mu))]:
        assert radius(bound * 0.99, nesterov) < 1 < radius(bound * 1.01, nesterov)
    # and the matrix is PyTorch's Nesterov: iterate it against torch.optim.SGD on f = lam w^2 / 2
    lam, lr = 2.0, 0.3
    w = torch.tensor([1.0], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr, momentum=mu, nesterov=True)
    state = np.array([1.0, 0.0])  # (w, lr * buffer)
    m = np.array([[1 - lr * lam * (1 + mu), -mu * mu], [lr * lam, mu]])
    for _ in range(20):
        w.grad = lam * w.detach().clone()
        opt.step()
        state = m @ state
        assert abs(w.item() - state[0]) < 1e-12


def test_nesterov_on_the_plateau_oscillates_at_lr_1_and_converges_below_its_bound():
    plateau = surfaces.plateau()
    run = surfaces.run_on_surface(plateau, lambda ps: optim.SGD(ps, lr=1.0, momentum=0.9, nesterov=True), 150)
    twin = surfaces.run_on_surface_torch(plateau, lambda ps: torch.optim.SGD(ps, lr=1.0, momentum=0.9,
                                                                            nesterov=True), 150)
    assert np.max(np.abs(run.path - twin.path)) < 1e-10
    tail = run.path[-6:, 1]
    assert run.final_loss > 0.1 and np.all(tail[1:] * tail[:-1] < 0)
    for lr in (0.5, 0.6):
        below = surfaces.run_on_surface(plateau, lambda ps: optim.SGD(ps, lr=lr, momentum=0.9, nesterov=True), 150)
        assert below.final_loss < 1e-8


def test_gd_on_the_quadratic_diverges_just_above_0_1_only_without_momentum():
    quad = surfaces.ill_conditioned_quadratic(1.0, 20.0)
    gd_above = surfaces.run_on_surface(quad, lambda ps: optim.SGD(ps, lr=0.11), 150)
    gd_below = surfaces.run_on_surface(quad, lambda ps: optim.SGD(ps, lr=0.09), 150)
    heavy = surfaces.run_on_surface(quad, lambda ps: optim.SGD(ps, lr=0.11, momentum=0.9), 150)
    assert gd_above.diverged_at is not None and gd_below.diverged_at is None and heavy.diverged_at is None
