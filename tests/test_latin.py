"""The Latin-square training-set design (bumpdiff_core/learn/latin.py)."""
import numpy as np
import pytest

from bumpdiff_core.learn import latin

SIZES = (3, 5, 8, 12, 16, 20, 24, 32)
DESIGN_SEEDS = (0, 1, 7)


def _counts(positions, K):
    """(how often each x value occurs, how often each y value occurs)."""
    p = np.asarray(positions).astype(np.int64)
    return np.bincount(p[:, 0], minlength=K), np.bincount(p[:, 1], minlength=K)


def _as_set(positions):
    return {tuple(p) for p in np.asarray(positions).astype(np.int64).tolist()}


@pytest.mark.parametrize("K", SIZES)
def test_latin_square_has_each_value_once_per_row_and_column(K):
    for seed in DESIGN_SEEDS:
        square = latin.latin_square(K, seed)
        assert square.shape == (K, K) and square.dtype == np.int64
        assert (np.sort(square, axis=1) == np.arange(K)[None, :]).all()  # each row
        assert (np.sort(square, axis=0) == np.arange(K)[:, None]).all()  # each column


@pytest.mark.parametrize("K", SIZES)
def test_rungs_are_nested_balanced_and_disjoint_from_the_test_set(K):
    for seed in DESIGN_SEEDS:
        test = latin.test_positions(K, seed)
        assert test.shape == (2 * K, 2) and test.dtype == np.float32
        assert all((c == 2).all() for c in _counts(test, K))  # every x and every y exactly twice
        assert (latin.test_mask(K, seed).sum(axis=0) == 2).all() and (latin.test_mask(K, seed).sum(axis=1) == 2).all()
        previous = set()
        for r in range(1, latin.max_rung(K) + 1):
            train = latin.rung_positions(K, r, seed)
            assert train.shape == (r * K, 2)
            assert all((c == r).all() for c in _counts(train, K))  # every x and every y exactly r times
            assert not (_as_set(train) & _as_set(test))
            assert previous <= _as_set(train)  # rung r - 1 ⊂ rung r
            previous = _as_set(train)
            mask = latin.rung_mask(K, r, seed)
            assert mask.sum() == r * K and not (mask & latin.test_mask(K, seed)).any()
        # the top rung and the test set together are the whole grid
        assert len(previous) + len(test) == K * K


def test_positions_follow_the_grid_convention():
    """(x, y) columns, mask[y, x] like an image, row-major (centre_grid) order."""
    K, seed = 12, 3
    mask = latin.rung_mask(K, 4, seed)
    positions = latin.rung_positions(K, 4, seed)
    assert mask[positions[:, 1].astype(int), positions[:, 0].astype(int)].all()
    ids = latin.position_ids(positions, K)
    assert (np.diff(ids) > 0).all()  # sorted by y, then x
    assert (ids == np.flatnonzero(mask.ravel())).all()
    square = latin.latin_square(K, seed)
    test = latin.test_positions(K, seed).astype(int)
    assert np.isin(square[test[:, 1], test[:, 0]], [0, 1]).all()


def test_design_is_deterministic_and_depends_on_the_design_seed():
    for K in (8, 16):
        assert (latin.latin_square(K, 5) == latin.latin_square(K, 5)).all()
        assert (latin.rung_positions(K, 3, 5) == latin.rung_positions(K, 3, 5)).all()
        tests = [_as_set(latin.test_positions(K, s)) for s in range(4)]
        assert len({frozenset(t) for t in tests}) == 4
        assert not (latin.latin_square(K, 0) == latin.latin_square(K, 1)).all()


def test_arguments_are_validated_with_the_allowed_range():
    with pytest.raises(ValueError, match=r"r=0 is out of range: 1 ≤ r ≤ 14 for K = 16"):
        latin.rung_positions(16, 0)
    with pytest.raises(ValueError, match=r"r=15 is out of range"):
        latin.rung_mask(16, 15)
    with pytest.raises(ValueError, match=r"design_rungs=0 is out of range: 1 ≤ design_rungs ≤ 14 for K = 16"):
        latin.check_rung(16, 0, name="design_rungs")
    with pytest.raises(ValueError, match=r"K=2 is out of range: K ≥ 3"):
        latin.latin_square(2)
    with pytest.raises(ValueError, match=r"K must be an integer"):
        latin.test_positions(16.0)
    with pytest.raises(ValueError, match=r"design_seed=-1 is out of range"):
        latin.test_mask(8, -1)
    with pytest.raises(ValueError, match=r"integer grid"):
        latin.position_ids([[0.5, 1.0]], 8)
    assert latin.max_rung(np.int64(16)) == 14


def test_rounding_rule():
    labels = np.array([[3.0, 4.0]] * 6)
    centres = np.array([[3.49, 3.51], [3.5, 4.0], [3.0, 4.6], [np.nan, np.nan], [3.0, 4.0], [3.0, 4.0]])
    n_bumps = np.array([1, 1, 1, 1, 2, 0])
    assert latin.rounding_correct(n_bumps, centres, labels).tolist() == [True, False, False, False, False, False]
    with pytest.raises(ValueError, match="same number"):
        latin.rounding_correct([1], centres, labels)


def test_memoriser_breaks_ties_deterministically():
    train = np.array([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0]])
    drawn = latin.nearest_trained_memoriser(train, [[1.0, 1.0], [0.0, 0.0]])
    assert drawn.tolist() == [[1.0, 0.0], [1.0, 0.0]]  # (1, 1): (1, 0) is nearest; (0, 0): tie → first


@pytest.mark.parametrize("K", (8, 12, 16, 20, 24, 32))
def test_nearest_trained_memoriser_scores_zero_on_the_test_set(K):
    """Test and training positions are distinct integer grid points: every training position is
    ≥ 1 step away on some axis, so drawing the nearest one never rounds to the request."""
    for seed in (0, 1, 2, 3):
        test = latin.test_positions(K, seed)
        for r in range(1, latin.max_rung(K) + 1):
            train = latin.rung_positions(K, r, seed)
            gap = np.abs(test[:, None, :] - train[None, :, :]).max(axis=2)  # Chebyshev, every pair
            assert gap.min() >= 1
            drawn = latin.nearest_trained_memoriser(train, test)
            assert not latin.rounding_correct(np.ones(len(test)), drawn, test).any()
            # the rule is not vacuous: asked for its own training positions it is always right
            assert latin.rounding_correct(np.ones(len(train)), latin.nearest_trained_memoriser(train, train),
                                          train).all()
    # the 1-px rule would credit it: at the top rung a neighbour 1 step away is often drawn
    test, train = latin.test_positions(K), latin.rung_positions(K, latin.max_rung(K))
    drawn = latin.nearest_trained_memoriser(train, test)
    assert (np.abs(drawn - test).max(axis=1) <= 1).mean() > 0.5
