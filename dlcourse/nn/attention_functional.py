"""Scaled dot-product attention and its backward pass (``torch.nn.functional.scaled_dot_product_attention``).

Shapes (``...`` = any batch dimensions, e.g. (N, heads)): query (..., L, E), key (..., S, E),
value (..., S, Ev) -> output (..., L, Ev), with L queries and S keys:

    scores = Q K^T * scale + mask          (..., L, S)    scale = 1 / sqrt(E) unless given
    P      = softmax(scores, over the S keys)
    out    = dropout(P) V

Masks, as in PyTorch's function: a boolean ``attn_mask`` says which pairs *take part* (True = the
query may attend to that key); a float ``attn_mask`` is added to the scores (-inf blocks a pair);
``is_causal=True`` lets query i attend to keys j <= i only. Both broadcast to (..., L, S).
A query that may attend to no key at all gets all-zero weights (and output 0), as PyTorch's
function gives; the plain softmax would give 0/0 = NaN.

Backward (P the weights before dropout, D the dropout mask scaled by 1/(1-p), Pd = P * D):

    dV = Pd^T g,   dPd = g V^T,   dP = dPd * D,
    dS = P * (dP - sum_j dP_ij P_ij)   (softmax backward),   dQ = dS K * scale,   dK = dS^T Q * scale

``scaled_dot_product_attention`` is PyTorch's one-call form and returns only the output. For a
backward pass, compute the weights with :func:`attention_weights` (and draw a dropout mask if you
want one), form ``out = (P * D) @ V`` and call :func:`scaled_dot_product_attention_backward`;
``MultiheadAttention`` does exactly that.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_array
from ..random import get_rng


def causal_mask(L: int, S: int | None = None) -> np.ndarray:
    """Boolean (L, S) mask, True where query i may attend to key j, i.e. j <= i (PyTorch's is_causal)."""
    S = L if S is None else S
    return np.tri(L, S, dtype=bool)


def _check_qkv(query, key, value=None, where="scaled_dot_product_attention"):
    query = as_array(query, f"{where}: query")
    key = as_array(key, f"{where}: key")
    if query.ndim < 2 or key.ndim < 2:
        raise ValueError(f"{where}: expected query (..., L, E) and key (..., S, E) with at least 2 dimensions, "
                         f"got shapes {query.shape} and {key.shape}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(f"{where}: expected key's last dimension E={query.shape[-1]} (query's), "
                         f"got key of shape {key.shape}")
    if value is not None:
        value = as_array(value, f"{where}: value")
        if value.ndim < 2 or value.shape[-2] != key.shape[-2]:
            raise ValueError(f"{where}: expected value (..., S={key.shape[-2]}, Ev) with S = key's length, "
                             f"got value of shape {value.shape}")
    return query, key, value


def _check_mask(attn_mask, target_shape, where):
    """Return the mask as an ndarray (bool or float), checking dtype and broadcasting to target_shape."""
    mask = np.asarray(attn_mask.detach().cpu().numpy() if hasattr(attn_mask, "detach") else attn_mask)
    if mask.dtype != np.bool_ and not np.issubdtype(mask.dtype, np.floating):
        raise ValueError(f"{where}: expected attn_mask of dtype bool (True = take part) or float (added to "
                         f"the scores), got dtype {mask.dtype}")
    try:
        if np.broadcast_shapes(mask.shape, target_shape) != tuple(target_shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{where}: expected attn_mask broadcastable to the scores' shape {tuple(target_shape)} "
                         f"(..., L, S), got shape {mask.shape}") from None
    return mask


def masked_softmax(scores: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in place on ``scores``; rows that are all -inf give all zeros, not NaN.

    With no keys at all (S = 0) the weights are empty (..., L, 0) and the output of ``weights @ value``
    is all zeros, as PyTorch returns."""
    if scores.shape[-1] == 0:
        return scores
    row_max = scores.max(axis=-1, keepdims=True)
    fully_masked = np.isneginf(row_max)
    if fully_masked.any():
        row_max[fully_masked] = 0.0
    scores -= row_max
    np.exp(scores, out=scores)
    total = scores.sum(axis=-1, keepdims=True)
    if fully_masked.any():
        total[fully_masked] = 1.0  # 0 / 1 = 0 for a query that may attend to nothing
    scores /= total
    return scores


def attention_weights(query, key, attn_mask=None, is_causal=False, scale=None) -> np.ndarray:
    """P = softmax(Q K^T * scale + mask) over the keys: (..., L, S). Masks as in the module docstring."""
    query, key, _ = _check_qkv(query, key, where="attention_weights")
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = query @ np.swapaxes(key, -1, -2)
    scores *= scale
    L, S = query.shape[-2], key.shape[-2]
    if is_causal:
        if attn_mask is not None:
            raise ValueError("scaled_dot_product_attention: expected either attn_mask or is_causal=True, got both")
        attn_mask = causal_mask(L, S)
    if attn_mask is not None:
        mask = _check_mask(attn_mask, scores.shape, "scaled_dot_product_attention")
        if mask.dtype == np.bool_:
            scores = np.where(mask, scores, -np.inf).astype(scores.dtype, copy=False)
        else:
            scores = (scores + mask).astype(scores.dtype, copy=False)
    with np.errstate(invalid="ignore"):
        return masked_softmax(scores)


def make_dropout_mask(shape, p: float, dtype) -> np.ndarray:
    """Inverted-dropout mask: 0 with probability p, else 1 / (1 - p) (from ``dlcourse.random``)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: expected a probability 0 <= p <= 1, got {p}")
    if p == 1.0:
        return np.zeros(shape, dtype)
    keep = get_rng().random(shape, dtype=np.float32) >= p
    return keep * np.dtype(dtype).type(1.0 / (1.0 - p))


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None):
    """out = dropout(softmax(Q K^T * scale + mask)) V: (..., L, Ev). Same arguments as PyTorch's function.

    As in PyTorch, ``dropout_p`` applies whenever it is > 0 (the function has no training flag).
    """
    query, key, value = _check_qkv(query, key, value)
    weights = attention_weights(query, key, attn_mask, is_causal, scale)
    if dropout_p > 0.0:
        weights = weights * make_dropout_mask(weights.shape, dropout_p, weights.dtype)
    return weights @ value


