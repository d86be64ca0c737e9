"""``Optimizer``: the base class of every optimizer in ``dlcourse.optim`` (``torch.optim.Optimizer``).

The contract of the family (stated once here, as in PyTorch):

* An optimizer holds ``param_groups``: a list of dicts, each with its ``"params"`` (a list of
  :class:`~dlcourse.nn.Parameter`) and its own hyperparameters (``"lr"``, ``"momentum"``, ...).
  Arguments given to the constructor are the defaults for groups that do not set them.
  ``optimizer.param_groups[i]["lr"]`` can be read and written at any time (schedulers do).
* ``step()`` updates every parameter whose ``.grad`` is not ``None`` **in place**
  (``p.data`` keeps its identity and dtype); parameters without a gradient are skipped.
* ``zero_grad(set_to_none=True)`` clears the gradients of all parameters.
* ``state`` maps each parameter to its per-parameter buffers (momentum, moments, step
  count), named as in PyTorch (``momentum_buffer``, ``exp_avg``, ``exp_avg_sq``, ...). Buffers
  are allocated in the parameter's dtype: float32 parameters stay float32.
* ``state_dict()`` / ``load_state_dict()`` use PyTorch's layout (``{"state": {index: {...}},
  "param_groups": [{..., "params": [indices]}]}``), and ``load_state_dict`` also accepts a
  ``torch.optim`` state dict (tensors are converted to arrays of the parameter's dtype).

Updates use ufuncs with ``out=`` on preallocated scratch arrays, so a step allocates nothing
after the first one.
"""

from __future__ import annotations

import copy
import math
from collections import defaultdict

import numpy as np

from .._checks import to_numpy
from ..nn.parameter import Parameter


