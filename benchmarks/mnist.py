"""Chapter 7's headline numbers: MNIST test accuracy and seconds per epoch, NumPy vs PyTorch.

    .venv/bin/python benchmarks/mnist.py                                  # everything: 10 epochs, 2 threads
    .venv/bin/python benchmarks/mnist.py --models mlp --epochs 2          # a quick look
    .venv/bin/python benchmarks/mnist.py --models cnn --threads 1 --libraries numpy

Trains the recipes of ``dlcourse.recipes.RECIPES`` (library code, which chapter 7's notebook uses too) on the
full training set (60,000 images) and evaluates once on the 10,000 test images:

* ``mlp``: 784-256-10, Adam (lr 1e-3, cosine decay to 0), batch 128, 10 epochs;
* ``cnn``: conv32-conv64 (3x3, max pooling), dense 128, dropout, AdamW with a one-cycle schedule,
  random shifts of up to 2 pixels, batch 128, 10 epochs.

Each (model, library, device) runs in its own fresh process with the thread count fixed before
NumPy or PyTorch is imported (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``torch.set_num_threads``): two thread pools in one process slow each other down. PyTorch also runs
on the GPU when there is one. Seconds per epoch are the median over the epochs of the training
passes alone (evaluation excluded). Results go to ``benchmarks/results/mnist.json`` (with the CPU
model, thread count and library versions) and ``benchmarks/results/mnist.md`` (a markdown table for
the README), written atomically. MNIST is found as ``load_mnist()`` finds it (``$DLCOURSE_DATA``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGETS = {  # the chapter's promises, checked on every run
    "mlp": {"min_numpy_acc": 0.980, "max_time_ratio": 1.1},
    "cnn": {"min_numpy_acc": 0.990, "max_time_ratio": 1.5, "max_torch_gap": 0.002},
}


def _limit_threads(threads: int) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
                "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)


def worker(model: str, library: str, device: str, threads: int, epochs: int | None, seed: int, progress: bool) -> dict:
    """Train one recipe in this process and return its measurements (run via ``--worker``)."""
    _limit_threads(threads)
    import resource

    import numpy as np
    if library == "torch":
        import torch
        torch.set_num_threads(threads)
    sys.path.insert(0, str(ROOT))
    from dlcourse import recipes as mm
    from dlcourse.data import load_mnist
    from dlcourse.runtime import cpu_model, device_name

    (x_train, y_train), (x_test, y_test) = load_mnist()
    overrides = {"num_epochs": epochs} if epochs else {}
    t0 = time.perf_counter()
    run = mm.train_recipe(mm.RECIPES[model], (x_train, y_train), (x_test, y_test), library=library, device=device,
                          seed=seed, progress=progress, **overrides)
    total = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 1024**2)
    where = (f"cpu ({cpu_model()}, {threads} thread{'s' if threads > 1 else ''})" if device == "cpu"
             else f"{device} ({device_name(device)})")
    return {
        "model": model, "library": library, "device": device, "device_name": where, "threads": threads,
        "recipe": mm.recipe_dict(mm.RECIPES[model]) | overrides, "epochs": run.history.epochs,
        "test_acc": run.test_acc, "test_loss": run.test_loss,
        "seconds_per_epoch": run.seconds_per_epoch, "epoch_seconds": [round(s, 3) for s in run.history.seconds],
        "train_loss": run.history.train_loss, "total_seconds": round(total, 1), "peak_memory_mb": round(peak),
        "numpy": np.__version__,
    }


def run_in_subprocess(model, library, device, args) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", model, library, device,
           "--threads", str(args.threads), "--seed", str(args.seed)]
    if args.epochs:
        cmd += ["--epochs", str(args.epochs)]
    if args.no_progress:
        cmd.append("--no-progress")
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(args.threads)
    print(f"--- {model} / {library} / {device} ({args.threads} threads)", file=sys.stderr, flush=True)
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def check_targets(results: list[dict]) -> list[dict]:
    """Compare the measurements with TARGETS; one entry per promise (None when not measured)."""
    by = {(r["model"], r["library"], r["device"]): r for r in results}
    checks = []
    for model, target in TARGETS.items():
        ours, theirs = by.get((model, "numpy", "cpu")), by.get((model, "torch", "cpu"))
        if ours is not None:
            checks.append({"what": f"{model}: NumPy test accuracy >= {target['min_numpy_acc']:.1%}",
                           "value": ours["test_acc"], "ok": ours["test_acc"] >= target["min_numpy_acc"]})
        if ours is not None and theirs is not None:
            ratio = ours["seconds_per_epoch"] / theirs["seconds_per_epoch"]
            checks.append({"what": f"{model}: NumPy s/epoch <= {target['max_time_ratio']}x PyTorch CPU",
                           "value": ratio, "ok": ratio <= target["max_time_ratio"]})
            if "max_torch_gap" in target:
                gap = abs(ours["test_acc"] - theirs["test_acc"])
                checks.append({"what": f"{model}: |PyTorch - NumPy| test accuracy <= {target['max_torch_gap']:.1%}",
                               "value": gap, "ok": gap <= target["max_torch_gap"]})
    return checks


def markdown(report: dict) -> str:
    env = report["environment"]
    lines = [
        "| model | library | device | epochs | test accuracy | seconds / epoch | time / PyTorch CPU |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    torch_cpu = {r["model"]: r["seconds_per_epoch"] for r in report["results"]
                 if r["library"] == "torch" and r["device"] == "cpu"}
    names = {"mlp": "MLP 784-256-10", "cnn": "CNN conv32-conv64-128"}
    for r in report["results"]:
        ratio = f"{r['seconds_per_epoch'] / torch_cpu[r['model']]:.2f}" if r["model"] in torch_cpu else "–"
        lib = "NumPy (dlcourse)" if r["library"] == "numpy" else "PyTorch"
        lines.append(f"| {names.get(r['model'], r['model'])} | {lib} | {r['device_name']} | {r['epochs']} | "
                     f"{r['test_acc']:.2%} | {r['seconds_per_epoch']:.2f} | {ratio} |")
    lines += [
        "",
        f"Full MNIST (60,000 training / 10,000 test images), float32, batch 128, seed {report['seed']}; "
        f"seconds per epoch are the median training pass (evaluation excluded). CPU: {env['cpu']}, "
        f"{report['threads']} threads per library, each run in its own process. "
        f"Python {env['python']}, NumPy {env['numpy']}, PyTorch {env['torch']}. {env['date']}.",
        f"Recipes: MLP: {report['recipes']['mlp']}. CNN: {report['recipes']['cnn']}.",
        f"Command: `{report['command']}`",
    ]
    if report["checks"]:
        lines += ["", "Targets: " + "; ".join(f"{c['what']}: {c['value']:.4g} {'✓' if c['ok'] else '✗'}"
                                              for c in report["checks"]) + "."]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mlp,cnn", help="comma-separated: mlp,cnn")
    parser.add_argument("--libraries", default="numpy,torch", help="comma-separated: numpy,torch")
    parser.add_argument("--epochs", type=int, default=None, help="override the recipes' 10 epochs")
    parser.add_argument("--threads", type=int, default=2, help="threads per library (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-gpu", action="store_true", help="skip PyTorch on CUDA/MPS even when available")
    parser.add_argument("--no-save", action="store_true", help="print the table, write no files")
    parser.add_argument("--no-progress", action="store_true", help="no tqdm bars")
    parser.add_argument("--out", default=str(RESULTS), help="folder for mnist.json and mnist.md")
    parser.add_argument("--worker", nargs=3, metavar=("MODEL", "LIBRARY", "DEVICE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        model, library, device = args.worker
        print(json.dumps(worker(model, library, device, args.threads, args.epochs, args.seed,
                                not args.no_progress)))
        return 0

    models = [m for m in args.models.split(",") if m]
    libraries = [lib for lib in args.libraries.split(",") if lib]
    bad = [m for m in models if m not in TARGETS] + [lib for lib in libraries if lib not in ("numpy", "torch")]
    if bad:
        parser.error(f"unknown model or library: {bad} (models: mlp, cnn; libraries: numpy, torch)")
    sys.path.insert(0, str(ROOT))
    from dlcourse import recipes as mm
    gpu = None
    if "torch" in libraries and not args.no_gpu:
        from dlcourse.runtime import best_device
        gpu = best_device() if best_device() != "cpu" else None

    results = []
    for model in models:
        for library in libraries:
            for device in (["cpu"] + ([gpu] if gpu else [])) if library == "torch" else ["cpu"]:
                r = run_in_subprocess(model, library, device, args)
                results.append(r)
                print(f"    test accuracy {r['test_acc']:.2%}, {r['seconds_per_epoch']:.2f} s/epoch "
                      f"(epochs: {r['epoch_seconds']}), peak memory {r['peak_memory_mb']} MB", file=sys.stderr)

    report = {
        "command": " ".join(shlex.quote(a) for a in [".venv/bin/python", "benchmarks/mnist.py", *sys.argv[1:]]),
        "environment": mm.environment(args.threads) | {"machine": platform.machine()},
        "threads": args.threads, "seed": args.seed,
        "recipes": {m: mm.RECIPES[m].describe() if not args.epochs else
                    replace(mm.RECIPES[m], num_epochs=args.epochs).describe()
                    for m in TARGETS},
        "results": results,
        "checks": check_targets(results),
    }
    table = markdown(report)
    print(table)
    for c in report["checks"]:
        print(f"{'PASS' if c['ok'] else 'FAIL'}  {c['what']}: {c['value']:.4g}")
    if not args.no_save:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "mnist.json", json.dumps(report, indent=2) + "\n")
        write_atomic(out / "mnist.md", table)
        print(f"wrote {out / 'mnist.json'} and {out / 'mnist.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
