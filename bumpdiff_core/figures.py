"""Plotly figures for the notebooks and the book. Every builder returns a `go.Figure` and reads
only what is on disk (`load_metrics`, `load_evaluation`), so changing a colour never retrains.

Conventions used everywhere:
- images are heatmaps in pixel coordinates, x = column (left to right), y = row (downwards);
  red dots mark the requested (ground-truth) centre;
- phases A / B / C always have the colours of `PHASE_COLOURS`; x is always blue, y magenta;
- positions are coloured with `POSITION_SCALE`, scores in [0, 1] with `SCORE_SCALE`;
- samples travel as uint8 heatmaps and coordinates as float32 rounded to 3 decimals, so pages
  with one frame per checkpoint stay small (plotly encodes numpy arrays as base64).
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.io.base_renderers import MimetypeRenderer
from plotly.subplots import make_subplots

from . import metrics
from .config import resolve_tap, tap_layer_names
from .evaluate import load_evaluation, load_losses, load_metrics

TEMPLATE = "plotly_white"
PHASE_COLOURS = {"A": "#8c8c8c", "B": "#f0a202", "C": "#2ca02c"}
PHASE_NAMES = {"A": "no structure", "B": "disordered sheet", "C": "ordered sheet"}
COORD_COLOURS = {"x": "#1f77b4", "y": "#c2185b"}
DOT_COLOUR = "#ff1a1a"
POSITION_SCALE = "Viridis"
SCORE_SCALE = "Cividis"
GRAY_SCALE = [[0.0, "#000000"], [1.0, "#ffffff"]]


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


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------

def to_uint8(images) -> np.ndarray:
    """[-1, 1] images -> uint8 brightness 0..255 (a quarter of the bytes of float32)."""
    v = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def _coords(values) -> np.ndarray:
    return np.round(np.asarray(values, dtype=np.float64), 3).astype(np.float32)


def _grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def _phase_text(phase: str) -> str:
    return f"phase {phase} ({PHASE_NAMES.get(phase, '?')})"


def _row(table, step: int):
    rows = table[table["step"] == step]
    if rows.empty:
        raise KeyError(f"step {step} was not evaluated; evaluated steps: {list(table['step'])}")
    return rows.iloc[0]


def _heatmap(image_u8, showscale=False, **kw) -> go.Heatmap:
    n = image_u8.shape[-1]
    return go.Heatmap(z=image_u8, x=np.arange(n), y=np.arange(n), zmin=0, zmax=255,
                      colorscale=GRAY_SCALE, showscale=showscale,
                      hovertemplate="x %{x} px, y %{y} px<br>brightness %{z}/255<extra></extra>", **kw)


def _dot(x, y, name="requested (x, y)", showlegend=False, hovertext=None) -> go.Scatter:
    return go.Scatter(x=np.atleast_1d(_coords(x)), y=np.atleast_1d(_coords(y)), mode="markers",
                      marker=dict(color=DOT_COLOUR, size=6, line=dict(color="white", width=0.5)),
                      name=name, showlegend=showlegend, hovertext=hovertext,
                      hovertemplate="requested x %{x}, y %{y}<extra></extra>" if hovertext is None else None)


def _image_axes(fig, n_pixels: int, rows: int, cols: int, tick_labels: bool = False) -> None:
    """Square pixels, y downwards, every panel showing the whole N x N canvas."""
    for i in range(rows * cols):
        sx = "" if i == 0 else str(i + 1)
        frame = dict(showgrid=False, zeroline=False, showticklabels=tick_labels, constrain="domain",
                     showline=True, mirror=True, linecolor="#9e9e9e", linewidth=1)  # white bumps on white paper
        fig.layout[f"xaxis{sx}"].update(range=[-0.5, n_pixels - 0.5], **frame)
        fig.layout[f"yaxis{sx}"].update(range=[n_pixels - 0.5, -0.5], scaleanchor=f"x{sx}", **frame)


def _pixel_axis_notes(fig, n_pixels: int) -> None:
    fig.add_annotation(text=f"x = column, 0 … {n_pixels - 1} px →", xref="paper", yref="paper",
                       x=0.5, y=-0.02, yanchor="top", showarrow=False, font=dict(size=11))
    fig.add_annotation(text=f"y = row, 0 … {n_pixels - 1} px →", xref="paper", yref="paper",
                       x=-0.02, y=0.5, textangle=90, xanchor="right", showarrow=False, font=dict(size=11))


def _sample_subplots(images_u8, labels, title: str, cols: int | None = None, subplot_titles=None):
    """Grid of heatmaps (one per sample) with red dots. Trace order: all heatmaps, then all dots."""
    n = len(images_u8)
    rows, cols = _grid_shape(n) if cols is None else (math.ceil(n / cols), cols)
    n_pixels = images_u8.shape[-1]
    gap = 0.02
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=gap, vertical_spacing=gap * 1.2
                        if subplot_titles is None else 0.06, subplot_titles=subplot_titles)
    for i in range(n):
        fig.add_trace(_heatmap(images_u8[i]), row=i // cols + 1, col=i % cols + 1)
    for i in range(n):
        fig.add_trace(_dot(labels[i, 0], labels[i, 1], showlegend=(i == 0)), row=i // cols + 1, col=i % cols + 1)
    _image_axes(fig, n_pixels, rows, cols)
    _pixel_axis_notes(fig, n_pixels)
    side = 112 if cols <= 5 else 90
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.5, xanchor="center"),
                      width=cols * side + 90, height=rows * side + 140 + (20 * rows if subplot_titles else 0),
                      margin=dict(l=50, r=20, t=80, b=50),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom"))
    return fig


def _grid_title(step: int, row) -> str:
    return (f"step {step} · {_phase_text(row['phase'])} · accuracy {row['accuracy']:.2f} "
            f"· one bump in {row['frac_1']:.0%}")


# ---------------------------------------------------------------------------------------------
# samples
# ---------------------------------------------------------------------------------------------

def sample_grid(run, step: int, n: int = 25) -> go.Figure:
    """The first `n` evaluation samples of checkpoint `step`, red dots at the requested (x, y)."""
    ev = load_evaluation(run, step)
    n = min(n, len(ev["labels"]))
    row = _row(load_metrics(run), step)
    return _sample_subplots(to_uint8(ev["samples"][:n]), ev["labels"][:n], _grid_title(step, row))


def _slider(steps, active: int, width: float, prefix: str = "step ") -> list[dict]:
    start = min(0.4, 110 / width)  # leave room for the play / pause buttons
    return [dict(
        active=active, x=start, len=1 - start, y=0, yanchor="top", pad=dict(t=45, b=10),
        currentvalue=dict(prefix=prefix, xanchor="right", font=dict(size=13)),
        steps=[dict(method="animate", label=str(s),
                    args=[[str(s)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                         transition=dict(duration=0))]) for s in steps])]


def _play_buttons(frame_ms: int = 700) -> dict:
    # "play" replays from the first checkpoint: the figure opens at the last (most ordered) one
    return dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top",
                pad=dict(t=52, r=10), showactive=False,
                buttons=[dict(label="▶", method="animate",
                              args=[None, dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=False,
                                               transition=dict(duration=0), mode="immediate")]),
                         dict(label="❚❚", method="animate",
                              args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                                 transition=dict(duration=0))])])


def sample_grid_scrubber(run, n: int = 25) -> go.Figure:
    """`sample_grid` with one frame per evaluated checkpoint, a step slider and a play button.

    The figure opens at the last checkpoint; frames replace only the heatmaps (the requested
    positions are the same at every checkpoint).
    """
    table = load_metrics(run)
    steps = [int(s) for s in table["step"]]
    evals = [load_evaluation(run, s) for s in steps]
    n = min(n, len(evals[0]["labels"]))
    last = evals[-1]
    fig = _sample_subplots(to_uint8(last["samples"][:n]), last["labels"][:n],
                           _grid_title(steps[-1], _row(table, steps[-1])))
    frames = []
    for s, ev in zip(steps, evals):
        imgs = to_uint8(ev["samples"][:n])
        frames.append(go.Frame(name=str(s), traces=list(range(n)),
                               data=[go.Heatmap(z=imgs[i]) for i in range(n)],
                               layout=dict(title=dict(text=_grid_title(s, _row(table, s))))))
    fig.frames = frames
    fig.update_layout(sliders=_slider(steps, len(steps) - 1, fig.layout.width), updatemenus=[_play_buttons()])
    fig.update_layout(height=fig.layout.height + 90, margin=dict(b=130))
    return fig


# ---------------------------------------------------------------------------------------------
# the manifold
# ---------------------------------------------------------------------------------------------

def aligned_embeddings(run, steps=None) -> tuple[list[int], list[dict], list[np.ndarray]]:
    """(steps, evaluations, UMAP embeddings Procrustes-aligned frame to frame) for a run."""
    from .manifold import align_sequence

    if steps is None:
        steps = [int(s) for s in load_metrics(run)["step"]]
    evals = [load_evaluation(run, s) for s in steps]
    return steps, evals, align_sequence([np.asarray(ev["embedding"], dtype=np.float64) for ev in evals])


def _manifold_title(step: int, row) -> str:
    return (f"step {step} · {_phase_text(row['phase'])} · R² from UMAP: x {row['r2_x']:.2f}, "
            f"y {row['r2_y']:.2f}")


def _scene_ranges(embeddings) -> dict:
    pts = np.concatenate(embeddings)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo) + 1e-6
    # UMAP units mean nothing: no tick labels
    return {f"{a}axis": dict(range=[float(lo[i] - pad[i]), float(hi[i] + pad[i])], title=f"UMAP {i + 1}",
                             showticklabels=False) for i, a in enumerate("xyz")}


def _manifold_trace(points, labels, coord: str, n_pixels: int, visible=True, showscale=True) -> go.Scatter3d:
    k = 0 if coord == "x" else 1
    pts = _coords(points)
    return go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=f"coloured by true {coord}",
        visible=visible, showlegend=False, customdata=_coords(labels),
        marker=dict(size=3.5, color=_coords(labels[:, k]), colorscale=POSITION_SCALE, cmin=0,
                    cmax=n_pixels - 1, showscale=showscale,
                    colorbar=dict(title=dict(text=f"true {coord} (px)"), thickness=14, len=0.7)),
        hovertemplate="true x %{customdata[0]}, y %{customdata[1]}<extra></extra>")


def manifold_scrubber(run, color: str = "x") -> go.Figure:
    """3D UMAP of the tapped layer, one frame per checkpoint, coloured by true x (buttons switch
    to y). Frames are Procrustes-aligned to their neighbours so the slider shows the sheet
    forming rather than UMAP's arbitrary rotations. Opens at the last checkpoint."""
    if color not in ("x", "y"):
        raise ValueError(f"color must be 'x' or 'y'; got {color!r}")
    table = load_metrics(run)
    steps, evals, aligned = aligned_embeddings(run, [int(s) for s in table["step"]])
    n_pixels = run.config.image_size
    labels = evals[-1]["labels"]
    fig = go.Figure([_manifold_trace(aligned[-1], labels, c, n_pixels, visible=(c == color)) for c in ("x", "y")])
    frames = []
    for s, pts in zip(steps, aligned):
        p = _coords(pts)
        frames.append(go.Frame(name=str(s), traces=[0, 1],
                               data=[go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2])] * 2,
                               layout=dict(title=dict(text=_manifold_title(s, _row(table, s))))))
    fig.frames = frames
    colour_menu = dict(type="buttons", direction="left", x=1.0, xanchor="right", y=1.08, yanchor="bottom",
                       active=0 if color == "x" else 1,
                       buttons=[dict(label=f"colour by true {c}", method="restyle",
                                     args=[{"visible": [c == "x", c == "y"]}]) for c in ("x", "y")])
    tap = resolve_tap(run.config.tap_layer, len(run.config.channel_mults))
    fig.update_layout(
        template=TEMPLATE, width=720, height=640, margin=dict(l=10, r=10, t=110, b=120),
        modebar=dict(orientation="v"),
        title=dict(text=_manifold_title(steps[-1], _row(table, steps[-1])), x=0.02, y=0.97),
        scene=dict(**_scene_ranges(aligned), aspectmode="cube"),
        sliders=_slider(steps, len(steps) - 1, 720), updatemenus=[_play_buttons(), colour_menu],
        annotations=[dict(text=f"{run.config.tap_layer} ({tap}) activations, averaged over the sampling pass",
                          xref="paper", yref="paper", x=0.02, y=1.06, showarrow=False, xanchor="left",
                          font=dict(size=11, color="#555"))])
    return fig


