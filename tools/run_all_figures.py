"""Write the measured full-setting "Run All" figures into each notebook's header and the README's chapter table.

    .venv/bin/python book/build.py --full     # executes every chapter in a fresh kernel, one at a time
    .venv/bin/python tools/run_all_figures.py # then: copy its times and peak memory where the course states them

The figures come from ``_build/html/build-info.json`` (written by the full build; chapters it took from its cache
are left as they are). Each notebook's first cell has one line starting with ``**Run All** (full setting,
measured):``; the README's chapter table has the figure in its last column, and the footnote below it says
where and when it was measured. The Chinese edition follows: the header's catalog entry gets the new English and
the same figures in its Chinese line (so it does not go stale), and ``notebooks/zh`` is rebuilt. Measure on a quiet
machine: other processes on 2 cores slow a chapter 2-10x.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import i18n  # noqa: E402  (tools/i18n.py: the Chinese edition's catalogs)

ROOT = Path(__file__).resolve().parents[1]
HEADER_LINE = re.compile(r"^\*\*Run All\*\* \(full setting, measured\):.*$", re.MULTILINE)
ZH_HEADER_LINE = re.compile(r"\*\*运行全部（Run All）\*\*（完整设置，实测）：.*?（`book/build\.py --full`）。")
FOOTNOTE = re.compile(r"^\\\* Full setting, measured .*?(?=^In quick mode)", re.MULTILINE | re.DOTALL)


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def update_chinese_header(notebook: Path, cell_id: str, line: str) -> None:
    """Carry the new figures into the Chinese header: the catalog entry of the notebook's first cell gets the new
    English (``i18n.extract_notebook``) and ``line`` in place of its Chinese Run All line, and stays translated."""
    i18n.extract_notebook(notebook)  # the header cell changed: its entry is now fuzzy, the old translation kept
    path = i18n.catalog_path(notebook)
    catalog = i18n.read_catalog(path)
    entry = next((m for m in catalog if m.context == cell_id), None)
    if entry is None:
        raise SystemExit(f"{path.name}: no entry for the header cell {cell_id} (run python tools/i18n.py extract)")
    string, n = ZH_HEADER_LINE.subn(lambda _: line, entry.string)
    if n != 1:
        raise SystemExit(f"{path.name}: no line starting with '**运行全部（Run All）**（完整设置，实测）：' in entry "
                         f"{cell_id}")
    entry.string = string
    entry.flags.discard("fuzzy")
    entry.previous_id = []
    i18n.write_catalog(catalog, path)


def main(info_path: Path | None = None, root: Path | None = None) -> int:
    global ROOT
    ROOT = Path(root).resolve() if root is not None else ROOT
    i18n.set_root(ROOT)
    info_path = info_path or ROOT / "_build" / "html" / "build-info.json"
    info = json.loads(info_path.read_text())
    if info.get("setting") != "full":
        raise SystemExit(f"{info_path}: a {info.get('setting')!r} build; run `book/build.py --full` first")
    machine = info.get("machine", {})
    where = (f"{machine.get('cpu_count', '?')} CPU cores of an otherwise idle machine ({machine.get('cpu', 'CPU')}, "
             f"no GPU), {machine.get('date', '?')}")
    where_zh = (f"一台空闲机器的 {machine.get('cpu_count', '?')} 个 CPU 核心（{machine.get('cpu', 'CPU')}，无 GPU），"
                f"{machine.get('date', '?')}")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, run in info["executions"].items():
        if run is None:  # taken from the build's cache: not measured by this build
            continue
        figure = f"{duration(run['seconds'])} · {run['peak_gib']:.2f} GiB"
        path = ROOT / "notebooks" / name
        nb = nbformat.read(path, as_version=4)
        line = (f"**Run All** (full setting, measured): {duration(run['seconds'])}, peak memory "
                f"{run['peak_gib']:.2f} GiB, on {where} (`book/build.py --full`).")
        if not HEADER_LINE.search(nb.cells[0].source):
            raise SystemExit(f"{name}: no line starting with '**Run All** (full setting, measured):' in cell 1")
        nb.cells[0].source = HEADER_LINE.sub(lambda _: line, nb.cells[0].source, count=1)
        nbformat.write(nb, path)
        update_chinese_header(path, nb.cells[0].id,
                              f"**运行全部（Run All）**（完整设置，实测）：{duration(run['seconds'])}，内存峰值 "
                              f"{run['peak_gib']:.2f} GiB；测量环境为{where_zh}（`book/build.py --full`）。")
        row = re.compile(rf"^(\| \d+ \| \[{re.escape(Path(name).stem)}\].*\| )[^|]*( \|)$", re.MULTILINE)
        readme, n = row.subn(lambda m: m.group(1) + figure + m.group(2), readme)  # noqa: B023
        if n != 1:
            raise SystemExit(f"README.md: no chapter-table row for {name}")
        print(f"{name}: {figure}")
    footnote = (f"\\* Full setting, measured by `book/build.py --full` (each chapter top to bottom in a fresh kernel, "
                f"one at a time) on {where}: wall-clock time and the kernel's peak resident memory. "
                "`tools/run_all_figures.py` copies them here and into each chapter's header.\n")
    readme, n = FOOTNOTE.subn(footnote, readme)
    if n != 1:
        raise SystemExit("README.md: the chapter table's footnote ('\\* Full setting, measured ...') is missing")
    (ROOT / "README.md").write_text(readme, encoding="utf-8")
    i18n.build()  # notebooks/zh from the updated catalogs
    return 0


if __name__ == "__main__":
    sys.exit(main(*(Path(a) for a in sys.argv[1:])))
