"""Chapter 8: a side-by-side check of ``dlcourse.nn.MultiheadAttention`` against ``torch.nn.MultiheadAttention``.

``dlcourse.compare`` handles modules with one input; attention has three (query, key, value) and returns two
arrays, so this is the same report for it: copy torch's weights into ours, run both forward on the same inputs
(and masks), push the same random upstream gradient back, and list the largest difference of the output, the
weights, each input gradient and every parameter gradient.
"""

from __future__ import annotations

import numpy as np

from dlcourse.compare import ComparisonReport, max_abs_diff, max_rel_diff, torch_dtype


def compare_attention(ours, theirs, query, key=None, value=None, dtype=np.float64, seed: int = 0,
                      **kwargs) -> ComparisonReport:
    """Self-attention when ``key`` and ``value`` are None (one input, whose gradient is the sum of the three),
    else cross-attention. ``kwargs`` (masks, need_weights, average_attn_weights, ...) go to both forwards."""
    import torch

    tdt = torch_dtype(dtype)
    theirs = theirs.to(tdt)
    theirs.zero_grad()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    ours.zero_grad()
    self_attention = key is None and value is None
    arrays = [np.asarray(a, dtype=dtype) for a in ((query,) if self_attention else (query, key, value))]
    tensors = [torch.tensor(a, requires_grad=True) for a in arrays]
    torch_kwargs = {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    out_t, w_t = theirs(*(tensors * 3 if self_attention else tensors), **torch_kwargs)
    out_o, w_o = ours.forward(*(arrays * 3 if self_attention else arrays), **kwargs)
    grad_out = np.random.default_rng(seed).standard_normal(out_o.shape).astype(dtype)
    out_t.backward(torch.tensor(grad_out))
    grads = ours.backward(grad_out)
    if self_attention:
        grads = (sum(grads),)
    rows = [["output", tuple(out_t.shape), max_abs_diff(out_o, out_t), max_rel_diff(out_o, out_t)]]
    if w_t is not None:
        rows.append(["attention weights", tuple(w_t.shape), max_abs_diff(w_o, w_t), max_rel_diff(w_o, w_t)])
    names = ["grad input"] if self_attention else ["grad query", "grad key", "grad value"]
    for name, g_o, t in zip(names, grads, tensors):
        rows.append([name, tuple(t.shape), max_abs_diff(g_o, t.grad), max_rel_diff(g_o, t.grad)])
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        g_o = ours_params[name].grad
        rows.append([f"grad {name}", tuple(p.shape), max_abs_diff(g_o, p.grad), max_rel_diff(g_o, p.grad)])
    return ComparisonReport(rows, dtype, f"MultiheadAttention vs torch.nn.MultiheadAttention ({np.dtype(dtype).name})")
