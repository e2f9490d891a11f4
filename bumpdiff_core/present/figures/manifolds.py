"""The representation's shape: the 3D UMAP of the tapped layer, one frame per checkpoint, and
Fig. 3 (one panel per phase). Builders take a `view.RunView` and read nothing from disk.

Linked views: every manifold point carries `point_customdata` (the label, its index, and what its
sample shows), its hover text says whether that sample was accurate (`metrics.placement`, through
`samples.describe_samples`), and `manifold_scrubber` has a sample panel beside the 3D scene. In the
book, a click on a point draws that label's sample there: `book/_offline_static/bumpdiff_click.js`
reads the samples' pixels from `layout.meta["bumpdiff_samples"]` (one base64 uint8 block per
checkpoint). The live `widgets.Scrubber` draws the same panel with `sample_panel`.
"""
from __future__ import annotations

import base64
import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import (DOT_COLOUR, GRAY_SCALE, PHASE_COLOURS, POSITION_SCALE, TEMPLATE, coords,
                     manifold_title, play_buttons, step_slider)
from .images import grid_shape, mosaic, to_uint8
from .samples import describe_samples

# customdata columns of a manifold point (the click script in book/_offline_static reads them by position)
POINT_FIELDS = ["x", "y", "label_index", "bump_count", "accurate", "centre_x", "centre_y", "step"]
DETECTED_COLOUR = "#00c8ff"
HIGHLIGHT_COLOUR = "#ff1a1a"
COLOUR_BY = {"x": "true x", "y": "true y", "error": "position error"}
ERROR_CAP_PX = 4.0  # colour scale top: errors beyond it, and samples without exactly one bump


def _finite_or_none(v):
    v = float(v)
    return None if math.isnan(v) else round(v, 3)


def point_words(ev) -> list[str]:
    """Per label of an evaluation: whether its sample was accurate, and if not, why (hover text)."""
    return ["accurate" if kind == "correct" else f"not accurate: {words}"
            for kind, words in describe_samples(ev.bump_count, ev.centres, ev.labels)]


def point_customdata(ev) -> list[list]:
    """Per label: `POINT_FIELDS` (label x, y, index, bump count, accurate 0/1, detected centre or
    None, step), plain lists so a page's script reads them without decoding."""
    correct = np.asarray(ev.correct)
    return [[_finite_or_none(lab[0]), _finite_or_none(lab[1]), i, int(ev.bump_count[i]), int(correct[i]),
             _finite_or_none(ev.centres[i][0]), _finite_or_none(ev.centres[i][1]), int(ev.step)]
            for i, lab in enumerate(np.asarray(ev.labels, dtype=np.float64))]


POINT_HOVER = ("label %{customdata[2]}: requested x %{customdata[0]}, y %{customdata[1]}"
               "<br>%{text}<extra></extra>")


def position_error(ev) -> np.ndarray:
    """(n,) distance in px from the detected centre to the requested one; NaN unless one bump."""
    err = np.asarray(ev.centres, dtype=np.float64) - np.asarray(ev.labels, dtype=np.float64)
    return np.hypot(err[:, 0], err[:, 1])


def colour_spec(ev, by: str, n_pixels: int) -> dict:
    """Marker colours of a manifold coloured `by` "x", "y" (true coordinate) or "error" (position
    error, capped at `ERROR_CAP_PX`; a sample without exactly one bump counts as the cap)."""
    if by not in COLOUR_BY:
        raise ValueError(f"colour by one of {sorted(COLOUR_BY)}; got {by!r}")
    if by == "error":
        err = position_error(ev)
        values = np.where(np.isnan(err), ERROR_CAP_PX, np.minimum(err, ERROR_CAP_PX))
        return dict(color=coords(values), cmin=0, cmax=ERROR_CAP_PX, colorscale="Plasma",
                    title=f"position error (px; ≥ {ERROR_CAP_PX:g} or not one bump = {ERROR_CAP_PX:g})")
    k = 0 if by == "x" else 1
    return dict(color=coords(np.asarray(ev.labels)[:, k]), cmin=0, cmax=n_pixels - 1, colorscale=POSITION_SCALE,
                title=f"true {by} (px)")


def sample_caption(ev, i: int) -> str:
    """What the sample panel says about label `i` of evaluation `ev` (HTML)."""
    lab = np.asarray(ev.labels, dtype=np.float64)[i]
    count, centre = int(ev.bump_count[i]), np.asarray(ev.centres, dtype=np.float64)[i]
    detected = "none" if np.isnan(centre).any() else f"({centre[0]:.1f}, {centre[1]:.1f})"
    verdict = "accurate" if bool(np.asarray(ev.correct)[i]) else "not accurate"
    return (f"label {i} at step {ev.step}: requested ({lab[0]:g}, {lab[1]:g})<br>detected {detected} · "
            f"{count} bump{'s' if count != 1 else ''} · {verdict}")


