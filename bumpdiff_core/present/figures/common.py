"""What every figure shares: colours, coordinate rounding, titles, the checkpoint slider.

- phases A / B / C always have the colours of `PHASE_COLOURS`; x is always blue, y magenta;
- positions are coloured with `POSITION_SCALE`, scores in [0, 1] with `SCORE_SCALE`;
- coordinates travel as float32 rounded to 3 decimals, so pages with one frame per checkpoint stay
  small (plotly encodes numpy arrays as base64).
"""
from __future__ import annotations

import numpy as np

TEMPLATE = "plotly_white"
PHASE_COLOURS = {"A": "#8c8c8c", "B": "#f0a202", "C": "#2ca02c"}
PHASE_NAMES = {"A": "no structure", "B": "disordered sheet", "C": "ordered sheet"}
COORD_COLOURS = {"x": "#1f77b4", "y": "#c2185b"}
DOT_COLOUR = "#ff1a1a"
POSITION_SCALE = "Viridis"
SCORE_SCALE = "Cividis"
GRAY_SCALE = [[0.0, "#000000"], [1.0, "#ffffff"]]


def coords(values) -> np.ndarray:
    """Coordinates as float32 rounded to 3 decimals (what a page carries)."""
    return np.round(np.asarray(values, dtype=np.float64), 3).astype(np.float32)


def phase_text(phase: str) -> str:
    return f"phase {phase} ({PHASE_NAMES.get(phase, '?')})"


def grid_title(step: int, row) -> str:
    """Title of a sample grid at checkpoint `step` (`row`: its metrics row)."""
    return (f"step {step} · {phase_text(row['phase'])} · accuracy {row['accuracy']:.2f} "
            f"· one bump in {row['frac_1']:.0%}")


def manifold_title(step: int, row) -> str:
    """Title of a 3D UMAP view at checkpoint `step` (`row`: its metrics row)."""
    return (f"step {step} · {phase_text(row['phase'])} · R² from UMAP: x {row['r2_x']:.2f}, "
            f"y {row['r2_y']:.2f}")


def step_slider(steps, active: int, width: float, prefix: str = "step ") -> list[dict]:
    """A plotly slider with one position per checkpoint, animating to the frame named by its step."""
    start = min(0.4, 110 / width)  # leave room for the play / pause buttons
    return [dict(
        active=active, x=start, len=1 - start, y=0, yanchor="top", pad=dict(t=45, b=10),
        currentvalue=dict(prefix=prefix, xanchor="right", font=dict(size=13)),
        steps=[dict(method="animate", label=str(s),
                    args=[[str(s)], dict(mode="immediate", frame=dict(duration=0, redraw=True),
                                         transition=dict(duration=0))]) for s in steps])]


def play_buttons(frame_ms: int = 700) -> dict:
    # "play" replays from the first checkpoint: the figure opens at the last (most ordered) one
    return dict(type="buttons", direction="left", x=0.0, y=0, xanchor="left", yanchor="top",
                pad=dict(t=52, r=10), showactive=False,
                buttons=[dict(label="▶", method="animate",
                              args=[None, dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=False,
                                               transition=dict(duration=0), mode="immediate")]),
                         dict(label="❚❚", method="animate",
                              args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate",
                                                 transition=dict(duration=0))])])
