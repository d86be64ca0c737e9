"""Central-difference gradient checking, for learners and for the tests.

``gradcheck`` compares the analytic gradients of a backward pass with numerical ones,

    dL/dx_i  ~  (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

where L = sum(output * g) for a fixed random upstream gradient g, and returns the relative
error of every input and parameter gradient,

    ||analytic - numeric|| / max(||analytic|| + ||numeric||, 1e-3 * largest such sum in the check).

The floor matters for a gradient that is truly zero (the bias of a Linear layer followed by
BatchNorm in training mode: BatchNorm subtracts the batch mean, so the bias cancels). Both sides
are then round-off, and a plain relative error would report 1.0 for a correct model; measured
against the scale of the model's other gradients it reports the round-off (~1e-10).
In float64 a correct backward pass gives about 1e-9 or less; anything above 1e-5 is a bug.

The model is left as it was found: parameters, gradients, buffers (BatchNorm's running
statistics and ``num_batches_tracked``, which every extra forward in training mode would move)
and the train/eval mode. A model whose forward is random (Dropout, or a recurrent layer's
dropout, in training mode) is refused: central differences need the same function at every
evaluation. Call ``model.eval()`` first (dropout is then the identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .nn.loss import _Loss
from .nn.module import Module, input_grad_mode


def relative_error(a, b, floor: float = 0.0) -> float:
    """||a - b|| / max(||a|| + ||b||, floor); 0 when both are zero."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error: expected arrays of the same shape, got {a.shape} and {b.shape}")
    denom = max(np.linalg.norm(a) + np.linalg.norm(b), floor)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def _errors_against_scale(pairs: dict) -> dict:
    """Relative error of each (analytic, numeric) pair, floored at 1e-3 of the largest gradient's size."""
    sizes = [np.linalg.norm(np.asarray(a, np.float64)) + np.linalg.norm(np.asarray(n, np.float64))
             for a, n in pairs.values()]
    floor = 1e-3 * max(sizes, default=0.0)
    return {name: relative_error(a, n, floor) for name, (a, n) in pairs.items()}


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
    _refuse_foreign(fn)
    rng = np.random.default_rng(seed)
    result = GradcheckResult(tol=tol)

    if isinstance(fn, _Loss):
        pred, target = (np.array(a, dtype=np.float64) if i == 0 else a for i, a in enumerate(inputs))
        _require_float64(pred, "predictions")
        fn.forward(pred, target)
        analytic = fn.backward()
        numeric = numerical_gradient(lambda: fn.forward(pred, target), pred, eps)
        result.errors.update(_errors_against_scale({"pred": (analytic, numeric)}))
        return result

    if isinstance(fn, Module):
        if len(inputs) != 1:
            raise ValueError(f"gradcheck: a Module takes one input array, got {len(inputs)}")
        x = np.array(inputs[0], dtype=np.float64)
        for name, p in fn.named_parameters():
            _require_float64(p.data, f"parameter '{name}'")
        saved = _snapshot(fn)
        try:
            with input_grad_mode(fn, True):
                result.errors.update(_check_module(fn, x, rng, eps))
        finally:
            _restore(fn, saved)
        return result

    if backward is None:
        raise ValueError("gradcheck: for a plain function pass backward=df, with df(x, grad_out) -> dx")
    x = np.array(inputs[0], dtype=np.float64)
    rest = inputs[1:]
    y = np.asarray(fn(x, *rest))
    g = rng.standard_normal(y.shape)
    analytic = backward(x, g, *rest)
    numeric = numerical_gradient(lambda: float(np.sum(np.asarray(fn(x, *rest)) * g)), x, eps)
    result.errors.update(_errors_against_scale({"input": (analytic, numeric)}))
    return result


def _refuse_foreign(fn) -> None:
    """A torch module (or any non-dlcourse model) cannot be checked here: say so clearly."""
    if isinstance(fn, Module):
        return
    kind = type(fn)
    if kind.__module__.split(".")[0] == "torch" or (hasattr(fn, "parameters") and hasattr(fn, "state_dict")):
        raise TypeError(f"gradcheck: expected a dlcourse Module, loss or function, got {kind.__module__}."
                        f"{kind.__name__} (a PyTorch module has no NumPy backward to check; use "
                        "torch.autograd.gradcheck for it, or gradcheck its dlcourse twin)")
    if not callable(fn):
        raise TypeError(f"gradcheck: expected a dlcourse Module, loss or function, got {kind.__name__}")


def _output(y):
    return y[0] if isinstance(y, tuple) else y


def _check_module(fn: Module, x: np.ndarray, rng, eps: float) -> dict:
    # A layer known to draw random numbers in training mode (dropout p > 0) is refused outright: comparing two
    # forward passes alone misses it when both happen to draw the same mask (1 time in 256 for 8 units).
    random_layers = [type(m).__name__ for m in fn.modules() if m.training and any(
        isinstance(v, (int, float)) and v > 0 for v in (getattr(m, "p", 0), getattr(m, "dropout", 0)))]
    out = np.asarray(_output(fn.forward(x))) if not random_layers else None
    again = np.asarray(_output(fn.forward(x))) if not random_layers else None
    if random_layers or out.shape != again.shape or not np.array_equal(out, again):
        random_layers = random_layers or [type(fn).__name__]
        raise ValueError(f"gradcheck: the model's forward gives a different output for the same input "
                         f"({', '.join(random_layers)} in training mode draws new random numbers every call), so "
                         "central differences would compare different functions. Call model.eval() first "
                         "(dropout is then the identity) or check the model without its random layers")
    g = rng.standard_normal(out.shape)

    def scalar():
        return float(np.sum(_output(fn.forward(x)) * g))

    fn.zero_grad()
    fn.forward(x)
    dx = fn.backward(g)
    pairs = {"input": (dx, numerical_gradient(scalar, x, eps))}
    for name, p in fn.named_parameters():
        analytic = np.zeros_like(p.data) if p.grad is None else p.grad.copy()
        pairs[name] = (analytic, numerical_gradient(scalar, p.data, eps))
    return _errors_against_scale(pairs)


def _snapshot(model: Module) -> dict:
    """Copies of everything gradcheck's forwards and backwards may change, to put back afterwards."""
    return {
        "params": [(p, p.data.copy(), None if p.grad is None else p.grad.copy()) for p in model.parameters()],
        "buffers": [(m, name, np.array(getattr(m, name), copy=True)) for m in model.modules()
                    for name in m._buffers if getattr(m, name) is not None],
        "training": [(m, m.training) for m in model.modules()],
    }


def _restore(model: Module, saved: dict) -> None:
    for p, data, grad in saved["params"]:
        p.data[...] = data
        p.grad = grad
    for m, name, value in saved["buffers"]:
        current = getattr(m, name)
        if isinstance(current, np.ndarray) and current.shape == value.shape:
            current[...] = value  # in place: whoever holds the buffer sees the old values again
        else:
            setattr(m, name, value)
    for m, mode in saved["training"]:
        object.__setattr__(m, "training", mode)
