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
    info = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "python": platform.python_version(),
            "numpy": numpy.__version__, "machine": platform.machine(), "platform": platform.platform(),
            "cpu_count": os.cpu_count(), "cpu": platform.processor() or None}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                               info["cpu"])
    except OSError:  # not Linux
        pass
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
