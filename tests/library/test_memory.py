"""runtime.keep_freed_memory: glibc's malloc keeps freed blocks for reuse once dlcourse is imported."""

import os
import platform
import subprocess
import sys

import pytest
from repo_paths import ROOT

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="mallopt is glibc's")

# A training step's pattern: allocate a few MB of temporaries, use them, free them; count the page faults.
PROBE = """
import resource, sys
import numpy as np
if sys.argv[1] == "import":
    import dlcourse
    print("tuned", dlcourse.runtime.keep_freed_memory())
for _ in range(3):
    np.ones(1 << 20, np.float32).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    a = np.ones((3, 1 << 20), np.float32)  # 12 MB: above glibc's default thresholds
    b = a * 2
    del a, b
print("faults", resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _page_faults(mode: str, **env) -> tuple[int, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    environment.update(env)
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True,
                         cwd=ROOT, env=environment).stdout
    return int(out.split("faults")[1]), out


@glibc
def test_importing_dlcourse_stops_the_page_faults_of_large_temporaries():
    plain, _ = _page_faults("plain")
    tuned, out = _page_faults("import")
    assert "tuned True" in out
    # 50 steps of 24 MB of fresh pages: about 300,000 faults of 4 KB without the setting; a few hundred with it
    assert plain > 50 * 1000, plain
    assert tuned < plain / 20, (tuned, plain)


@glibc
def test_dlcourse_malloc_default_and_the_users_own_tuning_leave_malloc_alone():
    plain, _ = _page_faults("plain")
    for env in ({"DLCOURSE_MALLOC": "default"}, {"MALLOC_TRIM_THRESHOLD_": "131072"}):
        faults, out = _page_faults("import", **env)
        assert "tuned False" in out, env
        assert faults > plain / 2, (env, faults, plain)