# ---------------------------------------------------------------------------------------------
# Fig. 3: one fixed panel per phase
# ---------------------------------------------------------------------------------------------

def first_step_of_phase(table) -> dict:
    """{phase: first checkpoint step labelled with it, or None when never reached}."""
    out = {}
    for p in "ABC":
        hits = table.loc[table["phase"] == p, "step"]
        out[p] = int(hits.iloc[0]) if len(hits) else None
    return out


def mosaic(images_u8, labels, cols: int):
    """Tile images into one array with 1-pixel gaps (NaN, drawn transparent); returns
    (mosaic float32, dot xs, dot ys) with each dot at its tile's offset + its label."""
    n, n_pixels = len(images_u8), images_u8.shape[-1]
    rows = math.ceil(n / cols)
    size = n_pixels + 1
    out = np.full((rows * size - 1, cols * size - 1), np.nan, dtype=np.float32)
    xs, ys = np.empty(n), np.empty(n)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * size:r * size + n_pixels, c * size:c * size + n_pixels] = images_u8[i]
        xs[i], ys[i] = c * size + labels[i, 0], r * size + labels[i, 1]
    return out, xs, ys


def phase_panels(run, n: int = 25) -> go.Figure:
    """Fig. 3: for the first checkpoint of each phase, the samples (top) and the 3D UMAP
    coloured by true x (bottom). A phase the run never reached gets an empty panel that says so."""
    table = load_metrics(run)
    firsts = first_step_of_phase(table)
    n_pixels = run.config.image_size
    titles = []
    for p in "ABC":
        s = firsts[p]
        titles.append(f"<b>{p}</b>: never reached" if s is None else
                      f"<b>{p}</b> · step {s} · accuracy {_row(table, s)['accuracy']:.2f}")
    fig = make_subplots(rows=2, cols=3, specs=[[{"type": "xy"}] * 3, [{"type": "scene"}] * 3],
                        subplot_titles=titles + [""] * 3, vertical_spacing=0.04, horizontal_spacing=0.03,
                        row_heights=[0.42, 0.58])  # the square mosaics are width-bound: give 3D the rest
    for k, p in enumerate("ABC"):
        s = firsts[p]
        col = k + 1
        if s is None:
            fig.add_trace(go.Scatter(x=[], y=[], showlegend=False), row=1, col=col)
            fig.add_trace(go.Scatter3d(x=[], y=[], z=[], showlegend=False), row=2, col=col)
            continue
        ev = load_evaluation(run, s)
        m = min(n, len(ev["labels"]))
        rows, cols = _grid_shape(m)
        z, dx, dy = mosaic(to_uint8(ev["samples"][:m]), ev["labels"][:m], cols)
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=255, colorscale=GRAY_SCALE, showscale=False,
                                 hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(x=_coords(dx), y=_coords(dy), mode="markers", showlegend=(k == 0),
                                 name="requested (x, y)", customdata=_coords(ev["labels"][:m]),
                                 marker=dict(color=DOT_COLOUR, size=5),
                                 hovertemplate="requested x %{customdata[0]}, y %{customdata[1]}<extra></extra>"),
                      row=1, col=col)
        fig.add_trace(_manifold_trace(ev["embedding"], ev["labels"], "x", n_pixels, showscale=(k == 2)),
                      row=2, col=col)
    for k in range(3):
        sx = "" if k == 0 else str(k + 1)
        fig.layout[f"xaxis{sx}"].update(visible=False, constrain="domain")
        fig.layout[f"yaxis{sx}"].update(visible=False, autorange="reversed", scaleanchor=f"x{sx}",
                                        constrain="domain")
        sc = "scene" if k == 0 else f"scene{k + 1}"
        fig.layout[sc].update(aspectmode="cube", xaxis=dict(showticklabels=False, title="UMAP 1"),
                              yaxis=dict(showticklabels=False, title="UMAP 2"),
                              zaxis=dict(showticklabels=False, title="UMAP 3"))
    fig.update_layout(template=TEMPLATE, height=720,  # width: the page column (no sideways scroll)
                      margin=dict(l=10, r=10, t=90, b=10),
                      title=dict(text="The three phases: samples (red dot = requested position) and the "
                                      "3D UMAP of the representation, coloured by true x", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.06))
    for a, p in zip(fig.layout.annotations[:3], "ABC"):
        a.font = dict(color=PHASE_COLOURS[p], size=14)
    return fig


