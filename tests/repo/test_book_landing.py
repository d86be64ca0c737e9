"""The Chinese book's landing page gets a chapter table in Chinese (book/build.py's chinese_chapter_table)."""

from __future__ import annotations

import re
import sys

import repo_paths

sys.path.insert(0, str(repo_paths.ROOT / "book"))
import build  # noqa: E402


def test_the_chinese_landing_page_gets_a_chinese_chapter_table():
    """The zh edition's landing page lists the chapters by their Chinese titles (README.zh-CN.md), linked to the
    zh pages, with README.md's Run All figures and a link to each English page."""
    table = build.chinese_chapter_table()
    rows = [line for line in table.splitlines() if line.startswith("| ") and line[2].isdigit()]
    english = {row[0]: row[-1] for row in build._chapter_rows(build.ROOT / "README.md")}
    chapters = sorted(p.stem for p in (build.ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert len(rows) == len(chapters) == len(english)
    for row, chapter in zip(rows, chapters):
        cells = [c.strip() for c in row.strip()[1:-1].split("|")]
        number, title, binder, figure, other = cells
        assert re.fullmatch(rf"\[[^\]]*[\u4e00-\u9fff][^\]]*\]\(notebooks/{chapter}\.ipynb\)", title), title
        assert f"urlpath=lab/tree/notebooks/zh/{chapter}.ipynb" in binder, binder
        assert figure == english[number] and "GiB" in figure, (figure, english[number])
        assert other == f'<a href="../notebooks/{chapter}.html">English</a>', other
    assert table.startswith("<!-- chapters:start -->") and "<!-- chapters:end -->" in table
