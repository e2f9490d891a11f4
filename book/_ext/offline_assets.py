"""Serve plotly.js from the book's own site, once, instead of inlining ~4.8 MB into every page.

The figures are written by `bumpdiff_core.present.figures.use_book_renderer()` without plotly.js; this
extension copies `plotly.min.js` from the installed plotly package (so plotly.js always matches
the plotly.py that drew the figures) into `_static/` and adds a <script> for it to the pages that
hold a plotly figure. plotly.js >= 3 registers `window.Plotly` and never calls an AMD `define`,
so it does not clash with the require.js loaded for ipywidgets.

It also drops sphinx-thebe's scripts (Jupyter Book always loads that extension; thebe, live code
through Binder, is off here): they name unpkg.com, and they are added twice per page, which
declares `const THEBE_JS_URL` twice, a SyntaxError on every page.
"""
from __future__ import annotations

import shutil
from pathlib import Path

PLOTLY_JS = "plotly.min.js"


def _plotly_js_source() -> Path:
    import plotly

    return Path(plotly.__file__).parent / "package_data" / PLOTLY_JS


def _is_thebe(js) -> bool:
    name = str(getattr(js, "filename", None) or "")
    body = getattr(js, "attributes", {}).get("body", "")
    return "thebe" in name or "THEBE_JS_URL" in body


def _page_scripts(app, pagename, templatename, context, doctree):
    if "script_files" in context:
        context["script_files"][:] = [js for js in context["script_files"] if not _is_thebe(js)]
    if doctree is not None and "plotly-graph-div" in context.get("body", ""):
        app.add_js_file(PLOTLY_JS, priority=200)  # in <head>: before the page body's figure scripts run


def _copy_plotly_js(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.outdir) / "_static" / PLOTLY_JS
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_plotly_js_source(), target)


def setup(app):
    if not _plotly_js_source().is_file():
        raise RuntimeError(f"{_plotly_js_source()}: plotly.min.js missing from the plotly package")
    app.connect("html-page-context", _page_scripts)
    app.connect("build-finished", _copy_plotly_js)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