def sample_panel_traces(ev, i: int, xaxis: str = "x", yaxis: str = "y") -> list:
    """The sample of label `i` as a grey heatmap, a red dot at the requested centre and a cyan
    cross at the detected one (empty when the sample has not exactly one bump)."""
    img = to_uint8(ev.samples[i])
    lab = np.asarray(ev.labels, dtype=np.float64)[i]
    centre = np.asarray(ev.centres, dtype=np.float64)[i]
    have = not np.isnan(centre).any()
    return [
        go.Heatmap(z=img, zmin=0, zmax=255, colorscale=GRAY_SCALE, showscale=False, xaxis=xaxis, yaxis=yaxis,
                   name="sample", hovertemplate="x %{x} px, y %{y} px<br>brightness %{z}/255<extra></extra>"),
        go.Scatter(x=[float(lab[0])], y=[float(lab[1])], mode="markers", xaxis=xaxis, yaxis=yaxis,
                   name="requested (x, y)", showlegend=False,
                   marker=dict(color=DOT_COLOUR, size=11, line=dict(color="white", width=1)),
                   hovertemplate="requested x %{x}, y %{y}<extra></extra>"),
        go.Scatter(x=[float(centre[0])] if have else [], y=[float(centre[1])] if have else [], mode="markers",
                   xaxis=xaxis, yaxis=yaxis, name="detected centre", showlegend=False,
                   marker=dict(color=DETECTED_COLOUR, size=13, symbol="x-thin", line=dict(color=DETECTED_COLOUR, width=3)),
                   hovertemplate="detected x %{x:.2f}, y %{y:.2f}<extra></extra>"),
    ]


