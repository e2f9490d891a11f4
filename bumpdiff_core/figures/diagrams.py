"""Figures across runs and of the data: the phase diagram (Fig. 4), x against y on imbalanced
data (Fig. 5), a bump built two ways (Fig. 1) and training images (Fig. 2). They take metrics
tables or a config; none reads a file."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COORD_COLOURS, SCORE_SCALE, TEMPLATE
from .images import dot, heatmap, image_axes, sample_subplots, to_uint8


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
                    ("R² (raw, leave-one-out)", "r2_x_raw", "r2_y_raw")]
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


def factorized_vs_coupled(N: int, sigma: float, centre=None) -> go.Figure:
    """Fig. 1: a bump as the product of an oval localised in x and one localised in y
    (factorized: learnable from ~2K examples) beside the same bump drawn directly (coupled: ~K²)."""
    from ..data import render_bumps, render_factorized

    centre = (round(0.35 * N, 1), round(0.6 * N, 1)) if centre is None else centre
    x_oval, y_oval, product = render_factorized(centre, N, sigma)
    coupled = (render_bumps([centre], N, sigma)[0, 0].numpy() + 1) / 2
    panels = [("oval localised in x", x_oval), ("oval localised in y", y_oval),
              ("factorized: x-oval × y-oval", product), ("coupled: the bump itself", coupled)]
    fig = make_subplots(rows=1, cols=4, horizontal_spacing=0.025, subplot_titles=[p[0] for p in panels])
    for k, (_, img) in enumerate(panels):
        fig.add_trace(heatmap(to_uint8(np.asarray(img) * 2 - 1)), row=1, col=k + 1)
        fig.add_trace(dot(centre[0], centre[1], showlegend=(k == 0)), row=1, col=k + 1)
    image_axes(fig, N, 1, 4, tick_labels=True)
    K = N  # positions per axis at increment 1
    fig.update_layout(template=TEMPLATE, height=340, margin=dict(l=40, r=20, t=110, b=40),
                      title=dict(text=f"Two ways to make a bump at (x, y) = {centre}, σ = {sigma:g}, {N}×{N}: "
                                      f"factorized needs ~2K = {2 * K} examples, coupled ~K² = {K * K}", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.22))
    return fig


def example_images(config, n: int = 8, seed: int = 0) -> go.Figure:
    """Fig. 2: `n` training images drawn at random from the config's centre grid."""
    from ..data import centre_grid, render_bumps

    centres = centre_grid(config.image_size, config.increment_x, config.increment_y)
    rng = np.random.default_rng(seed)
    pick = centres[rng.choice(len(centres), size=min(n, len(centres)), replace=False)]
    images = to_uint8(render_bumps(pick, config.image_size, config.sigma)[:, 0].numpy())
    cols = min(4, len(pick))
    titles = [f"(x, y) = ({x:g}, {y:g})" for x, y in pick]
    fig = sample_subplots(images, pick, "", cols=cols, subplot_titles=titles)
    image_axes(fig, config.image_size, math.ceil(len(pick) / cols), cols, tick_labels=True)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        width=cols * 190 + 80, height=math.ceil(len(pick) / cols) * 210 + 130,
        showlegend=False,  # the legend sat on the last subplot title; the title says what the dot is
        title=dict(text=f"Training images: {config.image_size}×{config.image_size}, σ = {config.sigma:g}, "
                        f"dx = {config.increment_x:g}, dy = {config.increment_y:g}: {len(centres):,} images "
                        f"(red dot: the bump's centre)", x=0.5))
    return fig
