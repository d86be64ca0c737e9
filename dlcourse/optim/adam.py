"""``Adam`` and ``AdamW``: momentum (first moment) + RMSProp scaling (second moment) + bias correction.

PyTorch's formulation (``torch.optim.Adam`` / ``AdamW``), for gradient g_t at step t = 1, 2, ...:

    g_t <- g_t + weight_decay * theta          (Adam: L2 penalty added to the gradient)
    theta <- theta (1 - lr * weight_decay)     (AdamW: decoupled weight decay, instead)
    m_t = beta1 m_{t-1} + (1 - beta1) g_t        (first moment: momentum)
    v_t = beta2 v_{t-1} + (1 - beta2) g_t^2      (second moment: RMSProp's running mean square)
    m_hat = m_t / (1 - beta1^t),  v_hat = v_t / (1 - beta2^t)        (bias correction)
    v_hat <- max(v_hat_max, v_hat)             (amsgrad only: never let the denominator shrink)
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)

The update is computed in place with preallocated scratch arrays, in the parameter's dtype.
Every ``flush_every`` steps, moments below the dtype's smallest normal number are set to zero
(:func:`~dlcourse.optim.optimizer.flush_subnormal`): late in training they decay into
subnormals, on which x86 arithmetic is many times slower.

``foreach=True`` (the default for groups of many small arrays) keeps the moments of a group in
one flat buffer per dtype, so each step is ~10 NumPy calls on the whole group instead of ~10
per parameter; the per-parameter ``state`` entries are views into those buffers.
"""

from __future__ import annotations

import numpy as np

from ..nn._batch_threads import over_batch
from .optimizer import Optimizer, as_float, flush_subnormal


