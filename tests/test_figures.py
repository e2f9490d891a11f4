"""Figures built from a real tiny run: frames = checkpoints, red dots = labels, image axes in pixels."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core import figures
from bumpdiff_core.config import checkpoint_steps
from bumpdiff_core.evaluate import load_evaluation, load_metrics


def _heatmaps(fig):
    return [t for t in fig.data if t.type == "heatmap"]


def _dots(fig):
    return [t for t in fig.data if t.type == "scatter" and t.marker.color == figures.DOT_COLOUR]


def test_use_book_renderer_is_explicit():
    import plotly.io as pio

    figures.use_book_renderer()
    assert pio.renderers.default == "plotly_mimetype+bumpdiff_book"
    html = pio.renderers["bumpdiff_book"].to_mimebundle({"data": [{"type": "scatter", "y": [1, 2]}]})["text/html"]
    assert "plotly-graph-div" in html and "<script src" not in html  # plotly.js comes from the site


def test_sample_grid_shows_samples_with_dots_at_labels(tiny_run):
    step = checkpoint_steps(tiny_run.config)[-1]
    ev = load_evaluation(tiny_run, step)
    n = min(25, len(ev["labels"]))
    fig = figures.sample_grid(tiny_run, step)
    heat, dots = _heatmaps(fig), _dots(fig)
    assert len(heat) == len(dots) == n
    N = tiny_run.config.image_size
    for i in range(n):
        np.testing.assert_array_equal(np.asarray(heat[i].z), figures.to_uint8(ev["samples"][i]))
        np.testing.assert_array_equal(heat[i].x, np.arange(N))  # x = column, in pixels
        np.testing.assert_array_equal(heat[i].y, np.arange(N))  # y = row, in pixels
        np.testing.assert_allclose([dots[i].x[0], dots[i].y[0]], ev["labels"][i], atol=1e-3)
        # dot and image share one subplot
        assert (dots[i].xaxis, dots[i].yaxis) == (heat[i].xaxis, heat[i].yaxis)
    # y runs downwards (row 0 at the top) and every panel shows the whole canvas
    assert tuple(fig.layout.yaxis.range) == (N - 0.5, -0.5)
    assert tuple(fig.layout.xaxis.range) == (-0.5, N - 0.5)
    assert f"step {step}" in fig.layout.title.text
    assert "phase" in fig.layout.title.text and "accuracy" in fig.layout.title.text


def test_sample_grid_scrubber_has_one_frame_per_checkpoint(tiny_run):
    steps = checkpoint_steps(tiny_run.config)
    fig = figures.sample_grid_scrubber(tiny_run)
    assert [f.name for f in fig.frames] == [str(s) for s in steps]
    assert [s.label for s in fig.layout.sliders[0].steps] == [str(s) for s in steps]
    n = len(_heatmaps(fig))
    for frame, step in zip(fig.frames, steps):
        ev = load_evaluation(tiny_run, step)
        assert list(frame.traces) == list(range(n))
        for i in range(n):
            np.testing.assert_array_equal(np.asarray(frame.data[i].z), figures.to_uint8(ev["samples"][i]))
        assert frame.layout.title.text.startswith(f"step {step} ")
    # frames differ (the model changes between checkpoints)
    assert not np.array_equal(np.asarray(fig.frames[0].data[0].z), np.asarray(fig.frames[-1].data[0].z))


def _pairwise(points):
    p = np.asarray(points, dtype=np.float64)
    return np.linalg.norm(p[:, None] - p[None], axis=-1)


def test_manifold_scrubber_frames_are_aligned_copies_of_each_embedding(tiny_run):
    table = load_metrics(tiny_run)
    steps = [int(s) for s in table["step"]]
    fig = figures.manifold_scrubber(tiny_run)
    assert len(fig.frames) == len(steps) == len(checkpoint_steps(tiny_run.config))
    for frame, step in zip(fig.frames, steps):
        ev = load_evaluation(tiny_run, step)
        shown = np.stack([frame.data[0].x, frame.data[0].y, frame.data[0].z], axis=1)
        # Procrustes alignment = rotation/reflection + uniform scale + shift: distance ratios are constant
        d_shown, d_true = _pairwise(shown), _pairwise(ev["embedding"])
        mask = d_true > 1e-3 * d_true.max()
        ratio = d_shown[mask] / d_true[mask]
        assert np.ptp(ratio) / ratio.mean() < 0.01, step
        row = table[table["step"] == step].iloc[0]
        title = frame.layout.title.text
        assert f"step {step} " in title and f"phase {row['phase']}" in title
        assert f"x {row['r2_x']:.2f}" in title and f"y {row['r2_y']:.2f}" in title
    labels = load_evaluation(tiny_run, steps[-1])["labels"]
    np.testing.assert_allclose(fig.data[0].marker.color, labels[:, 0], atol=1e-3)
    np.testing.assert_allclose(fig.data[1].marker.color, labels[:, 1], atol=1e-3)
    assert fig.data[0].visible is True and fig.data[1].visible is False
    colour_menu = fig.layout.updatemenus[1]
    assert [b.args[0]["visible"] for b in colour_menu.buttons] == [[True, False], [False, True]]
    assert figures.manifold_scrubber(tiny_run, color="y").data[1].visible is True
    with pytest.raises(ValueError):
        figures.manifold_scrubber(tiny_run, color="z")


def test_phase_panels_place_dots_on_their_tiles(tiny_run):
    table = load_metrics(tiny_run)
    firsts = figures.first_step_of_phase(table)
    fig = figures.phase_panels(tiny_run)
    N = tiny_run.config.image_size
    dots = [t for t in fig.data if t.type == "scatter" and t.x is not None and len(t.x)]
    reached = [p for p in "ABC" if firsts[p] is not None]
    assert len(dots) == len(reached) >= 1
    for p, dot in zip(reached, dots):
        ev = load_evaluation(tiny_run, firsts[p])
        n = len(dot.x)
        cols = figures._grid_shape(n)[1]
        tile = np.array([[(i % cols) * (N + 1), (i // cols) * (N + 1)] for i in range(n)])
        np.testing.assert_allclose(np.stack([dot.x, dot.y], 1) - tile, ev["labels"][:n], atol=1e-3)
    for p in "ABC":
        text = " ".join(a.text for a in fig.layout.annotations)
        assert (f"{p}</b>: never reached" in text) == (firsts[p] is None)


def test_metric_curves_carry_every_metric_and_phase_bands(tiny_run):
    table = load_metrics(tiny_run)
    fig = figures.metric_curves(table)
    plotted = {tuple(np.asarray(t.y, dtype=float).round(6)) for t in fig.data if t.y is not None and len(t.y) == len(table)}
    for col in ["accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1", "frac_multi", "r2_x", "r2_y",
                "r2_x_raw", "r2_y_raw"]:
        assert tuple(table[col].to_numpy(dtype=float).round(6)) in plotted, col
    loss = [t for t in fig.data if t.name == "training loss"][0]
    assert loss.yaxis != "y"  # secondary axis
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    colours = {s.fillcolor for s in bands}
    assert colours == {figures.PHASE_COLOURS[p] for p in set(table["phase"])}
    # the bands cover the whole step range in every panel
    assert min(s.x0 for s in bands) == table["step"].min() and max(s.x1 for s in bands) == table["step"].max()


def test_phase_diagram_rows_are_increments_and_cells_are_scores(tiny_run):
    t = load_metrics(tiny_run)
    shifted = t.assign(accuracy=1 - t["accuracy"])
    fig = figures.phase_diagram({1.0: t, 0.5: shifted})
    acc, r2 = fig.data
    assert list(acc.y) == ["0.5", "1"] and list(acc.x) == [str(s) for s in t["step"]]
    np.testing.assert_allclose(np.asarray(acc.z, dtype=float)[1], t["accuracy"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(acc.z, dtype=float)[0], 1 - t["accuracy"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(r2.z, dtype=float)[1], t[["r2_x", "r2_y"]].mean(axis=1), atol=1e-3)
    assert list(np.asarray(acc.text)[1]) == list(t["phase"])
    assert (acc.zmin, acc.zmax) == (r2.zmin, r2.zmax) == (0, 1)


def test_imbalanced_curves_draw_x_and_y_per_pair(tiny_run):
    t = load_metrics(tiny_run)
    fig = figures.imbalanced_curves({(0.1, 1.0): t, (0.1, 0.5): [t, t]})
    # pair 1: 3 metrics x 2 coords; pair 2: 3 x 2 x (2 seeds + mean)
    assert len(fig.data) == 6 + 18
    titles = [a.text for a in fig.layout.annotations]
    assert any(s.startswith("dx = 0.1, dy = 1") for s in titles)
    x_lines = [tr for tr in fig.data if tr.line.color == figures.COORD_COLOURS["x"]]
    y_lines = [tr for tr in fig.data if tr.line.color == figures.COORD_COLOURS["y"]]
    assert len(x_lines) == len(y_lines) == 12


def test_data_figures(tiny_run):
    fig = figures.factorized_vs_coupled(16, 1.0, centre=(5.0, 9.0))
    heat = _heatmaps(fig)
    assert len(heat) == 4
    # the product of the two ovals is the bump itself
    np.testing.assert_allclose(np.asarray(heat[2].z, float), np.asarray(heat[3].z, float), atol=1)
    assert np.unravel_index(np.argmax(heat[3].z), (16, 16)) == (9, 5)  # row = y, column = x
    fig = figures.example_images(tiny_run.config, n=8)
    assert len(_heatmaps(fig)) == 8
    for h, d in zip(_heatmaps(fig), _dots(fig)):
        r, c = np.unravel_index(np.argmax(h.z), np.shape(h.z))
        assert abs(c - d.x[0]) <= 0.5 and abs(r - d.y[0]) <= 0.5


def test_appendix_figures(tiny_run):
    step = checkpoint_steps(tiny_run.config)[-1]
    ev = load_evaluation(tiny_run, step)
    fig = figures.layer_r2_profile(tiny_run)
    np.testing.assert_allclose(fig.data[0].y, ev["layer_r2_raw"][:, 0], atol=1e-3)
    np.testing.assert_allclose(fig.data[1].y, ev["layer_r2_raw"][:, 1], atol=1e-3)
    assert len(fig.data[0].x) == len(ev["layer_names"])
    fig = figures.failure_gallery(tiny_run, per_phase=4)
    assert len(fig.layout.annotations) > 0
    table = load_metrics(tiny_run)
    reached = sorted(set(table["phase"]))
    assert len(_dots(fig)) == 4 * len(reached)
    fig = figures.loss_curves(tiny_run)
    per_step = fig.data[0]
    assert len(per_step.x) == tiny_run.config.steps


def test_sample_pages_stay_small(tiny_run):
    import json

    import plotly.io as pio

    # uint8 heatmaps travel as base64 (4/3 byte per pixel), not as JSON lists of numbers
    fig = figures.sample_grid_scrubber(tiny_run)
    frames = json.loads(pio.to_json(fig))["frames"]
    n, N = len(_heatmaps(fig)), tiny_run.config.image_size
    for frame in frames:
        assert frame["data"][0]["z"]["dtype"] == "u1"
        assert len(json.dumps(frame)) < n * (N * N * 4 / 3 + 100) + 400
