"""Gradient utilities (``torch.nn.utils``): clip the gradients of a model's parameters in place.

``clip_grad_norm_`` rescales all gradients together so that their joint norm is at most
``max_norm``: with total norm N = ||(||g_1||, ..., ||g_k||)||_p, every gradient is multiplied
by min(1, max_norm / (N + 1e-6)), PyTorch's formula. The direction of the joint gradient is
kept; only its length is capped (the standard cure for exploding gradients in RNNs).
"""

from __future__ import annotations

import math

import numpy as np

from .parameter import Parameter


class NonFiniteGradNormError(RuntimeError, ValueError):
    """The total gradient norm is NaN or infinite (raised when ``error_if_nonfinite=True``)."""


def _as_param_list(parameters, name):
    if isinstance(parameters, Parameter):
        return [parameters]
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise ValueError(f"{name}: expected Parameters (e.g. model.parameters()), got {type(p).__name__} "
                             f"at position {i}")
    return params


def get_total_norm(grads, norm_type: float = 2.0) -> float:
    """The p-norm of the per-array p-norms of ``grads`` (= the norm of all entries together)."""
    norm_type = float(norm_type)
    if not grads:
        return 0.0
    if norm_type == math.inf:
        return float(max(np.max(np.abs(g)) if g.size else 0.0 for g in grads))
    if norm_type <= 0:
        raise ValueError(f"clip_grad_norm_: expected norm_type > 0 (or inf), got {norm_type}")
    norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) if g.size else 0.0 for g in grads], dtype=np.float64)
    return float(np.linalg.norm(norms, ord=norm_type))


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False,
                    foreach=None) -> float:
    """Scale the gradients of ``parameters`` in place so that their total norm is at most ``max_norm``.

    Returns the total norm *before* clipping (a Python float), as ``torch.nn.utils.clip_grad_norm_``
    returns it as a tensor. Parameters whose ``.grad`` is None are skipped.
    """
    params = _as_param_list(parameters, "clip_grad_norm_")
    max_norm = float(max_norm)
    if max_norm < 0:
        raise ValueError(f"clip_grad_norm_: expected max_norm >= 0, got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total_norm):
        raise NonFiniteGradNormError(
            f"clip_grad_norm_: the total norm of order {float(norm_type)} of the gradients is {total_norm}, so it "
            "cannot be clipped (training has diverged, or the loss is NaN); set error_if_nonfinite=False to scale "
            "by it anyway")
    clip_coef = min(max_norm / (total_norm + 1e-6), 1.0) if not math.isnan(total_norm) else math.nan
    for g in grads:
        g *= clip_coef
    return total_norm


def clip_grad_value_(parameters, clip_value: float, foreach=None) -> None:
    """Clamp every gradient entry into [-clip_value, clip_value] in place (``torch.nn.utils.clip_grad_value_``)."""
    params = _as_param_list(parameters, "clip_grad_value_")
    clip_value = float(clip_value)
    for p in params:
        if p.grad is not None:
            np.clip(p.grad, -clip_value, clip_value, out=p.grad)


__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "NonFiniteGradNormError"]
