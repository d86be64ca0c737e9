"""``Linear``: y = x W^T + b, the fully connected layer (``torch.nn.Linear``)."""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array, check_finite, check_nonempty
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter


class Linear(Module):
    """Fully connected layer.

    Shapes: x (N, *, in_features) -> y (N, *, out_features); ``weight`` (out_features,
    in_features), ``bias`` (out_features,), as in PyTorch. Initialised like PyTorch:
    U(-1/sqrt(in_features), 1/sqrt(in_features)) for both.
    Caches: the input x (dW = g^T x needs it). With ``needs_input_grad = False`` backward
    skips dx = g W and returns None (see ``Module``).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=np.float32):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear: expected positive sizes, got in_features={in_features}, "
                             f"out_features={out_features}")
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.zeros((out_features, in_features), dtype=dtype))
        self.bias = Parameter(np.zeros(out_features, dtype=dtype)) if bias else None
        self.reset_parameters()
        self._x = None

    def reset_parameters(self) -> None:
        """Weight and bias ~ U(-1/sqrt(in_features), 1/sqrt(in_features)) from the package's generator (as
        torch, whose ``kaiming_uniform_(a=sqrt(5))`` has that bound), through ``nn.init``."""
        bound = 1.0 / math.sqrt(self.in_features)
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):  # torch's argument name: linear.forward(input=x) works as in PyTorch
        x = as_array(input, "Linear input")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with last dimension in_features={self.in_features}, "
                             f"got shape {x.shape}")
        check_nonempty(x, "Linear input")
        y = F.linear(x, self.weight.data, None if self.bias is None else self.bias.data)
        if not np.isfinite(np.add.reduce(y, axis=None)):  # a NaN/inf input makes the output's sum non-finite:
            check_finite(x, "Linear input")               # only then look for it (the output is the smaller)
        self._x = x
        return self.end_forward(y)

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        x2, g2 = self._x.reshape(-1, self.in_features), grad_out.reshape(-1, self.out_features)
        self.weight.accumulate(g2.T @ x2, fresh=True)  # dW = g^T x, summed over every leading dimension
        if self.bias is not None:
            self.bias.accumulate(g2.sum(axis=0), fresh=True)
        if not self.needs_input_grad:  # the input is data: skip dx = g W, as autograd does
            return None
        return grad_out @ self.weight.data

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
