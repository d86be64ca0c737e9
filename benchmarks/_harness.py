"""What every benchmark script here shares: one fresh process per measurement, threads pinned before the import.

NumPy's and PyTorch's thread pools in one process slow each other down (by up to 20x on a 2-core machine),
so timing both in one process measures the fight, not the libraries. Each script therefore re-runs itself
with ``--worker ...`` once per (case, library, thread count); :func:`run_worker` starts that process with the
thread variables set and reads the JSON line it prints. :func:`fastest_of_rounds` alternates the two
libraries and keeps each one's fastest round (the one least disturbed by other processes).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
LIBRARIES = ("numpy", "torch")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
               "NUMEXPR_NUM_THREADS")


def pin_torch_threads(lib: str, threads: int) -> None:
    """In a worker: PyTorch's intra-op pool to ``threads`` (the environment variables already pin NumPy's)."""
    if lib == "torch":
        import torch
        torch.set_num_threads(threads)


def time_calls(step, repeat: int, warmup: int) -> dict:
    """Call ``step()`` ``warmup`` times untimed, then ``repeat`` times: median and best wall seconds, median CPU."""
    for _ in range(warmup):
        step()
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"median_s": statistics.median(wall), "best_s": min(wall), "cpu_median_s": statistics.median(cpu)}


def run_worker(script: str, worker_args: list[str], threads: int) -> dict:
    """Run ``python script --worker ...`` in a fresh process with ``threads`` pinned; return its JSON result."""
    env = dict(os.environ, **{var: str(threads) for var in THREAD_VARS})
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, script, "--worker", *worker_args], env=env, capture_output=True,
                         text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark worker {' '.join(worker_args)} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fastest_of_rounds(measure, rounds: int, key: str) -> dict:
    """``measure(lib)`` for NumPy then PyTorch, ``rounds`` times; keep each library's result with the least ``key``."""
    best: dict = {}
    for _ in range(rounds):
        for lib in LIBRARIES:
            result = measure(lib)
            if lib not in best or result[key] < best[lib][key]:
                best[lib] = result
    return best


def add_ratios(row: dict) -> dict:
    """NumPy / PyTorch of the median, the best and the median CPU seconds of ``row["numpy"]`` and ``row["torch"]``."""
    for ratio, key in (("ratio_median", "median_s"), ("ratio_best", "best_s"), ("ratio_cpu", "cpu_median_s")):
        row[ratio] = row["numpy"][key] / row["torch"][key]
    return row


def environment() -> dict:
    """The machine and the versions, for the results file: CPU model, core count, load average."""
    import numpy

    from dlcourse.runtime import cpu_model
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
            "numpy": numpy.__version__, "machine": platform.machine(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cpu": cpu_model()}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                         text=True, check=False)
    info["torch"] = out.stdout.strip() or None
    try:
        info["load_average"] = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        pass
    return info


def warn_if_busy(env: dict) -> None:
    load = env.get("load_average")
    if load and load[0] > 0.5:
        print(f"note: load average {load[0]:.1f}: other processes are running, timings are noisy")


# ---------------------------------------------------------------------------------------
# A layer benchmark's command line: cases are {name: (make_step(lib) -> step, description)}
# ---------------------------------------------------------------------------------------


def measure_case(script: str, name: str, lib: str, threads: int, repeat: int, warmup: int) -> dict:
    """Time case ``name`` of ``script`` for ``lib`` in a fresh process with ``threads`` pinned."""
    return run_worker(script, [name, lib, str(threads), "--repeat", str(repeat), "--warmup", str(warmup)], threads)


HEADER = (f"{'case':<10} {'threads':>7} {'NumPy ms':>10} {'torch ms':>10} {'ratio':>7} {'ratio(best)':>11} "
          f"{'ratio(cpu)':>10} {'target':>7}")


def format_row(row: dict) -> str:
    target = "" if row.get("target") is None else f"{'<=' if row['met'] else 'MISSED '}{row['target']:.1f}"
    return (f"{row['case']:<10} {row['threads']:>7} {1e3 * row['numpy']['median_s']:>10.2f} "
            f"{1e3 * row['torch']['median_s']:>10.2f} {row['ratio_median']:>7.2f} {row['ratio_best']:>11.2f} "
            f"{row['ratio_cpu']:>10.2f} {target:>7}")


def run_cases(script: str, cases: dict, names, threads_list, repeat: int, warmup: int, rounds: int = 1,
              targets: dict | None = None) -> list[dict]:
    """Measure every case at every thread count; with ``rounds`` > 1 the libraries alternate, fastest kept."""
    rows = []
    for threads in threads_list:
        for name in names:
            row = {"case": name, "description": cases[name][1], "threads": threads, "rounds": rounds}
            row.update(fastest_of_rounds(lambda lib: measure_case(script, name, lib, threads, repeat, warmup),
                                         rounds, "median_s"))
            add_ratios(row)
            row["target"] = (targets or {}).get(name)
            row["met"] = None if row["target"] is None else row["ratio_median"] <= row["target"]
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def main(argv, script: str, cases: dict, *, shapes: str, json_name: str, json_by_default: bool,
         targets: dict | None = None) -> int:
    """The command line of a layer benchmark (``bench_layers.py``, ``bench_attention.py``); see its docstring."""
    import argparse
    parser = argparse.ArgumentParser(description=f"{Path(script).name}: dlcourse vs PyTorch, same threads")
    parser.add_argument("--cases", nargs="+", choices=sorted(cases), default=list(cases))
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure each case this many times, alternating the libraries, and keep each one's "
                             "fastest round (helps on a busy machine)")
    default_json = str(RESULTS / json_name)
    if json_by_default:
        parser.add_argument("--json", default=default_json, help=f"where to write the results (default {default_json})")
        parser.add_argument("--no-json", action="store_true", help="print only, write no file")
    else:
        parser.add_argument("--json", nargs="?", const=default_json, default=None,
                            help=f"write the results as JSON (default path {default_json})")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "LIB", "THREADS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # in the fresh process: time one case
        name, lib, threads = args.worker
        pin_torch_threads(lib, int(threads))
        print(json.dumps(time_calls(cases[name][0](lib), args.repeat, args.warmup)))
        return 0

    env = environment()
    print(f"NumPy {env['numpy']} vs PyTorch {env['torch']} on {env['cpu']}, {env['cpu_count']} CPU(s); {shapes}; "
          f"median of {args.repeat} calls, fastest of {args.rounds} round(s); ratio = NumPy / PyTorch")
    warn_if_busy(env)
    for name in args.cases:
        print(f"  {name}: {cases[name][1]}")
    print(HEADER + "\n" + "-" * len(HEADER))
    rows = run_cases(script, cases, args.cases, args.threads, args.repeat, args.warmup, args.rounds, targets)
    if args.json and not getattr(args, "no_json", False):
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"environment": env, "results": rows}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0
