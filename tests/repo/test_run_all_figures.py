"""tools/run_all_figures.py writes a full build's Run All figures into the English headers, the README and the
Chinese headers, so that the Chinese edition does not go stale when the figures are re-measured."""

from __future__ import annotations

import importlib.util
import json
import shutil

import repo_paths

ROOT = repo_paths.ROOT


def _load_tool():
    spec = importlib.util.spec_from_file_location("dlcourse_run_all_figures", ROOT / "tools" / "run_all_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_new_figures_reach_the_english_and_the_chinese_header_and_the_readme(tmp_path):
    for folder in ("notebooks", "locale", "dlcourse"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "glossary.md", tmp_path / "docs" / "glossary.md")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    info = {"setting": "full", "machine": {"cpu_count": 2, "cpu": "Test CPU", "date": "2030-01-02"},
            "executions": {"05_rnn_lstm.ipynb": {"seconds": 125.4, "peak_gib": 0.77}, "01_neurons.ipynb": None}}
    info_path = tmp_path / "build-info.json"
    info_path.write_text(json.dumps(info))
    tool = _load_tool()
    try:
        assert tool.main(info_path, root=tmp_path) == 0
        problems = tool.i18n.check()  # on the copy: nothing stale, fuzzy or out of date in either language
    finally:
        tool.i18n.set_root(ROOT)

    def first_cell(path):
        cell = json.loads(path.read_text(encoding="utf-8"))["cells"][0]
        return "".join(cell["source"])

    english = first_cell(tmp_path / "notebooks" / "05_rnn_lstm.ipynb")
    chinese = first_cell(tmp_path / "notebooks" / "zh" / "05_rnn_lstm.ipynb")
    assert "**Run All** (full setting, measured): 2 min 5 s, peak memory 0.77 GiB" in english
    assert "Test CPU" in english and "2030-01-02" in english
    assert "**运行全部（Run All）**（完整设置，实测）：2 min 5 s，内存峰值 0.77 GiB" in chinese, chinese
    assert "Test CPU" in chinese and "2030-01-02" in chinese
    assert problems == [], problems
    assert "| 2 min 5 s · 0.77 GiB |" in (tmp_path / "README.md").read_text(encoding="utf-8")
    # a chapter the build took from its cache keeps its figures, in both languages
    for name in ("01_neurons.ipynb", "zh/01_neurons.ipynb"):
        assert first_cell(tmp_path / "notebooks" / name) == first_cell(ROOT / "notebooks" / name), name