class _Required:
    """Marker for a hyperparameter without default (like ``torch.optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    #: Hyperparameters that must be >= 0, checked in this order after lr (a subclass appends its own).
    nonnegative_hyperparameters: tuple[str, ...] = ("weight_decay", "eps")

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: defaultdict = defaultdict(dict)
        self.param_groups: list[dict] = []
        self._scratch: dict[int, np.ndarray] = {}
        if isinstance(params, Parameter):
            raise ValueError(f"{type(self).__name__}: params should be an iterable of Parameters or of dicts, "
                             "got a single Parameter (wrap it in a list: [p])")
        if hasattr(params, "parameters") and callable(params.parameters):
            raise ValueError(f"{type(self).__name__}: expected an iterable of Parameters, got a "
                             f"{type(params).__name__} module (pass model.parameters())")
        param_groups = list(params)
        if len(param_groups) == 0:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    # -- groups ---------------------------------------------------------------------------
    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyperparameters (defaults fill the rest)."""
        if not isinstance(param_group, dict):
            raise ValueError(f"add_param_group: expected a dict with key 'params', got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"add_param_group: expected a dict with key 'params', got keys {sorted(param_group)}")
        params = param_group["params"]
        if isinstance(params, Parameter):
            params = [params]
        elif isinstance(params, set):
            raise ValueError("add_param_group: parameters must be in an ordered collection (a list), got a set")
        params = list(params)
        for i, p in enumerate(params):
            if not isinstance(p, Parameter):
                raise ValueError(f"{type(self).__name__} (dlcourse.optim) can only optimize dlcourse Parameters, got "
                                 f"{_origin(p)} at position {i}" + (
                                     "; pass the dlcourse model's parameters(), or use torch.optim for a torch model"
                                     if type(p).__module__.split(".")[0] == "torch" else ""))
            if not np.issubdtype(p.data.dtype, np.floating):
                raise ValueError(f"{type(self).__name__}: expected floating-point parameters, got dtype {p.data.dtype}")
        group = dict(param_group)
        group["params"] = params
        for name, default in self.defaults.items():
            if default is required and name not in group:
                raise ValueError(f"add_param_group: the group does not set the required hyperparameter {name!r}")
            group.setdefault(name, default)
        self._check_hyperparameters(group)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError("add_param_group: some parameters appear more than once (in this group or another)")
        self.param_groups.append(group)
        self._init_group_state(group)

    def _check_hyperparameters(self, group: dict) -> None:
        """Raise ValueError for hyperparameters out of range (subclasses extend this)."""
        _check_numbers(type(self).__name__, group)
        lr = group.get("lr")
        if lr is not None and lr is not required and not lr >= 0.0:
            raise ValueError(f"{type(self).__name__}: expected lr >= 0, got {lr}")
        for name in self.nonnegative_hyperparameters:
            value = group.get(name, 0.0)
            if not value >= 0.0:  # "not >=" also refuses NaN
                raise ValueError(f"{type(self).__name__}: expected {name} >= 0, got {value}")

    def _init_group_state(self, group: dict) -> None:
        """Allocate state eagerly where PyTorch does (Adagrad); lazily otherwise."""

    # -- gradients ------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear every parameter's gradient (``None`` by default, as in PyTorch, or zeros)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.zero_grad(set_to_none)

    def step(self, closure=None):
        """Update the parameters once; ``closure`` (optional) re-evaluates the loss and is returned."""
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if params:
                self._update_group(group, params)
        return loss

    def _update_group(self, group: dict, params: list) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- helpers for subclasses -----------------------------------------------------------
    @staticmethod
    def _grad(p: Parameter) -> np.ndarray:
        g = p.grad
        if g.shape != p.data.shape:
            raise ValueError(f"optimizer step: a gradient of shape {g.shape} does not match its parameter's shape "
                             f"{p.data.shape}")
        if g.dtype != p.data.dtype:
            g = g.astype(p.data.dtype)
        return g

    def _decayed_grad(self, p: Parameter, g: np.ndarray, *, maximize: bool = False, weight_decay: float = 0.0,
                      lr: float = 0.0, decoupled: bool = False, out: np.ndarray | None = None,
                      scratch: np.ndarray | None = None) -> np.ndarray:
        """The gradient as the update sees it, the one place where ``maximize`` and weight decay are applied.

        As in ``torch.optim``: negated when maximizing; then either L2 weight decay,
        ``g + weight_decay * p`` (SGD, Adagrad, RMSprop, Adam), or, with ``decoupled`` (AdamW),
        the parameter itself shrinks in place, ``p *= 1 - lr * weight_decay``, and ``g`` is left alone.
        Returns ``g`` itself when nothing changes, else ``out`` (default: scratch slot 1 of ``p``);
        ``scratch`` (default: slot 0) holds ``weight_decay * p`` on the way, so callers may reuse it after.
        ``out`` may be ``g`` (then ``g`` is changed in place).
        """
        if weight_decay != 0 and decoupled:
            p.data *= 1 - lr * weight_decay
        l2 = weight_decay != 0 and not decoupled
        if not maximize and not l2:
            return g
        out = self._buf(p, 1) if out is None else out
        if maximize:
            np.negative(g, out=out)
            g = out
        if l2:
            decay = np.multiply(p.data, weight_decay, out=self._buf(p) if scratch is None else scratch)
            np.add(g, decay, out=out)
        return out

    def _buf(self, p: Parameter, slot: int = 0) -> np.ndarray:
        """A scratch array shaped and typed like ``p`` (reused across steps; contents undefined)."""
        key = (id(p), slot)
        buf = self._scratch.get(key)
        if buf is None or buf.shape != p.data.shape or buf.dtype != p.data.dtype:
            buf = np.empty_like(p.data)
            self._scratch[key] = buf
        return buf

    # -- state dict -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [...]}`` (copies), as in PyTorch.

        The arrays are :class:`StateArray` (NumPy arrays in all but one respect): handed straight to a
        ``torch.optim`` optimizer's ``load_state_dict``, which needs tensors, they say to convert with
        :func:`as_torch_state_dict` instead of failing somewhere inside PyTorch.
        """
        index, groups = {}, []
        start = 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            ids = list(range(start, start + len(group["params"])))
            for i, p in zip(ids, group["params"]):
                index[id(p)] = i
            packed["params"] = ids
            start += len(ids)
            groups.append(packed)
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state and self.state[p]:
                    state[index[id(p)]] = {k: (v.copy().view(StateArray) if isinstance(v, np.ndarray) else v)
                                           for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state dict from :meth:`state_dict` (ours or ``torch.optim``'s).

        The number of groups and of parameters per group must match. Arrays are copied and cast
        to the dtype of the parameter they belong to; ``step`` becomes a float.
        """
        if not isinstance(state_dict, dict) or "state" not in state_dict or "param_groups" not in state_dict:
            raise ValueError("load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"load_state_dict: expected {len(self.param_groups)} parameter group(s), "
                             f"got {len(saved_groups)}")
        for k, (g, s) in enumerate(zip(self.param_groups, saved_groups)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"load_state_dict: group {k} has {len(g['params'])} parameters, "
                                 f"the saved group has {len(s['params'])}")
        _check_same_kind(self, saved_groups)
        id_map = {}
        for g, s in zip(self.param_groups, saved_groups):
            id_map.update(zip(s["params"], g["params"]))
        self.state = defaultdict(dict)
        self._scratch = {}
        for key, value in state_dict["state"].items():
            if key not in id_map:
                continue
            p = id_map[key]
            entry = {}
            for name, v in value.items():
                if name == "step":
                    entry[name] = float(to_numpy(v)) if hasattr(v, "detach") or isinstance(v, np.ndarray) else v
                elif hasattr(v, "detach") or isinstance(v, np.ndarray):
                    arr = to_numpy(v)
                    if arr.shape != p.data.shape:
                        raise ValueError(f"load_state_dict: state {name!r} has shape {arr.shape}, its parameter "
                                         f"{p.data.shape}")
                    entry[name] = np.array(arr, dtype=p.data.dtype, copy=True)
                else:
                    entry[name] = copy.deepcopy(v)
            self.state[p] = entry
        new_groups = []
        for g, s in zip(self.param_groups, saved_groups):
            merged = {k: copy.deepcopy(v) for k, v in s.items() if k != "params"}
            for name in ("foreach", "fused", "differentiable", "capturable"):
                merged.pop(name, None)
                if name in g:
                    merged[name] = g[name]
            merged["params"] = g["params"]
            new_groups.append(merged)
        self.param_groups = new_groups

    # -- printing -------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"


class StateArray(np.ndarray):
    """An optimizer state array (momentum buffer, Adam's moments) in a ``state_dict()``: a NumPy array.

    The one difference: it cannot be built from an iterable, which is how ``torch.optim``'s
    ``load_state_dict`` copies anything that is not a tensor (``type(value)(generator)``). So
    ``torch_opt.load_state_dict(opt.state_dict())`` raises a TypeError that names
    :func:`as_torch_state_dict`, and the torch optimizer is left as it was. Pickled, it is a plain ndarray.
    """

    def __new__(cls, *args, **kwargs):
        raise TypeError("a dlcourse optimizer's state_dict() holds NumPy arrays, and torch.optim needs tensors: "
                        "torch_opt.load_state_dict(dlcourse.optim.as_torch_state_dict(opt.state_dict()))")

    def __reduce__(self):
        return self.view(np.ndarray).__reduce__()

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))


