"""The catalog of what the package prints and draws, ``locale/zh_CN/LC_MESSAGES/dlcourse.po``, kept in step.

Two sources of entries, one catalog:

* every ``_("...")`` / ``N_("...")`` call in ``dlcourse/`` (extracted with babel, as ``pybabel extract -k _ -k N_``
  would): check verdicts, hints, ``use``'s notice, widget labels and readouts, figure texts of the package;
* every figure text that the English notebooks' own code cells set (``ax.set_title("...")``, ``xlabel``/``ylabel``,
  ``suptitle``, ``label="..."``, ``ax.text``/``annotate``): an f-string becomes its template with ``{}`` per field
  (``f"lr = {lr}"`` -> ``"lr = {}"``), which is how :func:`dlcourse.i18n.translate_figure_text` looks it up, so the
  Chinese notebooks' figures speak Chinese with the very same code.

    python tools/i18n_messages.py extract   # add new messages, keep translations; a changed message loses its
                                            # entry (babel's update keeps a close one as fuzzy, with the old text)
    python tools/i18n_messages.py check     # exit 1 on a missing, empty, fuzzy or orphaned entry, or one whose
                                            # {placeholders} differ between msgid and msgstr
    python tools/i18n_messages.py stats     # entries, translated entries, CJK characters

:func:`problems` is what ``tools/i18n.py check`` (and the tests) call.
"""

from __future__ import annotations

import ast
import json
import re
import string
import sys
from collections import Counter
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LANG = "zh_CN"
KEYWORDS = {"_": None, "N_": None}

#: notebook calls whose first positional argument is a figure text, and the one that takes it third (ax.text(x, y, s))
FIGURE_CALLS = {"set_title": 0, "set_xlabel": 0, "set_ylabel": 0, "suptitle": 0, "title": 0, "xlabel": 0,
                "ylabel": 0, "set_label": 0, "annotate": 0, "text": 2, "figtext": 2, "supxlabel": 0, "supylabel": 0}
#: keyword arguments that are figure texts wherever they appear (ax.set(title=...), ax.plot(label=...), ...)
FIGURE_KEYWORDS = {"title", "xlabel", "ylabel", "label", "suptitle"}
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_MATH = re.compile(r"\$[^$]*\$")


def set_root(root: Path) -> None:
    """Work on another copy of the repository (as ``tools/i18n.py``'s ``set_root``; its tests use a temporary one)."""
    global ROOT
    ROOT = Path(root).resolve()


def package_dir() -> Path:
    return ROOT / "dlcourse"


def catalog_path() -> Path:
    return ROOT / "locale" / LANG / "LC_MESSAGES" / "dlcourse.po"


def english_notebooks() -> list[Path]:
    return sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


# -- the two sources ------------------------------------------------------------------------------------------------
def code_messages() -> list[tuple[str, str, int]]:
    """(msgid, file relative to the repository, line) of every ``_()``/``N_()`` call with a literal in dlcourse/."""
    out = []
    for filename, lineno, message, _comments, _context in extract_from_dir(
            package_dir(), method_map=[("**.py", "python")], keywords=KEYWORDS, comment_tags=(),
            strip_comment_tags=True):
        if isinstance(message, str) and message:
            out.append((message, f"dlcourse/{filename}", lineno))
    return out


def _choices(node: ast.AST) -> list[str] | None:
    """The strings a field can only be: ``'with' if c else 'without'`` -> ["with", "without"]; else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        body, orelse = _choices(node.body), _choices(node.orelse)
        if body is not None and orelse is not None:
            return body + orelse
    return None


def _templates(node: ast.AST) -> list[str]:
    """A string constant as it is; an f-string as its template with ``{}`` per field, or one text per choice where
    a field is a choice between string constants (``f"{'with' if bn else 'without'} batch norm"``)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if not isinstance(node, ast.JoinedStr):
        return []
    out = [""]
    for value in node.values:
        if isinstance(value, ast.Constant):
            out = [t + str(value.value).replace("{", "{{").replace("}", "}}") for t in out]
            continue
        choices = _choices(value.value) if isinstance(value, ast.FormattedValue) and value.conversion == -1 \
            and value.format_spec is None else None
        pieces = [c.replace("{", "{{").replace("}", "}}") for c in choices] if choices else ["{}"]
        out = [t + p for t in out for p in pieces]
    return out


