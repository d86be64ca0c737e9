"""Chapter 8's capstone: a transformer block assembled from the learner's own functions.

The chapter's build-it steps give six functions: ``attention_forward`` / ``attention_backward`` (scaled dot-product
attention), ``split_heads`` / ``merge_heads`` and ``layer_norm`` / ``layer_norm_backward``. :class:`Pieces` holds
whatever ``use(...)`` returned for each (the learner's function once it passed its check, else the course's
reference), and the modules here are built on them, with the library's ``Linear``, ``ReLU`` and ``Embedding`` for
the rest:

* :class:`YourLayerNorm` - ``torch.nn.LayerNorm``'s parameters (``weight``, ``bias``); forward and backward are
  ``pieces.layer_norm`` and ``pieces.layer_norm_backward``. Caches the input x.
* :class:`YourMultiheadAttention` - ``torch.nn.MultiheadAttention``'s parameters (``in_proj_weight`` (3E, E),
  ``in_proj_bias`` (3E,), ``out_proj``), batch first. Forward: the three projections, ``split_heads``,
  ``attention_forward``, ``merge_heads``, ``out_proj``; backward runs the same steps in reverse: ``out_proj``'s
  backward, ``split_heads`` (the inverse of ``merge_heads``), ``attention_backward``, ``merge_heads``, the
  projections. Caches the inputs, the per-head Q, K, V and the attention weights.
* :class:`YourTransformerBlock` - ``torch.nn.TransformerEncoderLayer`` (ReLU, no dropout, batch first), pre-norm
  or post-norm, with children named as torch's (``self_attn``, ``linear1``, ``linear2``, ``norm1``, ``norm2``), so a
  state dict moves between the two.
* :class:`YourRecallTransformer` - chapter 8's :class:`~.recall.RecallTransformer` with its encoder layers and final
  LayerNorm replaced by the ones above (the same initial weights, the same state dict keys), so
  :func:`~.recall.torch_twin`, :func:`~.recall.train_recall` and :func:`~.recall.attention_maps` take it as they
  take the library's model.

Computation follows the input's dtype: the learner's functions may compute in float64 (``/ np.sqrt(d)`` promotes
float32), and their results are cast back.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from dlcourse import nn
from dlcourse.nn.parameter import Parameter
from dlcourse.nn.transformer import EncoderLayerBase

from ..checker import reference
from .recall import RecallTransformer


@dataclass(frozen=True)
class Pieces:
    """The six functions a transformer block needs, as ``use(...)`` returned them (exercise ``ch8.<field name>``)."""

    attention_forward: Callable
    attention_backward: Callable
    split_heads: Callable
    merge_heads: Callable
    layer_norm: Callable
    layer_norm_backward: Callable

    def __post_init__(self):
        for f in fields(self):
            if not callable(getattr(self, f.name)):
                raise TypeError(f"Pieces: expected a function for {f.name}, got {type(getattr(self, f.name)).__name__}")

    @classmethod
    def references(cls) -> "Pieces":
        """The course's reference of every piece (what ``use`` returns for a stub that does not pass yet)."""
        return cls(**{f.name: reference(f"ch8.{f.name}") for f in fields(cls)})

    def whose(self) -> dict[str, bool]:
        """{piece name: True when it is the learner's own function, False when it is the course's reference}."""
        return {f.name: getattr(self, f.name) is not reference(f"ch8.{f.name}") for f in fields(self)}

    def summary(self) -> str:
        """One line per piece: yours or the course's reference."""
        return "\n".join(f"  {name:<20s} {'yours' if mine else 'the course reference (yours has not passed its check)'}"
                         for name, mine in self.whose().items())


def _like(a, x):
    """``a`` as an array of ``x``'s dtype (no copy when it already is)."""
    return np.asarray(a).astype(np.asarray(x).dtype, copy=False)


