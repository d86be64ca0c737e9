"""Central-difference gradient checking, for learners and for the tests.

``gradcheck`` compares the analytic gradients of a backward pass with numerical ones,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

where L = sum(output * g) for a fixed random upstream gradient g, and returns the relative
error ||analytic - numeric|| / (||analytic|| + ||numeric||) of every input and parameter.
In float64 a correct backward pass gives about 1e-9 or less; anything above 1e-5 is a bug.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .nn.loss import _Loss
from .nn.module import Module


def relative_error(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numerical_gradient(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences of the scalar function f() with respect to array x (changed in place, restored)."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        plus = f()
        flat[i] = old - eps
        minus = f()
        flat[i] = old
        gflat[i] = (plus - minus) / (2 * eps)
    return grad


@dataclass
class GradcheckResult:
    errors: dict = field(default_factory=dict)  # name -> relative error
    tol: float = 1e-6

    @property
    def max_error(self) -> float:
        return max(self.errors.values()) if self.errors else 0.0

    @property
    def ok(self) -> bool:
        return self.max_error < self.tol

    def __bool__(self) -> bool:
        return self.ok

    def __float__(self) -> float:
        return self.max_error

    def __str__(self) -> str:
        mark = "✓" if self.ok else "✗"
        parts = ", ".join(f"{k}: {v:.1e}" for k, v in self.errors.items())
        return f"gradcheck {mark}  max relative error {self.max_error:.2e} (tolerance {self.tol:.0e})  [{parts}]"

    __repr__ = __str__


def _require_float64(arr, what):
    if arr.dtype != np.float64:
        raise ValueError(f"gradcheck: expected float64 {what} (float32 round-off swamps the differences), "
                         f"got {arr.dtype}; call module.double() and pass float64 arrays")


def gradcheck(fn, *inputs, backward=None, eps: float = 1e-6, tol: float = 1e-6, seed: int = 0) -> GradcheckResult:
    """Check analytic gradients against central differences; return a :class:`GradcheckResult`.

    Three forms:

    * ``gradcheck(module, x)`` - a Module: checks dL/dx and every parameter gradient.
    * ``gradcheck(criterion, pred, target)`` - a loss: checks dL/dpred.
    * ``gradcheck(f, x, backward=df)`` - plain functions, ``y = f(x)`` and
      ``dx = df(x, grad_out)``, as in ``dlcourse.nn.functional``.

    The result is truthy when the largest relative error is below ``tol``;
    ``float(result)`` is that error.
    """
    rng = np.random.default_rng(seed)
    result = GradcheckResult(tol=tol)

    if isinstance(fn, _Loss):
        pred, target = (np.array(a, dtype=np.float64) if i == 0 else a for i, a in enumerate(inputs))
        _require_float64(pred, "predictions")
        fn.forward(pred, target)
        analytic = fn.backward()
        numeric = numerical_gradient(lambda: fn.forward(pred, target), pred, eps)
        result.errors["pred"] = relative_error(analytic, numeric)
        return result

    if isinstance(fn, Module):
        if len(inputs) != 1:
            raise ValueError(f"gradcheck: a Module takes one input array, got {len(inputs)}")
        x = np.array(inputs[0], dtype=np.float64)
        for name, p in fn.named_parameters():
            _require_float64(p.data, f"parameter '{name}'")
        out = fn.forward(x)
        out0 = out[0] if isinstance(out, tuple) else out
        g = rng.standard_normal(np.shape(out0))

        def scalar():
            y = fn.forward(x)
            return float(np.sum((y[0] if isinstance(y, tuple) else y) * g))

        fn.zero_grad()
        fn.forward(x)
        dx = fn.backward(g)
        analytic = {"input": dx} | {name: p.grad.copy() for name, p in fn.named_parameters()}
        result.errors["input"] = relative_error(analytic["input"], numerical_gradient(scalar, x, eps))
        for name, p in fn.named_parameters():
            result.errors[name] = relative_error(analytic[name], numerical_gradient(scalar, p.data, eps))
        return result

    if backward is None:
        raise ValueError("gradcheck: for a plain function pass backward=df, with df(x, grad_out) -> dx")
    x = np.array(inputs[0], dtype=np.float64)
    rest = inputs[1:]
    y = np.asarray(fn(x, *rest))
    g = rng.standard_normal(y.shape)
    analytic = backward(x, g, *rest)
    numeric = numerical_gradient(lambda: float(np.sum(np.asarray(fn(x, *rest)) * g)), x, eps)
    result.errors["input"] = relative_error(analytic, numeric)
    return result