def _sum_to_shape(grad, shape):
    """Undo broadcasting: sum ``grad`` over the axes that were broadcast from ``shape``."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    return grad.sum(axis=axes, keepdims=True) if axes else grad


def scaled_dot_product_attention_backward(grad_out, query, key, value, attn_weights, scale=None,
                                          dropout_mask=None):
    """Return (dquery, dkey, dvalue) for out = (P * D) V with P = ``attn_weights`` (before dropout).

    ``dropout_mask`` D is the scaled mask used in the forward pass (None: no dropout). Masks need no
    argument: a blocked pair has P = 0, so no gradient flows through it.
    """
    query, key, value = _check_qkv(query, key, value, where="scaled_dot_product_attention_backward")
    g = np.asarray(grad_out)
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    P = attn_weights
    Pd = P if dropout_mask is None else P * dropout_mask
    d_value = np.swapaxes(Pd, -1, -2) @ g
    dP = g @ np.swapaxes(value, -1, -2)
    if dropout_mask is not None:
        dP *= dropout_mask
    dS = softmax_backward_(dP, P)
    dS *= scale
    d_query = dS @ key
    d_key = np.swapaxes(dS, -1, -2) @ query
    return (_sum_to_shape(d_query, query.shape), _sum_to_shape(d_key, key.shape),
            _sum_to_shape(d_value, value.shape))


# ---------------------------------------------------------------------------------------
# The per-head core of ``MultiheadAttention``: heads as strided views, products written in place
# ---------------------------------------------------------------------------------------


def split_heads(x, num_heads: int, batch_first: bool):
    """(N, T, E) batch-major or (T, N, E) time-major -> (N, h, T, d) with d = E / h: a view, no copy
    (writing into it writes into x)."""
    if batch_first:
        N, T, E = x.shape
        return x.reshape(N, T, num_heads, E // num_heads).transpose(0, 2, 1, 3)
    T, N, E = x.shape
    return x.reshape(T, N, num_heads, E // num_heads).transpose(1, 2, 0, 3)


def merge_heads(xh, batch_first: bool):
    """(N, h, T, d) -> (N, T, h*d) batch-major or (T, N, h*d) time-major, contiguous: the inverse of
    :func:`split_heads` (a copy)."""
    order = (0, 2, 1, 3) if batch_first else (2, 0, 1, 3)
    y = np.ascontiguousarray(xh.transpose(order))
    return y.reshape(y.shape[:2] + (-1,))


def softmax_backward_(grad_weights, weights):
    """dScores = P * (dP - sum_j dP_j P_j), in place on dP (``grad_weights``); blocked pairs have P = 0."""
    grad_weights -= (grad_weights * weights).sum(axis=-1, keepdims=True)
    grad_weights *= weights
    return grad_weights


def attention_heads(qh, kh, vh, mask=None, dropout_p: float = 0.0, out=None):
    """out = dropout(softmax(qh kh^T + mask)) vh on every head at once; returns (P, D).

    qh (N, h, L, d) already scaled by 1/sqrt(d) (PyTorch scales Q once, before the product), kh and vh
    (N, h, S, d), ``mask`` additive (-inf blocks), broadcastable to (N, h, L, S). P (N, h, L, S) are the
    weights before dropout, D the inverted-dropout mask (None when ``dropout_p`` is 0). The output
    (N, h, L, d) goes into ``out`` (e.g. :func:`split_heads` of the concatenated heads' buffer).
    """
    scores = qh @ kh.transpose(0, 1, 3, 2)
    if mask is not None:
        scores += mask
    with np.errstate(invalid="ignore"):
        P = masked_softmax(scores)
    D = make_dropout_mask(P.shape, dropout_p, P.dtype) if dropout_p > 0.0 else None
    np.matmul(P if D is None else P * D, vh, out=out)
    return P, D


def attention_heads_backward(grad_out, qh, kh, vh, P, D, scale: float, grad_P=None, out=(None, None, None)):
    """Backward of :func:`attention_heads`: (dQ, dK, dV) per head, dQ with respect to the *unscaled* Q.

    dV = Pd^T g,  dP = (g V^T + grad_P) * D,  dS = softmax backward,  dQ = dS K * scale,  dK = dS^T (Q * scale)
    (qh holds Q * scale). ``grad_P`` adds a loss on the weights P (after dropout, as returned to the caller).
    ``out``: three (N, h, ., d) arrays (or Nones) the products are written into.
    """
    Pd = P if D is None else P * D
    d_vh = np.matmul(Pd.transpose(0, 1, 3, 2), grad_out, out=out[2])
    dP = grad_out @ vh.transpose(0, 1, 3, 2)
    if grad_P is not None:
        dP += grad_P
    if D is not None:
        dP *= D
    dS = softmax_backward_(dP, P)
    d_kh = np.matmul(dS.transpose(0, 1, 3, 2), qh, out=out[1])
    d_qh = np.matmul(dS, kh, out=out[0])
    d_qh *= d_qh.dtype.type(scale)
    return d_qh, d_kh, d_vh
