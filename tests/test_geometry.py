"""Geometry: intrinsic dimension calibrated on synthetic sheets / curves / noise, order measures,
brightest-centre read-out of rendered bumps."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core.measure import geometry as g
from bumpdiff_core.learn.data import centre_grid, render_bumps
from bumpdiff_core.measure.metrics import r2_cross_validated

N, D = 100, 2048  # ~100 evaluation labels x a wide layer (the quick profile's tap is 32 x 4 x 4 = 512)


def _embed(z, rng, noise=0.1):
    """Random orthogonal map of z (n, k) into D dims plus isotropic noise whose pairwise
    displacement is `noise` times the median nearest-neighbour distance of z."""
    q, _ = np.linalg.qr(rng.normal(size=(D, z.shape[1])))
    sq = (z**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None] - 2 * z @ z.T, 0)
    np.fill_diagonal(d2, np.inf)
    r1 = np.median(np.sqrt(d2.min(1)))
    return z @ q.T + noise * r1 / np.sqrt(2 * D) * rng.normal(size=(len(z), D))


def _sheet(rng, features=256, bandwidth=0.5):
    """A curved 2D sheet: (x, y) uniform in the unit square through random Fourier features."""
    t = rng.uniform(0, 1, (N, 2))
    w, b = rng.normal(size=(2, features)) / bandwidth, rng.uniform(0, 2 * np.pi, features)
    return _embed(np.cos(t @ w + b), rng)


def _swiss_roll(rng):
    t = rng.uniform(0, 1, (N, 2))
    a = 1.5 * np.pi * (1 + 2 * t[:, 0])
    return _embed(np.stack([a * np.cos(a), 10 * t[:, 1], a * np.sin(a)], 1), rng)


def _curve(rng, features=256, bandwidth=0.5):
    t = rng.uniform(0, 1, (N, 1))
    w, b = rng.normal(size=(1, features)) / bandwidth, rng.uniform(0, 2 * np.pi, features)
    return _embed(np.cos(t @ w + b), rng)


def _noise(rng):
    return rng.normal(size=(N, D))


SEEDS = range(5)


def test_twonn_separates_curve_sheet_and_noise():
    """Measured over 20 seeds (see twonn_dimension's docstring): sheet 1.95 +- 0.26 (range
    1.37-2.42), swiss roll 1.95 +- 0.21, curve 1.08 +- 0.15 (max 1.36), noise 208 +- 27 (min 147)."""
    est = {name: np.array([g.twonn_dimension(make(np.random.default_rng(s))) for s in SEEDS])
           for name, make in [("sheet", _sheet), ("roll", _swiss_roll), ("curve", _curve), ("noise", _noise)]}
    assert np.all(est["curve"] < 1.5)
    for sheet in ("sheet", "roll"):
        assert np.all((est[sheet] > 1.3) & (est[sheet] < 2.8)), est[sheet]
        assert 1.7 < est[sheet].mean() < 2.3
    assert 0.8 < est["curve"].mean() < 1.3
    assert np.all(est["noise"] > 50)
    # the maximum-likelihood variant agrees
    rng = np.random.default_rng(0)
    assert g.twonn_dimension(_swiss_roll(rng), method="mle") == pytest.approx(
        g.twonn_dimension(_swiss_roll(np.random.default_rng(0))), abs=0.3)


def test_twonn_ignores_duplicates_and_rejects_unknown_methods():
    rng = np.random.default_rng(1)
    x = _swiss_roll(rng)
    assert abs(g.twonn_dimension(np.concatenate([x, x[:5]])) - g.twonn_dimension(x)) < 0.3
    with pytest.raises(ValueError):
        g.twonn_dimension(x, method="nope")


def test_participation_ratio():
    rng = np.random.default_rng(0)
    line = np.outer(rng.normal(size=N), rng.normal(size=D))
    assert g.participation_ratio(line) == pytest.approx(1.0)
    disc = _embed(rng.normal(size=(N, 2)), rng, noise=0.0)
    assert 1.7 < g.participation_ratio(disc) <= 2.0
    # PR is linear: a curved sheet reads higher than 2 (measured 2.28 for this roll, 3.3 for _sheet)
    assert 2.0 < g.participation_ratio(_swiss_roll(rng)) < 2.6
    assert g.participation_ratio(_noise(rng)) > 80  # at most n - 1 = 99


# --- order measures -------------------------------------------------------------------------------

def _spiral(u, turns=1.0):
    angle, radius = 2 * np.pi * turns * u / 16, 1 + 2 * u / 16
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)


def _ordered_curved_layer(seed):
    """Labels on a 16 x 16 grid (as eval_labels draws them); each coordinate wound into a spiral:
    ordered and smooth, but a linear read-out is poor."""
    rng = np.random.default_rng(seed)
    grid = centre_grid(16, 0.5, 0.5)
    labels = grid[rng.choice(len(grid), N, replace=False)].astype(np.float64)
    z = np.concatenate([_spiral(labels[:, 0]), _spiral(labels[:, 1])], 1)
    q, _ = np.linalg.qr(rng.normal(size=(D, 4)))
    return z @ q.T + 0.01 * rng.normal(size=(N, D)), labels, rng


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_order_measures_score_an_ordered_curved_sheet_and_reject_a_shuffle(seed):
    x, labels, rng = _ordered_curved_layer(seed)
    ridge = r2_cross_validated(x, labels)
    assert np.all(ridge < 0.7)  # measured 0.51-0.67
    kx, ky = g.knn_r2(x, labels)
    assert kx > 0.8 and ky > 0.8  # measured 0.86-0.97
    overlap = g.neighbourhood_overlap(x, labels)
    chance = g.neighbourhood_overlap_chance(labels)
    assert overlap > 0.75  # measured 0.82-0.83
    assert chance == pytest.approx(10 / (N - 1), abs=0.01)
    shuffled = labels[rng.permutation(N)]
    assert max(g.knn_r2(x, shuffled)) < 0.15  # measured -0.4 .. -0.07 (chance ~ -1/k)
    assert abs(g.neighbourhood_overlap(x, shuffled) - chance) < 0.05


def test_neighbourhood_overlap_counts_ties_and_is_one_for_identity():
    labels = centre_grid(8, 1.0, 1.0).astype(np.float64)  # a regular grid: many tied distances
    assert g.neighbourhood_overlap(labels, labels, k=4) == 1.0
    assert g.neighbourhood_overlap(labels * 3 + 1, labels, k=10) == 1.0
    with pytest.raises(ValueError):
        g.neighbourhood_overlap(labels, labels, k=len(labels))


# --- brightest centre -----------------------------------------------------------------------------

@pytest.mark.parametrize("n, sigma", [(16, 1.0), (32, 1.0), (32, 2.0)])
def test_brightest_centre_is_exact_on_clean_bumps_borders_included(n, sigma):
    labels = centre_grid(n, 0.25, 0.25)
    images = render_bumps(labels, n, sigma)
    centres = g.brightest_centre(images)  # (B, 1, N, N) torch accepted
    assert centres.shape == (len(labels), 2)
    assert np.abs(centres - labels).max() < 0.01  # measured < 1e-6
    err_x, err_y = g.axis_errors(images[:, 0].numpy(), labels)
    assert err_x < 0.1 and err_y < 0.1


def test_brightest_centre_with_noise_two_bumps_and_blank_images():
    rng = np.random.default_rng(0)
    labels = rng.uniform(0, 15, (200, 2)).astype(np.float32)
    images = render_bumps(labels, 16, 1.0)[:, 0].numpy()
    noisy = images + 0.1 * rng.normal(size=images.shape).astype(np.float32)
    err_x, err_y = g.axis_errors(noisy, labels)
    assert err_x < 0.2 and err_y < 0.2  # measured 0.09
    two = render_bumps(np.array([[3.2, 4.0], [11.0, 12.5]]), 16, 1.0)[:, 0].numpy()
    both = np.maximum(two[0], 0.8 * (two[1] + 1) - 1)[None]  # the second bump dimmer
    centre = g.brightest_centre(both)
    assert np.all(np.isfinite(centre)) and np.abs(centre[0] - [3.2, 4.0]).max() < 0.1
    equal = np.maximum(two[0], two[1])[None]
    assert np.all(np.isfinite(g.brightest_centre(equal)))
    blank = -np.ones((2, 16, 16), dtype=np.float32)
    assert np.all(np.isfinite(g.brightest_centre(blank)))
    # x is the column, y the row
    assert g.brightest_centre(render_bumps(np.array([[2.0, 9.0]]), 16, 1.0))[0] == pytest.approx([2.0, 9.0], abs=1e-4)
