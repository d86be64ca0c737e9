"""book/build.py's guard against a stalled kernel: it kills a kernel that idles while a cell waits, and only then.

Each case runs in a fresh Python process whose only child stands in for the kernel, as in the build's workers. The
window is short here (2 s, under 0.1 s of CPU), so a computing child must not look idle even on a loaded machine.
"""

from __future__ import annotations

import subprocess
import sys

import repo_paths

ROOT = repo_paths.ROOT

SCRIPT = """
import subprocess, sys, threading, time
sys.path.insert(0, {book!r})
import build
child = subprocess.Popen([sys.executable, "-c", {child!r}])
stop = threading.Event()
timer = threading.Timer({stop_after}, stop.set)
timer.start()
t0 = time.monotonic()
build._kill_a_stalled_kernel(stop, poll_s=0.2, stall_s=2.0, min_cpu_s=0.1)
try:
    killed = child.wait(timeout=3) == -9
except subprocess.TimeoutExpired:
    killed = False
child.kill()
timer.cancel()
print("killed" if killed else "alive", round(time.monotonic() - t0, 1))
"""


def _run(child_code: str, stop_after: float) -> str:
    code = SCRIPT.format(book=str(ROOT / "book"), child=child_code, stop_after=stop_after)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.splitlines()[-1].split()[0]  # the last line: the build's log line may come before it


def test_an_idle_kernel_is_killed():
    assert _run("import time; time.sleep(60)", stop_after=20) == "killed"


def test_a_computing_kernel_is_left_alone():
    assert _run("while True: pass", stop_after=4) == "alive"
