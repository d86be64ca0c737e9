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
strided views (no copies), and the batched products write straight into the output buffers.
Caches: the inputs, the per-head Q (scaled by 1/sqrt(d)), K, V, the weights P and the dropout mask.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array, check_finite, to_numpy
from ..random import get_rng
from . import init
from .attention_functional import make_dropout_mask, masked_softmax
from .linear import Linear
from .module import Module
from .parameter import Parameter


def _xavier_uniform(shape, dtype):
    fan_out, fan_in = shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    return get_rng().uniform(-bound, bound, shape).astype(dtype)


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
        # Registration order = torch's state_dict order. Init as torch: xavier_uniform, zero biases.
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_xavier_uniform((3 * E, E), dtype))
            self.q_proj_weight = self.k_proj_weight = self.v_proj_weight = None
        else:
            self.q_proj_weight = Parameter(_xavier_uniform((E, E), dtype))
            self.k_proj_weight = Parameter(_xavier_uniform((E, self.kdim), dtype))
            self.v_proj_weight = Parameter(_xavier_uniform((E, self.vdim), dtype))
            self.in_proj_weight = None
        self.in_proj_bias = Parameter(np.zeros(3 * E, dtype)) if bias else None
        self.out_proj = Linear(E, E, bias=bias, dtype=dtype)
        if bias:
            init.zeros_(self.out_proj.bias)
        if add_bias_kv:  # one learned extra key and value, appended to every sequence; init xavier_normal
            std = 1.0 / math.sqrt(E)
            self.bias_k = Parameter((get_rng().standard_normal((1, 1, E)) * std).astype(dtype))
            self.bias_v = Parameter((get_rng().standard_normal((1, 1, E)) * std).astype(dtype))
        else:
            self.bias_k = self.bias_v = None
        self._cache = None

    # -- helpers ------------------------------------------------------------------------
    def _proj_weights(self):
        """(W_q, W_k, W_v) as arrays (views into in_proj_weight when packed)."""
        if self._qkv_same_embed_dim:
            W = self.in_proj_weight.data
            E = self.embed_dim
            return W[:E], W[E:2 * E], W[2 * E:]
        return self.q_proj_weight.data, self.k_proj_weight.data, self.v_proj_weight.data

    def _proj_biases(self):
        if self.in_proj_bias is None:
            return None, None, None
        b, E = self.in_proj_bias.data, self.embed_dim
        return b[:E], b[E:2 * E], b[2 * E:]

    def _to_heads(self, x):
        """(B, T, E) batch-major or (T, B, E) time-major -> (B, h, T, d), a view."""
        if self.batch_first:
            B, T, _ = x.shape
            return x.reshape(B, T, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)
        T, B, _ = x.shape
        return x.reshape(T, B, self.num_heads, self.head_dim).transpose(1, 2, 0, 3)

    def _strip_extra_keys(self, dh, S):
        """Gradient of the extended keys (or values) (N, h, S', d) -> the real ones' (in the inputs' layout)
        and the bias row's, summed over the batch, (1, 1, E) (None without add_bias_kv)."""
        if self.add_zero_attn:  # the appended zero key / value has no parameter behind it
            dh = dh[:, :, :-1]
        if self.batch_first:
            x = np.ascontiguousarray(dh.transpose(0, 2, 1, 3)).reshape(dh.shape[0], dh.shape[2], -1)
            bias_row, x = (x[:, S:], x[:, :S]) if self.bias_k is not None else (None, x)
        else:
            x = np.ascontiguousarray(dh.transpose(2, 0, 1, 3)).reshape(dh.shape[2], dh.shape[0], -1)
            bias_row, x = (x[S:], x[:S]) if self.bias_k is not None else (None, x)
        return x, None if bias_row is None else bias_row.sum(axis=(0, 1)).reshape(1, 1, -1)

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
        return q, k, v

    def _additive_mask(self, attn_mask, key_padding_mask, N, L, S, dtype, batched):
        """The masks as one float array broadcastable to (N, h, L, S), -inf where blocked; or None."""
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
        q_in, k_in, v_in = self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is the causal mask; "
                             "expected attn_mask (e.g. Transformer.generate_square_subsequent_mask), got None")
        batched = q_in.ndim == 3
        if not batched:  # unbatched: a batch of one, in the module's layout
            axis = 0 if self.batch_first else 1
            q1 = np.expand_dims(q_in, axis)
            k1 = q1 if k_in is q_in else np.expand_dims(k_in, axis)
            v1 = k1 if v_in is k_in else np.expand_dims(v_in, axis)
            q_in, k_in, v_in = q1, k1, v1
        self_attention = q_in is k_in and k_in is v_in
        E, d = self.embed_dim, self.head_dim
        W_q, W_k, W_v = self._proj_weights()
        b_q, b_k, b_v = self._proj_biases()
        dtype = np.result_type(q_in.dtype, W_q.dtype)

        if self_attention and self._qkv_same_embed_dim:  # one matrix product for Q, K and V
            qkv = q_in @ self.in_proj_weight.data.T
            if self.in_proj_bias is not None:
                qkv += self.in_proj_bias.data
            q, k, v = qkv[..., :E], qkv[..., E:2 * E], qkv[..., 2 * E:]
        else:
            q, k, v = q_in @ W_q.T, k_in @ W_k.T, v_in @ W_v.T
            if b_q is not None:
                q += b_q
                k += b_k
                v += b_v
        seq_axis = 1 if self.batch_first else 0
        S = k.shape[seq_axis]
        if self.bias_k is not None:  # add_bias_kv: one more key and value, the learned bias_k / bias_v
            slot = list(k.shape)
            slot[seq_axis] = 1
            k = np.concatenate([k, np.broadcast_to(self.bias_k.data, slot)], axis=seq_axis)
            v = np.concatenate([v, np.broadcast_to(self.bias_v.data, slot)], axis=seq_axis)
        scale = 1.0 / math.sqrt(d)
        qh = self._to_heads(q) * dtype.type(scale)  # (N, h, L, d), scaled once here as PyTorch does
        kh, vh = self._to_heads(k), self._to_heads(v)  # (N, h, S, d)
        if self.add_zero_attn:  # add_zero_attn: one more key and value, all zeros, in every head
            zeros = np.zeros(kh.shape[:2] + (1, d), dtype=kh.dtype)
            kh, vh = np.concatenate([kh, zeros], axis=2), np.concatenate([vh, zeros], axis=2)
        N, _, L, _ = qh.shape

        scores = qh @ kh.transpose(0, 1, 3, 2)  # (N, h, L, S')
        mask = self._additive_mask(attn_mask, key_padding_mask, N, L, S, dtype, batched)
        if mask is not None:
            if kh.shape[2] > S:  # the extra keys are never masked (PyTorch pads the masks with zeros)
                pad = np.zeros(mask.shape[:-1] + (kh.shape[2] - S,), dtype=mask.dtype)
                mask = np.concatenate([mask, pad], axis=-1)
            scores += mask
        with np.errstate(invalid="ignore"):
            P = masked_softmax(scores)
        D = None
        if self.training and self.dropout > 0.0:
            D = make_dropout_mask(P.shape, self.dropout, dtype)
        Pd = P if D is None else P * D
        heads = np.empty(q.shape, dtype=np.result_type(Pd.dtype, vh.dtype))  # concat of the heads, (L, N, E)
        np.matmul(Pd, vh, out=self._to_heads(heads))  # written in place, head by head: (N, h, L, d) views
        out = self.out_proj.forward(heads)
        self._cache = (q_in, k_in, v_in, self_attention, qh, kh, vh, P, D, batched, average_attn_weights,
                       need_weights, out.shape, S)

        weights = None
        if need_weights:
            weights = Pd.mean(axis=1) if average_attn_weights else Pd
            if not batched:
                weights = weights[0]
        if not batched:
            out = out[0] if self.batch_first else out[:, 0]
        return out, weights

    def backward(self, grad_out, grad_weights=None):
        """Return (grad_query, grad_key, grad_value); accumulate every parameter gradient (see module doc)."""
        if self._cache is None:
            raise RuntimeError("MultiheadAttention.backward called before forward")
        (q_in, k_in, v_in, self_attention, qh, kh, vh, P, D, batched, average, need_weights,
         out_shape, S) = self._cache
        extra_keys = self.bias_k is not None or self.add_zero_attn
        packed = self_attention and not extra_keys
        g = as_array(grad_out, "MultiheadAttention grad_out")
        if not batched:
            g = np.expand_dims(g, 0 if self.batch_first else 1)
        if g.shape != out_shape:
            raise ValueError(f"MultiheadAttention.backward: expected grad_out of the output's shape "
                             f"{out_shape if batched else out_shape[:-2] + out_shape[-1:]}, got {np.shape(grad_out)}")
        E, h = self.embed_dim, self.num_heads
        d_heads = self._to_heads(self.out_proj.backward(g))  # (N, h, L, d)
        # dQ, dK, dV in the inputs' layout; in self-attention side by side in one (.., 3E) buffer, so that
        # dW_in is one matrix product. The head-layout products below write straight into these buffers.
        if packed:
            d_qkv = np.empty(q_in.shape[:-1] + (3 * E,), dtype=d_heads.dtype)
            d_q, d_k, d_v = d_qkv[..., :E], d_qkv[..., E:2 * E], d_qkv[..., 2 * E:]
        else:
            d_q, d_k, d_v = (np.empty(x.shape[:-1] + (E,), dtype=d_heads.dtype) for x in (q_in, k_in, v_in))
        Pd = P if D is None else P * D
        if extra_keys:  # gradients of the extended keys and values, split below
            d_vh_ext = Pd.transpose(0, 1, 3, 2) @ d_heads
        else:
            np.matmul(Pd.transpose(0, 1, 3, 2), d_heads, out=self._to_heads(d_v))  # dV = Pd^T dO
        dP = d_heads @ vh.transpose(0, 1, 3, 2)  # (N, h, L, S)
        if grad_weights is not None:
            if not need_weights:
                raise ValueError("MultiheadAttention.backward: got grad_weights, but forward returned no weights "
                                 "(need_weights=False)")
            gw = as_array(grad_weights, "MultiheadAttention grad_weights")
            if not batched:
                gw = gw[None]
            expected = (P.shape[0],) + P.shape[2:] if average else P.shape
            if gw.shape != expected:
                raise ValueError(f"MultiheadAttention.backward: expected grad_weights of shape {expected}, "
                                 f"got {gw.shape}")
            dP += gw[:, None] / h if average else gw
        if D is not None:
            dP *= D
        # softmax backward, in place: dS = P * (dP - sum_j dP_j P_j); blocked pairs have P = 0
        dP -= (dP * P).sum(axis=-1, keepdims=True)
        dP *= P
        if extra_keys:
            d_k, d_bias_k = self._strip_extra_keys(dP.transpose(0, 1, 3, 2) @ qh, S)
            d_v, d_bias_v = self._strip_extra_keys(d_vh_ext, S)
            if self.bias_k is not None:
                self.bias_k.accumulate(d_bias_k)
                self.bias_v.accumulate(d_bias_v)
        else:
            np.matmul(dP.transpose(0, 1, 3, 2), qh, out=self._to_heads(d_k))  # dK = dS^T (Q * scale): qh holds that
        np.matmul(dP, kh, out=self._to_heads(d_q))
        d_q *= d_q.dtype.type(1.0 / math.sqrt(self.head_dim))  # dQ = dS K * scale

        W_q, W_k, W_v = self._proj_weights()
        if self._qkv_same_embed_dim:
            dW = np.empty_like(self.in_proj_weight.data)
            if packed:  # one product for the three weight blocks
                np.matmul(d_qkv.reshape(-1, 3 * E).T, q_in.reshape(-1, E), out=dW)
            else:
                for i, (dy, x) in enumerate(((d_q, q_in), (d_k, k_in), (d_v, v_in))):
                    np.matmul(dy.reshape(-1, E).T, x.reshape(-1, x.shape[-1]), out=dW[i * E:(i + 1) * E])
            self.in_proj_weight.accumulate(dW)
        else:
            for p, dy, x in ((self.q_proj_weight, d_q, q_in), (self.k_proj_weight, d_k, k_in),
                             (self.v_proj_weight, d_v, v_in)):
                p.accumulate(dy.reshape(-1, E).T @ x.reshape(-1, x.shape[-1]))
        if self.in_proj_bias is not None:
            if packed:
                self.in_proj_bias.accumulate(d_qkv.reshape(-1, 3 * E).sum(axis=0))
            else:
                self.in_proj_bias.accumulate(np.concatenate([dy.reshape(-1, E).sum(axis=0)
                                                             for dy in (d_q, d_k, d_v)]))
        if not getattr(self, "needs_input_grad", True):  # the inputs are data (see Module): skip dX = dY W
            return None
        grads = [d_q @ W_q, d_k @ W_k, d_v @ W_v]
        if not batched:
            axis = 0 if self.batch_first else 1
            grads = [np.squeeze(gr, axis) for gr in grads]
        return tuple(grads)

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")
