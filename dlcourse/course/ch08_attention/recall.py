"""Chapter 8's task: associative recall, and the two models that compete on it (a small transformer, an LSTM).

**The task.** A sequence of ``num_pairs`` (key, value) pairs with distinct keys, then a query: one of the keys
with the value "?". The answer is the value that was stored with that key. Each position is one token with two
parts, a key id in [0, num_keys) and a value id in [0, num_values] (``num_values`` is the "?" of the query), so
an input is an integer array ``(N, L, 2)`` with ``L = num_pairs + 1``; its embedding is the sum of a key embedding
and a value embedding (as a word embedding and a position embedding are summed). Answering needs *content-based*
access: find the pair whose key equals the query, wherever it is. An RNN has to carry every pair in its one
hidden state until the query comes; attention looks the key up.

**The models** (NumPy, ``dlcourse.nn``, with PyTorch twins of identical parameter names so a state dict moves
between them):

* :class:`RecallTransformer`: embeddings + sinusoidal positions, ``num_layers`` pre-norm
  ``TransformerEncoderLayer`` s, a final ``LayerNorm`` and a ``Linear`` head on the query's position.
* :class:`RecallLSTM`: the same embeddings, chapter 5's ``LSTM`` and a ``Linear`` head on its last output.

Both map ``x (N, L, 2)`` to logits ``(N, num_values)``; ``backward(grad_logits)`` fills every parameter's
gradient and returns None (the input is integer).
"""

from __future__ import annotations

import numpy as np

from dlcourse import nn
from dlcourse.train import fit, fit_torch

QUERY = "?"


def make_associative_recall(n: int, num_pairs: int, num_keys: int = 64, num_values: int = 10, seed: int = 0):
    """``n`` recall sequences: (x (n, num_pairs + 1, 2) int64, y (n,) int64). ``x[:, :, 0]`` are keys,
    ``x[:, :, 1]`` values; the last position is the query (its value is ``num_values``, the "?")."""
    if not 1 <= num_pairs <= num_keys:
        raise ValueError(f"make_associative_recall: expected 1 <= num_pairs <= num_keys={num_keys} (keys are "
                         f"distinct), got num_pairs={num_pairs}")
    if n < 1 or num_values < 2:
        raise ValueError(f"make_associative_recall: expected n >= 1 and num_values >= 2, got n={n}, "
                         f"num_values={num_values}")
    rng = np.random.default_rng(seed)
    keys = np.argsort(rng.random((n, num_keys)), axis=1)[:, :num_pairs]  # distinct keys per sequence
    values = rng.integers(0, num_values, (n, num_pairs))
    asked = rng.integers(0, num_pairs, n)
    rows = np.arange(n)
    x = np.empty((n, num_pairs + 1, 2), dtype=np.int64)
    x[:, :-1, 0], x[:, :-1, 1] = keys, values
    x[:, -1, 0], x[:, -1, 1] = keys[rows, asked], num_values
    return x, values[rows, asked].astype(np.int64)


def token_labels(x_row, num_values: int = 10) -> list[str]:
    """Readable labels of one sequence (L, 2): 'k12=3' for a pair, 'k12=?' for the query."""
    return [f"k{k}={QUERY if v == num_values else v}" for k, v in np.asarray(x_row)]


