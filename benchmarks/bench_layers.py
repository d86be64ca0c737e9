"""Speed of dlcourse's NumPy layers against PyTorch on the CPU, with the same number of threads.

    .venv/bin/python benchmarks/bench_layers.py                 # every case, 1 and 2 threads
    .venv/bin/python benchmarks/bench_layers.py --threads 1 --cases conv1 conv2 --repeat 50
    .venv/bin/python benchmarks/bench_layers.py --json          # also write benchmarks/results/bench_layers.json

Every measurement runs in its own fresh process that imports only one library, with the thread
count fixed before the import (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``torch.set_num_threads``): NumPy's and PyTorch's thread pools in one process slow each other
down by up to 20x, so timing both in one process measures the fight, not the libraries.

Each case is one function ``case_name(lib) -> step`` registered with ``@case``: it builds the
inputs for ``lib`` ("numpy" or "torch") and returns a no-argument callable doing one timed step.
To add a case (an LSTM, say), write one more such function; ``main`` picks it up.
The reported time is the median (and the best) of ``--repeat`` calls after warm-up calls;
ratio = NumPy time / PyTorch time, so 1.0 is parity and 2.0 means NumPy takes twice as long;
ratio(cpu) compares CPU seconds instead, which other processes on a busy machine disturb less
(with more than one thread it also counts threads that spin while they wait).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402  (one process per measurement, threads pinned, the command line)

CASES: dict = {}  # name -> (function, description)
#: case -> the ratio NumPy / PyTorch the project aims for, at 1 and at 2 threads (issue 11; recurrent: issue 21).
TARGETS = {"conv1": 2.0, "conv2": 2.0, "maxpool": 1.0, "cnn_step": 1.5,
           "lstm": 1.5, "lstm64": 1.5, "gru": 1.5, "gru64": 1.5}


def case(name: str, description: str):
    """Register ``fn(lib) -> step`` as benchmark case ``name``."""
    def register(fn):
        CASES[name] = (fn, description)
        return fn
    return register


# ---------------------------------------------------------------------------------------
# Cases (float32, batch 64 unless a case says otherwise, MNIST shapes)
# ---------------------------------------------------------------------------------------

BATCH = 64


def _conv_step(lib, in_ch, out_ch, size):
    """Forward + backward of a 3x3, padding 1 convolution: input, weight and bias gradients."""
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, in_ch, size, size), dtype=np.float32)
    g = rng.standard_normal((BATCH, out_ch, size, size), dtype=np.float32)
    if lib == "torch":
        import torch
        conv = torch.nn.Conv2d(in_ch, out_ch, 3, padding=1)
        xt = torch.tensor(x, requires_grad=True)
        gt = torch.tensor(g)

        def step():
            xt.grad = None
            conv.zero_grad(set_to_none=True)
            conv(xt).backward(gt)
        return step
    from dlcourse import nn
    conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def step():
        conv.zero_grad()
        conv.forward(x)
        conv.backward(g)
    return step


@case("conv1", "Conv2d 1->32, 3x3, pad 1, on 64x1x28x28: forward + backward (dx, dW, db)")
def conv1(lib):
    return _conv_step(lib, 1, 32, 28)


@case("conv2", "Conv2d 32->64, 3x3, pad 1, on 64x32x14x14: forward + backward (dx, dW, db)")
def conv2(lib):
    return _conv_step(lib, 32, 64, 14)


@case("maxpool", "MaxPool2d(2) on 64x32x28x28: forward + backward")
def maxpool(lib):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 32, 28, 28), dtype=np.float32)
    g = rng.standard_normal((BATCH, 32, 14, 14), dtype=np.float32)
    if lib == "torch":
        import torch
        pool = torch.nn.MaxPool2d(2)
        xt = torch.tensor(x, requires_grad=True)
        gt = torch.tensor(g)

        def step():
            xt.grad = None
            pool(xt).backward(gt)
        return step
    from dlcourse import nn
    pool = nn.MaxPool2d(2)

    def step():
        pool.forward(x)
        pool.backward(g)
    return step


@case("cnn_step", "chapter 7's CNN, one SGD training step on a 64x1x28x28 batch "
                  "(conv32-relu-pool-conv64-relu-pool-dense128-relu-dense10, cross-entropy)")
def cnn_step(lib):
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, 1, 28, 28), dtype=np.float32)
    y = rng.integers(0, 10, BATCH)
    if lib == "torch":
        import torch
        from torch import nn as tnn
        model = tnn.Sequential(tnn.Conv2d(1, 32, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                               tnn.Conv2d(32, 64, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2), tnn.Flatten(),
                               tnn.Linear(64 * 7 * 7, 128), tnn.ReLU(), tnn.Linear(128, 10))
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        loss_fn = tnn.CrossEntropyLoss()
        xt, yt = torch.tensor(x), torch.tensor(y)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xt), yt).backward()
            opt.step()
        return step
    from dlcourse import nn
    model = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))
    loss_fn = nn.CrossEntropyLoss()
    params = list(model.parameters())

    def step():
        model.zero_grad()
        loss_fn.forward(model.forward(x), y)
        model.backward(loss_fn.backward())
        for p in params:  # plain SGD, in place
            p.data -= 0.01 * p.grad
    return step


def _recurrent_step(lib, kind, batch):
    """``kind`` ("LSTM" or "GRU") 28->128 over 50 steps: forward + backpropagation through time (dx and every
    weight gradient; a random upstream gradient on every output)."""
    import numpy as np
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, batch, 28), dtype=np.float32)  # (seq_len, batch, input_size)
    g = rng.standard_normal((50, batch, 128), dtype=np.float32)
    if lib == "torch":
        import torch
        layer = getattr(torch.nn, kind)(28, 128)
        xt, gt = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def step():
            xt.grad = None
            layer.zero_grad(set_to_none=True)
            layer(xt)[0].backward(gt)
        return step
    from dlcourse import nn
    layer = getattr(nn, kind)(28, 128)

    def step():
        layer.zero_grad()
        layer.forward(x)
        layer.backward(g)
    return step


@case("lstm", "LSTM 28->128 over 50 steps, batch 32: forward + backpropagation through time "
              "(dx and every weight gradient; random upstream gradient on every output)")
def bench_lstm(lib):
    return _recurrent_step(lib, "LSTM", 32)


@case("lstm64", "LSTM 28->128 over 50 steps, batch 64: forward + backpropagation through time")
def bench_lstm64(lib):
    return _recurrent_step(lib, "LSTM", 64)


@case("gru", "GRU 28->128 over 50 steps, batch 32: forward + backpropagation through time")
def bench_gru(lib):
    return _recurrent_step(lib, "GRU", 32)


@case("gru64", "GRU 28->128 over 50 steps, batch 64: forward + backpropagation through time")
def bench_gru64(lib):
    return _recurrent_step(lib, "GRU", 64)


# ---------------------------------------------------------------------------------------
# Running: one process per (case, library, thread count), see _harness.py
# ---------------------------------------------------------------------------------------


def measure(name: str, lib: str, threads: int, repeat: int, warmup: int) -> dict:
    return _harness.measure_case(__file__, name, lib, threads, repeat, warmup)


def main(argv=None) -> int:
    return _harness.main(argv, __file__, CASES, shapes=f"float32, batch {BATCH}", json_name="bench_layers.json",
                         json_by_default=False, targets=TARGETS)


if __name__ == "__main__":
    sys.exit(main())
