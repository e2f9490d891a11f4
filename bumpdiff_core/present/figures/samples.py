"""What the model draws: sample grids (one checkpoint, or one frame per checkpoint) and the
failure gallery. Every builder takes a `view.RunView` and reads nothing from disk itself."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from bumpdiff_core.measure import metrics
from .common import PHASE_COLOURS, TEMPLATE, grid_title, play_buttons, step_slider
from .images import dot, heatmap, image_axes, sample_subplots, to_uint8


def sample_grid(view, step: int, n: int = 25) -> go.Figure:
    """The first `n` evaluation samples of checkpoint `step`, red dots at the requested (x, y)."""
    ev = view.evaluation(step)
    n = min(n, len(ev.labels))
    return sample_subplots(to_uint8(ev.samples[:n]), ev.labels[:n], grid_title(int(step), view.row(step)))


def sample_grid_scrubber(view, n: int = 25) -> go.Figure:
    """`sample_grid` with one frame per evaluated checkpoint, a step slider and a play button.

    The figure opens at the last checkpoint; frames replace only the heatmaps (the requested
    positions are the same at every checkpoint).
    """
    steps, evals = view.steps, view.evaluations()
    n = min(n, len(evals[0].labels))
    last = evals[-1]
    fig = sample_subplots(to_uint8(last.samples[:n]), last.labels[:n], grid_title(steps[-1], view.row(steps[-1])))
    frames = []
    for s, ev in zip(steps, evals):
        imgs = to_uint8(ev.samples[:n])
        frames.append(go.Frame(name=str(s), traces=list(range(n)),
                               data=[go.Heatmap(z=imgs[i]) for i in range(n)],
                               layout=dict(title=dict(text=grid_title(s, view.row(s))))))
    fig.frames = frames
    fig.update_layout(sliders=step_slider(steps, len(steps) - 1, fig.layout.width), updatemenus=[play_buttons()])
    fig.update_layout(height=fig.layout.height + 90, margin=dict(b=130))
    return fig


def describe_samples(counts, centres, labels) -> list[tuple[str, str]]:
    """Per sample: (kind, words), kind "count" (not exactly one bump), "correct" or "misplaced"
    by the accuracy rule (`metrics.placement`), words what went wrong."""
    ok_x, ok_y = metrics.placement(counts, centres, labels)
    out = []
    for i, count in enumerate(np.asarray(counts)):
        if count != 1:
            out.append(("count", f"{int(count)} bumps"))
        elif ok_x[i] and ok_y[i]:
            out.append(("correct", "correct"))
        else:
            err = np.abs(np.asarray(centres[i], dtype=float) - np.asarray(labels[i], dtype=float))
            out.append(("misplaced", f"off by ({err[0]:.1f}, {err[1]:.1f}) px"))
    return out


# the failure that defines each phase first: A wrong bump counts, B one misplaced bump; C's rare failures
_GALLERY_ORDER = {"A": ["count", "misplaced", "correct"], "B": ["misplaced", "count", "correct"],
                  "C": ["misplaced", "count", "correct"]}


def failure_gallery(view, per_phase: int = 6) -> go.Figure:
    """A few samples from the middle checkpoint of each phase, failures first (the phase's
    defining one first: A wrong number of bumps, B one misplaced bump), then correct ones; each
    titled with what went wrong."""
    table = view.table
    chosen, titles = [], []
    for p in "ABC":
        steps = [int(s) for s in table.loc[table["phase"] == p, "step"]]
        if not steps:
            chosen.append((None, []))
            titles += [f"{p}: never reached" if k == 0 else "" for k in range(per_phase)]
            continue
        s = steps[len(steps) // 2]
        ev = view.evaluation(s)
        described = describe_samples(ev.bump_count, ev.centres, ev.labels)
        rank = [_GALLERY_ORDER[p].index(kind) for kind, _ in described]
        idx = sorted(range(len(described)), key=lambda i: (rank[i], i))[:per_phase]
        chosen.append((ev, idx))
        titles += [f"{p} · step {s}: {described[i][1]}" for i in idx] + [""] * (per_phase - len(idx))
    fig = make_subplots(rows=3, cols=per_phase, horizontal_spacing=0.015, vertical_spacing=0.09,
                        subplot_titles=titles)
    legend_shown = False
    for r, (ev, idx) in enumerate(chosen):
        for c in range(per_phase):
            if c < len(idx):
                i = idx[c]
                fig.add_trace(heatmap(to_uint8(ev.samples[i])), row=r + 1, col=c + 1)
                fig.add_trace(dot(ev.labels[i, 0], ev.labels[i, 1], showlegend=not legend_shown),
                              row=r + 1, col=c + 1)
                legend_shown = True
            else:
                fig.add_trace(go.Heatmap(z=[[None]], showscale=False, hoverinfo="skip"), row=r + 1, col=c + 1)
    image_axes(fig, view.image_size, 3, per_phase)
    fig.update_annotations(font_size=10)
    for a in fig.layout.annotations:
        if a.text and a.text[0] in PHASE_COLOURS:
            a.font.color = PHASE_COLOURS[a.text[0]]
    fig.update_layout(template=TEMPLATE, width=per_phase * 150 + 60, height=3 * 175 + 120,
                      title=dict(text="What each phase gets wrong (one checkpoint per phase; red dot = requested position)", x=0.5),
                      legend=dict(orientation="h", x=1, xanchor="right", y=1.06),
                      margin=dict(l=20, r=20, t=100, b=20))
    return fig
