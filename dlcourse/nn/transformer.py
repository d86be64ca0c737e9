"""``TransformerEncoderLayer`` and ``TransformerEncoder`` (``torch.nn``'s, same names and parameters).

One encoder layer, x of shape (L, N, d_model) ((N, L, d_model) with ``batch_first``; unbatched (L, d_model)):

    sa(x) = dropout1(self_attn(x, x, x, attn_mask=src_mask, key_padding_mask=src_key_padding_mask)[0])
    ff(x) = dropout2(linear2(dropout(activation(linear1(x)))))

    post-norm (``norm_first=False``, the 2017 paper, PyTorch's default):
        x = norm1(x + sa(x));   x = norm2(x + ff(x))
    pre-norm (``norm_first=True``, most modern models; trains without warm-up more easily):
        x = x + sa(norm1(x));   x = x + ff(norm2(x))

Children, in PyTorch's order and names: ``self_attn`` (MultiheadAttention), ``linear1``, ``dropout``,
``linear2``, ``norm1``, ``norm2``, ``dropout1``, ``dropout2``, ``activation`` (ReLU or GELU, no
parameters), so ``state_dict`` keys match torch's (self_attn.in_proj_weight, ..., norm2.bias).
Masks as in ``MultiheadAttention`` (boolean True = blocked); ``is_causal`` is PyTorch's hint that
``src_mask`` is the causal mask and needs it.

``backward(grad_out)`` returns dLoss/dsrc and accumulates every parameter gradient. The residual
connections add the gradient of both branches; self-attention's three input gradients (query,
key, value are all x) are summed. Caches: what each child caches.
"""

from __future__ import annotations

import copy

import numpy as np

from .._checks import as_array
from .activation import GELU, ReLU
from .attention import MultiheadAttention
from .dropout import Dropout
from .linear import Linear
from .module import Module, Sequential
from .normalization import LayerNorm


def generate_square_subsequent_mask(sz: int, dtype=np.float32) -> np.ndarray:
    """The float causal mask (sz, sz): 0 on and below the diagonal, -inf above (PyTorch's
    ``Transformer.generate_square_subsequent_mask``)."""
    return np.triu(np.full((sz, sz), -np.inf, dtype=dtype), k=1)


class EncoderLayerBase(Module):
    """The residual wiring of an encoder layer, post-norm or pre-norm (the formulas above), shared by
    :class:`TransformerEncoderLayer` and chapter 8's block built on the learner's functions.

    A subclass sets ``norm1``, ``norm2`` (LayerNorms), ``norm_first`` and the two branches:
    ``_sa(x, *mask_args)`` / ``_sa_backward(g)`` (self-attention, dL/dx summed over query, key and value)
    and ``_ff(x)`` / ``_ff_backward(g)`` (the feed-forward network); its ``forward`` checks the input and
    hands it to this ``forward``. Caches: what each child caches.
    """

    def forward(self, x, *mask_args):
        """x through both residual branches; ``mask_args`` go to ``self._sa``."""
        if self.norm_first:
            x = x + self._sa(self.norm1.forward(x), *mask_args)
            return self.end_forward(x + self._ff(self.norm2.forward(x)))
        x = self.norm1.forward(x + self._sa(x, *mask_args))
        return self.end_forward(self.norm2.forward(x + self._ff(x)))

    def backward(self, grad_out, retain_graph: bool = False):
        """dL/dx: each residual connection adds its branch's gradient to the one that skips it."""
        g = self.begin_backward(grad_out, retain_graph)
        if self.norm_first:
            g = g + self.norm2.backward(self._ff_backward(g))
            return g + self.norm1.backward(self._sa_backward(g))
        g = self.norm2.backward(g)
        g = self.norm1.backward(g + self._ff_backward(g))
        return g + self._sa_backward(g)

    def extra_repr(self) -> str:
        return f"norm_first={self.norm_first}"


