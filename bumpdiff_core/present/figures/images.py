"""Images as plotly heatmaps: pixel coordinates, x = column (left to right), y = row (downwards),
red dots at the requested (ground-truth) centre. Samples travel as uint8 (a quarter of float32)."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import DOT_COLOUR, GRAY_SCALE, TEMPLATE, coords


def to_uint8(images) -> np.ndarray:
    """[-1, 1] images -> uint8 brightness 0..255 (a quarter of the bytes of float32)."""
    v = (np.asarray(images, dtype=np.float32) + 1.0) * 127.5
    return np.clip(np.rint(v), 0, 255).astype(np.uint8)


def grid_shape(n: int) -> tuple[int, int]:
    """(rows, columns) of the squarest grid holding `n` panels."""
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def heatmap(image_u8, showscale=False, **kw) -> go.Heatmap:
    """One uint8 image in pixel coordinates, grey scale."""
    n = image_u8.shape[-1]
    return go.Heatmap(z=image_u8, x=np.arange(n), y=np.arange(n), zmin=0, zmax=255,
                      colorscale=GRAY_SCALE, showscale=showscale,
                      hovertemplate="x %{x} px, y %{y} px<br>brightness %{z}/255<extra></extra>", **kw)


def dot(x, y, name="requested (x, y)", showlegend=False, hovertext=None) -> go.Scatter:
    """Red marker(s) at requested positions."""
    return go.Scatter(x=np.atleast_1d(coords(x)), y=np.atleast_1d(coords(y)), mode="markers",
                      marker=dict(color=DOT_COLOUR, size=6, line=dict(color="white", width=0.5)),
                      name=name, showlegend=showlegend, hovertext=hovertext,
                      hovertemplate="requested x %{x}, y %{y}<extra></extra>" if hovertext is None else None)


def image_axes(fig, n_pixels: int, rows: int, cols: int, tick_labels: bool = False) -> None:
    """Square pixels, y downwards, every panel showing the whole N x N canvas."""
    for i in range(rows * cols):
        sx = "" if i == 0 else str(i + 1)
        frame = dict(showgrid=False, zeroline=False, showticklabels=tick_labels, constrain="domain",
                     showline=True, mirror=True, linecolor="#9e9e9e", linewidth=1)  # white bumps on white paper
        fig.layout[f"xaxis{sx}"].update(range=[-0.5, n_pixels - 0.5], **frame)
        fig.layout[f"yaxis{sx}"].update(range=[n_pixels - 0.5, -0.5], scaleanchor=f"x{sx}", **frame)


def pixel_axis_notes(fig, n_pixels: int) -> None:
    fig.add_annotation(text=f"x = column, 0 … {n_pixels - 1} px →", xref="paper", yref="paper",
                       x=0.5, y=-0.02, yanchor="top", showarrow=False, font=dict(size=11))
    fig.add_annotation(text=f"y = row, 0 … {n_pixels - 1} px →", xref="paper", yref="paper",
                       x=-0.02, y=0.5, textangle=90, xanchor="right", showarrow=False, font=dict(size=11))


def sample_subplots(images_u8, labels, title: str, cols: int | None = None, subplot_titles=None) -> go.Figure:
    """Grid of heatmaps (one per sample) with red dots. Trace order: all heatmaps, then all dots
    (`widgets.Scrubber` relies on it)."""
    n = len(images_u8)
    rows, cols = grid_shape(n) if cols is None else (math.ceil(n / cols), cols)
    n_pixels = images_u8.shape[-1]
    gap = 0.02
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=gap, vertical_spacing=gap * 1.2
                        if subplot_titles is None else 0.06, subplot_titles=subplot_titles)
    for i in range(n):
        fig.add_trace(heatmap(images_u8[i]), row=i // cols + 1, col=i % cols + 1)
    for i in range(n):
        fig.add_trace(dot(labels[i, 0], labels[i, 1], showlegend=(i == 0)), row=i // cols + 1, col=i % cols + 1)
    image_axes(fig, n_pixels, rows, cols)
    pixel_axis_notes(fig, n_pixels)
    side = 112 if cols <= 5 else 90
    fig.update_layout(template=TEMPLATE, title=dict(text=title, x=0.5, xanchor="center"),
                      width=cols * side + 90, height=rows * side + 140 + (20 * rows if subplot_titles else 0),
                      margin=dict(l=50, r=20, t=80, b=50),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.0, yanchor="bottom"))
    return fig


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
