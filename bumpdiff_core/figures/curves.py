"""Numbers against training step (metrics, loss) and per UNet block (R²), with each checkpoint's
phase as a coloured band. Builders take a metrics table or a `view.RunView`; none reads a file."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .common import COORD_COLOURS, PHASE_COLOURS, PHASE_NAMES, TEMPLATE


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
    the training loss (mean since the previous checkpoint) on a secondary axis of the top panel."""
    steps = table["step"]
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        specs=[[{"secondary_y": True}], [{}], [{}]],
                        subplot_titles=["accuracy (exactly one bump within 1 px of the requested x, y)",
                                        "number of bumps per sample",
                                        "R² of x and y from the representation"])

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