class YourLayerNorm(nn.Module):
    """LayerNorm over the last axis (E,) on ``pieces.layer_norm`` / ``pieces.layer_norm_backward``.
    Parameters ``weight`` (ones) and ``bias`` (zeros), (E,), as torch's. Caches the input x for backward."""

    def __init__(self, normalized_shape: int, pieces: Pieces, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.normalized_shape, self.eps, self.pieces = int(normalized_shape), eps, pieces
        self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
        self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
        self._x = None

    def forward(self, x):
        x = np.asarray(x)
        if x.shape[-1:] != (self.normalized_shape,):
            raise ValueError(f"YourLayerNorm: expected input of shape (..., {self.normalized_shape}), got {x.shape}")
        self._x = x
        return self.end_forward(_like(self.pieces.layer_norm(x, self.weight.data, self.bias.data, self.eps), x))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        dx, dweight, dbias = self.pieces.layer_norm_backward(grad_out, self._x, self.weight.data, self.eps)
        self.weight.accumulate(_like(dweight, self.weight.data))
        self.bias.accumulate(_like(dbias, self.bias.data))
        return _like(dx, self._x)

    def extra_repr(self) -> str:
        return f"({self.normalized_shape},), eps={self.eps}"


class YourMultiheadAttention(nn.Module):
    """Multi-head attention, batch first: query (N, L, E), key and value (N, S, E) -> (output (N, L, E), weights).

    ``attn_mask`` as ``torch.nn.MultiheadAttention``'s boolean one: (L, S), True where a query may NOT look.
    ``forward`` returns the weights averaged over the heads (N, L, S), per head (N, h, L, S) with
    ``average_attn_weights=False``, or None with ``need_weights=False``. ``backward(grad_out)`` returns
    (grad_query, grad_key, grad_value) and accumulates every parameter gradient.
    """

    def __init__(self, embed_dim: int, num_heads: int, pieces: Pieces, dtype=np.float32):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"YourMultiheadAttention: expected positive embed_dim divisible by num_heads, got "
                             f"embed_dim={embed_dim}, num_heads={num_heads}")
        self.embed_dim, self.num_heads, self.pieces = embed_dim, num_heads, pieces
        library_layer = nn.MultiheadAttention(embed_dim, num_heads, batch_first=True, dtype=dtype)  # torch's init
        self.in_proj_weight = Parameter(library_layer.in_proj_weight.data)
        self.in_proj_bias = Parameter(library_layer.in_proj_bias.data)
        self.out_proj = library_layer.out_proj  # a plain Linear(E, E)
        self._cache = None

    def forward(self, query, key, value, attn_mask=None, need_weights: bool = True,
                average_attn_weights: bool = True):
        inputs = [np.asarray(a) for a in (query, key, value)]
        E = self.embed_dim
        for name, a in zip(("query", "key", "value"), inputs):
            if a.ndim != 3 or a.shape[-1] != E:
                raise ValueError(f"YourMultiheadAttention: expected {name} of shape (N, L, {E}), got {a.shape}")
        may_look = None
        if attn_mask is not None:
            attn_mask = np.asarray(attn_mask)
            if attn_mask.dtype != bool:
                raise TypeError(f"YourMultiheadAttention: expected a boolean attn_mask (True = blocked), got dtype "
                                f"{attn_mask.dtype}")
            may_look = ~attn_mask
        W, b = self.in_proj_weight.data, self.in_proj_bias.data
        q, k, v = (a @ W[i * E:(i + 1) * E].T + b[i * E:(i + 1) * E] for i, a in enumerate(inputs))
        heads = [self.pieces.split_heads(t, self.num_heads) for t in (q, k, v)]
        out_heads, weights = self.pieces.attention_forward(*heads, may_look)
        out = self.out_proj.forward(_like(self.pieces.merge_heads(_like(out_heads, q)), q))
        weights = _like(weights, q)
        self._cache = (inputs, heads, weights)
        if not need_weights:
            return self.end_forward((out, None))
        return self.end_forward((out, weights.mean(axis=1) if average_attn_weights else weights))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        inputs, (Qh, Kh, Vh), weights = self._cache
        E = self.embed_dim
        grad_heads = self.pieces.split_heads(self.out_proj.backward(grad_out), self.num_heads)
        grads = self.pieces.attention_backward(grad_heads, Qh, Kh, Vh, weights)
        grad_qkv = [_like(self.pieces.merge_heads(g), x) for g, x in zip(grads, inputs)]  # dL/dq, dL/dk, dL/dv
        W = self.in_proj_weight.data
        rows = [g.reshape(-1, E) for g in grad_qkv]  # one row per token: dW = sum over tokens of g^T x
        self.in_proj_weight.accumulate(np.concatenate(
            [g.T @ x.reshape(-1, E) for g, x in zip(rows, inputs)]).astype(W.dtype, copy=False))
        self.in_proj_bias.accumulate(np.concatenate([g.sum(axis=0) for g in rows]).astype(W.dtype, copy=False))
        return tuple(g @ W[i * E:(i + 1) * E] for i, g in enumerate(grad_qkv))

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"


