"""Figures built from a synthetic run held in memory (tests/synthetic.py, milliseconds): frames =
checkpoints, red dots = labels, image axes in pixels, and no builder reads the run store."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import PHASES, STEPS, synthetic_view, write_run

from bumpdiff_core.present import figures
from bumpdiff_core.measure.manifold import align_sequence


@pytest.fixture(scope="module")
def view():
    return synthetic_view().load_all()


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


def test_sample_grid_shows_samples_with_dots_at_labels(view):
    step = STEPS[-1]
    ev = view.evaluation(step)
    fig = figures.sample_grid(view, step, n=9)
    heat, dots = _heatmaps(fig), _dots(fig)
    assert len(heat) == len(dots) == 9
    N = view.image_size
    for i in range(9):
        np.testing.assert_array_equal(np.asarray(heat[i].z), figures.to_uint8(ev.samples[i]))
        np.testing.assert_array_equal(heat[i].x, np.arange(N))  # x = column, in pixels
        np.testing.assert_array_equal(heat[i].y, np.arange(N))  # y = row, in pixels
        np.testing.assert_allclose([dots[i].x[0], dots[i].y[0]], ev.labels[i], atol=1e-3)
        assert (dots[i].xaxis, dots[i].yaxis) == (heat[i].xaxis, heat[i].yaxis)  # one subplot
        # the bump is drawn where the dot is (phase C): brightest pixel = label (row = y, column = x)
        r, c = np.unravel_index(np.argmax(heat[i].z), (N, N))
        assert (c, r) == tuple(int(v) for v in ev.labels[i])
    assert tuple(fig.layout.yaxis.range) == (N - 0.5, -0.5)  # y runs downwards
    assert tuple(fig.layout.xaxis.range) == (-0.5, N - 0.5)
    assert fig.layout.title.text.startswith(f"step {step} · phase C")
    with pytest.raises(KeyError, match="not evaluated"):
        figures.sample_grid(view, 5)


def test_sample_grid_scrubber_has_one_frame_per_checkpoint(view):
    fig = figures.sample_grid_scrubber(view)
    assert [f.name for f in fig.frames] == [str(s) for s in STEPS]
    assert [s.label for s in fig.layout.sliders[0].steps] == [str(s) for s in STEPS]
    n = len(_heatmaps(fig))
    for frame, step in zip(fig.frames, STEPS):
        ev = view.evaluation(step)
        assert list(frame.traces) == list(range(n))
        for i in range(n):
            np.testing.assert_array_equal(np.asarray(frame.data[i].z), figures.to_uint8(ev.samples[i]))
        assert frame.layout.title.text.startswith(f"step {step} ")
    assert not np.array_equal(np.asarray(fig.frames[0].data[0].z), np.asarray(fig.frames[-1].data[0].z))


def _pairwise(points):
    p = np.asarray(points, dtype=np.float64)
    return np.linalg.norm(p[:, None] - p[None], axis=-1)


def test_manifold_scrubber_frames_are_aligned_copies_of_each_embedding(view):
    fig = figures.manifold_scrubber(view)
    assert [f.name for f in fig.frames] == [str(s) for s in STEPS]
    aligned = align_sequence([view.evaluation(s).embedding.astype(np.float64) for s in STEPS])
    for k, (frame, step) in enumerate(zip(fig.frames, STEPS)):
        shown = np.stack([frame.data[0].x, frame.data[0].y, frame.data[0].z], axis=1)
        np.testing.assert_allclose(shown, aligned[k], atol=2e-3)
        # Procrustes alignment = rotation/reflection + uniform scale + shift: distance ratios are constant
        d_shown, d_true = _pairwise(shown), _pairwise(view.evaluation(step).embedding)
        mask = d_true > 1e-3 * d_true.max()
        ratio = d_shown[mask] / d_true[mask]
        assert np.ptp(ratio) / ratio.mean() < 0.01, step
        row = view.row(step)
        title = frame.layout.title.text
        assert f"step {step} " in title and f"phase {row['phase']}" in title
        assert f"x {row['r2_x']:.2f}" in title and f"y {row['r2_y']:.2f}" in title
    labels = view.evaluation(STEPS[-1]).labels
    np.testing.assert_allclose(fig.data[0].marker.color, labels[:, 0], atol=1e-3)
    np.testing.assert_allclose(fig.data[1].marker.color, labels[:, 1], atol=1e-3)
    assert fig.data[0].visible is True and fig.data[1].visible is False
    colour_menu = fig.layout.updatemenus[1]
    assert [b.args[0]["visible"] for b in colour_menu.buttons] == [[True, False], [False, True]]
    assert figures.manifold_scrubber(view, color="y").data[1].visible is True
    with pytest.raises(ValueError):
        figures.manifold_scrubber(view, color="z")


def test_phase_panels_show_the_first_checkpoint_of_each_phase(view):
    fig = figures.phase_panels(view, n=9)
    N = view.image_size
    dots = [t for t in fig.data if t.type == "scatter" and t.x is not None and len(t.x)]
    assert len(dots) == 3
    firsts = {p: STEPS[PHASES.index(p)] for p in "ABC"}
    for p, dot in zip("ABC", dots):
        labels = view.evaluation(firsts[p]).labels
        cols = figures.grid_shape(9)[1]
        tile = np.array([[(i % cols) * (N + 1), (i // cols) * (N + 1)] for i in range(9)])
        np.testing.assert_allclose(np.stack([dot.x, dot.y], 1) - tile, labels[:9], atol=1e-3)
    text = " ".join(a.text for a in fig.layout.annotations)
    for p in "ABC":
        assert f"<b>{p}</b> · step {firsts[p]} " in text and "never reached" not in text


def test_phase_panels_say_when_a_phase_was_never_reached():
    view = synthetic_view(n=4)
    view.table["phase"] = ["A", "A", "A", "C", "C"]  # B skipped
    fig = figures.phase_panels(view)
    text = " ".join(a.text for a in fig.layout.annotations)
    assert "<b>B</b>: never reached" in text and "<b>A</b> · step 0 " in text and "<b>C</b> · step 30 " in text


def test_metric_curves_carry_every_metric_and_phase_bands(view):
    table = view.table
    fig = figures.metric_curves(table)
    plotted = {tuple(np.asarray(t.y, dtype=float).round(6)) for t in fig.data if t.y is not None and len(t.y) == len(table)}
    for col in ["accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1", "frac_multi", "r2_x", "r2_y",
                "r2_x_raw", "r2_y_raw"]:
        assert tuple(table[col].to_numpy(dtype=float).round(6)) in plotted, col
    loss = [t for t in fig.data if t.name == "training loss"][0]
    assert loss.yaxis != "y"  # secondary axis
    bands = [s for s in fig.layout.shapes if s.type == "rect"]
    assert {s.fillcolor for s in bands} == {figures.PHASE_COLOURS[p] for p in "ABC"}
    assert len(bands) == 3 * 3  # A, B, C merged into one band each, in each of 3 panels
    assert min(s.x0 for s in bands) == STEPS[0] and max(s.x1 for s in bands) == STEPS[-1]
    b = [s for s in bands if s.fillcolor == figures.PHASE_COLOURS["B"]][0]
    assert (b.x0, b.x1) == (15, 25)  # midpoints to the neighbouring checkpoints


def test_phase_diagram_rows_are_increments_and_cells_are_scores(view):
    t = view.table
    shifted = t.assign(accuracy=1 - t["accuracy"])
    fig = figures.phase_diagram({1.0: t, 0.5: shifted})
    acc, r2 = fig.data
    assert list(acc.y) == ["0.5", "1"] and list(acc.x) == [str(s) for s in t["step"]]
    np.testing.assert_allclose(np.asarray(acc.z, dtype=float)[1], t["accuracy"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(acc.z, dtype=float)[0], 1 - t["accuracy"], atol=1e-3)
    np.testing.assert_allclose(np.asarray(r2.z, dtype=float)[1], t[["r2_x", "r2_y"]].mean(axis=1), atol=1e-3)
    assert list(np.asarray(acc.text)[1]) == PHASES
    assert (acc.zmin, acc.zmax) == (r2.zmin, r2.zmax) == (0, 1)


def test_imbalanced_curves_draw_x_and_y_per_pair(view):
    t = view.table
    fig = figures.imbalanced_curves({(0.1, 1.0): t, (0.1, 0.5): [t, t]})
    # per-axis error, accuracy, UMAP R², raw R²; pair 1: 4 x 2 coords; pair 2: 4 x 2 x (2 seeds + band + mean)
    assert len(fig.data) == 8 + 32
    titles = [a.text for a in fig.layout.annotations]
    assert any(s.startswith("dx = 0.1, dy = 1") for s in titles)
    assert any("per-axis error" in s for s in titles)
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    assert len(bands) == 8 and all(len(b.x) == 2 * len(t) for b in bands)
    old = t.drop(columns=["error_x", "error_y"])   # a run evaluated before the per-axis errors
    assert len(figures.imbalanced_curves({(0.1, 1.0): old}).data) == 6


def test_metric_curves_draw_interval_bands_when_the_columns_exist(view):
    t = view.table
    fig = figures.metric_curves(t)
    bands = [tr for tr in fig.data if tr.fill == "toself"]
    assert {b.name.split(",")[0] for b in bands} == {"accuracy", "R² x (raw)", "R² y (raw)"}
    acc = [b for b in bands if b.name.startswith("accuracy")][0]
    np.testing.assert_allclose(np.asarray(acc.y, dtype=float)[:len(t)], t["accuracy_high"])
    assert "within 1 px" in fig.layout.annotations[0].text
    bare = t.drop(columns=[c for c in t.columns if c.endswith(("_low", "_high")) or c == "n_labels"])
    assert not [tr for tr in figures.metric_curves(bare).data if tr.fill == "toself"]


def test_representation_curves_and_reference_lines(view):
    from bumpdiff_core.claims import verdicts

    t = view.table
    fig = figures.representation_curves(t)
    names = {tr.name for tr in fig.data}
    assert {"TwoNN dimension", "k-NN R² x", "k-NN R² y", "neighbour overlap"} <= names
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert f"a 2D sheet: {verdicts.DEFAULT.sheet_dim:g} ± {verdicts.DEFAULT.dim_tolerance:g}" in texts
    assert "chance ≈ 0.91" in texts   # k / (n_labels - 1) = 10 / 11 (the synthetic run has 12 labels)
    old = figures.representation_curves(t.assign(intrinsic_dim=np.nan).drop(columns=["knn_r2_x", "knn_r2_y"]))
    assert "intrinsic_dim" in " ".join(a.text for a in old.layout.annotations if "not measured" in a.text)
    # with the MLE and its sheet null: both drawn (the band is what the verdicts judge against)
    new = figures.representation_curves(t.assign(dim_mle=2.5, dim_null_low=2.2, dim_null_high=2.9))
    assert {"MLE dimension (Levina–Bickel)", "sheet null, 95 % band (same labels, measured noise)"} <= {
        tr.name for tr in new.data}


def test_phase_measures_figure_and_phase_diagram_over_seeds(view):
    from bumpdiff_core.claims import analysis

    t = view.table
    summary = analysis.phase_measures({3: t, 4: t.assign(intrinsic_dim=t["intrinsic_dim"] + 0.2)})
    fig = figures.phase_measures_figure(summary)
    assert len(fig.data) == 4 and all(list(b.x) == ["A", "B", "C"] for b in fig.data)
    dim = fig.data[0]
    assert np.all(np.asarray(dim.error_y.array, dtype=float) > 0)   # a t interval across two seeds
    shifted = t.assign(accuracy=1 - t["accuracy"], phase=["A", "A", "C", "B", "B"])
    diag = figures.phase_diagram({1.0: [t, shifted], 0.5: t})
    acc = diag.data[0]
    np.testing.assert_allclose(np.asarray(acc.z, dtype=float)[1], 0.5, atol=1e-3)
    assert list(np.asarray(acc.text)[1]) == ["A", "A", "BC", "CB", "CB"]
    assert "mean of 2 seeds" in diag.layout.annotations[0].text


def test_data_figures(view):
    fig = figures.factorized_vs_coupled(16, 1.0, centre=(5.0, 9.0))
    heat = _heatmaps(fig)
    assert len(heat) == 4
    # the product of the two ovals is the bump itself
    np.testing.assert_allclose(np.asarray(heat[2].z, float), np.asarray(heat[3].z, float), atol=1)
    assert np.unravel_index(np.argmax(heat[3].z), (16, 16)) == (9, 5)  # row = y, column = x
    fig = figures.example_images(view.config, n=8)
    assert len(_heatmaps(fig)) == 8
    for h, d in zip(_heatmaps(fig), _dots(fig)):
        r, c = np.unravel_index(np.argmax(h.z), np.shape(h.z))
        assert abs(c - d.x[0]) <= 0.5 and abs(r - d.y[0]) <= 0.5


def test_layer_r2_profile_and_loss_curves(view):
    ev = view.evaluation(STEPS[-1])
    fig = figures.layer_r2_profile(view)
    np.testing.assert_allclose(fig.data[0].y, ev.layer_r2_raw[:, 0], atol=1e-3)
    np.testing.assert_allclose(fig.data[1].y, ev.layer_r2_raw[:, 1], atol=1e-3)
    assert list(fig.data[0].x) == [f"layer{i + 1}<br>{n}" for i, n in enumerate(ev.layer_names)]
    assert "leave-one-out" in fig.layout.title.text
    assert any(a.text == f"tapped: {view.config.tap_layer}" for a in fig.layout.annotations)
    fig = figures.loss_curves(view)
    assert len(fig.data[0].x) == len(view.losses)


def test_failure_gallery_puts_each_phases_defining_failure_first(view):
    fig = figures.failure_gallery(view, per_phase=4)
    titles = [a.text for a in fig.layout.annotations if a.text]
    # middle checkpoint per phase: A step 10, B step 20, C step 40 (the C at step 30 is not the middle)
    a, b, c = ([t for t in titles if t.startswith(p)] for p in "ABC")
    assert all(t.startswith("A · step 10: ") for t in a) and a[0].endswith("bumps")
    assert all(t.startswith("B · step 20: off by (3.0, 0.0) px") for t in b)
    assert all(t.endswith(": correct") for t in c)
    assert len(_dots(fig)) == 3 * 4


def test_describe_samples_applies_the_accuracy_rule():
    labels = np.array([[5.0, 5.0], [5.0, 5.0], [5.0, 5.0], [5.0, 5.0]])
    centres = np.array([[5.9, 4.1], [6.2, 5.0], [np.nan, np.nan], [5.0, 5.0]])
    out = figures.describe_samples(np.array([1, 1, 2, 0]), centres, labels)
    assert out == [("correct", "correct"), ("misplaced", "off by (1.2, 0.0) px"), ("count", "2 bumps"),
                   ("count", "0 bumps")]


def test_sample_pages_stay_small(view):
    import json

    import plotly.io as pio

    # uint8 heatmaps travel as base64 (4/3 byte per pixel), not as JSON lists of numbers
    fig = figures.sample_grid_scrubber(view)
    frames = json.loads(pio.to_json(fig))["frames"]
    n, N = len(_heatmaps(fig)), view.image_size
    for frame in frames:
        assert frame["data"][0]["z"]["dtype"] == "u1"
        assert len(json.dumps(frame)) < n * (N * N * 4 / 3 + 100) + 400


def test_every_builder_runs_on_a_loaded_view_without_reading_the_store(tmp_path, monkeypatch):
    from bumpdiff_core.runs import store
    from bumpdiff_core.results.view import RunView

    view = RunView.open(write_run(tmp_path)).load_all()

    def refuse(*args, **kwargs):
        raise AssertionError("a figure builder read the run store")

    for name in ("read_bytes", "load_arrays", "load_tensors", "read_meta"):
        monkeypatch.setattr(store.Run, name, refuse)
    figures.sample_grid(view, STEPS[-1])
    figures.sample_grid_scrubber(view)
    figures.manifold_scrubber(view)
    figures.phase_panels(view)
    figures.failure_gallery(view)
    figures.layer_r2_profile(view)
    figures.loss_curves(view)
    figures.metric_curves(view.table)
    figures.phase_diagram({1.0: view.table})
    figures.imbalanced_curves({(0.5, 1.0): view.table})
    figures.factorized_vs_coupled(view.image_size, view.config.sigma)
    figures.example_images(view.config)
    with pytest.raises(AssertionError, match="read the run store"):  # the guard is live
        RunView.open(view.run).table
