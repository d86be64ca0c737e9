"""Weight initialisation (``torch.nn.init``), in place on a Parameter, from the package's generator.

Xavier/Glorot keeps the variance of activations constant for tanh/sigmoid layers,
Var(W) = 2 / (fan_in + fan_out); He/Kaiming does it for ReLU layers, Var(W) = 2 / fan_in.
"""

from __future__ import annotations

import math

import numpy as np

from ..random import get_rng


def _fans(p):
    shape = p.data.shape
    if len(shape) < 2:
        raise ValueError(f"init: expected a weight with at least 2 dimensions, got shape {shape}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(p, values):
    p.data[...] = values.astype(p.data.dtype)
    return p


def zeros_(p):
    p.data[...] = 0
    return p


def ones_(p):
    p.data[...] = 1
    return p


def constant_(p, value):
    p.data[...] = value
    return p


def normal_(p, mean=0.0, std=1.0):
    return _fill(p, get_rng().normal(mean, std, p.data.shape))


def uniform_(p, a=0.0, b=1.0):
    return _fill(p, get_rng().uniform(a, b, p.data.shape))


def xavier_uniform_(p, gain=1.0):
    fan_in, fan_out = _fans(p)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(p, -bound, bound)


def xavier_normal_(p, gain=1.0):
    fan_in, fan_out = _fans(p)
    return normal_(p, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_normal_(p, nonlinearity="relu"):
    fan_in, _ = _fans(p)
    gain = math.sqrt(2.0) if nonlinearity == "relu" else 1.0
    return normal_(p, 0.0, gain / math.sqrt(fan_in))


def kaiming_uniform_(p, nonlinearity="relu"):
    fan_in, _ = _fans(p)
    gain = math.sqrt(2.0) if nonlinearity == "relu" else 1.0
    bound = gain * math.sqrt(3.0 / fan_in)
    return uniform_(p, -bound, bound)
