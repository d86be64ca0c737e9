"""Build the course as a static book: execute every chapter, render it with Sphinx, write ``_build/html/``.

    python book/build.py            # quick setting (DLCOURSE_QUICK=1), as CI builds it: a few minutes
    python book/build.py --full     # the full setting, for publishing (the README's figures)
    python book/build.py --only 03_optimizers   # one chapter (the others are left out of the book)

Steps:
1. Execute each notebook with nbclient in a fresh kernel (``--jobs`` at a time). Every cell must run
   without an error, or the build stops and names the notebook and cell. Executed copies are cached in
   ``_build/.cache/executed-<setting>/``, keyed by the notebook, the ``dlcourse`` sources and the setting,
   so an unchanged chapter is not re-run.
2. Stage them with the pages in ``book/`` (landing page, results, glossary) in ``_build/book_src/``.
   Each chapter gets a launch line: Binder, a local JupyterLab, the .ipynb download.
3. Fetch Mermaid (pinned, checked by SHA-256) from the npm registry once into ``_build/.cache/vendor/``;
   MathJax comes from the sphinx-mathjax-offline package. No page loads anything from a CDN.
4. ``sphinx-build`` into ``_build/html/``.

The kernels run with the learner's plotting backend (``MPLBACKEND`` from a test run is removed, or the
figures would be missing) and with ``DLCOURSE_BOOK=1``, which makes each widget also leave the figure it drew
as a plain image with a note that moving it needs a live kernel.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
BUILD = ROOT / "_build"
SRC = BUILD / "book_src"
HTML = BUILD / "html"
CACHE = BUILD / ".cache"

MERMAID_VERSION = "11.12.1"
MERMAID_SHA256 = "198b19442f86f0b46a17e56d3abf744c3a28a3427e66fa8dada3b589a77babcc"  # dist/mermaid.min.js
BINDER = "https://mybinder.org/v2/gh/dlcourse/dlcourse/HEAD?urlpath=lab/tree/notebooks/{name}"
LOCAL_LAB = "http://localhost:8888/lab/tree/notebooks/{name}"


def log(msg: str) -> None:
    print(f"[book] {msg}", flush=True)


def sources_key(setting: str) -> str:
    """A hash of everything an executed chapter depends on besides the notebook itself."""
    h = hashlib.sha256(setting.encode())
    for path in sorted((ROOT / "dlcourse").rglob("*.py")):
        h.update(str(path.relative_to(ROOT)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def kernel_env(setting: str) -> dict:
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the tests' Agg backend would leave the pages without figures
    env["DLCOURSE_BOOK"] = "1"
    if setting == "quick":
        env["DLCOURSE_QUICK"] = "1"
    else:
        env.pop("DLCOURSE_QUICK", None)
    if (ROOT.parent / "shared" / "data").is_dir():
        env.setdefault("DLCOURSE_DATA", str(ROOT.parent / "shared" / "data"))
    return env


def execute(notebook: str, out: str, setting: str, timeout_s: int) -> tuple[float, float]:
    """Run in a fresh worker process: execute ``notebook`` top to bottom, write it to ``out``.

    Returns (seconds, the kernel's peak resident memory in GiB). The worker is spawned for this one notebook,
    so the kernel is its only child and ``RUSAGE_CHILDREN`` measures that kernel alone.
    """
    import resource

    import nbformat
    env = kernel_env(setting)  # computed before the clear: it starts from this process's environment
    os.environ.clear()
    os.environ.update(env)
    from dlcourse.nbexec import notebook_client

    nb = nbformat.read(notebook, as_version=4)
    t0 = time.perf_counter()
    stop = threading.Event()
    with tempfile.TemporaryDirectory(prefix="dlcourse-kernel-") as sockets:
        client = notebook_client(nb, sockets, timeout=timeout_s, allow_errors=False,
                                 resources={"metadata": {"path": str(Path(notebook).parent)}})
        threading.Thread(target=_kill_a_stalled_kernel, args=(stop,), daemon=True).start()
        try:
            client.execute(cleanup_kc=True)  # we made the kernel manager: shut its kernel down here
        finally:
            stop.set()
    seconds = time.perf_counter() - t0
    peak_gib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2  # Linux reports KiB
    nb.metadata["dlcourse_book"] = {"setting": setting, "seconds": round(seconds, 1), "peak_gib": round(peak_gib, 2)}
    nbformat.write(nb, out)
    return seconds, peak_gib


STALL_S = 180  # a kernel that has used under 1 s of CPU in this long while a cell is pending is stalled


def _kill_a_stalled_kernel(stop: threading.Event, poll_s: float = 10.0, stall_s: float = STALL_S,
                           min_cpu_s: float = 1.0) -> None:
    """In the worker: kill its kernel (its only child) when the kernel idles while the client waits for a reply.

    A run used to stall now and then: the kernel sat idle while nbclient waited for a reply (see
    :mod:`dlcourse.nbexec` for what was found and changed). The watchdog stays as a last resort: no cell of the
    course waits without computing, so a kernel that has used under ``min_cpu_s`` of CPU time in ``stall_s`` seconds
    is stalled; killing it makes nbclient raise DeadKernelError, and the chapter is run once more.
    """
    import psutil

    history: list[tuple[float, float]] = []  # (time, the kernel's CPU seconds)
    while not stop.wait(poll_s):
        kernels = psutil.Process().children()
        if len(kernels) != 1:
            history.clear()
            continue
        try:
            cpu = kernels[0].cpu_times()
        except psutil.Error:  # it just ended
            continue
        now = time.monotonic()
        history.append((now, cpu.user + cpu.system))
        history[:] = [h for h in history if now - h[0] <= stall_s + poll_s]
        if now - history[0][0] >= stall_s and history[-1][1] - history[0][1] < min_cpu_s:
            log(f"the kernel used {history[-1][1] - history[0][1]:.2f} s of CPU in {now - history[0][0]:.0f} s "
                "while a cell was pending: stalled, killing it")
            kernels[0].kill()
            return


def execute_all(names: list[str], setting: str, jobs: int, timeout_s: int) -> dict[str, dict | None]:
    cache = CACHE / f"executed-{setting}"
    cache.mkdir(parents=True, exist_ok=True)
    base = sources_key(setting)
    todo, runs = [], {}
    for name in names:
        nb_path = ROOT / "notebooks" / name
        key = hashlib.sha256(base.encode() + nb_path.read_bytes()).hexdigest()
        key_file = cache / (name + ".key")
        if (cache / name).exists() and key_file.exists() and key_file.read_text() == key:
            log(f"{name}: unchanged, using the cached execution")
            runs[name] = None
        else:
            todo.append((name, key))
    if not todo:
        return runs
    log(f"executing {len(todo)} notebook(s), {jobs} at a time, {setting} setting")
    # One spawned process per notebook: nothing (an event loop, a ZeroMQ context) is inherited by fork or
    # carried from one chapter to the next.
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)

    def submit(name):
        return pool.submit(execute, str(ROOT / "notebooks" / name), str(cache / (name + ".tmp")), setting, timeout_s)

    with pool:
        pending = {submit(name): (name, key, 1) for name, key in todo}
        failed = []
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                name, key, attempt = pending.pop(future)
                try:
                    seconds, peak_gib = future.result()
                except Exception as err:
                    # A cell that raised fails the build at once. Anything else went wrong around the cells and
                    # gets one fresh run: a stalled kernel (killed by the watchdog: DeadKernelError), a cell timeout,
                    # or a kernel that could not start (two kernels picked the same free port: "Kernel died before
                    # replying to kernel_info", seen once in CI).
                    if type(err).__name__ != "CellExecutionError" and attempt == 1:
                        log(f"{name}: {type(err).__name__}; running it once more in a fresh kernel")
                        pending[submit(name)] = (name, key, 2)
                        continue
                    # a cell raised (or timed out twice): no page may show an error, so the build stops
                    failed.append(f"{name}: {type(err).__name__}: {str(err)[-2000:]}")
                    log(f"{name}: FAILED")
                    continue
                (cache / (name + ".tmp")).replace(cache / name)
                (cache / (name + ".key")).write_text(key)
                runs[name] = {"seconds": round(seconds, 1), "peak_gib": round(peak_gib, 2), "attempts": attempt}
                log(f"{name}: executed in {seconds:.1f} s, kernel peak memory {peak_gib:.2f} GiB")
    if failed:
        raise SystemExit("book: a chapter did not execute cleanly:\n" + "\n\n".join(failed))
    return runs


def fetch_mermaid() -> Path:
    """mermaid.min.js from the npm registry (pinned, SHA-256 checked), cached under _build/.cache/vendor."""
    target = CACHE / "vendor" / f"mermaid-{MERMAID_VERSION}.min.js"
    if target.exists() and hashlib.sha256(target.read_bytes()).hexdigest() == MERMAID_SHA256:
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("book: npm is needed once to fetch Mermaid (the diagrams); install Node.js, then re-run")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", f"mermaid@{MERMAID_VERSION}", "--silent", "--pack-destination", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        tgz = next(Path(tmp).glob("mermaid-*.tgz"))
        with tarfile.open(tgz) as tar:
            data = tar.extractfile("package/dist/mermaid.min.js").read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != MERMAID_SHA256:
        raise SystemExit(f"book: mermaid.min.js has SHA-256 {digest}, expected {MERMAID_SHA256}")
    target.write_bytes(data)
    return target


def launch_cell(name: str):
    import nbformat
    text = (f"<div class=\"dlcourse-launch\">\n\n"
            f"**Run this chapter live:** [on Binder]({BINDER.format(name=name)}) · "
            f"[in your local JupyterLab]({LOCAL_LAB.format(name=name)}) (after `jupyter lab` in the repository) · "
            f"[download the notebook](https://github.com/dlcourse/dlcourse/raw/main/notebooks/{name}). "
            "This page shows the quick setting's outputs unless it says otherwise below. "
            "The build-it cells are shown as a learner finds them, unfilled: their checks print ✗ and the course's "
            "reference runs in their place, so every later cell still shows its results.\n\n</div>")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = "dlcourse-launch"
    return cell


def stage(names: list[str], setting: str) -> None:
    import nbformat

    if SRC.exists():
        shutil.rmtree(SRC)
    shutil.copytree(BOOK, SRC, ignore=shutil.ignore_patterns("build.py", "__pycache__"))
    (SRC / "notebooks").mkdir()
    for name in names:
        nb = nbformat.read(CACHE / f"executed-{setting}" / name, as_version=4)
        seconds = nb.metadata.get("dlcourse_book", {}).get("seconds")
        cell = launch_cell(name)
        if setting == "quick":
            cell.source = cell.source.replace(
                "This page shows the quick setting's outputs unless it says otherwise below.",
                f"The outputs on this page come from the quick setting (`DLCOURSE_QUICK=1`: smaller data, fewer "
                f"epochs; executed in {seconds:.0f} s while building the book)." if seconds else
                "The outputs on this page come from the quick setting (`DLCOURSE_QUICK=1`).")
        else:
            cell.source = cell.source.replace(
                "This page shows the quick setting's outputs unless it says otherwise below.",
                f"The outputs on this page come from the full setting (executed in {seconds / 60:.0f} min while "
                "building the book)." if seconds else "The outputs on this page come from the full setting.")
        nb.cells.insert(1, cell)
        nb.metadata.pop("widgets", None)  # widget state: the page shows each widget's static figure instead
        for c in nb.cells:
            if c.cell_type == "code":  # live controls cannot move without a kernel: drop their views
                c.outputs = [o for o in c.outputs
                             if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
            if c.cell_type == "markdown":  # the Binder badge, served by the site (a reader may have no internet)
                c.source = c.source.replace("https://mybinder.org/badge_logo.svg", "../_static/binder_badge.svg")
        nbformat.write(nb, SRC / "notebooks" / name)
    shutil.copy(ROOT / "docs" / "glossary.md", SRC / "glossary_source.md")
    shutil.copy(ROOT / "README.md", SRC / "readme_source.md")
    vendor = SRC / "_static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copy(fetch_mermaid(), vendor / "mermaid.min.js")
    shutil.move(SRC / "_static" / "mermaid-shim.mjs", vendor / "mermaid-shim.mjs")
    toc = "\n".join(f"notebooks/{Path(n).stem}" for n in names)
    index = (SRC / "index.md").read_text(encoding="utf-8").replace("{{chapters}}", toc)
    (SRC / "index.md").write_text(index, encoding="utf-8")


def sphinx(strict_links: bool) -> None:
    """Render the staged sources; with ``strict_links`` a link to a missing page or anchor fails the build."""
    if HTML.exists():
        shutil.rmtree(HTML)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-d", str(BUILD / ".doctrees"),
           str(SRC), str(HTML)]
    log("sphinx-build " + " ".join(cmd[3:]))
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    warnings = [line for line in (result.stderr or "").splitlines() if "WARNING" in line or "ERROR" in line]
    for line in warnings:
        print(line)
    if result.returncode != 0:
        raise SystemExit(f"book: sphinx-build failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    broken = [line for line in warnings if "xref_missing" in line or "target not found" in line]
    if strict_links and broken:
        raise SystemExit("book: broken local links (fix the link or the page it points to):\n" + "\n".join(broken))
    log(f"{len(warnings)} Sphinx warning(s)")


def machine_info() -> dict:
    """Where the chapters' times were measured (tools/run_all_figures.py writes it next to them)."""
    from dlcourse.runtime import cpu_model
    return {"date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(), "cpu": cpu_model(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the full setting (for publishing), not quick mode")
    parser.add_argument("--only", nargs="*", help="notebook names (without .ipynb) to include; default all")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks executed at once (quick: 2, full: 1)")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds allowed per cell (quick: 600, full: 3600); a timed-out chapter is re-run once")
    args = parser.parse_args(argv)
    setting = "full" if args.full else "quick"
    jobs = args.jobs or (1 if args.full else 2)
    names = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.only:
        names = [n for n in names if Path(n).stem in args.only]
    t0 = time.perf_counter()
    machine = machine_info()
    timeout = args.timeout or (3600 if args.full else 600)
    runs = execute_all(names, setting, jobs, timeout)
    stage(names, setting)
    sphinx(strict_links=not args.only)
    size = sum(p.stat().st_size for p in HTML.rglob("*") if p.is_file())
    (HTML / "build-info.json").write_text(json.dumps(
        {"setting": setting, "chapters": names, "executions": runs, "machine": machine,
         "total_seconds": round(time.perf_counter() - t0, 1), "size_bytes": size}, indent=2))
    log(f"done in {time.perf_counter() - t0:.0f} s: {HTML / 'index.html'} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
