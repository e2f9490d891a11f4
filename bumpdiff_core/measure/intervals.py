"""Uncertainty of the numbers we report, each with a named method (pure numpy/scipy functions).

- `wilson`: Wilson score interval for a proportion (accuracy, fraction of single bumps). Unlike
  the Wald interval p +- z sqrt(p(1-p)/n) it keeps positive width and stays inside [0, 1] at
  p = 0 or 1, which is where early (phase A) and late (phase C) checkpoints sit.
- `t_interval`: Student t interval of a mean across seeds (few seeds: t, not normal, quantiles).
- `bootstrap_r2_loo` / `bootstrap_pairs_r2`: percentile bootstrap of an R^2 over the
  (prediction, target) pairs of *leave-one-out* predictions, computed once. Resampling the data
  points and refitting would put duplicates of a point in both the fit and its own LOO test (a
  leak that inflates R^2) and would cost a refit per replicate.
- `spearman_permutation` / `bootstrap_spearman`: a monotone trend over a handful of increments
  (e.g. 6): an exact permutation test when n! <= n_perm, else Monte Carlo; a percentile bootstrap
  of pairs for the interval.

Percentile intervals of sampled quantities have positive width whenever the sampled data are not
degenerate (the tests check it); `wilson` always has positive width for n >= 1.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
from scipy import stats

from bumpdiff_core.measure import metrics

DEFAULT_ALPHAS = metrics.DEFAULT_ALPHAS  # the grid metrics.r2_cross_validated uses


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return float(stats.norm.ppf(0.5 + level / 2))


def wilson(successes, n, level: float = 0.95):
    """Wilson score interval for successes / n -> (low, high); vectorised; n == 0 -> (0, 1).

    Scalars in -> floats out; arrays in (broadcast together) -> arrays out.
    """
    z = _z(level)
    k = np.asarray(successes, dtype=np.float64)
    m = np.asarray(n, dtype=np.float64)
    if np.any(m < 0) or np.any(k < 0) or np.any(k > m):
        raise ValueError("need 0 <= successes <= n")
    k, m = np.broadcast_arrays(k, m)
    safe = np.where(m > 0, m, 1.0)
    p = k / safe
    denom = 1 + z**2 / safe
    centre = (p + z**2 / (2 * safe)) / denom
    half = z / denom * np.sqrt(p * (1 - p) / safe + z**2 / (4 * safe**2))
    low = np.where((m > 0) & (k > 0), np.clip(centre - half, 0.0, 1.0), 0.0)  # exact 0 at k = 0
    high = np.where((m > 0) & (k < m), np.clip(centre + half, 0.0, 1.0), 1.0)  # exact 1 at k = n
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


def t_interval(values, level: float = 0.95):
    """Student t interval of the mean of `values` (e.g. one number per seed) -> (mean, low, high).

    NaNs are dropped. One value -> (value, nan, nan): a spread cannot be estimated from one seed.
    No value -> (nan, nan, nan). Identical values give a zero-width interval (no observed spread).
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, df=len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return mean, mean - half, mean + half


def loo_ridge_predictions(features, target, alphas=DEFAULT_ALPHAS) -> np.ndarray:
    """Exact leave-one-out predictions of the ridge regression of `metrics.r2_cross_validated`:
    `metrics.loo_ridge_predictions` (one implementation of the closed form, kept there).
    `target` (n,) -> (n,); (n, k) -> (n, k)."""
    return metrics.loo_ridge_predictions(features, target, alphas)


def _r2_rows(pred, target):
    """R^2 = 1 - mean((t - p)^2) / var(t) along the last axis (var with ddof 0, as metrics.py)."""
    var = target.var(axis=-1)
    mse = np.mean((target - pred) ** 2, axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var > 0, 1 - mse / np.where(var > 0, var, 1.0), np.nan)


def bootstrap_pairs_r2(pred, target, n_boot: int = 200, seed: int = 0, level: float = 0.95):
    """Percentile bootstrap of R^2 = 1 - MSE / Var(target) over (pred, target) pairs -> (r2, low, high).

    Use it for held-out or leave-one-out predictions: the predictions are fixed, so resampling
    pairs measures how much the score depends on which points were scored, with no refit and no
    leak. Replicates whose target has no variance are dropped. Cost: O(n_boot * n).
    """
    p = np.asarray(pred, dtype=np.float64).ravel()
    t = np.asarray(target, dtype=np.float64).ravel()
    if p.shape != t.shape:
        raise ValueError("pred and target must have the same length")
    value = float(_r2_rows(p, t))
    if len(t) < 2 or not np.isfinite(value):
        return value, float("nan"), float("nan")
    idx = np.random.default_rng(seed).integers(0, len(t), size=(n_boot, len(t)))
    reps = _r2_rows(p[idx], t[idx])
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0:
        return value, float("nan"), float("nan")
    q = (1 - level) / 2
    low, high = np.quantile(reps, [q, 1 - q])
    return value, float(low), float(high)


