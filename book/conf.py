"""Sphinx configuration of the dlcourse book (myst-nb + sphinx-book-theme).

Do not run sphinx-build on this folder directly: ``python book/build.py`` executes the notebooks
(quick or full setting, cached), stages them with these pages in ``_build/book_src/`` and builds
``_build/html/`` (English), then the Chinese edition (``DLCOURSE_BOOK_LANG=zh``) from ``_build/book_src_zh/``
into ``_build/html/zh/``. Everything a page loads is served by the site itself (no CDN): MathJax from
sphinx-mathjax-offline, Mermaid from ``_static/vendor/`` (fetched once from the npm registry by
build.py), widgets as the figure they drew.
"""

import os

LANG = os.environ.get("DLCOURSE_BOOK_LANG", "en")  # set by build.py: "en" or "zh"

project = "dlcourse"
author = "the dlcourse authors"
copyright = "2026, the dlcourse authors (MIT)"

extensions = ["myst_nb", "sphinxcontrib.mermaid", "sphinx-mathjax-offline"]

root_doc = "index"
exclude_patterns = ["_build", "build.py", "conf.py", "**.ipynb_checkpoints", "readme_source.md", "readme_zh_source.md",
                    "glossary_source.md", "*.zh.md"]
html_static_path = ["_static"]
templates_path = ["_templates"]
# Sphinx's own interface strings (search, "Contents", navigation) in Chinese for the Chinese edition
language = "zh_CN" if LANG == "zh" else "en"
html_css_files = ["book.css"]

# Notebooks arrive executed by build.py (every cell ran without error); never execute here.
nb_execution_mode = "off"
nb_execution_raise_on_error = True
nb_merge_streams = True
nb_ipywidgets_js = {}  # no widget manager from a CDN: build.py leaves each widget as the figure it drew
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "html_image"]
myst_fence_as_directive = ["mermaid"]
myst_heading_anchors = 3
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

mermaid_use_local = "vendor/mermaid-shim.mjs"
mermaid_fullscreen = False
mermaid_d3_zoom = False
mermaid_init_config = {"startOnLoad": False}

REPO = os.environ.get("DLCOURSE_REPO_URL", "https://github.com/dlcourse/dlcourse")
html_title = ("dlcourse — 从零实现深度学习，逐一与 PyTorch 对照" if LANG == "zh"
              else "dlcourse — deep learning from scratch, checked against PyTorch")
html_theme = "sphinx_book_theme"
html_theme_options = {
    "repository_url": REPO,
    "repository_branch": "main",
    "path_to_docs": "",
    "use_repository_button": True,
    "use_download_button": True,
    "use_source_button": False,
    "launch_buttons": {"binderhub_url": "https://mybinder.org", "notebook_interface": "jupyterlab"},
    "show_toc_level": 2,
    "article_header_end": ["lang-switch.html", "article-header-buttons.html"],
}
html_last_updated_fmt = ""


def _language_switch(app, pagename, templatename, context, doctree):
    """The link to the same page in the other language: English at html/, Chinese at html/zh/ (same page names)."""
    up = "../" * pagename.count("/")
    if LANG == "zh":
        context["dlcourse_other_url"] = f"{up}../{pagename}.html"
        context.update(dlcourse_other_label="English", dlcourse_other_hreflang="en",
                       dlcourse_other_title="Read this page in English")
    else:
        context["dlcourse_other_url"] = f"{up}zh/{pagename}.html"
        context.update(dlcourse_other_label="中文", dlcourse_other_hreflang="zh-CN",
                       dlcourse_other_title="阅读本页的中文版")


def setup(app):
    app.connect("html-page-context", _language_switch)