# ---------------------------------------------------------------------------------------------
# curves
# ---------------------------------------------------------------------------------------------

def _phase_bands(fig, table, rows: list[int] | None = None) -> None:
    """Shade each checkpoint's interval (midpoint to midpoint) in the colour of its phase."""
    steps = table["step"].to_numpy(dtype=float)
    phases = table["phase"].to_numpy()
    if len(steps) == 0:
        return
    edges = np.concatenate([[steps[0]], (steps[1:] + steps[:-1]) / 2, [steps[-1]]])
    start = 0
    for i in range(1, len(steps) + 1):  # merge runs of the same phase into one band
        if i == len(steps) or phases[i] != phases[start]:
            for r in rows or [None]:
                kw = {} if r is None else dict(row=r, col=1)
                fig.add_vrect(x0=edges[start], x1=edges[i], fillcolor=PHASE_COLOURS.get(phases[start], "#ccc"),
                              opacity=0.14, line_width=0, layer="below", **kw)
            start = i
    for p in "ABC":  # legend entries for the bands
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"phase {p}: {PHASE_NAMES[p]}",
                                 marker=dict(symbol="square", size=12, color=PHASE_COLOURS[p], opacity=0.5),
                                 legendgroup="phases"))


def metric_curves(table, title: str | None = None) -> go.Figure:
    """Accuracy, bump counts and R² against training step, each checkpoint's phase as a band;
    the training loss (mean since the previous checkpoint) on a secondary axis of the top panel."""
    steps = table["step"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        specs=[[{"secondary_y": True}], [{}], [{}]],
                        subplot_titles=["accuracy (exactly one bump within 1 px of the requested x, y)",
                                        "number of bumps per sample",
                                        "R² of x and y from the representation"])
    line = lambda col, name, color, dash=None, row=1, width=2: fig.add_trace(  # noqa: E731
        go.Scatter(x=steps, y=table[col], name=name, mode="lines+markers", marker=dict(size=4),
                   line=dict(color=color, dash=dash, width=width)), row=row, col=1)
    line("accuracy", "accuracy", "#222222", width=3)
    line("accuracy_x", "accuracy of x only", COORD_COLOURS["x"], "dot")
    line("accuracy_y", "accuracy of y only", COORD_COLOURS["y"], "dot")
    fig.add_trace(go.Scatter(x=steps, y=table["loss"], name="training loss", mode="lines",
                             line=dict(color="#9e9e9e", width=1.5, dash="dashdot")), row=1, col=1, secondary_y=True)
    line("frac_0", "0 bumps", "#7b3294", row=2)
    line("frac_1", "1 bump", "#008837", row=2)
    line("frac_multi", "2 or more bumps", "#e66101", row=2)
    line("r2_x", "R² x (UMAP 3D)", COORD_COLOURS["x"], row=3)
    line("r2_y", "R² y (UMAP 3D)", COORD_COLOURS["y"], row=3)
    line("r2_x_raw", "R² x (raw activations, CV)", COORD_COLOURS["x"], "dash", row=3)
    line("r2_y_raw", "R² y (raw activations, CV)", COORD_COLOURS["y"], "dash", row=3)
    _phase_bands(fig, table, rows=[1, 2, 3])
    r2 = table[["r2_x", "r2_y", "r2_x_raw", "r2_y_raw"]].to_numpy(dtype=float)
    r2_low = float(np.nanmin(r2)) if np.isfinite(r2).any() else 0.0
    fig.update_yaxes(range=[-0.03, 1.03], row=1, col=1, secondary_y=False, title="fraction")
    fig.update_yaxes(type="log", row=1, col=1, secondary_y=True, title="loss (log)", showgrid=False,
                     tickformat=".2g")
    fig.update_yaxes(range=[-0.03, 1.03], row=2, col=1, title="fraction")
    fig.update_yaxes(range=[max(min(r2_low, 0.0), -1.0) - 0.05, 1.03], row=3, col=1, title="R²")
    fig.update_xaxes(title="training step", row=3, col=1)
    fig.update_layout(template=TEMPLATE, height=860, hovermode="x unified",
                      title=dict(text=title or "Metrics over training (bands: automatic phase label)", x=0.5),
                      legend=dict(x=1.08, y=1, xanchor="left"), margin=dict(l=60, r=20, t=80, b=50))
    return fig


