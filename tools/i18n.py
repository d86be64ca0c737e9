"""The Chinese edition from the English source: gettext catalogs in, Chinese notebooks out.

The English notebooks are the source. Each markdown cell is one catalog entry (``msgctxt`` = the cell's id,
``msgid`` = its English text, ``msgstr`` = the translation) in
``locale/zh_CN/LC_MESSAGES/notebooks/NN_topic.po``. The strings the package prints (checks, hints, widgets,
figures) live in ``locale/zh_CN/LC_MESSAGES/dlcourse.po``, extracted from ``_("...")`` calls in ``dlcourse/``.

    python tools/i18n.py extract   # add new cells/messages to the catalogs; a changed English text marks its
                                   # entry fuzzy (stale) and keeps the old translation as a starting point
    python tools/i18n.py build     # write notebooks/zh/NN_topic.ipynb from the English notebooks + catalogs
    python tools/i18n.py lint 01   # formulas, code, links, numbers and glossary terms of chapter 1's entries
    python tools/i18n.py check     # exit 1 on a missing, empty or stale entry, or a notebooks/zh file that
                                   # differs from what `build` writes (the tests run the same checks)
    python tools/i18n.py --root /tmp/copy check   # any command on another copy of the repository (the tests' way)

The Chinese notebooks' code cells are the English ones, unchanged, after one first cell that sets
``DLCOURSE_LANG=zh`` (so every message the package prints follows).
"""

from __future__ import annotations

import copy
import functools
import io
import json
import re
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import escape, read_po, unescape, write_po

sys.path.insert(0, str(Path(__file__).resolve().parent))
import i18n_messages  # noqa: E402  (the package's messages: dlcourse.po)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
ZH_NOTEBOOKS = NOTEBOOKS / "zh"
LOCALE = ROOT / "locale"
LANG = "zh_CN"
CATALOGS = LOCALE / LANG / "LC_MESSAGES"
NOTEBOOK_CATALOGS = CATALOGS / "notebooks"

LANG_CELL_ID = "zh-lang"
LANG_CELL = (
    "# 中文版：本笔记本的说明文字为中文，代码与英文版完全相同。\n"
    "# 下面这一行让 dlcourse 打印的检查结果、提示、控件和图表标题也使用中文。\n"
    "import os\n"
    "\n"
    'os.environ["DLCOURSE_LANG"] = "zh"'
)


GLOSSARY = ROOT / "docs" / "glossary.md"


def set_root(root: Path) -> None:
    """Work on another copy of the repository (the tests use a temporary one): every path follows ``root``."""
    global ROOT, NOTEBOOKS, ZH_NOTEBOOKS, LOCALE, CATALOGS, NOTEBOOK_CATALOGS, GLOSSARY
    ROOT = Path(root).resolve()
    NOTEBOOKS = ROOT / "notebooks"
    ZH_NOTEBOOKS = NOTEBOOKS / "zh"
    LOCALE = ROOT / "locale"
    CATALOGS = LOCALE / LANG / "LC_MESSAGES"
    NOTEBOOK_CATALOGS = CATALOGS / "notebooks"
    GLOSSARY = ROOT / "docs" / "glossary.md"
    glossary.cache_clear()
    i18n_messages.set_root(ROOT)

# What a translation must carry over unchanged (compared as multisets between msgid and msgstr)
# inline math and code may wrap onto a second line (not across a blank line); compared with whitespace collapsed,
# so a translation that reflows a formula or a code span keeps it
_MATH = re.compile(r"\$\$.+?\$\$|\$(?:[^$\n]|\n(?!\s*\n))+?\$", re.S)
_CODE = re.compile(r"```.*?```|`(?:[^`\n]|\n(?!\s*\n))+`", re.S)
_URL = re.compile(r"\]\(([^)\s]+)")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w])")
_BINDER_PATH = re.compile(r"urlpath=lab/tree/notebooks/(?=\d\d_)")


def _outside_math_and_code(text: str) -> str:
    return _MATH.sub(" ", _CODE.sub(" ", text))


def _spans(pattern: re.Pattern, text: str) -> list[str]:
    """The formulas (or code spans) of ``text``, inline ones with their whitespace collapsed."""
    return [m if m.startswith(("```", "$$")) else " ".join(m.split()) for m in pattern.findall(text)]


