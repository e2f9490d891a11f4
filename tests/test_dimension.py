"""Intrinsic dimension on grid labels: MLE (k 5-10) and TwoNN judged against a null of smooth 2D
sheets through the *same* evaluation labels (bumpdiff_core/measure/dimension.py).

Run with `-s` to see the measured numbers and the printed null bands."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core.measure import dimension as dm

SIZE, EVAL_LABELS, EVAL_SEED, DIM = 16, 100, 1234, 512   # the quick profile; tap 32 ch x 4 x 4


def quick_labels() -> np.ndarray:
    """The quick profile's evaluation labels, built as data.centre_grid / evaluation_positions
    build them: (x, y) float32, row-major (index = row * 16 + column), 100 drawn with eval_seed."""
    xs = np.arange(SIZE, dtype=np.float64)
    gx, gy = np.meshgrid(xs, xs, indexing="xy")
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1).astype(np.float32)
    idx = np.random.default_rng(EVAL_SEED).choice(len(centres), size=EVAL_LABELS, replace=False)
    return centres[idx]


LABELS = quick_labels()


def _spacing(x, labels=LABELS) -> float:
    i, j = dm.neighbour_pairs(labels)
    return float(np.sqrt(((x[i] - x[j]) ** 2).sum(axis=1).mean()))


def _noisy(x, level, rng):
    """x plus isotropic noise of RMS length `level` x the neighbour spacing per point."""
    return x + rng.standard_normal(x.shape) * level * _spacing(x) / np.sqrt(x.shape[1])


def poly_sheet(labels=LABELS, seed=7):
    """A fixed smooth nonlinear 2D sheet, not of the null's family (random Fourier features):
    polynomial and trigonometric features of (x, y) through a random linear map into 512 dims."""
    u = np.asarray(labels, dtype=np.float64) / (SIZE - 1)
    x, y = u[:, 0], u[:, 1]
    f = np.stack([x, y, x * x, x * y, y * y, np.sin(2.5 * x), np.cos(2 * y), np.sin(1.5 * (x + y)),
                  x**3, np.tanh(3 * (y - 0.5))], axis=1)
    return f @ np.random.default_rng(seed).standard_normal((f.shape[1], DIM))


def blob3d(labels=LABELS, seed=11):
    """A 3D blob: (x, y) plus a random third coordinate, embedded smoothly into 512 dims."""
    rng = np.random.default_rng(seed)
    z = np.c_[np.asarray(labels, dtype=np.float64) / (SIZE - 1), rng.uniform(0, 1, len(labels))]
    w, b = rng.standard_normal((3, DIM)) / 0.5, rng.uniform(0, 2 * np.pi, DIM)
    return np.sqrt(2 / DIM) * np.cos(z @ w + b)


def grid_sheet(seed=0, length_scale=0.5):
    """A noiseless smooth sheet of the null's own family through the grid labels."""
    return dm._sheet(LABELS / (SIZE - 1), DIM, length_scale, np.random.default_rng(seed))


# --- the labels -----------------------------------------------------------------------------------

def test_labels_are_the_quick_profile_grid_draw():
    assert LABELS.shape == (100, 2) and LABELS.dtype == np.float32
    assert len(np.unique(LABELS, axis=0)) == 100
    assert np.all(LABELS == np.round(LABELS)) and LABELS.min() >= 0 and LABELS.max() <= 15
    i, j = dm.neighbour_pairs(LABELS)
    d = np.linalg.norm(LABELS[i] - LABELS[j], axis=1)
    assert np.allclose(d, 1.0) and len(i) > 50     # grid neighbours at distance 1


def test_neighbour_pairs_fall_back_to_nearest_label_off_grid():
    lab = np.random.default_rng(0).uniform(0, 15, (100, 2))
    i, j = dm.neighbour_pairs(lab)
    assert len(np.unique(np.r_[i, j])) == 100 and np.all(i < j)


