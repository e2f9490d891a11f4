"""Cost per call of the representation measures and intervals at the size of a real tap.

n = 100 points x D = 512 features (the quick profile's tapped block, 32 x 4 x 4) (labels (x, y) on a 16 x 16 grid), 100 rendered 16 x 16 samples.
Prints seconds per call and the ratio to metrics.r2_cross_validated, side by side.
Run: .venv/bin/python benchmarks/measure_cost.py [--n 100] [--d 512] [--repeats 5]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from bumpdiff_core.measure import geometry, intervals, metrics
from bumpdiff_core.learn.data import centre_grid, render_bumps


def per_call(fn, repeats):
    fn()  # warm-up
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    grid = centre_grid(16, 0.5, 0.5)
    labels = grid[rng.choice(len(grid), args.n, replace=args.n > len(grid))].astype(np.float64)
    x = np.tanh(labels @ rng.normal(size=(2, args.d)) / 8) + 0.3 * rng.normal(size=(args.n, args.d))
    images = render_bumps(labels, 16, 1.0)[:, 0].numpy()
    y = labels[:, 0]
    cases = [
        ("metrics.r2_cross_validated (x, y)", lambda: metrics.r2_cross_validated(x, labels)),
        ("intervals.bootstrap_r2_loo (x only, 200)", lambda: intervals.bootstrap_r2_loo(x, y)),
        ("intervals.loo_ridge_predictions (x, y)", lambda: intervals.loo_ridge_predictions(x, labels)),
        ("intervals.bootstrap_pairs_r2 (200)", lambda: intervals.bootstrap_pairs_r2(y + rng.normal(size=len(y)), y)),
        ("intervals.wilson (scalar)", lambda: intervals.wilson(37, 100)),
        ("intervals.t_interval (5 seeds)", lambda: intervals.t_interval(rng.normal(size=5))),
        ("intervals.spearman_permutation (6, exact)", lambda: intervals.spearman_permutation(np.arange(6), rng.normal(size=6))),
        ("intervals.spearman_permutation (40, 10^4)", lambda: intervals.spearman_permutation(np.arange(40), rng.normal(size=40))),
        ("intervals.bootstrap_spearman (6, 2000)", lambda: intervals.bootstrap_spearman(np.arange(6), rng.normal(size=6))),
        ("geometry.twonn_dimension", lambda: geometry.twonn_dimension(x)),
        ("geometry.participation_ratio", lambda: geometry.participation_ratio(x)),
        ("geometry.knn_r2 (k=5)", lambda: geometry.knn_r2(x, labels)),
        ("geometry.neighbourhood_overlap (k=10)", lambda: geometry.neighbourhood_overlap(x, labels)),
        ("geometry.axis_errors (100 images)", lambda: geometry.axis_errors(images, labels)),
    ]
    base = None
    print(f"n = {args.n}, D = {args.d}; best of {args.repeats}")
    print(f"{'measure':48s} {'ms/call':>9s} {'x r2_cv':>8s}")
    for name, fn in cases:
        t = per_call(fn, args.repeats)
        base = t if base is None else base
        print(f"{name:48s} {1e3 * t:9.2f} {t / base:8.2f}")


if __name__ == "__main__":
    main()
