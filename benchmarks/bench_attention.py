"""Speed of dlcourse's attention layers against PyTorch on the CPU, with the same number of threads.

    .venv/bin/python benchmarks/bench_attention.py              # every case, 1 and 2 threads, writes the JSON
    .venv/bin/python benchmarks/bench_attention.py --cases mha --threads 1 --repeat 50
    .venv/bin/python benchmarks/bench_attention.py --rounds 3   # busy machine: alternate the libraries 3 times,
                                                                # keep each one's fastest round
    .venv/bin/python benchmarks/bench_attention.py --no-json    # print only

Writes ``benchmarks/results/bench_attention.json`` unless ``--no-json`` (``--json PATH`` for another path).

Cases (float32; batch 32, sequence length 64, embed 128, 4 heads; a random upstream gradient):

* ``mha``: ``MultiheadAttention(128, 4)`` self-attention on (64, 32, 128): forward, then backward for the
  input (query = key = value) and every parameter gradient. The course's target: ratio <= 2.0.
* ``mha_cross``: the same with different query, key and value arrays (three input gradients).
* ``encoder``: ``TransformerEncoderLayer(128, 4, dim_feedforward=256, dropout=0.0)``: forward + backward.

Every measurement runs in its own fresh process that imports only one library, with the thread
count fixed before the import (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``torch.set_num_threads``): NumPy's and PyTorch's thread pools in one process slow each other down,
so timing both in one process measures the fight, not the libraries. The reported time is the
median of ``--repeat`` calls after ``--warmup`` calls; ratio = NumPy time / PyTorch time (1.0 is parity).
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402  (one process per measurement, threads pinned, the command line)

N, L, E, HEADS = 32, 64, 128, 4
DESCRIPTIONS = {
    "mha": "MultiheadAttention(128, 4) self-attention on (64, 32, 128): forward + backward (dx, every weight)",
    "mha_cross": "MultiheadAttention(128, 4), separate query/key/value (64, 32, 128): forward + backward (dq, dk, "
                 "dv, every weight)",
    "encoder": "TransformerEncoderLayer(128, 4, dim_feedforward=256, dropout=0) on (64, 32, 128): forward + backward",
}


def make_step(name: str, lib: str):
    """Build the inputs for ``lib`` ("numpy" or "torch") and return a no-argument callable: one timed step."""
    import numpy as np
    rng = np.random.default_rng(0)
    x, k, v, g = (rng.standard_normal((L, N, E), dtype=np.float32) for _ in range(4))
    cross = name == "mha_cross"
    if lib == "torch":
        import torch
        if name == "encoder":
            layer = torch.nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=256, dropout=0.0)
        else:
            layer = torch.nn.MultiheadAttention(E, HEADS)
        inputs = [torch.tensor(a, requires_grad=True) for a in ((x, k, v) if cross else (x,))]
        gt = torch.tensor(g)

        def step():
            for t in inputs:
                t.grad = None
            layer.zero_grad(set_to_none=True)
            if name == "encoder":
                out = layer(inputs[0])
            else:
                q_, k_, v_ = inputs if cross else inputs * 3
                out = layer(q_, k_, v_, need_weights=False)[0]
            out.backward(gt)
        return step
    from dlcourse import nn
    if name == "encoder":
        layer = nn.TransformerEncoderLayer(E, HEADS, dim_feedforward=256, dropout=0.0)
    else:
        layer = nn.MultiheadAttention(E, HEADS)

    def step():
        layer.zero_grad()
        if name == "encoder":
            layer.forward(x)
        else:
            layer.forward(x, k, v, need_weights=False) if cross else layer.forward(x, x, x, need_weights=False)
        layer.backward(g)
    return step


CASES = {name: (functools.partial(make_step, name), description) for name, description in DESCRIPTIONS.items()}
TARGETS = {"mha": 2.0}


def main(argv=None) -> int:
    return _harness.main(argv, __file__, CASES, shapes=f"float32, batch {N}, length {L}, embed {E}, {HEADS} heads",
                         json_name="bench_attention.json", json_by_default=True, targets=TARGETS)


if __name__ == "__main__":
    sys.exit(main())
