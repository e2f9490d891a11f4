"""Data scaling (the paper's Fig. 1 claim): how many training positions M*(K) a model needs to
draw unseen positions right, as the positions per axis K grow. A learner that factorizes x and y
needs O(2K); a coupled one O(K²): the slope of log M* on log K tells them apart (1 vs 2).

The sweep `efficiency-full` (sweep.py) trains, for each K (image size at increment 1), model and
seed, a full-grid reference run and finds M* by bisection over a `Ladder` of training-set sizes
per design (`ladders`): the sweep runs the references and every ladder's middle rung, then, round
after round, the next rung that `bisect_next` asks for given the finished ones (about log2 of the
rungs per ladder instead of all of them). This module defines the ladders, reads M* off the
finished runs (`m_star_table`) and fits the slopes (`slope_fits`). M* is the smallest rung that
reaches `M_STAR_ACCURACY`: its resolution is one rung (a factor K^(1/8) in count for `random`, one
line for `lines`), and bisection assumes that passing is monotone in the training-set size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bumpdiff_core.learn.data import design_mask

SCALING_SIZES = (8, 12, 16, 24, 32)      # K at increment 1: 5 values over 4x
SMALL_SIZES = (8, 12, 16)                # efficiency-small: the cheap end, measured on 2 cores
SCALING_SEEDS = (0, 1)                   # training seed; a random design is drawn with design_seed = seed
SCALING_MODELS = ("global", "separable")
M_STAR_ACCURACY = 0.8      # final unseen accuracy that counts as "generalizes" (M* = smallest such count)
REFERENCE_ACCURACY = 0.9   # a K counts only if its full-grid reference run reached this final accuracy
MIN_UNSEEN = 10            # a rung needs this many unseen positions (Chebyshev >= 2 px) to be scored
MIN_K_FOR_SLOPE = 4        # fewer K values with an M* cannot decide a slope: no fit
LADDER_POINTS = 9          # geometric ladder K .. K² in 9 points: ratio K^(1/8) between rungs
CHECKPOINTS = 4            # checkpoints after step 0 (few: M* reads the last one only)


def step_budget(image_size: int) -> int:
    """Training steps at K = image_size, rounded up to 100. Why: the two measured points (README)
    are quick, 16×16, C by ~1000 and final accuracy 0.98 at 1500 steps, and cpu32, 32×32, C at
    ~3750 and 0.98 at 6000: from 16 up, steps to C grow about as K² (4x for 2x K), so
    1500·(K/16)². Below 16 they shrink more slowly than K²: the first budget, 1500·(K/16)² with a
    floor of 600, left the global model's K = 12 reference at accuracy 0.76 after 900 steps
    (efficiency-small, 2026-12-01), so below 16 the budget is linear, 1500·K/16. 8, 12 and 24 are
    not measured otherwise: each reference run's final accuracy is shown, and a K below
    `REFERENCE_ACCURACY` is left out."""
    power = 2 if image_size >= 16 else 1
    return int(math.ceil(1500 * (image_size / 16) ** power / 100) * 100)


def _schedule(image_size: int) -> dict:
    steps = step_budget(image_size)
    return dict(image_size=image_size, steps=steps, checkpoint_dense_every=steps // CHECKPOINTS,
                checkpoint_dense_until=steps, checkpoint_log_count=0)


def unseen_mask(mask: np.ndarray) -> np.ndarray:
    """Unseen positions of a design mask on an increment-1 grid: those at Chebyshev distance >= 2
    px from every training position (`generalization.unseen_positions`), i.e. outside the mask's
    3×3 dilation (a shift-and-or: fast enough to build the ladders at import)."""
    padded = np.pad(np.asarray(mask, dtype=bool), 1)
    near = np.zeros_like(padded)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(padded, dy, axis=0), dx, axis=1)
    return ~near[1:-1, 1:-1]


def n_unseen(mask: np.ndarray) -> int:
    """How many positions `unseen_mask` leaves."""
    return int(unseen_mask(mask).sum())


def random_ladder(k: int, seeds=SCALING_SEEDS) -> list[int]:
    """`design_count` rungs for K: geometric from K to K², keeping those whose designs (every
    seed) still leave `MIN_UNSEEN` unseen positions: a dense random design leaves none (at 16×16
    fewer than 10 above ~80 positions), so the top of the ladder is where unseen scoring ends."""
    counts = sorted({int(round(c)) for c in np.geomspace(k, k * k, LADDER_POINTS)})
    return [c for c in counts
            if all(n_unseen(design_mask("random", (k, k), count=c, seed=s)) >= MIN_UNSEEN for s in seeds)]


def lines_ladder(k: int) -> list[int]:
    """`design_lines` rungs for K: k = 1, 2, 3, ... while `MIN_UNSEEN` unseen positions remain."""
    out = []
    for lines in range(1, k + 1):
        if n_unseen(design_mask("lines", (k, k), lines=lines)) < MIN_UNSEEN:
            break
        out.append(lines)
    return out


def design_size(design: str, k: int, rung: int) -> int:
    """Training positions of a rung: the count itself (random) or 2kK - k² (lines)."""
    if design == "lines":
        return int(2 * rung * k - rung * rung)
    return int(rung)


@dataclass(frozen=True)
class Ladder:
    """One bisection: the rungs (override dicts, ascending training-set size) of one design for
    one model, K and seed. M* is the smallest rung whose final unseen accuracy passes."""
    design: str
    model: str
    k: int
    seed: int
    rungs: tuple

    @property
    def name(self) -> str:
        return f"{self.design} · {self.model}, K={self.k}, seed {self.seed}"


def reference_overrides(sizes=SCALING_SIZES, seeds=SCALING_SEEDS, models=SCALING_MODELS) -> list[dict]:
    """The full-grid reference run per K, model and seed: a K counts only if it reaches
    `REFERENCE_ACCURACY` within the step budget."""
    return [dict(_schedule(k), conditioning=m, seed=s) for k in sizes for m in models for s in seeds]


def ladders(sizes=SCALING_SIZES, seeds=SCALING_SEEDS, models=SCALING_MODELS) -> list[Ladder]:
    """A random ladder and a lines ladder per K, model and seed. The rungs depend on K alone (the
    random ladder is cut where any `SCALING_SEEDS` design leaves too few unseen positions), so a
    sweep over fewer seeds or sizes bisects the same ladders and shares their runs."""
    out = []
    for k in sizes:
        for model in models:
            for seed in seeds:
                common = dict(_schedule(k), conditioning=model, seed=seed)
                out.append(Ladder("random", model, k, seed, tuple(
                    dict(common, design="random", design_count=c, design_seed=seed) for c in random_ladder(k))))
                out.append(Ladder("lines", model, k, seed, tuple(
                    dict(common, design="lines", design_lines=n) for n in lines_ladder(k))))
    return out


def scaling_overrides(sizes=SCALING_SIZES, seeds=SCALING_SEEDS, models=SCALING_MODELS) -> list[dict]:
    """Every run the data-scaling sweep could need: the references and every rung of every ladder
    (bisection trains about log2 of each ladder's rungs)."""
    return reference_overrides(sizes, seeds, models) + [r for lad in ladders(sizes, seeds, models) for r in lad.rungs]


def bisect_next(passed) -> int | None:
    """The rung to train next, or None when M* is decided. `passed[i]`: True / False when rung i
    finished (its final unseen accuracy reached the threshold or not), None when not yet run.
    Replays one deterministic bisection over the rungs, so results found by any earlier sweep
    (or a full ladder) are used where they lie on its path."""
    lo, hi = 0, len(passed)
    while lo < hi:
        mid = (lo + hi) // 2
        if passed[mid] is None:
            return mid
        lo, hi = (lo, mid) if passed[mid] else (mid + 1, hi)
    return None


def bisection_length(rungs: int) -> int:
    """At most this many rungs are trained to bisect `rungs` rungs (rungs + 1 outcomes)."""
    return int(math.ceil(math.log2(rungs + 1))) if rungs else 0


# `efficiency-small` (K = 8, 12, 16, seed 0; 30 runs) measured end to end once, 2026-12-01, on 2
# single-threaded local Dask workers of a 2-core machine that trains the quick profile at 569 img/s
# (benchmarks/train_throughput.py, 2 threads; the per-step costs below were measured at 1140 img/s)
MEASURED_SMALL = {"sweep": "efficiency-small", "runs": 30, "wall_seconds": 2805, "estimated_wall_seconds": 1222,
                  "date": "2026-12-01", "img_per_s": 569}

# measured per-step training cost, one single-threaded worker of two side by side (README: quick,
# 16×16, 114 s / 1500 steps); larger images cost as measured by benchmarks/train_throughput.py
# (32×32 is 3.0x slower per step than 16×16: cost ~ K^1.58), with a floor for the 8×8 overheads
SECONDS_PER_STEP_16 = 114 / 1500
COST_EXPONENT = math.log2(3.0)
# evaluation: 18.6 s / 17 checkpoints at 16×16 (100 labels + splits), scaled like training, plus
# the last checkpoint's per-position map (K² samples; DDIM-20 3.3 s per 300 labels at 16×16)
SECONDS_PER_CHECKPOINT_16 = 18.6 / 17


def estimated_seconds(config) -> float:
    """Estimated wall seconds of one run (train + evaluate) on one of two single-threaded workers."""
    scale = max(0.4, (config.image_size / 16) ** COST_EXPONENT)
    from bumpdiff_core.config import checkpoint_steps

    position_map = 3.3 / 300 * config.image_size ** 2 * scale if config.design != "grid" else 0.0
    return (config.steps * SECONDS_PER_STEP_16 * scale
            + len(checkpoint_steps(config)) * SECONDS_PER_CHECKPOINT_16 * scale + position_map)


def estimate(configs, workers: int = 2, ladder_list=()) -> dict:
    """{"runs", "run_seconds" (sum), "wall_seconds" (sum / workers: the runs are independent)}
    for the static runs `configs` plus, per ladder, `bisection_length` rungs at its mean rung cost
    (`ladder_list`: (Ladder, [config of each rung]) pairs)."""
    total = sum(estimated_seconds(c) for c in configs)
    runs = len(configs)
    for _, rung_configs in ladder_list:
        n = bisection_length(len(rung_configs))
        if n:
            total += n * float(np.mean([estimated_seconds(c) for c in rung_configs]))
            runs += n
    return {"runs": runs, "run_seconds": total, "wall_seconds": total / workers, "workers": workers}
