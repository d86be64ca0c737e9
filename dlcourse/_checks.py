"""Input checks that turn bad input into a ValueError naming what was expected and what came."""

from __future__ import annotations

import numpy as np


def as_array(x, name: str = "input") -> np.ndarray:
    """Convert ``x`` to a floating ndarray (torch tensors included) or raise ValueError."""
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic objects
        raise ValueError(f"{name}: expected an array, got {type(x).__name__}") from err
    if arr.dtype == object:
        raise ValueError(f"{name}: expected a numeric array, got dtype object")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64 if arr.dtype.itemsize >= 8 else np.float32)
    return arr


def check_ndim(x: np.ndarray, ndims, name: str, layout: str) -> None:
    if x.ndim not in ndims:
        raise ValueError(f"{name}: expected a {layout} array ({' or '.join(f'{d}-D' for d in ndims)}), "
                         f"got shape {x.shape}")


def check_nonempty(x: np.ndarray, name: str) -> None:
    if x.ndim and x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {x.shape}")


def check_finite(x: np.ndarray, name: str) -> None:
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(f"{name}: expected finite values, got {x[tuple(bad)]} at index {tuple(int(i) for i in bad)}")


def to_numpy(x) -> np.ndarray:
    """A NumPy view of an array or a torch tensor (moved to the CPU if needed)."""
    if hasattr(x, "detach"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
