"""The library path against PyTorch on the CPU: what a learner who builds their own model gets.

    .venv/bin/python benchmarks/library_path.py                      # everything (about 5-8 minutes on 2 cores)
    .venv/bin/python benchmarks/library_path.py --layers-only        # only the layer cases (about 1 minute)
    .venv/bin/python benchmarks/library_path.py --epochs 1 --limit 6000   # short run: 6000 training images

Cases (float32; ratio = dlcourse seconds / PyTorch seconds, so below 1 means dlcourse is faster):

* ``mlp``: an MLP 784-256-10, ``nn.Sequential(Linear, ReLU, Linear)`` + ``optim.Adam(lr=1e-3)`` +
  cross-entropy, trained on full MNIST (60000 images, batch 128, reshuffled every epoch): seconds per epoch.
* ``cnn``: conv32-relu-pool-conv64-relu-pool-fc128-relu-fc10 (3x3 convolutions, padding 1, 2x2 max
  pooling), the same training setup: seconds per epoch.
* ``conv``, ``maxpool``, ``lstm``: one layer's forward + backward, from ``bench_layers.py``
  (``Conv2d(32, 64, 3, padding=1)`` on 64x32x14x14, ``MaxPool2d(2)`` on 64x32x28x28, ``LSTM(28, 128)`` over
  50 steps, batch 32).

Both sides are written as their library's users write them, with no augmentation. PyTorch: the data are
made tensors once, then per batch ``zero_grad``, forward, loss, ``backward``, ``step``, with no NumPy
conversion. dlcourse: the same loop line by line, plus ``model.needs_input_grad = False`` (the input is
data, so the first layer skips its input gradient, as autograd does for a tensor without
``requires_grad``). Each measurement runs in its own fresh process that imports only one of the two
libraries, with the thread count fixed before the import (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
``MKL_NUM_THREADS``, ``torch.set_num_threads``); the two libraries alternate, and with ``--rounds`` > 1 each
keeps its fastest round (the one least disturbed by other processes). Results go to
``benchmarks/results/library_path.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402  (one process per measurement, threads pinned)
import bench_layers  # noqa: E402  (the layer cases)

from dlcourse.config import DATA_ENV, development_data_dir  # noqa: E402

ROOT = _harness.ROOT
RESULTS = _harness.RESULTS

BATCH = 128
LR = 1e-3
#: (case, threads) -> the ratio dlcourse / PyTorch the project aims for (issue 11; the MLP's 0.95 and the LSTM's
#: 1.5 at 1 and 2 threads are issue 21's).
TARGETS = {("mlp", 2): 0.95, ("cnn", 2): 1.5, ("conv", 1): 2.0, ("conv", 2): 2.0, ("maxpool", 2): 1.0,
           ("lstm", 1): 1.5, ("lstm", 2): 1.5}
EPOCH_CASES = {"mlp": "MLP 784-256-10, Adam, batch 128: seconds per epoch",
               "cnn": "CNN conv32-pool-conv64-pool-fc128-10, Adam, batch 128: seconds per epoch"}
LAYER_CASES = {"conv": "conv2", "maxpool": "maxpool", "lstm": "lstm"}  # our name -> bench_layers case
LAYER_DESCRIPTIONS = {"conv": "Conv2d(32, 64, 3, padding=1) on 64x32x14x14, forward + backward: seconds per call",
                      "maxpool": "MaxPool2d(2) on 64x32x28x28, forward + backward: seconds per call",
                      "lstm": "LSTM(28, 128), 50 steps, batch 32, forward + BPTT: seconds per call"}


# ---------------------------------------------------------------------------------------
# Training epochs (run inside a worker process)
# ---------------------------------------------------------------------------------------


def _mnist(model: str, limit: int | None):
    """Standardised float32 training images, flat (N, 784) for the MLP or (N, 1, 28, 28), and labels."""
    import numpy as np

    from dlcourse.data import load_mnist
    (images, labels), _ = load_mnist(progress=False)
    if limit:
        images, labels = images[:limit], labels[:limit]
    x = images.astype(np.float32)
    x *= np.float32(1 / (255 * 0.3081))
    x -= np.float32(0.1307 / 0.3081)
    x = x.reshape(len(x), -1) if model == "mlp" else x[:, None]
    return x, labels.astype(np.int64)


def _layers(lib, model: str):
    if model == "mlp":
        return [lib.Linear(784, 256), lib.ReLU(), lib.Linear(256, 10)]
    return [lib.Conv2d(1, 32, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
            lib.Conv2d(32, 64, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(),
            lib.Linear(64 * 7 * 7, 128), lib.ReLU(), lib.Linear(128, 10)]


def _timed_epochs(epoch, epochs: int, warmup: int) -> list[float]:
    """``epoch(warmup)`` (that many batches, untimed), then ``epochs`` whole epochs: seconds of each."""
    epoch(warmup)
    seconds = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        seconds.append(time.perf_counter() - t0)
    return seconds


def epochs_numpy(model: str, epochs: int, limit: int | None, warmup: int) -> list[float]:
    import numpy as np

    from dlcourse import nn, optim
    from dlcourse.random import manual_seed
    x, y = _mnist(model, limit)
    manual_seed(0)
    net = nn.Sequential(*_layers(nn, model))
    net.needs_input_grad = False  # the input is data: no gradient for it, as autograd does
    opt = optim.Adam(net.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)

    def epoch(num_batches=None):
        perm = rng.permutation(len(x))
        for k, start in enumerate(range(0, len(x), BATCH)):
            if num_batches is not None and k == num_batches:
                break
            idx = perm[start:start + BATCH]
            xb, yb = x[idx], y[idx]
            opt.zero_grad()
            loss_fn(net(xb), yb)
            net.backward(loss_fn.backward())
            opt.step()

    return _timed_epochs(epoch, epochs, warmup)


def epochs_torch(model: str, epochs: int, limit: int | None, warmup: int) -> list[float]:
    import torch
    x, y = _mnist(model, limit)
    torch.manual_seed(0)
    net = torch.nn.Sequential(*_layers(torch.nn, model))
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)  # tensors made once
    gen = torch.Generator().manual_seed(0)

    def epoch(num_batches=None):
        perm = torch.randperm(len(xt), generator=gen)
        for k, start in enumerate(range(0, len(xt), BATCH)):
            if num_batches is not None and k == num_batches:
                break
            idx = perm[start:start + BATCH]
            xb, yb = xt[idx], yt[idx]
            opt.zero_grad()
            loss = loss_fn(net(xb), yb)
            loss.backward()
            opt.step()

    return _timed_epochs(epoch, epochs, warmup)


def epoch_worker(model: str, lib: str, threads: int, epochs: int, limit: int | None, warmup: int) -> dict:
    _harness.pin_torch_threads(lib, threads)
    c0 = time.process_time()
    seconds = (epochs_torch if lib == "torch" else epochs_numpy)(model, epochs, limit, warmup)
    return {"seconds_per_epoch": statistics.median(seconds), "epochs": [round(s, 3) for s in seconds],
            "cpu_s": time.process_time() - c0}


# ---------------------------------------------------------------------------------------
# Running: one process per measurement, the libraries alternating
# ---------------------------------------------------------------------------------------


def measure_epochs(model, lib, threads, epochs, limit, warmup) -> dict:
    return _harness.run_worker(__file__, [model, lib, str(threads), "--epochs", str(epochs), "--warmup-batches",
                                          str(warmup)] + (["--limit", str(limit)] if limit else []), threads)


def _row(case, threads, description, target, best_numpy, best_torch, key, rounds) -> dict:
    ratio = best_numpy[key] / best_torch[key]
    return {"case": case, "threads": threads, "description": description, "rounds": rounds,
            "numpy_s": best_numpy[key], "torch_s": best_torch[key], "ratio": ratio, "target": target,
            "met": None if target is None else ratio <= target, "numpy": best_numpy, "torch": best_torch}


def run_epoch_case(model, threads, args) -> dict:
    best = _harness.fastest_of_rounds(
        lambda lib: measure_epochs(model, lib, threads, args.epochs, args.limit, args.warmup_batches), args.rounds,
        "seconds_per_epoch")
    row = _row(model, threads, EPOCH_CASES[model], TARGETS.get((model, threads)), best["numpy"], best["torch"],
               "seconds_per_epoch", args.rounds)
    row["limit"] = args.limit
    return row


def run_layer_case(name, threads, args) -> dict:
    layer_case = LAYER_CASES[name]
    best = _harness.fastest_of_rounds(
        lambda lib: bench_layers.measure(layer_case, lib, threads, args.repeat, args.warmup), args.layer_rounds,
        "median_s")
    return _row(name, threads, LAYER_DESCRIPTIONS[name], TARGETS.get((name, threads)), best["numpy"],
                best["torch"], "median_s", args.layer_rounds)


def _fmt(row) -> str:
    target = "" if row["target"] is None else f"<= {row['target']:g}"
    verdict = "" if row["met"] is None else ("met" if row["met"] else "MISSED")
    return (f"{row['case']:<8} {row['threads']:>7} {row['numpy_s']:>12.4f} {row['torch_s']:>12.4f} "
            f"{row['ratio']:>7.2f} {target:>8} {verdict:>7}")


HEADER = f"{'case':<8} {'threads':>7} {'dlcourse s':>12} {'torch s':>12} {'ratio':>7} {'target':>8} {'':>7}"


def environment() -> dict:
    env = _harness.environment()
    env["load_average_start"] = env.pop("load_average", None)
    return env


def _load(env, when) -> str:
    load = env.get(f"load_average_{when}")
    return "n/a" if load is None else ", ".join(f"{v:.1f}" for v in load)


def write_markdown(path: Path, env: dict, rows: list[dict], command: str) -> None:
    lines = [f"# Library path vs PyTorch CPU ({env['date']})", "",
             f"Command: `{command}`", "",
             f"Machine: {env.get('cpu')}, {env['cpu_count']} CPU(s); NumPy {env['numpy']}, PyTorch {env['torch']}, "
             f"Python {env['python']}. Load average (1, 5, 15 min) at start / end: {_load(env, 'start')} / "
             f"{_load(env, 'end')}.", "",
             "| case | what | threads | dlcourse s | PyTorch s | ratio | target |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        target = "" if r["target"] is None else f"≤ {r['target']:g} ({'met' if r['met'] else 'missed'})"
        what = r["description"]
        if r["case"] in EPOCH_CASES:
            what += f" (first {r['limit']} MNIST images)" if r.get("limit") else " (full MNIST)"
        lines.append(f"| `{r['case']}` | {what} | {r['threads']} | {r['numpy_s']:.4g} | {r['torch_s']:.4g} | "
                     f"{r['ratio']:.2f} | {target} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", choices=list(EPOCH_CASES) + list(LAYER_CASES),
                        default=list(EPOCH_CASES) + list(LAYER_CASES))
    parser.add_argument("--layers-only", action="store_true", help="only the layer cases (conv, maxpool, lstm)")
    parser.add_argument("--threads", nargs="+", type=int, default=[2],
                        help="thread counts for the training cases (default 2)")
    parser.add_argument("--layer-threads", nargs="+", type=int, default=[1, 2],
                        help="thread counts for the layer cases (default 1 2)")
    parser.add_argument("--epochs", type=int, default=1, help="timed epochs per training run (median reported)")
    parser.add_argument("--limit", type=int, default=None, help="train on the first LIMIT images only (short run)")
    parser.add_argument("--warmup-batches", type=int, default=20, help="untimed batches before the timed epochs")
    parser.add_argument("--rounds", type=int, default=1, help="training runs per library, alternating; fastest kept")
    parser.add_argument("--layer-rounds", type=int, default=3, help="layer runs per library, alternating")
    parser.add_argument("--repeat", type=int, default=20, help="timed calls per layer run (median)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed calls per layer run")
    parser.add_argument("--out", default=str(RESULTS / "library_path"),
                        help="results path without extension (.json and .md are written)")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "LIB", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        model, lib, threads = args.worker
        print(json.dumps(epoch_worker(model, lib, int(threads), args.epochs, args.limit, args.warmup_batches)))
        return 0

    cases = [c for c in args.cases if c in LAYER_CASES] if args.layers_only else args.cases
    if development_data_dir(ROOT) is not None:  # CI's layout: ../shared/data beside the repository
        os.environ.setdefault(DATA_ENV, str(development_data_dir(ROOT)))
    env = environment()
    command = "python benchmarks/library_path.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"dlcourse (NumPy {env['numpy']}) vs PyTorch {env['torch']} on {env.get('cpu')}, {env['cpu_count']} "
          f"CPU(s); float32; ratio = dlcourse / PyTorch")
    if env.get("load_average_start") and env["load_average_start"][0] > 0.5:
        print(f"note: load average {env['load_average_start'][0]:.1f}: other processes are running, timings are noisy")
    if args.limit:
        print(f"note: short run on the first {args.limit} training images")
    print(HEADER)
    print("-" * len(HEADER))
    rows = []
    for name in cases:
        if name in LAYER_CASES:
            for threads in args.layer_threads:
                rows.append(run_layer_case(name, threads, args))
                print(_fmt(rows[-1]), flush=True)
        else:
            for threads in args.threads:
                rows.append(run_epoch_case(name, threads, args))
                print(_fmt(rows[-1]), flush=True)
    try:
        env["load_average_end"] = os.getloadavg()
    except OSError:  # pragma: no cover
        pass
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in vars(args).items() if k != "worker"}
    out.with_suffix(".json").write_text(json.dumps({"command": command, "environment": env, "settings": settings,
                                                    "results": rows}, indent=2) + "\n", encoding="utf-8")
    write_markdown(out.with_suffix(".md"), env, rows, command)
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    missed = [r for r in rows if r["met"] is False]
    if missed:
        print("missed targets: " + ", ".join(f"{r['case']} at {r['threads']} thread(s) ({r['ratio']:.2f})"
                                             for r in missed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