def sample_panel_axes(n_pixels: int, domain_x=(0.0, 1.0), domain_y=(0.0, 1.0), anchor: str = "x") -> tuple[dict, dict]:
    """(xaxis, yaxis) layout of a square sample panel: pixel coordinates, y downwards."""
    frame = dict(showgrid=False, zeroline=False, showline=True, mirror=True, linecolor="#9e9e9e",
                 constrain="domain", ticks="outside", dtick=max(1, n_pixels // 4))
    return (dict(domain=list(domain_x), range=[-0.5, n_pixels - 0.5], title=dict(text="x (px)"), **frame),
            dict(domain=list(domain_y), range=[n_pixels - 0.5, -0.5], scaleanchor=anchor, title=dict(text="y (px)"),
                 **frame))


def sample_figure(ev, i: int, n_pixels: int, size: int = 340) -> go.Figure:
    """One sample, large: the live scrubber's sample panel (`sample_panel_traces`), titled by
    `sample_caption`."""
    fig = go.Figure(sample_panel_traces(ev, i))
    xa, ya = sample_panel_axes(n_pixels)
    fig.update_layout(template=TEMPLATE, width=size, height=size + 70, xaxis=xa, yaxis=ya,
                      margin=dict(l=50, r=10, t=70, b=40),
                      title=dict(text=sample_caption(ev, i), x=0.5, xanchor="center", font=dict(size=12)))
    return fig


def samples_meta(view, steps) -> dict:
    """Every label's sample at every checkpoint in `steps`, for the book's click script: one
    base64 block of uint8 pixels (n, N, N) per checkpoint."""
    return dict(size=view.image_size, steps=[int(s) for s in steps],
                pixels=[base64.b64encode(np.ascontiguousarray(to_uint8(view.evaluation(s).samples)).tobytes()).decode()
                        for s in steps])


def scene_ranges(embeddings) -> dict:
    """Axis ranges of a 3D scene holding every frame of `embeddings` (UMAP units: no tick labels)."""
    pts = np.concatenate(embeddings)
    lo, hi = pts.min(0), pts.max(0)
    pad = 0.05 * (hi - lo) + 1e-6
    return {f"{a}axis": dict(range=[float(lo[i] - pad[i]), float(hi[i] + pad[i])], title=f"UMAP {i + 1}",
                             showticklabels=False) for i, a in enumerate("xyz")}


def manifold_trace(points, labels, coord: str, n_pixels: int, visible=True, showscale=True, ev=None,
                   colorbar_x: float | None = None) -> go.Scatter3d:
    """3D points coloured by the true `coord` ("x" or "y") of their labels. With `ev` (the
    checkpoint's `view.Evaluation`) each point carries `point_customdata` and hover text saying
    whether its sample was accurate; without, just its label."""
    k = 0 if coord == "x" else 1
    pts = coords(points)
    linked = dict(customdata=point_customdata(ev), text=point_words(ev), hovertemplate=POINT_HOVER) if ev is not None \
        else dict(customdata=coords(labels), hovertemplate="true x %{customdata[0]}, y %{customdata[1]}<extra></extra>")
    return go.Scatter3d(
        x=pts[:, 0], y=pts[:, 1], z=pts[:, 2], mode="markers", name=f"coloured by true {coord}",
        visible=visible, showlegend=False,
        marker=dict(size=3.5, color=coords(labels[:, k]), colorscale=POSITION_SCALE, cmin=0,
                    cmax=n_pixels - 1, showscale=showscale,
                    colorbar=dict(title=dict(text=f"true {coord} (px)"), thickness=14, len=0.7,
                                  **({} if colorbar_x is None else dict(x=colorbar_x)))),
        **linked)


SCENE_RIGHT = 0.6   # manifold_scrubber: the 3D scene's share of the width; the sample panel takes the rest


def manifold_scrubber(view, color: str = "x") -> go.Figure:
    """3D UMAP of the tapped layer, one frame per checkpoint, coloured by true x (buttons switch
    to y). Frames are Procrustes-aligned to their neighbours so the slider shows the sheet
    forming rather than UMAP's arbitrary rotations. Opens at the last checkpoint.

    Beside the scene, a sample panel (traces 2-4: `sample_panel_traces`) shows one label's sample
    with its requested (red) and detected (cyan) centre; in the book a click on a point shows that
    label's sample there (book/_offline_static/bumpdiff_click.js, reading `layout.meta`). Each
    point's hover text names its label and whether its sample was accurate at that checkpoint."""
    if color not in ("x", "y"):
        raise ValueError(f"color must be 'x' or 'y'; got {color!r}")
    steps, aligned = view.steps, view.aligned_embeddings
    last = view.evaluation(steps[-1])
    labels = last.labels
    n_pixels = view.image_size
    fig = go.Figure([manifold_trace(aligned[-1], labels, c, n_pixels, visible=(c == color), ev=last,
                                    colorbar_x=SCENE_RIGHT) for c in ("x", "y")])
    fig.add_traces(sample_panel_traces(last, 0))
    frames = []
    for s, pts in zip(steps, aligned):
        p, ev = coords(pts), view.evaluation(s)
        frame_trace = go.Scatter3d(x=p[:, 0], y=p[:, 1], z=p[:, 2], customdata=point_customdata(ev),
                                   text=point_words(ev))
        frames.append(go.Frame(name=str(s), traces=[0, 1], data=[frame_trace] * 2,
                               layout=dict(title=dict(text=manifold_title(s, view.row(s))))))
    fig.frames = frames
    colour_menu = dict(type="buttons", direction="left", x=SCENE_RIGHT, xanchor="right", y=1.08, yanchor="bottom",
                       active=0 if color == "x" else 1,
                       buttons=[dict(label=f"colour by true {c}", method="restyle",
                                     args=[{"visible": [c == "x", c == "y"]}, [0, 1]]) for c in ("x", "y")])
    xa, ya = sample_panel_axes(n_pixels, domain_x=(SCENE_RIGHT + 0.1, 1.0), domain_y=(0.12, 0.82))
    width = 940  # fits the page column beside the navigation at a 1280 px window
    fig.update_layout(
        template=TEMPLATE, width=width, height=640, margin=dict(l=10, r=10, t=110, b=120),
        modebar=dict(orientation="v"),
        title=dict(text=manifold_title(steps[-1], view.row(steps[-1])), x=0.02, y=0.97),
        scene=dict(**scene_ranges(aligned), aspectmode="cube", domain=dict(x=[0, SCENE_RIGHT], y=[0, 1])),
        xaxis=xa, yaxis=ya,
        sliders=step_slider(steps, len(steps) - 1, width), updatemenus=[play_buttons(), colour_menu],
        annotations=[dict(text=f"{view.config.tap_layer} ({view.tap}) activations, averaged over the sampling pass",
                          xref="paper", yref="paper", x=0.02, y=1.06, showarrow=False, xanchor="left",
                          font=dict(size=11, color="#555")),
                     dict(text="<b>click a point</b> to see its sample here<br>" + sample_caption(last, 0),
                          xref="paper", yref="paper", x=(SCENE_RIGHT + 0.1 + 1.0) / 2, y=0.84, yanchor="bottom",
                          showarrow=False, font=dict(size=12), name="sample caption")],
        # for the click script: where the samples are, which traces and annotation it updates
        meta=dict(bumpdiff_samples=dict(samples_meta(view, steps), heatmap=2, requested=3, detected=4,
                                        caption=1, fields=POINT_FIELDS)))
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
        fig.add_trace(manifold_trace(ev.embedding, ev.labels, "x", view.image_size, showscale=(k == 2), ev=ev),
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
