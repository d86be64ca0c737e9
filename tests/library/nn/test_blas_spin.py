"""_batch_threads.blas_workers_spin: OpenBLAS's idle workers sleep at once before work goes to Python threads, and
spin again before the LSTM's loop; the results do not change, and the opt-outs leave OpenBLAS alone.

Each case runs in a fresh process with two BLAS threads (the setting belongs to the process). Whether a worker
spins is read from Linux's /proc: a spinning worker is runnable (R) a millisecond after a product, a sleeping one
waits (S).
"""

import os
import platform
import subprocess
import sys

import pytest
from repo_paths import ROOT

linux = pytest.mark.skipif(platform.system() != "Linux", reason="reads the worker threads' state from /proc")

PROBE = r"""
import os, sys, time
import numpy as np
import dlcourse
from dlcourse import nn
from dlcourse.nn import _batch_threads as bt

def workers_running():
    # threads other than this one that are runnable right now: a spinning OpenBLAS worker is one of them
    me, n = str(os.getpid()), 0
    for tid in os.listdir("/proc/self/task"):
        if tid != me:
            with open(f"/proc/self/task/{tid}/stat") as f:
                n += f.read().rsplit(")", 1)[1].split()[0] == "R"
    return n

a = np.random.default_rng(0).random((1500, 400), dtype=np.float32)
time.sleep(0.3)  # any BLAS thread pool started by the imports has stopped its first spin (2**28 ticks, 0.1 s)

def after_a_product():
    a.T @ a  # large enough for both BLAS threads
    time.sleep(0.002)
    return workers_running()

print("default", after_a_product())
bt.over_batch(lambda s: None, 4, 1 << 30)        # work split over Python threads next: workers sleep at once
print("after over_batch", after_a_product())
lstm = nn.LSTM(3, 4)
lstm.forward(np.zeros((2, 2, 3), np.float32))    # the LSTM's loop: workers spin again
print("after the LSTM", after_a_product())
print("returns", bt.blas_workers_spin(long=False))
"""


def _probe(**env):
    environment = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_THREAD_TIMEOUT", "DLCOURSE_BLAS_SPIN")}
    environment.update(OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", **env)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=ROOT,
                         env=environment).stdout
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in out.splitlines()}


def _openblas_pthreads() -> bool:
    from dlcourse.nn import _batch_threads as bt
    bt.blas_threads()  # finds NumPy's BLAS, as the probe's process will
    return bool(bt._blas) and bt._blas.internal_api == "openblas" and \
        getattr(bt._blas, "threading_layer", "") == "pthreads"


@linux
def test_workers_sleep_before_python_threads_and_spin_again_for_the_lstm():
    if not _openblas_pthreads():
        pytest.skip("NumPy's BLAS is not OpenBLAS with pthreads")
    seen = _probe()
    assert seen["returns"] == "True", seen
    assert int(seen["default"]) >= 1, seen             # OpenBLAS's own setting: the worker spins
    assert seen["after over_batch"] == "0", seen       # ... and sleeps once dlcourse has split work over threads
    assert int(seen["after the LSTM"]) >= 1, seen      # ... and spins again for the LSTM


@linux
@pytest.mark.parametrize("env", [{"DLCOURSE_BLAS_SPIN": "default"}, {"OPENBLAS_THREAD_TIMEOUT": "28"}],
                         ids=["DLCOURSE_BLAS_SPIN=default", "the users own OPENBLAS_THREAD_TIMEOUT"])
def test_the_opt_outs_leave_openblas_alone(env):
    if not _openblas_pthreads():
        pytest.skip("NumPy's BLAS is not OpenBLAS with pthreads")
    seen = _probe(**env)
    assert seen["returns"] == "False", seen
    assert int(seen["after over_batch"]) >= 1, seen    # still spinning, as OpenBLAS does by default


def test_one_blas_thread_or_another_thread_is_left_alone(monkeypatch):
    import threading

    from dlcourse.nn import _batch_threads as bt
    monkeypatch.setattr(bt, "_spin", None)
    monkeypatch.setattr(bt, "blas_threads", lambda: 1)
    assert bt.blas_workers_spin(long=False) is False
    monkeypatch.setattr(bt, "blas_threads", lambda: 2)
    result = []
    worker = threading.Thread(target=lambda: result.append(bt.blas_workers_spin(long=False)))
    worker.start()
    worker.join()
    assert result == [False]
    assert bt._spin is None


def test_the_setting_changes_no_result(monkeypatch):
    import numpy as np

    from dlcourse.nn import _batch_threads as bt
    from dlcourse.nn.conv_functional import conv2d_backward_cached, conv2d_forward
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 6, 12, 12)).astype(np.float32)
    w = rng.standard_normal((5, 6, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal((8, 5, 12, 12)).astype(np.float32)
    monkeypatch.setattr(bt, "MIN_BYTES", 0)

    def run():
        y, cache = conv2d_forward(x, w, b, 1, 1)
        return (y, *conv2d_backward_cached(g, cache))
    monkeypatch.setattr(bt, "_openblas", False)  # left alone
    alone = run()
    monkeypatch.setattr(bt, "_openblas", None)   # found again: set where it can be
    monkeypatch.setattr(bt, "_spin", None)
    for a, c in zip(alone, run()):
        np.testing.assert_array_equal(a, c)
