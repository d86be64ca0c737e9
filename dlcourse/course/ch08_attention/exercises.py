"""Chapter 8 exercises: scaled dot-product attention forward and backward, splitting and merging heads, LayerNorm
forward and backward (build-it steps; your_transformer.py assembles them into a transformer block), and a causal mask,
the sinusoidal encoding and a parameter count (end of chapter)."""

import numpy as np

from ...i18n import N_
from ..checker import exercise


def _rng():
    return np.random.default_rng(808)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# -- scaled dot-product attention, forward --------------------------------------------------------------
def _attention_cases():
    rng = _rng()
    causal = np.tril(np.ones((4, 4), dtype=bool))
    padding = np.ones((3, 5), dtype=bool)
    padding[:, 3:] = False  # the last two keys are padding
    cases = [(rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.standard_normal((3, 2)), None),
             (rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 4, 3)), causal),
             (rng.standard_normal((2, 2, 3, 16)) * 3, rng.standard_normal((2, 2, 5, 16)),
              rng.standard_normal((2, 2, 5, 4)), padding)]
    # Scores that overflow float64 (exp(1000) = inf), each row at its own magnitude: row 0 near +1000 with a small
    # spread, row 1 spread from -1200 to 1500, row 2 near -1000, row 3 ordinary. Only subtracting each row's own maximum
    # survives: no shift overflows rows 0-1 (and gives 0/0 in row 2), one global maximum underflows rows 2-3 to
    # 0/0, a row mean (or minimum) still overflows row 1.
    K = rng.standard_normal((6, 4))
    K[:, 0] = 1.0  # a shared component: Q's first column shifts a whole row of scores
    K[:, 1] = [1.5, -0.5, 0.2, -1.0, 0.7, -1.2]
    Q = rng.standard_normal((4, 4))
    Q[:, 0] = [2000.0, 0.0, -2000.0, 0.0]
    Q[1, :2] = [0.0, 2000.0]  # row 1's scores: 1000 * K[:, 1] + a little, from -1200 to 1500
    V = rng.standard_normal((6, 3))
    near_causal = np.tril(np.ones((4, 6), dtype=bool), k=2)  # query i may look at keys j <= i + 2
    cases += [(Q, K, V, None),
              (np.stack([Q, -Q]), np.stack([K, K[::-1]]), np.stack([V, 2 * V]), near_causal)]
    return cases


def _attention_unscaled(Q, K, V, mask=None):
    scores = Q @ np.swapaxes(K, -1, -2)  # the typical mistake: no 1/sqrt(d)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _softmax(scores)
    return weights @ V, weights


@exercise("ch8.attention_forward", _attention_cases,
          hints=[N_("Three steps: similarity scores between every query and every key, a softmax that turns each "
                    "query's row of scores into weights, and a weighted average of the values."),
                 N_("scores = Q K^T / sqrt(d) with d = Q.shape[-1]; K's last two axes swap (np.swapaxes(K, -1, -2)), "
                    "so batch axes in front stay. The mask says True where a query MAY look: set the other scores to "
                    "-inf before the softmax."),
                 N_("softmax over the LAST axis (the keys), after subtracting each row's maximum; return "
                    "(weights @ V, weights).")],
          wrong=_attention_unscaled, outputs=("output", "weights"))
