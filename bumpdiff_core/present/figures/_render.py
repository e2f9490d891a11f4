"""Plotly's renderer for the book and for live JupyterLab, chosen explicitly."""
from __future__ import annotations

from plotly.io.base_renderers import MimetypeRenderer


class _BookRenderer(MimetypeRenderer):
    """A figure as HTML without plotly.js and without MathJax: the book serves one plotly.min.js
    from its own site (book/_ext/offline_assets.py). plotly's "notebook" renderer would inline
    ~4.8 MB of plotly.js into every page and point every figure at MathJax on a CDN."""

    def to_mimebundle(self, fig_dict):
        import plotly.io as pio

        return {"text/html": pio.to_html(fig_dict, include_plotlyjs=False, include_mathjax=False,
                                         full_html=False, default_width="100%", default_height=525,
                                         validate=False, auto_play=False)}


def use_book_renderer() -> None:
    """Pick plotly's renderer explicitly: Jupyter Book 1 silently drops plotly's default output
    type. The book shows the HTML half (`_BookRenderer`); live JupyterLab renders the JSON half."""
    import plotly.io as pio

    pio.renderers["bumpdiff_book"] = _BookRenderer()
    pio.renderers.default = "plotly_mimetype+bumpdiff_book"