def bootstrap_r2_loo(features, target, n_boot: int = 200, seed: int = 0, level: float = 0.95,
                     alphas=DEFAULT_ALPHAS):
    """Leave-one-out ridge R^2 (= metrics.r2_cross_validated) with a bootstrap interval -> (r2, low, high).

    Method: the LOO predictions are computed once (closed form, `metrics._loo_ridge`, the fit of
    `metrics.r2_cross_validated`, whose value is returned bit for bit), then
    the (LOO prediction, target) pairs are resampled (`bootstrap_pairs_r2`). Why not resample the
    points and rerun LOO: a point drawn twice is then in the training fold of its own copy, so
    LOO scores memorisation (R^2 biased up), and each replicate costs a full fit. Resampling the
    pairs keeps every prediction out-of-sample and costs O(n_boot * n) on top of one fit.
    What it leaves out: the variability of the fitted map and of the alpha choice (each LOO
    prediction comes from a model fitted on n - 1 points, held fixed here); the interval covers
    the scoring noise of the n evaluated points, the dominant term at n ~ 100.
    `target` (n,) only; call per coordinate.
    """
    t = np.asarray(target, dtype=np.float64)
    if t.ndim != 1:
        raise ValueError("target must be 1-D; call once per coordinate")
    if len(t) < 3 or t.var() == 0:
        return float("nan"), float("nan"), float("nan")
    y, resid, mse = metrics._loo_ridge(features, t, alphas)
    _, low, high = bootstrap_pairs_r2(y[:, 0] - resid[:, 0], t, n_boot=n_boot, seed=seed, level=level)
    # the value by r2_cross_validated's own arithmetic, so it equals that metric bit for bit
    return float(1 - mse[0] / y.var(axis=0)[0]), low, high


def _spearman_of_ranks(rx, ry_rows):
    """Pearson correlation of rank vector rx with each row of ry_rows (= Spearman rho, ties averaged)."""
    a = rx - rx.mean()
    b = ry_rows - ry_rows.mean(axis=-1, keepdims=True)
    denom = np.sqrt((a**2).sum()) * np.sqrt((b**2).sum(axis=-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (b @ a) / np.where(denom > 0, denom, 1.0), np.nan)


def _finite_pairs(x, y) -> tuple[np.ndarray, np.ndarray]:
    """x and y as flat float arrays, pairs with a NaN dropped."""
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    return x[ok], y[ok]


def spearman_permutation(x, y, n_perm: int = 10000, seed: int = 0):
    """Spearman rho and its two-sided permutation p-value -> (rho, p).

    Exact when n! <= n_perm (all permutations enumerated: n = 6 gives 720, smallest p = 1/360
    for a perfect monotone trend); otherwise Monte Carlo with p = (1 + #{|rho*| >= |rho|}) /
    (1 + n_perm), which is never 0. Ties get average ranks. Pairs with a NaN are dropped.
    """
    x, y = _finite_pairs(x, y)
    n = len(x)
    if n < 3:
        return float("nan"), float("nan")
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rho = float(_spearman_of_ranks(rx, ry[None, :])[0])
    if not np.isfinite(rho):
        return rho, float("nan")
    tol = 1e-12
    if math.factorial(n) <= n_perm:
        perms = np.array(list(itertools.permutations(range(n))))
        null = _spearman_of_ranks(rx, ry[perms])
        return rho, float(np.mean(np.abs(null) >= abs(rho) - tol))
    rng = np.random.default_rng(seed)
    perms = rng.permuted(np.broadcast_to(ry, (n_perm, n)).copy(), axis=1)
    null = _spearman_of_ranks(rx, perms)
    return rho, float((1 + np.sum(np.abs(null) >= abs(rho) - tol)) / (1 + n_perm))


def bootstrap_spearman(x, y, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Spearman rho with a percentile bootstrap interval over (x, y) pairs -> (rho, low, high).

    Replicates in which x or y is constant (likely for n = 6: all draws of one point) have no rho
    and are dropped. With n this small the interval is wide and conservative: report it next to
    the permutation p-value, not instead of it.
    """
    x, y = _finite_pairs(x, y)
    n = len(x)
    if n < 3:
        return float("nan"), float("nan"), float("nan")
    rho = float(_spearman_of_ranks(stats.rankdata(x), stats.rankdata(y)[None, :])[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    rx = stats.rankdata(x[idx], axis=1)
    ry = stats.rankdata(y[idx], axis=1)
    a = rx - rx.mean(axis=1, keepdims=True)
    b = ry - ry.mean(axis=1, keepdims=True)
    denom = np.sqrt((a**2).sum(axis=1) * (b**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        reps = np.where(denom > 0, (a * b).sum(axis=1) / np.where(denom > 0, denom, 1.0), np.nan)
    reps = reps[np.isfinite(reps)]
    if len(reps) == 0 or not np.isfinite(rho):
        return rho, float("nan"), float("nan")
    q = (1 - level) / 2
    low, high = np.quantile(reps, [q, 1 - q])
    return rho, float(low), float(high)


def bootstrap_spearman_bca(x, y, n_boot: int = 2000, seed: int = 0, level: float = 0.95):
    """Spearman rho with a BCa bootstrap interval over (x, y) pairs (`scipy.stats.bootstrap`,
    paired) -> (rho, low, high): for when the percentile interval of `bootstrap_spearman` excludes
    rho (a skewed bootstrap distribution). NaN bounds when the resamples are degenerate."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rho = float(stats.spearmanr(x, y)[0])

    import warnings

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((x, y), lambda a, b: stats.spearmanr(a, b)[0], paired=True, vectorized=False,
                              n_resamples=n_boot, confidence_level=level, method="BCa",
                              random_state=np.random.default_rng(seed))
    low, high = res.confidence_interval
    return rho, float(low), float(high)
