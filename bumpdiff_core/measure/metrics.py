"""Scoring samples and representations: bump detection, accuracy, R^2, phase labels.

Definitions (the paper leaves them open; each is a constant here, used everywhere):

- A *bump* is a connected region (8-neighbourhood) of at least `MIN_BUMP_AREA` pixels brighter
  than half the bump's height (`BUMP_THRESHOLD` on the [0, 1] scale). Its centre is where an
  ideal bump (width sigma) best matches (highest correlation) the 7 x 7 window around its
  brightest pixel, searched to 0.01 px around the window's intensity centroid: unlike the
  centroid, it is not pulled inwards where the image border cuts the bump off. A lone region whose
  window correlates less than `MIN_BUMP_CORRELATION` with that best ideal bump (a smear, a bright
  noise texture) counts as no bump. An image whose only bright region is a single pixel on the
  border holds a bump centred just past the last pixel centre (a corner of the grid): it counts.
- `accuracy`: exactly one bump, and |x_hat - x| <= 1 and |y_hat - y| <= 1 pixel.
  `accuracy_x` / `accuracy_y`: exactly one bump and that coordinate within 1 pixel.
- `r2_x`, `r2_y`: R^2 of a linear regression from the 3D UMAP embedding to x (y), fitted and scored
  on the same points, as the paper describes. `r2_x_raw`, `r2_y_raw`: leave-one-out R^2 of a ridge
  regression from the raw activations (a control that does not depend on UMAP).
- Phase (the paper labels phases by eye; this rule reads the generation behaviour it describes):
  A if fewer than half the samples have exactly one bump; otherwise C if at least half are
  accurate, else B (mostly single bumps, mostly in the wrong place).
"""
from __future__ import annotations

import numpy as np

BUMP_THRESHOLD = 0.5
MIN_BUMP_AREA = 2
CENTROID_RADIUS = 3
MIN_BUMP_CORRELATION = 0.9
TOLERANCE_PX = 1.0
PHASE_SINGLE_BUMP = 0.5
PHASE_ACCURATE = 0.5


