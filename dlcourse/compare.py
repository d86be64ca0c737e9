"""Side-by-side checks of a dlcourse module against its PyTorch twin, and timing.

``compare(ours, theirs, x)`` copies the torch module's weights into ours, runs both on the
same input and the same random upstream gradient, and reports the largest difference of
every output, the input gradient and each parameter gradient. ``cmp`` is the one-line
version for a single array. Timing and devices live in :mod:`dlcourse.runtime`.
"""

from __future__ import annotations

import html

import numpy as np

from ._checks import to_numpy


class Table:
    """A small table that prints as text and renders as HTML in a notebook."""

    def __init__(self, columns, rows, title: str = ""):
        self.columns, self.rows, self.title = list(columns), [list(r) for r in rows], title

    @staticmethod
    def _fmt(v):
        if isinstance(v, float):
            return f"{v:.2e}" if (v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5)) else f"{v:.4g}"
        return str(v)

    def __str__(self):
        cells = [self.columns] + [[self._fmt(v) for v in r] for r in self.rows]
        widths = [max(len(row[i]) for row in cells) for i in range(len(self.columns))]
        lines = [self.title] if self.title else []
        for j, row in enumerate(cells):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        cell = lambda v: f"<td>{html.escape(self._fmt(v))}</td>"  # noqa: E731
        body = "".join("<tr>" + "".join(cell(v) for v in r) + "</tr>" for r in self.rows)
        cap = f"<caption>{html.escape(self.title)}</caption>" if self.title else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def max_abs_diff(a, b) -> float:
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare shapes {a.shape} and {b.shape}")
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def max_rel_diff(a, b) -> float:
    a, b = to_numpy(a).astype(np.float64), to_numpy(b).astype(np.float64)
    return max_abs_diff(a, b) / max(float(np.max(np.abs(b))) if b.size else 0.0, 1e-30)


def cmp(name: str, ours, theirs, tol: float | None = None) -> float:
    """Print one line: exact / close / max difference between our array and PyTorch's; return the difference."""
    a, b = to_numpy(ours), to_numpy(theirs)
    diff = max_abs_diff(a, b)
    if tol is None:
        tol = 1e-8 if a.dtype == np.float64 else 1e-4
    scale = max(float(np.max(np.abs(b))) if b.size else 0.0, 1.0)
    ok = diff <= tol * scale
    print(f"{name:<18s} | exact: {bool(np.array_equal(a, b))!s:<5} | close: {ok!s:<5} | max diff: {diff:.2e}")
    return diff


def _flatten(out, prefix="output"):
    if isinstance(out, (tuple, list)):
        items = []
        for i, o in enumerate(out):
            items += _flatten(o, f"{prefix}[{i}]")
        return items
    return [(prefix, out)]


class ComparisonReport(Table):
    def __init__(self, rows, dtype, title):
        super().__init__(["quantity", "shape", "max |ours - torch|", "relative"], rows, title)
        self.dtype = np.dtype(dtype)

    @property
    def max_diff(self) -> float:
        return max(r[2] for r in self.rows)

    @property
    def max_rel(self) -> float:
        return max(r[3] for r in self.rows)

    def ok(self, rtol: float | None = None) -> bool:
        """True when every quantity agrees within ``rtol`` (1e-8 in float64, 1e-4 in float32)."""
        if rtol is None:
            rtol = 1e-8 if self.dtype == np.float64 else 1e-4
        return self.max_rel <= rtol


