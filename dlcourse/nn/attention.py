"""``MultiheadAttention`` (``torch.nn.MultiheadAttention``): h attention heads in parallel subspaces.

With E = embed_dim, h = num_heads, d = E / h, for query (L, N, E), key (S, N, kdim), value
(S, N, vdim) (``batch_first=True``: (N, L, E), ...; unbatched: (L, E), (S, kdim), (S, vdim)):

    Q = query W_q^T + b_q,  K = key W_k^T + b_k,  V = value W_v^T + b_v      (projections to E)
    split E into h heads of size d:  Q_i, K_i, V_i
    head_i = softmax(Q_i K_i^T / sqrt(d) + mask) V_i                           (scaled dot-product)
    out    = concat(head_1 .. head_h) W_o^T + b_o                              (``out_proj``)

Parameters as in PyTorch: ``in_proj_weight`` (3E, E) stacks W_q, W_k, W_v and ``in_proj_bias``
(3E,) stacks the biases, when kdim = vdim = E; otherwise ``q_proj_weight`` (E, E),
``k_proj_weight`` (E, kdim), ``v_proj_weight`` (E, vdim) and ``in_proj_bias``. ``out_proj`` is a
``Linear(E, E)``. So ``state_dict`` keys are torch's: in_proj_weight, in_proj_bias,
out_proj.weight, out_proj.bias (and bias_k, bias_v with ``add_bias_kv``).

Extra keys, as in PyTorch: ``add_bias_kv=True`` appends the learned ``bias_k`` / ``bias_v`` (1, 1, E) as
one more key and value to every sequence (after the projections); ``add_zero_attn=True`` appends a
zero key and value to every head. The masks are padded so these are never blocked, and the weights
have S + 1 (or S + 2) columns.

Masks, *PyTorch's MultiheadAttention convention* (the opposite of scaled_dot_product_attention's
boolean mask): a boolean ``attn_mask`` (L, S) or (N*h, L, S) is True where a pair is *blocked*;
a boolean ``key_padding_mask`` (N, S) is True at padding keys, which no query may attend to.
Float masks are added to the scores. ``is_causal=True`` is PyTorch's hint that ``attn_mask`` is
the causal mask; as in PyTorch it needs ``attn_mask`` (ValueError without it).
A query whose keys are all blocked gets zero weights and output b_o (PyTorch gives that with
``need_weights=False`` and NaN with ``need_weights=True``).

``forward`` returns ``(attn_output, attn_weights)``: the weights (after dropout, as PyTorch's)
averaged over the heads (N, L, S), or per head (N, h, L, S) with ``average_attn_weights=False``,
or None with ``need_weights=False``.

``backward(grad_out, grad_weights=None)`` returns the tuple ``(grad_query, grad_key, grad_value)``
in forward's argument order (the package's rule for a module with several array inputs) and
accumulates every parameter gradient. In self-attention (the same array passed as query, key and
value) it is still the three-tuple; the input's gradient is their sum, ``sum(mha.backward(g))``.
``grad_weights`` (the shape of the returned weights) adds a loss that uses the weights. With
``needs_input_grad = False`` (inputs that are data, see ``Module``) it skips dX = dY W and returns None.
Speed: in self-attention Q, K, V come from one matrix product and dW_in is one product; the heads are
strided views (no copies), and the batched products write straight into the output buffers. The
per-head core (scores, softmax, dropout, weighted sum, and back) is ``attention_heads`` and
``attention_heads_backward`` of ``attention_functional.py``.
Caches (:class:`AttentionCache`): the inputs, the per-head Q (scaled by 1/sqrt(d)), K, V, the weights P
and the dropout mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_array, check_finite, to_numpy
from . import init
from .attention_functional import attention_heads, attention_heads_backward, merge_heads, split_heads
from .linear import Linear
from .module import Module
from .parameter import Parameter


@dataclass
class AttentionCache:
    """What ``MultiheadAttention.forward`` keeps for ``backward``: the inputs in the module's layout with a
    batch axis (query (L, N, E) time-major or (N, L, E) batch-first; key and value alike), whether query,
    key and value were one array (self-attention), the per-head qh (N, h, L, d) scaled by 1/sqrt(d), kh and
    vh (N, h, S', d) with any extra keys, the weights P (N, h, L, S') before dropout, the dropout mask D
    (None without dropout), the number S of real keys, whether the input had a batch axis, and how the
    weights were returned (need_weights, average_attn_weights)."""

    query: np.ndarray
    key: np.ndarray
    value: np.ndarray
    self_attention: bool
    qh: np.ndarray
    kh: np.ndarray
    vh: np.ndarray
    P: np.ndarray
    D: np.ndarray | None
    num_keys: int
    batched: bool
    need_weights: bool
    average_attn_weights: bool


class MultiheadAttention(Module):
    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim: int | None = None,
                 vdim: int | None = None, batch_first: bool = False, dtype=np.float32):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: expected positive embed_dim and num_heads, got "
                             f"embed_dim={embed_dim}, num_heads={num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: expected embed_dim divisible by num_heads, got embed_dim="
                             f"{embed_dim}, num_heads={num_heads} (remainder {embed_dim % num_heads})")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"MultiheadAttention: expected a dropout probability in [0, 1], got {dropout}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.batch_first = batch_first
        self.add_bias_kv, self.add_zero_attn = add_bias_kv, add_zero_attn
        E = embed_dim
        # Registration order = torch's state_dict order; the draws in reset_parameters' order.
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.empty((3 * E, E), dtype))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(np.empty((E, E), dtype))
            self.k_proj_weight = Parameter(np.empty((E, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.empty((E, self.vdim), dtype))
            self.in_proj_weight = None
        self._init_in_proj()
        self.in_proj_bias = Parameter(np.zeros(3 * E, dtype)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)  # draws its weight as torch's Linear does
        if bias:
            init.zeros_(self.out_proj.bias)
        if add_bias_kv:  # one learned extra key and value, appended to every sequence
            self.bias_k = Parameter(np.empty((1, 1, E), dtype))
            self.bias_v = Parameter(np.empty((1, 1, E), dtype))
            self._init_bias_kv()
        else:
            self.bias_k = self.bias_v = None
        self._cache = None

    # -- initialisation (torch's _reset_parameters) ---------------------------------------
    def _init_in_proj(self):
        for p in (self.in_proj_weight, self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
            if p is not None:
                init.xavier_uniform_(p)

    def _init_bias_kv(self):
        init.xavier_normal_(self.bias_k)
        init.xavier_normal_(self.bias_v)

    def reset_parameters(self) -> None:
        """As torch: W_in ~ xavier_uniform, in_proj_bias and out_proj.bias = 0, out_proj.weight as a Linear's,
        bias_k and bias_v ~ xavier_normal; drawn in the constructor's order."""
        self._init_in_proj()
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
        self.out_proj.reset_parameters()
        if self.out_proj.bias is not None:
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            self._init_bias_kv()

    # -- helpers ------------------------------------------------------------------------
    def _proj_weights(self):
        """(W_q, W_k, W_v) as arrays (views into in_proj_weight when packed)."""
        if self._qkv_same_embed_dim:
            W, E = self.in_proj_weight.data, self.embed_dim
            return W[:E], W[E:2 * E], W[2 * E:]
        return self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data

    def _heads(self, x):
        return split_heads(x, self.num_heads, self.batch_first)

    @property
    def _seq_axis(self):
        return 1 if self.batch_first else 0

    def _in_projections(self, q_in, k_in, v_in, self_attention):
        """Q, K, V = x W^T + b for query, key and value (in their layout); one product in self-attention."""
        E = self.embed_dim
        if self_attention and self._qkv_same_embed_dim:
            qkv = q_in @ self.in_proj_weight.data.T
            if self.in_proj_bias is not None:
                qkv += self.in_proj_bias.data
            return qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
        q, k, v = (x @ W.T for x, W in zip((q_in, k_in, v_in), self._proj_weights()))
        if self.in_proj_bias is not None:
            b = self.in_proj_bias.data
            q += b[:E]
            k += b[E:2 * E]
            v += b[2 * E:]
        return q, k, v

    def _extended_heads(self, k, v):
        """Per-head K and V (N, h, S', d), with bias_k / bias_v appended as one more key and value
        (add_bias_kv) and a zero key and value (add_zero_attn)."""
        if self.bias_k is not None:
            slot = list(k.shape)
            slot[self._seq_axis] = 1
            k = np.concatenate([k, np.broadcast_to(self.bias_k.data, slot)], axis=self._seq_axis)
            v = np.concatenate([v, np.broadcast_to(self.bias_v.data, slot)], axis=self._seq_axis)
        kh, vh = self._heads(k), self._heads(v)
        if self.add_zero_attn:
            zeros = np.zeros(kh.shape[:2] + (1, self.head_dim), dtype=kh.dtype)
            kh, vh = np.concatenate([kh, zeros], axis=2), np.concatenate([vh, zeros], axis=2)
        return kh, vh

    def _strip_extra_keys(self, dh, S):
        """Gradient of the extended keys (or values) (N, h, S', d) -> the real ones' (S, in the inputs' layout)
        and bias_k's (or bias_v's), summed over the batch, (1, 1, E) (None without add_bias_kv)."""
        x = merge_heads(dh[:, :, :-1] if self.add_zero_attn else dh, self.batch_first)
        if self.bias_k is None:
            return x, None
        real, bias_row = (x[:, :S], x[:, S:]) if self.batch_first else (x[:S], x[S:])
        return real, bias_row.sum(axis=(0, 1)).reshape(1, 1, -1)

    def _check_inputs(self, query, key, value):
        q = as_array(query, "MultiheadAttention query")
        k = q if key is query else as_array(key, "MultiheadAttention key")
        v = k if value is key else as_array(value, "MultiheadAttention value")
        for name, arr in (("query", q), ("key", k), ("value", v)):
            check_finite(arr, f"MultiheadAttention {name}")
        if q.ndim not in (2, 3) or k.ndim != q.ndim or v.ndim != q.ndim:
            raise ValueError(f"MultiheadAttention: expected query, key, value all 3-D (batched) or all 2-D "
                             f"(unbatched), got shapes {q.shape}, {k.shape}, {v.shape}")
        for name, arr, dim in (("query", q, self.embed_dim), ("key", k, self.kdim), ("value", v, self.vdim)):
            if arr.shape[-1] != dim:
                raise ValueError(f"MultiheadAttention: expected {name} with last dimension {dim}, "
                                 f"got shape {arr.shape}")
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"MultiheadAttention: expected key and value with the same leading shape, "
                             f"got {k.shape} and {v.shape}")
        batch_axis = 0 if self.batch_first else 1
        if q.ndim == 3 and q.shape[batch_axis] != k.shape[batch_axis]:
            raise ValueError(f"MultiheadAttention: expected query and key with the same batch size (axis "
                             f"{batch_axis}), got shapes {q.shape} and {k.shape}")
        batched = q.ndim == 3
        if not batched:  # unbatched: a batch of one, in the module's layout (the same array stays the same)
            q1 = np.expand_dims(q, batch_axis)
            k1 = q1 if k is q else np.expand_dims(k, batch_axis)
            q, k, v = q1, k1, k1 if v is k else np.expand_dims(v, batch_axis)
        return q, k, v, batched

    def _additive_mask(self, attn_mask, key_padding_mask, N, L, S, dtype, batched, num_keys):
        """The masks as one float array broadcastable to (N, h, L, num_keys), -inf where blocked; or None.
        The extra keys after the S real ones (add_bias_kv, add_zero_attn) are never blocked (PyTorch pads the
        masks with zeros)."""
        h = self.num_heads
        total = None
        if attn_mask is not None:
            m = to_numpy(attn_mask)
            shapes = [(L, S), (N * h, L, S)] if batched else [(L, S), (h, L, S)]
            if m.shape not in shapes:
                raise ValueError(f"MultiheadAttention: expected attn_mask of shape {' or '.join(map(str, shapes))}, "
                                 f"got {m.shape}")
            total = self._as_additive(m, "attn_mask", dtype)
            total = total.reshape(N, h, L, S) if total.ndim == 3 else total
        if key_padding_mask is not None:
            m = to_numpy(key_padding_mask)
            shape = (N, S) if batched else (S,)
            if m.shape != shape:
                raise ValueError(f"MultiheadAttention: expected key_padding_mask of shape {shape} (batch, keys), "
                                 f"got {m.shape}")
            kpm = self._as_additive(m, "key_padding_mask", dtype).reshape(N, 1, 1, S)
            total = kpm if total is None else total + kpm
        if total is not None and num_keys > S:
            total = np.concatenate([total, np.zeros(total.shape[:-1] + (num_keys - S,), total.dtype)], axis=-1)
        return total

    @staticmethod
    def _as_additive(m, name, dtype):
        if m.dtype == np.bool_:
            return np.where(m, -np.inf, 0.0).astype(dtype)
        if np.issubdtype(m.dtype, np.floating):
            return m.astype(dtype, copy=False)
        raise ValueError(f"MultiheadAttention: expected {name} of dtype bool (True = blocked) or float (added "
                         f"to the scores), got dtype {m.dtype}")

    # -- forward / backward -------------------------------------------------------------
    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True, attn_mask=None,
                average_attn_weights: bool = True, is_causal: bool = False):
        q_in, k_in, v_in, batched = self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is the causal mask; "
                             "expected attn_mask (e.g. Transformer.generate_square_subsequent_mask), got None")
        self_attention = q_in is k_in and k_in is v_in
        q, k, v = self._in_projections(q_in, k_in, v_in, self_attention)
        S = k.shape[self._seq_axis]
        kh, vh = self._extended_heads(k, v)
        qh = self._heads(q) * q.dtype.type(1.0 / math.sqrt(self.head_dim))  # Q scaled once, as PyTorch does
        N, _, L, _ = qh.shape
        mask = self._additive_mask(attn_mask, key_padding_mask, N, L, S, q.dtype, batched, kh.shape[2])
        heads = np.empty(q.shape, q.dtype)  # the heads side by side, written head by head through (N, h, L, d) views
        P, D = attention_heads(qh, kh, vh, mask, self.dropout if self.training else 0.0, out=self._heads(heads))
        out = self.out_proj.forward(heads)
        self._cache = AttentionCache(q_in, k_in, v_in, self_attention, qh, kh, vh, P, D, S, batched,
                                     need_weights, average_attn_weights)
        weights = None
        if need_weights:
            Pd = P if D is None else P * D
            weights = Pd.mean(axis=1) if average_attn_weights else Pd
            weights = weights if batched else weights[0]
        return self.end_forward((out if batched else np.squeeze(out, self._batch_axis), weights))

    def backward(self, grad_out, grad_weights=None, retain_graph: bool = False):
        """Return (grad_query, grad_key, grad_value); accumulate every parameter gradient (see module doc)."""
        g = self.begin_backward(grad_out, retain_graph)
        c = self._cache
        g = g if c.batched else np.expand_dims(g, self._batch_axis)
        d_out_heads = self._heads(self.out_proj.backward(g))  # (N, h, L, d)
        extra_keys = self.bias_k is not None or self.add_zero_attn
        packed = c.self_attention and not extra_keys  # dQ, dK, dV side by side: dW_in in one product
        E = self.embed_dim
        if packed:
            d_qkv = np.empty(c.query.shape[:-1] + (3 * E,), d_out_heads.dtype)
            d_q, d_k, d_v = d_qkv[..., :E], d_qkv[..., E:2 * E], d_qkv[..., 2 * E:]
        else:
            d_q, d_k, d_v = (np.empty(x.shape[:-1] + (E,), d_out_heads.dtype) for x in (c.query, c.key, c.value))
        into = (self._heads(d_q), None, None) if extra_keys else tuple(self._heads(d) for d in (d_q, d_k, d_v))
        scale = 1.0 / math.sqrt(self.head_dim)
        _, d_kh, d_vh = attention_heads_backward(d_out_heads, c.qh, c.kh, c.vh, c.P, c.D, scale,
                                                 self._weights_grad(grad_weights, c), out=into)
        if extra_keys:
            d_k, d_bias_k = self._strip_extra_keys(d_kh, c.num_keys)
            d_v, d_bias_v = self._strip_extra_keys(d_vh, c.num_keys)
            if self.bias_k is not None:
                self.bias_k.accumulate(d_bias_k)
                self.bias_v.accumulate(d_bias_v)
        self._accumulate_in_proj(d_qkv if packed else None, (d_q, d_k, d_v), c)
        if not self.needs_input_grad:  # the inputs are data (see Module): skip dX = dY W
            return None
        grads = [d @ W for d, W in zip((d_q, d_k, d_v), self._proj_weights())]
        return tuple(grads if c.batched else [np.squeeze(gr, self._batch_axis) for gr in grads])

    @property
    def _batch_axis(self):
        return 0 if self.batch_first else 1

    def _weights_grad(self, grad_weights, c):
        """A loss's gradient with respect to the returned weights, as (N, h, L, S') (or None)."""
        if grad_weights is None:
            return None
        if not c.need_weights:
            raise ValueError("MultiheadAttention.backward: got grad_weights, but forward returned no weights "
                             "(need_weights=False)")
        gw = as_array(grad_weights, "MultiheadAttention grad_weights")
        gw = gw if c.batched else gw[None]
        expected = (c.P.shape[0],) + c.P.shape[2:] if c.average_attn_weights else c.P.shape
        if gw.shape != expected:
            raise ValueError(f"MultiheadAttention.backward: expected grad_weights of shape {expected}, got {gw.shape}")
        return gw[:, None] / self.num_heads if c.average_attn_weights else gw

    def _accumulate_in_proj(self, d_qkv, d_qkv_parts, c):
        """dW_in = dY^T X for each of Q, K, V (one product when packed) and db_in = the sums of dY."""
        E = self.embed_dim
        inputs = (c.query, c.key, c.value)
        if d_qkv is not None:
            self.in_proj_weight.accumulate(d_qkv.reshape(-1, 3 * E).T @ c.query.reshape(-1, E))
        elif self._qkv_same_embed_dim:
            dW = np.empty_like(self.in_proj_weight.data)
            for i, (dy, x) in enumerate(zip(d_qkv_parts, inputs)):
                np.matmul(dy.reshape(-1, E).T, x.reshape(-1, x.shape[-1]), out=dW[i * E:(i + 1) * E])
            self.in_proj_weight.accumulate(dW)
        else:
            for p, dy, x in zip((self.q_proj_weight, self.k_proj_weight, self.v_proj_weight), d_qkv_parts, inputs):
                p.accumulate(dy.reshape(-1, E).T @ x.reshape(-1, x.shape[-1]))
        if self.in_proj_bias is not None:
            if d_qkv is not None:
                self.in_proj_bias.accumulate(d_qkv.reshape(-1, 3 * E).sum(axis=0))
            else:
                self.in_proj_bias.accumulate(np.concatenate([dy.reshape(-1, E).sum(axis=0) for dy in d_qkv_parts]))

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
