"""``Module`` and ``Sequential``: the containers every layer of the course builds on.

The contract of every layer (stated once here, as for ``torch.nn.Module``):

* ``forward(x)`` computes the output and caches what the backward pass needs;
  ``module(x)`` is the same call.
* ``backward(grad_out)`` takes dLoss/dOutput (the shape of the output) and returns
  dLoss/dInput (the shape of the input). It *adds* each parameter's gradient into
  ``Parameter.grad``, so gradients of several backward passes accumulate, as in PyTorch.
* Parameters and buffers carry PyTorch's names and shapes, so ``state_dict()`` moves
  between a dlcourse model and its ``torch.nn`` twin in both directions.

The choke point: two lines in every layer, so that reading a layer shows all that runs::

    class Double(Module):                                      # y = 2 x
        def forward(self, x):
            return self.end_forward(2 * x)                     # the last line of every forward

        def backward(self, grad_out, retain_graph=False):
            grad_out = self.begin_backward(grad_out, retain_graph)  # the first line of every backward
            return 2 * grad_out

* ``forward`` ends with ``return self.end_forward(out)``: it records the output's shape (of its
  first item, for a layer that returns a tuple) and opens one backward pass; ``out`` comes back
  unchanged.
* ``backward(self, grad_out, retain_graph=False)`` starts with
  ``grad_out = self.begin_backward(grad_out, retain_graph)``, which

  - raises ``RuntimeError("<Layer>.backward called before forward")``;
  - converts grad_out to a real floating ndarray (a list or a torch tensor is accepted; complex
    is refused) and raises a ValueError naming the layer, the output's shape and the shape that came,
    instead of letting NumPy broadcast a wrongly shaped gradient into a wrong answer;
  - refuses a second backward after one forward of a layer with parameters, whose gradients would be
    added twice (PyTorch frees the graph: "Trying to backward through the graph a second time"). As
    there, ``backward(grad_out, retain_graph=True)`` keeps the pass open, for the layer and for every
    sub-layer it contains.

  A backward whose gradient may be None (a loss's ``backward()``, a recurrent layer's ``grad_out``
  when only the final state gets a gradient) passes ``optional=True``.
* A subclass that hands its whole pass to ``super().forward`` / ``super().backward`` calls neither
  method itself: the parent's lines run once.
* ``module(x)`` is ``module.forward(x)`` (as ``torch.nn.Module.__call__``); either goes through the
  same two lines. The state they keep is two plain attributes set in ``Module.__init__``:
  ``_output_shape`` and ``_graph`` (see there).

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

from collections import OrderedDict, namedtuple
from contextlib import contextmanager
from typing import Iterator

import numpy as np

from .._checks import as_grad, to_numpy
from .parameter import Parameter


class Module:
    #: Whether ``backward`` must return dLoss/dInput. False: the caller does not need it (the
    #: input is data), and layers with parameters skip it and return None. Set per instance.
    needs_input_grad = True

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)
        # The choke point's state (set by end_forward and begin_backward, nowhere else):
        #: shape grad_out must have: the last forward's output (its first item for a tuple); None: unchecked
        self._output_shape = None
        #: the backward pass: "none" (no forward yet), "open" (a forward awaits its backward), "used" (a
        #: backward used it: parameter gradients would double), "kept" (an enclosing backward with
        #: retain_graph=True keeps it open through this layer's next backward)
        self._graph = "none"

    # -- registration: assigning a Parameter or Module attribute registers it -------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        registered = isinstance(value, (Parameter, Module))
        if name in self._buffers and not registered:
            self._buffers[name] = value  # e.g. self.running_mean = new_array stays a buffer
        elif registered or name in self._parameters or name in self._modules:
            for registry in (self._parameters, self._modules, self._buffers):
                registry.pop(name, None)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
        object.__setattr__(self, name, value)  # registered or plain (a cache, a flag): an attribute too

    def register_buffer(self, name: str, value: np.ndarray) -> None:
        """A state array that is saved in ``state_dict`` but not trained (e.g. running means)."""
        self._buffers[name] = value
        object.__setattr__(self, name, value)

    # -- forward / backward ---------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, grad_out, retain_graph: bool = False):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- the choke point: the last line of every forward, the first line of every backward ----------
    def end_forward(self, out):
        """Record the output's shape (the first item's, for a tuple) and open one backward pass; return ``out``."""
        first = out[0] if isinstance(out, tuple) and out else out
        self._output_shape = None if first is None else tuple(getattr(first, "shape", ()))
        self._graph = "open"
        return out

    def begin_backward(self, grad_out, retain_graph: bool = False, optional: bool = False):
        """Check the call and return grad_out as a floating ndarray of the output's shape (see the module's docstring).

        Raises RuntimeError before any forward, and for a second backward after one forward of a layer with
        parameters unless ``retain_graph``; ValueError/TypeError for a gradient of the wrong shape or kind.
        ``optional=True``: ``None`` is a valid grad_out (returned as is).
        """
        name = type(self).__name__
        if self._graph == "none":
            raise RuntimeError(f"{name}.backward called before forward")
        if self._output_shape is not None:
            grad_out = as_grad(grad_out, self._output_shape, f"{name}.backward", "grad_out", optional)
        if self._graph == "used" and any(True for _ in self.parameters()):
            raise RuntimeError(
                f"{name}.backward called a second time after one forward: the parameter gradients would be added "
                "twice. Call forward again first (as PyTorch, which frees the graph after one backward), or pass "
                "retain_graph=True to the first backward if you mean to accumulate")
        if retain_graph:  # this pass stays open, here and in every sub-layer this backward will reach
            for module in self.modules():
                if module._graph == "open":
                    module._graph = "kept"
        self._graph = "open" if self._graph == "kept" else "used"
        return grad_out

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

    def to(self, *args, **kwargs) -> "Module":
        """Cast every parameter, gradient and floating buffer, as ``torch.nn.Module.to``; returns the module.

        Takes what torch takes: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)`` and the
        keywords ``device``, ``dtype``, ``non_blocking``, ``memory_format`` (the last two change nothing for
        NumPy). A dtype is a NumPy one (``np.float64``, ``"float32"``) or a torch one (``torch.float64``);
        integer and bool dtypes are refused as in PyTorch ("only accepts floating point ..."), and so are
        complex ones (dlcourse computes in real numbers). A device is ``"cpu"``, ``"cpu:0"`` or
        ``torch.device("cpu")``: dlcourse's arrays live in NumPy, on the CPU, so any other device is a
        ValueError (use the torch twin there). Integer buffers (``num_batches_tracked``) keep their dtype.
        """
        device, dtype = _to_arguments(args, kwargs)
        _check_cpu(device)
        if dtype is None:
            return self
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

    def cpu(self) -> "Module":
        """The module itself: its arrays are NumPy arrays, always on the CPU (as ``torch.nn.Module.cpu``)."""
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

    def load_state_dict(self, state_dict, strict: bool = True):
        """Load arrays (NumPy, torch tensors or lists) by name, as ``torch.nn.Module.load_state_dict``.

        Shapes must match exactly. ``strict=True`` (the default): the names must match too, else a
        ValueError names the missing and the unexpected keys; returns the module itself (so
        ``model = Net().load_state_dict(sd)`` reads in one line; PyTorch returns an empty
        ``_IncompatibleKeys`` here). ``strict=False``: loads the keys both sides have and returns
        ``_IncompatibleKeys(missing_keys, unexpected_keys)``, as PyTorch does.

        Dtypes: a floating array replaces a floating parameter or buffer with its own dtype (so a float64
        torch state dict makes the model float64 and comparisons are exact). Where the kinds differ it is
        cast into the existing dtype, as PyTorch's copy does: integer lists into float parameters or
        BatchNorm's running statistics, a whole float into ``num_batches_tracked``. A bfloat16 tensor (NumPy
        has no bfloat16) is cast into the parameter's dtype too, exactly, via float32.
        """
        incoming, exotic = _incoming_state(state_dict)
        own = {}
        for mod_name, mod in self.named_modules():
            for name in list(mod._parameters) + list(mod._buffers):
                own[f"{mod_name}.{name}" if mod_name else name] = (mod, name)
        missing = [key for key in own if key not in incoming]
        unexpected = [key for key in incoming if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: the keys do not match: missing {missing}, unexpected {unexpected} "
                             f"(expected keys {list(own)}; strict=False loads the keys both have and returns the "
                             "others)")
        for key, value in incoming.items():
            if key not in own:
                continue
            mod, name = own[key]
            if name in mod._parameters:
                p = mod._parameters[name]
                if p.data.shape != value.shape:
                    raise ValueError(f"load_state_dict: '{key}' expected shape {p.data.shape}, "
                                     f"got {value.shape}")
                if key in exotic or not np.issubdtype(value.dtype, np.floating):  # into the parameter's dtype
                    value = value.astype(p.data.dtype)
                p.data = np.array(value, copy=True)
                p.grad = None
            else:
                old = getattr(mod, name)
                if np.shape(old) != value.shape:
                    raise ValueError(f"load_state_dict: buffer '{key}' expected shape {np.shape(old)}, "
                                     f"got {value.shape}")
                new = _into_buffer(key, old, value, key in exotic)
                mod._buffers[name] = new
                object.__setattr__(mod, name, new)
        if strict:
            return self
        return _IncompatibleKeys(missing, unexpected)

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


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict(..., strict=False)`` returns, as in PyTorch: the keys the model has and the
    state dict lacks, and the keys the state dict has and the model lacks (lists of names)."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _incoming_state(state_dict) -> tuple[dict, set]:
    """A state dict's arrays as NumPy, and the keys of tensors NumPy had no dtype for (bfloat16: as float32);
    or a TypeError/ValueError that says what came instead."""
    if isinstance(state_dict, Module) or (hasattr(state_dict, "state_dict") and callable(state_dict.state_dict)):
        raise TypeError(f"load_state_dict: expected a state dict (names -> arrays), got a model "
                        f"({type(state_dict).__module__}.{type(state_dict).__name__}); pass model.state_dict()")
    if not hasattr(state_dict, "items") or not hasattr(state_dict, "keys"):
        raise TypeError(f"load_state_dict: expected a state dict (a mapping of names to arrays, as "
                        f"model.state_dict() returns), got {type(state_dict).__name__}")
    incoming, exotic = {}, set()
    for key, value in state_dict.items():
        arr = to_numpy(value, f"load_state_dict: '{key}'")
        if hasattr(value, "dtype") and hasattr(value, "detach") and str(value.dtype) != f"torch.{arr.dtype}":
            exotic.add(key)  # e.g. torch.bfloat16, which came as float32
        if arr.dtype == object or np.issubdtype(arr.dtype, np.complexfloating) or arr.dtype.kind in "USV":
            raise ValueError(f"load_state_dict: '{key}' expected a real numeric array, got dtype {arr.dtype}")
        incoming[key] = arr
    return incoming, exotic


def _into_buffer(key: str, old, value: np.ndarray, exotic: bool) -> np.ndarray:
    """The array a buffer holds after loading ``value``: its own dtype where the kinds differ (PyTorch's copy_)."""
    if not isinstance(old, np.ndarray):
        return np.array(value, copy=True)
    old_float = np.issubdtype(old.dtype, np.floating)
    new_float = np.issubdtype(value.dtype, np.floating)
    if old_float and (exotic or not new_float):  # int lists into running_mean: the buffer's float dtype
        return value.astype(old.dtype)
    if not old_float and new_float:  # e.g. num_batches_tracked saved as a float
        if not np.all(np.isfinite(value)) or not np.array_equal(value, np.round(value)):
            raise ValueError(f"load_state_dict: buffer '{key}' holds integers (dtype {old.dtype}), got values "
                             f"that are not whole numbers: {value.ravel()[:4]}")
        return value.astype(old.dtype)
    return np.array(value, copy=True)


def _to_arguments(args, kwargs):
    """(device, dtype) from ``Module.to``'s arguments, as torch reads them; dtype as a NumPy dtype or None."""
    device, dtype = kwargs.pop("device", None), kwargs.pop("dtype", None)
    for ignored in ("non_blocking", "memory_format"):  # transfer and layout hints: nothing to do in NumPy
        kwargs.pop(ignored, None)
    if kwargs:
        raise TypeError(f"Module.to: unexpected keyword argument(s) {sorted(kwargs)} (expected device, dtype, "
                        "non_blocking, memory_format)")
    if len(args) > 3:
        raise TypeError(f"Module.to: expected at most (device, dtype, non_blocking), got {len(args)} arguments")
    for arg in args:
        if isinstance(arg, bool):  # non_blocking
            continue
        if hasattr(arg, "detach") or isinstance(arg, np.ndarray):  # to(tensor): its dtype (and device)
            dtype = arg.dtype
            device = getattr(arg, "device", device)
        elif _is_device(arg):
            device = arg
        else:
            dtype = arg
    return device, None if dtype is None else _numpy_dtype(dtype)


_DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "xla", "meta", "hip", "hpu", "ipu", "mtia", "lazy", "vulkan", "mkldnn",
                 "opengl", "opencl", "ideep", "ve", "fpga", "maia", "privateuseone")


