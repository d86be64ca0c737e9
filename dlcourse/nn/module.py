"""``Module`` and ``Sequential``: the containers every layer of the course builds on.

The contract of every layer (stated once here, as for ``torch.nn.Module``):

* ``forward(x)`` computes the output and caches what the backward pass needs;
  ``module(x)`` is the same call.
* ``backward(grad_out)`` takes dLoss/dOutput (the shape of the output) and returns
  dLoss/dInput (the shape of the input). It *adds* each parameter's gradient into
  ``Parameter.grad``, so gradients of several backward passes accumulate, as in PyTorch.
* Parameters and buffers carry PyTorch's names and shapes, so ``state_dict()`` moves
  between a dlcourse model and its ``torch.nn`` twin in both directions.

Skipping the input gradient (what autograd does for an input without ``requires_grad``):
every module has ``needs_input_grad`` (True by default, the contract above). Set it to False
on a network whose input is data, ``model.needs_input_grad = False``, and ``backward`` skips
dLoss/dInput and returns None: a :class:`Sequential` then stops at its first layer with
parameters (layers before it need no gradient at all) and asks that layer for its parameter
gradients only. Layers whose input gradient costs real work (``Linear``, ``Conv2d``, the
recurrent layers) skip it; for the 784-256-10 MLP that is a third of a training step's
arithmetic. :func:`input_grad_mode` sets the flag for the duration of a ``with`` block, e.g. for
``compare`` and ``gradcheck``, which always need dLoss/dInput.
"""

from __future__ import annotations

from collections import OrderedDict
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .._checks import to_numpy
from ._guard import guard_backward, guard_forward
from .parameter import Parameter


