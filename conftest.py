"""Test-run settings: quick mode for every notebook, a headless plotting backend.

Set before any kernel starts, so that nbval's kernels (--nbval-current-env) inherit them.
"""

import os

os.environ.setdefault("DLCOURSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
