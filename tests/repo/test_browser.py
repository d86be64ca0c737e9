"""The widgets work for a learner: JupyterLab in headless Chromium, Run All, then move a slider by keyboard.

For each chapter below: start JupyterLab (no token, quick mode, a temporary copy of notebooks/), open
the notebook, Run > Run All Cells, wait for the kernel, focus the widget's slider handle, press
ArrowRight and then ArrowLeft, and require the plot image and the readout to change each time.
A screenshot of every run, passed or failed, goes to tests/_output/.

Needs Debian's Chromium (/usr/bin/chromium; `apt-get install chromium`, which .ci/run does as root);
skips with that reason without it. The tests share one server and browser, so they run in one
xdist worker (this is one file, and the test run uses --dist loadfile).
"""

from __future__ import annotations

import shutil
import time

import pytest
import repo_paths
from browser_helpers import (
    CHROMIUM,
    OUTPUT_DIR,
    JupyterLabServer,
    SliderWidget,
    launch_chromium,
    open_notebook,
    run_all_cells,
    screenshot,
    shut_down_kernels,
    wait_for_all_cells_executed,
    wait_for_kernel_idle,
)

ROOT = repo_paths.ROOT
NOTEBOOKS = ROOT / "notebooks"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not installed ({CHROMIUM}): apt-get install chromium"),
    pytest.mark.xdist_group("browser"),
]

# Bounded, but generous: the test machines have 2 cores shared with other jobs.
OPEN_TIMEOUT_S = 180       # JupyterLab's page and a started kernel
RUN_ALL_TIMEOUT_S = 480    # every cell of a quick-mode chapter
REDRAW_TIMEOUT_S = 120     # one retrain + redraw after a slider move

# (notebook, the slider's description, what the widget is)
CASES = [
    ("03_optimizers.ipynb", "learning rate", "the learning-rate playground"),
    ("01_neurons.ipynb", "weight w1", "the neuron explorer"),
    ("08_attention.ipynb", "head", "the attention explorer"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with JupyterLabServer(NOTEBOOKS, tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright missing: pip install -r requirements.txt")
    with sync_api.sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("notebook, slider, what", CASES, ids=[c[0].removesuffix(".ipynb") for c in CASES])
def test_widget_responds_to_the_keyboard_in_jupyterlab(lab, browser, notebook, slider, what):
    assert (NOTEBOOKS / notebook).exists(), f"notebooks/{notebook} is missing"
    stem = notebook.removesuffix(".ipynb")
    for stale in (f"{stem}-ok.png", f"{stem}-FAILED.png", f"{stem}-FAILED-jupyterlab.log"):
        (OUTPUT_DIR / stale).unlink(missing_ok=True)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page_errors = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    timings = {}
    try:
        start = time.monotonic()
        open_notebook(page, lab, notebook, timeout_s=OPEN_TIMEOUT_S)
        timings["open"] = time.monotonic() - start

        run_all_cells(page)
        timings["run all"] = wait_for_all_cells_executed(page, timeout_s=RUN_ALL_TIMEOUT_S)

        widget = SliderWidget(page, slider)
        for key in ("ArrowRight", "ArrowLeft"):
            before = widget.state()
            start = time.monotonic()
            widget.press(key)
            widget.wait_for_value_change(before["value"], timeout_s=10)
            widget.wait_for_redraw(before, timeout_s=REDRAW_TIMEOUT_S)
            timings[f"redraw after {key}"] = time.monotonic() - start
            wait_for_kernel_idle(page, timeout_s=REDRAW_TIMEOUT_S)
        assert not page_errors, f"JavaScript errors in the page: {page_errors}"
        shot = screenshot(page, f"{stem}-ok.png")
        print(f"{what}: ok, screenshot {shot}; " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    except BaseException:
        shot = screenshot(page, f"{stem}-FAILED.png")
        log = shutil.copy(lab.log_path, shot.with_name(f"{stem}-FAILED-jupyterlab.log"))
        print(f"{what}: FAILED, screenshot {shot}, server log {log}; timings so far {timings}")
        raise
    finally:
        try:  # cleanup only; the server's teardown ends any kernel left behind
            shut_down_kernels(page)
        except Exception as error:
            print(f"could not shut the kernel down through the page: {error}")
        context.close()