def loss_curves(run) -> go.Figure:
    """Training loss per step (light), its 50-step running mean, and the per-checkpoint means, log
    scale, phase bands behind. The loss falls smoothly through all three phases."""
    table = load_metrics(run)
    losses = load_losses(run)
    fig = go.Figure()
    if losses is not None and len(losses):
        steps = np.arange(1, len(losses) + 1)
        stride = max(1, len(losses) // 2000)  # cap the points a page carries
        fig.add_trace(go.Scatter(x=steps[::stride], y=np.asarray(losses[::stride], dtype=np.float32),
                                 mode="lines", name="per step", line=dict(color="#c7c7c7", width=1)))
        w = min(50, len(losses))
        running = np.convolve(losses, np.ones(w) / w, mode="valid")
        fig.add_trace(go.Scatter(x=steps[w - 1:][::stride], y=running[::stride].astype(np.float32), mode="lines",
                                 name=f"running mean of {w}", line=dict(color="#333", width=2)))
    fig.add_trace(go.Scatter(x=table["step"], y=table["loss"], mode="markers", name="mean since previous checkpoint",
                             marker=dict(color="#d62728", size=7)))
    _phase_bands(fig, table)
    fig.update_layout(template=TEMPLATE, width=860, height=420, title=dict(text="Training loss (ε-prediction MSE)", x=0.5),
                      xaxis_title="training step", yaxis=dict(type="log", title="loss (log)", tickformat=".2g"),
                      legend=dict(x=1.02, y=1), margin=dict(l=60, r=20, t=60, b=50))
    return fig


def phase_diagram(tables_by_increment: dict, annotate_phase: bool = True) -> go.Figure:
    """Fig. 4: accuracy and mean(r2_x, r2_y) as heatmaps over increment (rows) and training step
    (columns). Cells carry the phase letter. Missing checkpoints are blank."""
    incs = sorted(tables_by_increment)
    steps = sorted({int(s) for t in tables_by_increment.values() for s in t["step"]})
    col = {s: j for j, s in enumerate(steps)}
    acc = np.full((len(incs), len(steps)), np.nan)
    r2 = np.full_like(acc, np.nan)
    phase = np.full(acc.shape, "", dtype=object)
    for i, inc in enumerate(incs):
        t = tables_by_increment[inc]
        for _, row in t.iterrows():
            j = col[int(row["step"])]
            acc[i, j] = row["accuracy"]
            r2[i, j] = np.nanmean([row["r2_x"], row["r2_y"]])
            phase[i, j] = row["phase"]
    labels = [f"{inc:g}" for inc in incs]
    xs = [str(s) for s in steps]  # categorical: dense early checkpoints get as much room as late ones
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=["(a) accuracy", "(b) R², mean of x and y (from 3D UMAP)"])
    for k, (z, name) in enumerate([(acc, "accuracy"), (r2, "mean R²")]):
        fig.add_trace(go.Heatmap(
            z=np.round(z, 3), x=xs, y=labels, zmin=0, zmax=1, colorscale=SCORE_SCALE, showscale=(k == 1),
            colorbar=dict(title=dict(text="score"), thickness=14), text=phase if annotate_phase else None,
            texttemplate="%{text}" if annotate_phase else None, textfont=dict(size=9),
            hovertemplate=f"increment %{{y}}<br>step %{{x}}<br>{name} %{{z:.2f}}"
                          + ("<br>phase %{text}" if annotate_phase else "") + "<extra></extra>"),
            row=1, col=k + 1)
    fig.update_xaxes(title="training step", type="category", tickangle=-45)
    fig.update_yaxes(title="increment (px)", type="category", row=1, col=1)
    fig.update_yaxes(type="category", row=1, col=2)
    fig.update_layout(template=TEMPLATE, height=220 + 34 * len(incs) + 60,
                      title=dict(text="Phase diagram: increment × training step (letters: phase label)", x=0.5),
                      margin=dict(l=70, r=20, t=80, b=80))
    return fig


