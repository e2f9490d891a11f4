"""Numbers against training step (metrics, loss) and per UNet block (R²), with each checkpoint's
phase as a coloured band. Builders take a metrics table or a `view.RunView`; none reads a file."""
from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COORD_COLOURS, PHASE_COLOURS, PHASE_NAMES, TEMPLATE

BAND_OPACITY = 0.18


def _rgba(hex_colour: str, alpha: float) -> str:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r}, {g}, {b}, {alpha})"


def band(x, low, high, colour: str, name: str, legendgroup: str | None = None, showlegend: bool = True) -> go.Scatter:
    """An interval drawn as one filled polygon (high forwards, low backwards); NaN bounds drop out."""
    x, low, high = (np.asarray(v, dtype=float) for v in (x, low, high))
    ok = np.isfinite(low) & np.isfinite(high)
    x, low, high = x[ok], low[ok], high[ok]
    return go.Scatter(x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
                      fillcolor=_rgba(colour, BAND_OPACITY), line=dict(width=0), mode="lines", hoverinfo="skip",
                      name=name, legendgroup=legendgroup, showlegend=showlegend)


def mean_band(tables, column: str, level: float | None = None):
    """Across seeds: (steps, mean, low, high) of `column` per step, a Student t interval of the
    seeds' values at each step (NaN bounds where fewer than two seeds have a value)."""
    from bumpdiff_core.measure.intervals import t_interval
    from bumpdiff_core.claims.verdicts import DEFAULT

    level = DEFAULT.level if level is None else level
    wide = pd.concat([t.set_index("step")[column].rename(k) for k, t in enumerate(tables)], axis=1).sort_index()
    stats = np.array([t_interval(row, level) for row in wide.to_numpy(float)]).reshape(-1, 3)
    return wide.index.to_numpy(float), stats[:, 0], stats[:, 1], stats[:, 2]


