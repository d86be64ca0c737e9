"""Transforms of image batches in NumPy: standardising MNIST-style uint8 images, random shifts.

* :func:`preprocess`: uint8 images (N, H, W) -> standardised float32, flat (N, H*W) for an MLP or
  (N, 1, H, W) for a CNN (``torchvision.transforms.ToTensor`` + ``Normalize``, on a whole batch).
* :func:`random_shift`: light augmentation, each image moved by up to ``max_shift`` pixels
  (``torchvision.transforms.RandomAffine(0, translate=...)`` with whole-pixel shifts), vectorised.
  Its signature ``random_shift(x, rng, ...)`` fits ``dlcourse.train.fit(augment=...)`` after a
  ``lambda xb, rng: random_shift(xb, rng, 2)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Mean and standard deviation of MNIST's training pixels after /255 (chapter 7 recomputes them).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081


def preprocess(images, flatten: bool = False, mean: float = MNIST_MEAN, std: float = MNIST_STD,
               dtype=np.float32) -> np.ndarray:
    """uint8 images (N, 28, 28) -> (x / 255 - mean) / std, as (N, 784) or (N, 1, 28, 28), float32."""
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"preprocess: expected images of shape (N, H, W), got {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"preprocess: expected uint8 pixel values 0..255 (as load_mnist returns them), "
                         f"got dtype {images.dtype}")
    x = images.astype(dtype)
    x *= dtype(1 / (255 * std))
    x -= dtype(mean / std)
    return x.reshape(len(x), -1) if flatten else x[:, None]


def _generator(rng) -> np.random.Generator:
    """A Generator as it is; an int seed (or a SeedSequence) through ``np.random.default_rng``, as NumPy takes them."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (bool, np.bool_)) or not isinstance(rng, (int, np.integer, np.random.SeedSequence)):
        raise TypeError(f"random_shift: expected rng as a np.random.Generator or an integer seed, got "
                        f"{type(rng).__name__} {rng!r}")
    return np.random.default_rng(rng)


def random_shift(x, rng, max_shift: int = 2, fill=None) -> np.ndarray:
    """Move each image by a random whole number of pixels in [-max_shift, max_shift] in x and y.

    x: (N, C, H, W), (N, H, W) or flat (N, H*W) with square images; returns a new array of
    the same shape. Pixels that come in from the border take ``fill`` (default: the smallest
    value in the batch, the background of MNIST, also after standardisation). Vectorised:
    one padded copy, one strided view of every possible shift, one fancy-indexed gather.
    ``rng``: a ``np.random.Generator`` (as ``fit`` passes it) or a seed for ``np.random.default_rng``.
    """
    rng = _generator(rng)
    x = np.asarray(x)
    shape = x.shape
    if x.ndim == 2:
        side = math.isqrt(shape[1])
        if side * side != shape[1]:
            raise ValueError(f"random_shift: flat images must be square (N, H*W), got {shape}")
        imgs = x.reshape(len(x), 1, side, side)
    elif x.ndim == 3:
        imgs = x[:, None]
    elif x.ndim == 4:
        imgs = x
    else:
        raise ValueError(f"random_shift: expected images (N, C, H, W), (N, H, W) or (N, H*W), got {shape}")
    if max_shift < 0:
        raise ValueError(f"random_shift: expected max_shift >= 0, got {max_shift}")
    if max_shift == 0 or len(x) == 0:
        return x.copy()
    n, c, h, w = imgs.shape
    s = max_shift
    fill = imgs.min() if fill is None else fill
    padded = np.full((n, c, h + 2 * s, w + 2 * s), fill, dtype=imgs.dtype)
    padded[:, :, s:s + h, s:s + w] = imgs
    windows = sliding_window_view(padded, (h, w), axis=(2, 3))  # (n, c, 2s+1, 2s+1, h, w), a view
    dy, dx = rng.integers(0, 2 * s + 1, size=(2, n))
    shifted = windows[np.arange(n), :, dy, dx]  # (n, c, h, w)
    return shifted.reshape(shape)