def _pair_name(key) -> str:
    if isinstance(key, tuple) and len(key) == 2:
        return f"dx = {key[0]:g}, dy = {key[1]:g}"
    return str(key)


def imbalanced_curves(tables: dict) -> go.Figure:
    """Fig. 5: for each imbalanced data set (rows), x (blue) against y (magenta) over training:
    accuracy, R² from UMAP, R² from raw activations. `tables` maps a pair (dx, dy) or a name to a
    metrics table or a list of them (seeds: thin lines, plus their mean when there are several)."""
    keys = list(tables)
    metrics_cols = [("accuracy", "accuracy_x", "accuracy_y"), ("R² (UMAP 3D)", "r2_x", "r2_y"),
                    ("R² (raw, CV)", "r2_x_raw", "r2_y_raw")]
    fig = make_subplots(rows=len(keys), cols=3, shared_xaxes=True, vertical_spacing=0.12 / max(1, len(keys) - 1) + 0.04,
                        horizontal_spacing=0.06,
                        subplot_titles=[f"{_pair_name(k)}: {m[0]}" for k in keys for m in metrics_cols])
    for r, key in enumerate(keys):
        group = tables[key]
        group = list(group) if isinstance(group, (list, tuple)) else [group]
        for c, (_, cx, cy) in enumerate(metrics_cols):
            for coord, colname in (("x", cx), ("y", cy)):
                colour = COORD_COLOURS[coord]
                for t in group:
                    fig.add_trace(go.Scatter(
                        x=t["step"], y=t[colname], mode="lines", legendgroup=coord,
                        name=f"{coord}" if len(group) == 1 else f"{coord} (one seed)",
                        showlegend=(r == 0 and c == 0 and t is group[0]),
                        line=dict(color=colour, width=2.5 if len(group) == 1 else 1,
                                  dash="solid" if coord == "x" else "dash"),
                        opacity=1.0 if len(group) == 1 else 0.45), row=r + 1, col=c + 1)
                if len(group) > 1:
                    import pandas as pd
                    mean = pd.concat([t.set_index("step")[colname] for t in group], axis=1).mean(axis=1)
                    fig.add_trace(go.Scatter(x=mean.index, y=mean.values, mode="lines", legendgroup=coord + "m",
                                             name=f"{coord}, mean of {len(group)} seeds",
                                             showlegend=(r == 0 and c == 0),
                                             line=dict(color=colour, width=3, dash="solid" if coord == "x" else "dash")),
                                  row=r + 1, col=c + 1)
            fig.update_yaxes(range=[-0.05 if c == 0 else -0.25, 1.03], row=r + 1, col=c + 1)
    fig.update_xaxes(title="training step", row=len(keys))
    fig.update_layout(template=TEMPLATE, height=140 + 300 * len(keys),
                      title=dict(text="Imbalanced data: is x learned before y? (blue: x, magenta dashed: y)", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
                      margin=dict(l=50, r=20, t=100, b=50))
    return fig


# ---------------------------------------------------------------------------------------------
# data figures (Figs. 1 and 2)
# ---------------------------------------------------------------------------------------------

def factorized_vs_coupled(N: int, sigma: float, centre=None) -> go.Figure:
    """Fig. 1: a bump as the product of an oval localised in x and one localised in y
    (factorized: learnable from ~2K examples) beside the same bump drawn directly (coupled: ~K²)."""
    from .data import render_bumps, render_factorized

    centre = (round(0.35 * N, 1), round(0.6 * N, 1)) if centre is None else centre
    x_oval, y_oval, product = render_factorized(centre, N, sigma)
    coupled = (render_bumps([centre], N, sigma)[0, 0].numpy() + 1) / 2
    panels = [("oval localised in x", x_oval), ("oval localised in y", y_oval),
              ("factorized: x-oval × y-oval", product), ("coupled: the bump itself", coupled)]
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.025, subplot_titles=[p[0] for p in panels])
    for k, (_, img) in enumerate(panels):
        fig.add_trace(_heatmap(to_uint8(np.asarray(img) * 2 - 1)), row=1, col=k + 1)
        fig.add_trace(_dot(centre[0], centre[1], showlegend=(k == 0)), row=1, col=k + 1)
    _image_axes(fig, N, 1, 4, tick_labels=True)
    K = N  # positions per axis at increment 1
    fig.update_layout(template=TEMPLATE, height=340, margin=dict(l=40, r=20, t=110, b=40),
                      title=dict(text=f"Two ways to make a bump at (x, y) = {centre}, σ = {sigma:g}, {N}×{N}: "
                                      f"factorized needs ~2K = {2 * K} examples, coupled ~K² = {K * K}", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.22))
    return fig