def torch_dtype(dtype):
    import torch
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def compare(ours, theirs, x, *extra, grad_out=None, dtype=np.float64, seed: int = 0, copy: bool = True,
            title: str | None = None) -> ComparisonReport:
    """Run a dlcourse module and its torch twin on the same input and upstream gradient.

    ``theirs`` is a ``torch.nn.Module``; with ``copy=True`` its weights (cast to ``dtype``)
    are loaded into ``ours`` first. ``extra`` arguments (e.g. an initial state) go to both
    forwards. Returns a :class:`ComparisonReport` with the output(s), the input gradient and
    every parameter gradient.
    """
    import torch

    from .nn.module import Module, input_grad_mode

    _check_pair(ours, theirs, Module, torch.nn.Module)
    tdt = torch_dtype(dtype)
    theirs = theirs.to(tdt)
    theirs.zero_grad()  # a second compare() on the same torch module must not see the first one's gradients
    if copy:
        try:
            ours.load_state_dict({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
        except ValueError as err:
            raise ValueError(f"compare: {type(ours).__name__} and torch.nn.{type(theirs).__name__} do not have the "
                             f"same parameters and shapes, so torch's weights cannot be copied ({err})") from err
    x = np.asarray(x, dtype=dtype)
    xt = torch.tensor(x, requires_grad=True)
    extra_t = [torch.as_tensor(np.asarray(e, dtype=dtype)) if not isinstance(e, tuple)
               else tuple(torch.as_tensor(np.asarray(a, dtype=dtype)) for a in e) for e in extra]
    ours.zero_grad()
    try:  # ours first: a wrong input gets dlcourse's message, not torch's "mat1 and mat2 shapes cannot be multiplied"
        out_o = ours.forward(x, *extra)
    except ValueError as err:
        raise ValueError(f"compare: the input x of shape {x.shape} does not fit {type(ours).__name__}: {err}") from err
    out_t = theirs(xt, *extra_t)
    flat_t, flat_o = _flatten(out_t), _flatten(out_o)
    if len(flat_t) != len(flat_o):
        raise ValueError(f"compare: torch returned {len(flat_t)} output arrays, ours {len(flat_o)}")
    first_t = flat_t[0][1]
    if grad_out is None:
        grad_out = np.random.default_rng(seed).standard_normal(tuple(first_t.shape)).astype(dtype)
    first_t.backward(torch.as_tensor(np.asarray(grad_out, dtype=dtype)))
    with input_grad_mode(ours, True):
        dx = ours.backward(np.asarray(grad_out, dtype=dtype))

    rows = []
    for (name, t), (_, o) in zip(flat_t, flat_o):
        if tuple(np.shape(o)) != tuple(t.shape):
            raise ValueError(f"compare: {name} has shape {tuple(np.shape(o))} in {type(ours).__name__} but "
                             f"{tuple(t.shape)} in torch.nn.{type(theirs).__name__}: not the same architecture")
        rows.append([name, tuple(t.shape), max_abs_diff(o, t), max_rel_diff(o, t)])
    rows.append(["grad input", x.shape, max_abs_diff(dx, xt.grad), max_rel_diff(dx, xt.grad)])
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        if name not in ours_params:
            raise ValueError(f"compare: torch parameter '{name}' has no twin in {type(ours).__name__}")
        g_o = ours_params[name].grad
        g_t = p.grad if p.grad is not None else torch.zeros_like(p)
        g_o = np.zeros(tuple(p.shape)) if g_o is None else g_o
        rows.append([f"grad {name}", tuple(p.shape), max_abs_diff(g_o, g_t), max_rel_diff(g_o, g_t)])
    title = title or f"{type(ours).__name__} vs torch.nn.{type(theirs).__name__} ({np.dtype(dtype).name})"
    return ComparisonReport(rows, dtype, title)


def _check_pair(ours, theirs, module_cls, torch_module_cls) -> None:
    """TypeError unless ours is a dlcourse Module and theirs a torch.nn.Module (swapped arguments named as such)."""
    if isinstance(ours, torch_module_cls) and isinstance(theirs, module_cls):
        raise TypeError(f"compare: the arguments are swapped: compare(ours, theirs, x) takes the dlcourse module first "
                        f"and the torch module second, got torch.nn.{type(ours).__name__} first and dlcourse "
                        f"{type(theirs).__name__} second")
    if not isinstance(ours, module_cls):
        raise TypeError(f"compare: expected a dlcourse Module as the first argument, got {type(ours).__name__}")
    if not isinstance(theirs, torch_module_cls):
        raise TypeError(f"compare: expected a torch.nn.Module as the second argument, got "
                        f"{type(theirs).__module__}.{type(theirs).__name__}")
