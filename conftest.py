"""Test-run settings: quick mode for every notebook, a headless plotting backend.

Set before any kernel starts, so that nbval's kernels (--nbval-current-env) inherit them.
"""

import os

os.environ.setdefault("DLCOURSE_QUICK", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# check() records a learner's passed steps in the user's data folder; a test run is no learner
os.environ.setdefault("DLCOURSE_PROGRESS", "off")


# Tests that run notebooks in Jupyter kernels (or a browser): CI runs them under its main Python only, where the
# kernels are the same code whatever the interpreter (README, "Tests and CI"). Marked `kernel` here, by file or by
# the fixture that grades a class, so that the other Pythons' `-m "not kernel"` leaves them out.
KERNEL_FILES = {"test_grade_nbgrader.py", "test_browser.py", "test_book.py", "test_book_stops_on_a_cell_error.py"}
KERNEL_FIXTURES = {"graded"}  # tests/library/test_grade.py: python -m dlcourse.grade on a class of notebooks


def pytest_collection_modifyitems(config, items):
    """Mark the kernel tests; give nbval 60 s for a cell's outputs.

    nbval waits only 5 s for a cell's outputs after the kernel has replied; on a loaded 2-core
    machine that flaked once. Give it 60 s (a real hang still fails, through --nbval-cell-timeout)."""
    import pytest

    for item in items:
        if hasattr(item, "output_timeout"):
            item.output_timeout = 60
        if (hasattr(item, "output_timeout") or item.path.name in KERNEL_FILES
                or KERNEL_FIXTURES & set(getattr(item, "fixturenames", ()))):
            item.add_marker(pytest.mark.kernel)


def pytest_terminal_summary(terminalreporter):
    """Print the figures tests record for the run's summary (tests/library/nn/test_torch_specs.py: supported share)."""
    for report in terminalreporter.stats.get("passed", []) + terminalreporter.stats.get("failed", []):
        for name, value in getattr(report, "user_properties", []):
            if name == "torch_specs" and report.when == "call":
                terminalreporter.write_line(value)
