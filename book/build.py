"""Build the course as a static book in two languages: ``_build/html/`` (English) and ``_build/html/zh/`` (中文).

    python book/build.py            # quick setting (DLCOURSE_QUICK=1), as CI builds it: both languages
    python book/build.py --full     # the full setting, for publishing (the README's figures)
    python book/build.py --only 03_optimizers   # one chapter (the others are left out of the book)
    python book/build.py --lang en  # one language only (the other one's pages, and so its switch links, are absent)

The English pages execute ``notebooks/NN_topic.ipynb``; the Chinese pages execute the Chinese notebooks
``notebooks/zh/NN_topic.ipynb`` (built from the English ones and ``locale/zh_CN`` by ``tools/i18n.py build``),
in the same pool of workers (``--jobs`` at a time, with the same stall guard). pytest does not collect
notebooks/zh (pyproject.toml), so each Chinese notebook runs once per CI run: here. Every page carries a language
switch to the same page in the other language (conf.py, ``_templates/lang-switch.html``).

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
import re
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
LANGS = ("en", "zh")

MERMAID_VERSION = "11.12.1"
MERMAID_SHA256 = "198b19442f86f0b46a17e56d3abf744c3a28a3427e66fa8dada3b589a77babcc"  # dist/mermaid.min.js
BINDER = "https://mybinder.org/v2/gh/dlcourse/dlcourse/HEAD?urlpath=lab/tree/notebooks/{name}"
LOCAL_LAB = "http://localhost:8888/lab/tree/notebooks/{name}"
DOWNLOAD = "https://github.com/dlcourse/dlcourse/raw/main/notebooks/{name}"


def notebooks_dir(lang: str) -> Path:
    """Where the language's notebooks are: notebooks/ (English), notebooks/zh/ (Chinese)."""
    return ROOT / "notebooks" if lang == "en" else ROOT / "notebooks" / lang


def src_dir(lang: str) -> Path:
    return SRC if lang == "en" else BUILD / f"book_src_{lang}"


def html_dir(lang: str) -> Path:
    return HTML if lang == "en" else HTML / lang


def cache_dir(setting: str, lang: str) -> Path:
    return CACHE / (f"executed-{setting}" if lang == "en" else f"executed-{setting}-{lang}")


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
    from dlcourse import config  # the settings' names and the development data folder, defined once there

    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the tests' Agg backend would leave the pages without figures
    env[config.BOOK_ENV] = "1"
    if setting == "quick":
        env[config.QUICK_ENV] = "1"
    else:
        env.pop(config.QUICK_ENV, None)
    data = config.development_data_dir(ROOT)
    if data is not None:
        env.setdefault(config.DATA_ENV, str(data))
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