def _worth_translating(text: str) -> bool:
    """Words outside the formulas (a bare "$x_1$" or "{}" stays as it is)."""
    bare = _MATH.sub("", text).replace("{}", "")
    return bool(re.search(r"[A-Za-z]{2,}", bare))


def _cell_source(cell: dict) -> str:
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    # IPython magics and shell lines are not Python
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())


def figure_strings(text: str) -> list[tuple[str, int]]:
    """(template, line) of every figure text set by the code ``text``."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        candidates = []
        name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        if name in FIGURE_CALLS and len(node.args) > FIGURE_CALLS[name]:
            candidates.append(node.args[FIGURE_CALLS[name]])
        candidates += [kw.value for kw in node.keywords if kw.arg in FIGURE_KEYWORDS]
        for candidate in candidates:
            for template in _templates(candidate):
                if _worth_translating(template):
                    out.append((template, candidate.lineno))

    return out


def notebook_messages() -> list[tuple[str, str, int]]:
    """(template, notebook relative to the repository, code cell number) of the English notebooks' figure texts."""
    out = []
    for notebook in english_notebooks():
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate(cells, start=1):
            if cell.get("cell_type") == "code":
                for template, _line in figure_strings(_cell_source(cell)):
                    out.append((template, f"notebooks/{notebook.name}", number))
    return out


def template_catalog() -> Catalog:
    """The catalog the code and notebooks ask for today (no translations), with ``#:`` locations."""
    template = Catalog(locale=None, project="dlcourse", version="1", fuzzy=False)
    for msgid, where, line in code_messages() + notebook_messages():
        existing = template.get(msgid)
        if existing is None:
            template.add(msgid, locations=[(where, line)])
        elif (where, line) not in existing.locations:
            existing.locations.append((where, line))
    return template


# -- the catalog ----------------------------------------------------------------------------------------------------
def read_catalog(path: Path | None = None) -> Catalog:
    path = path or catalog_path()
    if not path.exists():
        return Catalog(locale=LANG, project="dlcourse", version="1", fuzzy=False)
    with path.open("rb") as f:
        return read_po(f, locale=LANG)


def write_catalog(catalog: Catalog, path: Path | None = None) -> None:
    path = path or catalog_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        write_po(f, catalog, width=0, sort_output=False, sort_by_file=False, ignore_obsolete=True,
                 include_previous=True, omit_header=False, include_lineno=False)  # no churn on every code edit


def extract() -> tuple[int, int, int]:
    """Bring the catalog up to date with the code and notebooks. Returns (new, fuzzy, dropped) entry counts."""
    path = catalog_path()
    catalog = read_catalog(path)
    catalog.header_comment = ("# Messages of the dlcourse package (checks, hints, widgets, figures) and the figure "
                              "texts of the notebooks' code.\n# Kept in step by python tools/i18n_messages.py "
                              "extract / check.")
    before = {m.id for m in catalog if m.id}
    template = template_catalog()
    # babel's update: translations kept by msgid; a changed msgid close to an old one becomes fuzzy with the old
    # translation and previous_id; the rest of the old entries go to .obsolete (not written)
    catalog.update(template, no_fuzzy_matching=False, update_header_comment=False, update_creation_date=False)
    dropped = len(catalog.obsolete)
    fuzzy = sum(1 for m in catalog if m.id and m.fuzzy and m.id not in before)
    new = sum(1 for m in catalog if m.id and m.id not in before)
    write_catalog(catalog, path)
    return new - fuzzy, fuzzy, dropped


