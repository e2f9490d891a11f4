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


def _runs(group) -> list:
    return list(group) if isinstance(group, (list, tuple)) else [group]


def phase_diagram(tables_by_increment: dict, annotate_phase: bool = True) -> go.Figure:
    """Fig. 4: accuracy and mean(r2_x, r2_y) as heatmaps over increment (rows) and training step
    (columns). Cells carry the phase letter. Missing checkpoints are blank. An increment may map
    to a list of tables (seeds): its cells show the mean over seeds, the hover the t interval,
    and the letters each seed's label ("BC": one seed in B, one in C) unless all agree."""
    from bumpdiff_core.measure.intervals import t_interval

    incs = sorted(tables_by_increment)
    groups = {inc: _runs(tables_by_increment[inc]) for inc in incs}
    steps = sorted({int(s) for g in groups.values() for t in g for s in t["step"]})
    col = {s: j for j, s in enumerate(steps)}
    acc = np.full((len(incs), len(steps)), np.nan)
    r2 = np.full_like(acc, np.nan)
    spread = np.full(acc.shape, "", dtype=object)
    phase = np.full(acc.shape, "", dtype=object)
    for i, inc in enumerate(incs):
        cells: dict[int, list] = {}
        for t in groups[inc]:
            for _, row in t.iterrows():
                cells.setdefault(col[int(row["step"])], []).append(
                    (row["accuracy"], np.nanmean([row["r2_x"], row["r2_y"]]), row["phase"]))
        for j, vals in cells.items():
            a, r, p = zip(*vals)
            acc[i, j], r2[i, j] = np.mean(a), np.mean(r)
            phase[i, j] = p[0] if len(set(p)) == 1 else "".join(p)
            if len(vals) > 1:
                _, lo, hi = t_interval(a)
                spread[i, j] = f"<br>{len(vals)} seeds, t interval [{lo:.2f}, {hi:.2f}]"
    n_seeds = max(len(g) for g in groups.values()) if groups else 1
    labels = [f"{inc:g}" for inc in incs]
    xs = [str(s) for s in steps]  # categorical: dense early checkpoints get as much room as late ones
    what = "" if n_seeds == 1 else f", mean of {n_seeds} seeds"
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=[f"(a) accuracy{what}", f"(b) R², mean of x and y (from 3D UMAP){what}"])
    for k, (z, name) in enumerate([(acc, "accuracy"), (r2, "mean R²")]):
        fig.add_trace(go.Heatmap(
            z=np.round(z, 3), x=xs, y=labels, zmin=0, zmax=1, colorscale=SCORE_SCALE, showscale=(k == 1),
            colorbar=dict(title=dict(text="score"), thickness=14), text=phase if annotate_phase else None,
            customdata=spread if k == 0 else None,
            texttemplate="%{text}" if annotate_phase else None, textfont=dict(size=9),
            hovertemplate=f"increment %{{y}}<br>step %{{x}}<br>{name} %{{z:.2f}}"
                          + ("%{customdata}" if k == 0 and n_seeds > 1 else "")
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
    the per-axis error of the brightest region (when measured; needs no single bump), accuracy,
    R² from UMAP, R² from raw activations. `tables` maps a pair (dx, dy) or a name to a metrics
    table or a list of them (seeds: thin lines, plus their mean with a t-interval band)."""
    from bumpdiff_core.claims.verdicts import DEFAULT, has_columns
    from .curves import band, mean_band

    keys = list(tables)
    groups = {k: _runs(tables[k]) for k in keys}
    metrics_cols = [("accuracy", "accuracy_x", "accuracy_y"), ("R² (UMAP 3D)", "r2_x", "r2_y"),
                    ("R² (raw, leave-one-out)", "r2_x_raw", "r2_y_raw")]
    if any(has_columns(t, "error_x", "error_y") for g in groups.values() for t in g):
        metrics_cols.insert(0, ("per-axis error (px, brightest region)", "error_x", "error_y"))
    fig = make_subplots(rows=len(keys), cols=len(metrics_cols), shared_xaxes=True,
                        vertical_spacing=0.12 / max(1, len(keys) - 1) + 0.04, horizontal_spacing=0.06,
                        subplot_titles=[f"{_pair_name(k)}: {m[0]}" for k in keys for m in metrics_cols])
    for r, key in enumerate(keys):
        group = groups[key]
        for c, (_, cx, cy) in enumerate(metrics_cols):
            for coord, colname in (("x", cx), ("y", cy)):
                colour = COORD_COLOURS[coord]
                have = [t for t in group if has_columns(t, colname)]
                for t in have:
                    fig.add_trace(go.Scatter(
                        x=t["step"], y=t[colname], mode="lines", legendgroup=coord,
                        name=f"{coord}" if len(group) == 1 else f"{coord} (one seed)",
                        showlegend=(r == 0 and c == 0 and t is have[0]),
                        line=dict(color=colour, width=2.5 if len(group) == 1 else 1,
                                  dash="solid" if coord == "x" else "dash"),
                        opacity=1.0 if len(group) == 1 else 0.45), row=r + 1, col=c + 1)
                if len(have) > 1:
                    steps, mean, low, high = mean_band(have, colname)
                    fig.add_trace(band(steps, low, high, colour, f"{coord}: t {DEFAULT.level:.0%} interval over seeds",
                                       legendgroup=coord + "b", showlegend=(r == 0 and c == 0)), row=r + 1, col=c + 1)
                    fig.add_trace(go.Scatter(x=steps, y=mean, mode="lines", legendgroup=coord + "m",
                                             name=f"{coord}, mean of {len(have)} seeds",
                                             showlegend=(r == 0 and c == 0),
                                             line=dict(color=colour, width=3, dash="solid" if coord == "x" else "dash")),
                                  row=r + 1, col=c + 1)
            if cx == "error_x":
                fig.add_hline(y=DEFAULT.error_px, line=dict(color="#777", dash="dot", width=1), row=r + 1, col=c + 1)
                fig.update_yaxes(type="log", row=r + 1, col=c + 1)
            else:
                fig.update_yaxes(range=[-0.05 if c == 0 else -0.25, 1.03], row=r + 1, col=c + 1)
    fig.update_xaxes(title="training step", row=len(keys))
    fig.update_layout(template=TEMPLATE, height=140 + 300 * len(keys), width=300 * len(metrics_cols) + 160,
                      title=dict(text="Imbalanced data: is x learned before y? (blue: x, magenta dashed: y)", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.02, yanchor="bottom"),
                      margin=dict(l=50, r=20, t=100, b=50))
    return fig


def phase_measures_figure(summary: pd.DataFrame, measures=("intrinsic_dim", "knn_r2", "umap_r2", "raw_r2")) -> go.Figure:
    """The representation measures by phase (`analysis.phase_measures`): one panel per measure,
    A, B and C side by side, each a mean with its interval as an error bar (phase colours). The
    intrinsic-dimension panel carries the 2D reference line and tolerance the verdicts use; a
    measure not in the runs is named in its panel."""
    from bumpdiff_core.claims.verdicts import DEFAULT
    from .common import PHASE_COLOURS

    measures = [m for m in measures if m in set(summary["measure"])]
    names = [summary.loc[summary["measure"] == m, "name"].iloc[0] for m in measures]
    fig = make_subplots(rows=1, cols=max(1, len(measures)), horizontal_spacing=0.07, subplot_titles=names)
    for c, m in enumerate(measures, start=1):
        s = summary[summary["measure"] == m].set_index("phase").reindex(list("ABC"))
        mean = s["mean"].to_numpy(float)
        if not np.isfinite(mean).any():
            fig.add_annotation(text="not measured", showarrow=False, x=0.5, y=0.5,
                               xref=f"x{'' if c == 1 else c} domain", yref=f"y{'' if c == 1 else c} domain",
                               font=dict(color="#888"))
            continue
        low, high = s["low"].to_numpy(float), s["high"].to_numpy(float)
        fig.add_trace(go.Bar(
            x=list("ABC"), y=np.round(mean, 3), marker_color=[PHASE_COLOURS[p] for p in "ABC"], showlegend=False,
            error_y=dict(type="data", symmetric=False, array=np.nan_to_num(high - mean),
                         arrayminus=np.nan_to_num(mean - low), color="#333", thickness=1.5),
            customdata=np.stack([low, high, s["how"].fillna("").to_numpy()], axis=1),
            hovertemplate="phase %{x}: %{y:.2f} [%{customdata[0]:.2f}, %{customdata[1]:.2f}]"
                          "<br>%{customdata[2]}<extra></extra>"), row=1, col=c)
        if m == "intrinsic_dim":
            fig.add_hrect(y0=DEFAULT.sheet_dim - DEFAULT.dim_tolerance, y1=DEFAULT.sheet_dim + DEFAULT.dim_tolerance,
                          fillcolor="#6a3d9a", opacity=0.1, line_width=0, row=1, col=c)
            fig.add_hline(y=DEFAULT.sheet_dim, line=dict(color="#6a3d9a", dash="dash", width=1), row=1, col=c)
        else:
            fig.add_hline(y=DEFAULT.r2_level, line=dict(color="#777", dash="dot", width=1), row=1, col=c)
    fig.update_xaxes(title="phase")
    fig.update_layout(template=TEMPLATE, height=380, width=max(420, 260 * len(measures)),
                      title=dict(text=f"The representation in each phase: mean with {DEFAULT.level:.0%} interval "
                                      f"(dashed: a 2D sheet, {DEFAULT.sheet_dim:g}; dotted: the order level "
                                      f"{DEFAULT.r2_level:g})", x=0.5),
                      margin=dict(l=50, r=20, t=90, b=50))
    return fig


def factorized_vs_coupled(N: int, sigma: float, centre=None) -> go.Figure:
    """Fig. 1: a bump as the product of an oval localised in x and one localised in y
    (factorized: learnable from ~2K examples) beside the same bump drawn directly (coupled: ~K²)."""
    from bumpdiff_core.learn.data import render_bumps, render_factorized

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
    from bumpdiff_core.learn.data import centre_grid, render_bumps

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