def example_images(config, n: int = 8, seed: int = 0) -> go.Figure:
    """Fig. 2: `n` training images drawn at random from the config's centre grid."""
    from .data import centre_grid, render_bumps

    centres = centre_grid(config.image_size, config.increment_x, config.increment_y)
    rng = np.random.default_rng(seed)
    pick = centres[rng.choice(len(centres), size=min(n, len(centres)), replace=False)]
    images = to_uint8(render_bumps(pick, config.image_size, config.sigma)[:, 0].numpy())
    cols = min(4, len(pick))
    titles = [f"(x, y) = ({x:g}, {y:g})" for x, y in pick]
    fig = _sample_subplots(images, pick, "", cols=cols, subplot_titles=titles)
    _image_axes(fig, config.image_size, math.ceil(len(pick) / cols), cols, tick_labels=True)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        width=cols * 190 + 80, height=math.ceil(len(pick) / cols) * 210 + 130,
        showlegend=False,  # the legend sat on the last subplot title; the title says what the dot is
        title=dict(text=f"Training images: {config.image_size}×{config.image_size}, σ = {config.sigma:g}, "
                        f"dx = {config.increment_x:g}, dy = {config.increment_y:g}: {len(centres):,} images "
                        f"(red dot: the bump's centre)", x=0.5))
    return fig


