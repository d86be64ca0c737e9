"""Input checks that turn bad input into a ValueError naming what was expected and what came."""

from __future__ import annotations

import numpy as np


class NonFiniteLossError(ValueError):
    """The loss (or the prediction it was computed from) is NaN or infinite."""


class NonFiniteInputError(NonFiniteLossError):
    """A layer's input holds NaN or inf: bad data, or an earlier layer whose weights diverged.

    A subclass of :class:`NonFiniteLossError`, so training loops that report "diverged at step k"
    keep doing so when the NaN shows up in a layer before it reaches the loss.
    """


def as_array(x, name: str = "input") -> np.ndarray:
    """Convert ``x`` to a floating ndarray (torch tensors included) or raise ValueError."""
    if type(x) is np.ndarray and x.dtype.kind == "f":  # the common case, on every layer call: nothing to do
        return x
    if hasattr(x, "detach") and hasattr(x, "numpy"):  # a torch tensor
        x = to_numpy(x, name)
    try:
        arr = np.asarray(x)
    except Exception as err:  # pragma: no cover - exotic objects
        raise ValueError(f"{name}: expected an array, got {type(x).__name__}") from err
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise ValueError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: expected real numbers, got complex dtype {arr.dtype} "
                         "(dlcourse does not silently drop the imaginary part; pass x.real if that is what you mean)")
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64 if arr.dtype.itemsize >= 8 else np.float32)
    return arr


def as_grad(grad, shape: tuple, owner: str, what: str = "grad_out", none_ok: bool = False):
    """The upstream gradient of a backward pass as a floating ndarray of exactly ``shape``.

    ``owner`` ("Linear.backward") and ``what`` ("grad_out") name it in the error. A torch tensor is
    converted; a scalar is accepted for a scalar output (a loss); ``None`` only where ``none_ok``.
    """
    if grad is None:
        if none_ok:
            return None
        raise ValueError(f"{owner}: expected {what} of shape {shape} (the output's shape), got None")
    if isinstance(grad, (str, bytes, dict, set)) or callable(grad):
        raise TypeError(f"{owner}: expected {what} as an array of shape {shape}, got {type(grad).__name__}")
    arr = as_array(grad, f"{owner} {what}")
    if arr.shape != tuple(shape):
        if tuple(shape) == () and arr.size == 1:
            return arr.reshape(())
        raise ValueError(f"{owner}: expected {what} of shape {tuple(shape)} (the shape of the output of the last "
                         f"forward), got shape {arr.shape}")
    return arr


def check_nonempty(x: np.ndarray, name: str) -> None:
    if x.ndim and x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {x.shape}")


def check_finite(x: np.ndarray, name: str) -> None:
    """Raise ValueError naming ``name``, the first NaN/inf value and its index (cheap when all is finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(x, axis=None)  # finite iff every value is (or a huge sum overflowed: look closer)
    if np.isfinite(total):
        return
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise NonFiniteInputError(f"{name}: expected finite values, got {x[tuple(bad)]} at index "
                                  f"{tuple(int(i) for i in bad)} (NaN/inf in the data, or from an earlier layer "
                                  "whose weights have diverged)")


def to_numpy(x, name: str = "input") -> np.ndarray:
    """A NumPy view of an array or a torch tensor (moved to the CPU if needed).

    A floating tensor of a dtype NumPy lacks (bfloat16, the float8 kinds) comes as float32, which holds
    its values exactly; any other tensor NumPy cannot hold is a TypeError naming ``name`` and the dtype.
    """
    if hasattr(x, "detach"):
        t = x.detach().cpu()
        try:
            return t.numpy()
        except TypeError as err:
            if t.is_floating_point() and t.element_size() <= 2:
                return t.float().numpy()
            raise TypeError(f"{name}: NumPy has no dtype for a torch tensor of dtype {t.dtype}; convert it first "
                            "(tensor.float() or tensor.double())") from err
    return np.asarray(x)
