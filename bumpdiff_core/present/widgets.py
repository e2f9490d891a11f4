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
import numpy as np
import plotly.graph_objects as go

from bumpdiff_core.present import figures
from bumpdiff_core.present.export import STATIC_ENV
from bumpdiff_core.results.view import RunView



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
    (`grid_figure`); `run` is a `view.RunView` or a `store.Run`. A click on a manifold point (or
    `select(label)`) shows that label's sample large in `sample_figure` (requested and detected
    centre, bump count, accurate or not) and rings it; scrubbing keeps the label. `colour`: true x,
    true y or position error. `compare(...)` shows `ComparePanels` (two checkpoints, or one of
    `other`, Procrustes-aligned by label)."""

    def __init__(self, run, n: int = 25, color: str = "x", other=None):
        super().__init__()
        self.view = _as_view(run)
        self.other = None if other is None else _as_view(other)
        self.steps = self.view.steps
        self._aligned = self.view.aligned_embeddings
        last = self.view.evaluation(self.steps[-1])
        self.n = min(n, len(last.labels))
        self.selected = 0  # the label shown in the sample panel
        n_pixels = self.view.image_size

        self.slider = widgets.SelectionSlider(options=[(str(s), s) for s in self.steps], value=self.steps[-1],
                                              description="step", continuous_update=False,
                                              layout=widgets.Layout(width="520px"))
        self.colour = widgets.Dropdown(options=[(f"colour by {words}", key) for key, words in figures.COLOUR_BY.items()],
                                       value=color, layout=widgets.Layout(width="220px"))
        self.mode = widgets.ToggleButtons(options=[("one checkpoint", "single"), ("compare two", "compare")],
                                          value="single", style={"button_width": "120px"})
        self.status = widgets.HTML()

        manifold = go.Figure([figures.manifold_trace(self._aligned[-1], last.labels, "x", n_pixels, ev=last),
                              _highlight_trace()])
        manifold.update_layout(template=figures.TEMPLATE, width=560, height=520, margin=dict(l=0, r=0, t=40, b=0),
                               scene=dict(**figures.scene_ranges(self._aligned), aspectmode="cube"),
                               uirevision="keep-camera", showlegend=False)
        self.manifold_figure = go.FigureWidget(manifold)
        self.sample_figure = go.FigureWidget(figures.sample_figure(last, self.selected, n_pixels))
        grid = figures.sample_subplots(figures.to_uint8(last.samples[: self.n]), last.labels[: self.n], "")
        self.grid_figure = go.FigureWidget(grid)

        # compare mode: two checkpoints (of this run, or the right one of `other`) side by side
        self.compare_box = ComparePanels(self.view, self.other, self._aligned, self._colour_trace, self._on_click)

        self.children = [widgets.HBox([self.slider, self.colour, self.mode]), self.status,
                         widgets.HBox([self.manifold_figure, self.sample_figure]), self.compare_box, self.grid_figure]
        self.slider.observe(self._on_step, names="value")
        self.colour.observe(lambda change: self._redraw(), names="value")
        self.mode.observe(self._on_mode, names="value")
        self.manifold_figure.data[0].on_click(self._on_click)
        self._show(self.steps[-1])

    # -- public ---------------------------------------------------------------------------------------
    @property
    def compare_figure(self) -> go.FigureWidget:
        return self.compare_box.figure

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

    def select(self, label: int) -> None:
        """Show label `label`'s sample in the sample panel and ring it in every 3D panel (what a
        click on its point does)."""
        n = len(self.view.evaluation(self.step).labels)
        if not 0 <= int(label) < n:
            raise ValueError(f"label {label} is not one of the {n} evaluation labels")
        self.selected = int(label)
        self._draw_sample()
        self._draw_highlights()

    def compare(self, left_step: int, right_step: int, other: bool = False) -> None:
        """Switch to compare mode: checkpoint `left_step` of this run beside `right_step` (of the
        other run when `other`)."""
        self.compare_box.left_step.value = int(left_step)
        self.compare_box.right_step.value = ("other" if other else "this", int(right_step))
        self.mode.value = "compare"

    # -- callbacks --------------------------------------------------------------------------------
    def _on_step(self, change) -> None:
        self._show(int(change["new"]))

    def _on_click(self, trace, points, state) -> None:
        if points.point_inds:
            self.select(points.point_inds[0])

    def _on_mode(self, change) -> None:
        self.compare_box.layout.display = "" if change["new"] == "compare" else "none"
        if change["new"] == "compare":
            self.compare_box.draw(self.selected)

    # -- drawing ------------------------------------------------------------------------------------
    def _colour_trace(self, trace, ev) -> None:
        spec = figures.colour_spec(ev, self.colour.value, self.view.image_size)
        trace.marker.color, trace.marker.cmin, trace.marker.cmax = spec["color"], spec["cmin"], spec["cmax"]
        trace.marker.colorscale = spec["colorscale"]
        trace.marker.colorbar.title.text = spec["title"]

    def _redraw(self) -> None:
        self._colour_trace(self.manifold_figure.data[0], self.view.evaluation(self.step))
        if self.mode.value == "compare":
            self.compare_box.draw(self.selected)

    def _show(self, step: int) -> None:
        ev, pts = self.view.evaluation(step), figures.coords(self._aligned[self.steps.index(step)])
        row = self.view.row(step)
        with self.manifold_figure.batch_update():
            trace = self.manifold_figure.data[0]
            trace.x, trace.y, trace.z = pts[:, 0], pts[:, 1], pts[:, 2]
            trace.customdata = figures.point_customdata(ev)
            trace.text = figures.point_words(ev)
            self._colour_trace(trace, ev)
            self.manifold_figure.layout.title.text = figures.manifold_title(step, row)
        images = figures.to_uint8(ev.samples[: self.n])
        with self.grid_figure.batch_update():
            for k in range(self.n):  # heatmaps come first, then the red dots
                self.grid_figure.data[k].z = images[k]
                dot = self.grid_figure.data[self.n + k]
                dot.x, dot.y = figures.coords(ev.labels[k:k + 1, 0]), figures.coords(ev.labels[k:k + 1, 1])
            self.grid_figure.layout.title.text = figures.grid_title(step, row)
        self.status.value = status_text(step, row)
        self._draw_sample()
        self._draw_highlights()

    def _draw_sample(self) -> None:
        ev, i = self.view.evaluation(self.step), self.selected
        new = figures.sample_panel_traces(ev, i)
        with self.sample_figure.batch_update():
            for old, fresh in zip(self.sample_figure.data, new):
                if fresh.type == "heatmap":
                    old.z = fresh.z
                else:
                    old.x, old.y = fresh.x, fresh.y
            self.sample_figure.layout.title.text = figures.sample_caption(ev, i)

    def _draw_highlights(self) -> None:
        i = self.selected
        p = figures.coords(self._aligned[self.steps.index(self.step)][i:i + 1])
        ring = self.manifold_figure.data[1]
        ring.x, ring.y, ring.z = p[:, 0], p[:, 1], p[:, 2]
        if self.mode.value == "compare":
            self.compare_box.highlight(i)


class ComparePanels(widgets.VBox):
    """Compare mode: checkpoint `left_step` of a run beside `right_step` (of this run or of
    `other`) as two 3D panels in `figure`, the right Procrustes-aligned onto the left by label;
    hidden until shown. `colour_trace(trace, evaluation)` colours a panel like the main figure."""

    def __init__(self, view, other, aligned, colour_trace, on_click):
        self.view, self.other, self._aligned, self._colour_trace = view, other, aligned, colour_trace
        self.steps, self.selected = view.steps, 0
        right_options = [(f"{s}", ("this", s)) for s in self.steps]
        if other is not None:
            _check_same_labels(view, other)
            right_options += [(f"{s} (other run {other.run_id[:8]})", ("other", s)) for s in other.steps]
        self.left_step = widgets.Dropdown(options=[(str(s), s) for s in self.steps], value=self.steps[0],
                                          description="left step", layout=widgets.Layout(width="200px"))
        self.right_step = widgets.Dropdown(options=right_options,
                                           value=("other", other.steps[-1]) if other is not None
                                           else ("this", self.steps[-1]),
                                           description="right step", layout=widgets.Layout(width="320px"))
        self.figure = go.FigureWidget(self._layout())
        super().__init__([widgets.HBox([self.left_step, self.right_step]), self.figure],
                         layout=widgets.Layout(display="none"))
        self.left_step.observe(lambda change: self.draw(self.selected), names="value")
        self.right_step.observe(lambda change: self.draw(self.selected), names="value")
        for k in (0, 2):
            self.figure.data[k].on_click(on_click)

    def draw(self, selected: int) -> None:
        """Redraw both panels (when shown) and ring label `selected` in both."""
        if self.layout.display == "none":
            return
        self.selected = selected
        with self.figure.batch_update():
            for k, (view, step, pts) in enumerate(self._panels()):
                ev, p = view.evaluation(step), figures.coords(pts)
                trace = self.figure.data[2 * k]
                trace.x, trace.y, trace.z = p[:, 0], p[:, 1], p[:, 2]
                trace.customdata, trace.text = figures.point_customdata(ev), figures.point_words(ev)
                self._colour_trace(trace, ev)
                run = "" if view is self.view else f"other run {view.run_id[:8]} · "
                self.figure.layout.annotations[k].text = (
                    f"{run}step {step} · {figures.phase_text(view.row(step)['phase'])} · "
                    f"accuracy {view.row(step)['accuracy']:.2f}")
        self.highlight(selected)

    def highlight(self, selected: int) -> None:
        self.selected = i = selected
        for k, (_, _, pts) in enumerate(self._panels()):
            q = figures.coords(pts[i:i + 1])
            ring = self.figure.data[2 * k + 1]
            ring.x, ring.y, ring.z = q[:, 0], q[:, 1], q[:, 2]
        self.figure.layout.title.text = f"right panel Procrustes-aligned onto the left, point by label; ringed: label {i}"

    def _panels(self):
        """[(view, step, points)] of the compare panels: left from this run's aligned frames, right
        Procrustes-aligned onto the left by label."""
        from bumpdiff_core.measure.manifold import align_to

        left = int(self.left_step.value)
        which, right = self.right_step.value
        left_pts = np.asarray(self._aligned[self.steps.index(left)], dtype=np.float64)
        right_view = self.other if which == "other" else self.view
        right_pts = align_to(left_pts, np.asarray(right_view.evaluation(right).embedding, dtype=np.float64))
        return [(self.view, left, left_pts), (right_view, int(right), right_pts)]

    def _layout(self) -> go.Figure:
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, specs=[[{"type": "scene"}, {"type": "scene"}]],
                            subplot_titles=["left", "right"], horizontal_spacing=0.02)
        for col in (1, 2):
            fig.add_trace(go.Scatter3d(x=[], y=[], z=[], mode="markers", showlegend=False,
                                       marker=dict(size=3.5, showscale=(col == 2),
                                                   colorbar=dict(thickness=14, len=0.7)),
                                       hovertemplate=figures.POINT_HOVER), row=1, col=col)
            fig.add_trace(_highlight_trace(), row=1, col=col)
        axes = dict(showticklabels=False)
        fig.update_scenes(aspectmode="cube", xaxis=dict(title="UMAP 1", **axes), yaxis=dict(title="UMAP 2", **axes),
                          zaxis=dict(title="UMAP 3", **axes))
        fig.update_layout(template=figures.TEMPLATE, width=1000, height=480, margin=dict(l=0, r=0, t=60, b=0),
                          uirevision="keep-camera", title=dict(text="", x=0.5))
        return fig


def _highlight_trace() -> go.Scatter3d:
    """The ring around the selected label's point in a 3D panel."""
    return go.Scatter3d(x=[], y=[], z=[], mode="markers", showlegend=False, hoverinfo="skip", name="selected",
                        marker=dict(size=11, color="rgba(0,0,0,0)", line=dict(color=figures.HIGHLIGHT_COLOUR, width=4)))


def _check_same_labels(view, other) -> None:
    """Compare mode aligns two runs point by point: their evaluation labels must be the same."""
    a, b = view.evaluation(view.steps[-1]).labels, other.evaluation(other.steps[-1]).labels
    if np.shape(a) != np.shape(b) or not np.allclose(a, b):
        raise ValueError(f"runs {view.run_id} and {other.run_id} were evaluated on different labels; "
                         "compare needs the same labels to align their manifolds point by point")


def live_scrubber(run, **kw):
    """`Scrubber(run)` in a live kernel; a note when executing for the static book."""
    if os.environ.get(STATIC_ENV, "") not in ("", "0"):
        from IPython.display import Markdown
        return Markdown("*The live scrubber (`bumpdiff_core.present.widgets.Scrubber`) needs a running Python "
                        "kernel: open this notebook in Jupyter to drag it. On this page, the two figures "
                        "with sliders above show the same checkpoints.*")
    return Scrubber(run, **kw)


__all__ = ["Scrubber", "live_scrubber", "status_text", "STATIC_ENV"]