def as_float(x, name: str) -> float:
    """A hyperparameter as a Python float (keeps float32 arrays float32 under NumPy 2's rules)."""
    try:
        value = float(x)
    except (TypeError, ValueError) as err:
        raise ValueError(f"expected a number for {name}, got {x!r}") from err
    if math.isnan(value):
        raise ValueError(f"expected a number for {name}, got NaN")
    return value


def flush_subnormal(arr: np.ndarray) -> None:
    """Set the subnormal entries of ``arr`` (|x| < smallest normal number of its dtype) to zero.

    Adam's moments decay geometrically where gradients are (almost) zero; on x86 arithmetic on
    subnormal floats is many times slower, which costs up to ~30% per step late in training.
    Zero is what they are heading to anyway (and what a CPU in flush-to-zero mode would give).
    """
    tiny = np.finfo(arr.dtype).tiny
    mask = np.abs(arr) < tiny  # two temporaries, amortised: called every few steps only
    np.copyto(arr, 0, where=mask)


def _origin(obj) -> str:
    """'torch.nn.parameter.Parameter (from PyTorch)' and the like, for messages that mix two libraries."""
    kind = type(obj)
    library = {"torch": " (from PyTorch)", "numpy": " (a NumPy array)"}.get(kind.__module__.split(".")[0], "")
    return f"{kind.__module__}.{kind.__name__}{library}"


_NUMERIC = ("lr", "momentum", "dampening", "weight_decay", "eps", "alpha", "lr_decay", "initial_accumulator_value")


def _check_numbers(name: str, group: dict) -> None:
    """TypeError for a hyperparameter of the wrong type (lr="0.1"), before any comparison fails rawly."""
    for key in _NUMERIC:
        value = group.get(key)
        if value is None or value is required or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float, np.integer, np.floating)) and not (
                hasattr(value, "ndim") and value.ndim == 0 and hasattr(value, "dtype")):
            raise TypeError(f"{name}: expected a number for {key}, got {type(value).__name__} {value!r}")
    betas = group.get("betas")
    if betas is not None:
        if not isinstance(betas, (tuple, list)) or any(isinstance(b, (str, bytes)) for b in betas):
            raise TypeError(f"{name}: expected betas as a pair of numbers (beta1, beta2), got {betas!r}")


_NOT_KIND = {"foreach", "fused", "differentiable", "capturable", "maximize", "initial_lr", "decoupled_weight_decay",
             "max_lr", "min_lr", "max_momentum", "base_momentum", "params"}


def _check_same_kind(optimizer, saved_groups) -> None:
    """ValueError when a state dict comes from another kind of optimizer (Adam's into SGD, ...)."""
    own = set(optimizer.defaults) - _NOT_KIND
    for k, group in enumerate(saved_groups):
        if not isinstance(group, dict):
            raise ValueError(f"load_state_dict: expected param_groups to be dicts, got {type(group).__name__}")
        missing = sorted(own - set(group))
        if missing and set(group) - {"params"}:  # (a bare {"params": [...]} group is a hand-made dict: let it be)
            raise ValueError(f"load_state_dict: this state dict is not from a {type(optimizer).__name__}: its group "
                             f"{k} lacks {missing} and has {sorted(set(group) - _NOT_KIND - own)} (a state dict loads "
                             "only into the same kind of optimizer)")


def as_torch_state_dict(state_dict: dict) -> dict:
    """A dlcourse optimizer's ``state_dict()`` with torch tensors, for ``torch.optim``'s ``load_state_dict``.

    dlcourse keeps NumPy arrays (its state dicts need no torch); torch needs tensors, and its step
    counts as tensors too. The other direction needs nothing: dlcourse loads torch's state dicts as they are.
    """
    import torch

    state = {}
    for index, entry in state_dict["state"].items():
        state[index] = {name: (torch.tensor(float(v)) if name == "step" else
                               torch.from_numpy(np.array(v, copy=True, subok=False)) if isinstance(v, np.ndarray)
                               else v)
                        for name, v in entry.items()}
    return {"state": state, "param_groups": copy.deepcopy(state_dict["param_groups"])}
