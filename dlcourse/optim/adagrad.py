"""``Adagrad``: per-parameter learning rates from the sum of all past squared gradients.

PyTorch's formulation (``torch.optim.Adagrad``), step t = 1, 2, ...:

    g_t <- g_t + weight_decay * theta                 (if weight_decay != 0)
    lr_t = lr / (1 + (t - 1) * lr_decay)
    G_t = G_{t-1} + g_t^2                             (G_0 = initial_accumulator_value)
    theta <- theta - lr_t * g_t / (sqrt(G_t) + eps)

Coordinates with large past gradients take small steps, rare ones large steps; because G only
grows, the effective learning rate only shrinks (RMSProp replaces the sum by a running mean).
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, as_float


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10)``.

    State per parameter, created with the optimizer as in PyTorch: ``step`` (a float) and
    ``sum`` (G_t, the parameter's shape and dtype).
    """

    nonnegative_hyperparameters = Optimizer.nonnegative_hyperparameters + ("lr_decay", "initial_accumulator_value")

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10, foreach=None, *,
                 maximize: bool = False):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _init_group_state(self, group):
        init = as_float(group["initial_accumulator_value"], "initial_accumulator_value")
        for p in group["params"]:
            state = self.state[p]
            state["step"] = 0.0
            state["sum"] = np.full_like(p.data, init)

    def _update_group(self, group, params):
        lr = as_float(group["lr"], "lr")
        lr_decay = as_float(group["lr_decay"], "lr_decay")
        eps = as_float(group["eps"], "eps")
        weight_decay = as_float(group["weight_decay"], "weight_decay")
        for p in params:
            g = self._grad(p)
            state = self.state[p]
            state["step"] += 1
            step = state["step"]
            g = self._decayed_grad(p, g, maximize=group["maximize"], weight_decay=weight_decay)
            s = self._buf(p)  # slot 0 is free: the gradient may live in slot 1
            clr = lr / (1 + (step - 1) * lr_decay)
            np.multiply(g, g, out=s)
            state["sum"] += s
            np.sqrt(state["sum"], out=s)
            s += eps
            np.divide(g, s, out=s)
            s *= clr
            p.data -= s