class Adam(Optimizer):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``.

    State per parameter (the parameter's shape and dtype): ``step`` (a float, as in PyTorch),
    ``exp_avg`` (m_t), ``exp_avg_sq`` (v_t) and, with amsgrad, ``max_exp_avg_sq``.
    """

    flush_every = 50  # steps between flushes of subnormal moments

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 amsgrad: bool = False, *, foreach=None, maximize: bool = False,
                 decoupled_weight_decay: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, decoupled_weight_decay=decoupled_weight_decay)
        self._flat: dict = {}
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group):
        super()._check_hyperparameters(group)
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"{type(self).__name__}: expected betas=(beta1, beta2), got {betas!r}")
        for i, b in enumerate(betas):
            if not 0.0 <= b < 1.0:
                raise ValueError(f"{type(self).__name__}: expected 0 <= betas[{i}] < 1, got {b}")

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._flat = {}

    # -- the update -----------------------------------------------------------------------
    def _hyper(self, group):
        beta1, beta2 = (as_float(b, "betas") for b in group["betas"])
        return (as_float(group["lr"], "lr"), beta1, beta2, as_float(group["eps"], "eps"),
                as_float(group["weight_decay"], "weight_decay"))

    def _update_group(self, group, params):
        use_flat = group["foreach"]
        if use_flat is None:  # default: flat buffers pay off when a group has several arrays
            use_flat = len(params) >= 4
        if use_flat and self._flat_step(group, params):
            return
        self._per_param_step(group, params)

    def _init_state(self, p, amsgrad):
        state = self.state[p]
        if not state:
            state["step"] = 0.0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(p.data)
        return state

    def _per_param_step(self, group, params):
        lr, beta1, beta2, eps, weight_decay = self._hyper(group)
        amsgrad, maximize, decoupled = group["amsgrad"], group["maximize"], group["decoupled_weight_decay"]
        for p in params:
            g = self._grad(p)
            state = self._init_state(p, amsgrad)
            state["step"] += 1
            step = state["step"]
            g = self._decayed_grad(p, g, maximize=maximize, weight_decay=weight_decay, lr=lr, decoupled=decoupled)
            p.data -= self._moments_and_update(g, state, self._buf(p), step, lr, beta1, beta2, eps, amsgrad)

    def _moments_and_update(self, g, state, s, step, lr, beta1, beta2, eps, amsgrad):
        """Update the moments in ``state`` in place and return the parameter update in ``s``."""
        m, v = state["exp_avg"], state["exp_avg_sq"]
        # m <- m + (1 - beta1)(g - m)   (PyTorch's lerp; = beta1 m + (1 - beta1) g)
        np.subtract(g, m, out=s)
        s *= 1 - beta1
        m += s
        # v <- beta2 v + (1 - beta2) g^2
        v *= beta2
        np.multiply(g, g, out=s)
        s *= 1 - beta2
        v += s
        if amsgrad:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2_sqrt = (1 - beta2 ** step) ** 0.5
        # theta <- theta - lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps); both sides multiplied by sqrt(bc2)
        np.sqrt(v, out=s)
        s += eps * bias_correction2_sqrt
        np.divide(m, s, out=s)
        s *= lr / bias_correction1 * bias_correction2_sqrt
        if int(step) % self.flush_every == 0:
            flush_subnormal(m)
            flush_subnormal(state["exp_avg_sq"])
            if amsgrad:
                flush_subnormal(state["max_exp_avg_sq"])
        return s

    # -- the flat-buffer path -------------------------------------------------------------
    def _flat_step(self, group, params) -> bool:
        """One step on flat buffers; returns False (nothing done) when the group does not fit."""
        dtype = params[0].data.dtype
        if any(p.data.dtype != dtype for p in params):
            return False
        amsgrad = group["amsgrad"]
        key = id(group)
        ids = tuple(id(p) for p in params)
        flat = self._flat.get(key)
        if flat is None or flat["ids"] != ids or not self._flat_is_current(flat, params, amsgrad):
            steps = {self.state[p].get("step", 0.0) for p in params}
            if len(steps) != 1:  # parameters at different step counts: update them one by one
                return False
            flat = self._flat[key] = self._build_flat(params, dtype, amsgrad, steps.pop())
        lr, beta1, beta2, eps, weight_decay = self._hyper(group)
        maximize, decoupled = group["maximize"], group["decoupled_weight_decay"]
        g_flat, g_views, s_views = flat["g"], flat["g_views"], flat["s_views"]
        for p, view in zip(params, g_views):  # gather the gradients into one flat buffer
            np.copyto(view, self._grad(p))
        if maximize or weight_decay != 0:  # in place on each parameter's slice of the flat gradient
            for p, g_view, s_view in zip(params, g_views, s_views):
                self._decayed_grad(p, g_view, maximize=maximize, weight_decay=weight_decay, lr=lr,
                                   decoupled=decoupled, out=g_view, scratch=s_view)
        step = self.state[params[0]]["step"] + 1
        for p in params:
            self.state[p]["step"] = step
        moments, s = flat["state"], flat["s"]

        def update(part):  # element-wise: any split of the flat buffers gives the same bits
            self._moments_and_update(g_flat[part], {name: buf[part] for name, buf in moments.items()}, s[part],
                                     step, lr, beta1, beta2, eps, amsgrad)

        # ~12 passes over the group: on the threads BLAS may use (NumPy's ufuncs release the GIL), as
        # PyTorch's element-wise kernels use its threads, once one buffer reaches over_batch's MIN_BYTES (1 MB).
        # Below that each of the passes is too short for a second thread: a 203K-parameter MLP's step took
        # 277 us on one thread and 268-770 us on two (the second thread often waits to be scheduled).
        over_batch(update, g_flat.size, g_flat.nbytes)
        for p, view in zip(params, s_views):  # scatter the update
            p.data -= view
        return True

    def _flat_is_current(self, flat, params, amsgrad):
        for p, m_view in zip(params, flat["m_views"]):
            state = self.state.get(p)
            if not state or state.get("exp_avg") is not m_view:
                return False
            if amsgrad and "max_exp_avg_sq" not in flat["state"]:
                return False
        return True

    def _build_flat(self, params, dtype, amsgrad, step):
        sizes = [p.data.size for p in params]
        offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        total = int(offsets[-1])
        names = ["exp_avg", "exp_avg_sq"] + (["max_exp_avg_sq"] if amsgrad else [])
        flat_state = {name: np.zeros(total, dtype=dtype) for name in names}
        flat = {"ids": tuple(id(p) for p in params), "state": flat_state,
                "g": np.zeros(total, dtype=dtype), "s": np.zeros(total, dtype=dtype)}

        def views(buf):
            return [buf[a:b].reshape(p.data.shape) for p, a, b in zip(params, offsets[:-1], offsets[1:])]

        per_name = {name: views(buf) for name, buf in flat_state.items()}
        for i, p in enumerate(params):
            old = self.state.get(p) or {}
            for name in names:
                if name in old:
                    np.copyto(per_name[name][i], old[name])
            self.state[p] = {"step": float(step), **{name: per_name[name][i] for name in names}}
        flat["m_views"] = per_name["exp_avg"]
        flat["g_views"] = views(flat["g"])
        flat["s_views"] = views(flat["s"])
        return flat


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``.

    Adam with decoupled weight decay: theta <- theta (1 - lr * weight_decay) before the Adam step,
    instead of adding weight_decay * theta to the gradient (which Adam would then rescale).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 1e-2,
                 amsgrad: bool = False, *, maximize: bool = False, foreach=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         decoupled_weight_decay=True)
