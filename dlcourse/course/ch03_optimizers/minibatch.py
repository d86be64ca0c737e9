"""Chapter 3, section 2: how noisy a mini-batch gradient is, and what one step costs, for a given batch size.

Both run NumPy's BLAS on one thread (:func:`dlcourse.runtime.num_threads`): on matrices of a few
hundred rows extra threads only add overhead, and one thread keeps the timings reproducible.
"""

from __future__ import annotations

import time

import numpy as np

from dlcourse import nn, optim
from dlcourse.runtime import num_threads


def flat_grad(model, X, y) -> np.ndarray:
    """The gradient of the mean cross-entropy of ``model`` on (X, y), all parameters in one vector."""
    criterion = nn.CrossEntropyLoss()
    model.zero_grad()
    criterion(model(X), y)
    model.backward(criterion.backward())
    return np.concatenate([p.grad.ravel() for p in model.parameters()])


def gradient_noise(model, X, y, batch_sizes, num_draws: int, seed: int = 0) -> list[float]:
    """For each batch size B: the root-mean-square distance between the gradient of a random batch of B samples
    (drawn without replacement) and the full-batch gradient, over ``num_draws`` batches."""
    n = len(X)
    if any(not 1 <= int(b) <= n for b in batch_sizes):
        raise ValueError(f"gradient_noise: expected batch sizes between 1 and {n}, got {list(batch_sizes)}")
    rng = np.random.default_rng(seed)
    noise = []
    with num_threads(1, torch=False):
        full = flat_grad(model, X, y)
        for B in batch_sizes:
            errors = [np.sum((flat_grad(model, X[idx], y[idx]) - full) ** 2)
                      for idx in (rng.choice(n, int(B), replace=False) for _ in range(num_draws))]
            noise.append(float(np.sqrt(np.mean(errors))))
    return noise


def seconds_per_step(make_model, X, y, batch_size: int, repeat: int, lr: float = 0.1, seed: int = 1) -> float:
    """Median wall-clock seconds of one SGD step (forward, backward, update) on a batch of ``batch_size``."""
    model = make_model()
    opt = optim.SGD(model.parameters(), lr=lr)
    criterion = nn.CrossEntropyLoss()
    idx = np.random.default_rng(seed).choice(len(X), batch_size, replace=False)
    xb, yb = X[idx], y[idx]
    times = []
    with num_threads(1, torch=False):
        for _ in range(repeat):
            t0 = time.perf_counter()
            opt.zero_grad()
            criterion(model(xb), yb)
            model.backward(criterion.backward())
            opt.step()
            times.append(time.perf_counter() - t0)
    return float(np.median(times))
