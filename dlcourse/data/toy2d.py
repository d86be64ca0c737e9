"""Two-dimensional target distributions for generative models (chapter 6), and a sampler.

A GAN learns to *sample*, so these are distributions, not labelled data sets: each
function draws ``n`` points of shape (n, 2) from its own generator ``rng`` (a seed or a
``np.random.Generator``). :class:`ToySampler` wraps one of them with a seeded generator
and a dtype, so that ``sampler(256)`` gives the next real batch of a training loop.

* ``ring_of_gaussians`` - ``n_modes`` Gaussians (std ``std``) evenly spaced on a circle of
  radius ``radius``: the classic test of mode collapse, because every mode is easy to
  count (see :func:`dlcourse.course.ch06_gan.gan.mode_coverage`).
* ``spiral`` - one noisy spiral arm (a thin, curved manifold).
* ``two_moons`` - two interleaving half circles, centred on the origin.
"""

from __future__ import annotations

import numpy as np

DISTRIBUTIONS = ("ring", "spiral", "moons")


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def _check_n(n, name):
    if int(n) != n or n < 1:
        raise ValueError(f"{name}: expected a positive number of samples n, got {n!r}")
    return int(n)


def ring_centers(n_modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """The (n_modes, 2) centres of the ring: angles 0, 2 pi/n_modes, ... at distance ``radius``."""
    if int(n_modes) != n_modes or n_modes < 1:
        raise ValueError(f"ring_centers: expected a positive integer n_modes, got {n_modes!r}")
    if radius <= 0:
        raise ValueError(f"ring_centers: expected radius > 0, got {radius}")
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    return radius * np.c_[np.cos(angles), np.sin(angles)]


def ring_of_gaussians(n: int, n_modes: int = 8, radius: float = 2.0, std: float = 0.05, rng=None) -> np.ndarray:
    """(n, 2) points: a mode drawn uniformly, then centre + std * N(0, I)."""
    n = _check_n(n, "ring_of_gaussians")
    if std <= 0:
        raise ValueError(f"ring_of_gaussians: expected std > 0, got {std}")
    rng = _rng(rng)
    centers = ring_centers(n_modes, radius)
    modes = rng.integers(0, n_modes, size=n)
    return centers[modes] + std * rng.standard_normal((n, 2))


def ring_density(points, n_modes: int = 8, radius: float = 2.0, std: float = 0.05) -> np.ndarray:
    """The ring's probability density at ``points`` (m, 2): the mean of the modes' Gaussian densities."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"ring_density: expected points of shape (m, 2), got {points.shape}")
    d2 = ((points[:, None, :] - ring_centers(n_modes, radius)[None]) ** 2).sum(-1)
    return np.exp(-d2 / (2 * std**2)).mean(axis=1) / (2 * np.pi * std**2)


def spiral(n: int, turns: float = 1.5, noise: float = 0.05, scale: float = 2.0, rng=None) -> np.ndarray:
    """(n, 2) points on one spiral arm r = t, t uniform in (0, 1], angle 2 pi turns t, plus noise."""
    n = _check_n(n, "spiral")
    rng = _rng(rng)
    t = np.sqrt(rng.uniform(0.0, 1.0, n))  # sqrt: uniform along the arm's area, not crowded at the centre
    angle = 2 * np.pi * turns * t
    return scale * np.c_[t * np.cos(angle), t * np.sin(angle)] + noise * rng.standard_normal((n, 2))


def two_moons(n: int, noise: float = 0.05, rng=None) -> np.ndarray:
    """(n, 2) points on two interleaving half circles, centred on the origin."""
    n = _check_n(n, "two_moons")
    rng = _rng(rng)
    upper = rng.random(n) < 0.5
    t = rng.uniform(0.0, np.pi, n)
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    return np.c_[x - 0.5, y - 0.25] + noise * rng.standard_normal((n, 2))


class ToySampler:
    """Seeded batches from one of the toy distributions: ``real = ToySampler("ring")(256)``.

    ``name`` is ``"ring"``, ``"spiral"`` or ``"moons"``; keyword arguments go to the
    distribution (e.g. ``std=0.05`` for the ring). Batches are float32 unless ``dtype`` says
    otherwise. For the ring, ``centers`` and ``std`` are exposed for mode counting.
    """

    def __init__(self, name: str = "ring", seed: int = 0, dtype=np.float32, **params):
        funcs = {"ring": ring_of_gaussians, "spiral": spiral, "moons": two_moons}
        if name not in funcs:
            raise ValueError(f"ToySampler: expected a distribution in {DISTRIBUTIONS}, got {name!r}")
        self.name, self.params, self.dtype = name, params, np.dtype(dtype)
        self._fn = funcs[name]
        self.rng = np.random.default_rng(seed)
        if name == "ring":
            self.n_modes = params.get("n_modes", 8)
            self.radius = params.get("radius", 2.0)
            self.std = params.get("std", 0.05)
            self.centers = ring_centers(self.n_modes, self.radius)

    def sample(self, n: int) -> np.ndarray:
        return self._fn(n, rng=self.rng, **self.params).astype(self.dtype)

    __call__ = sample

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"ToySampler({self.name!r}{', ' + args if args else ''})"