def _is_device(arg) -> bool:
    if type(arg).__name__ == "device" and type(arg).__module__.split(".")[0] == "torch":
        return True
    if isinstance(arg, (int, np.integer)):  # torch reads an integer as a CUDA device index
        return True
    return isinstance(arg, str) and arg.split(":")[0].strip().lower() in _DEVICE_TYPES


def _check_cpu(device) -> None:
    if device is None:
        return
    kind = getattr(device, "type", None) or (device.split(":")[0].strip().lower() if isinstance(device, str) else None)
    if kind != "cpu":
        shown = f"cuda:{device}" if isinstance(device, (int, np.integer)) else str(device)
        raise ValueError(f"Module.to: dlcourse.nn runs on the CPU (its arrays are NumPy arrays), got device "
                         f"{shown!r}; build the torch twin for an accelerator (e.g. models.mlp(..., library='torch'))")


def _numpy_dtype(dtype) -> np.dtype:
    """A NumPy or torch dtype as a real floating NumPy dtype, or torch's TypeError for any other kind."""
    name = str(dtype)
    if name.startswith("torch."):  # a torch dtype: by name (torch.float64 -> float64)
        if name in ("torch.bfloat16",) or name.startswith("torch.float8"):
            raise TypeError(f"Module.to: NumPy has no {name}; use torch.float32 or torch.float64")
        floating, complex_ = getattr(dtype, "is_floating_point", False), getattr(dtype, "is_complex", False)
        if not floating and not complex_:
            raise TypeError(f"Module.to only accepts floating point or complex dtypes, but got desired dtype={name}")
        name = name[len("torch."):]
    try:
        np_dtype = np.dtype(name if isinstance(dtype, str) or str(dtype).startswith("torch.") else dtype)
    except TypeError as err:
        raise TypeError(f"Module.to: expected a device ('cpu') or a floating dtype (np.float32, torch.float64), "
                        f"got {dtype!r}") from err
    if np.issubdtype(np_dtype, np.complexfloating):
        raise TypeError(f"Module.to: dlcourse.nn computes in real numbers, got desired dtype={np_dtype} "
                        "(use float32 or float64)")
    if not np.issubdtype(np_dtype, np.floating):
        raise TypeError(f"Module.to only accepts floating point or complex dtypes, but got desired dtype={np_dtype}")
    return np_dtype


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
        return self.end_forward(x)

    def backward(self, grad_out, retain_graph: bool = False):
        """Run every layer's backward in reverse and return dLoss/dInput.

        With ``needs_input_grad = False`` nobody needs dLoss/dInput: the pass stops at the first
        layer that has parameters, which computes its parameter gradients only, and returns None.
        """
        grad_out = self.begin_backward(grad_out, retain_graph)
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