def attention_forward(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(d) [masked]) V. Q (..., Lq, d), K (..., Lk, d), V (..., Lk, dv); mask bool,
    broadcastable to (..., Lq, Lk) (True: may attend), or None.
    Returns (output (..., Lq, dv), weights (..., Lq, Lk))."""
    d = Q.shape[-1]
    scores = Q @ np.swapaxes(K, -1, -2) / np.sqrt(d)
    if mask is not None:
        scores = np.where(mask, scores, -np.inf)
    weights = _softmax(scores)
    return weights @ V, weights


# -- scaled dot-product attention, backward -------------------------------------------------------------
def _attention_backward_cases():
    rng = _rng()
    cases = []
    for shape_q, shape_k, dv, masked in [((3, 4), (5, 4), 2, False), ((2, 4, 8), (2, 4, 8), 3, True),
                                         ((2, 2, 3, 6), (2, 2, 5, 6), 4, False)]:
        Q, K = rng.standard_normal(shape_q), rng.standard_normal(shape_k)
        V = rng.standard_normal((*shape_k[:-1], dv))
        mask = np.tril(np.ones((shape_q[-2], shape_k[-2]), dtype=bool)) if masked else None
        out, weights = attention_forward(Q, K, V, mask)
        cases.append((rng.standard_normal(out.shape), Q, K, V, weights))
    return cases


def _attention_backward_no_softmax_jacobian(grad_out, Q, K, V, weights):
    d = Q.shape[-1]
    grad_weights = grad_out @ np.swapaxes(V, -1, -2)
    grad_scores = weights * grad_weights  # the typical mistake: the softmax's "- sum" term is missing
    return (grad_scores @ K / np.sqrt(d), np.swapaxes(grad_scores, -1, -2) @ Q / np.sqrt(d),
            np.swapaxes(weights, -1, -2) @ grad_out)


@exercise("ch8.attention_backward", _attention_backward_cases,
          hints=[N_("Go backwards through the three steps of the forward pass: the weighted average (O = A V), the "
                    "softmax (A = softmax(S)), and the scores (S = Q K^T / sqrt(d))."),
                 N_("O = A V gives dV = A^T G and dA = G V^T. Through a row-wise softmax, "
                    "dS = A * (dA - sum(dA * A, over the keys, keepdims))."),
                 N_("S = Q K^T / sqrt(d) gives dQ = dS K / sqrt(d) and dK = dS^T Q / sqrt(d); transpose only the last "
                    "two axes (np.swapaxes(x, -1, -2)). Return (dQ, dK, dV).")],
          wrong=_attention_backward_no_softmax_jacobian, outputs=("grad_Q", "grad_K", "grad_V"))
def attention_backward(grad_out, Q, K, V, weights):
    """Gradients of scaled dot-product attention. grad_out (..., Lq, dv) = dL/dO, weights (..., Lq, Lk) the
    forward's softmax output (masked entries are 0, so no mask is needed here). Returns (dQ, dK, dV)."""
    d = Q.shape[-1]
    grad_v = np.swapaxes(weights, -1, -2) @ grad_out
    grad_weights = grad_out @ np.swapaxes(V, -1, -2)
    grad_scores = weights * (grad_weights - np.sum(grad_weights * weights, axis=-1, keepdims=True))
    grad_q = grad_scores @ K / np.sqrt(d)
    grad_k = np.swapaxes(grad_scores, -1, -2) @ Q / np.sqrt(d)
    return grad_q, grad_k, grad_v


# -- heads: split and merge ------------------------------------------------------------------------------
def _split_cases():
    rng = _rng()
    return [(rng.standard_normal((2, 3, 8)), 2), (rng.standard_normal((1, 5, 12)), 3),
            (rng.standard_normal((3, 4, 6)), 1)]


