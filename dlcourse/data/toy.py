"""Toy data sets generated in NumPy (no downloads): every function takes a seed.

Each returns ``(X, y)`` with X float64 of shape (n, 2) and y int64 labels of shape (n,).
"""

from __future__ import annotations

import numpy as np


def make_linearly_separable(n: int = 100, margin: float = 0.3, seed: int = 0):
    """Two clouds separated by the line x0 + x1 = 0 with a gap of ``margin``."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(4 * n, 2))
    d = (X[:, 0] + X[:, 1]) / np.sqrt(2)
    X = X[np.abs(d) > margin][:n]
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64)
    return X, y


def make_xor(n: int = 200, noise: float = 0.15, seed: int = 0):
    """Four clusters at (+-1, +-1); label 1 where the signs differ (XOR)."""
    rng = np.random.default_rng(seed)
    corners = rng.integers(0, 2, size=(n, 2))
    X = (2.0 * corners - 1) + noise * rng.standard_normal((n, 2))
    y = (corners[:, 0] ^ corners[:, 1]).astype(np.int64)
    return X, y


def make_spirals(n_per_class: int = 100, n_classes: int = 3, noise: float = 0.2, seed: int = 0):
    """``n_classes`` interleaved spiral arms (the cs231n data set)."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n_per_class * n_classes, 2))
    y = np.zeros(n_per_class * n_classes, dtype=np.int64)
    for k in range(n_classes):
        idx = slice(n_per_class * k, n_per_class * (k + 1))
        r = np.linspace(0.0, 1, n_per_class)
        t = np.linspace(k * 4, (k + 1) * 4, n_per_class) + rng.standard_normal(n_per_class) * noise
        X[idx] = np.c_[r * np.sin(t), r * np.cos(t)]
        y[idx] = k
    return X, y


def make_moons(n: int = 200, noise: float = 0.1, seed: int = 0):
    """Two interleaving half circles."""
    rng = np.random.default_rng(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = rng.uniform(0, np.pi, n_out)
    t_in = rng.uniform(0, np.pi, n_in)
    X = np.r_[np.c_[np.cos(t_out), np.sin(t_out)], np.c_[1 - np.cos(t_in), 0.5 - np.sin(t_in)]]
    X += noise * rng.standard_normal(X.shape)
    y = np.r_[np.zeros(n_out, dtype=np.int64), np.ones(n_in, dtype=np.int64)]
    perm = rng.permutation(n)
    return X[perm], y[perm]


def make_circles(n: int = 200, factor: float = 0.5, noise: float = 0.08, seed: int = 0):
    """A small circle (label 1) inside a big one (label 0)."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 2 * np.pi, n)
    y = (np.arange(n) % 2).astype(np.int64)
    r = np.where(y == 1, factor, 1.0)
    X = np.c_[r * np.cos(t), r * np.sin(t)] + noise * rng.standard_normal((n, 2))
    return X, y


def make_blobs(n: int = 300, centers=((-2, -1), (2, 0), (0, 2)), std: float = 0.6, seed: int = 0):
    """A Gaussian mixture: equal numbers of points around each center."""
    rng = np.random.default_rng(seed)
    centers = np.asarray(centers, dtype=np.float64)
    y = np.arange(n) % len(centers)
    X = centers[y] + std * rng.standard_normal((n, centers.shape[1]))
    return X, y.astype(np.int64)


def make_regression_1d(n: int = 100, noise: float = 0.1, seed: int = 0):
    """y = sin(2 pi x) + noise on x in [0, 1]; X (n, 1), y (n, 1) float64."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(0, 1, n))[:, None]
    return x, np.sin(2 * np.pi * x) + noise * rng.standard_normal((n, 1))