# ---------------------------------------------------------------------------------------------
# appendix
# ---------------------------------------------------------------------------------------------

def layer_r2_profile(run, step: int | None = None) -> go.Figure:
    """Cross-validated R² of x and y from each UNet block's raw activations at one checkpoint
    (default: the last); the block used as "the representation" is highlighted."""
    table = load_metrics(run)
    step = int(table["step"].iloc[-1]) if step is None else int(step)
    ev = load_evaluation(run, step)
    names = [str(n) for n in ev["layer_names"]]
    order = tap_layer_names(len(run.config.channel_mults))
    position = {n: i + 1 for i, n in enumerate(order)}
    ticks = [f"layer{position.get(n, '?')}<br>{n}" for n in names]
    r2 = np.asarray(ev["layer_r2_raw"], dtype=float)
    tap = resolve_tap(run.config.tap_layer, len(run.config.channel_mults))
    fig = go.Figure([go.Bar(x=ticks, y=np.round(r2[:, k], 3), name=f"R² {c}", marker_color=COORD_COLOURS[c])
                     for k, c in enumerate("xy")])
    if tap in names:
        i = names.index(tap)
        fig.add_vrect(x0=i - 0.5, x1=i + 0.5, fillcolor="#ffd54f", opacity=0.3, line_width=0, layer="below")
        fig.add_annotation(x=ticks[i], y=1.04, text=f"tapped: {run.config.tap_layer}", showarrow=False)
    phase = _row(table, step)["phase"]
    fig.update_layout(template=TEMPLATE, barmode="group", width=820, height=420,
                      title=dict(text=f"Raw-activation R² per UNet block (5-fold CV ridge) · step {step} · phase {phase}", x=0.5),
                      yaxis=dict(title="R²", range=[min(-0.1, float(np.nanmin(r2)) - 0.05), 1.1]),
                      xaxis_title="block (forward order)", margin=dict(l=60, r=20, t=70, b=60))
    return fig


