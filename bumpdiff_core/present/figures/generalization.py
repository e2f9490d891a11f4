"""Figures of compositional generalization and data scaling (the efficiency page): training-set
designs as K×K maps, seen vs unseen accuracy over training beside the memoriser baseline, the
per-position accuracy map with the training positions marked, and M*(K) log-log with slope-1 and
slope-2 guides. Builders take run views (`view.RunView`), configs or arrays; none reads a file.

Every figure that shows unseen accuracy also shows the memoriser (a model that draws the nearest
training image), scored by the same rule on the same positions: unseen accuracy means something
only where it beats that line.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COORD_COLOURS, SCORE_SCALE, TEMPLATE

SEEN_COLOUR, UNSEEN_COLOUR, MEMORISER_COLOUR = "#2ca02c", COORD_COLOURS["y"], "#7f7f7f"
PALETTE = ("#d62728", "#9467bd", "#1f77b4", "#17becf", "#ff7f0e", "#2ca02c")  # one colour per design · model


def _mask_of(item) -> np.ndarray:
    """A boolean K_y×K_x training mask from a mask, a config or a run view."""
    if isinstance(item, np.ndarray):
        return item.astype(bool)
    from bumpdiff_core.learn.data import training_mask

    return training_mask(getattr(item, "config", item))


def _grid(n: int, cols: int) -> tuple[int, int]:
    cols = max(1, min(cols, n))
    return int(math.ceil(n / cols)), cols


def _note(text: str) -> go.Figure:
    """An empty figure that says why it is empty (a page keeps its layout)."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(template=TEMPLATE, height=160, xaxis=dict(visible=False), yaxis=dict(visible=False))
    return fig


def design_maps(designs: dict, cols: int = 3) -> go.Figure:
    """One K×K panel per design ({title: mask, config or RunView}): trained positions filled,
    positions at >= 2 px from every training position ("unseen", scored) marked lighter."""
    from bumpdiff_core.measure.generalization import n_unseen, unseen_mask

    # a full grid has nothing unseen to show (the Fig. 5 control run among the efficiency runs)
    designs = {t: d for t, d in designs.items() if getattr(getattr(d, "config", d), "design", None) != "grid"}
    if not designs:
        return _note("No training-set design other than the full grid here.")
    titles = list(designs)
    rows, cols = _grid(len(titles), cols)
    masks = [_mask_of(designs[t]) for t in titles]
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.06, vertical_spacing=0.12,
                        subplot_titles=[f"{t}<br>{m.sum()} trained, {n_unseen(m)} unseen" for t, m in zip(titles, masks)])
    for i, mask in enumerate(masks):
        unseen = unseen_mask(mask)
        z = np.where(mask, 2, np.where(unseen, 1, 0))
        text = np.where(mask, "trained", np.where(unseen, "unseen (scored)", "near a trained position"))
        r, c = divmod(i, cols)
        fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=2, showscale=False, text=text,
                                 colorscale=[[0, "#f2f2f2"], [0.5, "#f7c6dd"], [1, "#1f3b73"]],
                                 hovertemplate="x %{x}, y %{y}: %{text}<extra></extra>", xgap=1, ygap=1),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title="x (px)", row=r + 1, col=c + 1)
        fig.update_yaxes(title="y (px)" if c == 0 else None, autorange="reversed", row=r + 1, col=c + 1)
    fig.update_layout(template=TEMPLATE, height=330 * rows + 60,
                      title=dict(text="Training-set designs (dark: trained; pink: unseen positions, ≥ 2 px from "
                                      "every trained one)", x=0.5), margin=dict(l=60, r=20, t=110, b=50))
    return fig


def _column(table: pd.DataFrame, name: str) -> np.ndarray:
    return table[name].to_numpy(float) if name in table.columns else np.full(len(table), np.nan)


