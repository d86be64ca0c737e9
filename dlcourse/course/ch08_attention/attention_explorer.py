"""Chapter 8 widget: the attention explorer. Pick a recall sequence, a layer and a head; edit a token; switch the
causal mask and the 1/sqrt(d) scaling; watch the head's attention map and the model's answer change.

The explorer runs the trained recall transformer (pre-norm encoder layers, from a state dict with
:class:`~dlcourse.course.ch08_attention.recall.RecallTransformer`'s parameter names) with its own small forward
pass, so that the two switches act inside every layer: ``causal`` blocks attention to later positions,
``scaled=False`` drops the 1/sqrt(d) of the scores. With the switches at their training setting (no mask,
scaled) it computes exactly what the model computes (the tests check it against the model and PyTorch).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dlcourse.course.widget import InteractiveFigure
from dlcourse.i18n import _

from .recall import token_labels


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _layer_norm(x, weight, bias, eps=1e-5):
    mean, var = x.mean(axis=-1, keepdims=True), x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def attend(q, k, v, causal: bool = False, scaled: bool = True):
    """softmax(q k^T [/ sqrt(d)] [causal mask]) v for (..., L, d) arrays; returns (output, weights)."""
    scores = q @ np.swapaxes(k, -1, -2)
    if scaled:
        scores = scores / np.sqrt(q.shape[-1])
    if causal:
        L = scores.shape[-1]
        scores = np.where(np.tri(L, dtype=bool), scores, -np.inf)
    weights = _softmax(scores)
    return weights @ v, weights


def check_tokens(state: dict, x, where: str = "recall_forward") -> np.ndarray:
    """``x`` as an int64 array (..., L, 2) of (key, value) token ids the state's tables hold, or a ValueError
    naming the first id out of range (a negative id would silently index from the end) or a sequence longer than
    the positional table."""
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[-1] != 2 or x.shape[-2] < 1:
        raise ValueError(f"{where}: expected (key, value) token pairs of shape (..., L, 2), got shape {x.shape}")
    if x.dtype.kind not in "iu":
        raise ValueError(f"{where}: expected integer token ids, got dtype {x.dtype}")
    for column, table in ((0, "key_embedding.weight"), (1, "value_embedding.weight")):
        ids, size = x[..., column], state[table].shape[0]
        bad = (ids < 0) | (ids >= size)
        if bad.any():
            where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{where}: unknown {table.split('_')[0]} token id {int(ids[where_bad])} at "
                             f"{where_bad}: the model knows ids 0..{size - 1}")
    if state.get("positional", True) and "pe" in state and x.shape[-2] > len(state["pe"]):
        raise ValueError(f"{where}: a sequence of {x.shape[-2]} pairs is longer than the model's positional table "
                         f"({len(state['pe'])} positions)")
    return x.astype(np.int64, copy=False)


def recall_forward(state: dict, x, nhead: int, causal: bool = False, scaled: bool = True):
    """The recall transformer on one or more sequences x (N, L, 2) from its state dict (NumPy arrays).

    Returns (probabilities over the values at the query position (N, num_values), attention weights per layer
    [(N, nhead, L, L)]). Positions are added when the state has a 'pe' table and ``state['positional']`` is not
    False. Token ids out of range or a sequence longer than the positional table: ValueError (:func:`check_tokens`)."""
    x = check_tokens(state, x)
    h = state["key_embedding.weight"][x[..., 0]] + state["value_embedding.weight"][x[..., 1]]
    if state.get("positional", True) and "pe" in state:
        h = h + state["pe"][: x.shape[1]]
    maps = []
    num_layers = len({k.split(".")[1] for k in state if k.startswith("layers.")})
    for i in range(num_layers):
        p = {k.removeprefix(f"layers.{i}."): v for k, v in state.items() if k.startswith(f"layers.{i}.")}
        N, L, E = h.shape
        a = _layer_norm(h, p["norm1.weight"], p["norm1.bias"])
        qkv = a @ p["self_attn.in_proj_weight"].T + p["self_attn.in_proj_bias"]
        heads = qkv.reshape(N, L, 3, nhead, E // nhead).transpose(2, 0, 3, 1, 4)  # (3, N, nhead, L, d)
        out, weights = attend(heads[0], heads[1], heads[2], causal, scaled)
        maps.append(weights)
        merged = out.transpose(0, 2, 1, 3).reshape(N, L, E)
        h = h + merged @ p["self_attn.out_proj.weight"].T + p["self_attn.out_proj.bias"]
        f = _layer_norm(h, p["norm2.weight"], p["norm2.bias"])
        f = np.maximum(f @ p["linear1.weight"].T + p["linear1.bias"], 0)
        h = h + f @ p["linear2.weight"].T + p["linear2.bias"]
    z = _layer_norm(h[:, -1], state["norm.weight"], state["norm.bias"])
    return _softmax(z @ state["head.weight"].T + state["head.bias"]), maps


class AttentionExplorer(InteractiveFigure):
    """Controls: ``sequence`` (dropdown), ``layer``, ``head``, ``position`` (which pair to edit), ``key`` and
    ``value`` (that pair's tokens), ``causal`` and ``scaled`` (checkboxes).

    ``state``: the trained model's state dict (NumPy arrays); ``sequences``: {name: (L, 2) int array}."""

    def __init__(self, state: dict, sequences: dict, nhead: int, num_values: int = 10, answers: dict | None = None):
        self.state = {k: np.asarray(v, dtype=np.float64) for k, v in state.items()}
        if not sequences:
            raise ValueError("AttentionExplorer: expected at least one sequence, got none")
        self.sequences = {name: check_tokens(self.state, np.array(s), f"AttentionExplorer: sequence {name!r}").copy()
                          for name, s in sequences.items()}
        for name, s in self.sequences.items():
            if s.ndim != 2 or len(s) < 2:
                raise ValueError(f"AttentionExplorer: sequence {name!r}: expected (L, 2) pairs with L >= 2 (pairs, "
                                 f"then the query), got shape {s.shape}")
        self.nhead, self.num_values = nhead, num_values
        self.num_layers = len({k.split(".")[1] for k in state if k.startswith("layers.")})
        self.num_keys = self.state["key_embedding.weight"].shape[0]
        first = next(iter(self.sequences))
        self.tokens = self.sequences[first].copy()
        self._syncing = False
        L = len(self.tokens)
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        controls = {
            "sequence": widgets.Dropdown(options=list(self.sequences), value=first, description=_("sequence"),
                                         style={"description_width": "initial"}),
            "layer": widgets.IntSlider(value=0, min=0, max=self.num_layers - 1, description=_("layer"), **slider),
            "head": widgets.IntSlider(value=0, min=0, max=nhead - 1, description=_("head"), **slider),
            "position": widgets.IntSlider(value=0, min=0, max=L - 2, description=_("edit the pair at position"),
                                          **slider),
            "key": widgets.IntSlider(value=int(self.tokens[0, 0]), min=0, max=self.num_keys - 1,
                                     description=_("its key"), **slider),
            "value": widgets.IntSlider(value=int(self.tokens[0, 1]), min=0, max=num_values - 1,
                                       description=_("its value"), **slider),
            "causal": widgets.Checkbox(value=False, description=_("causal mask"), indent=False),
            "scaled": widgets.Checkbox(value=True, description=_("divide the scores by √d"), indent=False),
        }
        super().__init__(controls, nrows=1, ncols=2, figsize=(10.5, 4.4), title=_("Attention explorer"))

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        owner = change["owner"]
        c = self.controls
        self._syncing = True
        try:
            if owner is c["sequence"]:
                self.tokens = self.sequences[change["new"]].copy()
                c["position"].max = len(self.tokens) - 2
                c["position"].value = min(c["position"].value, len(self.tokens) - 2)
            if owner in (c["sequence"], c["position"]):  # show the chosen pair's tokens on the sliders
                c["key"].value = int(self.tokens[c["position"].value, 0])
                c["value"].value = int(self.tokens[c["position"].value, 1])
            elif owner in (c["key"], c["value"]):
                self.tokens[c["position"].value] = (c["key"].value, c["value"].value)
        finally:
            self._syncing = False
        self.update()

    def answer(self, tokens=None) -> int | None:
        """The right answer for ``tokens``: the value stored with the query's key (None if the key is absent)."""
        tokens = self.tokens if tokens is None else tokens
        hits = np.flatnonzero(tokens[:-1, 0] == tokens[-1, 0])
        return int(tokens[hits[-1], 1]) if len(hits) else None

    def draw(self, sequence, layer, head, position, key, value, causal, scaled):
        ax_map, ax_out = self.axes
        probs, maps = recall_forward(self.state, self.tokens[None], self.nhead, causal, scaled)
        self.probs, self.weights = probs[0], maps[layer][0, head]
        labels = token_labels(self.tokens, self.num_values)
        L = len(labels)
        ax_map.imshow(self.weights, cmap="viridis", vmin=0, vmax=1)
        ax_map.set_xticks(range(L), labels, rotation=90, fontsize=7)
        ax_map.set_yticks(range(L), labels, fontsize=7)
        ax_map.axhline(position, color="w", lw=0.6, ls=":")
        ax_map.set(xlabel=_("key (looked at)"), ylabel=_("query (looking)"),
                   title=_("layer {layer}, head {head}: attention weights").format(layer=layer, head=head)
                         + (_(", causal") if causal else "") + ("" if scaled else _(", no 1/√d")))
        ax_map.grid(False)
        right = self.answer()
        colors = ["#2ca02c" if v == right else "#1f77b4" for v in range(self.num_values)]
        ax_out.bar(range(self.num_values), self.probs, color=colors)
        ax_out.set(xticks=range(self.num_values), ylim=(0, 1), xlabel=_("value"),
                   ylabel=_("probability"), title=_("answer to the query {query} (green: right)").format(
                       query=labels[-1]))
        guess = int(np.argmax(self.probs))
        looked = int(np.argmax(self.weights[-1]))
        verdict = "✓" if guess == right else "✗"
        return _("The model answers {guess} (p = {p:.2f}) {verdict}; the right answer is {right}. "
                 "Layer {layer}, head {head}: the query looks most at position {looked} ({label}, weight "
                 "{weight:.2f}).").format(guess=guess, p=self.probs[guess], verdict=verdict, right=right,
                                          layer=layer, head=head, looked=looked, label=labels[looked],
                                          weight=self.weights[-1, looked])

