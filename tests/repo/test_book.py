"""The rendered book works for a reader: every chapter page in headless Chromium, served from _build/html.

`python book/build.py` builds the site (`.ci/run` does it before the tests). For every chapter page this test
requires: at least 3 loaded figures, typeset math (MathJax served by the site itself), no error output or
traceback, the Mermaid diagrams drawn as SVG where the chapter has one, a Binder link that names the page's
own notebook, a static figure in place of each widget, and no broken local link or #anchor on any page of
the site. The browser has no internet, as the test machines have none: anything loaded from a CDN fails.
Screenshots go to tests/_output/book-*.png.

The Chinese edition (_build/html/zh/) gets the same checks per chapter, plus: the page is in Chinese (its title
and text have CJK characters, the <html> element says zh-CN), the CJK text is drawn (a CJK element has a width) in
a CJK font (the fonts Chromium actually used for its glyphs, from the DevTools protocol, and the computed font stack
names one), and the language switch of every chapter page, in both languages, opens the same chapter in the other
language. Screenshots: tests/_output/book-zh-*.png.

Without a built book the tests skip (say so) unless DLCOURSE_REQUIRE_BOOK=1 (set by .ci/run), when they fail.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import threading
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import repo_paths
from browser_helpers import CHROMIUM, OUTPUT_DIR, launch_chromium

ROOT = repo_paths.ROOT
HTML = ROOT / "_build" / "html"
CHAPTERS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
HTML_ZH = HTML / "zh"
CJK_FONT = re.compile(r"CJK|Source Han|PingFang|YaHei|WenQuanYi|Hiragino Sans GB|SimHei|SimSun|Heiti|Songti", re.I)
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")
REQUIRED = os.environ.get("DLCOURSE_REQUIRE_BOOK") == "1"

if not (HTML / "index.html").exists():
    reason = "the book is not built: run `.venv/bin/python book/build.py` first"
    if REQUIRED:
        raise RuntimeError(reason + " (DLCOURSE_REQUIRE_BOOK=1)")
    pytest.skip(reason, allow_module_level=True)

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"Chromium not installed ({CHROMIUM}): apt-get install chromium"),
    pytest.mark.xdist_group("book"),
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    handler = functools.partial(_Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def test_the_book_has_every_chapter():
    info = json.loads((HTML / "build-info.json").read_text())
    assert info["chapters"] == [c + ".ipynb" for c in CHAPTERS], f"book built from {info['chapters']}"
    assert info.get("languages") == ["en", "zh"], f"book built in {info.get('languages')}, expected en and zh"
    for chapter in CHAPTERS:
        assert (HTML / "notebooks" / f"{chapter}.html").exists(), f"no page for {chapter}"
        assert (HTML_ZH / "notebooks" / f"{chapter}.html").exists(), f"no Chinese page for {chapter}"
    for page in ("index", "results", "glossary"):
        assert (HTML_ZH / f"{page}.html").exists(), f"no Chinese {page} page"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser


def test_no_broken_local_link_or_anchor_on_any_page():
    broken = []
    pages = sorted(p for p in HTML.rglob("*.html") if "_static" not in p.parts)
    assert len(pages) >= len(CHAPTERS) + 3, f"expected the chapters, index, results and glossary; got {pages}"
    for page in pages:
        for href in _parse(page).links:
            parts = urllib.parse.urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith(("mailto:", "javascript:", "data:")):
                continue
            target = page if not parts.path else (page.parent / urllib.parse.unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(HTML)} -> {href} (no such file)")
            elif parts.fragment and target.suffix == ".html" and parts.fragment not in _parse(target).ids:
                broken.append(f"{page.relative_to(HTML)} -> {href} (no such anchor)")
    assert not broken, f"{len(broken)} broken local link(s):\n" + "\n".join(broken[:40])


def _check_page(page, url: str) -> dict:
    requests_outside = []
    page.on("request", lambda r: requests_outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:")) else None)
    page.goto(url, wait_until="load")
    # MathJax typesets after load; Mermaid renders after its module loads.
    page.wait_for_function("() => !window.MathJax || !MathJax.startup || MathJax.startup.promise", timeout=60_000)
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    page.wait_for_timeout(500)
    facts = page.evaluate("""() => {
        const imgs = [...document.querySelectorAll('article img, main img')];
        const outputs = [...document.querySelectorAll('.cell_output, .output')];
        const text = outputs.map(o => o.innerText).join('\\n');
        return {
          images: imgs.length,
          loaded: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
          math: document.querySelectorAll('mjx-container').length,
          rawMath: document.querySelectorAll('.math').length,
          errorOutputs: document.querySelectorAll('.output.error, .output.traceback, .cell_output .traceback').length,
          traceback: /Traceback \\(most recent call last\\)/.test(text),
          mermaidBlocks: document.querySelectorAll('pre.mermaid, div.mermaid').length,
          mermaidSvgs: document.querySelectorAll('.mermaid svg').length,
          binder: [...document.querySelectorAll('a[href*="mybinder.org"]')].map(a => a.href),
          staticWidgets: document.querySelectorAll('.dlcourse-static-widget img').length,
          switchLinks: [...document.querySelectorAll('a.dlcourse-lang-switch')].map(a => a.href),
          lang: document.documentElement.lang,
        };
    }""")
    facts["outside"] = requests_outside
    return facts


def _check_chapter_page(page, url: str) -> dict:
    """_check_page, then wait until every Mermaid diagram of the chapter is drawn and count them again."""
    facts = _check_page(page, url)
    if facts["mermaidBlocks"]:
        page.wait_for_function("n => document.querySelectorAll('.mermaid svg').length >= n",
                               arg=facts["mermaidBlocks"], timeout=30_000)
        facts["mermaidSvgs"] = page.evaluate("() => document.querySelectorAll('.mermaid svg').length")
    return facts


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_page_in_a_browser(site, browser, chapter):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        facts = _check_chapter_page(page, site + f"notebooks/{chapter}.html")
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT_DIR / f"book-{chapter}.png"))
    finally:
        page.close()
    assert facts["loaded"] >= 3 and facts["loaded"] == facts["images"], \
        f"{chapter}: {facts['loaded']} of {facts['images']} images loaded (need >= 3, all loaded)"
    assert facts["math"] > 0 and facts["math"] >= facts["rawMath"], \
        f"{chapter}: math not typeset ({facts['math']} MathJax elements for {facts['rawMath']} formulas)"
    assert facts["errorOutputs"] == 0 and not facts["traceback"], f"{chapter}: the page shows an error output"
    assert facts["mermaidSvgs"] >= facts["mermaidBlocks"], f"{chapter}: a Mermaid diagram is not drawn"
    assert any(f"notebooks/{chapter}.ipynb" in href for href in facts["binder"]), \
        f"{chapter}: no Binder link naming notebooks/{chapter}.ipynb (found {facts['binder'][:3]})"
    assert not facts["outside"], f"{chapter}: the page requested something outside the site: {facts['outside'][:5]}"
    assert facts["switchLinks"] == [site + f"zh/notebooks/{chapter}.html"], \
        f"{chapter}: the language switch should open zh/notebooks/{chapter}.html, has {facts['switchLinks']}"


def _cjk_glyphs(cjk: dict) -> int:
    """Glyphs drawn with a CJK font (Latin letters in the same element may come from a Latin font)."""
    return sum(f["glyphCount"] for f in cjk.get("platformFonts", []) if CJK_FONT.search(f["familyName"]))


def _cjk_rendering(page) -> dict:
    """Where the page draws Chinese: the first heading or paragraph with CJK text, its size, its computed font stack
    and the platform fonts Chromium drew its glyphs with (DevTools protocol: CSS.getPlatformFontsForNode)."""
    probe = page.evaluate("""() => {
        const own = el => [...el.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('');
        const all = [...document.querySelectorAll('article h1, article p, article li')];
        const el = all.find(e => (own(e).match(/[\u3400-\u9fff]/g) || []).length >= 4);
        if (!el) return null;
        el.setAttribute('data-cjk-probe', '1');
        const box = el.getBoundingClientRect();
        return {tag: el.tagName, text: own(el).trim().slice(0, 40), width: box.width, height: box.height,
                ownCjk: (own(el).match(/[\u3400-\u9fff\u3000-\u303f\uff00-\uffef]/g) || []).length,
                fontFamily: getComputedStyle(el).fontFamily,
                cjkChars: (document.querySelector('article').innerText.match(/[\u3400-\u9fff]/g) || []).length,
                title: (document.querySelector('article h1') || {innerText: ''}).innerText};
    }""")
    if probe is None:
        return {"cjkChars": 0}
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
        node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "[data-cjk-probe]"})["nodeId"]
        probe["platformFonts"] = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    finally:
        cdp.detach()
    return probe


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chinese_chapter_page_in_a_browser(site, browser, chapter):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        facts = _check_chapter_page(page, site + f"zh/notebooks/{chapter}.html")
        cjk = _cjk_rendering(page)
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT_DIR / f"book-zh-{chapter}.png"))
        # the switch goes to the same chapter in English
        page.locator("a.dlcourse-lang-switch").first.click()
        page.wait_for_load_state("load")
        switched_to = page.url
        english_title = page.evaluate("() => (document.querySelector('article h1') || {innerText: ''}).innerText")
    finally:
        page.close()
    assert facts["lang"] == "zh-CN", f"zh/{chapter}: <html lang={facts['lang']!r}>, expected zh-CN"
    assert facts["loaded"] >= 3 and facts["loaded"] == facts["images"], \
        f"zh/{chapter}: {facts['loaded']} of {facts['images']} images loaded (need >= 3, all loaded)"
    assert facts["math"] > 0 and facts["math"] >= facts["rawMath"], f"zh/{chapter}: math not typeset"
    assert facts["errorOutputs"] == 0 and not facts["traceback"], f"zh/{chapter}: the page shows an error output"
    assert facts["mermaidSvgs"] >= facts["mermaidBlocks"], f"zh/{chapter}: a Mermaid diagram is not drawn"
    assert any(f"notebooks/zh/{chapter}.ipynb" in href for href in facts["binder"]), \
        f"zh/{chapter}: no Binder link opening notebooks/zh/{chapter}.ipynb (found {facts['binder'][:3]})"
    assert not facts["outside"], f"zh/{chapter}: the page requested something outside the site: {facts['outside'][:5]}"
    assert cjk["cjkChars"] >= 200 and CJK_CHAR.search(cjk["title"]), \
        f"zh/{chapter}: not in Chinese ({cjk['cjkChars']} CJK characters, title {cjk.get('title')!r})"
    assert cjk["width"] > 0 and cjk["height"] > 0, f"zh/{chapter}: the CJK text {cjk['text']!r} has no size: {cjk}"
    assert CJK_FONT.search(cjk["fontFamily"]), f"zh/{chapter}: the font stack names no CJK font: {cjk['fontFamily']}"
    assert _cjk_glyphs(cjk) >= cjk["ownCjk"], \
        f"zh/{chapter}: {cjk['tag']} {cjk['text']!r} has {cjk['ownCjk']} CJK characters but CJK fonts drew only " \
        f"{_cjk_glyphs(cjk)} glyphs: {cjk['platformFonts']} (install a CJK font: apt-get install fonts-noto-cjk)"
    assert switched_to == site + f"notebooks/{chapter}.html" and not CJK_CHAR.search(english_title), \
        f"zh/{chapter}: the switch opened {switched_to} (title {english_title!r}), expected notebooks/{chapter}.html"


def test_chinese_landing_page_lists_every_chapter_and_switches_to_english(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        facts = _check_page(page, site + "zh/index.html")
        links = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '')")
        anchors = page.evaluate("() => [...document.querySelectorAll('article a')]"
                                ".map(a => [a.getAttribute('href') || '', a.textContent])")
        cjk = _cjk_rendering(page)
        page.screenshot(path=str(OUTPUT_DIR / "book-zh-index.png"))
    finally:
        page.close()
    for chapter in CHAPTERS:
        assert any(f"{chapter}.html" in href for href in links), f"the Chinese landing page does not link {chapter}"
        # the chapter table: the Chinese title links this edition's page, "English" the English one
        assert any(href.endswith(f"notebooks/{chapter}.html") and not href.startswith("../") and CJK_CHAR.search(text)
                   for href, text in anchors), f"the Chinese chapter table has no Chinese title linking {chapter}"
        assert [f"../notebooks/{chapter}.html", "English"] in anchors, f"no link to the English {chapter}"
    assert any("glossary.html" in href for href in links) and any("results.html" in href for href in links)
    assert facts["switchLinks"] == [site + "index.html"], facts["switchLinks"]
    assert facts["lang"] == "zh-CN" and CJK_CHAR.search(cjk.get("title", "")), cjk
    assert cjk["width"] > 0 and _cjk_glyphs(cjk) >= cjk["ownCjk"] > 0, cjk
    assert not facts["outside"], f"the Chinese landing page requested {facts['outside'][:5]}"


def test_widgets_render_as_static_figures():
    """Each chapter with a widget shows the figure it drew (a plain image), with the live-kernel note."""
    with_widgets = [c for c in CHAPTERS if _widget_sources(c)]
    assert with_widgets, "no chapter uses a widget?"
    missing = [c for c in with_widgets
               if "dlcourse-static-widget" not in (HTML / "notebooks" / f"{c}.html").read_text(encoding="utf-8")]
    assert not missing, f"chapters whose widget left no static figure in the book: {missing}"


def _widget_sources(chapter: str) -> str:
    nb = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return code if any(word in code for word in ("Explorer(", "Playground(", "Browser(")) else ""


def test_landing_page_lists_every_chapter_and_the_glossary(site, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    try:
        facts = _check_page(page, site + "index.html")
        links = page.evaluate("() => [...document.querySelectorAll('a')].map(a => a.getAttribute('href') || '')")
        page.screenshot(path=str(OUTPUT_DIR / "book-index.png"))
    finally:
        page.close()
    for chapter in CHAPTERS:
        assert any(f"{chapter}.html" in href for href in links), f"the landing page does not link {chapter}"
    assert any("glossary.html" in href for href in links) and any("results.html" in href for href in links)
    assert facts["switchLinks"] == [site + "zh/index.html"], facts["switchLinks"]
    assert not facts["outside"], f"the landing page requested {facts['outside'][:5]}"