def execute_all(names: list[str], setting: str, jobs: int, timeout_s: int,
                langs: tuple[str, ...] = ("en",)) -> dict[str, dict[str, dict | None]]:
    """Execute every chapter of every language in one pool (``jobs`` at a time); returns {lang: {name: run}}.

    A run is None when the cached execution was still valid (same notebook, same package sources, same setting).
    """
    base = sources_key(setting)
    todo, runs = [], {lang: {} for lang in langs}
    for lang in langs:
        cache = cache_dir(setting, lang)
        cache.mkdir(parents=True, exist_ok=True)
        for name in names:
            nb_path = notebooks_dir(lang) / name
            if not nb_path.exists():
                raise SystemExit(f"book: {nb_path.relative_to(ROOT)} is missing (run python tools/i18n.py build)")
            key = hashlib.sha256(base.encode() + nb_path.read_bytes()).hexdigest()
            key_file = cache / (name + ".key")
            if (cache / name).exists() and key_file.exists() and key_file.read_text() == key:
                log(f"{lang}/{name}: unchanged, using the cached execution")
                runs[lang][name] = None
            else:
                todo.append(((lang, name), key))
    if not todo:
        return runs
    log(f"executing {len(todo)} notebook(s), {jobs} at a time, {setting} setting")
    # One spawned process per notebook: nothing (an event loop, a ZeroMQ context) is inherited by fork or
    # carried from one chapter to the next.
    pool = concurrent.futures.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1)

    def submit(item):
        lang, name = item
        return pool.submit(execute, str(notebooks_dir(lang) / name), str(cache_dir(setting, lang) / (name + ".tmp")),
                           setting, timeout_s)

    with pool:
        pending = {submit(item): (item, key, 1) for item, key in todo}
        failed = []
        while pending:
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                item, key, attempt = pending.pop(future)
                lang, name = item
                label = name if lang == "en" else f"{lang}/{name}"
                cache = cache_dir(setting, lang)
                try:
                    seconds, peak_gib = future.result()
                except Exception as err:
                    # A cell that raised fails the build at once. Anything else went wrong around the cells and
                    # gets one fresh run: a stalled kernel (killed by the watchdog: DeadKernelError), a cell timeout,
                    # or a kernel that could not start (two kernels picked the same free port: "Kernel died before
                    # replying to kernel_info", seen once in CI).
                    if type(err).__name__ != "CellExecutionError" and attempt == 1:
                        log(f"{label}: {type(err).__name__}; running it once more in a fresh kernel")
                        pending[submit(item)] = (item, key, 2)
                        continue
                    # a cell raised (or timed out twice): no page may show an error, so the build stops
                    failed.append(f"{label}: {type(err).__name__}: {str(err)[-2000:]}")
                    log(f"{label}: FAILED")
                    continue
                (cache / (name + ".tmp")).replace(cache / name)
                (cache / (name + ".key")).write_text(key)
                runs[lang][name] = {"seconds": round(seconds, 1), "peak_gib": round(peak_gib, 2), "attempts": attempt}
                log(f"{label}: executed in {seconds:.1f} s, kernel peak memory {peak_gib:.2f} GiB")
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


def launch_cell(name: str, lang: str = "en"):
    import nbformat
    if lang == "zh":
        return _launch_cell_zh(name)
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


QUICK_NOTE = {"en": "This page shows the quick setting's outputs unless it says otherwise below.",
              "zh": "除非下文另有说明，本页显示的是快速设置下的输出。"}


def _launch_cell_zh(name: str):
    import nbformat
    zh = f"zh/{name}"
    text = (f"<div class=\"dlcourse-launch\">\n\n"
            f"**在线运行本章：**[在 Binder 上]({BINDER.format(name=zh)}) · "
            f"[在本地的 JupyterLab 中]({LOCAL_LAB.format(name=zh)})（先在仓库目录下运行 `jupyter lab`） · "
            f"[下载笔记本]({DOWNLOAD.format(name=zh)})。"
            f"{QUICK_NOTE['zh']}"
            "动手实现（build-it）的单元格按学习者拿到时的样子显示，尚未填写：它们的检查打印 ✗，"
            "由课程的参考实现代替运行，因此后面的每个单元格仍然显示结果。\n\n</div>")
    cell = nbformat.v4.new_markdown_cell(text)
    cell.id = "dlcourse-launch"
    return cell


def _setting_note(lang: str, setting: str, seconds: float | None) -> str:
    if lang == "zh":
        if setting == "quick":
            return (f"本页的输出来自快速设置（`DLCOURSE_QUICK=1`：数据更少、训练轮数更少；构建本书时执行用时 "
                    f"{seconds:.0f} 秒）。" if seconds else "本页的输出来自快速设置（`DLCOURSE_QUICK=1`）。")
        return (f"本页的输出来自完整设置（构建本书时执行用时 {seconds / 60:.0f} 分钟）。" if seconds
                else "本页的输出来自完整设置。")
    if setting == "quick":
        return (f"The outputs on this page come from the quick setting (`DLCOURSE_QUICK=1`: smaller data, fewer "
                f"epochs; executed in {seconds:.0f} s while building the book)." if seconds else
                "The outputs on this page come from the quick setting (`DLCOURSE_QUICK=1`).")
    return (f"The outputs on this page come from the full setting (executed in {seconds / 60:.0f} min while "
            "building the book)." if seconds else "The outputs on this page come from the full setting.")


