"""Drive the live scrubber from Python: the slider moves both figures to that checkpoint's data."""
from __future__ import annotations

import numpy as np
import pytest
from synthetic import synthetic_view

from bumpdiff_core import figures
from bumpdiff_core.manifold import align_sequence


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

    from bumpdiff_core.widgets import Scrubber

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
    from bumpdiff_core.widgets import STATIC_ENV, Scrubber, live_scrubber

    view = synthetic_view(n=4)
    monkeypatch.setenv(STATIC_ENV, "1")
    note = live_scrubber(view)
    assert not isinstance(note, Scrubber) and "running Python kernel" in note.data
    monkeypatch.setenv(STATIC_ENV, "0")
    assert isinstance(live_scrubber(view), Scrubber)


def test_a_scrubber_opens_a_stored_run_itself(tmp_path):
    from synthetic import write_run

    from bumpdiff_core.widgets import Scrubber

    scrubber = Scrubber(write_run(tmp_path), n=4)
    assert scrubber.steps == scrubber.view.steps and scrubber.n == 4
