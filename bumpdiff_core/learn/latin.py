"""The Latin-square training-set design for the data-efficiency question (numpy only).

Can a model learn x and y from O(K) training positions (two 1D problems) or does it need O(K²)?
The design answers it with training sets that cover every x value and every y value equally often
at every size, and a test set no training set touches:

- Image size K at increment 1: the positions are the integer grid {0..K-1}² (x = column,
  y = row, as in `data.centre_grid`).
- A Latin square L (K×K, entries 0..K-1, each value once per row and once per column), indexed
  ``L[y, x]`` like an image (row = y, column = x), splits the K² positions into K *classes*:
  class c = {(x, y) : L[y, x] == c}, K positions holding every x once and every y once.
- Classes 0 and 1 are the **test set** (2K positions, every x and every y exactly twice).
- Rung r (1 ≤ r ≤ K - 2 = `max_rung(K)`) trains on classes 2 .. r + 1: M = rK positions, every x
  and every y exactly r times; rung r ⊂ rung r + 1 (nested, so passing is monotone in r when
  learning is), and every rung is disjoint from the test set.
- L depends only on K and `design_seed` (never on the training seed): the cyclic square
  (i + j) mod K with its rows, columns and symbols each permuted at random, drawn with
  ``np.random.default_rng([design_seed, K])``. These squares are the isotopes of the cyclic
  square, not every Latin square; the design needs only the Latin property and a seeded,
  unstructured choice of which positions go together. Because the symbols are permuted, "classes
  0 and 1" and "classes 2..r+1" are random classes.

Positions are float32 (n, 2) arrays of (x, y) in row-major (`centre_grid`) order: sorted by y,
then x; `position_ids` gives each its `centre_grid` index y·K + x.

Scoring (`rounding_correct`): a sample is right when it holds exactly one bump whose centre
*rounds* to the requested position (|error| < 0.5 on each axis). This is stricter than the
package's 1-px accuracy rule on purpose: test and training positions are distinct integer grid
points, so every training position is ≥ 1 step away on some axis from every test position, and a
model that draws the nearest training position (`nearest_trained_memoriser`) scores exactly 0
(under the 1-px rule an adjacent training position would count as right).
"""
from __future__ import annotations

import operator

import numpy as np

TEST_CLASSES = (0, 1)    # the classes held out for testing
FIRST_TRAIN_CLASS = 2    # rung r trains on classes FIRST_TRAIN_CLASS .. FIRST_TRAIN_CLASS + r - 1
MIN_K = 3                # 2 test classes and at least 1 training class
M50_THRESHOLD = 0.5      # a rung passes when at least this share of the test samples is right
ROUNDING_TOLERANCE = 0.5  # |error| < this on each axis: the centre rounds to the requested position