def integrity(english: str, chinese: str) -> list[str]:
    """What a translation lost or changed: formulas, code, link targets and numbers must be the English ones.

    The one allowed change: the Binder link of a chapter opens the Chinese notebook (notebooks/zh/...).
    """
    out = []
    english_links = [_BINDER_PATH.sub("urlpath=lab/tree/notebooks/zh/", u) for u in _URL.findall(english)]
    pairs = [("formula", _spans(_MATH, english), _spans(_MATH, chinese)),
             ("code", _spans(_CODE, english), _spans(_CODE, chinese)),
             ("link", english_links, _URL.findall(chinese)),
             ("number", _NUMBER.findall(_outside_math_and_code(english)),
              _NUMBER.findall(_outside_math_and_code(chinese)))]
    for kind, a, b in pairs:
        missing = sorted(set(a) - set(b))
        extra = sorted(set(b) - set(a))
        if missing or extra:
            out.append(f"{kind}: missing {missing[:4]} extra {extra[:4]}")
        elif kind != "number" and sorted(a) != sorted(b):
            out.append(f"{kind}: the same ones but not as often ({len(a)} in English, {len(b)} translated)")
    return out


def _variants(term: str) -> list[str]:
    """The ways a glossary cell names its term: "rectified linear unit (ReLU)" -> both; "candidate (cell) value" ->
    with and without the optional word; "朴素 (循环) 实现" -> 朴素循环实现, 朴素实现."""
    term = term.strip()
    trailing = re.fullmatch(r"(.+?)\s*[(（]([^()（）]+)[)）]", term)
    if trailing:  # a name and its abbreviation or synonym
        return _variants(trailing.group(1)) + _variants(trailing.group(2))
    inner = re.search(r"[(（]([^()（）]+)[)）]", term)
    if inner:  # an optional word inside
        with_word = term[:inner.start()] + inner.group(1) + term[inner.end():]
        without = term[:inner.start()] + term[inner.end():]
        return _variants(with_word) + _variants(without)
    return [" ".join(term.split())]


@functools.lru_cache(maxsize=1)
def glossary() -> list[tuple[list[str], list[str]]]:
    """(English names, Chinese names) of every term of docs/glossary.md.

    A row "query / key / value | 查询 / 键 / 值" gives one term per pair when both sides list as many; otherwise the
    row is one term and any of its Chinese names will do.
    """
    rows = []
    for line in GLOSSARY.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("English", "") or set(cells[0]) <= set("-"):
            continue
        english, chinese = re.split(r"\s/\s", cells[0]), re.split(r"\s/\s", cells[1])
        pairs = zip(english, chinese) if len(english) == len(chinese) else [(" / ".join(english), " / ".join(chinese))]
        for en, zh in pairs:
            en_names = [v for part in re.split(r"\s/\s", en) for v in _variants(part)]
            zh_names = [v for part in re.split(r"\s/\s", zh) for v in _variants(part)]
            rows.append((list(dict.fromkeys(en_names)), list(dict.fromkeys(zh_names))))
    return rows


_ACRONYM = re.compile(r"[A-Z][A-Za-z0-9]*[A-Z0-9]")  # SGD, LSTM, ReLU, GRU: Chinese textbooks keep them as they are


def _squeeze(text: str) -> str:
    """Without spaces, lower case: "L2 正则化" and "L2正则化", "Dropout" and "dropout" are the same term."""
    return re.sub(r"\s+", "", text).lower()


def glossary_problems(english: str, chinese: str, exempt: set[str] = frozenset()) -> list[str]:
    """Glossary terms that the English uses (as words, outside formulas and code) and the translation lacks.

    Where the English uses only a term's acronym (SGD), the translation may keep the acronym or use the Chinese name.
    """
    prose_en = _outside_math_and_code(english)
    zh = _squeeze(chinese)
    out = []
    for english_terms, chinese_terms in glossary():
        used = [t for t in english_terms if re.search(rf"(?<![\w-]){re.escape(t)}(?:s|es)?(?![\w-])", prose_en,
                                                      0 if _ACRONYM.fullmatch(t) else re.I)]
        if not used or any(t in exempt for t in used):
            continue
        accepted = list(chinese_terms)
        if all(_ACRONYM.fullmatch(t) for t in used):
            accepted += used
        if not any(_squeeze(c) in zh for c in accepted):
            out.append(f"glossary: {used[0]!r} should read {' / '.join(chinese_terms)}")
    return out


def exemptions(entry) -> set[str]:
    """Terms a translator exempted for one entry, by a comment ``glossary-exempt: term, term``."""
    out = set()
    for comment in entry.user_comments:
        if comment.strip().startswith("glossary-exempt:"):
            out |= {t.strip() for t in comment.split(":", 1)[1].split(",") if t.strip()}
    return out


def english_notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def catalog_path(notebook: Path) -> Path:
    return NOTEBOOK_CATALOGS / f"{notebook.stem}.po"