@exercise("ch8.split_heads", _split_cases,
          hints=[N_("Each head works on its own slice of the embedding: features 0..d-1 go to head 0, d..2d-1 to "
                    "head 1, and so on, with d = E // num_heads."),
                 N_("First reshape (N, L, E) to (N, L, num_heads, d): that cuts each token's features into slices. "
                    "Then the head axis must come before the sequence axis."),
                 N_("After the reshape the axes are (N, L, heads, d); a .transpose with the new order of the axes "
                    "puts heads second.")],
          wrong=lambda x, h: x.reshape(x.shape[0], h, x.shape[1], x.shape[2] // h))
def split_heads(x, num_heads):
    """(N, L, E) -> (N, num_heads, L, E // num_heads): head k gets features k*d .. (k+1)*d - 1 of every token."""
    N, L, E = x.shape
    return x.reshape(N, L, num_heads, E // num_heads).transpose(0, 2, 1, 3)


def _merge_cases():
    rng = _rng()
    return [(rng.standard_normal((2, 2, 3, 4)),), (rng.standard_normal((1, 3, 5, 4)),),
            (rng.standard_normal((3, 1, 4, 6)),)]


@exercise("ch8.merge_heads", _merge_cases,
          hints=[N_("merge_heads undoes split_heads: merge_heads(split_heads(x, h)) must give x back."),
                 N_("Bring the sequence axis back in front of the head axis first, then join the last two axes."),
                 N_("A .transpose that swaps the head and sequence axes back, then a reshape to (N, L, num_heads * "
                    "d).")],
          wrong=lambda x: x.reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]))
def merge_heads(x):
    """(N, num_heads, L, d) -> (N, L, num_heads * d), the inverse of split_heads."""
    N, h, L, d = x.shape
    return x.transpose(0, 2, 1, 3).reshape(N, L, h * d)


# -- LayerNorm forward --------------------------------------------------------------------------------------
def _layer_norm_forward_cases():
    rng = _rng()
    cases = []
    for shape in [(4, 6), (2, 3, 8), (5, 1, 3)]:
        x = rng.standard_normal(shape) * rng.uniform(0.5, 4.0, shape[:-1] + (1,)) + rng.uniform(-3, 3)
        cases.append((x, rng.standard_normal(shape[-1]), rng.standard_normal(shape[-1]), 1e-5))
    # Tokens whose features barely differ (variance ~1e-6, below eps = 1e-5): eps decides their scale, so it
    # has to sit inside the square root. One token sits far from 0 (its mean is large next to its spread).
    x = rng.standard_normal((3, 5)) * np.array([[1e-3], [2.0], [3e-3]]) + np.array([[0.5], [-1.0], [40.0]])
    cases.append((x, rng.standard_normal(5), rng.standard_normal(5), 1e-5))
    return cases


def _layer_norm_over_batch(x, weight, bias, eps):
    mean, var = x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True)  # the mistake: BatchNorm's axis
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@exercise("ch8.layer_norm", _layer_norm_forward_cases,
          hints=[N_("Each token (each row of the last axis) is normalised on its own: subtract its mean, divide by its "
                    "standard deviation, then scale by weight and shift by bias."),
                 N_("Means over the LAST axis with keepdims=True (x.mean(axis=-1, keepdims=True)), and the biased "
                    "variance (np.var's default, dividing by E)."),
                 N_("x_hat = (x - mean) / np.sqrt(var + eps), with eps inside the square root; return "
                    "x_hat * weight + bias.")],
          wrong=_layer_norm_over_batch)