def phase_bands(fig, table, rows: list[int] | None = None) -> None:
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
    the training loss (mean since the previous checkpoint) on a secondary axis of the top panel.
    Intervals as shaded bands when the table has them: accuracy with its Wilson interval
    (`accuracy_low/high`, else computed from `n_labels`), raw R² with its bootstrap interval
    (`r2_x_raw_low/high`, `r2_y_raw_low/high`)."""
    from bumpdiff_core.measure import metrics
    from bumpdiff_core.claims.verdicts import DEFAULT, accuracy_interval, has_columns

    steps = table["step"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        specs=[[{"secondary_y": True}], [{}], [{}]],
                        subplot_titles=[f"accuracy (exactly one bump within {metrics.TOLERANCE_PX:g} px of the "
                                        "requested x, y)", "number of bumps per sample",
                                        "R² of x and y from the representation"])
    _, acc_low, acc_high = accuracy_interval(table)
    if np.isfinite(acc_low).any():
        fig.add_trace(band(steps, acc_low, acc_high, "#222222", f"accuracy, Wilson {DEFAULT.level:.0%} interval"),
                      row=1, col=1)
    for c in "xy":
        lo, hi = f"r2_{c}_raw_low", f"r2_{c}_raw_high"
        if has_columns(table, lo, hi):
            fig.add_trace(band(steps, table[lo], table[hi], COORD_COLOURS[c],
                               f"R² {c} (raw), bootstrap {DEFAULT.level:.0%} interval"), row=3, col=1)

    def line(col, name, color, dash=None, row=1, width=2):
        fig.add_trace(go.Scatter(x=steps, y=table[col], name=name, mode="lines+markers", marker=dict(size=4),
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
    line("r2_x_raw", "R² x (raw activations, leave-one-out)", COORD_COLOURS["x"], "dash", row=3)
    line("r2_y_raw", "R² y (raw activations, leave-one-out)", COORD_COLOURS["y"], "dash", row=3)
    phase_bands(fig, table, rows=[1, 2, 3])
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


def loss_curves(view) -> go.Figure:
    """Training loss per step (light), its 50-step running mean, and the per-checkpoint means, log
    scale, phase bands behind. The loss falls smoothly through all three phases."""
    table, losses = view.table, view.losses
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
    phase_bands(fig, table)
    fig.update_layout(template=TEMPLATE, width=860, height=420, title=dict(text="Training loss (ε-prediction MSE)", x=0.5),
                      xaxis_title="training step", yaxis=dict(type="log", title="loss (log)", tickformat=".2g"),
                      legend=dict(x=1.02, y=1), margin=dict(l=60, r=20, t=60, b=50))
    return fig


def layer_r2_profile(view, step: int | None = None) -> go.Figure:
    """Leave-one-out ridge R² of x and y from each UNet block's raw activations at one checkpoint
    (default: the last); the block used as "the representation" is highlighted."""
    step = view.last_step if step is None else int(step)
    ev = view.evaluation(step)
    names = ev.layer_names
    position = {n: i + 1 for i, n in enumerate(view.block_order)}
    ticks = [f"layer{position.get(n, '?')}<br>{n}" for n in names]
    r2 = ev.layer_r2_raw
    fig = go.Figure([go.Bar(x=ticks, y=np.round(r2[:, k], 3), name=f"R² {c}", marker_color=COORD_COLOURS[c])
                     for k, c in enumerate("xy")])
    if view.tap in names:
        i = names.index(view.tap)
        fig.add_vrect(x0=i - 0.5, x1=i + 0.5, fillcolor="#ffd54f", opacity=0.3, line_width=0, layer="below")
        fig.add_annotation(x=ticks[i], y=1.04, text=f"tapped: {view.config.tap_layer}", showarrow=False)
    phase = view.row(step)["phase"]
    fig.update_layout(template=TEMPLATE, barmode="group", width=820, height=420,
                      title=dict(text=f"Raw-activation R² per UNet block (leave-one-out ridge) · step {step} "
                                      f"· phase {phase}", x=0.5),
                      yaxis=dict(title="R²", range=[min(-0.1, float(np.nanmin(r2)) - 0.05), 1.1]),
                      xaxis_title="block (forward order)", margin=dict(l=60, r=20, t=70, b=60))
    return fig


def _overlap_chance(table) -> float:
    """Chance level of `neighbour_overlap`: the table's column when stored, else k / (n − 1) with
    the k `measure.columns.OVERLAP_K` (at most n − 1) and n = `n_labels` (NaN when neither is there)."""
    from bumpdiff_core.measure import columns as schema
    from bumpdiff_core.claims.verdicts import has_columns

    if has_columns(table, "neighbour_overlap_chance"):
        return float(np.nanmean(table["neighbour_overlap_chance"].to_numpy(float)))
    if not has_columns(table, "n_labels"):
        return float("nan")
    n = float(table["n_labels"].dropna().iloc[-1])
    return min(schema.OVERLAP_K, n - 1) / (n - 1) if n > 1 else float("nan")


REPRESENTATION_PANELS = [
    ("intrinsic dimension (MLE, judged against its sheet null; TwoNN)", [
        ("dim_mle", "MLE dimension (Levina–Bickel)", "#e31a1c", None),
        ("intrinsic_dim", "TwoNN dimension", "#6a3d9a", None),
                                     ("participation_ratio", "participation ratio (linear)", "#b15928", "dot")]),
    ("k-NN R² (leave-one-out; no linear read-out)", [("knn_r2_x", "k-NN R² x", COORD_COLOURS["x"], None),
                                                     ("knn_r2_y", "k-NN R² y", COORD_COLOURS["y"], None)]),
    ("neighbour overlap (activation vs label neighbourhoods)", [("neighbour_overlap", "neighbour overlap", "#33a02c", None)]),
]


def representation_curves(table, title: str | None = None) -> go.Figure:
    """The representation measures over training, phase bands behind: intrinsic dimension (the MLE
    with the 95 % band of its sheet null, which the verdicts judge; TwoNN with the 2D reference of
    continuous labels, not judged; the participation ratio),
    k-NN R² of x and y, neighbour overlap with its chance level. A measure the table lacks is named
    in its panel ("not measured")."""
    from bumpdiff_core.claims.verdicts import DEFAULT, has_columns

    steps = table["step"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=[p[0] for p in REPRESENTATION_PANELS])
    for r, (_, lines) in enumerate(REPRESENTATION_PANELS, start=1):
        missing = []
        for col, name, colour, dash in lines:
            if not has_columns(table, col):
                missing.append(col)
                continue
            fig.add_trace(go.Scatter(x=steps, y=table[col], name=name, mode="lines+markers", marker=dict(size=4),
                                     line=dict(color=colour, dash=dash, width=2)), row=r, col=1)
        if missing:
            fig.add_annotation(text="not measured for this run: " + ", ".join(missing), showarrow=False,
                               xref=f"x{'' if r == 1 else r} domain", yref=f"y{'' if r == 1 else r} domain",
                               x=0.5, y=0.5, font=dict(color="#888"))
    if has_columns(table, "dim_null_low", "dim_null_high"):  # the band the verdicts judge the MLE against
        fig.add_trace(go.Scatter(x=list(steps) + list(steps)[::-1],
                                 y=list(table["dim_null_high"]) + list(table["dim_null_low"])[::-1],
                                 fill="toself", fillcolor="rgba(227,26,28,0.15)", line=dict(width=0),
                                 name="sheet null, 95 % band (same labels, measured noise)", hoverinfo="skip"),
                      row=1, col=1)
    d, tol = DEFAULT.sheet_dim, DEFAULT.dim_tolerance
    fig.add_hrect(y0=d - tol, y1=d + tol, fillcolor="#6a3d9a", opacity=0.08, line_width=0, row=1, col=1)
    fig.add_hline(y=d, line=dict(color="#6a3d9a", dash="dash", width=1), row=1, col=1,
                  annotation_text=f"a 2D sheet: {d:g} ± {tol:g} on continuous labels (not judged: grid labels "
                                  "read higher)", annotation_position="top left")
    chance = _overlap_chance(table)
    if np.isfinite(chance):
        fig.add_hline(y=chance, line=dict(color="#777", dash="dot", width=1), row=3, col=1,
                      annotation_text=f"chance ≈ {chance:.2f}", annotation_position="top left")
    phase_bands(fig, table, rows=[1, 2, 3])
    fig.update_yaxes(title="dimension", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title="R²", range=[-0.25, 1.03], row=2, col=1)
    fig.update_yaxes(title="fraction", range=[-0.03, 1.03], row=3, col=1)
    fig.update_xaxes(title="training step", row=3, col=1)
    fig.update_layout(template=TEMPLATE, height=760, hovermode="x unified",
                      title=dict(text=title or "Shape and order of the representation over training", x=0.5),
                      legend=dict(x=1.02, y=1, xanchor="left"), margin=dict(l=60, r=20, t=80, b=50))
    return fig
