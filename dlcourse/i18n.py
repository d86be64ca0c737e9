"""The language of what the package prints: English, or Simplified Chinese when ``DLCOURSE_LANG=zh``.

Messages are marked in the code as gettext marks them, ``_("Your answer {got}, expected {want}")``, and formatted
*after* translation (``_(...).format(got=..., want=...)``), so the numbers are the same in both languages. The
translations are a gettext catalog, ``locale/zh_CN/LC_MESSAGES/dlcourse.po`` (read with babel), kept in step with
the code by ``python tools/i18n.py extract`` / ``check``.

Figures: texts that code (a notebook's or the package's) puts on a matplotlib figure are translated when they are set
(:func:`install_figure_translation`, switched on by :func:`dlcourse.plotting.use_style` in Chinese). A figure text
matches a catalog entry exactly, or with its numbers written as ``{}``: ``"lr = 0.1"`` finds ``"lr = {}"`` and
becomes ``"学习率 = 0.1"``.

The language is read from ``$DLCOURSE_LANG`` (:func:`dlcourse.config.language`) at each call, so a notebook's first
cell can set it.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from .config import language

ROOT = Path(__file__).resolve().parents[1]
LOCALE_DIR = ROOT / "locale"
DOMAIN = "dlcourse"
#: our language code -> gettext locale folder
LOCALES = {"zh": "zh_CN"}

_NUMBER = re.compile(r"(?<![\w.])[-−]?\d+(?:\.\d+)?(?:e[-+]?\d+)?%?(?![\w])")


def catalog_path(lang: str = "zh") -> Path:
    return LOCALE_DIR / LOCALES[lang] / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.lru_cache(maxsize=None)
def _translations(lang: str) -> dict[str, str]:
    """msgid -> msgstr of the language's catalog (translated, non-fuzzy entries only)."""
    path = catalog_path(lang)
    if not path.exists():
        return {}
    from babel.messages.pofile import read_po

    with path.open("rb") as f:
        catalog = read_po(f, locale=LOCALES[lang])
    return {m.id: m.string for m in catalog if m.id and isinstance(m.id, str) and m.string and not m.fuzzy}


def gettext(message: str) -> str:
    """``message`` in the current language (itself in English, or when the catalog has no translation)."""
    lang = language()
    if lang == "en":
        return message
    return _translations(lang).get(message, message)


_ = gettext


def current_language() -> str:
    return language()


@functools.lru_cache(maxsize=None)
def _templates(lang: str) -> list[tuple[re.Pattern, str]]:
    """(pattern, msgstr) for every catalog entry with ``{}`` fields (a notebook f-string's template), longest first.

    ``"{} (lr {})"`` becomes the pattern ``(.+?) \\(lr (.+?)\\)``, so ``"Adam (lr 0.01)"`` finds it too (a field need
    not be a number)."""
    import string

    out = []
    for msgid, msgstr in _translations(lang).items():
        try:
            parts = list(string.Formatter().parse(msgid))
        except ValueError:
            continue
        fields = [name for _lit, name, _spec, _conv in parts if name is not None]
        if not fields or any(fields):  # only templates whose fields are all plain {}
            continue
        pattern = "".join(re.escape(literal) + ("(.+?)" if name is not None else "")
                          for literal, name, _spec, _conv in parts)
        out.append((re.compile(pattern, re.S), msgstr))
    return sorted(out, key=lambda item: -len(item[0].pattern))


@functools.lru_cache(maxsize=4096)
def _translate_figure_text(lang: str, text: str) -> str:
    table = _translations(lang)
    if text in table:
        return table[text]
    numbers = _NUMBER.findall(text)
    if numbers:
        template = _NUMBER.sub("{}", text)
        if template in table:
            try:
                return table[template].format(*numbers)
            except (IndexError, KeyError, ValueError):
                return text
    if re.search(r"[A-Za-z]{2,}", text):  # tick labels (numbers) never match a template
        for pattern, msgstr in _templates(lang):
            match = pattern.fullmatch(text)
            if match:
                try:
                    return msgstr.format(*match.groups())
                except (IndexError, KeyError, ValueError):
                    return text
    return text


def translate_figure_text(text: str) -> str:
    """A figure's text in the current language: an exact catalog match, one with its numbers as ``{}``, or one
    that fits a ``{}`` template of the catalog (the notebooks' f-strings, e.g. ``"lr = {}"``)."""
    if not text or language() == "en":
        return text
    return _translate_figure_text(language(), text)



_installed = False


def install_figure_translation() -> None:
    """Translate every text set on a matplotlib figure from now on (titles, axis labels, legends, annotations).

    Idempotent. Only texts with a catalog entry change; numbers and tick labels stay as they are.
    """
    global _installed
    if _installed:
        return
    from matplotlib.text import Text

    original = Text.set_text

    @functools.wraps(original)
    def set_text(self, s):
        if isinstance(s, str):
            s = translate_figure_text(s)
        return original(self, s)

    Text.set_text = set_text
    _installed = True


#: Fonts that have the CJK glyphs, most common first (Linux, macOS, Windows); DejaVu Sans for the rest.
CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
             "PingFang SC", "Hiragino Sans GB", "Microsoft YaHei", "SimHei", "Arial Unicode MS", "DejaVu Sans"]


def N_(message: str) -> str:
    """Mark ``message`` for the catalog without translating it now (a module-level table); ``_()`` it where shown."""
    return message