def _describe_sample(count: int, centre, label) -> str:
    if count != 1:
        return f"{count} bumps"
    err = np.abs(np.asarray(centre) - np.asarray(label))
    if err[0] <= metrics.TOLERANCE_PX and err[1] <= metrics.TOLERANCE_PX:
        return "correct"
    return f"off by ({err[0]:.1f}, {err[1]:.1f}) px"


# the failure that defines each phase first: A wrong bump counts, B one misplaced bump; C's rare failures
_GALLERY_ORDER = {"A": ["count", "misplaced", "correct"], "B": ["misplaced", "count", "correct"],
                  "C": ["misplaced", "count", "correct"]}


def failure_gallery(run, per_phase: int = 6) -> go.Figure:
    """A few samples from the middle checkpoint of each phase, failures first (the phase's
    defining one first: A wrong number of bumps, B one misplaced bump), then correct ones; each
    titled with what went wrong."""
    table = load_metrics(run)
    chosen, titles = [], []
    for p in "ABC":
        steps = [int(s) for s in table.loc[table["phase"] == p, "step"]]
        if not steps:
            chosen.append((p, None, []))
            titles += [f"{p}: never reached" if k == 0 else "" for k in range(per_phase)]
            continue
        s = steps[len(steps) // 2]
        ev = load_evaluation(run, s)
        counts, centres, labels = ev["bump_count"], ev["centres"], ev["labels"]
        desc = [_describe_sample(int(counts[i]), centres[i], labels[i]) for i in range(len(labels))]
        kind = ["count" if counts[i] != 1 else ("correct" if d == "correct" else "misplaced")
                for i, d in enumerate(desc)]
        rank = [_GALLERY_ORDER[p].index(k) for k in kind]
        idx = sorted(range(len(labels)), key=lambda i: (rank[i], i))[:per_phase]
        chosen.append((p, s, idx, ev))
        titles += [f"{p} · step {s}: {desc[i]}" for i in idx] + [""] * (per_phase - len(idx))
    fig = make_subplots(rows=3, cols=per_phase, horizontal_spacing=0.015, vertical_spacing=0.09,
                        subplot_titles=titles)
    n_pixels = run.config.image_size
    legend_shown = False
    for r, item in enumerate(chosen):
        idx = item[2]
        for c in range(per_phase):
            if c < len(idx):
                ev, i = item[3], idx[c]
                fig.add_trace(_heatmap(to_uint8(ev["samples"][i])), row=r + 1, col=c + 1)
                fig.add_trace(_dot(ev["labels"][i, 0], ev["labels"][i, 1], showlegend=not legend_shown),
                              row=r + 1, col=c + 1)
                legend_shown = True
            else:
                fig.add_trace(go.Heatmap(z=[[None]], showscale=False, hoverinfo="skip"), row=r + 1, col=c + 1)
    _image_axes(fig, n_pixels, 3, per_phase)
    fig.update_annotations(font_size=10)
    for a in fig.layout.annotations:
        if a.text and a.text[0] in PHASE_COLOURS:
            a.font.color = PHASE_COLOURS[a.text[0]]
    fig.update_layout(template=TEMPLATE, width=per_phase * 150 + 60, height=3 * 175 + 120,
                      title=dict(text="What each phase gets wrong (one checkpoint per phase; red dot = requested position)", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.06),
                      margin=dict(l=20, r=20, t=100, b=20))
    return fig
