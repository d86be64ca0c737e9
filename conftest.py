"""Test-run settings: quick mode for every notebook, a headless plotting backend.

Set before any kernel starts, so that nbval's kernels (--nbval-current-env) inherit them.
"""

import os

os.environ.setdefault("DLCOURSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# check() records a learner's passed steps in the user's data folder; a test run is no learner
os.environ.setdefault("DLCOURSE_PROGRESS", "off")


def pytest_collection_modifyitems(config, items):
    """nbval waits only 5 s for a cell's outputs after the kernel has replied; on a loaded 2-core
    machine that flaked once. Give it 60 s (a real hang still fails, through --nbval-cell-timeout)."""
    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests record for the run's summary (tests/library/nn/test_torch_specs.py: supported share)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "torch_specs" and report.when == "call":
                terminalreporter.write_line(value)
