"""Scoring: perfect bumps score 1, doubled / shifted / empty images score 0, R^2, phase labels."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core.measure import metrics
from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.data import centre_grid, evaluation_positions, render_bumps, render_factorized
from bumpdiff_core.measure.metrics import detect_bumps, phase_label, r2_cross_validated, r2_in_sample, score_samples


def _score(images, labels, sigma=1.0):
    counts, centres = detect_bumps(np.asarray(images), sigma)
    return score_samples(counts, centres, np.asarray(labels, dtype=np.float64)), counts, centres


def _render(centres, n, sigma=1.0):
    return render_bumps(np.asarray(centres, dtype=np.float32), n, sigma)[:, 0].numpy()


PHASE_DIAGRAM = [(d, d) for d in (0.1, 0.2, 0.25, 0.5, 0.75, 1.0)] + [(0.1, 1.0), (0.1, 0.5)]


@pytest.mark.parametrize("dx, dy", PHASE_DIAGRAM)
def test_perfect_bumps_at_the_evaluation_labels_score_one(dx, dy):
    config = profile_config("paper", dict(increment_x=dx, increment_y=dy))
    labels = evaluation_positions(config)
    score, counts, centres = _score(_render(labels, 32), labels)
    assert score["accuracy"] == score["accuracy_x"] == score["accuracy_y"] == 1.0
    assert score["frac_1"] == 1.0 and score["frac_0"] == score["frac_multi"] == 0.0
    assert np.abs(centres - labels).max() < 0.05


@pytest.mark.parametrize("n, increment, sigma", [(16, 0.25, 1.0), (32, 0.75, 1.0), (32, 1.0, 2.0)])
def test_perfect_bumps_score_one_everywhere_on_the_grid_borders_included(n, increment, sigma):
    labels = centre_grid(n, increment, increment)
    score, counts, centres = _score(_render(labels, n, sigma), labels, sigma)
    assert score["accuracy"] == 1.0
    # the centre estimate is not pulled inwards where the border cuts the bump off
    assert np.abs(centres - labels).max() < 0.05


def test_only_bumps_centred_past_the_corner_pixel_are_missed():
    """With pixel centres at 0..N-1, the grid {0, .., N - d} of d = 0.1 reaches 0.9 px past the last
    pixel centre: at (N - 0.1, N - 0.2), (N - 0.2, N - 0.1) and (N - 0.1, N - 0.1) no pixel reaches
    half the bump's height, so no bump is seen. Every other centre scores (checked in two opposite
    corners; the rest of the grid is covered above)."""
    n = 8
    grid = centre_grid(n, 0.1, 0.1)
    labels = grid[(grid >= n - 2).all(axis=1) | (grid < 2).all(axis=1)]
    assert len(labels) == 800
    _, counts, centres = _score(_render(labels, n), labels)
    correct = (counts == 1) & (np.abs(centres - labels).max(axis=1) <= 1.0)
    missed = {(round(float(x), 1), round(float(y), 1)) for x, y in labels[~correct]}
    assert missed == {(7.9, 7.8), (7.8, 7.9), (7.9, 7.9)}


def test_doubled_bumps_score_zero():
    rng = np.random.default_rng(0)
    labels = rng.uniform(2, 13, size=(50, 2))
    others = (labels + rng.uniform(5, 8, size=(50, 2))) % 16  # a second bump >= 5 px away per axis
    images = np.maximum(_render(labels, 16), _render(others, 16))
    score, counts, _ = _score(images, labels)
    assert (counts == 2).all()
    assert score["accuracy"] == score["accuracy_x"] == score["accuracy_y"] == 0.0
    assert score["frac_multi"] == 1.0 and score["frac_1"] == 0.0


@pytest.mark.parametrize("shift, expected", [
    ((3.0, 0.0), dict(accuracy=0.0, accuracy_x=0.0, accuracy_y=1.0)),
    ((0.0, -3.0), dict(accuracy=0.0, accuracy_x=1.0, accuracy_y=0.0)),
    ((3.0, 3.0), dict(accuracy=0.0, accuracy_x=0.0, accuracy_y=0.0)),
    ((1.3, 0.0), dict(accuracy=0.0, accuracy_x=0.0, accuracy_y=1.0)),
    ((0.8, -0.8), dict(accuracy=1.0, accuracy_x=1.0, accuracy_y=1.0)),  # within the 1 px tolerance
])
def test_shifted_bumps(shift, expected):
    labels = np.random.default_rng(1).uniform(4, 12, size=(50, 2))
    score, counts, _ = _score(_render(labels + np.array(shift), 16), labels)
    assert (counts == 1).all()
    assert {k: score[k] for k in expected} == expected


def test_empty_images_have_no_bump():
    score, counts, centres = _score(np.full((10, 16, 16), -1.0), np.full((10, 2), 8.0))
    assert score["frac_0"] == 1.0 and score["accuracy"] == 0.0
    assert (counts == 0).all() and np.isnan(centres).all()
    dim = np.random.default_rng(0).uniform(-1, -0.2, size=(10, 16, 16))  # nothing above half height
    assert _score(dim, np.full((10, 2), 8.0))[0]["frac_0"] == 1.0


def test_a_lone_smear_is_not_a_bump():
    x_oval, _, _ = render_factorized((8.0, 8.0), 16, 1.0)  # localised in x only: a vertical stripe
    score, counts, _ = _score((x_oval * 2 - 1)[None], [[8.0, 8.0]])
    assert counts[0] == 0 and score["accuracy"] == 0.0


def test_r2_is_near_one_for_linear_features_and_near_zero_for_noise():
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 32, size=200)
    mixing = rng.normal(size=(1, 3))
    linear = target[:, None] * mixing + rng.normal(scale=0.1, size=(200, 3))
    noise = rng.normal(size=(200, 3))
    assert r2_in_sample(linear, target) > 0.99
    assert r2_cross_validated(linear, target) > 0.99
    assert abs(r2_in_sample(noise, target)) < 0.1
    assert r2_cross_validated(noise, target) < 0.1
    wide_noise = rng.normal(size=(200, 500))  # more features than points: in-sample R^2 would be 1
    assert r2_cross_validated(wide_noise, target) < 0.1


def test_phase_label_rule():
    assert phase_label(frac_1=0.49, accuracy=0.49) == "A"  # mostly 0 or several bumps
    assert phase_label(frac_1=0.2, accuracy=0.0) == "A"
    assert phase_label(frac_1=0.5, accuracy=0.1) == "B"    # one bump, mostly in the wrong place
    assert phase_label(frac_1=0.9, accuracy=0.49) == "B"
    assert phase_label(frac_1=0.9, accuracy=0.5) == "C"    # one bump, mostly in the right place
    assert phase_label(frac_1=1.0, accuracy=1.0) == "C"


def _old_r2_cross_validated(features, target, alphas=np.logspace(-2, 4, 13)):
    """The closed form as it was before it was shared with intervals (frozen copy)."""
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(y)
    var = y.var(axis=0)
    x = x - x.mean(axis=0)
    scale = x.std(axis=0)
    x = x / np.where(scale > 0, scale, 1.0)
    yc = y - y.mean(axis=0)
    w, v = np.linalg.eigh(x @ x.T)
    w = np.clip(w, 0, None)
    vty = v.T @ yc
    best = np.full(y.shape[1], np.inf)
    for alpha in alphas:
        shrink = w / (w + alpha)
        fitted = v @ (shrink[:, None] * vty)
        leverage = (v**2) @ shrink + 1.0 / n
        best = np.minimum(best, np.mean(((yc - fitted) / (1 - leverage)[:, None]) ** 2, axis=0))
    return np.where(var > 0, 1 - best / np.where(var > 0, var, 1), np.nan)


def test_r2_cross_validated_is_bit_identical_to_the_closed_form_before_the_refactor():
    rng = np.random.default_rng(11)
    labels = rng.uniform(0, 16, size=(50, 2))
    x = np.concatenate([labels @ rng.normal(size=(2, 30)), rng.normal(size=(50, 200))], axis=1)
    np.testing.assert_array_equal(metrics.r2_cross_validated(x, labels), _old_r2_cross_validated(x, labels))
    pred = metrics.loo_ridge_predictions(x, labels)
    np.testing.assert_allclose(1 - np.mean((labels - pred) ** 2, axis=0) / labels.var(axis=0),
                               metrics.r2_cross_validated(x, labels), rtol=1e-12)
