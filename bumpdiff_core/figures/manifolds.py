"""The representation's shape: the 3D UMAP of the tapped layer, one frame per checkpoint, and
Fig. 3 (one panel per phase). Builders take a `view.RunView` and read nothing from disk."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import (DOT_COLOUR, GRAY_SCALE, PHASE_COLOURS, POSITION_SCALE, TEMPLATE, coords,
                     manifold_title, play_buttons, step_slider)
from .images import grid_shape, mosaic, to_uint8


def scene_ranges(embeddings) -> dict:
    """Axis ranges of a 3D scene holding every frame of `embeddings` (UMAP units: no tick labels)."""
    pts = np.concatenate(embeddings)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo) + 1e-6
    return {f"{a}axis": dict(range=[float(lo[i] - pad[i]), float(hi[i] + pad[i])], title=f"UMAP {i + 1}",
                             showticklabels=False) for i, a in enumerate("xyz")}


def manifold_trace(points, labels, coord: str, n_pixels: int, visible=True, showscale=True) -> go.Scatter3d:
    """3D points coloured by the true `coord` ("x" or "y") of their labels."""
    k = 0 if coord == "x" else 1
    pts = coords(points)
    return go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=f"coloured by true {coord}",
        visible=visible, showlegend=False, customdata=coords(labels),
        marker=dict(size=3.5, color=coords(labels[:, k]), colorscale=POSITION_SCALE, cmin=0,
                    cmax=n_pixels - 1, showscale=showscale,
                    colorbar=dict(title=dict(text=f"true {coord} (px)"), thickness=14, len=0.7)),
        hovertemplate="true x %{customdata[0]}, y %{customdata[1]}<extra></extra>")


def manifold_scrubber(view, color: str = "x") -> go.Figure:
    """3D UMAP of the tapped layer, one frame per checkpoint, coloured by true x (buttons switch
    to y). Frames are Procrustes-aligned to their neighbours so the slider shows the sheet
    forming rather than UMAP's arbitrary rotations. Opens at the last checkpoint."""
    if color not in ("x", "y"):
        raise ValueError(f"color must be 'x' or 'y'; got {color!r}")
    steps, aligned = view.steps, view.aligned_embeddings
    labels = view.evaluation(steps[-1]).labels
    n_pixels = view.image_size
    fig = go.Figure([manifold_trace(aligned[-1], labels, c, n_pixels, visible=(c == color)) for c in ("x", "y")])
    frames = []
    for s, pts in zip(steps, aligned):
        p = coords(pts)
        frames.append(go.Frame(name=str(s), traces=[0, 1],
                               data=[go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2])] * 2,
                               layout=dict(title=dict(text=manifold_title(s, view.row(s))))))
    fig.frames = frames
    colour_menu = dict(type="buttons", direction="left", x=1.0, xanchor="right", y=1.08, yanchor="bottom",
                       active=0 if color == "x" else 1,
                       buttons=[dict(label=f"colour by true {c}", method="restyle",
                                     args=[{"visible": [c == "x", c == "y"]}]) for c in ("x", "y")])
    fig.update_layout(
        template=TEMPLATE, width=720, height=640, margin=dict(l=10, r=10, t=110, b=120),
        modebar=dict(orientation="v"),
        title=dict(text=manifold_title(steps[-1], view.row(steps[-1])), x=0.02, y=0.97),
        scene=dict(**scene_ranges(aligned), aspectmode="cube"),
        sliders=step_slider(steps, len(steps) - 1, 720), updatemenus=[play_buttons(), colour_menu],
        annotations=[dict(text=f"{view.config.tap_layer} ({view.tap}) activations, averaged over the sampling pass",
                          xref="paper", yref="paper", x=0.02, y=1.06, showarrow=False, xanchor="left",
                          font=dict(size=11, color="#555"))])
    return fig


def phase_panels(view, n: int = 25) -> go.Figure:
    """Fig. 3: for the first checkpoint of each phase, the samples (top) and the 3D UMAP
    coloured by true x (bottom). A phase the run never reached gets an empty panel that says so."""
    firsts = view.first_steps
    titles = []
    for p in "ABC":
        s = firsts[p]
        titles.append(f"<b>{p}</b>: never reached" if s is None else
                      f"<b>{p}</b> · step {s} · accuracy {view.row(s)['accuracy']:.2f}")
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
        ev = view.evaluation(s)
        m = min(n, len(ev.labels))
        _, cols = grid_shape(m)
        z, dx, dy = mosaic(to_uint8(ev.samples[:m]), ev.labels[:m], cols)
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=255, colorscale=GRAY_SCALE, showscale=False,
                                 hoverinfo="skip"), row=1, col=col)
        fig.add_trace(go.Scatter(x=coords(dx), y=coords(dy), mode="markers", showlegend=(k == 0),
                                 name="requested (x, y)", customdata=coords(ev.labels[:m]),
                                 marker=dict(color=DOT_COLOUR, size=5),
                                 hovertemplate="requested x %{customdata[0]}, y %{customdata[1]}<extra></extra>"),
                      row=1, col=col)
        fig.add_trace(manifold_trace(ev.embedding, ev.labels, "x", view.image_size, showscale=(k == 2)),
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
