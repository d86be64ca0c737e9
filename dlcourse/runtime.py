"""Devices, threads and timing: the one place that decides where and how fast code runs.

- :func:`best_device` / :func:`device_name` / :func:`cpu_model`: CUDA, else Apple MPS, else the CPU, and its name.
- :func:`num_threads`: limit NumPy's BLAS (and PyTorch) to ``n`` threads inside a ``with`` block.
- :func:`timeit` / :func:`time_side_by_side`: median wall-clock seconds, NumPy beside PyTorch.
- :func:`keep_freed_memory`: glibc's malloc keeps freed blocks for reuse (called when ``dlcourse`` is imported).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import statistics
import time

from .compare import Table
from .config import keep_freed_memory_enabled

_controller = None

# glibc's malloc gives a freed block above 128 KB back to the kernel (munmap, or trimming the heap), so a layer
# whose temporaries are a few MB each gets fresh pages from the kernel on every call, each one faulted in and
# zeroed: an LSTM(28, 128) step over 50 steps, batch 32, took 17.4 ms instead of 12.5 ms that way (2 cores of
# an AMD EPYC, NumPy 2.4, 2026-12-07; benchmarks/bench_layers.py). PyTorch's performance guide tells its users
# to swap the allocator (jemalloc, tcmalloc) for the same reason. Blocks below MMAP_THRESHOLD come from the heap
# and up to TRIM_THRESHOLD of free heap is kept for the next step.
MMAP_THRESHOLD = 32 << 20   # the largest value glibc accepts on 64-bit
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_malloc_tuned = None


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed blocks of up to 32 MB for reuse instead of handing them back to the kernel.

    Called once when ``dlcourse`` is imported. Returns True when the setting is in force: on Linux with glibc,
    unless ``DLCOURSE_MALLOC=default`` asks to leave malloc alone or the user tuned it already with
    ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_``. The cost: the process may hold up to 256 MB of
    freed memory for reuse instead of returning it.
    """
    global _malloc_tuned
    if _malloc_tuned is not None:
        return _malloc_tuned
    _malloc_tuned = False
    if (not keep_freed_memory_enabled() or platform.system() != "Linux" or platform.libc_ver()[0] != "glibc"
            or any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"))):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - a glibc without mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _malloc_tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                                      TRIM_THRESHOLD))
    return _malloc_tuned


def best_device() -> str:
    """'cuda' when a CUDA GPU is visible, else 'mps' (Apple), else 'cpu'."""
    import torch
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def device_name(device: str) -> str:
    """A readable name of ``device``: the GPU's model, or the CPU's."""
    import torch
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    if device == "mps":
        return "Apple GPU (mps)"
    return cpu_model()


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else ``platform.processor()``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "CPU"


def _sync(device):
    import torch
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def timeit(fn, repeat: int = 5, warmup: int = 1, device: str = "cpu") -> float:
    """Median wall-clock seconds of ``fn()`` over ``repeat`` runs, after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@contextlib.contextmanager
def num_threads(n: int | None, torch: bool = True):
    """Limit NumPy's BLAS (and PyTorch, unless ``torch=False``) to ``n`` threads inside the block.

    ``n=None`` leaves everything alone. Why it matters: NumPy's and PyTorch's thread pools in one
    process slow each other down, and small toy problems only lose time to extra BLAS threads.
    """
    global _controller
    if n is None:
        yield
        return
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"num_threads: expected a positive integer or None, got {n!r}")
    if _controller is None:
        from threadpoolctl import ThreadpoolController
        _controller = ThreadpoolController()
    old = None
    if torch:
        import torch as _torch
        old = _torch.get_num_threads()
        _torch.set_num_threads(n)
    try:
        with _controller.limit(limits=n, user_api="blas"):
            yield
    finally:
        if old is not None:
            _torch.set_num_threads(old)


def time_side_by_side(numpy_fn, torch_fn, repeat: int = 5, warmup: int = 1, threads: int = 1,
                      title: str = "") -> Table:
    """Time ``numpy_fn()`` and ``torch_fn(device)`` on the CPU, and on the GPU when there is one.

    Both CPU runs use the same number of ``threads`` (1 by default: two thread pools in one
    process slow each other down, and one thread each is the fair, reproducible comparison).
    Returns a Table of seconds per call and the ratio to NumPy.
    """
    rows = []
    with num_threads(threads):
        t_np = timeit(numpy_fn, repeat, warmup)
        rows.append(["NumPy", f"cpu ({threads} thread{'s' if threads > 1 else ''})", t_np, 1.0])
        t_cpu = timeit(lambda: torch_fn("cpu"), repeat, warmup)
        rows.append(["PyTorch", f"cpu ({threads} thread{'s' if threads > 1 else ''})", t_cpu, t_cpu / t_np])
    dev = best_device()
    if dev != "cpu":
        t_dev = timeit(lambda: torch_fn(dev), repeat, warmup, device=dev)
        rows.append(["PyTorch", f"{dev} ({device_name(dev)})", t_dev, t_dev / t_np])
    return Table(["library", "device", "seconds per call", "time / NumPy's"], rows, title)
