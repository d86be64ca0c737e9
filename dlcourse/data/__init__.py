"""``dlcourse.data``: toy data sets made in NumPy, mini-batching and splits, transforms (MNIST in chapter 7)."""

from .loader import BatchIterator, train_val_split
from .mnist import load_mnist
from .sequences import make_adding_problem, make_sine_waves
from .shapes import draw_shape, make_shapes
from .toy import (
    make_blobs,
    make_circles,
    make_linearly_separable,
    make_moons,
    make_regression_1d,
    make_spirals,
    make_xor,
)
from .transforms import preprocess, random_shift

__all__ = [
    "BatchIterator", "train_val_split", "load_mnist",
    "make_blobs", "make_circles", "make_linearly_separable", "make_moons", "make_regression_1d",
    "make_spirals", "make_xor", "make_shapes", "draw_shape", "make_sine_waves", "make_adding_problem",
    "preprocess", "random_shift",
]
