"""``SGD``: stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

PyTorch's formulation (``torch.optim.SGD``), for gradient g_t of parameter theta:

    g_t <- g_t + weight_decay * theta                        (L2 penalty, if weight_decay != 0)
    b_1 = g_1;  b_t = momentum * b_{t-1} + (1 - dampening) g_t   (if momentum != 0)
    d_t = g_t + momentum * b_t  (nesterov)   or   d_t = b_t   (classical momentum)
    theta <- theta - lr * d_t

With momentum = 0 it is plain gradient descent: theta <- theta - lr * g.
"""

from __future__ import annotations

import numpy as np

from .optimizer import Optimizer, as_float


class SGD(Optimizer):
    """``SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False)``.

    State per parameter: ``momentum_buffer`` (b_t above, the parameter's shape and dtype),
    created at the first step with momentum.
    """

    nonnegative_hyperparameters = Optimizer.nonnegative_hyperparameters + ("momentum",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False, *, maximize: bool = False, foreach=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: Nesterov momentum needs momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update_group(self, group, params):
        lr = as_float(group["lr"], "lr")
        momentum = as_float(group["momentum"], "momentum")
        dampening = as_float(group["dampening"], "dampening")
        weight_decay = as_float(group["weight_decay"], "weight_decay")
        nesterov, maximize = group["nesterov"], group["maximize"]
        for p in params:
            g = self._decayed_grad(p, self._grad(p), maximize=maximize, weight_decay=weight_decay,
                                   out=self._buf(p), scratch=self._buf(p, 1))
            if momentum != 0:
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = np.array(g, copy=True)
                else:
                    buf *= momentum
                    if dampening == 0:
                        buf += g
                    else:
                        buf += np.multiply(g, 1 - dampening, out=self._buf(p, 1))
                if nesterov:
                    d = self._buf(p, 2)
                    np.multiply(buf, momentum, out=d)
                    d += g
                    g = d
                else:
                    g = buf
            step = self._buf(p, 3)
            np.multiply(g, lr, out=step)
            p.data -= step