def cell_text(cell: dict) -> str:
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def markdown_cells(notebook: Path) -> list[tuple[str, str]]:
    """(cell id, English text) of every non-empty markdown cell, in order."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and cell_text(cell).strip():
            if not cell.get("id"):
                raise ValueError(f"{notebook.name}: a markdown cell has no id (store with nbstripout --keep-id)")
            out.append((cell["id"], cell_text(cell)))
    return out


def read_catalog(path: Path) -> Catalog:
    if not path.exists():
        return Catalog(locale=LANG)
    with path.open("rb") as f:
        catalog = read_po(f, locale=LANG)
    previous = _previous_ids(path.read_text(encoding="utf-8"))
    for message in catalog:
        message.user_comments = [c for c in message.user_comments if not c.startswith("|")]  # read_po's take on #|
        if message.context in previous:
            message.previous_id = [previous[message.context]]
    return catalog


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def _previous_ids(po_text: str) -> dict[str, str]:
    """{msgctxt: the old English} from the ``#| msgid`` lines of a stale entry (babel writes them, reads them not)."""
    out = {}
    for block in re.split(r"\n\s*\n", po_text):
        lines = block.splitlines()
        old = [ln[2:].strip() for ln in lines if ln.startswith("#|") and not ln[2:].strip().startswith("msgctxt")]
        ctx = next((ln for ln in lines if ln.startswith("msgctxt ")), None)
        if old and ctx:
            parts = " ".join(old).removeprefix("msgid").strip()
            out[unescape('"' + _QUOTED.findall(ctx)[0] + '"')] = "".join(
                unescape(f'"{q}"') for q in _QUOTED.findall(parts))
    return out


def write_catalog(catalog: Catalog, path: Path) -> None:
    """Write a catalog; a stale entry's old English goes in ``#|`` lines, one per line of the text, as GNU gettext
    writes them (babel's own ``#|`` lines are wrapped at 76 columns, which loses a code block's indentation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=0, sort_output=False, include_previous=False, omit_header=False)
    text = buffer.getvalue().decode("utf-8")
    for message in catalog:
        if message.context and message.previous_id:
            old = message.previous_id[0] if isinstance(message.previous_id, (list, tuple)) else message.previous_id
            lines = ['#| msgid ""'] + [f"#| {escape(line)}" for line in old.splitlines(keepends=True)]
            anchor = f"\nmsgctxt {escape(message.context)}\n"
            assert text.count(anchor) == 1, f"{path.name}: msgctxt {message.context} is not unique"
            text = text.replace(anchor, "\n" + "\n".join(lines) + anchor)
    path.write_bytes(text.encode("utf-8"))


def _entries_by_context(catalog: Catalog) -> dict[str, object]:
    return {m.context: m for m in catalog if m.id and m.context}


def extract_notebook(notebook: Path) -> tuple[int, int, int]:
    """Bring one notebook's catalog up to date. Returns (new, stale, removed) entry counts."""
    path = catalog_path(notebook)
    old = read_catalog(path)
    by_ctx = _entries_by_context(old)
    new = Catalog(locale=LANG, project="dlcourse", version="1", fuzzy=False,
                  header_comment=f"# {notebook.name}: one entry per markdown cell (msgctxt = the cell's id).")
    if path.exists():  # an unchanged chapter keeps its catalog byte for byte (no new creation date)
        new.creation_date, new.revision_date = old.creation_date, old.revision_date
    added = stale = 0
    for cell_id, text in markdown_cells(notebook):
        prev = by_ctx.pop(cell_id, None)
        if prev is None:
            new.add(text, "", context=cell_id)
            added += 1
        elif prev.id == text:
            new.add(text, prev.string, context=cell_id, flags=prev.flags, auto_comments=prev.auto_comments,
                    user_comments=prev.user_comments, previous_id=prev.previous_id)
        else:  # the English cell changed: keep the old translation, flagged fuzzy, with the old English beside it
            new.add(text, prev.string, context=cell_id, flags={"fuzzy"}, previous_id=prev.id,
                    user_comments=prev.user_comments)
            stale += 1
    write_catalog(new, path)
    return added, stale, len(by_ctx)


def problems(notebook: Path) -> list[str]:
    """Every reason the notebook's translation is not ready: missing, empty, stale or orphaned entries."""
    path = catalog_path(notebook)
    if not path.exists():
        return [f"{path.relative_to(ROOT)}: missing (run python tools/i18n.py extract)"]
    by_ctx = _entries_by_context(read_catalog(path))
    out = []
    for cell_id, text in markdown_cells(notebook):
        entry = by_ctx.pop(cell_id, None)
        first = text.strip().splitlines()[0][:60]
        if entry is None:
            out.append(f"{notebook.name} cell {cell_id} ({first!r}): no catalog entry")
        elif entry.id != text:
            out.append(f"{notebook.name} cell {cell_id} ({first!r}): stale, the English cell changed")
        elif entry.fuzzy:
            out.append(f"{notebook.name} cell {cell_id} ({first!r}): marked fuzzy (stale)")
        elif not entry.string.strip():
            out.append(f"{notebook.name} cell {cell_id} ({first!r}): not translated")
    for cell_id in by_ctx:
        out.append(f"{path.name}: entry {cell_id} has no cell in {notebook.name} (run extract)")
    return out


