"""measure/representation.py: the sheet null judged on the quick profile's real evaluation labels
(a sheet passes, a 3D blob and isotropic noise fail, the band is printed), the behavioural and
first-step R² columns, and the metrics table's columns."""
from __future__ import annotations

import numpy as np

from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.data import evaluation_positions
from bumpdiff_core.measure import representation as rep
from bumpdiff_core.measure.columns import METRIC_COLUMNS
from tests.test_dimension import _noisy, blob3d, poly_sheet

LABELS = evaluation_positions(profile_config("quick")).astype(np.float64)


def two_draws(points, level, seed=0):
    rng = np.random.default_rng(seed)
    return _noisy(points, level, rng), _noisy(points, level, rng)


def reading(cols):
    m, lo, hi = cols["dim_mle"], cols["dim_null_low"], cols["dim_null_high"]
    return "not 2D" if m > hi else "below 2D" if m < lo else "2D"


def test_the_evaluation_labels_are_the_real_ones():
    assert LABELS.shape == (100, 2) and np.allclose(LABELS, np.round(LABELS))  # integer grid: ties


def test_a_sheet_through_the_real_labels_is_2d_and_a_blob_and_noise_are_not():
    a, b = two_draws(poly_sheet(LABELS), 0.2)
    sheet = rep.dimension_columns(a, b, LABELS, draws=100, twonn_draws=40)
    assert reading(sheet) == "2D", sheet
    assert 0 < sheet["dim_noise"] < 0.5 and np.isfinite(sheet["dim_sheet_scale"])
    assert sheet["dim_null_low_99"] <= sheet["dim_null_low"] <= sheet["dim_null_low_90"]
    assert sheet["dim_null_high_90"] <= sheet["dim_null_high"] <= sheet["dim_null_high_99"]
    assert sheet["dim_twonn_null_high"] > sheet["dim_twonn_null_low"]
    a, b = two_draws(blob3d(LABELS), 0.2)
    assert reading(rep.dimension_columns(a, b, LABELS, draws=100, twonn_draws=0)) == "not 2D"
    rng = np.random.default_rng(3)
    noise_a, noise_b = rng.standard_normal((2, 100, 512))
    cols = rep.dimension_columns(noise_a, noise_b, LABELS, draws=50, twonn_draws=0)
    assert not np.isfinite(cols["dim_null_high"]) or reading(cols) == "not 2D"  # noise swamps the spacing
    assert cols["dim_mle"] > 10


def test_the_null_band_is_printed_with_its_makings(capsys):
    from bumpdiff_core.measure import dimension

    a, b = two_draws(poly_sheet(LABELS), 0.2)
    scale = dimension.sheet_scale(a, b, LABELS)
    band = dimension.sheet_null(LABELS, dimension.noise_level(a, b, LABELS), draws=50,
                                length_scale=rep.null_length_scale(scale))
    print(band.text())
    out = capsys.readouterr().out
    assert "the same 100 labels" in out and "95 % band [" in out
    lo, hi = band.band(0.9)
    assert band.low <= lo <= hi <= band.high


def test_without_a_second_draw_only_the_mle_is_there():
    cols = rep.dimension_columns(poly_sheet(LABELS), None, LABELS)
    assert np.isfinite(cols["dim_mle"]) and not np.isfinite(cols["dim_null_low"])


def test_behaviour_r2_reads_the_drawn_positions_and_first_step_r2_the_tap():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:16, 0:16]  # a bump (sigma 1 px) drawn at each label, in [-1, 1]
    right = np.stack([np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 2) * 2 - 1 for x, y in LABELS])
    ordered = rep.behaviour_columns(right, LABELS)
    shuffled = rep.behaviour_columns(right[rng.permutation(100)], LABELS)
    assert ordered["r2_x_behaviour"] > 0.95 and ordered["r2_x_behaviour_low"] <= ordered["r2_x_behaviour"]
    assert shuffled["r2_x_behaviour"] < 0.3
    cols = rep.representation_columns(LABELS, right, poly_sheet(LABELS), None, poly_sheet(LABELS))
    assert set(cols) == set(rep.REPRESENTATION_COLUMNS)
    assert cols["r2_x_first"] > 0.9 and cols["r2_y_first_low"] <= cols["r2_y_first_high"]


def test_metric_columns_carry_the_new_columns():
    assert [c for c in METRIC_COLUMNS if c in set(rep.REPRESENTATION_COLUMNS)] == list(rep.REPRESENTATION_COLUMNS)
    assert {"n_unseen_map_d2", "k_unseen_map_d2", "n_unseen_map_d3", "k_unseen_map_d3"} <= set(METRIC_COLUMNS)
    assert len(METRIC_COLUMNS) == len(set(METRIC_COLUMNS))