# -- checks ---------------------------------------------------------------------------------------------------------
def placeholders(text: str) -> Counter:
    """The ``{fields}`` of a format string (name, conversion and format spec), as a multiset.

    Plain ``{}`` fields count as ``{0}``, ``{1}``, ... in order, so a translation may reorder them as ``{1} ... {0}``.
    """
    try:
        fields = [(name, conversion or "", spec or "") for _lit, name, spec, conversion
                  in string.Formatter().parse(text) if name is not None]
    except ValueError:  # not a valid format string (a formula's lone brace): compare the brace groups themselves
        return Counter(re.findall(r"\{[^{}]*\}", text))
    auto = iter(range(len(fields)))
    return Counter((name if name else str(next(auto)), conversion, spec) for name, conversion, spec in fields)



def placeholder_problem(msgid: str, msgstr: str) -> str | None:
    want, got = placeholders(msgid), placeholders(msgstr)
    if want == got:
        return None

    def show(counter):
        return ", ".join(sorted("{" + (k if isinstance(k, str) else (k[0] + (f"!{k[1]}" if k[1] else "")
                                                                        + (f":{k[2]}" if k[2] else ""))) + "}"
                                for k in counter.elements())) or "none"
    return f"placeholders differ: the English has {show(want)}, the translation {show(got)}"


def problems(catalog_file: Path | None = None) -> list[str]:
    """Every reason the message catalog is not ready: missing, empty, fuzzy, orphaned or placeholder-changed entries."""
    path = catalog_file or catalog_path()
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if not path.exists():
        return [f"{rel}: missing (run python tools/i18n_messages.py extract)"]
    catalog = read_catalog(path)
    entries = {m.id: m for m in catalog if m.id}
    out = []
    wanted = template_catalog()
    for message in wanted:
        if not message.id:
            continue
        where = ", ".join(f"{f}:{n}" for f, n in message.locations[:2])
        entry = entries.get(message.id)
        if entry is None:
            out.append(f"{rel}: no entry for {message.id!r} ({where}; run python tools/i18n_messages.py extract)")
        elif not entry.string or not str(entry.string).strip():
            out.append(f"{rel}: {message.id!r} ({where}) is not translated")
        elif entry.fuzzy:
            out.append(f"{rel}: {message.id!r} ({where}) is marked fuzzy (the English changed: review the "
                       f"translation and remove the flag)")
    for msgid, entry in entries.items():
        if msgid not in wanted:
            out.append(f"{rel}: {msgid!r} is no longer in the code or notebooks (run python tools/i18n_messages.py "
                       f"extract)")
        elif entry.string:
            problem = placeholder_problem(msgid, entry.string)
            if problem:
                out.append(f"{rel}: {msgid!r}: {problem}")
    return out


def stats(catalog: Catalog | None = None) -> dict:
    catalog = catalog if catalog is not None else read_catalog()
    entries = [m for m in catalog if m.id]
    done = [m for m in entries if m.string and not m.fuzzy]
    return {"entries": len(entries), "translated": len(done),
            "english_characters": sum(len(m.id) for m in entries),
            "cjk_characters": sum(len(_CJK.findall(m.string)) for m in done),
            "from_code": sum(1 for m in entries if any(f.startswith("dlcourse/") for f, _n in m.locations)),
            "from_notebooks": sum(1 for m in entries if any(f.startswith("notebooks/") for f, _n in m.locations))}


def main(argv: list[str]) -> int:
    argv = list(argv)
    if "--root" in argv:  # python tools/i18n_messages.py --root /tmp/copy check
        i = argv.index("--root")
        set_root(Path(argv[i + 1]))
        del argv[i:i + 2]
    cmd = argv[1] if len(argv) > 1 else "check"

    if cmd == "extract":
        new, fuzzy, dropped = extract()
        print(f"{catalog_path().relative_to(ROOT)}: {new} new, {fuzzy} fuzzy, {dropped} dropped")
    elif cmd == "check":
        found = problems()
        print("\n".join(found + ["messages ready" if not found else f"{len(found)} problems"]))
        return 1 if found else 0
    elif cmd == "stats":
        print(json.dumps(stats(), indent=1))
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