def build_notebook(notebook: Path) -> dict:
    """The Chinese notebook: the English one with translated markdown and the language cell first."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    by_ctx = _entries_by_context(read_catalog(catalog_path(notebook)))
    cells = []
    for cell in nb["cells"]:
        cell = copy.deepcopy(cell)
        if cell["cell_type"] == "markdown" and cell_text(cell).strip():
            entry = by_ctx.get(cell["id"])
            if entry is not None and entry.string.strip() and not entry.fuzzy and entry.id == cell_text(cell):
                cell["source"] = entry.string
            # else: the English text stays (check() reports it); a half-translated chapter still runs
        cells.append(cell)
    lang_cell = {"cell_type": "code", "execution_count": None, "id": LANG_CELL_ID, "metadata": {},
                 "outputs": [], "source": LANG_CELL}
    # the language cell goes right after the title cell, before any import
    nb["cells"] = cells[:1] + [lang_cell] + cells[1:]
    nb.setdefault("metadata", {})["language"] = "zh-CN"
    return nb


def _dump(nb: dict) -> str:
    for cell in nb["cells"]:  # store sources as line lists, as Jupyter does
        src = cell_text(cell)
        cell["source"] = src.splitlines(keepends=True)
    return json.dumps(nb, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def zh_path(notebook: Path) -> Path:
    return ZH_NOTEBOOKS / notebook.name


def build() -> None:
    ZH_NOTEBOOKS.mkdir(exist_ok=True)
    sources = {nb.name for nb in english_notebooks()}
    for orphan in ZH_NOTEBOOKS.glob("*.ipynb"):  # generated only: a chapter removed in English goes here too
        if orphan.name not in sources:
            orphan.unlink()
            print(f"removed {orphan.relative_to(ROOT)} (no English source)")
    for nb in english_notebooks():
        zh_path(nb).write_text(_dump(build_notebook(nb)), encoding="utf-8")
        print(f"wrote {zh_path(nb).relative_to(ROOT)}")


def lint(notebook: Path) -> list[str]:
    """Per translated entry: formulas, code, links or numbers changed, glossary terms missing."""
    out = []
    for entry in _entries_by_context(read_catalog(catalog_path(notebook))).values():
        if entry.string.strip():
            for problem in integrity(entry.id, entry.string) + glossary_problems(entry.id, entry.string,
                                                                              exemptions(entry)):
                out.append(f"{notebook.name} cell {entry.context}: {problem}")
    return out


def check() -> list[str]:
    out = list(i18n_messages.problems())  # the package's messages (dlcourse.po), then the notebooks
    sources = {nb.name for nb in english_notebooks()}
    for orphan in sorted(ZH_NOTEBOOKS.glob("*.ipynb")) if ZH_NOTEBOOKS.is_dir() else []:
        if orphan.name not in sources:
            out.append(f"{orphan.relative_to(ROOT)}: no English notebook of that name (remove it)")
    for nb in english_notebooks():
        out += problems(nb) + lint(nb)
        target = zh_path(nb)
        if not target.exists():
            out.append(f"{target.relative_to(ROOT)}: missing (run python tools/i18n.py build)")
        elif target.read_text(encoding="utf-8") != _dump(build_notebook(nb)):
            out.append(f"{target.relative_to(ROOT)}: differs from what the catalogs build (run build)")
    return out


def extract() -> None:
    added, changed, removed = i18n_messages.extract()
    print(f"{i18n_messages.catalog_path().relative_to(ROOT)}: {added} new, {changed} fuzzy, {removed} dropped")
    for nb in english_notebooks():
        added, stale, removed = extract_notebook(nb)
        print(f"{catalog_path(nb).relative_to(ROOT)}: {added} new, {stale} stale, {removed} removed")


def main(argv: list[str]) -> int:
    argv = list(argv)
    if "--root" in argv:  # python tools/i18n.py --root /tmp/copy check: work on another copy of the repository
        i = argv.index("--root")
        set_root(Path(argv[i + 1]))
        del argv[i:i + 2]
    cmd = argv[1] if len(argv) > 1 else "check"
    if cmd == "extract":
        extract()
    elif cmd == "build":
        build()
    elif cmd == "lint":  # python tools/i18n.py lint 01 03: only those chapters, only the translated entries
        found = [p for nb in english_notebooks() if not argv[2:] or nb.name[:2] in argv[2:] for p in lint(nb)]
        print("\n".join(found + [f"{len(found)} problems"]))
        return 1 if found else 0
    elif cmd == "check":
        found = check()
        for line in found:
            print(line)
        print("translation ready" if not found else f"{len(found)} problems")
        return 1 if found else 0
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
