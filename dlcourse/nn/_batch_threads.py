"""Run the memory-bound parts of a layer (im2col's copies, col2im's adds) on several threads.

The matrix products of a convolution already use every thread NumPy's BLAS is allowed (OpenBLAS),
but the copies around them would run on one: with 2 threads, PyTorch then gains more from its
second thread than NumPy does. NumPy releases the GIL inside copies and ufunc loops, so splitting
such work over the batch (each thread writes its own samples) on as many threads as BLAS may use
(``dlcourse.runtime.num_threads`` and ``OPENBLAS_NUM_THREADS`` set it) lets it scale too.
Small arrays stay on one thread, where handing work over would cost more than it saves. Before
the Python threads start, OpenBLAS's idle workers are sent to sleep (``blas_workers_spin``), so
that they do not spin on the cores those threads need.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

MIN_BYTES = 1 << 20  # below about 1 MB of data to move, one thread is faster
POOL_PREFIX = "dlcourse-threads"

_pool: ThreadPoolExecutor | None = None
_blas = None  # the BLAS library's threadpoolctl controller, found on first use (False: none found)


def blas_threads() -> int:
    """How many threads NumPy's BLAS may use right now (1 if it cannot be asked)."""
    global _blas
    if _blas is None:
        try:
            from threadpoolctl import ThreadpoolController
            controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
            # SciPy loads a second OpenBLAS; the one that matters is NumPy's own (under numpy.libs / numpy/)
            numpys = [c for c in controllers if "numpy" in str(c.filepath).lower()]
            _blas = (numpys or controllers or [False])[0]
        except Exception:  # pragma: no cover - threadpoolctl missing or unable to inspect the process
            _blas = False
    return max(1, int(_blas.num_threads)) if _blas else 1


# ---------------------------------------------------------------------------------------
# How long OpenBLAS's idle workers spin
# ---------------------------------------------------------------------------------------
# After a multithreaded product, OpenBLAS's worker threads spin for 2**28 clock ticks (about 0.1 s) before they
# sleep, so that the next product starts without waking them. Python threads started in that time share the cores
# with a spinning worker: on 2 cores, Conv2d(32, 64, 3, padding=1)'s input gradient (batch 64, slices on two
# threads) took 8.5 ms right after the weight gradient's product, and 5.8 ms with workers that sleep at once. The
# LSTM is the opposite case: its 50 small products per pass come about 80 us apart, and waking the worker for each
# one cost 9.1 -> 13.0 ms. So the workers sleep at once (2**4 ticks) before work is split over Python threads, and
# spin again (2**28, OpenBLAS's default) before the LSTM's loop. OpenBLAS reads OPENBLAS_THREAD_TIMEOUT when it is
# loaded; ``openblas_read_env`` reads it again and ``blas_thread_shutdown_`` (what OpenBLAS calls before a fork) ends
# the workers, which the next multithreaded product starts with the new setting (about 0.2 ms per switch).
# Left alone: one BLAS thread, another BLAS, a user's own OPENBLAS_THREAD_TIMEOUT, DLCOURSE_BLAS_SPIN=default, and
# any call from a thread other than the main one (never while another thread might be inside a product).
SHORT_SPIN, LONG_SPIN = 4, 28  # OPENBLAS_THREAD_TIMEOUT's values: log2 of clock ticks
TIMEOUT_ENV = "OPENBLAS_THREAD_TIMEOUT"
_openblas = None  # (read_env, shutdown) of NumPy's OpenBLAS, found on first use (False: not available)
_spin = None      # the setting in force, once dlcourse has set one


def blas_workers_spin(long: bool) -> bool:
    """Let OpenBLAS's idle workers spin (``long``: the next product follows soon) or sleep at once (Python threads
    take the cores next). Returns True when the setting is now in force."""
    global _openblas, _spin
    want = LONG_SPIN if long else SHORT_SPIN
    if _spin == want:
        return True
    if _openblas is None:
        _openblas = _find_openblas()
    if not _openblas or blas_threads() < 2 or threading.current_thread() is not threading.main_thread():
        return False
    read_env, shutdown = _openblas
    os.environ[TIMEOUT_ENV] = str(want)
    try:
        read_env()
    finally:
        del os.environ[TIMEOUT_ENV]
    shutdown()
    _spin = want
    return True


def _find_openblas():
    from ..config import blas_spin_enabled
    blas_threads()  # finds NumPy's BLAS
    if (not blas_spin_enabled() or not _blas or _blas.internal_api != "openblas"
            or getattr(_blas, "threading_layer", "") != "pthreads"
            or any(k in os.environ for k in (TIMEOUT_ENV, "GOTO_THREAD_TIMEOUT"))):
        return False
    try:
        lib = ctypes.CDLL(_blas.filepath)
        read_env, shutdown = lib.openblas_read_env, lib.blas_thread_shutdown_
    except (OSError, AttributeError):  # pragma: no cover - an OpenBLAS without these symbols
        return False
    read_env.argtypes, read_env.restype = [], None
    shutdown.argtypes, shutdown.restype = [], ctypes.c_int
    return read_env, shutdown


def over_batch(fn, n: int, nbytes: int, one_blas_thread: bool = False) -> None:
    """Call ``fn(batch_slice)`` on slices covering ``range(n)``, in parallel when worth it.

    ``fn`` must write only the samples of its slice. ``nbytes``: roughly how much data the whole call moves.
    ``one_blas_thread``: ``fn`` runs matrix products; while the slices run, BLAS is held to one thread each.
    """
    k = min(blas_threads(), n) if nbytes >= MIN_BYTES else 1
    if k <= 1:
        fn(slice(0, n))
        return
    on_threads(fn, [slice(n * t // k, n * (t + 1) // k) for t in range(k)], one_blas_thread)


def on_threads(fn, items: list, one_blas_thread: bool = False) -> list:
    """``[fn(item) for item in items]``, one item per thread (this thread takes the first), after OpenBLAS's idle
    workers are sent to sleep. ``one_blas_thread``: BLAS is held to one thread each while they run. Called from
    one of these threads, it runs the items there, one after the other (the pool's threads are busy)."""
    global _pool
    if threading.current_thread().name.startswith(POOL_PREFIX):
        return [fn(item) for item in items]
    if _pool is None or _pool._max_workers < len(items) - 1:
        _pool = ThreadPoolExecutor(max_workers=len(items) - 1, thread_name_prefix=POOL_PREFIX)
    blas_workers_spin(long=False)
    with contextlib.ExitStack() as stack:
        if one_blas_thread:
            from ..runtime import num_threads
            stack.enter_context(num_threads(1, torch=False))
        futures = [_pool.submit(fn, item) for item in items[1:]]
        first = fn(items[0])
        return [first] + [future.result() for future in futures]