# --- the artefact: TwoNN on grid labels -----------------------------------------------------------

def test_twonn_reads_a_noiseless_grid_sheet_far_above_2_while_mle_stays_near_2():
    tw = np.array([dm.twonn_dimension(grid_sheet(s)) for s in range(5)])
    ml = np.array([dm.mle_dimension(grid_sheet(s)) for s in range(5)])
    cont = np.random.default_rng(1).uniform(0, 15, (100, 2))
    tw_cont = dm.twonn_dimension(dm._sheet(cont / 15, DIM, 0.5, np.random.default_rng(0)))
    print(f"\nnoiseless smooth 2D sheet through the grid labels: TwoNN {tw.mean():.2f} "
          f"(range {tw.min():.2f}-{tw.max():.2f}), MLE k 5-10 {ml.mean():.2f} "
          f"(range {ml.min():.2f}-{ml.max():.2f}); same sheet on continuous labels: TwoNN {tw_cont:.2f}")
    assert np.all(tw > 3.8)               # the artefact (~4.5)
    assert np.all((ml > 1.9) & (ml < 2.6))  # ~2.3: ties cost MLE only a little
    assert tw_cont < 2.6                  # TwoNN is fine off the grid


# --- estimators -----------------------------------------------------------------------------------

def test_mle_on_continuous_sheet_and_on_noise():
    rng = np.random.default_rng(3)
    cont = rng.uniform(0, 1, (300, 2))
    x = dm._sheet(cont, DIM, 0.5, rng)
    assert 1.7 < dm.mle_dimension(x) < 2.3
    assert dm.mle_dimension(rng.standard_normal((100, DIM))) > 30


def test_mle_tolerates_duplicates_and_ties():
    x = grid_sheet(0)
    doubled = np.concatenate([x, x, x[:10]])           # every point at least twice
    assert dm.mle_dimension(doubled) == pytest.approx(dm.mle_dimension(x), rel=1e-9)
    assert dm.twonn_dimension(doubled) == pytest.approx(dm.twonn_dimension(x), rel=1e-9)
    flat = np.asarray(LABELS, dtype=np.float64)           # the grid itself: every tie there is
    assert 2.0 < dm.mle_dimension(flat) < 2.6
    assert np.isnan(dm.mle_dimension(np.ones((20, 5))))  # all one point: nothing to estimate
    with pytest.raises(ValueError):
        dm.mle_dimension(x, k_min=6, k_max=5)


# --- noise level ----------------------------------------------------------------------------------

@pytest.mark.parametrize("level", [0.1, 0.2, 0.4, 1.0])
def test_noise_level_recovers_the_injected_level(level):
    for make in (poly_sheet, grid_sheet):
        x = make()
        rng = np.random.default_rng(int(level * 100))
        got = dm.noise_level(_noisy(x, level, rng), _noisy(x, level, rng), LABELS)
        assert got == pytest.approx(level, rel=0.2), (make.__name__, got)
    assert dm.noise_level(x, x, LABELS) == 0.0


# --- the null and the judgement -------------------------------------------------------------------

def test_sheet_null_is_deterministic_and_prints():
    a = dm.sheet_null(LABELS, 0.2, seed=5)
    b = dm.sheet_null(LABELS, 0.2, seed=5)
    c = dm.sheet_null(LABELS, 0.2, seed=6)
    assert a == b and a != c
    assert a.low <= a.median <= a.high and a.draws == 200 and a.labels == 100
    print("\n" + a.text())
    assert a.text().startswith("null 2D sheet through the same 100 labels")
    assert "noise 0.20: MLE 95 % band [" in a.text() and a.text().endswith("(200 draws)")
    with pytest.raises(ValueError):
        dm.sheet_null(LABELS, 0.2, estimator="pca")


