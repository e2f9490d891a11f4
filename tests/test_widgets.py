"""Drive the live scrubber from Python: the slider moves both figures to that checkpoint's data."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_view

from bumpdiff_core.present import figures
from bumpdiff_core.measure.manifold import align_sequence


def _manifold_points(scrubber):
    t = scrubber.manifold_figure.data[0]
    return np.stack([t.x, t.y, t.z], axis=1)


def _grid_state(scrubber):
    n = scrubber.n
    data = scrubber.grid_figure.data
    return ([np.asarray(data[k].z) for k in range(n)],
            np.array([[data[n + k].x[0], data[n + k].y[0]] for k in range(n)]))


def _assert_shows(scrubber, view, step, aligned):
    ev = view.evaluation(step)
    i = scrubber.steps.index(step)
    np.testing.assert_allclose(_manifold_points(scrubber), aligned[i], atol=2e-3)
    colour = 0 if scrubber.colour.value == "x" else 1
    np.testing.assert_allclose(scrubber.manifold_figure.data[0].marker.color, ev.labels[:, colour], atol=1e-3)
    images, dots = _grid_state(scrubber)
    for k in range(scrubber.n):
        np.testing.assert_array_equal(images[k], figures.to_uint8(ev.samples[k]))
    np.testing.assert_allclose(dots, ev.labels[: scrubber.n], atol=1e-3)
    assert scrubber.grid_figure.layout.title.text.startswith(f"step {step} ")
    assert scrubber.manifold_figure.layout.title.text.startswith(f"step {step} ")
    assert f"step {step}" in scrubber.status.value


def test_slider_moves_manifold_and_grid_to_that_checkpoint():
    import plotly.graph_objects as go

    from bumpdiff_core.present.widgets import Scrubber

    view = synthetic_view()
    scrubber = Scrubber(view)
    assert scrubber.view is view  # the page's view: nothing is read again
    assert isinstance(scrubber.manifold_figure, go.FigureWidget)
    assert isinstance(scrubber.grid_figure, go.FigureWidget)
    steps = scrubber.steps
    assert list(scrubber.slider.options) == [(str(s), s) for s in steps]
    aligned = align_sequence([view.evaluation(s).embedding.astype(np.float64) for s in steps])
    _assert_shows(scrubber, view, steps[-1], aligned)
    before_points, (before_images, _) = _manifold_points(scrubber), _grid_state(scrubber)

    scrubber.slider.value = steps[0]            # as a user dragging the slider would
    _assert_shows(scrubber, view, steps[0], aligned)
    assert not np.allclose(_manifold_points(scrubber), before_points)
    assert any(not np.array_equal(a, b) for a, b in zip(_grid_state(scrubber)[0], before_images))

    scrubber.set_step(steps[1])                 # and from code
    assert scrubber.slider.value == steps[1]
    _assert_shows(scrubber, view, steps[1], aligned)

    scrubber.colour.value = "y"
    _assert_shows(scrubber, view, steps[1], aligned)
    with pytest.raises(ValueError):
        scrubber.set_step(steps[-1] + 1)


def test_live_scrubber_is_a_note_in_the_static_book(monkeypatch):
    from bumpdiff_core.present.widgets import STATIC_ENV, Scrubber, live_scrubber

    view = synthetic_view(n=4)
    monkeypatch.setenv(STATIC_ENV, "1")
    note = live_scrubber(view)
    assert not isinstance(note, Scrubber) and "running Python kernel" in note.data
    monkeypatch.setenv(STATIC_ENV, "0")
    assert isinstance(live_scrubber(view), Scrubber)


def test_a_scrubber_opens_a_stored_run_itself(tmp_path):
    from synthetic import write_run

    from bumpdiff_core.present.widgets import Scrubber

    scrubber = Scrubber(write_run(tmp_path), n=4)
    assert scrubber.steps == scrubber.view.steps and scrubber.n == 4


# --- linked views: click a point, colour by error, compare two checkpoints -----------------------------

def _click(trace, index):
    from plotly.callbacks import InputDeviceState, Points

    trace._dispatch_on_click(Points(point_inds=[index], trace_index=0), InputDeviceState())


def test_a_click_on_a_manifold_point_shows_that_sample_large():
    from bumpdiff_core.present.widgets import Scrubber

    view = synthetic_view()
    scrubber = Scrubber(view)
    steps = scrubber.steps
    scrubber.set_step(steps[2])                       # phase B: one bump, 3 px off in x
    _click(scrubber.manifold_figure.data[0], 5)       # what plotly's click event reaches in Python
    ev = view.evaluation(steps[2])
    heat, requested, detected = scrubber.sample_figure.data
    np.testing.assert_array_equal(np.asarray(heat.z), figures.to_uint8(ev.samples[5]))
    np.testing.assert_allclose([requested.x[0], requested.y[0]], ev.labels[5], atol=1e-6)
    assert ev.bump_count[5] == 1
    np.testing.assert_allclose([detected.x[0], detected.y[0]], ev.centres[5], atol=1e-6)
    title = scrubber.sample_figure.layout.title.text
    assert f"label 5 at step {steps[2]}" in title and "1 bump" in title and "not accurate" in title
    ring = scrubber.manifold_figure.data[1]           # the clicked point is ringed
    np.testing.assert_allclose([ring.x[0], ring.y[0], ring.z[0]],
                               np.asarray(scrubber.manifold_figure.data[0].x)[5:6].tolist()
                               + [scrubber.manifold_figure.data[0].y[5], scrubber.manifold_figure.data[0].z[5]],
                               atol=1e-6)
    # scrubbing keeps the label: its sample at the new checkpoint (phase C: accurate)
    scrubber.set_step(steps[-1])
    ev = view.evaluation(steps[-1])
    np.testing.assert_array_equal(np.asarray(scrubber.sample_figure.data[0].z), figures.to_uint8(ev.samples[5]))
    assert "· accurate" in scrubber.sample_figure.layout.title.text
    # phase A: no bump or two, no detected centre
    scrubber.set_step(steps[0])
    scrubber.select(1)
    assert len(scrubber.sample_figure.data[2].x) == 0 and "not accurate" in scrubber.sample_figure.layout.title.text
    with pytest.raises(ValueError):
        scrubber.select(len(ev.labels))


def test_colour_by_position_error():
    from bumpdiff_core.present.widgets import Scrubber

    view = synthetic_view()
    scrubber = Scrubber(view)
    scrubber.set_step(scrubber.steps[2])
    scrubber.colour.value = "error"
    ev = view.evaluation(scrubber.steps[2])
    colour = np.asarray(scrubber.manifold_figure.data[0].marker.color)
    np.testing.assert_allclose(colour, np.minimum(np.hypot(*(ev.centres - ev.labels).T), 4.0), atol=1e-3)
    assert "position error" in scrubber.manifold_figure.data[0].marker.colorbar.title.text
    scrubber.set_step(scrubber.steps[0])              # phase A: a sample without exactly one bump -> the cap
    counts = view.evaluation(scrubber.steps[0]).bump_count
    assert (counts != 1).any()
    assert np.allclose(np.asarray(scrubber.manifold_figure.data[0].marker.color)[counts != 1], 4.0)


def test_compare_shows_two_checkpoints_aligned_with_the_clicked_label_in_both():
    from bumpdiff_core.measure.manifold import align_to
    from bumpdiff_core.present.widgets import Scrubber

    view = synthetic_view()
    scrubber = Scrubber(view)
    assert scrubber.compare_box.layout.display == "none"
    steps = scrubber.steps
    scrubber.compare(steps[1], steps[-1])
    assert scrubber.compare_box.layout.display == ""
    left, ring_left, right, ring_right = scrubber.compare_figure.data
    aligned = align_sequence([view.evaluation(s).embedding.astype(np.float64) for s in steps])
    left_pts = np.stack([left.x, left.y, left.z], axis=1)
    np.testing.assert_allclose(left_pts, aligned[1], atol=2e-3)
    want = align_to(aligned[1], view.evaluation(steps[-1]).embedding.astype(np.float64))
    np.testing.assert_allclose(np.stack([right.x, right.y, right.z], axis=1), want, atol=2e-3)
    assert f"step {steps[1]}" in scrubber.compare_figure.layout.annotations[0].text
    assert f"step {steps[-1]}" in scrubber.compare_figure.layout.annotations[1].text
    _click(right, 7)                                  # a click in either panel selects the label
    assert scrubber.selected == 7
    np.testing.assert_allclose([ring_left.x[0], ring_left.y[0], ring_left.z[0]], left_pts[7], atol=1e-6)
    np.testing.assert_allclose([ring_right.x[0], ring_right.y[0], ring_right.z[0]], want[7], atol=2e-3)
    assert "label 7" in scrubber.sample_figure.layout.title.text
    scrubber.colour.value = "y"
    np.testing.assert_allclose(right.marker.color, view.evaluation(steps[-1]).labels[:, 1], atol=1e-3)


def test_compare_the_same_checkpoint_of_two_runs():
    from bumpdiff_core.present.widgets import Scrubber

    view, other = synthetic_view(), synthetic_view()
    other.run_id = "other-run"
    scrubber = Scrubber(view, other=other)
    scrubber.compare(view.steps[-1], other.steps[-1], other=True)
    assert "other run" in scrubber.compare_figure.layout.annotations[1].text
    left, _, right, _ = scrubber.compare_figure.data
    # the same data aligned onto itself: the two panels coincide
    np.testing.assert_allclose(np.stack([right.x, right.y, right.z], 1), np.stack([left.x, left.y, left.z], 1),
                               atol=2e-3)
    with pytest.raises(ValueError, match="different labels"):
        Scrubber(view, other=synthetic_view(n=13))
