"""Geometry of a tapped layer (n ~ 100 points x D features) and a position read-out of samples.

- Intrinsic dimension: `twonn_dimension` (Facco, d'Errico, Rodriguez & Laio 2017, "Estimating
  the intrinsic dimension of datasets by a minimal neighborhood information", Sci. Rep. 7:12140):
  uses only the ratio of each point's 2nd to 1st nearest-neighbour distance, so it needs no
  neighbourhood scale and works with ~100 points; `participation_ratio`: the *linear* dimension
  (Sum lambda)^2 / Sum lambda^2 of the covariance spectrum (a curved 2D sheet has PR > 2).
- Order without a linear read-out: `knn_r2` (leave-one-out k-NN regression R^2 of x and y) and
  `neighbourhood_overlap` (how many of a point's k activation-space neighbours are also its k
  label-space neighbours). Both score a sheet that is ordered but curved, where a ridge R^2 fails.
- `brightest_centre` / `axis_errors`: a per-axis position error for any sample (no need for
  exactly one bump, unlike metrics.detect_bumps).

Distances are Euclidean, from one n x n Gram matrix (cost O(n^2 D)).
"""
from __future__ import annotations

import numpy as np


def _sq_distances(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", x, x)
    d2 = sq[:, None] + sq[None, :] - 2 * (x @ x.T)
    np.maximum(d2, 0, out=d2)
    np.fill_diagonal(d2, 0)
    return d2


def _neighbours(d2: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each point's k nearest other points (self excluded, stable ties)."""
    d2 = d2.copy()
    np.fill_diagonal(d2, np.inf)
    return np.argsort(d2, axis=1, kind="stable")[:, :k]


# --- intrinsic dimension --------------------------------------------------------------------------

def twonn_dimension(x, method: str = "fit", discard: float = 0.1) -> float:
    """TwoNN intrinsic dimension (Facco et al. 2017) of points x (n, D) -> float.

    mu_i = r2_i / r1_i (2nd over 1st neighbour distance) is Pareto-distributed with exponent d
    on a locally uniform d-dimensional manifold. method="fit" (the paper's estimator): least
    squares through the origin of -log(1 - F(mu)) against log(mu) over the empirical F, after
    discarding the `discard` largest mu (the tail, most hurt by noise and curvature);
    method="mle": (n - 1) / Sum log mu (no discard). Points with r1 = 0 (duplicates) are dropped.

    Calibration (n = 100 points with *uniform continuous* coordinates, D = 2048 synthetic features
    (the quick profile's tap is 32 x 4 x 4 = 512), random orthogonal embedding, isotropic noise whose
    pairwise displacement is a fraction f of the median nearest-neighbour distance; mean +- sd
    over 20 seeds, method "fit"; tests/test_geometry.py checks it):
      f = 0.1: 2D sheet (random-Fourier-feature sheet) 1.95 +- 0.26, swiss roll 1.95 +- 0.21,
               1D curve 1.08 +- 0.15, isotropic Gaussian noise 208 +- 27;
      f = 0.3: sheet 2.17 +- 0.28, curve 1.25 +- 0.17;  f = 0.5: sheet 2.55, curve 1.44;
      f = 1.0: sheet 3.90 +- 0.53, curve 1.96 +- 0.30 ("mle" within 0.1 of "fit" throughout).
    So: no bias on clean sheets, a per-checkpoint sd of ~0.25 at n = 100 (d / sqrt(n)), and an
    upward bias once noise reaches ~30% of the neighbour spacing (TwoNN measures the dimension
    at the scale of the nearest neighbours; noise at that scale adds dimensions). On the evaluation
    labels, which lie on the integer grid (many tied neighbours), a noiseless sheet reads ~4.5:
    no verdict reads TwoNN against 2; they use `dimension.mle_dimension` against a null made from
    the run's own labels (`measure/representation.py`).
    """
    return twonn_from_sq_distances(_sq_distances(x), method, discard)


def twonn_from_sq_distances(d2: np.ndarray, method: str = "fit", discard: float = 0.1) -> float:
    """`twonn_dimension` from a square matrix of squared pairwise distances (changed in place)."""
    np.fill_diagonal(d2, np.inf)
    part = np.sqrt(np.partition(d2, 1, axis=1)[:, :2])
    r1, r2 = part[:, 0], part[:, 1]
    ok = (r1 > 0) & np.isfinite(r2)
    mu = r2[ok] / r1[ok]
    n = len(mu)
    if n < 3:
        return float("nan")
    log_mu = np.log(mu)
    if method == "mle":
        s = log_mu.sum()
        return float((n - 1) / s) if s > 0 else float("inf")
    if method != "fit":
        raise ValueError(f"method must be 'fit' or 'mle', got {method!r}")
    order = np.sort(log_mu)
    f = np.arange(1, n + 1) / n
    keep = int(np.floor(n * (1 - discard)))
    xs, ys = order[:keep], -np.log(1 - f[:keep])
    denom = float(xs @ xs)
    return float(xs @ ys / denom) if denom > 0 else float("inf")


def participation_ratio(x) -> float:
    """Participation ratio (Sum lambda)^2 / Sum lambda^2 of the covariance eigenvalues of x (n, D).

    Computed from the centred n x n Gram matrix (same nonzero spectrum, no eigendecomposition:
    trace(G)^2 / ||G||_F^2). A linear measure: 1 for a line, 2 for an isotropic flat disc, more
    for a curved sheet; at most n - 1 (isotropic noise with D >> n gives ~ n).
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    x = x - x.mean(axis=0)
    g = x @ x.T
    denom = float(np.sum(g * g))
    return float(np.trace(g) ** 2 / denom) if denom > 0 else float("nan")


# --- order measures -------------------------------------------------------------------------------

def knn_r2(x, labels, k: int = 5) -> tuple[float, float]:
    """Leave-one-out k-NN regression R^2 of each label coordinate from activations -> (r2_x, r2_y).

    Each point is predicted by the mean label of its k nearest other points in activation space
    (Euclidean, self excluded); R^2 = 1 - mean squared error / var(label). High when nearby
    activations mean nearby (x, y), whatever the shape of the sheet; ~ -1/k for unrelated labels.
    """
    lab = np.asarray(labels, dtype=np.float64)
    idx = _neighbours(_sq_distances(x), k)
    pred = lab[idx].mean(axis=1)
    var = lab.var(axis=0)
    mse = np.mean((lab - pred) ** 2, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(var > 0, 1 - mse / np.where(var > 0, var, 1.0), np.nan)
    return float(r2[0]), float(r2[1])


def _label_neighbourhoods(labels, k: int) -> np.ndarray:
    """(n, n) boolean: j is among i's k nearest in label space, ties at the k-th distance included
    (labels sit on a grid, so the k-th distance is usually shared by several points)."""
    lab = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    d2 = _sq_distances(lab)
    np.fill_diagonal(d2, np.inf)
    kth = np.partition(d2, k - 1, axis=1)[:, k - 1]
    return d2 <= kth[:, None] * (1 + 1e-9) + 1e-12


def neighbourhood_overlap(x, labels, k: int = 10) -> float:
    """Mean fraction of each point's k nearest activation-space neighbours that are among its k
    nearest label-space neighbours (ties at the k-th label distance count as neighbours) -> [0, 1].

    1 for a map that preserves neighbourhoods (any smooth ordered sheet), chance for unrelated
    labels: `neighbourhood_overlap_chance(labels, k)` (~ k / (n - 1), slightly more with ties).
    """
    n = len(labels)
    if not 0 < k < n:
        raise ValueError(f"need 0 < k < n, got k={k}, n={n}")
    idx = _neighbours(_sq_distances(x), k)
    in_label = _label_neighbourhoods(labels, k)
    return float(np.take_along_axis(in_label, idx, axis=1).mean())


def neighbourhood_overlap_chance(labels, k: int = 10) -> float:
    """Expected `neighbourhood_overlap` for activations unrelated to the labels: mean over points
    of |label neighbourhood| / (n - 1) (= k / (n - 1) without ties)."""
    return float(_label_neighbourhoods(labels, k).sum(axis=1).mean() / (len(labels) - 1))


# --- position read-out of samples -----------------------------------------------------------------

def brightest_centre(images, blur: float = 1.0) -> np.ndarray:
    """Centre (x, y) = (column, row) of the brightest region of each image -> (B, 2) float array.

    images (B, N, N) or (B, 1, N, N) in [-1, 1]. Method: the brightest pixel after a light
    Gaussian blur (`blur` px; one-pixel noise cannot win), refined per axis on the unblurred image
    by the three-point Gaussian fit through that pixel and its two neighbours (the vertex of the
    parabola through the log intensities: exact for a Gaussian bump of any width, where a 3 x 3
    centroid is biased by up to ~0.15 px towards the pixel centre; on the border, through the
    three outermost pixels, so a bump cut by the edge is not pulled inwards). Where the fit is not
    possible (a value <= 0, or no peak) the axis falls back to the intensity-weighted
    centroid of the 3 x 3 window. With two bumps it returns the brighter one's centre; always
    finite (a blank image gives its brightest pixel).
    """
    from scipy import ndimage

    img = np.asarray(images, dtype=np.float64)
    if img.ndim == 4:
        img = img[:, 0]
    v = (img + 1) / 2
    b, n, m = v.shape
    smooth = ndimage.gaussian_filter(v, sigma=(0, blur, blur), mode="nearest") if blur > 0 else v
    py, px = np.divmod(smooth.reshape(b, -1).argmax(axis=1), m)
    rows = np.arange(b)
    out = np.empty((b, 2))
    out[:, 0] = px + _refine(v[rows, py, :], px, _centroid_offset(v, py, px, axis=1))
    out[:, 1] = py + _refine(v[rows, :, px], py, _centroid_offset(v, py, px, axis=0))
    return out


def _centroid_offset(v, py, px, axis):
    """Offset from (py, px) along `axis` of the intensity centroid of each 3 x 3 window (pixels
    off the image excluded, the window minimum subtracted); 0 where the window is flat."""
    b, n, m = v.shape
    d = np.arange(-1, 2)
    yy, xx = py[:, None, None] + d[None, :, None], px[:, None, None] + d[None, None, :]
    inside = (yy >= 0) & (yy < n) & (xx >= 0) & (xx < m)
    w = v[np.arange(b)[:, None, None], np.clip(yy, 0, n - 1), np.clip(xx, 0, m - 1)]
    w = np.where(inside, w, np.inf)
    w = np.where(inside, w - w.min(axis=(1, 2), keepdims=True), 0.0)
    pos = np.broadcast_to(d[None, None, :] if axis == 1 else d[None, :, None], w.shape)
    total = w.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (w * pos).sum(axis=(1, 2)) / np.where(total > 0, total, 1), 0.0)


def _refine(lines, p, fallback):
    """Sub-pixel offsets (from index p) of the Gaussian three-point fit on 1D profiles (B, L).

    The log of a Gaussian is a parabola, so its vertex through any three consecutive samples is
    the exact centre: around p inside the image, through the three outermost pixels when p is on
    the border (a bump centred between the last pixel centre and the edge). Clamped to +-1 px;
    `fallback` where a value is <= 0 or the parabola has no maximum.
    """
    b, length = lines.shape
    if length < 3:
        return fallback
    i = np.clip(p, 1, length - 2)
    rows = np.arange(b)
    a, c, e = lines[rows, i - 1], lines[rows, i], lines[rows, i + 1]
    ok = np.minimum(np.minimum(a, c), e) > 1e-6
    with np.errstate(invalid="ignore", divide="ignore"):
        la, lc, le = (np.log(np.where(ok, t, 1.0)) for t in (a, c, e))
        curvature = la - 2 * lc + le
        ok &= curvature < 0
        offset = i - p + 0.5 * (la - le) / np.where(ok, curvature, -1.0)
    return np.where(ok, np.clip(offset, -1.0, 1.0), fallback)


def axis_errors(images, labels) -> tuple[float, float]:
    """Mean absolute error (pixels) of `brightest_centre` against labels (B, 2) as (x, y), per axis
    -> (err_x, err_y). Defined for every sample, whatever its number of bumps."""
    centres = brightest_centre(images)
    err = np.abs(centres - np.asarray(labels, dtype=np.float64))
    return float(err[:, 0].mean()), float(err[:, 1].mean())
