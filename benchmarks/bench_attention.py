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

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402  (one process per measurement, threads pinned)

RESULTS = _harness.RESULTS
N, L, E, HEADS = 32, 64, 128, 4
CASES = {
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


def worker(name: str, lib: str, threads: int, repeat: int, warmup: int) -> dict:
    """Time one case in this process (its thread variables were set by the parent)."""
    _harness.pin_torch_threads(lib, threads)
    return _harness.time_calls(make_step(name, lib), repeat, warmup)


def measure(name: str, lib: str, threads: int, repeat: int, warmup: int) -> dict:
    return _harness.run_worker(__file__, [name, lib, str(threads), "--repeat", str(repeat), "--warmup", str(warmup)],
                               threads)


def run(cases, threads_list, repeat, warmup, rounds) -> list[dict]:
    rows = []
    for threads in threads_list:
        for name in cases:
            row = {"case": name, "description": CASES[name], "threads": threads, "rounds": rounds}
            row.update(_harness.fastest_of_rounds(lambda lib: measure(name, lib, threads, repeat, warmup),
                                                  rounds, "median_s"))
            _harness.add_ratios(row)
            rows.append(row)
            print(f"{name:<10} {threads:>7} {1e3 * row['numpy']['median_s']:>10.2f} "
                  f"{1e3 * row['torch']['median_s']:>10.2f} {row['ratio_median']:>7.2f} {row['ratio_best']:>11.2f} "
                  f"{row['ratio_cpu']:>10.2f}", flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each case this many times, alternating the libraries, and keep each one's "
                             "fastest round (helps on a busy machine)")
    parser.add_argument("--json", default=str(RESULTS / "bench_attention.json"),
                        help="where to write the results (default benchmarks/results/bench_attention.json)")
    parser.add_argument("--no-json", action="store_true", help="print only, write no file")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "LIB", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        name, lib, threads = args.worker
        print(json.dumps(worker(name, lib, int(threads), args.repeat, args.warmup)))
        return 0

    env = _harness.environment()
    print(f"NumPy {env['numpy']} vs PyTorch {env['torch']} on {env['cpu_count']} CPU(s); float32, batch {N}, "
          f"length {L}, embed {E}, {HEADS} heads; median of {args.repeat} calls, fastest of {args.rounds} "
          f"round(s); ratio = NumPy / PyTorch")
    _harness.warn_if_busy(env)
    for name in args.cases:
        print(f"  {name}: {CASES[name]}")
    header = (f"{'case':<10} {'threads':>7} {'NumPy ms':>10} {'torch ms':>10} {'ratio':>7} {'ratio(best)':>11} "
              f"{'ratio(cpu)':>10}")
    print(header + "\n" + "-" * len(header))
    rows = run(args.cases, args.threads, args.repeat, args.warmup, args.rounds)
    if not args.no_json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
