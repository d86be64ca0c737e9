"""Sinusoidal positional encoding ("Attention Is All You Need", section 3.5).

Attention treats its input as a set: permute the tokens and the outputs permute the same way.
To let a model use order, add to token t the vector

    PE[t, 2i]   = sin(t / 10000^(2i / d_model))
    PE[t, 2i+1] = cos(t / 10000^(2i / d_model))

whose frequencies fall geometrically from 1 to 1/10000, so every position gets a distinct code and
PE[t + k] is a fixed linear map (a rotation per frequency) of PE[t].

PyTorch has no such layer; :class:`PositionalEncoding` is the one of PyTorch's transformer tutorial
(same arguments, same buffer ``pe`` of shape (max_len, 1, d_model)), plus ``batch_first``.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array
from .dropout import Dropout
from .module import Module


def sinusoidal_positional_encoding(max_len: int, d_model: int, dtype=np.float32) -> np.ndarray:
    """The table PE (max_len, d_model) above (an odd d_model drops the last cosine column)."""
    if max_len <= 0 or d_model <= 0:
        raise ValueError(f"sinusoidal_positional_encoding: expected positive sizes, got max_len={max_len}, "
                         f"d_model={d_model}")
    position = np.arange(max_len, dtype=np.float64)[:, None]
    div_term = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    pe = np.zeros((max_len, d_model), dtype=np.float64)
    pe[:, 0::2] = np.sin(position * div_term)
    pe[:, 1::2] = np.cos(position * div_term)[:, : d_model // 2]
    return pe.astype(dtype)


class PositionalEncoding(Module):
    """x + PE[:L], then dropout. x (L, N, d_model), or (N, L, d_model) with ``batch_first``, or (L, d_model).

    Buffer ``pe`` (max_len, 1, d_model), as in PyTorch's tutorial. Backward: the encoding is a
    constant, so dLoss/dx is the dropout's backward of the upstream gradient. Caches: the dropout mask.
    """

    def __init__(self, d_model: int, dropout: float = 0.1, max_len: int = 5000, batch_first: bool = False,
                 dtype=np.float32):
        super().__init__()
        self.d_model, self.max_len, self.batch_first = d_model, max_len, batch_first
        self.dropout = Dropout(dropout)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model, dtype)[:, None, :])

    def forward(self, x):
        x = as_array(x, "PositionalEncoding input")
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            raise ValueError(f"PositionalEncoding: expected input of shape (L, N, d_model={self.d_model}) "
                             f"(batch_first: (N, L, d_model); unbatched: (L, d_model)), got {x.shape}")
        L = x.shape[1] if (self.batch_first and x.ndim == 3) else x.shape[0]
        if L > self.max_len:
            raise ValueError(f"PositionalEncoding: expected a sequence of at most max_len={self.max_len} "
                             f"positions, got {L}")
        pe = self.pe[:L, 0]  # (L, d_model)
        if x.ndim == 3:
            pe = pe[None] if self.batch_first else pe[:, None]
        return self.end_forward(self.dropout.forward(x + pe.astype(x.dtype, copy=False)))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        return self.dropout.backward(grad_out)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, max_len={self.max_len}, batch_first={self.batch_first}"
