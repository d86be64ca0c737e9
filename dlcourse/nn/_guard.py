"""What every layer's ``forward`` and ``backward`` check, added once for all of them.

:class:`~dlcourse.nn.Module` wraps the ``forward`` and ``backward`` of every subclass (its
``__init_subclass__``), so a layer written for the course, or by a learner, gets these checks
without a line of its own:

* ``forward`` remembers the shape of its output (the first one, for layers that return a tuple).
* ``backward(grad_out)`` accepts a NumPy array, an array-like (a list) or a torch tensor
  (converted), and raises a ``ValueError`` that names the layer, the shape it expected (the output's)
  and the shape that came, instead of letting NumPy broadcast a wrongly shaped gradient into a
  wrong answer. Integer gradients become floats; complex ones are refused.
* A second ``backward`` after one ``forward`` of a layer with parameters is refused: it would add
  the parameter gradients twice. PyTorch refuses it too ("Trying to backward through the graph a
  second time"); as there, ``backward(grad_out, retain_graph=True)`` keeps the pass available.

Only the outermost call checks: a subclass whose ``forward`` calls ``super().forward`` is checked once.
"""

from __future__ import annotations

import functools
import inspect

from .._checks import as_grad

_MISSING = object()
_retaining = [0]  # > 0 while a backward(..., retain_graph=True) runs: its sub-layers keep their pass too


def _has_parameters(module) -> bool:
    return any(True for _ in module.parameters())


def guard_forward(fn):
    @functools.wraps(fn)
    def forward(self, *args, **kwargs):
        state = self.__dict__
        depth = state.get("_guard_depth", 0)
        state["_guard_depth"] = depth + 1
        try:
            out = fn(self, *args, **kwargs)
        finally:
            state["_guard_depth"] = depth
        if depth == 0:
            first = out[0] if isinstance(out, tuple) and out else out
            state["_out_shape"] = None if first is None else tuple(getattr(first, "shape", ()))
            state["_backward_ready"] = True
        return out

    return forward


def guard_backward(fn):
    params = list(inspect.signature(fn).parameters.values())[1:]
    first = params[0] if params and params[0].kind in (params[0].POSITIONAL_ONLY,
                                                       params[0].POSITIONAL_OR_KEYWORD) else None
    none_ok = first is not None and first.default is None

    @functools.wraps(fn)
    def backward(self, *args, retain_graph: bool = False, **kwargs):
        state = self.__dict__
        depth = state.get("_guard_depth", 0)
        if depth == 0 and first is not None:
            name = type(self).__name__
            if "_out_shape" not in state:
                raise RuntimeError(f"{name}.backward called before forward")
            grad = args[0] if args else kwargs.get(first.name, _MISSING)
            if grad is not _MISSING and state["_out_shape"] is not None:
                grad = as_grad(grad, state["_out_shape"], f"{name}.backward", first.name, none_ok)
                if args:
                    args = (grad,) + args[1:]
                else:
                    kwargs[first.name] = grad
            if not state.get("_backward_ready", False) and _has_parameters(self):
                raise RuntimeError(
                    f"{name}.backward called a second time after one forward: the parameter gradients would "
                    "be added twice. Call forward again first (as PyTorch, which frees the graph after one "
                    "backward), or pass retain_graph=True to the first backward if you mean to accumulate")
        retain = bool(retain_graph) or _retaining[0] > 0
        state["_guard_depth"] = depth + 1
        _retaining[0] += bool(retain_graph)
        try:
            result = fn(self, *args, **kwargs)
        finally:
            state["_guard_depth"] = depth
            _retaining[0] -= bool(retain_graph)
        if depth == 0:
            state["_backward_ready"] = retain
        return result

    return backward