@pytest.mark.parametrize("level", [0.1, 0.2, 0.4])
def test_smooth_sheet_of_another_family_is_2d_and_a_3d_blob_is_not(level):
    sheet, blob = poly_sheet(), blob3d()
    out = []
    for name, x in (("sheet", sheet), ("blob", blob)):
        rng = np.random.default_rng(42)
        a, b = _noisy(x, level, rng), _noisy(x, level, rng)
        measured = dm.noise_level(a, b, LABELS)
        band_mle = dm.sheet_null(LABELS, measured)
        band_twonn = dm.sheet_null(LABELS, measured, estimator="twonn", draws=50)
        mle, twonn = dm.mle_dimension(a), dm.twonn_dimension(a)
        out.append((name, mle, dm.judge_dimension(mle, band_mle), twonn,
                    dm.judge_dimension(twonn, band_twonn)))
        print(f"\n{name} at noise {level} (measured {measured:.3f}): MLE {mle:.2f} -> "
              f"{out[-1][2]}; TwoNN {twonn:.2f} -> {out[-1][4]}\n  {band_mle.text()}\n  {band_twonn.text()}")
    assert out[0][2] == "2D"
    assert out[1][2] == "not 2D"


def test_isotropic_noise_is_not_2d():
    x = np.random.default_rng(0).standard_normal((100, DIM))
    band = dm.sheet_null(LABELS, 0.2, draws=50)
    assert dm.judge_dimension(dm.mle_dimension(x), band) == "not 2D"
    # measured on itself, pure noise has no neighbour structure: noise_level is inf
    y = np.random.default_rng(1).standard_normal((100, DIM))
    assert dm.noise_level(x, y, LABELS) == np.inf


def test_judge_dimension_sides():
    band = dm.NullBand(low=2.0, high=2.5, median=2.2, draws=10, estimator_name="MLE", noise=0.1)
    assert [dm.judge_dimension(v, band) for v in (1.5, 2.0, 2.3, 2.5, 2.6, np.inf)] == \
        ["below 2D", "2D", "2D", "2D", "not 2D", "not 2D"]
    assert band.text() == ("null 2D sheet through the same labels, noise 0.10: "
                           "MLE 95 % band [2.00, 2.50] (10 draws)")
    with pytest.raises(ValueError):
        dm.judge_dimension(float("nan"), band)


def test_sheet_null_is_cheap():
    import time
    t = time.process_time()
    dm.sheet_null(LABELS, 0.2)
    assert time.process_time() - t < 5.0


def test_sheet_scale_recovers_curvature_and_matches_the_null_to_it():
    for ls in (0.1, 0.3):
        x = grid_sheet(1, ls)
        rng = np.random.default_rng(2)
        a, b = _noisy(x, 0.2, rng), _noisy(x, 0.2, rng)
        assert dm.sheet_scale(a, b, LABELS) == pytest.approx(ls, rel=0.1)
    # bump images of sigma 1 px (pixel vectors): a 2D sheet, but more curved than the default
    # null's sheets; with the null matched by sheet_scale it reads 2D
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    lab = LABELS.astype(np.float64)
    img = np.exp(-((xx[None] - lab[:, 0, None, None]) ** 2 + (yy[None] - lab[:, 1, None, None]) ** 2) / 2)
    img = img.reshape(len(lab), -1)
    est, ls = dm.mle_dimension(img), dm.sheet_scale(img, img, LABELS)
    default = dm.sheet_null(LABELS, 0.0, draws=100)
    matched = dm.sheet_null(LABELS, 0.0, draws=100, length_scale=(ls / 1.5, ls * 1.5))
    print(f"\nbump images sigma 1: MLE {est:.2f}, sheet_scale {ls:.3f}\n  {default.text()} -> "
          f"{dm.judge_dimension(est, default)}\n  {matched.text()} -> {dm.judge_dimension(est, matched)}")
    assert 0.07 < ls < 0.12
    assert dm.judge_dimension(est, default) == "not 2D"
    assert dm.judge_dimension(est, matched) == "2D"
