"""Small grey-scale images of shapes, drawn in NumPy (no download): chapter 4's image data set.

``make_shapes`` draws bars, crosses, circles and squares (outlines) at random positions,
sizes, angles and stroke widths, with anti-aliased edges and Gaussian pixel noise. A class
is defined by *what* is drawn, never *where*, which is exactly what a convolution's weight
sharing is good at. ``draw_shape`` draws one named shape for demonstrations.
"""

from __future__ import annotations

import numpy as np

SHAPE_NAMES = ("bar", "cross", "circle", "square")


def _stroke(dist, width):
    """Anti-aliased stroke: 1 inside distance width/2 of the curve, fading to 0 over one pixel."""
    return np.clip(width / 2 + 0.5 - dist, 0.0, 1.0)


def _segment_distance(px, py, angle, half_length):
    """Distance of points (px, py) (relative to the centre) to a segment through the centre."""
    u, v = np.cos(angle), np.sin(angle)
    along = px * u + py * v
    across = -px * v + py * u
    beyond = np.maximum(np.abs(along) - half_length, 0.0)
    return np.hypot(beyond, across)


def _draw(kind, px, py, radius, angle, width):
    """One class for a whole batch; every parameter has shape (n, 1, 1), px/py (n, size, size)."""
    if kind == "bar":
        return _stroke(_segment_distance(px, py, angle, radius), width)
    if kind == "cross":
        return np.maximum(_stroke(_segment_distance(px, py, angle, radius), width),
                          _stroke(_segment_distance(px, py, angle + np.pi / 2, radius), width))
    if kind == "circle":
        return _stroke(np.abs(np.hypot(px, py) - radius), width)
    if kind == "square":
        c, s = np.cos(angle), np.sin(angle)
        qx, qy = np.abs(px * c + py * s), np.abs(-px * s + py * c)
        half = radius / np.sqrt(2)  # corners on the circle of this radius, like the other shapes
        outside = np.hypot(np.maximum(qx - half, 0), np.maximum(qy - half, 0))
        inside = np.minimum(np.maximum(qx, qy) - half, 0)
        return _stroke(np.abs(outside + inside), width)
    raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPE_NAMES}")


def make_shapes(n: int = 1000, size: int = 28, noise: float = 0.1, classes=SHAPE_NAMES, seed: int = 0,
                dtype=np.float32):
    """``n`` images of shapes: returns X (n, 1, size, size) in [0, 1] and labels y (n,) int64.

    Labels index ``classes`` (default ``SHAPE_NAMES`` = bar, cross, circle, square), balanced
    and shuffled. Centre, radius (0.2 to 0.38 of the size), angle and stroke width (1.2 to
    2.5 pixels) are random; ``noise`` is the standard deviation of the Gaussian pixel noise.
    """
    if n <= 0 or size < 8:
        raise ValueError(f"make_shapes: expected n > 0 and size >= 8, got n={n}, size={size}")
    for c in classes:
        if c not in SHAPE_NAMES:
            raise ValueError(f"make_shapes: unknown class {c!r}; expected names from {SHAPE_NAMES}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % len(classes)).astype(np.int64)
    radius = rng.uniform(0.2, 0.38, n) * size
    margin = radius + 1.5
    cx = rng.uniform(margin, size - 1 - margin)
    cy = rng.uniform(margin, size - 1 - margin)
    angle = rng.uniform(0, np.pi, n)
    width = rng.uniform(1.2, 2.5, n)
    grid = np.arange(size, dtype=np.float64)
    X = np.zeros((n, size, size))
    for k, kind in enumerate(classes):
        idx = np.flatnonzero(y == k)
        if idx.size == 0:
            continue
        px = grid[None, None, :] - cx[idx, None, None]
        py = grid[None, :, None] - cy[idx, None, None]
        X[idx] = _draw(kind, px, py, radius[idx, None, None], angle[idx, None, None], width[idx, None, None])
    if noise:
        X += noise * rng.standard_normal(X.shape)
    return np.clip(X, 0.0, 1.0).astype(dtype)[:, None], y


def draw_shape(kind: str, size: int = 28, radius: float | None = None, angle: float = 0.3, width: float = 2.0,
               center=None) -> np.ndarray:
    """One noiseless (size, size) image of ``kind`` (bar, cross, circle or square), float64 in [0, 1]."""
    radius = 0.3 * size if radius is None else radius
    cx, cy = ((size - 1) / 2, (size - 1) / 2) if center is None else center
    grid = np.arange(size, dtype=np.float64)
    px = grid[None, None, :] - cx
    py = grid[None, :, None] - cy
    return _draw(kind, px, py, np.full((1, 1, 1), radius), np.full((1, 1, 1), angle), np.full((1, 1, 1), width))[0]
