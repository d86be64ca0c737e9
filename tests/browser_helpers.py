"""Drive the course's notebooks in a real browser: a private JupyterLab server and headless Chromium.

Used by tests/repo/test_browser.py. The server serves a temporary copy of the notebooks (JupyterLab
autosaves, and the committed notebooks must stay without outputs), with its own config, settings and
workspace folders, no token, no news or update checks (the test machines have no internet), and
``DLCOURSE_QUICK=1`` in the kernels' environment. Chromium is Debian's (``/usr/bin/chromium``);
Playwright only drives it, it does not download a browser of its own.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = Path(os.environ.get("DLCOURSE_CHROMIUM", "/usr/bin/chromium"))
# Without the background-networking flags Chromium keeps trying hosts that a closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
    "--disable-default-apps", "--disable-extensions", "--mute-audio",
]
OUTPUT_DIR = Path(__file__).resolve().parent / "_output"

# JupyterLab user settings: every cell stays in the DOM (no windowing), no pop-ups that hide the notebook.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                         "checkForUpdates": False},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLabServer:
    """A JupyterLab server on 127.0.0.1 serving ``root`` (a copy the tests may change), no token.

    Use as a context manager; ``url(path)`` gives the address of a notebook; ``log_path`` has the
    server's and the kernels' output.
    """

    def __init__(self, notebooks: Path, workdir: Path, env: dict | None = None, startup_timeout: float = 120):
        self.workdir = Path(workdir)
        self.root = self.workdir / "notebooks"
        shutil.copytree(notebooks, self.root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self.log_path = self.workdir / "jupyterlab.log"
        self.extra_env = env or {}
        self.proc: subprocess.Popen | None = None

    def _environment(self) -> dict:
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernel's own inline backend, as for a learner
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTERLAB_SETTINGS_DIR",
                     "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
            folder = self.workdir / name.lower()
            folder.mkdir(exist_ok=True)
            env[name] = str(folder)
        settings = Path(env["JUPYTERLAB_SETTINGS_DIR"])
        for rel, values in LAB_SETTINGS.items():
            (settings / rel).parent.mkdir(parents=True, exist_ok=True)
            (settings / rel).write_text(json.dumps(values), encoding="utf-8")
        env.update({"DLCOURSE_QUICK": "1", "PYTHONUNBUFFERED": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"})
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "jupyterlab", "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            "--IdentityProvider.token=", "--ServerApp.password=",
            "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly", "--ServerApp.terminals_enabled=False",
        ] + (["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else [])

    def __enter__(self) -> "JupyterLabServer":
        self._log = open(self.log_path, "w", encoding="utf-8")
        self.proc = subprocess.Popen(self.command(), cwd=self.root, env=self._environment(), stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.proc.returncode} while starting:\n"
                                   + self.log_tail())
            try:
                with urllib.request.urlopen(self.url("api/status"), timeout=5) as response:
                    if response.status == 200:
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"JupyterLab did not answer within {self.startup_timeout:.0f} s:\n"
                                   + self.log_tail())
            time.sleep(0.5)

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # The server and its kernels run in their own process group: end all of them.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        if getattr(self, "_log", None) is not None:
            self._log.close()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def log_tail(self, n: int = 60) -> str:
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return "(no server log)"
        return "\n".join(lines[-n:])


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


# ---------------------------------------------------------------- notebook actions, as a person does them

# The status bar item "Python 3 (ipykernel) | Idle" of the current notebook.
KERNEL_STATUS = ".jp-StatusBar-TextItem[title^='Change kernel']"
CODE_PROMPTS = ".jp-Notebook .jp-CodeCell .jp-InputArea-prompt"
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\w*(Error|Exception)\b", re.M)


def kernel_status(page) -> str:
    """The status bar's kernel status ("idle", "busy", "starting", ...), or "no kernel" before one is connected.

    (The toolbar's execution indicator already says idle while no kernel is connected.)
    """
    item = page.locator(KERNEL_STATUS)
    if item.count() == 0:
        return "unknown"
    name, _, status = item.first.inner_text().partition("|")
    if not status or name.strip().lower() == "no kernel":
        return "no kernel"
    return status.strip().lower()


def open_notebook(page, server: JupyterLabServer, name: str, timeout_s: float = 180) -> None:
    """Open ``name`` in JupyterLab and wait until its kernel is idle."""
    # A workspace of its own, reset: only this notebook is open, whatever an earlier page left in the server.
    workspace = re.sub(r"\W", "-", name)
    page.goto(server.url(f"lab/workspaces/{workspace}/tree/{name}?reset"), wait_until="domcontentloaded",
              timeout=timeout_s * 1000)
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="visible", timeout=timeout_s * 1000)
    wait_for_kernel_idle(page, timeout_s)


def wait_for_kernel_idle(page, timeout_s: float, settle_s: float = 1.0) -> None:
    """Wait until the notebook's kernel reports idle for ``settle_s`` without interruption."""
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while time.monotonic() < deadline:
        if kernel_status(page) == "idle":
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        page.wait_for_timeout(200)
    raise AssertionError(f"the kernel was not idle within {timeout_s:.0f} s (status: {kernel_status(page)})")


def shut_down_kernels(page) -> int:
    """Shut down every kernel session of the server through its REST API (with the page's XSRF cookie)."""
    return page.evaluate("""async () => {
        const base = JSON.parse(document.getElementById("jupyter-config-data").textContent).baseUrl || "/";
        const xsrf = decodeURIComponent((document.cookie.match(/_xsrf=([^;]+)/) || [])[1] || "");
        const sessions = await (await fetch(`${base}api/sessions`)).json();
        for (const s of sessions) {
            const r = await fetch(`${base}api/sessions/${s.id}`, {method: "DELETE", headers: {"X-XSRFToken": xsrf}});
            if (!r.ok) throw new Error(`DELETE session ${s.id}: HTTP ${r.status}`);
        }
        return sessions.length;
    }""")


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu bar."""
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).click()


def cell_errors(page) -> list[str]:
    """The text of every error output in the notebook (ignoring warnings on stderr)."""
    texts = page.locator(".jp-Notebook .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    return [t for t in texts.all_inner_texts() if TRACEBACK.search(t)]


def prompts(page) -> list[str]:
    return [p.strip() for p in page.locator(CODE_PROMPTS).all_inner_texts()]


def wait_for_all_cells_executed(page, timeout_s: float) -> float:
    """After Run All: wait until every code cell has an execution count and the kernel is idle.

    Fails at once, with the traceback, when a cell raises. Returns the seconds waited.
    """
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        errors = cell_errors(page)
        if errors:
            raise AssertionError("a notebook cell raised in JupyterLab:\n" + errors[0][-3000:])
        dialog = page.locator(".jp-Dialog")
        if dialog.count() and dialog.first.is_visible():
            raise AssertionError("JupyterLab opened a dialog instead of running the cells: "
                                 + " ".join(dialog.first.inner_text().split()))
        current = prompts(page)
        done = bool(current) and all(re.fullmatch(r"\[\d+\]:", p) for p in current)
        if done and kernel_status(page) == "idle":
            wait_for_kernel_idle(page, timeout_s=max(5.0, deadline - time.monotonic()))
            return time.monotonic() - start
        if time.monotonic() > deadline:
            pending = sum(1 for p in current if not re.fullmatch(r"\[\d+\]:", p))
            raise AssertionError(f"Run All did not finish within {timeout_s:.0f} s: {pending} of {len(current)} "
                                 f"code cells not executed, kernel {kernel_status(page)}")
        page.wait_for_timeout(500)


class SliderWidget:
    """One ipywidgets slider (found by its description) inside the widget box that holds it."""

    def __init__(self, page, description: str | re.Pattern):
        self.page = page
        label = page.locator(".widget-slider .widget-label", has_text=description)
        if label.count() == 0:
            found = page.locator(".widget-slider .widget-label").all_inner_texts()
            raise AssertionError(f"no slider described {description!r} in the page; sliders found: {found}")
        own_label = page.locator(".widget-label", has_text=description)  # relative to each slider
        self.slider = page.locator(".widget-slider").filter(has=own_label).first
        self.handle = self.slider.locator(".noUi-handle").first
        # The innermost widget box that holds the slider: the course widget (controls, readout, figure).
        self.box = page.locator(".widget-vbox").filter(has=self.slider).last

    def value_text(self) -> str:
        return self.slider.locator(".widget-readout").inner_text().strip()

    def image_src(self) -> str:
        images = self.box.locator(".widget-output img")
        if images.count() == 0:
            return ""
        return images.first.get_attribute("src") or ""

    def readout(self) -> str:
        """The text of the widget's HTML readout(s) (not the slider's own number)."""
        return "\n".join(t.strip() for t in self.box.locator(".widget-html").all_inner_texts())

    def state(self) -> dict:
        return {"value": self.value_text(), "image": self.image_src(), "readout": self.readout()}

    def press(self, key: str, times: int = 1) -> None:
        """Focus the slider's handle and press ``key`` (ArrowRight/ArrowLeft), as a keyboard user does."""
        self.handle.scroll_into_view_if_needed()
        self.handle.focus()
        for _ in range(times):
            self.handle.press(key)

    def wait_for_value_change(self, before: str, timeout_s: float) -> str:
        """Wait until the slider's own number differs from ``before`` (the key press moved the handle)."""
        deadline = time.monotonic() + timeout_s
        while (now := self.value_text()) == before:
            if time.monotonic() > deadline:
                raise AssertionError(f"the key press did not move the slider: its value is still {before}")
            self.page.wait_for_timeout(100)
        return now

    def wait_for_redraw(self, before: dict, timeout_s: float) -> dict:
        """Wait until both the figure and the readout differ from ``before``; return the new state."""
        assert before["image"].startswith("data:image/png"), (
            f"the widget shows no plot image before the slider moves (image src {before['image'][:40]!r}); "
            "a Figure displayed as text means no PNG formatter was active in the kernel")
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.state()
            if now["image"] and now["image"] != before["image"] and now["readout"] != before["readout"]:
                return now
            if time.monotonic() > deadline:
                changed = [k for k in ("image", "readout") if now[k] != before[k]]
                raise AssertionError(
                    f"the widget did not respond within {timeout_s:.0f} s of moving the slider "
                    f"from {before['value']} to {now['value']}: changed {changed or 'nothing'} "
                    f"(need the plot image and the readout to change); readout still {now['readout']!r}")
            self.page.wait_for_timeout(250)


def screenshot(page, name: str) -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / name
    page.screenshot(path=str(path), full_page=False)
    return path
