"""Sequence data sets for the recurrent-network chapter, generated in NumPy (no downloads).

Every generator takes a ``seed`` and returns batch-first arrays, (N, T, features), ready for
``RNN(..., batch_first=True)``:

* :func:`make_sine_waves`   noisy sine waves with random frequency, phase and amplitude, for
                            next-step prediction (x_t -> x_{t+1}).
* :func:`make_adding_problem`  the classic long-memory benchmark: add the two marked numbers.
"""

from __future__ import annotations

import numpy as np


def _check_sizes(**sizes):
    for name, value in sizes.items():
        if int(value) != value or value < 1:
            raise ValueError(f"expected a positive integer {name}, got {value!r}")


def make_sine_waves(n: int = 256, length: int = 50, noise: float = 0.05, freq_range=(0.02, 0.08),
                    amp_range=(0.5, 1.0), seed: int = 0, dtype=np.float32):
    """Next-step prediction on noisy sine waves.

    Each sequence is s_t = A sin(2 pi f t + phi) + noise * eps_t for t = 0..length, with f (cycles
    per step), A and phi drawn per sequence. Returns ``(x, y, clean)``: inputs x = s_{0..T-1} and
    targets y = s_{1..T}, both (n, length, 1), and the noise-free targets (n, length, 1). Even a
    perfect model has a mean squared error of about ``noise**2`` on y (the noise is unpredictable).
    """
    _check_sizes(n=n, length=length)
    if noise < 0:
        raise ValueError(f"make_sine_waves: expected noise >= 0, got {noise}")
    rng = np.random.default_rng(seed)
    freq = rng.uniform(*freq_range, size=(n, 1))
    amp = rng.uniform(*amp_range, size=(n, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    t = np.arange(length + 1)[None, :]
    clean = amp * np.sin(2 * np.pi * freq * t + phase)
    noisy = clean + noise * rng.standard_normal(clean.shape)
    x, y = noisy[:, :-1, None], noisy[:, 1:, None]
    return x.astype(dtype), y.astype(dtype), clean[:, 1:, None].astype(dtype)


def make_adding_problem(n: int = 1000, length: int = 50, seed: int = 0, dtype=np.float32):
    """The adding problem: x (n, length, 2), y (n, 1).

    Channel 0 holds numbers drawn from U(0, 1); channel 1 marks exactly two steps with a 1, one in
    each half of the sequence. The target is the sum of the two marked numbers. Always predicting
    1 (the mean) gives a mean squared error of 1/6 ~ 0.167; a model must carry the first number
    across about length/2 steps to do better.
    """
    _check_sizes(n=n, length=length)
    if length < 2:
        raise ValueError(f"make_adding_problem: expected length >= 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0, 1, size=(n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    marks = np.zeros((n, length))
    rows = np.arange(n)
    marks[rows, first] = 1
    marks[rows, second] = 1
    x = np.stack([values, marks], axis=-1)
    y = (values[rows, first] + values[rows, second])[:, None]
    return x.astype(dtype), y.astype(dtype)


__all__ = ["make_sine_waves", "make_adding_problem"]
