"""``Embedding``: a lookup table of learned vectors, one row per token id (``torch.nn.Embedding``).

Forward: ``weight[input]`` - integer ids of any shape (*) -> vectors (*, embedding_dim).
Backward: row i of dL/dweight is the sum of the upstream gradients of every position whose id
is i (``np.add.at``, since an id may repeat); the row ``padding_idx`` gets no gradient, so it
stays what it was (zeros by default). The input is integer, so there is no input gradient:
``backward`` returns ``None``, as autograd gives no gradient to an index tensor.
Caches: the ids.
"""

from __future__ import annotations

import numpy as np

from .._checks import to_numpy
from ..random import get_rng
from .module import Module
from .parameter import Parameter


def embedding(input, weight, padding_idx=None):
    """``weight[input]``; ``input`` integer ids in [0, num_embeddings). Checks as ``Embedding``."""
    ids = _check_ids(input, weight.shape[0], "embedding")
    return weight[ids]


def embedding_backward(grad_out, input, num_embeddings, padding_idx=None):
    """dL/dweight (num_embeddings, D): the upstream rows summed per id; zero at ``padding_idx``."""
    g = np.asarray(grad_out)
    ids = np.asarray(input).reshape(-1)
    d_weight = np.zeros((num_embeddings, g.shape[-1]), dtype=g.dtype)
    np.add.at(d_weight, ids, g.reshape(-1, g.shape[-1]))
    if padding_idx is not None:
        d_weight[padding_idx] = 0
    return d_weight


def _check_ids(input, num_embeddings, where):
    ids = to_numpy(input)
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{where}: expected integer token ids (e.g. int64), got dtype {ids.dtype}")
    if ids.size and (ids.min() < 0 or ids.max() >= num_embeddings):
        bad = ids[(ids < 0) | (ids >= num_embeddings)].flat[0]
        raise ValueError(f"{where}: expected ids in [0, {num_embeddings}) (num_embeddings={num_embeddings}), "
                         f"got {bad}")
    return ids


class Embedding(Module):
    """Lookup table ``weight`` (num_embeddings, embedding_dim), initialised N(0, 1) as in PyTorch,
    with the row ``padding_idx`` (if given; negative counts from the end) set to zero.

    ``scale_grad_by_freq=True`` divides each row's gradient by how often its id occurs in the batch.
    ``max_norm`` and ``sparse=True`` are not supported (ValueError).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 max_norm: float | None = None, norm_type: float = 2.0, scale_grad_by_freq: bool = False,
                 sparse: bool = False, _weight=None, _freeze: bool = False, dtype=np.float32):
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError(f"Embedding: expected positive sizes, got num_embeddings={num_embeddings}, "
                             f"embedding_dim={embedding_dim}")
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: expected padding_idx in [-{num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx = padding_idx % num_embeddings
        if max_norm is not None:
            raise ValueError(f"Embedding: max_norm is not supported in dlcourse, expected None, got {max_norm}")
        if sparse:
            raise ValueError("Embedding: sparse gradients are not supported in dlcourse, expected sparse=False, "
                             "got True")
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            weight = get_rng().standard_normal((num_embeddings, embedding_dim)).astype(dtype)
            if padding_idx is not None:
                weight[padding_idx] = 0
        else:
            weight = np.array(to_numpy(_weight), copy=True)
            if weight.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"Embedding: expected _weight of shape {(num_embeddings, embedding_dim)}, "
                                 f"got {weight.shape}")
        self.weight = Parameter(weight, requires_grad=not _freeze)
        self._ids = None

    @classmethod
    def from_pretrained(cls, embeddings, freeze: bool = True, padding_idx: int | None = None, **kwargs):
        """An Embedding whose table is a copy of ``embeddings`` (2-D); ``freeze`` keeps it from training."""
        emb = to_numpy(embeddings)
        if emb.ndim != 2:
            raise ValueError(f"Embedding.from_pretrained: expected a 2-D table, got shape {emb.shape}")
        return cls(emb.shape[0], emb.shape[1], padding_idx, _weight=emb, _freeze=freeze, **kwargs)

    def forward(self, input):
        self._ids = _check_ids(input, self.num_embeddings, "Embedding")
        return self.end_forward(self.weight.data[self._ids])

    def backward(self, grad_out, retain_graph: bool = False):
        """Accumulate dL/dweight; return None (the integer input has no gradient)."""
        g = self.begin_backward(grad_out, retain_graph)
        if self.scale_grad_by_freq:
            counts = np.bincount(self._ids.reshape(-1), minlength=self.num_embeddings)
            g = g / counts[self._ids][..., None].astype(g.dtype)
        self.weight.accumulate(embedding_backward(g, self._ids, self.num_embeddings, self.padding_idx)
                               .astype(self.weight.data.dtype, copy=False))
        return None

    def extra_repr(self) -> str:
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        return s + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