def _chapter_rows(readme: Path) -> list[list[str]]:
    """The cells of each row of a README's chapter table (between its chapters:start / chapters:end markers)."""
    text = readme.read_text(encoding="utf-8")
    table = text[text.index("<!-- chapters:start -->"):text.index("<!-- chapters:end -->")]
    rows = [line.strip()[1:-1].split("|") for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    return [[cell.strip() for cell in row] for row in rows]


def chinese_chapter_table() -> str:
    """The Chinese landing page's chapter table: the chapters of README.zh-CN.md (Chinese titles) linked to this
    edition's pages, their Binder links, the Run All figures of README.md's table and a link to the English page."""
    figures = {row[0]: row[-1] for row in _chapter_rows(ROOT / "README.md")}
    lines = ["<!-- chapters:start -->", "| # | 章节 | 在线运行 | 完整设置运行全部 · 内存峰值* | 英文版 |",
             "|---|---|---|---|---|"]
    for row in _chapter_rows(ROOT / "README.zh-CN.md"):
        number, title, binder = row[0], row[1], row[2]
        link = re.fullmatch(r"\[(.+)\]\(notebooks/zh/(\d\d_\w+)\.ipynb\)", title)
        if link is None or number not in figures:
            raise SystemExit(f"book: README.zh-CN.md's chapter table row {number} does not match README.md's")
        name = link.group(2)
        lines.append(f"| {number} | [{link.group(1)}](notebooks/{name}.ipynb) | {binder} | {figures[number]} | "
                     f'<a href="../notebooks/{name}.html">English</a> |')
    lines += ["", "\\* 完整设置：由 `book/build.py --full` 测得（每章在新内核中从头到尾运行，一次一章）的"
                  "墙钟时间与内核的内存峰值；测量机器与日期见英文 README 章节表下的脚注。", "<!-- chapters:end -->", ""]
    return "\n".join(lines)


def stage(names: list[str], setting: str, lang: str = "en") -> None:
    """Executed chapters + the pages of book/ into the language's Sphinx source folder.

    The Chinese edition's landing page is book/index.zh.md; the glossary (English with 中文) and the results page
    are shared by both languages.
    """
    import nbformat

    src = src_dir(lang)
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(BOOK, src, ignore=shutil.ignore_patterns("build.py", "__pycache__", "*.zh.md"))
    if lang == "zh":
        index_zh = BOOK / "index.zh.md"
        if not index_zh.exists():
            raise SystemExit("book: book/index.zh.md (the Chinese landing page) is missing")
        shutil.copy(index_zh, src / "index.md")
    (src / "notebooks").mkdir()
    for name in names:
        nb = nbformat.read(cache_dir(setting, lang) / name, as_version=4)
        seconds = nb.metadata.get("dlcourse_book", {}).get("seconds")
        cell = launch_cell(name, lang)
        cell.source = cell.source.replace(QUICK_NOTE[lang], _setting_note(lang, setting, seconds))
        nb.cells.insert(1, cell)
        nb.metadata.pop("widgets", None)  # widget state: the page shows each widget's static figure instead
        for c in nb.cells:
            if c.cell_type == "code":  # live controls cannot move without a kernel: drop their views
                c.outputs = [o for o in c.outputs
                             if "application/vnd.jupyter.widget-view+json" not in o.get("data", {})]
            if c.cell_type == "markdown":  # the Binder badge, served by the site (a reader may have no internet)
                c.source = c.source.replace("https://mybinder.org/badge_logo.svg", "../_static/binder_badge.svg")
        nbformat.write(nb, src / "notebooks" / name)
    shutil.copy(ROOT / "docs" / "glossary.md", src / "glossary_source.md")
    shutil.copy(ROOT / "README.md", src / "readme_source.md")
    if lang == "zh":
        (src / "readme_zh_source.md").write_text(chinese_chapter_table(), encoding="utf-8")
    vendor = src / "_static" / "vendor"
    vendor.mkdir(parents=True, exist_ok=True)
    shutil.copy(fetch_mermaid(), vendor / "mermaid.min.js")
    shutil.move(src / "_static" / "mermaid-shim.mjs", vendor / "mermaid-shim.mjs")
    toc = "\n".join(f"notebooks/{Path(n).stem}" for n in names)
    index = (src / "index.md").read_text(encoding="utf-8")
    if "{{chapters}}" not in index:
        raise SystemExit(f"book: the landing page of the {lang} edition has no {{{{chapters}}}} toctree placeholder")
    (src / "index.md").write_text(index.replace("{{chapters}}", toc), encoding="utf-8")


def sphinx(strict_links: bool, lang: str = "en") -> None:
    """Render the staged sources; with ``strict_links`` a link to a missing page or anchor fails the build.

    English first (it replaces the whole of _build/html/), then the Chinese edition into _build/html/zh/.
    """
    html = html_dir(lang)
    if html.exists():
        shutil.rmtree(html)
    doctrees = BUILD / (".doctrees" if lang == "en" else f".doctrees-{lang}")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-E", "-d", str(doctrees), str(src_dir(lang)), str(html)]
    log("sphinx-build " + " ".join(cmd[3:]))
    env = {**os.environ, "DLCOURSE_BOOK_LANG": lang}  # conf.py: language, title, the switch's direction
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
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
    parser.add_argument("--lang", nargs="*", choices=LANGS, default=list(LANGS),
                        help="languages to build (default: en zh); English goes to _build/html/, Chinese to html/zh/")
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
    langs = tuple(lang for lang in LANGS if lang in args.lang)  # English first: its sphinx run empties html/
    t_exec = time.perf_counter()
    runs = execute_all(names, setting, jobs, timeout, langs)
    exec_seconds = time.perf_counter() - t_exec
    editions = {}
    for lang in langs:
        t_lang = time.perf_counter()
        stage(names, setting, lang)
        sphinx(strict_links=not args.only, lang=lang)
        editions[lang] = {"sphinx_seconds": round(time.perf_counter() - t_lang, 1),
                          "executed_seconds": round(sum(r["seconds"] for r in runs[lang].values() if r), 1)}
    for lang in langs:  # each language's share of the site (the English one without html/zh/)
        others = [html_dir(other) for other in langs if other != lang and other != "en"]
        files = [p for p in html_dir(lang).rglob("*") if p.is_file()
                 and not any(o in p.parents for o in others)]
        editions[lang]["size_bytes"] = sum(p.stat().st_size for p in files)
    size = sum(p.stat().st_size for p in HTML.rglob("*") if p.is_file())
    info = {"setting": setting, "chapters": names, "languages": list(langs), "executions": runs.get("en", {}),
            "executions_by_language": runs, "editions": editions, "machine": machine,
            "execution_wall_seconds": round(exec_seconds, 1),
            "total_seconds": round(time.perf_counter() - t0, 1), "size_bytes": size}
    (HTML / "build-info.json").write_text(json.dumps(info, indent=2))
    for lang, edition in editions.items():
        log(f"{lang}: notebooks ran {edition['executed_seconds']:.0f} s (summed over the chapters), sphinx "
            f"{edition['sphinx_seconds']:.0f} s, {edition['size_bytes'] / 1e6:.1f} MB in {html_dir(lang)}")
    log(f"done in {time.perf_counter() - t0:.0f} s (execution {exec_seconds:.0f} s wall): "
        f"{HTML / 'index.html'} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