def seen_unseen_curves(views: dict, cols: int = 2) -> go.Figure:
    """Per run ({title: RunView or metrics table}): accuracy on training positions (seen) and on
    unseen positions over training, the unseen Wilson band, and the memoriser's unseen accuracy."""
    titles = list(views)
    rows, cols = _grid(len(titles), cols)
    fig = make_subplots(rows=rows, cols=cols, shared_yaxes=True, horizontal_spacing=0.06,
                        vertical_spacing=0.14, subplot_titles=titles)
    for i, title in enumerate(titles):
        table = getattr(views[title], "table", views[title])
        steps = table["step"].to_numpy(float)
        seen = _column(table, "accuracy_seen")
        seen = np.where(np.isfinite(seen), seen, _column(table, "accuracy"))
        unseen, low, high = (_column(table, c) for c in ("accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high"))
        memo = _column(table, "memoriser_unseen")
        n = _column(table, "n_unseen")
        r, c = divmod(i, cols)
        first = i == 0
        if np.isfinite(low).any():
            fig.add_trace(go.Scatter(x=np.r_[steps, steps[::-1]], y=np.r_[high, low[::-1]], fill="toself",
                                     fillcolor="rgba(194,24,91,0.15)", line=dict(width=0), hoverinfo="skip",
                                     name="unseen, 95 % Wilson", legendgroup="band", showlegend=first),
                          row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=steps, y=seen, mode="lines+markers", line=dict(color=SEEN_COLOUR),
                                 name="seen (training positions)", legendgroup="seen", showlegend=first,
                                 hovertemplate="step %{x}<br>seen accuracy %{y:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=steps, y=unseen, mode="lines+markers", line=dict(color=UNSEEN_COLOUR),
                                 name="unseen (≥ 2 px from training)", legendgroup="unseen", showlegend=first,
                                 customdata=np.stack([low, high, n], axis=1),
                                 hovertemplate="step %{x}<br>unseen accuracy %{y:.2f} [%{customdata[0]:.2f}, "
                                               "%{customdata[1]:.2f}]<br>%{customdata[2]:.0f} positions<extra></extra>"),
                      row=r + 1, col=c + 1)
        fig.add_trace(go.Scatter(x=steps, y=memo, mode="lines", line=dict(color=MEMORISER_COLOUR, dash="dot", width=2),
                                 name="memoriser (unseen)", legendgroup="memo", showlegend=first,
                                 hovertemplate="memoriser on the unseen positions: %{y:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
        fig.update_xaxes(title="training step", row=r + 1, col=c + 1)
        if c == 0:
            fig.update_yaxes(title="accuracy", row=r + 1, col=c + 1)
    fig.update_yaxes(range=[-0.03, 1.03])
    fig.update_layout(template=TEMPLATE, height=300 * rows + 130, hovermode="closest",
                      title=dict(text="Seen vs unseen accuracy over training, with the memoriser baseline", x=0.5),
                      legend=dict(orientation="h", y=-0.08 if rows > 1 else -0.2), margin=dict(l=60, r=20, t=90, b=80))
    return fig


def _position_parts(pm: dict):
    acc = np.asarray(pm.get("accuracy", pm.get("accuracy_map")), dtype=float)
    train = np.asarray(pm.get("training_mask", pm.get("training", np.zeros_like(acc))), dtype=bool)
    unseen = np.asarray(pm.get("unseen_mask", pm.get("unseen", np.zeros_like(acc))), dtype=bool)
    return acc, train, unseen


def position_maps(maps: dict, cols: int = 3) -> go.Figure:
    """Per run ({title: RunView or `position_map` dict}): accuracy at every grid position at the
    last checkpoint, training positions marked with dots, unseen positions with crosses. A run
    without a map (design=grid, or evaluated by older code) is left out."""
    def map_of(item):
        return item if isinstance(item, dict) else getattr(item, "position_map", item)

    maps = {t: item for t, item in maps.items() if map_of(item) is not None}
    if not maps:
        return _note("No run here has a per-position map (full-grid runs have no unseen positions).")
    titles = list(maps)
    rows, cols = _grid(len(titles), cols)
    fig = make_subplots(rows=rows, cols=cols, horizontal_spacing=0.07, vertical_spacing=0.14, subplot_titles=titles)
    for i, title in enumerate(titles):
        item = maps[title]
        pm = map_of(item)
        r, c = divmod(i, cols)
        acc, train, unseen = _position_parts(pm)
        fig.add_trace(go.Heatmap(z=np.round(acc, 3), zmin=0, zmax=1, colorscale=SCORE_SCALE, showscale=(i == 0),
                                 colorbar=dict(title=dict(text="accuracy"), thickness=12),
                                 hovertemplate="x %{x}, y %{y}<br>accuracy %{z:.2f}<extra></extra>"),
                      row=r + 1, col=c + 1)
        for mask, symbol, colour, name in ((train, "circle", "#ff1a1a", "training position"),
                                           (unseen, "x-thin-open", "#ffffff", "unseen position")):
            ys, xs = np.nonzero(mask)
            if len(xs):
                fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=name, legendgroup=name, showlegend=(i == 0),
                                         marker=dict(symbol=symbol, size=5, color=colour, line=dict(color=colour, width=1)),
                                         hovertemplate=f"{name} x %{{x}}, y %{{y}}<extra></extra>"),
                              row=r + 1, col=c + 1)
        fig.update_xaxes(title="x (px)", row=r + 1, col=c + 1)
        fig.update_yaxes(title="y (px)" if c == 0 else None, autorange="reversed", row=r + 1, col=c + 1)
    fig.update_layout(template=TEMPLATE, height=340 * rows + 110,
                      title=dict(text="Accuracy at every position, last checkpoint (red dots: trained; "
                                      "white crosses: unseen)", x=0.5),
                      legend=dict(orientation="h", y=-0.1), margin=dict(l=60, r=20, t=90, b=70))
    return fig


