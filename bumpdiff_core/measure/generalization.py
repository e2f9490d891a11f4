"""Scoring on positions the model was not trained on, in a way that memorising cannot pass.

A model that has memorised its training images can still look accurate on a position it never saw
when a training position lies within the 1-px accuracy tolerance: it draws the neighbour's bump and
is "right". So an *unseen* position here is one at Chebyshev distance >= 2 px (|dx| >= 2 or
|dy| >= 2) from every training position: drawing any training image there is off by >= 2 px in x
or in y, so it fails the accuracy rule. `memoriser_baseline` checks that claim with the same
detector and the same rule (`metrics.detect_bumps` + `metrics.score_samples`) as the real model.
"""
from __future__ import annotations

import numpy as np

from bumpdiff_core.measure import metrics
from bumpdiff_core.learn.data import centre_grid, map_shape, render_bumps, training_positions

UNSEEN_MIN_DISTANCE = 2.0  # px, Chebyshev: > metrics.TOLERANCE_PX, so a memorised neighbour fails


def chebyshev_distance_to_set(positions: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(P,) distance max(|dx|, |dy|) from each of `positions` (P, 2) to the nearest of `reference` (R, 2)."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1, 2)
    if len(reference) == 0:
        return np.full(len(positions), np.inf)
    out = np.empty(len(positions))
    for start in range(0, len(positions), 4096):  # bounded memory on the 0.1-px grids
        chunk = positions[start:start + 4096]
        gap = np.abs(chunk[:, None, :] - reference[None, :, :]).max(axis=2)
        out[start:start + 4096] = gap.min(axis=1)
    return out


def unseen_mask(mask: np.ndarray) -> np.ndarray:
    """Unseen positions of a design mask on an increment-1 grid: those at Chebyshev distance >= 2
    px from every training position (`unseen_positions`), i.e. outside the mask's 3×3 dilation."""
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    near = np.zeros_like(padded)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(padded, dy, axis=0), dx, axis=1)
    return ~near[1:-1, 1:-1]


def n_unseen(mask: np.ndarray) -> int:
    """How many positions `unseen_mask` leaves."""
    return int(unseen_mask(mask).sum())


def unseen_positions(train_positions, grid, min_distance: float = UNSEEN_MIN_DISTANCE) -> np.ndarray:
    """The positions of `grid` (M, 2) at Chebyshev distance >= `min_distance` px from every
    training position, in grid order (float32 (P, 2); P = 0 for the full grid)."""
    grid = np.asarray(grid, dtype=np.float32).reshape(-1, 2)
    keep = chebyshev_distance_to_set(grid, train_positions) >= min_distance - 1e-6
    return grid[keep]


def _draw(positions: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """`n` of `positions` without replacement, in their original order; all of them when fewer."""
    if len(positions) <= n:
        return positions
    return positions[np.sort(rng.choice(len(positions), size=n, replace=False))]


def split_labels(config, n_per_split: int = 40, seed: int | None = None,
                 min_distance: float = UNSEEN_MIN_DISTANCE) -> dict[str, np.ndarray]:
    """Evaluation labels by split: {"seen": training positions, "unseen": `unseen_positions`}.

    Each split holds `n_per_split` positions drawn without replacement (with `seed`, by default
    `config.eval_seed`, one generator per split so the splits do not depend on each other), or
    all of them when there are fewer. Deterministic; float32 (P, 2) arrays as (x, y).
    """
    seed = config.eval_seed if seed is None else seed
    train = training_positions(config)
    grid = centre_grid(config.image_size, config.increment_x, config.increment_y)
    unseen = unseen_positions(train, grid, min_distance)
    return {"seen": _draw(train, n_per_split, np.random.default_rng([seed, 0])),
            "unseen": _draw(unseen, n_per_split, np.random.default_rng([seed, 1]))}


def nearest_training_positions(train_positions, labels) -> np.ndarray:
    """(B, 2): for each label, the nearest training position (Euclidean; the first in the
    training order on a tie)."""
    train = np.asarray(train_positions, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 2)
    distance = ((labels[:, None, :] - train[None, :, :]) ** 2).sum(axis=2)
    return train[np.argmin(distance, axis=1)].astype(np.float32)


def memoriser_baseline(train_positions, labels, sigma: float, image_size: int, detect: bool = True) -> dict:
    """Score of the "model" that has memorised its training images: asked for a label, it draws
    the training image of the nearest training position (`nearest_training_positions`).

    Its images are rendered with `render_bumps` and go through the same `metrics.detect_bumps` and
    `metrics.score_samples` as a real model's samples, so it is scored by the same rule by
    construction. Returns score_samples' dict (accuracy, accuracy_x, ...).

    A memorised neighbour exactly 1 px away sits on the tolerance boundary (|error| <= 1): the
    detector finds it ~1e-7 px off either side, so float rounding decides. `detect=False` scores
    the drawn positions themselves (exactly 1 px = accurate), the geometric reading of the rule.
    At Chebyshev distance >= 2 (`unseen_positions`) both read 0: no boundary case exists there.
    """
    labels = np.asarray(labels, dtype=np.float32).reshape(-1, 2)
    if len(labels) == 0:
        return metrics.score_samples(np.zeros(0, dtype=np.int64), np.zeros((0, 2)), labels)
    drawn = nearest_training_positions(train_positions, labels)
    if detect:
        images = render_bumps(drawn, image_size, sigma)[:, 0].numpy()
        counts, centres = metrics.detect_bumps(images, sigma)
    else:
        counts, centres = np.ones(len(drawn), dtype=np.int64), drawn.astype(np.float64)
    return metrics.score_samples(counts, centres, labels)


def position_accuracy_map(counts, centres, labels, image_size: int, increment_x: float = 1.0,
                          increment_y: float = 1.0) -> np.ndarray:
    """Per-position accuracy as a (K_y, K_x) map (row = y index, column = x index) from one scoring
    of samples `counts`, `centres` (from `metrics.detect_bumps`) drawn for `labels` on the
    (increment_x, increment_y) grid, e.g. every grid position at the last checkpoint. Each cell is
    `metrics.score_samples`' accuracy over that position's samples (the same rule); NaN where no
    sample was drawn."""
    counts = np.asarray(counts)
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    labels = np.asarray(labels, dtype=np.float64).reshape(-1, 2)
    ky, kx = map_shape(image_size, increment_x, increment_y)
    column = np.rint(labels[:, 0] / increment_x).astype(np.int64)
    row = np.rint(labels[:, 1] / increment_y).astype(np.int64)
    on_grid = (np.abs(column * increment_x - labels[:, 0]) < 1e-4) & (np.abs(row * increment_y - labels[:, 1]) < 1e-4)
    if not (on_grid & (column >= 0) & (column < kx) & (row >= 0) & (row < ky)).all():
        raise ValueError("every label must be a position of the grid")
    cell = row * kx + column
    out = np.full(ky * kx, np.nan)
    for index in np.unique(cell):
        mine = cell == index
        out[index] = metrics.score_samples(counts[mine], centres[mine], labels[mine])["accuracy"]
    return out.reshape(ky, kx)