class Module:
    #: Whether ``backward`` must return dLoss/dInput. False: the caller does not need it (the
    #: input is data), and layers with parameters skip it and return None. Set per instance.
    needs_input_grad = True

    def __init_subclass__(cls, **kwargs):
        # Every layer's forward/backward get the shared checks of ``_guard``: grad_out's shape and
        # type, and no second backward after one forward (parameter gradients would double).
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = guard_forward(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.backward = guard_backward(cls.__dict__["backward"])

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration: assigning a Parameter or Module attribute registers it -------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            self._buffers[name] = value  # e.g. self.running_mean = new_array stays a buffer
            object.__setattr__(self, name, value)
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A state array that is saved in ``state_dict`` but not trained (e.g. running means)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # -- forward / backward ---------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- traversal ------------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def modules(self) -> Iterator["Module"]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> Iterator[Parameter]:
        for _, p in self.named_parameters():
            yield p

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        for mod_name, mod in self.named_modules(prefix):
            for name in mod._buffers:
                yield (f"{mod_name}.{name}" if mod_name else name), getattr(mod, name)

    def num_parameters(self) -> int:
        return sum(p.data.size for p in self.parameters())

    # -- training helpers -----------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            p.zero_grad(set_to_none)

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def to(self, dtype) -> "Module":
        """Cast every parameter and floating buffer to ``dtype`` (``np.float32``/``np.float64``)."""
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None if p.grad is None else p.grad.astype(dtype)
        for mod in self.modules():
            for name in list(mod._buffers):
                value = getattr(mod, name)
                if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
                    mod._buffers[name] = value.astype(dtype)
                    object.__setattr__(mod, name, mod._buffers[name])
        return self

    def double(self) -> "Module":
        return self.to(np.float64)

    def float(self) -> "Module":
        return self.to(np.float32)

    # -- state dict -----------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """Copies of every parameter and buffer, under PyTorch's names (``0.weight``, ...)."""
        state = OrderedDict()
        for mod_name, mod in self.named_modules():
            for name, p in mod._parameters.items():
                state[f"{mod_name}.{name}" if mod_name else name] = p.data.copy()
            for name in mod._buffers:
                value = getattr(mod, name)
                state[f"{mod_name}.{name}" if mod_name else name] = np.array(value, copy=True)
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> "Module":
        """Load arrays (NumPy or torch tensors) by name; each takes the incoming dtype.

        Shapes must match exactly; with ``strict`` the set of names must match too.
        """
        incoming = _incoming_state(state_dict)
        own = {}
        for mod_name, mod in self.named_modules():
            for name in list(mod._parameters) + list(mod._buffers):
                own[f"{mod_name}.{name}" if mod_name else name] = (mod, name)
        if strict:
            missing = sorted(set(own) - set(incoming))
            unexpected = sorted(set(incoming) - set(own))
            if missing or unexpected:
                raise ValueError(f"load_state_dict: expected keys {sorted(own)}, "
                                 f"missing {missing}, unexpected {unexpected}")
        for key, value in incoming.items():
            if key not in own:
                continue
            mod, name = own[key]
            if name in mod._parameters:
                p = mod._parameters[name]
                if p.data.shape != value.shape:
                    raise ValueError(f"load_state_dict: '{key}' expected shape {p.data.shape}, "
                                     f"got {value.shape}")
                if not np.issubdtype(value.dtype, np.floating):  # integer weights: the parameter's float dtype
                    value = value.astype(p.data.dtype)
                p.data = np.array(value, copy=True)
                p.grad = None
            else:
                old = getattr(mod, name)
                if np.shape(old) != value.shape:
                    raise ValueError(f"load_state_dict: buffer '{key}' expected shape {np.shape(old)}, "
                                     f"got {value.shape}")
                new = np.array(value, copy=True)
                mod._buffers[name] = new
                object.__setattr__(mod, name, new)
        return self

    # -- printing -------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child_repr}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


def _incoming_state(state_dict) -> dict:
    """A state dict's arrays as NumPy, or a TypeError/ValueError that says what came instead."""
    if isinstance(state_dict, Module) or (hasattr(state_dict, "state_dict") and callable(state_dict.state_dict)):
        raise TypeError(f"load_state_dict: expected a state dict (names -> arrays), got a model "
                        f"({type(state_dict).__module__}.{type(state_dict).__name__}); pass model.state_dict()")
    if not hasattr(state_dict, "items") or not hasattr(state_dict, "keys"):
        raise TypeError(f"load_state_dict: expected a state dict (a mapping of names to arrays, as "
                        f"model.state_dict() returns), got {type(state_dict).__name__}")
    incoming = {}
    for key, value in state_dict.items():
        arr = to_numpy(value)
        if arr.dtype == object or np.issubdtype(arr.dtype, np.complexfloating) or arr.dtype.kind in "USV":
            raise ValueError(f"load_state_dict: '{key}' expected a real numeric array, got dtype {arr.dtype}")
        incoming[key] = arr
    return incoming


class Sequential(Module):
    """Modules applied in order; ``backward`` runs them in reverse. Children are named 0, 1, ..."""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, m in enumerate(modules):
            if not isinstance(m, Module):
                raise ValueError(f"Sequential: expected Module arguments, got {type(m).__name__} at position {i}")
            setattr(self, str(i), m)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, idx):
        mods = list(self._modules.values())
        if isinstance(idx, slice):
            return Sequential(*mods[idx])
        return mods[idx]

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module: Module) -> "Sequential":
        setattr(self, str(len(self)), module)
        return self

    def forward(self, x):
        for m in self._modules.values():
            x = m.forward(x)
        return x

    def backward(self, grad_out):
        """Run every layer's backward in reverse and return dLoss/dInput.

        With ``needs_input_grad = False`` nobody needs dLoss/dInput: the pass stops at the first
        layer that has parameters, which computes its parameter gradients only, and returns None.
        """
        layers = list(self._modules.values())
        if self.needs_input_grad:
            for m in reversed(layers):
                grad_out = m.backward(grad_out)
            return grad_out
        first = next((k for k, m in enumerate(layers) if any(p.requires_grad for p in m.parameters())), None)
        if first is None:  # nothing to train before this point and nobody needs dx: no work at all
            return None
        for m in reversed(layers[first + 1:]):
            grad_out = m.backward(grad_out)
        with input_grad_mode(layers[first], False):
            layers[first].backward(grad_out)
        return None

    def extra_repr(self) -> str:
        return "" if self.needs_input_grad else "needs_input_grad=False"


@contextmanager
def input_grad_mode(module: Module, enabled: bool = True):
    """Within the block, ``module.needs_input_grad`` is ``enabled``; afterwards it is restored.

    ``with input_grad_mode(model): dx = model.backward(g)`` gets dLoss/dInput even from a model
    trained with ``needs_input_grad = False`` (as ``compare`` and ``gradcheck`` need).
    """
    had_own = "needs_input_grad" in module.__dict__
    saved = module.needs_input_grad
    module.needs_input_grad = bool(enabled)
    try:
        yield module
    finally:
        if had_own:
            module.needs_input_grad = saved
        else:
            del module.__dict__["needs_input_grad"]  # back to the class default