def m50_plot(fits: list) -> go.Figure:
    """M50(K) on log-log axes per model (`claims.scaling_fit.ScalingFit.to_dict()` each): the
    per-K M50 with its bootstrap interval, censored K values as open triangles at their bound
    (up: "M50 above the largest rung trained"; down: "at or below the smallest"), the joint fit's
    line with γ in the legend, and reference lines ∝ K (factorized) and ∝ K² (coupled) through
    the first model's smallest-K point."""
    fig = go.Figure()
    ks_all = sorted({int(k) for f in fits for k in f["m50_by_k"]}) or [8, 16]
    anchor = None
    for i, f in enumerate(fits):
        colour = PALETTE[i % len(PALETTE)]
        rows = sorted((int(k), v) for k, v in f["m50_by_k"].items())
        ok = [(k, v) for k, v in rows if v.get("m50") is not None]
        if ok:
            ks = [k for k, _ in ok]
            m = np.array([v["m50"] for _, v in ok], dtype=float)
            low = np.array([np.nan if v.get("low") is None else v["low"] for _, v in ok], dtype=float)
            high = np.array([np.nan if v.get("high") is None else v["high"] for _, v in ok], dtype=float)
            fig.add_trace(go.Scatter(x=ks, y=m, mode="markers", name=f"{f['model']}: M50 per K",
                                     marker=dict(size=9, color=colour),
                                     error_y=dict(type="data", symmetric=False, array=np.nan_to_num(high - m),
                                                  arrayminus=np.nan_to_num(m - low), color=colour),
                                     hovertemplate=f"{f['model']}<br>K %{{x}}<br>M50 %{{y:.0f}}<extra></extra>"))
            if anchor is None:
                anchor = (ks[0], float(m[0]))
        for k, v in rows:
            bound = v.get("bound")
            if bound:
                up = bound.startswith(">")
                fig.add_trace(go.Scatter(x=[k], y=[float(bound.lstrip("><= "))], mode="markers", showlegend=False,
                                         marker=dict(symbol="triangle-up-open" if up else "triangle-down-open", size=12,
                                                     color=colour),
                                         hovertemplate=f"{f['model']}<br>K {k}<br>M50 {bound} (censored)<extra></extra>"))
        gamma = f.get("gamma")
        if gamma is not None and f.get("a") is not None and f.get("b"):
            grid = np.array(ks_all, dtype=float)
            line = np.exp(-(f["a"] + f["c"] * np.log(grid)) / f["b"])
            iv = (f"[{f['low']:.2f}, {f['high']:.2f}]" if f.get("low") is not None and f.get("high") is not None
                  else "[unbounded]")
            fig.add_trace(go.Scatter(x=grid, y=line, mode="lines", line=dict(color=colour),
                                     name=f"{f['model']}: γ = {gamma:.2f} {iv}", hoverinfo="skip"))
    k0, m0 = anchor or (ks_all[0], float(ks_all[0]))
    grid = np.array(ks_all, dtype=float)
    for power, name in ((1, "∝ K (factorized)"), (2, "∝ K² (coupled)")):
        fig.add_trace(go.Scatter(x=grid, y=m0 * (grid / k0) ** power, mode="lines", name=name, hoverinfo="skip",
                                 line=dict(color="#999999", dash="dot" if power == 1 else "dashdot")))
    fig.update_xaxes(type="log", title="K (positions per axis)", tickvals=ks_all)
    fig.update_yaxes(type="log", title="M50: training positions for half the test set right")
    fig.update_layout(template=TEMPLATE, height=480, title=dict(text="Data efficiency: M50(K), log-log", x=0.5),
                      margin=dict(l=70, r=20, t=70, b=60))
    return fig


def latin_outcome_map(train_mask, positions, correct, title: str = "") -> go.Figure:
    """One rung on its K×K grid: training positions filled, each test position coloured by the
    share of its samples drawn right under the rounding rule (`positions` (n, 2) as (x, y),
    `correct` (n,) or (n, samples)), everything else blank."""
    mask = np.asarray(train_mask, dtype=bool)
    K = mask.shape[0]
    share = np.asarray(correct, dtype=float).reshape(len(positions), -1).mean(axis=1)
    z = np.full(mask.shape, np.nan)
    text = np.full(mask.shape, "", dtype=object)
    text[mask] = "trained"
    for (x, y), v in zip(np.rint(np.asarray(positions)).astype(int), share):
        z[y, x] = v
        text[y, x] = f"test: {v:.0%} right"
    fig = go.Figure()
    fig.add_trace(go.Heatmap(z=np.where(mask, 1.0, np.nan), showscale=False, colorscale=[[0, "#1f3b73"], [1, "#1f3b73"]],
                             hoverinfo="skip", xgap=1, ygap=1, name="trained"))
    fig.add_trace(go.Heatmap(z=z, zmin=0, zmax=1, colorscale="RdYlGn", text=text, xgap=1, ygap=1,
                             colorbar=dict(title="test right"),
                             hovertemplate="x %{x}, y %{y}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="y", scaleanchor="x", range=[K - 0.5, -0.5])
    fig.update_xaxes(title="x")
    fig.update_layout(template=TEMPLATE, height=420, width=480, margin=dict(l=50, r=20, t=60, b=50),
                      title=dict(text=title or f"K = {K}: trained (dark) and test positions", x=0.5))
    return fig
