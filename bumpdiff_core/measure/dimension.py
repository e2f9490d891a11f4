"""Intrinsic dimension of a tapped layer judged against a null built on the *same labels*.

Why a null: the evaluation labels are drawn from the integer grid of the image (quick profile:
100 of the 256 positions of a 16 x 16 grid). Many points then have two or more neighbours at
exactly the same label distance, so the ratio r2 / r1 that TwoNN (Facco et al. 2017) reads is
often exactly 1 or sqrt(2) instead of being Pareto-distributed: TwoNN, calibrated on uniform
continuous coordinates, reads a *noiseless* smooth 2D sheet through these labels as ~4.5 (4.1
for the flat grid itself, 2.0 for the same sheet on continuous labels) and climbs fast with
noise. A fixed threshold ("2D when below 3") is therefore meaningless on grid labels. This
module

- estimates the dimension with `mle_dimension` (Levina & Bickel 2005, "Maximum likelihood
  estimation of intrinsic dimension", NIPS 17, averaged over k = 5..10 with the MacKay &
  Ghahramani 2005 correction): it uses the k nearest neighbours, so grid ties at the first
  one or two ranks matter much less than for TwoNN (flat grid 2.29, smooth sheets 2.3-2.6);
- measures the representation's noise relative to its neighbour spacing (`noise_level`, from
  two draws of the same labels with different noise seeds);
- builds the distribution of the same estimator on smooth random 2D sheets through the same
  labels with the same relative noise (`sheet_null` -> `NullBand`), and judges an estimate
  against its 95 % band (`judge_dimension`). `sheet_null(..., estimator="twonn")` gives TwoNN
  its own null, so both estimators can be shown side by side, each judged fairly;
- `sheet_scale` measures how curved a representation is (the length scale of the best-fitting
  Gaussian-kernel sheet), for a null matched to it.

Measured on the quick profile's labels (tests/test_dimension.py; default null, noise measured
by `noise_level` on two noisy draws):

  noise   null MLE band   polynomial sheet   3D blob        null TwoNN band   sheet   blob
  0.1     [1.98, 2.67]    2.28  2D           3.29  not 2D   [1.61, 4.91]      3.87    4.02 (2D!)
  0.2     [2.19, 2.74]    2.34  2D           3.93  not 2D   [1.90, 5.12]      4.08    5.40
  0.4     [2.53, 3.07]    2.57  2D           6.22  not 2D   [2.64, 5.93]      4.90    10.5
  isotropic Gaussian noise 100 x 512: MLE 81, TwoNN 96.

TwoNN's own null is so wide on grid labels that it cannot tell the 3D blob from a sheet at
noise 0.1; MLE can. The band's position depends on the sheets' curvature more than on the
draw-to-draw scatter (see `sheet_null`): a representation more curved than the default range
(a bump image of sigma 1 px in pixel space: MLE 3.9) needs a null matched with `sheet_scale`.

Pure numpy and scipy (no other bumpdiff_core module). Distances are Euclidean (scipy pdist, cost
O(n^2 D)); `mle_dimension` takes ~1 ms and one `sheet_null` call with the default 200 draws
~0.5-0.7 s of one core for 100 labels x 512 dims.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Union

import numpy as np
from scipy.spatial.distance import pdist, squareform

__all__ = ["mle_dimension", "twonn_dimension", "noise_level", "sheet_null", "NullBand",
           "judge_dimension", "neighbour_pairs", "sheet_scale", "ESTIMATORS",
           "DEFAULT_LENGTH_SCALE"]

# two points closer than this fraction of the RMS distance to the centroid count as duplicates
_DUPLICATE_TOL = 1e-6


# --- distances ------------------------------------------------------------------------------------

def _as_points(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def _sq_distances(x: np.ndarray) -> np.ndarray:
    """(n, n) squared Euclidean distances, diagonal 0; distances below `_DUPLICATE_TOL` of the
    RMS distance to the centroid set to exactly 0.

    scipy's pdist (differences, single-threaded C): exact 0 for duplicates, and no multi-threaded
    BLAS call, which on a shared 2-core machine made a Gram-matrix version 30x slower."""
    x = _as_points(x)
    n = len(x)
    if n < 2:
        return np.zeros((n, n))
    flat = pdist(x, "sqeuclidean")
    scale = float(flat.mean()) * (n - 1) / n / 2       # mean squared distance to the centroid
    flat[flat <= (_DUPLICATE_TOL**2) * scale] = 0.0
    return squareform(flat)


def _distinct_sq_distances(x) -> np.ndarray:
    """`_sq_distances` of x with exact duplicates collapsed: of each group of points at distance
    0 (up to rounding, see `_DUPLICATE_TOL`) only the first is kept."""
    d2 = _sq_distances(x)
    zero = d2 <= 0
    first = np.argmax(zero, axis=1)          # the first point each point coincides with (or itself)
    keep = first == np.arange(len(d2))
    return d2[np.ix_(keep, keep)] if not keep.all() else d2


def _sorted_neighbour_distances(x, k: int) -> np.ndarray:
    """(m, k) distances from each distinct point to its k nearest other distinct points,
    ascending (duplicates collapsed first); inf where fewer than k others exist."""
    d2 = _distinct_sq_distances(x)
    np.fill_diagonal(d2, np.inf)
    k_eff = min(k, d2.shape[1])
    part = np.partition(d2, k_eff - 1, axis=1)[:, :k_eff] if k_eff < d2.shape[1] else d2
    part = np.sort(part, axis=1)[:, :k_eff]
    if k_eff < k:
        part = np.concatenate([part, np.full((len(part), k - k_eff), np.inf)], axis=1)
    return np.sqrt(part)


# --- estimators -----------------------------------------------------------------------------------

def mle_dimension(x, k_min: int = 5, k_max: int = 10) -> float:
    """Levina-Bickel maximum-likelihood intrinsic dimension of points x (n, D) -> float.

    For each point i and neighbour rank k, with T_j the distance to its j-th nearest distinct
    neighbour, s_k(i) = 1/(k-1) * Sum_{j<k} log(T_k / T_j) estimates 1/d without bias on a
    locally uniform d-dimensional manifold (Levina & Bickel 2005 invert s per point and then
    average). Following MacKay & Ghahramani (2005, "Comments on 'Maximum likelihood estimation
    of intrinsic dimension' by E. Levina and P. Bickel"), the inverse estimates are averaged
    over points first: d_k = 1 / mean_i s_k(i); the result is the mean of d_k over
    k = k_min..k_max.

    Ties and duplicates: tied neighbour distances (grid labels) need no special treatment; they
    give log(T_k / T_j) = 0 terms, which is what they are. Exact duplicates (points closer than
    1e-6 of the RMS distance to the centroid, i.e. 0 up to rounding) are *collapsed* to one
    point before estimating: a duplicate is the same point measured twice and carries no
    information about dimension (a set where every point appears twice gives exactly the
    estimate of the set itself). With fewer than k_max + 1 distinct points the result is nan; a
    rank k whose mean s is 0 (every point's k nearest at one distance) gives inf.
    """
    if not 2 <= k_min <= k_max:
        raise ValueError(f"need 2 <= k_min <= k_max, got k_min={k_min}, k_max={k_max}")
    t = _sorted_neighbour_distances(x, k_max)
    t = t[np.all(np.isfinite(t), axis=1)]
    if len(t) < 2:
        return float("nan")
    log_t = np.log(t)                                    # (n, k_max), column j = rank j + 1
    cum = np.cumsum(log_t, axis=1)                       # Sum_{j<=m} log T_j
    ks = np.arange(k_min, k_max + 1)
    # s_k(i) = log T_k - mean_{j<k} log T_j  (= 1/(k-1) Sum_{j<k} log(T_k/T_j))
    s = log_t[:, ks - 1] - cum[:, ks - 2] / (ks - 1)
    mean_s = s.mean(axis=0)
    with np.errstate(divide="ignore"):
        d_k = np.where(mean_s > 0, 1.0 / np.where(mean_s > 0, mean_s, 1.0), np.inf)
    return float(d_k.mean())


def twonn_dimension(x, discard: float = 0.1) -> float:
    """TwoNN intrinsic dimension (Facco et al. 2017), the "fit" method of
    `geometry.twonn_dimension` (its estimate, on the distinct points): mu_i = r2_i / r1_i, least squares through
    the origin of -log(1 - F(mu)) against log(mu) after discarding the `discard` largest mu.
    Exact duplicates are collapsed to one point first (as in `mle_dimension`; geometry's version
    drops every point whose nearest neighbour is a duplicate instead, the same when there are
    none).

    On grid labels many mu are exactly 1 (two neighbours at the same distance); those pile up at
    log mu = 0 and drag the fitted slope up. This is the artefact the sheet null accounts for.
    """
    from bumpdiff_core.measure.geometry import twonn_from_sq_distances

    d2 = _distinct_sq_distances(x)
    if len(d2) < 3:
        return float("nan")
    return twonn_from_sq_distances(d2, "fit", discard)


ESTIMATORS: dict[str, tuple[str, Callable[[np.ndarray], float]]] = {
    "mle": ("MLE", mle_dimension),
    "twonn": ("TwoNN", twonn_dimension),
}


def _resolve_estimator(estimator) -> tuple[str, Callable[[np.ndarray], float]]:
    if callable(estimator):
        return getattr(estimator, "__name__", "estimator"), estimator
    try:
        return ESTIMATORS[str(estimator).lower()]
    except KeyError:
        raise ValueError(f"estimator must be one of {', '.join(ESTIMATORS)} or a callable; "
                         f"got {estimator!r}") from None


# --- noise relative to the neighbour spacing ------------------------------------------------------

def neighbour_pairs(labels) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j), i < j, of the label pairs that define the neighbour spacing.

    Grid neighbours: the pairs at the smallest positive label distance (the grid step, 1 px on
    the quick profile), ties within 1e-6 relative. When those pairs touch fewer than half of the
    distinct labels (labels off a grid, where the smallest distance is one pair), each label is
    paired with its nearest distinct label(s) instead (ties included, each pair once).
    Duplicate labels (distance 0) are never paired.
    """
    lab = _as_points(labels)
    n = len(lab)
    diff = lab[:, None, :] - lab[None, :, :]
    dist = np.sqrt(np.einsum("ijk,ijk->ij", diff, diff))
    upper = np.triu(np.ones((n, n), dtype=bool), 1)
    positive = upper & (dist > 0)
    if not positive.any():
        raise ValueError("need at least two distinct labels")
    step = dist[positive].min()
    grid = positive & (dist <= step * (1 + 1e-6))
    i, j = np.nonzero(grid)
    distinct = len(np.unique(lab, axis=0))
    if len(np.unique(np.concatenate([i, j]))) >= distinct / 2:
        return i, j
    d = np.where(dist > 0, dist, np.inf)
    nearest = d.min(axis=1)
    near = (d <= nearest[:, None] * (1 + 1e-6)) & np.isfinite(d)
    near = near | near.T
    return np.nonzero(near & upper)


def _neighbour_spacing_sq(x: np.ndarray, i: np.ndarray, j: np.ndarray) -> float:
    diff = x[i] - x[j]
    return float(np.einsum("ij,ij->i", diff, diff).mean())


def noise_level(rep_a, rep_b, labels) -> float:
    """Relative noise of a representation: sigma / delta, from two draws of the same labels.

    rep_a, rep_b (n, D): the representations of the same n labels (same order) under two
    different noise seeds. Definitions (the ones `sheet_null` uses, so the two match):

    - sigma, the spread of one label's representation across seeds: the RMS over labels of
      |rep_a[i] - rep_b[i]| / sqrt(2). For isotropic noise of per-coordinate sd s in D dims this
      is s * sqrt(D), the RMS length of one point's noise vector.
    - delta, the neighbour spacing of the noiseless representation: the RMS distance between
      the representations of neighbouring labels (`neighbour_pairs`: grid neighbours, label
      distance 1 on the quick profile). Measured distances include the noise of both points,
      E|r[i] - r[j]|^2 = delta^2 + 2 sigma^2, so delta^2 = mean over pairs and over both draws
      of |r[i] - r[j]|^2, minus 2 sigma^2.

    Returns sigma / delta; inf when the noise swamps the spacing (delta^2 <= 0), 0 for identical
    draws.
    """
    a, b = _as_points(rep_a), _as_points(rep_b)
    if a.shape != b.shape or len(a) != len(labels):
        raise ValueError(f"rep_a {a.shape}, rep_b {b.shape} and {len(labels)} labels do not match")
    i, j = neighbour_pairs(labels)
    d_ab = a - b
    sigma_sq = float(np.einsum("ij,ij->i", d_ab, d_ab).mean()) / 2
    raw = (_neighbour_spacing_sq(a, i, j) + _neighbour_spacing_sq(b, i, j)) / 2
    delta_sq = raw - 2 * sigma_sq
    if delta_sq <= 0:
        return float("inf")
    return float(np.sqrt(sigma_sq / delta_sq))


# --- the null: smooth 2D sheets through the same labels -------------------------------------------

# length scale of the null's sheets, a fraction of the label span, drawn log-uniformly per axis
DEFAULT_LENGTH_SCALE = (0.15, 1.0)


@dataclass(frozen=True)
class NullBand:
    """The 95 % band (2.5 % and 97.5 % quantiles) and median of a dimension estimator on
    smooth 2D sheets through the evaluation labels with noise `noise` (sigma / delta, see
    `noise_level`). `labels` is the number of labels (0 when not known); `length_scale` the
    (low, high) range of the sheets' length scales, as a fraction of the label span."""
    low: float
    high: float
    median: float
    draws: int
    estimator_name: str
    noise: float
    labels: int = 0
    length_scale: Optional[tuple[float, float]] = None
    values: tuple = ()          # the estimates of every draw (+inf for non-finite), for other quantiles

    def band(self, level: float) -> tuple[float, float]:
        """The central `level` band of the draws (e.g. 0.9, 0.99) -> (low, high)."""
        if not 0 < level < 1 or not self.values:
            raise ValueError(f"level must be in (0, 1) and the draws kept; got {level!r}")
        low, high = np.quantile(np.asarray(self.values), [(1 - level) / 2, (1 + level) / 2])
        return float(low), float(high)

    def text(self) -> str:
        through = f"the same {self.labels} labels" if self.labels else "the same labels"
        if self.length_scale:
            lo, hi = self.length_scale
            scale = f"{lo:.2g}" if lo == hi else f"{lo:.2g}-{hi:.2g}"
            through += f" (length scale {scale} of their span)"
        return (f"null 2D sheet through {through}, noise {self.noise:.2f}: {self.estimator_name} "
                f"95 % band [{self.low:.2f}, {self.high:.2f}] ({self.draws} draws)")


def _sheet(lab01: np.ndarray, dim: int, length_scale, rng) -> np.ndarray:
    """A random smooth 2D sheet: random Fourier features sqrt(2/dim) cos(p w + b) of the label
    positions p (scaled to unit span), w[a] ~ N(0, 1 / length_scale[a]^2) on each axis a: a
    random draw of a Gaussian-kernel embedding of (x, y), curved on the scale `length_scale` of
    the label range (one value, or one per axis)."""
    ls = np.broadcast_to(np.asarray(length_scale, dtype=np.float64), (lab01.shape[1],))
    w = rng.standard_normal((lab01.shape[1], dim)) / ls[:, None]
    b = rng.uniform(0, 2 * np.pi, dim)
    return np.sqrt(2.0 / dim) * np.cos(lab01 @ w + b)


def _length_scale_range(length_scale) -> tuple[float, float]:
    lo, hi = ((length_scale, length_scale) if np.ndim(length_scale) == 0
              else tuple(float(v) for v in length_scale))
    if not 0 < lo <= hi < np.inf:
        raise ValueError(f"length_scale must be > 0 (a value or a (low, high) range), got {length_scale!r}")
    return float(lo), float(hi)


def sheet_null(labels, noise: float, dim: int = 512, draws: int = 200, seed: int = 0,
               estimator: Union[str, Callable[[np.ndarray], float]] = "mle",
               length_scale: Union[float, tuple[float, float]] = DEFAULT_LENGTH_SCALE) -> NullBand:
    """Null distribution of a dimension estimate for a smooth 2D sheet through `labels`.

    Each draw: a new random smooth embedding of the labels (n, 2) into `dim` dimensions
    (`_sheet`: random Fourier features, a random draw of a Gaussian-kernel embedding whose
    length scale, as a fraction of the label span, is drawn log-uniformly in the range
    `length_scale` independently for x and y; a single value fixes it), plus isotropic Gaussian
    noise whose RMS length per point is `noise` times that sheet's own neighbour spacing (RMS
    distance over `neighbour_pairs(labels)`), i.e. the definition of `noise_level`; then the
    estimator ("mle": `mle_dimension`, "twonn": `twonn_dimension`, or a callable
    points -> float). Returns the 2.5 %, 97.5 % quantiles and the median over `draws`
    (non-finite estimates count as +inf). Deterministic for a given seed.

    The length scale matters more than the draw-to-draw scatter: on the quick profile's labels
    a noiseless sheet reads MLE 2.29 when nearly flat (length scale >= 1), 2.41 at 0.3, 2.57 at
    0.2, 2.81 at 0.15, 3.7 at 0.1 (a bump image of sigma 1 px in pixel space is ~0.09), each
    with a draw-to-draw sd of only 0.01-0.03. The default range (0.15, 1) covers smooth sheets
    from gently to fairly curved; for a representation that is more curved, measure its scale
    with `sheet_scale` and pass a range around it, e.g. (ls / 1.5, ls * 1.5).

    With 200 draws the upper edge moves by ~0.02 from seed to seed, the lower edge (set by the
    most anisotropic draws, length scales up to 6.7x apart) by ~0.07.

    Cost: ~3 ms per draw at 100 labels x 512 dims (200 draws 0.5-0.7 s on one core).
    """
    if noise < 0 or not np.isfinite(noise):
        raise ValueError(f"noise must be finite and >= 0, got {noise}")
    if draws < 2:
        raise ValueError(f"need at least 2 draws, got {draws}")
    name, fn = _resolve_estimator(estimator)
    lo_ls, hi_ls = _length_scale_range(length_scale)
    lab = _as_points(labels)
    lab01 = (lab - lab.min(axis=0)) / _span(lab)
    i, j = neighbour_pairs(lab)
    rng = np.random.default_rng(seed)
    out = np.empty(draws)
    for t in range(draws):
        ls = np.exp(rng.uniform(np.log(lo_ls), np.log(hi_ls), lab.shape[1]))
        s = _sheet(lab01, dim, ls, rng)
        delta = np.sqrt(_neighbour_spacing_sq(s, i, j))
        pts = s + rng.standard_normal(s.shape) * (noise * delta / np.sqrt(dim))
        out[t] = fn(pts)
    out[~np.isfinite(out)] = np.inf
    low, median, high = np.quantile(out, [0.025, 0.5, 0.975])
    return NullBand(low=float(low), high=float(high), median=float(median), draws=int(draws),
                    estimator_name=name, noise=float(noise), labels=len(lab),
                    length_scale=(lo_ls, hi_ls), values=tuple(float(v) for v in out))


def _span(lab: np.ndarray) -> float:
    span = float((lab.max(axis=0) - lab.min(axis=0)).max()) if len(lab) else 0.0
    return span if span > 0 else 1.0


def sheet_scale(rep_a, rep_b, labels) -> float:
    """Length scale of the Gaussian-kernel sheet that best matches a representation, as a
    fraction of the label span (the unit of `sheet_null`'s `length_scale`).

    From the distance profile: for each label distance r (grid distances exactly, pairs with
    the same r pooled; labels off a grid: 40 bins of r with equal pair counts; at least 3 pairs
    per distance), the noise-corrected mean squared distance
    D2(r) = mean over pairs and both draws of |rep[i] - rep[j]|^2 - 2 sigma^2 (sigma as in
    `noise_level`). A Gaussian-kernel sheet has D2(r) = c (1 - exp(-r^2 / (2 l^2))); l is the
    least-squares fit in log D2 over a grid of 400 values (c in closed form), each distance
    weighted equally. Recovers the length scale of the null's own sheets within ~2 % at noise
    up to 0.4; a flat map gives a large value (capped at 20 spans). Pass rep_b = rep_a when only
    one draw exists (no noise correction).
    """
    a, b = _as_points(rep_a), _as_points(rep_b)
    lab = _as_points(labels)
    if a.shape != b.shape or len(a) != len(lab):
        raise ValueError(f"rep_a {a.shape}, rep_b {b.shape} and {len(lab)} labels do not match")
    iu, ju = np.triu_indices(len(lab), 1)
    r = np.sqrt(((lab[iu] - lab[ju]) ** 2).sum(axis=1))
    sigma_sq = float(((a - b) ** 2).sum(axis=1).mean()) / 2
    d2 = (((a[iu] - a[ju]) ** 2).sum(axis=1) + ((b[iu] - b[ju]) ** 2).sum(axis=1)) / 2 - 2 * sigma_sq
    keep = r > 0
    if not keep.any():
        return float("nan")
    r, d2 = r[keep], d2[keep]
    _, inv, count = np.unique(np.round(r / r.min(), 6), return_inverse=True, return_counts=True)
    if len(count) > 60:                      # labels off a grid: 40 bins of equal pair counts
        edges = np.quantile(r, np.linspace(0, 1, 41)[1:-1])
        inv = np.searchsorted(edges, r)
        count = np.bincount(inv, minlength=40)
    with np.errstate(invalid="ignore", divide="ignore"):
        dist = np.bincount(inv, r) / count
        mean = np.bincount(inv, d2) / count
    ok = (count >= 3) & (mean > 0)
    if ok.sum() < 2:
        return float("nan")
    dist, mean = dist[ok], mean[ok]
    span = _span(lab)
    grid = np.geomspace(dist.min() / 4, 20 * span, 400)
    model = -np.expm1(-dist[None, :] ** 2 / (2 * grid[:, None] ** 2))
    res = np.log(mean)[None, :] - np.log(model)
    res -= res.mean(axis=1, keepdims=True)
    return float(grid[np.argmin((res**2).sum(axis=1))] / span)


def judge_dimension(estimate: float, band: NullBand) -> str:
    """'2D' when band.low <= estimate <= band.high, 'not 2D' above the band, 'below 2D' below.

    'not 2D' (above): more spread at the neighbour scale than any sheet of the null with this
    noise level, i.e. extra dimensions (a third varying factor, or noise beyond the measured
    level). 'below 2D' (below): *less* spread than any sheet of the null: the points lie closer
    to a curve than a sheet at the scale of ~10 neighbours, e.g. one label axis encoded much
    more weakly than the other (a strongly anisotropic sheet, such as a swiss roll 9x longer
    than wide: MLE 1.4), a collapse onto a 1D curve, or clusters (many labels mapped to nearly
    the same point, e.g. a map that changes little within a pooling cell). It is not evidence
    of fewer than 2 *varying* factors on its own. Raises on a nan estimate (nothing to judge).
    """
    if estimate is None or np.isnan(estimate):
        raise ValueError("cannot judge a nan estimate")
    if estimate > band.high:
        return "not 2D"
    if estimate < band.low:
        return "below 2D"
    return "2D"
