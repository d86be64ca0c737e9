"""Mini-batches and splits, as ``torch.utils.data`` would give them, on plain arrays."""

from __future__ import annotations

import math

import numpy as np


def train_val_split(*arrays, val_fraction: float = 0.1, seed: int = 0, stratify=None):
    """Shuffle and split arrays of equal length: returns (a_train, a_val, b_train, b_val, ...).

    With ``stratify`` (a label array), each class keeps its share in both parts.
    Lists are split as NumPy arrays. A split that leaves either part empty (``val_fraction=0.05`` of 5
    samples rounds to 0) is a ValueError with the numbers (``torch.utils.data.random_split`` only warns).
    """
    if not arrays:
        raise ValueError("train_val_split: expected at least one array")
    arrays = tuple(np.asarray(a) if isinstance(a, (list, tuple)) else a for a in arrays)
    n = len(arrays[0])
    for a in arrays:
        if len(a) != n:
            raise ValueError(f"train_val_split: expected arrays of equal length {n}, got {len(a)}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"train_val_split: expected 0 < val_fraction < 1, got {val_fraction}")
    rng = np.random.default_rng(seed)
    if stratify is None:
        perm = rng.permutation(n)
        n_val = int(round(n * val_fraction))
        val_idx, train_idx = perm[:n_val], perm[n_val:]
    else:
        stratify = np.asarray(stratify)
        val_parts, train_parts = [], []
        for c in np.unique(stratify):
            idx = rng.permutation(np.flatnonzero(stratify == c))
            k = int(round(len(idx) * val_fraction))
            val_parts.append(idx[:k])
            train_parts.append(idx[k:])
        val_idx = rng.permutation(np.concatenate(val_parts))
        train_idx = rng.permutation(np.concatenate(train_parts))
    if len(val_idx) == 0 or len(train_idx) == 0:
        empty = "validation" if len(val_idx) == 0 else "training"
        raise ValueError(f"train_val_split: val_fraction={val_fraction} of {n} samples gives {len(val_idx)} validation "
                         f"and {len(train_idx)} training samples: the {empty} set would be empty (each part is "
                         f"rounded{' per class' if stratify is not None else ''}); choose val_fraction so that both "
                         "get at least one")
    out = []
    for a in arrays:
        out += [a[train_idx], a[val_idx]]
    return tuple(out)


class BatchIterator:
    """Iterate over mini-batches of arrays: ``for xb, yb in BatchIterator(X, y, batch_size=64)``.

    ``shuffle`` draws a new order each epoch from its own seeded generator; ``drop_last``
    drops a final smaller batch. ``len()`` is the number of batches per epoch. Python lists are
    converted to NumPy arrays once, up front.
    """

    def __init__(self, *arrays, batch_size: int = 64, shuffle: bool = True, drop_last: bool = False, seed: int = 0):
        if not arrays:
            raise ValueError("BatchIterator: expected at least one array")
        # Lists become arrays: a shuffled batch is gathered with an index array, which lists do not take.
        arrays = tuple(np.asarray(a) if isinstance(a, (list, tuple)) else a for a in arrays)
        if isinstance(batch_size, (bool, np.bool_)) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"BatchIterator: expected an integer batch_size, got {type(batch_size).__name__} "
                            f"{batch_size!r}")
        n = len(arrays[0])
        for a in arrays:
            if len(a) != n:
                raise ValueError(f"BatchIterator: expected arrays of equal length {n}, got {len(a)}")
        if batch_size <= 0:
            raise ValueError(f"BatchIterator: expected batch_size > 0, got {batch_size}")
        self.arrays, self.n, self.batch_size = arrays, n, batch_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            batch = tuple(a[idx] for a in self.arrays)
            yield batch if len(batch) > 1 else batch[0]
