"""LSTM forward + backpropagation through time: dlcourse.nn.LSTM vs torch.nn.LSTM on the CPU (float32).

    .venv/bin/python benchmarks/bench_lstm.py [--threads 1] [--rounds 30]

Batch 32, 50 steps, input 28, hidden 128 (an MNIST row-by-row classifier's shape). Both models
hold the same weights; one call = forward over the sequence, then backward of a fixed random
upstream gradient on every output (parameter gradients accumulate, input gradient returned).
NumPy and PyTorch are pinned to the same number of threads, and the two are timed in alternating
rounds so that both see the same load on a shared machine; the ratio of medians is the headline.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from dlcourse import nn
from dlcourse.compare import Table, max_rel_diff, num_threads


def bench_lstm(threads: int = 1, rounds: int = 30, batch: int = 32, seq_len: int = 50, input_size: int = 28,
               hidden_size: int = 128) -> Table:
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(input_size, hidden_size)
    ours = nn.LSTM(input_size, hidden_size)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((seq_len, batch, input_size)).astype(np.float32)
    g = rng.standard_normal((seq_len, batch, hidden_size)).astype(np.float32)
    xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)

    def numpy_step():
        ours.zero_grad()
        ours.forward(x)
        return ours.backward(g)

    def torch_step():
        theirs.zero_grad()
        xt.grad = None
        out, _ = theirs(xt)
        out.backward(gt)
        return xt.grad

    times = {"NumPy (dlcourse)": [], "PyTorch": []}
    with num_threads(threads):
        dx, dxt = numpy_step(), torch_step()
        err = max_rel_diff(dx, dxt)
        if err > 1e-4:
            raise AssertionError(f"bench_lstm: the two LSTMs disagree (input gradient, relative {err:.1e})")
        for _ in range(3):  # warm-up
            numpy_step()
            torch_step()
        for _ in range(rounds):
            for name, fn in (("NumPy (dlcourse)", numpy_step), ("PyTorch", torch_step)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    t_ref, b_ref = med["PyTorch"], best["PyTorch"]
    rows = [[k, f"{threads}", med[k] * 1e3, best[k] * 1e3, med[k] / t_ref, best[k] / b_ref] for k in times]
    title = (f"LSTM forward + BPTT, float32, batch {batch}, {seq_len} steps, input {input_size}, hidden {hidden_size} "
             f"(CPU, {rounds} alternating rounds; gradients agree to {err:.1e})")
    return Table(["library", "threads", "median ms", "best ms", "median / torch", "best / torch"], rows, title)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    print(bench_lstm(args.threads, args.rounds))


if __name__ == "__main__":
    main()