class RecallTransformer(nn.Module):
    """Embeddings (+ sinusoidal positions when ``positional``) -> pre-norm encoder layers -> LayerNorm ->
    Linear on the last (query) position. forward caches the encoder's output shape for backward."""

    def __init__(self, num_keys: int = 64, num_values: int = 10, d_model: int = 64, nhead: int = 4,
                 num_layers: int = 2, dim_feedforward: int = 128, max_len: int = 128, positional: bool = True):
        super().__init__()
        self.num_values, self.positional = num_values, positional
        self.key_embedding = nn.Embedding(num_keys, d_model)
        self.value_embedding = nn.Embedding(num_values + 1, d_model)
        self.layers = nn.Sequential(*[nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0,
                                                                 batch_first=True, norm_first=True)
                                      for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_values)
        self.register_buffer("pe", nn.sinusoidal_positional_encoding(max_len, d_model))

    def embed(self, x):
        """(N, L, 2) ids -> (N, L, d_model): key embedding + value embedding (+ position)."""
        h = self.key_embedding.forward(x[..., 0]) + self.value_embedding.forward(x[..., 1])
        return h + self.pe[: x.shape[1]].astype(h.dtype) if self.positional else h

    def forward(self, x):
        h = self.layers.forward(self.embed(x))
        self._shape = h.shape
        return self.end_forward(self.head.forward(self.norm.forward(h[:, -1])))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        grad_h = np.zeros(self._shape, dtype=grad_out.dtype)
        grad_h[:, -1] = self.norm.backward(self.head.backward(grad_out))
        grad_h = self.layers.backward(grad_h)
        self.key_embedding.backward(grad_h)
        self.value_embedding.backward(grad_h)
        return None


class RecallLSTM(nn.Module):
    """Embeddings -> LSTM -> Linear on the last output: everything it knows at the query is in (h, c)."""

    def __init__(self, num_keys: int = 64, num_values: int = 10, d_model: int = 64, hidden_size: int = 64):
        super().__init__()
        self.key_embedding = nn.Embedding(num_keys, d_model)
        self.value_embedding = nn.Embedding(num_values + 1, d_model)
        self.lstm = nn.LSTM(d_model, hidden_size, batch_first=True)
        self.head = nn.Linear(hidden_size, num_values)

    def forward(self, x):
        out, _ = self.lstm.forward(self.key_embedding.forward(x[..., 0]) + self.value_embedding.forward(x[..., 1]))
        self._shape = out.shape
        return self.end_forward(self.head.forward(out[:, -1]))

    def backward(self, grad_out, retain_graph: bool = False):
        grad_out = self.begin_backward(grad_out, retain_graph)
        grad_seq = np.zeros(self._shape, dtype=grad_out.dtype)
        grad_seq[:, -1] = self.head.backward(grad_out)
        grad_emb = self.lstm.backward(grad_seq)
        self.key_embedding.backward(grad_emb)
        self.value_embedding.backward(grad_emb)
        return None


def torch_recall_transformer(num_keys: int = 64, num_values: int = 10, d_model: int = 64, nhead: int = 4,
                             num_layers: int = 2, dim_feedforward: int = 128, max_len: int = 128,
                             positional: bool = True):
    """The PyTorch twin of :class:`RecallTransformer` (same arguments, same parameter names)."""
    import torch

    class TorchRecallTransformer(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.num_values, self.positional = num_values, positional
            self.key_embedding = torch.nn.Embedding(num_keys, d_model)
            self.value_embedding = torch.nn.Embedding(num_values + 1, d_model)
            self.layers = torch.nn.ModuleList([
                torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout=0.0, batch_first=True,
                                                 norm_first=True) for _ in range(num_layers)])
            self.norm = torch.nn.LayerNorm(d_model)
            self.head = torch.nn.Linear(d_model, num_values)
            self.register_buffer("pe", torch.tensor(nn.sinusoidal_positional_encoding(max_len, d_model)))

        def forward(self, x):
            h = self.key_embedding(x[..., 0]) + self.value_embedding(x[..., 1])
            if self.positional:
                h = h + self.pe[: x.shape[1]]
            for layer in self.layers:
                h = layer(h)
            return self.head(self.norm(h[:, -1]))

    return TorchRecallTransformer()