def layer_norm(x, weight, bias, eps):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) variance over the last axis.
    x (..., E), weight and bias (E,). Returns y, the shape of x."""
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


# -- LayerNorm backward -------------------------------------------------------------------------------------
def _layer_norm_cases():
    rng = _rng()
    cases = []
    for shape in [(4, 6), (2, 3, 8), (5, 1, 3)]:
        x = rng.standard_normal(shape) * 2 + 1
        cases.append((rng.standard_normal(shape), x, rng.standard_normal(shape[-1]), 1e-5))
    return cases


def _layer_norm_backward_no_mean_terms(grad_out, x, weight, eps):
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + eps)
    axes = tuple(range(x.ndim - 1))
    # the typical mistake: treating the mean and variance as constants
    return (grad_out * weight / np.sqrt(var + eps), np.sum(grad_out * x_hat, axis=axes), np.sum(grad_out, axis=axes))


@exercise("ch8.layer_norm_backward", _layer_norm_cases,
          hints=[N_("The mean and the variance are functions of x too: every feature of a token influences the "
                    "normalised value of every other feature of that token, so dx has three terms."),
                 N_("With x_hat = (x - mu) / sigma, sigma = sqrt(var + eps) (over the last axis) and g_hat = "
                    "grad_out * weight: dx = (g_hat - mean(g_hat) - x_hat * mean(g_hat * x_hat)) / sigma, means "
                    "over the last axis."),
                 N_("dweight = sum of grad_out * x_hat and dbias = sum of grad_out, summed over every axis except the "
                    "last. Return (dx, dweight, dbias).")],
          wrong=_layer_norm_backward_no_mean_terms, outputs=("grad_x", "grad_weight", "grad_bias"))
def layer_norm_backward(grad_out, x, weight, eps):
    """Backward of y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance).
    grad_out and x (..., E), weight (E,). Returns (dx, dweight, dbias)."""
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    sigma = np.sqrt(var + eps)
    x_hat = (x - mean) / sigma
    g_hat = grad_out * weight
    dx = (g_hat - g_hat.mean(axis=-1, keepdims=True) - x_hat * np.mean(g_hat * x_hat, axis=-1, keepdims=True)) / sigma
    axes = tuple(range(x.ndim - 1))
    return dx, np.sum(grad_out * x_hat, axis=axes), np.sum(grad_out, axis=axes)


# -- end of chapter -------------------------------------------------------------------------------------------
@exercise("ch8.causal_mask", lambda: [(1,), (4,), (7,)],
          hints=[N_("A token may look at itself and at the tokens before it, never at later ones."),
                 N_("Row i is the query at position i, column j the key at position j: allowed exactly when j <= i."),
                 N_("A lower-triangular boolean matrix: np.tril of ones, dtype bool.")],
          wrong=lambda L: np.triu(np.ones((L, L), dtype=bool)))
def causal_mask(L):
    """Boolean (L, L) mask, True where query i may attend to key j (j <= i), as torch's bool attn_mask."""
    return np.tril(np.ones((L, L), dtype=bool))


@exercise("ch8.sinusoidal_encoding", lambda: [(4, 6), (10, 8), (1, 2)],
          hints=[N_("Each pair of columns (2i, 2i+1) is one frequency: a sine and a cosine of position times it."),
                 N_("PE[pos, 2i] = sin(pos / 10000^(2i / d)) and PE[pos, 2i + 1] = cos(pos / 10000^(2i / d)); "
                    "positions start at 0."),
                 N_("pos = np.arange(L)[:, None], the exponents np.arange(0, d, 2) / d; fill pe[:, 0::2] and "
                    "pe[:, 1::2].")],
          wrong=lambda L, d: _sinusoid(L, d, np.arange(d // 2) / d))
def sinusoidal_encoding(L, d):
    """The (L, d) sinusoidal positional encoding of 'Attention is all you need' (d even)."""
    return _sinusoid(L, d, np.arange(0, d, 2) / d)


def _sinusoid(L, d, exponents):
    angles = np.arange(L)[:, None] / 10000.0 ** exponents[None, :]
    pe = np.zeros((L, d))
    pe[:, 0::2], pe[:, 1::2] = np.sin(angles), np.cos(angles)
    return pe


@exercise("ch8.mha_num_parameters", lambda: [(8, 2), (64, 4), (512, 8), (6, 1)],
          hints=[N_("Count torch.nn.MultiheadAttention's parameters: in_proj_weight, in_proj_bias, out_proj.weight, "
                    "out_proj.bias."),
                 N_("The heads do not add parameters: the query, key and value projections are each (E, E) together "
                    "for all heads, cut into num_heads slices."),
                 N_("Count each piece: three (E, E) input projections with a bias vector each, and one Linear(E, E) "
                    "output projection.")],
          wrong=lambda E, h: h * (3 * E * E + 3 * E) + E * E + E)
def mha_num_parameters(embed_dim, num_heads):
    """How many numbers torch.nn.MultiheadAttention(embed_dim, num_heads) trains (bias=True)."""
    return 4 * embed_dim * embed_dim + 4 * embed_dim
