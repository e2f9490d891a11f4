"""Plotly figures for the notebooks and the book, by subject. Every builder returns a `go.Figure`
and takes a `view.RunView` (one run, loaded once), metrics tables or a config: none reads a file,
so changing a colour never retrains and a page reads each file once.

- `samples`: sample grids and their checkpoint scrubber, the failure gallery;
- `manifolds`: the 3D UMAP scrubber and Fig. 3's panel per phase;
- `curves`: metrics and loss against training step, R² per UNet block;
- `diagrams`: the phase diagram (Fig. 4), imbalanced curves (Fig. 5), Figs. 1 and 2 of the data;
- `generalization`: training-set designs, seen vs unseen accuracy with the memoriser, per-position
  maps, M*(K) log-log (the efficiency page);
- `images`, `common`: heatmaps with red dots at requested positions, colours, titles, sliders
  (also used by `widgets.Scrubber`).
"""
from ._render import use_book_renderer
from .common import (COORD_COLOURS, DOT_COLOUR, GRAY_SCALE, PHASE_COLOURS, PHASE_NAMES, POSITION_SCALE,
                     SCORE_SCALE, TEMPLATE, coords, grid_title, manifold_title, phase_text, play_buttons,
                     step_slider)
from .curves import band, layer_r2_profile, loss_curves, mean_band, metric_curves, phase_bands, representation_curves
from .diagrams import (example_images, factorized_vs_coupled, imbalanced_curves, phase_diagram,
                       phase_measures_figure)
from .generalization import design_maps, latin_outcome_map, m50_plot, position_maps, seen_unseen_curves
from .images import dot, grid_shape, heatmap, image_axes, mosaic, pixel_axis_notes, sample_subplots, to_uint8
from .manifolds import manifold_scrubber, manifold_trace, phase_panels, scene_ranges
from .samples import describe_samples, failure_gallery, sample_grid, sample_grid_scrubber

__all__ = [
    "use_book_renderer",
    # figures of one run (take a view.RunView)
    "sample_grid", "sample_grid_scrubber", "failure_gallery", "manifold_scrubber", "phase_panels",
    "loss_curves", "layer_r2_profile",
    # figures of tables or a config
    "metric_curves", "representation_curves", "phase_diagram", "imbalanced_curves", "phase_measures_figure",
    "factorized_vs_coupled", "example_images", "band", "mean_band",
    # compositional generalization and data scaling (views, masks or tables)
    "design_maps", "seen_unseen_curves", "position_maps", "m50_plot", "latin_outcome_map",
    # parts
    "to_uint8", "grid_shape", "heatmap", "dot", "image_axes", "pixel_axis_notes", "sample_subplots", "mosaic",
    "manifold_trace", "scene_ranges", "phase_bands", "describe_samples", "coords", "grid_title",
    "manifold_title", "phase_text", "step_slider", "play_buttons",
    "TEMPLATE", "PHASE_COLOURS", "PHASE_NAMES", "COORD_COLOURS", "DOT_COLOUR", "POSITION_SCALE",
    "SCORE_SCALE", "GRAY_SCALE",
]

# linked views: what a manifold point carries, the sample panel, colouring (widgets.Scrubber, the book's click script)
from .manifolds import (COLOUR_BY, HIGHLIGHT_COLOUR, POINT_FIELDS, POINT_HOVER, colour_spec,  # noqa: E402
                        point_customdata, point_words, position_error, sample_caption, sample_figure,
                        sample_panel_traces, samples_meta)

__all__ += ["COLOUR_BY", "HIGHLIGHT_COLOUR", "POINT_FIELDS", "POINT_HOVER", "colour_spec", "point_customdata",
            "point_words", "position_error", "sample_caption", "sample_figure", "sample_panel_traces", "samples_meta"]
