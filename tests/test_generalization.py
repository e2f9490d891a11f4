"""Unseen scoring: positions >= 2 px (Chebyshev) from every training position, which a model that
memorised its training images cannot pass; the memoriser scored by the real accuracy rule."""
from __future__ import annotations

import numpy as np
import pytest

from bumpdiff_core.measure import metrics
from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.data import centre_grid, render_bumps, training_positions
from bumpdiff_core.measure.generalization import (chebyshev_distance_to_set, memoriser_baseline,
                                          nearest_training_positions, position_accuracy_map,
                                          split_labels, unseen_positions)

GRID16 = centre_grid(16, 1.0, 1.0)


def _as_set(positions):
    return {tuple(p) for p in np.asarray(positions).tolist()}


def test_unseen_positions_are_two_px_from_every_training_position():
    train = np.array([[0.0, 0.0], [10.0, 10.0]], dtype=np.float32)
    unseen = unseen_positions(train, GRID16)
    for x, y in [(1, 1), (0, 1), (9, 11), (11, 9)]:  # within 1 px of a training position
        assert (x, y) not in _as_set(unseen)
    for x, y in [(2, 0), (0, 2), (8, 10), (12, 12), (15, 0)]:  # >= 2 px in x or in y
        assert (x, y) in _as_set(unseen)
    assert len(unseen) == 256 - 2 * 2 - 3 * 3  # near (0, 0): a 2 x 2 corner; near (10, 10): 3 x 3
    assert chebyshev_distance_to_set(unseen, train).min() >= 2


def test_the_full_grid_has_no_unseen_positions():
    labels = split_labels(profile_config("quick"))
    assert labels["unseen"].shape == (0, 2)
    assert labels["seen"].shape == (40, 2)


@pytest.mark.parametrize("design, unseen_count", [
    (dict(design="holdout", holdout_size=6), 16),   # the inner 4 x 4 of the 6 x 6 square
    (dict(design="lines", design_lines=2), 100),    # 10 rows x 10 columns >= 2 from lines 4 and 11
])
def test_split_labels_are_deterministic_and_split_seen_from_unseen(design, unseen_count):
    config = profile_config("quick", design)
    train = training_positions(config)
    labels = split_labels(config)
    assert len(unseen_positions(train, GRID16)) == unseen_count
    assert len(labels["seen"]) == 40 and len(labels["unseen"]) == min(40, unseen_count)
    assert _as_set(labels["seen"]) <= _as_set(train)
    assert len(_as_set(labels["seen"])) == 40 and len(_as_set(labels["unseen"])) == len(labels["unseen"])
    assert chebyshev_distance_to_set(labels["unseen"], train).min() >= 2
    again = split_labels(config)
    for split in ("seen", "unseen"):
        np.testing.assert_array_equal(labels[split], again[split])
    other = split_labels(config, seed=7)
    assert _as_set(other["seen"]) != _as_set(labels["seen"])


def test_memoriser_on_a_hand_made_case():
    # training positions only on the column x = 2: the memoriser draws (2, y) for every label
    train = np.array([[2.0, y] for y in range(16)], dtype=np.float32)
    np.testing.assert_array_equal(nearest_training_positions(train, [[12.0, 5.0]]), [[2.0, 5.0]])
    on_training = memoriser_baseline(train, [[2.0, 3.0], [2.0, 9.0]], sigma=1.0, image_size=16)
    assert on_training["accuracy"] == 1.0 and on_training["frac_1"] == 1.0
    far = memoriser_baseline(train, [[12.0, 5.0], [8.0, 14.0]], sigma=1.0, image_size=16)
    assert far["accuracy"] == 0.0 and far["accuracy_y"] == 1.0 and far["accuracy_x"] == 0.0
    assert far["position_error"] == pytest.approx(8.0, abs=0.05)


def test_memoriser_is_scored_by_the_metrics_rule():
    # the same numbers as running its rendered images through detect_bumps + score_samples by hand
    train = training_positions(profile_config("quick", dict(design="random", design_count=64)))
    labels = GRID16[::5]
    drawn = nearest_training_positions(train, labels)
    counts, centres = metrics.detect_bumps(render_bumps(drawn, 16, 1.0)[:, 0].numpy(), 1.0)
    assert memoriser_baseline(train, labels, 1.0, 16) == metrics.score_samples(counts, centres, labels)


@pytest.mark.parametrize("design", [dict(design="random", design_count=64, design_seed=0),
                                    dict(design="holdout", holdout_size=6),
                                    dict(design="lines", design_lines=2)])
def test_memoriser_fails_every_unseen_position_but_passes_near_ones(design):
    """Unseen meaning "not a training position" (Chebyshev >= 1) lets a memoriser score high
    (0.84 on a random 25 % design, 0.56 on a 6 x 6 holdout, geometrically); >= 2 px gives 0."""
    train = training_positions(profile_config("quick", design))
    unseen = unseen_positions(train, GRID16)
    assert len(unseen) > 0
    for detect in (True, False):
        assert memoriser_baseline(train, unseen, 1.0, 16, detect=detect)["accuracy"] == 0.0
    not_training = unseen_positions(train, GRID16, min_distance=1)
    assert memoriser_baseline(train, not_training, 1.0, 16, detect=False)["accuracy"] > 0.45


def test_memoriser_geometric_scores_of_the_issue():
    random25 = training_positions(profile_config("quick", dict(design="random", design_count=64)))
    holdout = training_positions(profile_config("quick", dict(design="holdout", holdout_size=6)))
    score = lambda train: memoriser_baseline(  # noqa: E731
        train, unseen_positions(train, GRID16, min_distance=1), 1.0, 16, detect=False)["accuracy"]
    assert score(random25) == pytest.approx(0.84, abs=0.01)  # seed 0: 161 of 192
    assert score(holdout) == pytest.approx(20 / 36)          # the 20 positions of the square's rim


def test_position_accuracy_map():
    labels = np.array([[0, 0], [0, 0], [3, 1], [15, 15]], dtype=np.float32)
    centres = np.array([[0.2, 0.1], [3.0, 3.0], [3.5, 1.0], [np.nan, np.nan]])
    counts = np.array([1, 1, 1, 2])
    accuracy = position_accuracy_map(counts, centres, labels, 16)
    assert accuracy.shape == (16, 16)
    assert accuracy[0, 0] == 0.5 and accuracy[1, 3] == 1.0 and accuracy[15, 15] == 0.0
    assert np.isnan(accuracy).sum() == 256 - 3
    # rows are y, columns x: a non-square grid at increment_x = 0.5
    fine = position_accuracy_map([1], [[7.5, 2.0]], [[7.5, 2.0]], 16, increment_x=0.5)
    assert fine.shape == (16, 32) and fine[2, 15] == 1.0
    with pytest.raises(ValueError, match="grid"):
        position_accuracy_map([1], [[0.3, 0.0]], [[0.3, 0.0]], 16)