def torch_recall_lstm(num_keys: int = 64, num_values: int = 10, d_model: int = 64, hidden_size: int = 64):
    """The PyTorch twin of :class:`RecallLSTM`."""
    import torch

    class TorchRecallLSTM(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.key_embedding = torch.nn.Embedding(num_keys, d_model)
            self.value_embedding = torch.nn.Embedding(num_values + 1, d_model)
            self.lstm = torch.nn.LSTM(d_model, hidden_size, batch_first=True)
            self.head = torch.nn.Linear(hidden_size, num_values)

        def forward(self, x):
            return self.head(self.lstm(self.key_embedding(x[..., 0]) + self.value_embedding(x[..., 1]))[0][:, -1])

    return TorchRecallLSTM()


def torch_twin(model):
    """The PyTorch model of the same shape as ``model`` (a RecallTransformer or RecallLSTM), with its weights."""
    import torch

    if isinstance(model, RecallTransformer):
        layer0 = model.layers[0]
        twin = torch_recall_transformer(model.key_embedding.num_embeddings, model.num_values,
                                        model.key_embedding.embedding_dim, layer0.self_attn.num_heads,
                                        len(model.layers), layer0.linear1.out_features, model.pe.shape[0],
                                        model.positional)
    elif isinstance(model, RecallLSTM):
        twin = torch_recall_lstm(model.key_embedding.num_embeddings, model.head.out_features,
                                 model.key_embedding.embedding_dim, model.lstm.hidden_size)
    else:
        raise TypeError(f"torch_twin: expected a RecallTransformer or RecallLSTM, got {type(model).__name__}")
    twin.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})
    return twin


def train_recall(model, x, y, num_steps: int, lr: float = 1e-3, batch_size: int = 64, seed: int = 0,
                 val_data=None, device: str = "cpu", progress: bool = True, desc: str = ""):
    """Adam, cross-entropy, ``num_steps`` mini-batches of ``batch_size``, through the library's one training loop:
    :func:`~dlcourse.train.fit` for a dlcourse model, :func:`~dlcourse.train.fit_torch` for a PyTorch one (its twin,
    already on ``device``). Each epoch visits (x, y) in a fresh order drawn from ``seed``, the same order in both
    libraries, so twins with the same weights see the same batches. A diverging loss raises
    :class:`~dlcourse.train.TrainingDivergedError` (the loop's one divergence rule).

    Returns (the loss of every step, (num_steps,), and the :class:`~dlcourse.train.History`); with
    ``val_data=(x_val, y_val)`` its ``val_acc`` holds the validation accuracy after each epoch, the last one
    after the last step.
    """
    if num_steps < 1 or batch_size < 1:
        raise ValueError(f"train_recall: expected num_steps >= 1 and batch_size >= 1, got {num_steps} and "
                         f"{batch_size}")
    losses = []
    steps_per_epoch = -(-len(x) // batch_size)
    loop = dict(num_epochs=-(-num_steps // steps_per_epoch), max_steps=num_steps, batch_size=batch_size,
                val_data=val_data, on_step=lambda step, loss: losses.append(loss), seed=seed, progress=progress,
                desc=desc or type(model).__name__)
    if isinstance(model, nn.Module):
        from dlcourse import optim

        history = fit(model, optim.Adam(model.parameters(), lr=lr), x, y, **loop)
    else:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"train_recall: expected a dlcourse or torch module, got {type(model).__name__}")
        history = fit_torch(model, torch.optim.Adam(model.parameters(), lr=lr), x, y, device=device, **loop)
    return np.array(losses, dtype=np.float64), history


def attention_maps(model: RecallTransformer, x) -> list[np.ndarray]:
    """Each layer's attention weights per head, [(N, nhead, L, L) for each layer]: what the layer's
    self-attention computes from its normalised input (the layers are pre-norm)."""
    h = model.embed(x)
    maps = []
    for layer in model.layers:
        a = layer.norm1.forward(h)
        maps.append(layer.self_attn.forward(a, a, a, need_weights=True, average_attn_weights=False)[1])
        h = layer.forward(h)
    return maps
