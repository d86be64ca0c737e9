"""The Chinese edition is kept in step with the English source (tools/i18n.py; issue 22).

- the Chinese notebooks' code cells are the English ones, same order, same ids, after one language cell;
- every notebooks/zh file is exactly what ``tools/i18n.py build`` writes (and none is left over);
- no stale, missing, fuzzy or empty catalog entry, per chapter (``check``);
- editing an English markdown cell (in a temporary copy of notebooks + locale) makes the check fail naming the cell
  as stale, and ``extract`` then marks the entry fuzzy with the old translation kept;
- every translated entry keeps the English formulas, code, links and numbers and uses the glossary's 中文 terms
  (``lint``), and mutants of real translated entries (a changed formula, code span, number, link, a glossary
  term taken out) are all caught.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shutil
import subprocess
import sys

import pytest
import repo_paths

ROOT = repo_paths.ROOT
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _load_tool():
    spec = importlib.util.spec_from_file_location("dlcourse_i18n_tool", ROOT / "tools" / "i18n.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


i18n = _load_tool()


@pytest.fixture
def copy_root(tmp_path):
    """A temporary copy of the notebooks, catalogs, package code (its messages) and glossary; the tool works on it,
    then on the repo again."""
    for folder in ("notebooks", "locale", "dlcourse"):
        shutil.copytree(ROOT / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "glossary.md", tmp_path / "docs" / "glossary.md")
    i18n.set_root(tmp_path)
    try:
        yield tmp_path
    finally:
        i18n.set_root(ROOT)


def _nb(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _src(cell):
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


# ---------------------------------------------------------------------------------------------- the notebooks


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chinese_code_cells_are_the_english_ones(chapter):
    english = _nb(ROOT / "notebooks" / f"{chapter}.ipynb")["cells"]
    zh_path = ROOT / "notebooks" / "zh" / f"{chapter}.ipynb"
    assert zh_path.exists(), f"{zh_path.relative_to(ROOT)} is missing: run python tools/i18n.py build"
    chinese = _nb(zh_path)["cells"]
    lang = chinese[1]
    assert lang["cell_type"] == "code" and lang["id"] == i18n.LANG_CELL_ID, "the second cell must be the language cell"
    assert re.search(r'os\.environ\["DLCOURSE_LANG"\] = "zh"', _src(lang)), _src(lang)
    rest = chinese[:1] + chinese[2:]
    assert [(c["id"], c["cell_type"]) for c in rest] == [(c["id"], c["cell_type"]) for c in english], \
        f"{chapter}: the Chinese cells are not the English ones in the same order with the same ids"
    for en, zh in zip(english, rest):
        if en["cell_type"] == "code":
            assert _src(zh) == _src(en), f"{chapter} cell {en['id']}: the code differs from the English"
            assert zh["metadata"] == en["metadata"], f"{chapter} cell {en['id']}: tags/metadata differ"
            assert zh.get("outputs") == [] and zh.get("execution_count") is None, \
                f"{chapter} cell {en['id']}: stored with outputs"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chinese_notebook_is_what_the_tool_builds(chapter):
    english = ROOT / "notebooks" / f"{chapter}.ipynb"
    zh = ROOT / "notebooks" / "zh" / f"{chapter}.ipynb"
    assert zh.exists(), f"{zh.relative_to(ROOT)} is missing: run python tools/i18n.py build"
    stored, built = zh.read_text(encoding="utf-8"), i18n._dump(i18n.build_notebook(english))
    if stored != built:
        old, new = json.loads(stored), json.loads(built)
        cells = [n.get("id") for o, n in zip(old["cells"], new["cells"]) if o != n]
        if len(old["cells"]) != len(new["cells"]):
            cells.append(f"{len(old['cells'])} cells stored, {len(new['cells'])} built")
        pytest.fail(f"{zh.relative_to(ROOT)} differs from what `python tools/i18n.py build` writes (run it; never edit "
                    f"notebooks/zh by hand); differing cells: {cells[:12] or 'the notebook metadata or formatting'}")


def test_no_chinese_notebook_without_an_english_source():
    extra = sorted({p.name for p in (ROOT / "notebooks" / "zh").glob("*.ipynb")} - {f"{c}.ipynb" for c in CHAPTERS})
    assert not extra, f"notebooks/zh has notebooks with no English source: {extra}"


# ------------------------------------------------------------------------------------------ the catalogs


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_catalog_complete_and_current(chapter):
    """No missing, empty, stale (fuzzy) or orphaned entry: what `python tools/i18n.py check` reports."""
    found = i18n.problems(ROOT / "notebooks" / f"{chapter}.ipynb")
    assert not found, f"{len(found)} problem(s) in {chapter}'s catalog:\n" + "\n".join(found[:30])


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_translations_keep_formulas_code_links_numbers_and_glossary_terms(chapter):
    found = i18n.lint(ROOT / "notebooks" / f"{chapter}.ipynb")
    assert not found, f"{len(found)} problem(s) in {chapter}'s translations:\n" + "\n".join(found[:30])


def test_catalogs_are_as_extract_leaves_them(copy_root):
    """extract on an up-to-date tree changes no catalog byte (so a stale entry cannot hide in a stale catalog)."""
    for chapter in CHAPTERS:
        i18n.extract_notebook(copy_root / "notebooks" / f"{chapter}.ipynb")
        path = f"locale/zh_CN/LC_MESSAGES/notebooks/{chapter}.po"
        assert (copy_root / path).read_bytes() == (ROOT / path).read_bytes(), \
            f"{path} is not what `python tools/i18n.py extract` writes: run it"


# -------------------------------------------------------------------- an English edit makes the entry stale


def _first_markdown(nb_path):
    nb = _nb(nb_path)
    index = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "markdown" and i > 0 and _src(c).strip())
    return nb, index


def _translate_everything(root):
    """Give every entry a stand-in "translation" that passes lint: the English text plus every glossary term's
    Chinese name in a comment (the real translations are checked by the tests above; this exercises the tool)."""
    all_terms = "，".join(zh[0] for _, zh in i18n.glossary())
    for chapter in CHAPTERS:
        path = root / "locale" / "zh_CN" / "LC_MESSAGES" / "notebooks" / f"{chapter}.po"
        catalog = i18n.read_catalog(path)
        for entry in catalog:
            if entry.id and entry.context:
                # the one change integrity asks for: a chapter's Binder link opens the Chinese notebook
                chinese = i18n._BINDER_PATH.sub("urlpath=lab/tree/notebooks/zh/", entry.id)
                entry.string = chinese + f"\n\n<!-- {all_terms} -->"
                entry.flags.discard("fuzzy")
        i18n.write_catalog(catalog, path)


def test_editing_an_english_cell_makes_its_entry_stale_then_fuzzy(copy_root):
    _translate_everything(copy_root)
    i18n.build()
    assert i18n.check() == [], "a fully translated catalog should pass check (the stand-in translations)"

    chapter = CHAPTERS[0]
    nb_path = copy_root / "notebooks" / f"{chapter}.ipynb"
    nb, index = _first_markdown(nb_path)
    cell_id, old_english = nb["cells"][index]["id"], _src(nb["cells"][index])
    old_translation = {e.context: e.string for e in i18n.read_catalog(i18n.catalog_path(nb_path))}[cell_id]
    nb["cells"][index]["source"] = old_english.rstrip("\n") + "\n\nA sentence the author added."
    nb_path.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    # the check fails and names the cell as stale (and the Chinese notebook as out of date)
    found = i18n.check()
    stale = [p for p in found if cell_id in p and "stale" in p]
    assert stale, f"check did not name cell {cell_id} as stale: {found}"
    assert any(f"notebooks/zh/{chapter}.ipynb" in p and "differs" in p for p in found), found
    cli = subprocess.run([sys.executable, str(ROOT / "tools" / "i18n.py"), "--root", str(copy_root), "check"],
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 1 and cell_id in cli.stdout and "stale" in cli.stdout, cli.stdout[-2000:]

    # extract: fuzzy, with the old translation and the old English kept for the translator
    added, n_stale, removed = i18n.extract_notebook(nb_path)
    assert (added, n_stale, removed) == (0, 1, 0)
    entry = {e.context: e for e in i18n.read_catalog(i18n.catalog_path(nb_path))}[cell_id]
    assert entry.fuzzy and entry.string == old_translation and entry.id == _src(nb["cells"][index])
    assert entry.previous_id == [old_english], "the old English text should be kept (#| msgid) beside the translation"
    assert any(cell_id in p and "fuzzy" in p for p in i18n.problems(nb_path))

    # until it is re-translated, the Chinese notebook shows the new English text, never the old translation
    built = i18n.build_notebook(nb_path)
    assert any(c.get("id") == cell_id and _src(c) == _src(nb["cells"][index]) for c in built["cells"])

    # the translator updates it: the check passes again
    catalog = i18n.read_catalog(i18n.catalog_path(nb_path))
    for e in catalog:
        if e.context == cell_id:
            e.string = old_translation + "\n\n作者新加的一句话。"
            e.flags.discard("fuzzy")
            e.previous_id = []
    i18n.write_catalog(catalog, i18n.catalog_path(nb_path))
    i18n.build()
    assert i18n.check() == []


def test_a_new_english_cell_is_a_missing_entry_and_a_removed_one_is_reported(copy_root):
    chapter = CHAPTERS[1]
    nb_path = copy_root / "notebooks" / f"{chapter}.ipynb"
    nb, index = _first_markdown(nb_path)
    gone = nb["cells"][index]["id"]
    nb["cells"][index] = {"cell_type": "markdown", "id": "new-cell-1", "metadata": {}, "source": "A new paragraph."}
    nb_path.write_text(json.dumps(nb, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    found = i18n.problems(nb_path)
    assert any("new-cell-1" in p and "no catalog entry" in p for p in found), found
    assert any(gone in p and "has no cell" in p for p in found), found
    assert i18n.extract_notebook(nb_path) == (1, 0, 1)
    assert any("new-cell-1" in p and "not translated" in p for p in i18n.problems(nb_path))


def test_a_hand_edited_chinese_notebook_fails_the_check(copy_root):
    i18n.build()
    zh = copy_root / "notebooks" / "zh" / f"{CHAPTERS[0]}.ipynb"
    nb = _nb(zh)
    code = next(c for c in nb["cells"] if c["cell_type"] == "code" and c["id"] != i18n.LANG_CELL_ID)
    code["source"] = _src(code) + "\nprint('edited by hand')"
    zh.write_text(json.dumps(nb, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    (copy_root / "notebooks" / "zh" / "99_extra.ipynb").write_text("{}", encoding="utf-8")
    found = i18n.check()
    assert any(f"notebooks/zh/{CHAPTERS[0]}.ipynb" in p and "differs" in p for p in found), found
    assert any("99_extra.ipynb" in p for p in found), found


# ---------------------------------------------------------------------------- integrity and glossary checks


def test_integrity_accepts_a_faithful_translation():
    english = ("The loss $L = \\frac{1}{n}\\sum_i (y_i -\n\\hat y_i)^2$ falls below 0.05 after 12 epochs; call "
               "`model.zero_grad()` first. See [chapter 2](02_backprop.ipynb) and "
               "[Binder](https://mybinder.org/v2/gh/dlcourse/dlcourse/HEAD?urlpath=lab/tree/notebooks/03_optimizers.ipynb).")
    chinese = ("训练 12 轮后，损失 $L = \\frac{1}{n}\\sum_i (y_i - \\hat y_i)^2$ 降到 0.05 以下；先调用 "
               "`model.zero_grad()`。参见[第 2 章](02_backprop.ipynb)和 "
               "[Binder](https://mybinder.org/v2/gh/dlcourse/dlcourse/HEAD?urlpath=lab/tree/notebooks/zh/03_optimizers.ipynb)。")
    assert i18n.integrity(english, chinese) == []


def test_glossary_terms_accepted_forms():
    assert i18n.glossary_problems("Train it with SGD.", "用 SGD 训练它。") == []
    assert i18n.glossary_problems("Train it with SGD.", "用随机梯度下降训练它。") == []
    assert i18n.glossary_problems("stochastic gradient descent converges", "SGD 收敛") != []
    assert i18n.glossary_problems("Add an L2 regularisation term.", "加上一项 L2正则化。") == []
    assert i18n.glossary_problems("the candidate (cell) value", "候选值") == []
    assert i18n.glossary_problems("a tie between two maxima", "两个最大值并列") == []
    assert i18n.glossary_problems("the query vectors", "查询向量") == []
    assert i18n.glossary_problems("the query vectors", "键向量") != []  # paired: query is 查询, not 键
    assert i18n.glossary_problems("Run the next cell.", "运行下一个单元格。") == []  # a notebook cell is no LSTM cell


@functools.lru_cache(maxsize=1)
def _translated_entries():
    out = []
    for chapter in CHAPTERS:
        nb = ROOT / "notebooks" / f"{chapter}.ipynb"
        for entry in i18n.read_catalog(i18n.catalog_path(nb)):
            if entry.id and entry.context and entry.string.strip() and not entry.fuzzy:
                if not i18n.integrity(entry.id, entry.string) and not i18n.glossary_problems(
                        entry.id, entry.string, i18n.exemptions(entry)):
                    out.append((f"{chapter}/{entry.context}", entry))
    return tuple(out)


def _mutate_formula(text):
    m = next(i18n._MATH.finditer(text), None)
    return None if m is None else text[:m.end() - 1] + " + 1" + text[m.end() - 1:]


def _mutate_code(text):
    m = next(i18n._CODE.finditer(text), None)
    return None if m is None else text[:m.start() + 1] + "x" + text[m.start() + 1:]


def _mutate_number(text):
    """One number of the prose changed to a value the text does not state anywhere (numbers are compared as sets:
    a translation may say "0" once where the English says it twice, so a number changed into another one that the
    text also states elsewhere is not caught; a wrong value is)."""
    for m in i18n._NUMBER.finditer(text):
        if not _inside(text, m.start()):
            value = int(float(m.group())) + 7
            while str(value) in text:
                value += 1
            return text[:m.start()] + str(value) + text[m.end():]
    return None


def _inside(text, pos):
    return any(s.start() <= pos < s.end() for p in (i18n._MATH, i18n._CODE, i18n._URL) for s in p.finditer(text))


def _mutate_link(text):
    m = next(i18n._URL.finditer(text), None)
    return None if m is None else text[:m.end(1)] + "-moved" + text[m.end(1):]


def _mutate_glossary(english, text, exempt=frozenset()):
    """Every Chinese name (and the English names) of one glossary term the English uses, taken out."""
    prose = i18n._outside_math_and_code(english)
    for en_terms, zh_terms in i18n.glossary():
        used = [t for t in en_terms if re.search(rf"(?<![\w-]){re.escape(t)}(?:s|es)?(?![\w-])", prose, re.I)]
        if used and not any(t in exempt for t in used):
            mutated = text
            for name in sorted(zh_terms + en_terms, key=len, reverse=True):
                mutated = re.sub(r"\s*".join(map(re.escape, name.split())), "它", mutated, flags=re.I)
            if mutated != text and not i18n.integrity(english, mutated):
                return mutated
    return None


MUTANTS = {"formula": lambda e: _mutate_formula(e.string), "code": lambda e: _mutate_code(e.string),
           "number": lambda e: _mutate_number(e.string), "link": lambda e: _mutate_link(e.string),
           "glossary": lambda e: _mutate_glossary(e.id, e.string, i18n.exemptions(e))}


@pytest.mark.parametrize("kind", sorted(MUTANTS))
def test_lint_catches_mutants_of_real_translations(kind):
    """Every mutant of every clean translated entry must be reported by integrity or glossary (measured 2026-12-07
    over 265 entries: formula 192/192, code 171/171, number 185/185, link 18/18, glossary 240/240 caught)."""
    entries = _translated_entries()
    if not entries:  # before any chapter is translated: mutants of a synthetic entry
        english = ("The sigmoid $\\sigma(z) = 1/(1+e^{-z})$ of `z` saturates beyond 5; see [here](01_neurons.ipynb).")
        chinese = ("S 型函数 $\\sigma(z) = 1/(1+e^{-z})$ 在 `z` 超过 5 时饱和；见[这里](01_neurons.ipynb)。")
        entries = [("synthetic", type("E", (), {"id": english, "string": chinese, "user_comments": []})())]
    tried, missed = 0, []
    for label, entry in entries:
        mutant = MUTANTS[kind](entry)
        if mutant is None or mutant == entry.string:
            continue
        tried += 1
        if not (i18n.integrity(entry.id, mutant) + i18n.glossary_problems(entry.id, mutant, i18n.exemptions(entry))):
            missed.append(label)
    assert tried > 0, f"no translated entry could carry a {kind} mutant"
    assert not missed, f"{kind} mutants not caught ({len(missed)} of {tried}): {missed[:10]}"


# ------------------------------------------------------------------------------------------ launching in Chinese

LAB_PATH = re.compile(r"(?:urlpath=lab/tree/|localhost:\d+/lab/tree/)([^)\s\"'>]+)")


def _relative_links(text):
    return [t for t in re.findall(r"\]\(([^)\s]+)\)", text) if not re.match(r"[a-z]+:", t)]


def test_readme_links_the_chinese_readme_at_its_top():
    top = "\n".join((ROOT / "README.md").read_text(encoding="utf-8").splitlines()[:12])
    assert "(README.zh-CN.md)" in top, "README.md should link README.zh-CN.md near its top"
    assert "notebooks/zh/01_neurons.ipynb" in top, "README.md's top should launch the Chinese notebooks too"


def test_chinese_readme_has_the_same_commands():
    text = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    for command in (".venv/bin/pip install -r requirements.txt", ".venv/bin/jupyter lab notebooks/zh/01_neurons.ipynb",
                    ".venv/bin/python -m pytest", ".venv/bin/python book/build.py",
                    "pip install jupyterlab-language-pack-zh-cn"):
        assert command in text, f"README.zh-CN.md lacks {command!r}"
    english = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" in english  # the same install line
    assert "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt" in text


@pytest.mark.parametrize("readme", ["README.zh-CN.md", "README.md"])
def test_launch_links_open_files_that_exist(readme):
    """Every Binder / local JupyterLab link opens a file of the repository; every relative link exists."""
    text = (ROOT / readme).read_text(encoding="utf-8")
    targets = LAB_PATH.findall(text)
    assert targets, f"{readme} has no launch link"
    missing = [t for t in targets + [link.split("#")[0] for link in _relative_links(text)] if not (ROOT / t).exists()]
    assert not missing, f"{readme}: links to files that do not exist: {missing}"


def test_chinese_launch_links_open_every_chinese_notebook():
    text = (ROOT / "README.zh-CN.md").read_text(encoding="utf-8")
    targets = LAB_PATH.findall(text)
    assert all(t.startswith("notebooks/zh/") for t in targets), \
        f"README.zh-CN.md launches an English notebook: {[t for t in targets if not t.startswith('notebooks/zh/')]}"
    for chapter in CHAPTERS:
        binder = f"mybinder.org/v2/gh/dlcourse/dlcourse/HEAD?urlpath=lab/tree/notebooks/zh/{chapter}.ipynb"
        local = f"localhost:8888/lab/tree/notebooks/zh/{chapter}.ipynb"
        assert binder in text and local in text, f"README.zh-CN.md: no Binder and local launch link for {chapter}"


def test_book_launch_lines_open_the_chinese_notebooks():
    spec = importlib.util.spec_from_file_location("dlcourse_book_build", ROOT / "book" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    for chapter in CHAPTERS:
        text = build.launch_cell(f"{chapter}.ipynb", "zh").source
        targets = LAB_PATH.findall(text)
        assert len(targets) == 2 and all(t == f"notebooks/zh/{chapter}.ipynb" for t in targets), targets
        assert all((ROOT / t).exists() for t in targets)