class YourTransformerBlock(EncoderLayerBase):
    """One encoder layer, x (N, L, d_model) -> (N, L, d_model), as ``torch.nn.TransformerEncoderLayer(d_model, nhead,
    dim_feedforward, dropout=0, batch_first=True, norm_first=norm_first)``:

        pre-norm:   x = x + sa(norm1(x));   x = x + ff(norm2(x))
        post-norm:  x = norm1(x + sa(x));   x = norm2(x + ff(x))

    with sa(x) = self_attn(x, x, x) and ff(x) = linear2(relu(linear1(x))). ``src_mask``: boolean (L, L), True =
    blocked. backward(grad_out) returns dL/dx: each residual adds its branch's gradient, and self-attention's three
    input gradients (query, key and value are all x) are summed. Caches: what each child caches.

    The wiring above (``forward`` and ``backward``) is the library layer's own, inherited from
    :class:`dlcourse.nn.transformer.EncoderLayerBase`; this class supplies the children and the two branches.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, pieces: Pieces, norm_first: bool = True,
                 layer_norm_eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        self.self_attn = YourMultiheadAttention(d_model, nhead, pieces, dtype=dtype)
        self.linear1 = nn.Linear(d_model, dim_feedforward, dtype=dtype)
        self.linear2 = nn.Linear(dim_feedforward, d_model, dtype=dtype)
        self.norm1 = YourLayerNorm(d_model, pieces, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = YourLayerNorm(d_model, pieces, eps=layer_norm_eps, dtype=dtype)
        self.activation = nn.ReLU()
        self.norm_first = norm_first

    def _sa(self, x, src_mask):
        return self.self_attn.forward(x, x, x, attn_mask=src_mask, need_weights=False)[0]

    def _sa_backward(self, g):
        return sum(self.self_attn.backward(g))

    def _ff(self, x):
        return self.linear2.forward(self.activation.forward(self.linear1.forward(x)))

    def _ff_backward(self, g):
        return self.linear1.backward(self.activation.backward(self.linear2.backward(g)))

    def forward(self, src, src_mask=None):
        return super().forward(np.asarray(src), src_mask)


class YourRecallTransformer(RecallTransformer):
    """:class:`~.recall.RecallTransformer` on the learner's pieces: the same embeddings, positions, ``Linear`` head
    and initial weights (drawn as the library's model draws them, then copied), with every encoder layer a
    :class:`YourTransformerBlock` and the final LayerNorm a :class:`YourLayerNorm`."""

    def __init__(self, pieces: Pieces, num_keys: int = 64, num_values: int = 10, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128, max_len: int = 128, positional: bool = True):
        super().__init__(num_keys, num_values, d_model, nhead, num_layers, dim_feedforward, max_len, positional)
        library_layers, library_norm, order = self.layers, self.norm, list(self._modules)
        self.layers = nn.Sequential(*[YourTransformerBlock(d_model, nhead, dim_feedforward, pieces, norm_first=True)
                                      for _ in range(num_layers)])
        self.layers.load_state_dict(library_layers.state_dict())
        self.norm = YourLayerNorm(d_model, pieces)
        self.norm.load_state_dict(library_norm.state_dict())
        for name in order:  # the library model's order of children, so the state dicts list the same keys in turn
            self._modules.move_to_end(name)
        self.pieces = pieces
