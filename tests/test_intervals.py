"""Intervals: Wilson, t, the leak-free LOO-R^2 bootstrap, Spearman permutation and bootstrap."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bumpdiff_core.measure import intervals as iv
from bumpdiff_core.measure.metrics import r2_cross_validated


def _layer(n=100, d=2048, noise=0.5, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.uniform(0, 16, (n, 2))
    x = np.tanh(labels @ rng.normal(size=(2, d)) / 8) + noise * rng.normal(size=(n, d))
    return x, labels


# --- Wilson ---------------------------------------------------------------------------------------

def test_wilson_matches_the_formula_and_has_positive_width_at_the_extremes():
    low, high = iv.wilson(7, 20)
    z = stats.norm.ppf(0.975)
    p, n = 0.35, 20
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    assert (low, high) == pytest.approx((centre - half, centre + half))
    assert iv.wilson(0, 100)[0] == 0.0 and 0 < iv.wilson(0, 100)[1] < 0.05
    assert iv.wilson(100, 100)[1] == 1.0 and 0.95 < iv.wilson(100, 100)[0] < 1
    assert iv.wilson(0, 0) == (0.0, 1.0)
    k = np.arange(11)
    lo, hi = iv.wilson(k, 10)
    assert lo.shape == (11,) and np.all(hi - lo > 0) and np.all(lo <= k / 10) and np.all(k / 10 <= hi)
    with pytest.raises(ValueError):
        iv.wilson(5, 3)


def test_wilson_covers_about_95_percent():
    rng = np.random.default_rng(0)
    for p in (0.05, 0.5, 0.9):
        k = rng.binomial(100, p, size=4000)
        lo, hi = iv.wilson(k, 100)
        assert 0.92 < np.mean((lo <= p) & (p <= hi)) < 0.98


# --- t interval -----------------------------------------------------------------------------------

def test_t_interval():
    mean, low, high = iv.t_interval([1.0, 2.0, 3.0, np.nan])
    assert mean == 2.0
    assert high - mean == pytest.approx(stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert mean - low == pytest.approx(high - mean)
    one = iv.t_interval([0.4])
    assert one[0] == 0.4 and math.isnan(one[1]) and math.isnan(one[2])
    assert all(math.isnan(v) for v in iv.t_interval([]))


# --- bootstrap of the LOO R^2 ---------------------------------------------------------------------

def test_loo_predictions_reproduce_r2_cross_validated():
    x, labels = _layer(n=60, d=300)
    pred = iv.loo_ridge_predictions(x, labels)
    r2 = 1 - np.mean((labels - pred) ** 2, axis=0) / labels.var(axis=0)
    np.testing.assert_allclose(r2, r2_cross_validated(x, labels), rtol=1e-10)


def test_loo_predictions_are_true_leave_one_out_predictions():
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    x, labels = _layer(n=30, d=40, seed=3)
    y = labels[:, 0]
    pred = iv.loo_ridge_predictions(x, y, alphas=[10.0])
    i = 7
    keep = np.arange(len(y)) != i
    # the closed form standardises with all n points (as metrics.py does); refit with that scaling
    xs = StandardScaler().fit_transform(x)
    model = Ridge(alpha=10.0).fit(xs[keep], y[keep])
    assert pred[i] == pytest.approx(model.predict(xs[i:i + 1])[0], rel=1e-8)


def test_bootstrap_r2_loo_value_equals_the_metric_and_interval_brackets_it():
    x, labels = _layer()
    for j in range(2):
        value, low, high = iv.bootstrap_r2_loo(x, labels[:, j], n_boot=200, seed=1)
        assert value == pytest.approx(r2_cross_validated(x, labels[:, j]), rel=1e-12)
        assert low < value < high and high - low > 0
    # deterministic under a seed
    assert iv.bootstrap_r2_loo(x, labels[:, 0], seed=5) == iv.bootstrap_r2_loo(x, labels[:, 0], seed=5)


def test_bootstrap_r2_loo_does_not_leak_on_pure_noise():
    """Features unrelated to the target: LOO R^2 <= ~0 and the interval does not exclude 0 from above.

    (Resampling points with duplicates and rerunning LOO would report a clearly positive R^2 here.)
    """
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(100, 2048)), rng.normal(size=100)
    value, low, high = iv.bootstrap_r2_loo(x, y)
    assert value < 0.05 and low < 0.05 and high > low


def test_bootstrap_pairs_r2_width_shrinks_with_n_and_handles_degenerate_input():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 800):
        t = rng.normal(size=n)
        p = t + 0.5 * rng.normal(size=n)
        value, low, high = iv.bootstrap_pairs_r2(p, t, n_boot=500)
        assert low < value < high
        widths.append(high - low)
    assert widths[1] < widths[0] / 2
    v, lo, hi = iv.bootstrap_pairs_r2(np.ones(5), np.ones(5))
    assert math.isnan(v) and math.isnan(lo) and math.isnan(hi)
    assert all(math.isnan(v) for v in iv.bootstrap_r2_loo(np.ones((10, 3)), np.zeros(10)))


# --- Spearman -------------------------------------------------------------------------------------

def test_spearman_permutation_is_exact_for_six_increments():
    x = np.arange(6)
    rho, p = iv.spearman_permutation(x, x * 2.0)
    assert rho == pytest.approx(1.0) and p == pytest.approx(2 / 720)  # rho = +1 or -1: 2 of 720
    y = [1, 3, 2, 5, 4, 6]
    rho, p = iv.spearman_permutation(x, y)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    # same count as a brute-force enumeration with scipy
    import itertools
    null = [stats.spearmanr(x, np.array(y)[list(perm)]).statistic for perm in itertools.permutations(range(6))]
    assert p == pytest.approx(np.mean(np.abs(null) >= abs(rho) - 1e-12))


def test_spearman_permutation_monte_carlo_and_ties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    rho, p = iv.spearman_permutation(x, rng.normal(size=40), n_perm=2000)
    assert 0.05 < p <= 1
    rho, p = iv.spearman_permutation(x, x + 0.1 * rng.normal(size=40), n_perm=2000)
    assert rho > 0.9 and p == pytest.approx(1 / 2001)
    ties_y = np.round(x)
    assert iv.spearman_permutation(x, ties_y, n_perm=500)[0] == pytest.approx(stats.spearmanr(x, ties_y).statistic)


def test_bootstrap_spearman_has_positive_width():
    x = np.arange(6)
    y = np.array([0.2, 0.25, 0.5, 0.45, 0.8, 0.9])
    rho, low, high = iv.bootstrap_spearman(x, y, seed=0)
    assert rho == pytest.approx(stats.spearmanr(x, y).statistic)
    assert low < rho <= high and high - low > 0
    rng = np.random.default_rng(1)
    a = rng.normal(size=100)
    rho, low, high = iv.bootstrap_spearman(a, a + rng.normal(size=100))
    assert low < rho < high and 0 < high - low < 0.5


def test_there_is_one_closed_form_leave_one_out_ridge():
    from bumpdiff_core.measure import metrics

    x, labels = _layer(n=40, d=120, seed=4)
    np.testing.assert_array_equal(iv.loo_ridge_predictions(x, labels), metrics.loo_ridge_predictions(x, labels))
    for j in range(2):  # the value is the metric's own number, bit for bit
        assert iv.bootstrap_r2_loo(x, labels[:, j])[0] == metrics.r2_cross_validated(x, labels[:, j])


def test_wilson_and_t_interval_agree_with_scipy():
    # scipy as the oracle: binomtest's Wilson interval, and the Student t interval of a mean
    for k, n in [(0, 10), (3, 10), (50, 100), (97, 100), (40, 40)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert iv.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)
    values = np.array([0.9, 1.1, 1.3, 0.7])
    mean, low, high = iv.t_interval(values)
    expected = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert (low, high) == pytest.approx(expected)
    assert mean == pytest.approx(values.mean())
