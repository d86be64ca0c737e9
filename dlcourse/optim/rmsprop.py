"""``RMSprop``: divide the gradient by a running root-mean-square of recent gradients.

PyTorch's formulation (``torch.optim.RMSprop``):

    g_t <- g_t + weight_decay * theta                     (if weight_decay != 0)
    v_t = alpha v_{t-1} + (1 - alpha) g_t^2               (running mean square, v_0 = 0)
    centered:  gbar_t = alpha gbar_{t-1} + (1 - alpha) g_t, and use v_t - gbar_t^2 (a variance)
    denom = sqrt(v_t [- gbar_t^2]) + eps
    momentum > 0:  b_t = momentum b_{t-1} + g_t / denom;  theta <- theta - lr b_t
    otherwise:     theta <- theta - lr g_t / denom

Unlike Adagrad's ever-growing sum, the running mean forgets old gradients (time scale
1 / (1 - alpha) steps), so the effective step size does not decay to zero.
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, as_float


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False)``.

    State per parameter (the parameter's shape and dtype): ``step``, ``square_avg`` (v_t),
    ``momentum_buffer`` (if momentum > 0) and ``grad_avg`` (if centered).
    """

    nonnegative_hyperparameters = Optimizer.nonnegative_hyperparameters + ("momentum", "alpha")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0,
                 momentum: float = 0.0, centered: bool = False, capturable: bool = False, foreach=None,
                 maximize: bool = False):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach, maximize=maximize)
        super().__init__(params, defaults)

    def _update_group(self, group, params):
        lr = as_float(group["lr"], "lr")
        alpha = as_float(group["alpha"], "alpha")
        eps = as_float(group["eps"], "eps")
        weight_decay = as_float(group["weight_decay"], "weight_decay")
        momentum = as_float(group["momentum"], "momentum")
        centered = group["centered"]
        for p in params:
            g = self._grad(p)
            state = self.state[p]
            if not state:
                state["step"] = 0.0
                state["square_avg"] = np.zeros_like(p.data)
                if momentum > 0:
                    state["momentum_buffer"] = np.zeros_like(p.data)
                if centered:
                    state["grad_avg"] = np.zeros_like(p.data)
            state["step"] += 1
            g = self._decayed_grad(p, g, maximize=group["maximize"], weight_decay=weight_decay)
            s = self._buf(p)  # slot 0 is free: the gradient may live in slot 1
            square_avg = state["square_avg"]
            square_avg *= alpha
            np.multiply(g, g, out=s)
            s *= 1 - alpha
            square_avg += s
            if centered:
                grad_avg = state.setdefault("grad_avg", np.zeros_like(p.data))
                np.subtract(g, grad_avg, out=s)  # PyTorch's lerp: gbar + (1 - alpha)(g - gbar)
                s *= 1 - alpha
                grad_avg += s
                np.multiply(grad_avg, grad_avg, out=s)
                np.subtract(square_avg, s, out=s)
                np.sqrt(s, out=s)
            else:
                np.sqrt(square_avg, out=s)
            s += eps
            if momentum > 0:
                buf = state.setdefault("momentum_buffer", np.zeros_like(p.data))
                buf *= momentum
                np.divide(g, s, out=s)
                buf += s
                np.multiply(buf, lr, out=s)
            else:
                np.divide(g, s, out=s)
                s *= lr
            p.data -= s
