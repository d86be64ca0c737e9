"""Batch normalisation (``torch.nn.BatchNorm1d`` / ``BatchNorm2d``).

For each channel c, over the batch (and the spatial positions), in training mode:

    mu = mean(x),  var = mean((x - mu)^2)  (biased),  x_hat = (x - mu) / sqrt(var + eps),
    y = gamma * x_hat + beta

and the running statistics follow PyTorch's convention (momentum weighs the *new* value):

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * m / (m - 1)   (unbiased)

with m the number of values per channel; ``momentum=None`` gives the cumulative average
(factor 1 / num_batches_tracked). In eval mode mu and var are the running statistics.
Parameters ``weight`` (gamma, ones) and ``bias`` (beta, zeros); buffers ``running_mean``,
``running_var``, ``num_batches_tracked``, as in PyTorch, so ``state_dict`` moves both ways.

Backward in training mode (mu and var depend on x):
    dx = gamma / (m sqrt(var + eps)) * (m g - sum(g) - x_hat * sum(g * x_hat))
Caches: x_hat and 1 / sqrt(var + eps).
"""

from __future__ import annotations

import numpy as np

from .._checks import as_array, check_finite
from . import init
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    _layouts: dict = {}  # ndim -> description, set by subclasses

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=np.float32, *, bias: bool = True):
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"{type(self).__name__}: expected num_features > 0, got {num_features}")
        if not eps > 0:  # as torch: eps keeps 1 / sqrt(var + eps) finite for a constant channel
            raise ValueError(f"{type(self).__name__}: expected eps > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: expected 0 <= momentum <= 1 or None, got {momentum}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight = Parameter(np.empty(num_features, dtype=dtype)) if affine else None
        self.bias = Parameter(np.empty(num_features, dtype=dtype)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None
        self.reset_parameters()
        self._cache = None

    def reset_parameters(self) -> None:
        """Running statistics to (0, 1, 0 batches); weight to ones and bias to zeros, through ``nn.init``."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def _check(self, x):
        x = as_array(x, f"{type(self).__name__} input")
        if x.ndim not in self._layouts:
            layouts = " or ".join(v.format(C=self.num_features) for v in self._layouts.values())
            raise ValueError(f"{type(self).__name__}: expected input of shape {layouts}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{type(self).__name__}: expected input with num_features={self.num_features} channels "
                             f"(dimension 1), got shape {x.shape} with {x.shape[1]} channels")
        check_finite(x, f"{type(self).__name__} input")  # before the running statistics see the batch
        return x

    def forward(self, x):
        x = self._check(x)
        axes = (0,) + tuple(range(2, x.ndim))
        bshape = (1, -1) + (1,) * (x.ndim - 2)
        m = x.size // self.num_features
        if x.shape[0] == 0:  # an empty batch, as torch: an empty output, statistics untouched, but it is counted
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
            self._cache = None
            return self.end_forward(x.copy())
        use_batch_stats = self.training or not self.track_running_stats
        if use_batch_stats:
            if m <= 1:
                raise ValueError(f"{type(self).__name__}: expected more than 1 value per channel when training, "
                                 f"got input of shape {x.shape}")
            mean = x.mean(axis=axes)
            xc = x - mean.reshape(bshape)
            var = np.mean(xc * xc, axis=axes)
            if self.training and self.track_running_stats:
                self.num_batches_tracked += 1
                f = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                rm, rv = self.running_mean, self.running_var
                rm *= 1 - f
                rm += (f * mean).astype(rm.dtype)
                rv *= 1 - f
                rv += (f * var * (m / (m - 1))).astype(rv.dtype)
        else:
            mean, var = self.running_mean.astype(x.dtype), self.running_var.astype(x.dtype)
            xc = x - mean.reshape(bshape)
        inv_std = (1.0 / np.sqrt(var + self.eps)).astype(np.result_type(x.dtype, np.float32))
        x_hat = xc * inv_std.reshape(bshape)
        self._cache = (x_hat, inv_std, use_batch_stats, axes, bshape, m)
        if not self.affine:
            return self.end_forward(x_hat)
        y = x_hat * self.weight.data.reshape(bshape)
        return self.end_forward(y if self.bias is None else y + self.bias.data.reshape(bshape))

    def backward(self, grad_out, retain_graph: bool = False):
        g = self.begin_backward(grad_out, retain_graph)
        if self._cache is None:  # the forward pass saw an empty batch
            return np.zeros(g.shape, dtype=np.result_type(g, np.float32))
        x_hat, inv_std, use_batch_stats, axes, bshape, m = self._cache
        dbeta = g.sum(axis=axes)
        dgamma = (g * x_hat).sum(axis=axes)
        gamma = self.weight.data if self.affine else np.ones(self.num_features, dtype=x_hat.dtype)
        scale = (gamma * inv_std).reshape(bshape)
        if use_batch_stats:
            dx = scale * (g - (dbeta / m).reshape(bshape) - x_hat * (dgamma / m).reshape(bshape))
        else:
            dx = g * scale
        if self.affine:
            self.weight.accumulate(dgamma)
            if self.bias is not None:
                self.bias.accumulate(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs: statistics per feature C."""

    _layouts = {2: "(N, {C})", 3: "(N, {C}, L)"}


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) images: statistics per channel, over N, H and W."""

    _layouts = {4: "(N, {C}, H, W)"}
