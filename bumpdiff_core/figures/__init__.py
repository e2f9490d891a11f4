"""Plotly figures for the notebooks and the book, by subject. Every builder returns a `go.Figure`
and takes a `view.RunView` (one run, loaded once), metrics tables or a config: none reads a file,
so changing a colour never retrains and a page reads each file once.

- `samples`: sample grids and their checkpoint scrubber, the failure gallery;
- `manifolds`: the 3D UMAP scrubber and Fig. 3's panel per phase;
- `curves`: metrics and loss against training step, R² per UNet block;
- `diagrams`: the phase diagram (Fig. 4), imbalanced curves (Fig. 5), Figs. 1 and 2 of the data;
- `images`, `common`: heatmaps with red dots at requested positions, colours, titles, sliders
  (also used by `widgets.Scrubber`).
"""
from ._render import use_book_renderer
from .common import (COORD_COLOURS, DOT_COLOUR, GRAY_SCALE, PHASE_COLOURS, PHASE_NAMES, POSITION_SCALE,
                     SCORE_SCALE, TEMPLATE, coords, grid_title, manifold_title, phase_text, play_buttons,
                     step_slider)
from .curves import layer_r2_profile, loss_curves, metric_curves, phase_bands
from .diagrams import example_images, factorized_vs_coupled, imbalanced_curves, phase_diagram
from .images import dot, grid_shape, heatmap, image_axes, mosaic, pixel_axis_notes, sample_subplots, to_uint8
from .manifolds import manifold_scrubber, manifold_trace, phase_panels, scene_ranges
from .samples import describe_samples, failure_gallery, sample_grid, sample_grid_scrubber

__all__ = [
    "use_book_renderer",
    # figures of one run (take a view.RunView)
    "sample_grid", "sample_grid_scrubber", "failure_gallery", "manifold_scrubber", "phase_panels",
    "loss_curves", "layer_r2_profile",
    # figures of tables or a config
    "metric_curves", "phase_diagram", "imbalanced_curves", "factorized_vs_coupled", "example_images",
    # parts
    "to_uint8", "grid_shape", "heatmap", "dot", "image_axes", "pixel_axis_notes", "sample_subplots", "mosaic",
    "manifold_trace", "scene_ranges", "phase_bands", "describe_samples", "coords", "grid_title",
    "manifold_title", "phase_text", "step_slider", "play_buttons",
    "TEMPLATE", "PHASE_COLOURS", "PHASE_NAMES", "COORD_COLOURS", "DOT_COLOUR", "POSITION_SCALE",
    "SCORE_SCALE", "GRAY_SCALE",
]
