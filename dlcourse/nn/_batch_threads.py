"""Run the memory-bound parts of a layer (im2col's copies, col2im's adds) on several threads.

The matrix products of a convolution already use every thread NumPy's BLAS is allowed (OpenBLAS),
but the copies around them would run on one: with 2 threads, PyTorch then gains more from its
second thread than NumPy does. NumPy releases the GIL inside copies and ufunc loops, so splitting
such work over the batch (each thread writes its own samples) on as many threads as BLAS may use
(``dlcourse.runtime.num_threads`` and ``OPENBLAS_NUM_THREADS`` set it) lets it scale too.
Small arrays stay on one thread, where handing work over would cost more than it saves.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor

MIN_BYTES = 1 << 20  # below about 1 MB of data to move, one thread is faster

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


def over_batch(fn, n: int, nbytes: int, one_blas_thread: bool = False) -> None:
    """Call ``fn(batch_slice)`` on slices covering ``range(n)``, in parallel when worth it.

    ``fn`` must write only the samples of its slice. ``nbytes``: roughly how much data the whole call moves.
    ``one_blas_thread``: ``fn`` runs matrix products; while the slices run, BLAS is held to one thread each.
    """
    global _pool
    k = min(blas_threads(), n) if nbytes >= MIN_BYTES else 1
    if k <= 1:
        fn(slice(0, n))
        return
    if _pool is None or _pool._max_workers < k - 1:
        _pool = ThreadPoolExecutor(max_workers=k - 1, thread_name_prefix="dlcourse-batch")
    bounds = [n * t // k for t in range(k + 1)]
    with contextlib.ExitStack() as stack:
        if one_blas_thread:
            from ..runtime import num_threads
            stack.enter_context(num_threads(1, torch=False))
        futures = [_pool.submit(fn, slice(bounds[t], bounds[t + 1])) for t in range(1, k)]
        fn(slice(bounds[0], bounds[1]))
        for future in futures:
            future.result()
