"""Seconds per optimizer step: dlcourse.optim vs torch.optim on an MNIST-sized MLP's parameters (float32).

    .venv/bin/python benchmarks/bench_optim_step.py [--threads 1] [--repeat 2000]

Both run on the CPU with the same number of threads (see dlcourse.compare.num_threads), with
fresh random gradients of realistic size; a second table shows the cost of subnormal moments
(gradients ~1e-22, as for very confident logits late in training) with and without flushing.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from dlcourse import optim
from dlcourse.compare import Table
from dlcourse.nn import Parameter
from dlcourse.runtime import num_threads

SHAPES = [(256, 784), (256,), (128, 256), (128,), (10, 128), (10,)]  # 784-256-128-10 MLP


def time_steps(step, set_grads, repeat, set_warmup_grads=None):
    for _ in range(20):
        (set_warmup_grads or set_grads)()
        step()
    t = 0.0
    for _ in range(repeat):
        set_grads()
        t0 = time.perf_counter()
        step()
        t += time.perf_counter() - t0
    return t / repeat


def bench(name, ours_factory, torch_factory, repeat, grad_scale=1e-2, warmup_scale=None):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in SHAPES]
    unit = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [u * np.float32(grad_scale) for u in unit]
    ps = [Parameter(a.copy()) for a in init]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    tgrads = [torch.from_numpy(g) for g in grads]
    ours, theirs = ours_factory(ps), torch_factory(ts)

    warm = [u * np.float32(warmup_scale) for u in unit] if warmup_scale is not None else grads
    twarm = [torch.from_numpy(g) for g in warm]

    def setter(params, values):
        def set_grads():
            for p, g in zip(params, values):
                p.grad = g
        return set_grads

    t_ours = time_steps(ours.step, setter(ps, grads), repeat, setter(ps, warm))
    t_torch = time_steps(theirs.step, setter(ts, tgrads), repeat, setter(ts, twarm))
    return [name, t_ours * 1e6, t_torch * 1e6, t_ours / t_torch]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    n = sum(int(np.prod(s)) for s in SHAPES)
    rows = []
    with num_threads(args.threads):
        rows.append(bench("SGD momentum", lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
                          lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), args.repeat))
        rows.append(bench("Adam (per parameter)", lambda p: optim.Adam(p, foreach=False),
                          lambda p: torch.optim.Adam(p), args.repeat))
        rows.append(bench("Adam (flat buffers)", lambda p: optim.Adam(p, foreach=True),
                          lambda p: torch.optim.Adam(p), args.repeat))
        rows.append(bench("AdamW (flat buffers)", lambda p: optim.AdamW(p, foreach=True),
                          lambda p: torch.optim.AdamW(p), args.repeat))
        # "dead" units: tiny gradients (moments become subnormal), then exactly zero gradients
        rows.append(bench("Adam, subnormal moments, flushed", lambda p: optim.Adam(p),
                          lambda p: torch.optim.Adam(p), args.repeat, grad_scale=0.0, warmup_scale=1e-20))
        every = optim.Adam.flush_every
        optim.Adam.flush_every = 10 ** 9
        rows.append(bench("Adam, subnormal moments, not flushed", lambda p: optim.Adam(p),
                          lambda p: torch.optim.Adam(p), args.repeat, grad_scale=0.0, warmup_scale=1e-20))
        optim.Adam.flush_every = every
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"warning: load average {load:.2f}: other processes share the CPU, timings are noisy")
    print(Table(["optimizer", "dlcourse (us/step)", "torch (us/step)", "dlcourse / torch"], rows,
                f"{n} float32 parameters in {len(SHAPES)} arrays, {args.threads} thread(s), torch {torch.__version__}"))


if __name__ == "__main__":
    main()