def detect_bumps(images: np.ndarray, sigma: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """images (B, N, N) in [-1, 1] -> (bump counts (B,), centres (B, 2) as (x, y); NaN unless one bump).

    The count is the number of bright regions. A lone region counts as a bump only when it has the
    bump's shape (correlation >= MIN_BUMP_CORRELATION with an ideal bump at its centre, over the
    window); a lone smear or a bright noise texture counts as no bump.
    """
    from scipy import ndimage

    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4:
        images = images[:, 0]
    v = (images + 1) / 2
    counts = np.zeros(len(v), dtype=np.int64)
    centres = np.full((len(v), 2), np.nan, dtype=np.float64)
    structure = np.ones((3, 3), dtype=bool)
    n = v.shape[-1]
    for i, img in enumerate(v):
        labelled, k = ndimage.label(img > BUMP_THRESHOLD, structure=structure)
        if k == 0:
            continue
        areas = np.bincount(labelled.ravel(), minlength=k + 1)[1:]
        keep = np.flatnonzero(areas >= MIN_BUMP_AREA) + 1
        if k == 1 and not len(keep) and _touches_border(labelled == 1):
            keep = np.array([1])
        counts[i] = len(keep)
        if len(keep) != 1:
            continue
        region = np.where(labelled == keep[0], img, -np.inf)
        py, px = np.unravel_index(np.argmax(region), img.shape)
        y0, y1 = max(py - CENTROID_RADIUS, 0), min(py + CENTROID_RADIUS + 1, n)
        x0, x1 = max(px - CENTROID_RADIUS, 0), min(px + CENTROID_RADIUS + 1, n)
        window = img[y0:y1, x0:x1]
        w = np.clip(window, 0, None)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        cx, cy = float((w * xx).sum() / w.sum()), float((w * yy).sum() / w.sum())
        cx, cy, correlation = _best_matching_centre(window, xx, yy, cx, cy, sigma)
        if correlation < MIN_BUMP_CORRELATION:
            counts[i] = 0
            continue
        centres[i] = (cx, cy)
    return counts, centres


def _touches_border(mask: np.ndarray) -> bool:
    return bool(mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())


def _best_matching_centre(window, xx, yy, cx, cy, sigma):
    """(x, y, correlation) of the ideal bump that correlates best with `window`: a coarse-to-fine
    grid search (0.25, 0.05, 0.01 px) within 1.5 px of the starting point (cx, cy)."""
    values = window.ravel().astype(np.float64)
    values = values - values.mean()
    norm = np.linalg.norm(values)
    if norm == 0:
        return cx, cy, 0.0
    px, py = xx.ravel()[None, :], yy.ravel()[None, :]
    best = (cx, cy, -1.0)
    for half, step in ((1.5, 0.25), (0.25, 0.05), (0.05, 0.01)):
        offsets = np.arange(-half, half + step / 2, step)
        gx, gy = np.meshgrid(best[0] + offsets, best[1] + offsets)
        gx, gy = gx.ravel()[:, None], gy.ravel()[:, None]
        ideal = np.exp(-((px - gx) ** 2 + (py - gy) ** 2) / (2 * sigma**2))
        ideal -= ideal.mean(axis=1, keepdims=True)
        correlation = ideal @ values / (np.linalg.norm(ideal, axis=1) * norm)
        k = int(np.argmax(correlation))
        best = (float(gx[k, 0]), float(gy[k, 0]), float(correlation[k]))
    return best


def placement(counts: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The accuracy rule, per sample: (x right, y right), each True when the sample has exactly
    one bump and that coordinate of its centre is within `TOLERANCE_PX` of the label."""
    single = np.asarray(counts) == 1
    with np.errstate(invalid="ignore"):
        err = np.abs(np.asarray(centres, dtype=np.float64) - np.asarray(labels, dtype=np.float64))
        return single & (err[:, 0] <= TOLERANCE_PX), single & (err[:, 1] <= TOLERANCE_PX)


def score_samples(counts: np.ndarray, centres: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy and bump-count fractions of one evaluation (labels (B, 2) as (x, y))."""
    single = counts == 1
    ok_x, ok_y = placement(counts, centres, labels)
    with np.errstate(invalid="ignore"):
        err = np.abs(centres - labels)
        dist = np.hypot(err[:, 0], err[:, 1])
    return {
        "accuracy": float(np.mean(ok_x & ok_y)),
        "accuracy_x": float(np.mean(ok_x)),
        "accuracy_y": float(np.mean(ok_y)),
        "frac_0": float(np.mean(counts == 0)),
        "frac_1": float(np.mean(single)),
        "frac_multi": float(np.mean(counts >= 2)),
        "position_error": float(np.nanmean(dist)) if single.any() else float("nan"),
    }


def r2_in_sample(features: np.ndarray, target: np.ndarray) -> float:
    """R^2 of ordinary least squares fitted and scored on the same points (the paper's measure)."""
    from sklearn.linear_model import LinearRegression

    if np.var(target) == 0:
        return float("nan")
    return float(LinearRegression().fit(features, target).score(features, target))


DEFAULT_ALPHAS = np.logspace(-2, 4, 13)  # the ridge penalties searched by `r2_cross_validated`


def _loo_ridge(features, target, alphas=DEFAULT_ALPHAS):
    """The one closed-form leave-one-out ridge fit: (y (n, k), LOO residuals (n, k), LOO MSE (k,)).

    Features standardised; exact LOO residuals for every alpha from one eigendecomposition of the
    n x n Gram matrix (e_i = r_i / (1 - H_ii) for linear smoothers; the fitted intercept adds 1/n
    to H_ii); per target, the alpha with the lowest LOO MSE (the earliest on a tie) is kept.
    """
    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    y = y[:, None] if y.ndim == 1 else y
    n = len(y)
    x = x.reshape(n, -1)
    x = x - x.mean(axis=0)
    scale = x.std(axis=0)
    x = x / np.where(scale > 0, scale, 1.0)
    yc = y - y.mean(axis=0)
    w, v = np.linalg.eigh(x @ x.T)
    w = np.clip(w, 0, None)
    vty = v.T @ yc
    best = np.full(y.shape[1], np.inf)
    best_resid = np.zeros_like(yc)
    for alpha in alphas:
        shrink = w / (w + alpha)
        fitted = v @ (shrink[:, None] * vty)
        leverage = (v**2) @ shrink + 1.0 / n
        resid = (yc - fitted) / (1 - leverage)[:, None]
        loo_mse = np.mean(resid**2, axis=0)
        better = loo_mse < best
        best = np.where(better, loo_mse, best)
        best_resid[:, better] = resid[:, better]
    return y, best_resid, best


def loo_ridge_predictions(features, target, alphas=DEFAULT_ALPHAS) -> np.ndarray:
    """Exact leave-one-out predictions of the ridge regression of `r2_cross_validated` (the same
    fit, `_loo_ridge`), so 1 - mean((target - pred)^2) / var(target) is its R^2 up to rounding.
    `target` (n,) -> (n,); (n, k) -> (n, k). Needs n >= 3."""
    y = np.asarray(target, dtype=np.float64)
    if len(y) < 3:
        raise ValueError("need at least 3 points")
    yy, resid, _ = _loo_ridge(features, y, alphas)
    pred = yy - resid
    return pred[:, 0] if y.ndim == 1 else pred


def r2_cross_validated(features: np.ndarray, target: np.ndarray, alphas=DEFAULT_ALPHAS):
    """Leave-one-out R^2 of a ridge regression on standardised features (UMAP-free control).

    Exact LOO predictions for every alpha from one eigendecomposition of the n x n Gram matrix
    (`_loo_ridge`, shared with `loo_ridge_predictions` and `intervals.bootstrap_r2_loo`). This is
    what sklearn's RidgeCV computes, written out because RidgeCV's generic path costs ~1 s per
    call on wide layers here and this one is called for every layer of every checkpoint (tests
    check it against RidgeCV). The alpha is picked per target by the same LOO error, a small
    optimism. `target` (n,) -> float; (n, k) -> array of k values.
    """
    y = np.asarray(target, dtype=np.float64)
    single = y.ndim == 1
    y2 = y[:, None] if single else y
    n = len(y2)
    out = np.full(y2.shape[1], np.nan)
    var = y2.var(axis=0)
    if n < 3 or not (var > 0).any():
        return float(out[0]) if single else out
    _, _, best = _loo_ridge(features, y2, alphas)
    out = np.where(var > 0, 1 - best / np.where(var > 0, var, 1), np.nan)
    return float(out[0]) if single else out


def phase_label(frac_1: float, accuracy: float) -> str:
    if frac_1 < PHASE_SINGLE_BUMP:
        return "A"
    return "C" if accuracy >= PHASE_ACCURATE else "B"


def first_step_of_phase(table) -> dict:
    """{phase: the first checkpoint step labelled with it, or None when no checkpoint is}, for A, B
    and C, from a metrics table (rows in step order). The one definition of when a phase starts."""
    steps = table["step"].to_numpy()
    phases = table["phase"].to_numpy()
    out = {}
    for p in "ABC":
        hits = np.flatnonzero(phases == p)
        out[p] = int(steps[hits[0]]) if len(hits) else None
    return out


def phase_transitions(table) -> dict:
    """Steps of the transitions A -> B (the first checkpoint labelled B or C: a run may skip B)
    and B -> C (the first labelled C), NaN when never reached; from `first_step_of_phase`."""
    first = first_step_of_phase(table)
    later = [first[p] for p in "BC" if first[p] is not None]
    return {"step_A_to_B": float(min(later)) if later else float("nan"),
            "step_B_to_C": float("nan") if first["C"] is None else float(first["C"])}