def _integer(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer; got {value!r}") from None


def check_k(K) -> int:
    """K as an int; ValueError unless it is an integer ≥ `MIN_K`."""
    K = _integer(K, "K")
    if K < MIN_K:
        raise ValueError(f"K={K} is out of range: K ≥ {MIN_K} (2 test classes and at least 1 training class)")
    return K


def check_design_seed(design_seed) -> int:
    """design_seed as an int; ValueError unless it is an integer ≥ 0."""
    design_seed = _integer(design_seed, "design_seed")
    if design_seed < 0:
        raise ValueError(f"design_seed={design_seed} is out of range: design_seed ≥ 0")
    return design_seed


def max_rung(K) -> int:
    """The largest rung at image size K: K - 2 (every class but the 2 test classes)."""
    return check_k(K) - len(TEST_CLASSES)


def check_rung(K, r, name: str = "r") -> int:
    """r as an int; ValueError naming `name` (e.g. a config field, "design_rungs") and the
    allowed range unless 1 ≤ r ≤ K - 2."""
    top = max_rung(K)
    r = _integer(r, name)
    if not 1 <= r <= top:
        raise ValueError(f"{name}={r} is out of range: 1 ≤ {name} ≤ {top} for K = {K}")
    return r


def latin_square(K, design_seed=0) -> np.ndarray:
    """The design's Latin square: (K, K) int64, indexed [y, x]; each value 0..K-1 once per row and
    once per column. The cyclic square (i + j) mod K with rows, columns and symbols permuted by
    ``np.random.default_rng([design_seed, K])``."""
    K, design_seed = check_k(K), check_design_seed(design_seed)
    rng = np.random.default_rng([design_seed, K])
    rows, cols, symbols = rng.permutation(K), rng.permutation(K), rng.permutation(K)
    return symbols[(rows[:, None] + cols[None, :]) % K].astype(np.int64)


def test_mask(K, design_seed=0) -> np.ndarray:
    """Bool (K, K) map [y, x] of the 2K test positions (classes 0 and 1)."""
    return np.isin(latin_square(K, design_seed), TEST_CLASSES)


test_mask.__test__ = False  # a design function, not a pytest test


def rung_mask(K, r, design_seed=0) -> np.ndarray:
    """Bool (K, K) map [y, x] of rung r's rK training positions (classes 2 .. r + 1)."""
    r = check_rung(K, r)
    square = latin_square(K, design_seed)
    return (square >= FIRST_TRAIN_CLASS) & (square < FIRST_TRAIN_CLASS + r)


def mask_positions(mask) -> np.ndarray:
    """The True cells of a (K, K) [y, x] map as float32 (n, 2) (x, y), row-major order."""
    ys, xs = np.nonzero(np.asarray(mask, dtype=bool))
    return np.stack([xs, ys], axis=1).astype(np.float32)


def test_positions(K, design_seed=0) -> np.ndarray:
    """The 2K test positions: float32 (2K, 2) (x, y), row-major order."""
    return mask_positions(test_mask(K, design_seed))


test_positions.__test__ = False  # a design function, not a pytest test


def rung_positions(K, r, design_seed=0) -> np.ndarray:
    """Rung r's rK training positions: float32 (rK, 2) (x, y), row-major order."""
    return mask_positions(rung_mask(K, r, design_seed))


def position_ids(positions, K) -> np.ndarray:
    """int64 (n,) `centre_grid` index y·K + x of integer grid positions (x, y); ValueError for a
    position off the K×K integer grid."""
    K = check_k(K)
    p = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    cells = np.rint(p).astype(np.int64)
    if not (np.all(np.abs(p - cells) < 1e-6) and np.all((cells >= 0) & (cells < K))):
        raise ValueError(f"positions must lie on the integer grid 0..{K - 1} on both axes")
    return cells[:, 1] * K + cells[:, 0]


def rounding_correct(n_bumps, centres, labels) -> np.ndarray:
    """Bool (n,): sample i is right when it holds exactly one bump (n_bumps[i] == 1) and its
    centre rounds to the requested position: |centre - label| < 0.5 on each axis (a NaN centre
    is wrong). n_bumps (n,), centres and labels (n, 2) as (x, y)."""
    n_bumps = np.asarray(n_bumps).reshape(-1)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 2)
    if not len(n_bumps) == len(centres) == len(labels):
        raise ValueError(f"n_bumps, centres and labels must hold the same number of samples; got "
                         f"{len(n_bumps)}, {len(centres)} and {len(labels)}")
    with np.errstate(invalid="ignore"):
        close = np.abs(centres - labels) < ROUNDING_TOLERANCE  # NaN compares False
    return (n_bumps == 1) & close.all(axis=1)


def nearest_trained_memoriser(train_pos, test_pos) -> np.ndarray:
    """float64 (n, 2): what a model that only memorised its training images draws when asked for
    each of `test_pos`: the nearest training position (Euclidean). A tie goes to the first in
    `train_pos` order (for `rung_positions`: the smallest y, then the smallest x), so the result
    is deterministic."""
    train = np.asarray(train_pos, dtype=np.float64).reshape(-1, 2)
    test = np.asarray(test_pos, dtype=np.float64).reshape(-1, 2)
    if len(train) == 0:
        raise ValueError("train_pos is empty: a memoriser needs at least one training position")
    distance = ((test[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    return train[np.argmin(distance, axis=1)]  # argmin: the first index on a tie


def bisect_rungs(K: int, finished: dict, threshold: float = M50_THRESHOLD) -> int | None:
    """The rung to train next for one (K, model, seed), or None when the bracket is closed.

    `finished`: {rung: unseen (test-set) accuracy} of the rungs already trained; rungs are
    1..K-2 (`learn.latin.max_rung`). Bisection is valid because rungs are nested, so passing
    (accuracy >= threshold) is monotone in the rung. The bracket is (lo, hi): hi = the smallest
    passing rung (K - 1 when none passed), lo = the largest failing rung below hi (0 when none).
    Closed when hi = lo + 1: an adjacent fail/pass pair, or rung 1 passing (censored: M50 <= K),
    or rung K-2 failing (censored: M50 > (K-2)K). Otherwise the midpoint (lo + hi) // 2, which is
    never already finished. A fail above the smallest pass (noise against monotonicity) is ignored.
    """
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 3:
        raise ValueError(f"K={K!r} is out of range: an integer K ≥ 3")
    top = max_rung(int(K))
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold} is out of range: 0 < threshold ≤ 1")
    for r, acc in finished.items():
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)) or not 1 <= r <= top:
            raise ValueError(f"finished rung {r!r} is out of range: 1 ≤ rung ≤ {top} for K = {K}")
        if not (isinstance(acc, (int, float, np.number)) and 0 <= acc <= 1):
            raise ValueError(f"finished[{r}]={acc!r} is not an accuracy in [0, 1]")
    hi = min((r for r, acc in finished.items() if acc >= threshold), default=top + 1)
    lo = max((r for r, acc in finished.items() if acc < threshold and r < hi), default=0)
    if hi - lo <= 1:
        return None
    return int((lo + hi) // 2)