class TransformerEncoderLayer(EncoderLayerBase):
    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation="relu", layer_norm_eps: float = 1e-5, batch_first: bool = False,
                 norm_first: bool = False, bias: bool = True, dtype=np.float32):
        """``activation``: "relu" or "gelu" (or ``torch.nn.functional.relu`` / ``gelu``, or a ReLU / GELU module)."""
        super().__init__()
        name = getattr(activation, "__name__", None)  # torch.nn.functional.relu / gelu, or ours
        if activation in ("relu", "gelu") or (callable(activation) and name in ("relu", "gelu")):
            act = ReLU() if "relu" in (activation, name) else GELU()
        elif isinstance(activation, (ReLU, GELU)):
            act = activation
        else:
            raise ValueError(f"TransformerEncoderLayer: expected activation 'relu' or 'gelu' (or a ReLU / GELU "
                             f"module), got {activation!r}")
        self.self_attn = MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first,
                                            dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.activation = act
        self.d_model, self.batch_first = d_model, batch_first

    def _sa(self, x, src_mask, src_key_padding_mask, is_causal):
        out, _ = self.self_attn.forward(x, x, x, attn_mask=src_mask, key_padding_mask=src_key_padding_mask,
                                        need_weights=False, is_causal=is_causal)
        return self.dropout1.forward(out)

    def _sa_backward(self, g):
        return sum(self.self_attn.backward(self.dropout1.backward(g)))  # query = key = value = x

    def _ff(self, x):
        h = self.dropout.forward(self.activation.forward(self.linear1.forward(x)))
        return self.dropout2.forward(self.linear2.forward(h))

    def _ff_backward(self, g):
        g = self.linear2.backward(self.dropout2.backward(g))
        return self.linear1.backward(self.activation.backward(self.dropout.backward(g)))

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = as_array(src, "TransformerEncoderLayer src")
        if x.ndim not in (2, 3) or x.shape[-1] != self.d_model:
            raise ValueError(f"TransformerEncoderLayer: expected src of shape (L, N, d_model={self.d_model}) "
                             f"(batch_first: (N, L, d_model); unbatched: (L, d_model)), got {x.shape}")
        return super().forward(x, src_mask, src_key_padding_mask, is_causal)


class TransformerEncoder(Module):
    """``num_layers`` deep copies of ``encoder_layer`` (children ``layers.0``, ``layers.1``, ...; a
    Sequential here, a ModuleList in PyTorch; the state_dict keys are the same), then ``norm`` if given.

    ``forward(src, mask=None, src_key_padding_mask=None, is_causal=None)`` runs the layers in turn with
    the same masks; ``backward(grad_out)`` runs them in reverse and returns dLoss/dsrc.
    ``enable_nested_tensor`` and ``mask_check`` are accepted for PyTorch compatibility (no effect).
    """

    def __init__(self, encoder_layer: TransformerEncoderLayer, num_layers: int, norm: LayerNorm | None = None,
                 enable_nested_tensor: bool = True, mask_check: bool = True):
        super().__init__()
        for what, value in (("encoder_layer", encoder_layer), ("norm", norm)):
            if not isinstance(value, Module) and not (what == "norm" and value is None):
                kind = type(value)
                expected = "dlcourse.nn.TransformerEncoderLayer" if what == "encoder_layer" else \
                    "dlcourse.nn.LayerNorm (or None)"
                raise TypeError(f"TransformerEncoder: expected {what} to be a {expected}, got "
                                f"{kind.__module__}.{kind.__qualname__}"
                                + (" (a PyTorch module: build the layer from dlcourse.nn, or use torch.nn's "
                                   "TransformerEncoder)" if kind.__module__.split(".")[0] == "torch" else ""))
        if num_layers < 1:
            raise ValueError(f"TransformerEncoder: expected num_layers >= 1, got {num_layers}")
        self.layers = Sequential(*(copy.deepcopy(encoder_layer) for _ in range(num_layers)))
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor, self.mask_check = enable_nested_tensor, mask_check

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal: bool | None = None):
        x = src
        for layer in self.layers:
            x = layer.forward(x, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=bool(is_causal))
        return self.end_forward(x if self.norm is None else self.norm.forward(x))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        g = grad_out if self.norm is None else self.norm.backward(grad_out)
        for layer in reversed(list(self.layers)):
            g = layer.backward(g)
        return g
