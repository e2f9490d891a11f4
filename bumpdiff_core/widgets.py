"""The live checkpoint scrubber: the same data as `figures.manifold_scrubber` and
`figures.sample_grid_scrubber`, driven by an ipywidgets slider in a running kernel.

plotly's `FigureWidget` is an anywidget (plotly >= 6), and its saved state carries plotly's ~5 MB
JavaScript bundle, which a static page can only load from a CDN. So a notebook executed for the
static book (environment variable `BUMPDIFF_STATIC_BOOK=1`, set by the sweep) gets a short note
from `live_scrubber` instead; the book's scrubbing is done by the plotly-frame figures.
"""
from __future__ import annotations

import os

import ipywidgets as widgets
import plotly.graph_objects as go

from . import figures
from .view import RunView

STATIC_ENV = "BUMPDIFF_STATIC_BOOK"


def _as_view(run) -> RunView:
    return run if isinstance(run, RunView) else RunView.open(run)


def status_text(step: int, row) -> str:
    """The one-line summary the scrubber shows above its figures (HTML)."""
    return (f"<b>step {step}</b> · {figures.phase_text(row['phase'])} · accuracy "
            f"{row['accuracy']:.2f} · one bump {row['frac_1']:.0%} · R² (UMAP) x "
            f"{row['r2_x']:.2f}, y {row['r2_y']:.2f} · R² (raw) x {row['r2_x_raw']:.2f}, "
            f"y {row['r2_y_raw']:.2f}")


class Scrubber(widgets.VBox):
    """A checkpoint slider driving a 3D manifold (`manifold_figure`) and a sample grid
    (`grid_figure`), both `plotly.graph_objects.FigureWidget`s; `set_step(step)` moves it.
    `run`: a `view.RunView` (what a page already holds) or a `store.Run`."""

    def __init__(self, run, n: int = 25, color: str = "x"):
        super().__init__()
        self.view = _as_view(run)
        self.steps = self.view.steps
        self._aligned = self.view.aligned_embeddings
        last = self.view.evaluation(self.steps[-1])
        self.n = min(n, len(last.labels))

        self.slider = widgets.SelectionSlider(options=[(str(s), s) for s in self.steps], value=self.steps[-1],
                                              description="step", continuous_update=False,
                                              layout=widgets.Layout(width="520px"))
        self.colour = widgets.ToggleButtons(options=[("colour by true x", "x"), ("colour by true y", "y")],
                                            value=color, style={"button_width": "130px"})
        self.status = widgets.HTML()
        manifold = go.Figure(figures.manifold_trace(self._aligned[-1], last.labels, color, self.view.image_size))
        manifold.update_layout(template=figures.TEMPLATE, width=560, height=520, margin=dict(l=0, r=0, t=40, b=0),
                               scene=dict(**figures.scene_ranges(self._aligned), aspectmode="cube"),
                               uirevision="keep-camera")
        self.manifold_figure = go.FigureWidget(manifold)
        grid = figures.sample_subplots(figures.to_uint8(last.samples[: self.n]), last.labels[: self.n], "")
        self.grid_figure = go.FigureWidget(grid)
        self.children = [widgets.HBox([self.slider, self.colour]), self.status,
                         widgets.HBox([self.manifold_figure, self.grid_figure])]
        self.slider.observe(self._on_step, names="value")
        self.colour.observe(self._on_colour, names="value")
        self._show(self.steps[-1])

    @property
    def step(self) -> int:
        return int(self.slider.value)

    def set_step(self, step: int) -> None:
        """Show checkpoint `step` (one of `self.steps`); the slider follows."""
        if int(step) not in self.steps:
            raise ValueError(f"step {step} is not an evaluated checkpoint; choose one of {self.steps}")
        if int(step) == self.step:
            self._show(int(step))
        else:
            self.slider.value = int(step)  # the observer redraws

    def _on_step(self, change) -> None:
        self._show(int(change["new"]))

    def _on_colour(self, change) -> None:
        self._recolour(self.view.evaluation(self.step).labels)

    def _recolour(self, labels) -> None:
        k = 0 if self.colour.value == "x" else 1
        trace = self.manifold_figure.data[0]
        trace.marker.color = figures.coords(labels[:, k])
        trace.marker.colorbar.title.text = f"true {self.colour.value} (px)"

    def _show(self, step: int) -> None:
        ev, pts = self.view.evaluation(step), figures.coords(self._aligned[self.steps.index(step)])
        row = self.view.row(step)
        with self.manifold_figure.batch_update():
            trace = self.manifold_figure.data[0]
            trace.x, trace.y, trace.z = pts[:, 0], pts[:, 1], pts[:, 2]
            trace.customdata = figures.coords(ev.labels)
            self._recolour(ev.labels)
            self.manifold_figure.layout.title.text = figures.manifold_title(step, row)
        images = figures.to_uint8(ev.samples[: self.n])
        with self.grid_figure.batch_update():
            for k in range(self.n):  # heatmaps come first, then the red dots
                self.grid_figure.data[k].z = images[k]
                dot = self.grid_figure.data[self.n + k]
                dot.x, dot.y = figures.coords(ev.labels[k:k + 1, 0]), figures.coords(ev.labels[k:k + 1, 1])
            self.grid_figure.layout.title.text = figures.grid_title(step, row)
        self.status.value = status_text(step, row)


def live_scrubber(run, **kw):
    """`Scrubber(run)` in a live kernel; a note when executing for the static book."""
    if os.environ.get(STATIC_ENV, "") not in ("", "0"):
        from IPython.display import Markdown
        return Markdown("*The live scrubber (`bumpdiff_core.widgets.Scrubber`) needs a running Python "
                        "kernel: open this notebook in Jupyter to drag it. On this page, the two figures "
                        "with sliders above show the same checkpoints.*")
    return Scrubber(run, **kw)


__all__ = ["Scrubber", "live_scrubber", "status_text", "STATIC_ENV"]
