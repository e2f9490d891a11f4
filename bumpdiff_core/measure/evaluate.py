"""Evaluation of checkpoints: one sampling pass per checkpoint gives both the samples (scored by
`metrics`) and the tapped activations (embedded by `manifold`); results are cached per checkpoint.

Columns of metrics.csv (`METRIC_COLUMNS`; the first 13 are the original ones, unchanged):

- `n_labels`: evaluation labels scored (training positions, `data.evaluation_positions`);
  `accuracy_low` / `accuracy_high`: Wilson 95% interval of `accuracy` over them.
- `r2_x_raw_low/high`, `r2_y_raw_low/high`: percentile bootstrap (`BOOTSTRAP_REPLICATES`
  replicates, seed `BOOTSTRAP_SEED`) of the leave-one-out ridge R² over its (LOO prediction, label)
  pairs (`intervals.bootstrap_pairs_r2` on `metrics.loo_ridge_predictions`).
- Geometry of the tapped layer (`geometry`): `intrinsic_dim` (TwoNN), `participation_ratio`,
  `knn_r2_x/y` (LOO k-NN R², k = `KNN_K`), `neighbour_overlap` (k = `OVERLAP_K`, at most n - 1).
- `error_x`, `error_y`: mean |error| per axis of the brightest region's centre
  (`geometry.axis_errors`), defined for every sample whatever its bump count;
  `error_x_low/high`, `error_y_low/high` (appended last): Student t 95% interval of that mean over
  the `n_labels` per-sample absolute errors (`intervals.t_interval`).
- Generalisation (`generalization`): `accuracy_seen` (= `accuracy`: the labels are training
  positions), `accuracy_unseen` with its Wilson interval `accuracy_unseen_low/high` over
  `n_unseen` grid positions at Chebyshev distance >= 2 px from every training position
  (`generalization.split_labels`, at most `UNSEEN_LABELS`), `error_seen` / `error_unseen`: mean
  Euclidean distance (px) between the brightest region's centre (`geometry.brightest_centre`) and
  the label over *all* samples of the split (chosen over "detected centre of single-bump samples"
  so that the mean is over the same samples as the accuracy and never empty), and
  `memoriser_unseen`: `generalization.memoriser_baseline`'s accuracy on the same unseen labels
  (constant per run; ~0 by construction). For design=grid there is no unseen position:
  `n_unseen` 0 and the unseen columns NaN.

For designs other than grid the unseen labels are appended to the evaluation labels in the same
sampling pass (seeds are per label index, so the first `n_labels` samples are those of the
evaluation labels alone) and the eval npz holds `split` (0 = evaluation label on a training
position, 1 = unseen). Every representation measure, the per-layer R² and UMAP use split 0 only,
so the phases mean the same for every design; `load_evaluation` hands out split 0 as `labels`,
`samples`, `latents` and split 1 as `unseen_labels`, `unseen_samples`, `unseen_latents`. At the last
checkpoint such a run also samples every grid position once (`position_map.npz`, see
`evaluate_position_map`).

A run evaluated by older code keeps its metrics.csv (nothing re-evaluates it automatically;
`load_metrics` fills the missing columns with NaN). `bumpdiff evaluate RUN_DIR` recomputes
metrics.csv from the cached evaluations (no resampling for design=grid; a non-grid run whose
cached evaluations predate the `split` array is resampled once).
"""
from __future__ import annotations

import io
import time

import numpy as np
import torch

from bumpdiff_core.measure import geometry, intervals, metrics
from bumpdiff_core.config import SEED_STRIDE, checkpoint_steps, resolve_tap
from bumpdiff_core.learn.data import centre_grid, evaluation_positions, map_shape, training_mask, training_positions
from bumpdiff_core.learn import latin
from bumpdiff_core.learn.diffusion import LinearSchedule, sample
from bumpdiff_core.measure.manifold import umap_embed
from bumpdiff_core.measure.representation import representation_columns
from bumpdiff_core.measure.columns import (BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, KNN_K, METRIC_COLUMNS, OVERLAP_K,  # noqa: F401
                                          SEEN, UNSEEN, UNSEEN_LABELS)
from bumpdiff_core.runs.store import CorruptFileError, Run
from bumpdiff_core.learn.train import load_weights, pick_device

POSITION_MAP_BATCH = 1024  # samples per forward batch of the position map (bounded memory)


def sample_seeds(config, n: int) -> np.ndarray:
    """One noise seed per evaluation label, the same at every checkpoint (only the model changes)."""
    return config.eval_seed * SEED_STRIDE + np.arange(n)


def sample_checkpoint(run: Run, step: int, device=None, sampler=None, sampler_steps=None,
                      labels=None, tap_names=None, seeds=None):
    """Draw one sample per label from checkpoint `step`; returns (images (B, N, N), labels, taps).
    `seeds` (one per label) default to `sample_seeds` (by label index)."""
    c = run.config
    device = pick_device(device)
    model = load_weights(run, step, device)
    labels = evaluation_positions(c) if labels is None else np.asarray(labels, dtype=np.float32)
    taps = model.tap_names if tap_names is None else tap_names
    xy = torch.as_tensor(labels, dtype=torch.float32, device=device)
    seeds = sample_seeds(c, len(labels)) if seeds is None else np.asarray(seeds)
    images, activations = sample(model, LinearSchedule.from_config(c), xy, seeds,
                                 sampler=sampler or c.eval_sampler,
                                 steps=sampler_steps or c.eval_sampler_steps, tap_names=taps)
    return images[:, 0].cpu().numpy(), labels, activations


def evaluation_labels(config) -> tuple[np.ndarray, np.ndarray | None]:
    """(labels, split) of one checkpoint's sampling pass: the evaluation labels
    (`data.evaluation_positions`) and, for designs other than grid, the unseen labels
    (`generalization.split_labels`, at most `UNSEEN_LABELS`) appended after them; `split` marks
    them (int8, `SEEN` / `UNSEEN`), None for design=grid (no unseen position, nothing appended)."""
    from bumpdiff_core.measure.generalization import split_labels

    labels = evaluation_positions(config)
    if config.design == "grid":
        return labels, None
    unseen = split_labels(config, n_per_split=UNSEEN_LABELS)["unseen"]
    split = np.concatenate([np.full(len(labels), SEEN, np.int8), np.full(len(unseen), UNSEEN, np.int8)])
    return np.concatenate([labels, unseen.astype(labels.dtype)]), split


SECOND_DRAW_OFFSET = SEED_STRIDE // 2  # draw b's seeds: far from draw a's, the same at every checkpoint


def _second_draw(run: Run, step: int, device, labels: np.ndarray) -> dict:
    """The tapped layer only: `latents_b` (a second noise seed per evaluation label, trajectory
    mean) and `latents_first` (draw a's first denoising step: pure noise in). For
    `representation.representation_columns`."""
    from bumpdiff_core.learn.diffusion import first_step_taps

    c = run.config
    tap = resolve_tap(c.tap_layer, len(c.channel_mults))
    seeds = sample_seeds(c, len(labels))
    _, _, taps_b = sample_checkpoint(run, step, device, labels=labels, tap_names=[tap], seeds=seeds + SECOND_DRAW_OFFSET)
    model = load_weights(run, step, pick_device(device))
    xy = torch.as_tensor(labels, dtype=torch.float32, device=pick_device(device))
    first = first_step_taps(model, LinearSchedule.from_config(c), xy, seeds, [tap])
    return {"latents_b": taps_b[tap].astype(np.float32), "latents_first": first[tap].astype(np.float32)}


def _evaluate_samples(run: Run, step: int, device) -> dict:
    c = run.config
    tap = resolve_tap(c.tap_layer, len(c.channel_mults))
    labels, split = evaluation_labels(c)
    images, labels, activations = sample_checkpoint(run, step, device, labels=labels)
    names = list(activations)
    if split is None:
        layer_r2 = np.array([metrics.r2_cross_validated(activations[n], labels) for n in names])
    else:  # the representation is measured on the training-position labels only
        seen = split == SEEN
        layer_r2 = np.array([metrics.r2_cross_validated(activations[n][seen], labels[seen]) for n in names])
    arrays = dict(step=np.int64(step), labels=labels, samples=images.astype(np.float16),
                  latents=activations[tap].astype(np.float32),
                  layer_names=np.array(names), layer_r2_raw=layer_r2)
    if split is not None:
        arrays["split"] = split
    arrays.update(_second_draw(run, step, device, labels if split is None else labels[split == SEEN]))
    run.save_arrays(run.eval_path(step), **arrays)
    return arrays


def _seen_part(ev: dict) -> dict:
    """The evaluation-label rows (split 0) of `labels`, `samples`, `latents` (all rows for grid)."""
    if "split" not in ev:
        return {k: ev[k] for k in ("labels", "samples", "latents")}
    seen = np.asarray(ev["split"]) == SEEN
    return {k: ev[k][seen] for k in ("labels", "samples", "latents")}


def _seen_rows(ev: dict, key: str):
    """The second draw's arrays cover the evaluation labels only (split 0); None when absent."""
    return ev.get(key)


def _cached(run: Run, path):
    """Load a cached result; a damaged one is reported and recomputed, a missing one is None."""
    if not path.exists():
        return None
    try:
        return run.load_arrays(path)
    except (CorruptFileError, OSError) as e:
        print(f"warning: {e}; recomputing it", flush=True)
        return None


def evaluate_checkpoint(run: Run, step: int, device=None, losses=None, seconds: dict | None = None) -> dict:
    """Metrics row for one checkpoint (computing and caching samples and UMAP when missing).
    `seconds`, when given, accumulates the time spent in "sampling" (incl. per-layer R²), "umap"
    and "measures" (everything computed from the stored arrays: detection, scores, intervals,
    geometry)."""
    c = run.config
    seconds = {} if seconds is None else seconds
    t0 = time.perf_counter()
    ev = _cached(run, run.eval_path(step))
    if ev is not None and c.design != "grid" and "split" not in ev:
        ev = None  # cached before unseen labels were sampled: resample once (same first n samples)
    ev = ev or _evaluate_samples(run, step, device)
    if "latents_b" not in ev:  # cached before the second draw existed: add it (the first pass is kept)
        ev = dict(ev, **_second_draw(run, step, device, np.asarray(_seen_part(ev)["labels"], np.float32)))
        run.save_arrays(run.eval_path(step), **ev)
    t1 = time.perf_counter()
    seen = _seen_part(ev)
    um = _cached(run, run.umap_path(step))
    if um is None:
        um = {"embedding": umap_embed(seen["latents"], c.umap_neighbors, c.umap_min_dist, random_state=c.eval_seed)}
        run.save_arrays(run.umap_path(step), **um)
    t2 = time.perf_counter()
    seconds["sampling"] = seconds.get("sampling", 0.0) + t1 - t0
    seconds["umap"] = seconds.get("umap", 0.0) + t2 - t1
    labels = seen["labels"]
    # detection is re-run from the stored samples (milliseconds), so a changed rule needs no resampling
    counts, centres = metrics.detect_bumps(seen["samples"], c.sigma)
    score = metrics.score_samples(counts, centres, labels)
    row = {"step": step, "loss": _interval_loss(run, step, losses)}
    row.update({k: score[k] for k in METRIC_COLUMNS if k in score})
    row["r2_x"] = metrics.r2_in_sample(um["embedding"], labels[:, 0])
    row["r2_y"] = metrics.r2_in_sample(um["embedding"], labels[:, 1])
    tap = resolve_tap(c.tap_layer, len(c.channel_mults))
    names = list(ev["layer_names"])
    row["r2_x_raw"], row["r2_y_raw"] = (float(v) for v in ev["layer_r2_raw"][names.index(tap)])
    row["phase"] = metrics.phase_label(row["frac_1"], row["accuracy"])
    row.update(_extra_measures(c, ev, seen, counts, centres))
    t3 = time.perf_counter()
    row.update(representation_columns(labels, seen["samples"], seen["latents"], _seen_rows(ev, "latents_b"),
                                      _seen_rows(ev, "latents_first")))
    seconds["representation"] = seconds.get("representation", 0.0) + time.perf_counter() - t3
    seconds["measures"] = seconds.get("measures", 0.0) + time.perf_counter() - t2
    return row


def _extra_measures(c, ev: dict, seen: dict, counts, centres) -> dict:
    """The columns after `phase` (see the module docstring), from the stored arrays alone."""
    labels, latents = np.asarray(seen["labels"], dtype=np.float64), seen["latents"]
    n = len(labels)
    ok_x, ok_y = metrics.placement(counts, centres, labels)
    out = {"n_labels": n}
    out["accuracy_low"], out["accuracy_high"] = intervals.wilson(int(np.sum(ok_x & ok_y)), n)
    pred = metrics.loo_ridge_predictions(latents, labels)
    for j, axis in enumerate("xy"):
        _, out[f"r2_{axis}_raw_low"], out[f"r2_{axis}_raw_high"] = intervals.bootstrap_pairs_r2(
            pred[:, j], labels[:, j], n_boot=BOOTSTRAP_REPLICATES, seed=BOOTSTRAP_SEED)
    out["intrinsic_dim"] = geometry.twonn_dimension(latents)
    out["participation_ratio"] = geometry.participation_ratio(latents)
    out["knn_r2_x"], out["knn_r2_y"] = geometry.knn_r2(latents, labels, k=min(KNN_K, n - 1))
    out["neighbour_overlap"] = geometry.neighbourhood_overlap(latents, labels, k=min(OVERLAP_K, n - 1))
    bright = np.abs(geometry.brightest_centre(seen["samples"]) - labels)
    out["error_x"], out["error_y"] = float(bright[:, 0].mean()), float(bright[:, 1].mean())
    for j, axis in enumerate("xy"):  # Student t interval of the mean over the n_labels samples
        _, out[f"error_{axis}_low"], out[f"error_{axis}_high"] = intervals.t_interval(bright[:, j])
    out["accuracy_seen"] = float(np.mean(ok_x & ok_y))
    out["seen_round_accuracy"] = float(np.mean(latin.rounding_correct(counts, centres, labels)))
    out["error_seen"] = float(np.hypot(bright[:, 0], bright[:, 1]).mean())
    nan = float("nan")
    out.update(accuracy_unseen=nan, accuracy_unseen_low=nan, accuracy_unseen_high=nan, n_unseen=0,
               error_unseen=nan, memoriser_unseen=nan, test_accuracy=nan, test_n=0, memoriser_test=nan)
    unseen = np.asarray(ev["split"]) == UNSEEN if "split" in ev else np.zeros(0, bool)
    if unseen.any():
        u_labels = np.asarray(ev["labels"][unseen], dtype=np.float64)
        u_samples = ev["samples"][unseen]
        u_counts, u_centres = metrics.detect_bumps(u_samples, c.sigma)
        u_x, u_y = metrics.placement(u_counts, u_centres, u_labels)
        k = int(np.sum(u_x & u_y))
        out["n_unseen"] = len(u_labels)
        out["accuracy_unseen"] = k / len(u_labels)
        out["accuracy_unseen_low"], out["accuracy_unseen_high"] = intervals.wilson(k, len(u_labels))
        err = geometry.brightest_centre(u_samples) - u_labels
        out["error_unseen"] = float(np.hypot(err[:, 0], err[:, 1]).mean())
        out["memoriser_unseen"] = _memoriser_accuracy(c, u_labels)
    return out


_MEMORISER: dict = {}  # (run id, labels) -> accuracy: constant per run, computed once per process


def _memoriser_accuracy(c, labels: np.ndarray) -> float:
    from bumpdiff_core.measure.generalization import memoriser_baseline

    key = (c.run_id, labels.tobytes())
    if key not in _MEMORISER:
        _MEMORISER[key] = memoriser_baseline(training_positions(c), labels, c.sigma, c.image_size)["accuracy"]
    return _MEMORISER[key]


def _interval_loss(run: Run, step: int, losses) -> float:
    """Mean training loss over the steps since the previous checkpoint (NaN at step 0)."""
    if losses is None or step == 0:
        return float("nan")
    steps = checkpoint_steps(run.config)
    prev = max([s for s in steps if s < step], default=0)
    window = losses[prev:step]
    return float(np.mean(window)) if len(window) else float("nan")


def evaluate_position_map(run: Run, step: int, device=None) -> dict:
    """Every grid position sampled once at checkpoint `step` (seeds by grid index, batches of
    `POSITION_MAP_BATCH`), scored by `generalization.position_accuracy_map`; saved to
    `run.position_map_path` as `accuracy` (K_y, K_x; 1.0 / 0.0 per position), `training_mask`
    (`data.training_mask`), `unseen_mask` (Chebyshev distance >= 2 px from every training position)
    and `step`. Costs one sampling pass over the K_y x K_x grid (no activations kept)."""
    from bumpdiff_core.measure.generalization import UNSEEN_MIN_DISTANCE, chebyshev_distance_to_set, position_accuracy_map

    c = run.config
    grid = centre_grid(c.image_size, c.increment_x, c.increment_y)
    seeds = sample_seeds(c, len(grid))
    images = [sample_checkpoint(run, step, device, labels=grid[i:i + POSITION_MAP_BATCH], tap_names=[],
                                seeds=seeds[i:i + POSITION_MAP_BATCH])[0]
              for i in range(0, len(grid), POSITION_MAP_BATCH)]
    counts, centres = metrics.detect_bumps(np.concatenate(images), c.sigma)
    shape = map_shape(c.image_size, c.increment_x, c.increment_y)
    unseen = chebyshev_distance_to_set(grid, training_positions(c)) >= UNSEEN_MIN_DISTANCE - 1e-6
    out = dict(step=np.int64(step),
               accuracy=position_accuracy_map(counts, centres, grid, c.image_size, c.increment_x, c.increment_y),
               training_mask=training_mask(c), unseen_mask=unseen.reshape(shape))
    run.save_arrays(run.position_map_path, **out)
    return out


TEST_SAMPLES = 2               # design=latin: noise seeds per test position at the last checkpoint
TEST_SEED_OFFSET = 500_000     # their seeds: eval_seed · SEED_STRIDE + offset + sample index (apart from the labels')


def evaluate_test_outcomes(run: Run, step: int, device=None) -> dict:
    """design=latin: every one of the 2K test positions (`latin.test_positions`) sampled
    `TEST_SAMPLES` times at checkpoint `step` and scored by the rounding rule
    (`latin.rounding_correct`); the nearest-training-position memoriser scored on the same
    positions. Saved to `run.test_outcomes_path`: `positions` (2K, 2) (x, y), `position_ids`
    (y·K + x), `correct` (2K, TEST_SAMPLES) bool, `n_bumps` and `centres` per sample,
    `memoriser_correct` (2K,) bool and `step`."""
    c = run.config
    K = c.image_size
    positions = latin.test_positions(K, c.design_seed)
    labels = np.concatenate([positions] * TEST_SAMPLES)  # sample j of position i at j·2K + i
    seeds = c.eval_seed * SEED_STRIDE + TEST_SEED_OFFSET + np.arange(len(labels))
    images = [sample_checkpoint(run, step, device, labels=labels[i:i + POSITION_MAP_BATCH], tap_names=[],
                                seeds=seeds[i:i + POSITION_MAP_BATCH])[0]
              for i in range(0, len(labels), POSITION_MAP_BATCH)]
    counts, centres = metrics.detect_bumps(np.concatenate(images), c.sigma)
    correct = latin.rounding_correct(counts, centres, labels).reshape(TEST_SAMPLES, -1).T
    drawn = latin.nearest_trained_memoriser(training_positions(c), positions)
    memoriser = latin.rounding_correct(np.ones(len(positions)), drawn, positions)
    out = dict(step=np.int64(step), positions=positions, position_ids=latin.position_ids(positions, K),
               correct=correct, n_bumps=np.asarray(counts).reshape(TEST_SAMPLES, -1).T,
               centres=np.asarray(centres, dtype=np.float32).reshape(TEST_SAMPLES, -1, 2).transpose(1, 0, 2),
               memoriser_correct=memoriser)
    run.save_arrays(run.test_outcomes_path, **out)
    return out


def unseen_map_counts(config, position_map: dict) -> dict:
    """{n_unseen_map_d<d>, k_unseen_map_d<d>}: every grid position at Chebyshev distance >= d px
    from every training position, and how many of them the position map drew right."""
    from bumpdiff_core.measure.columns import UNSEEN_MAP_DISTANCES
    from bumpdiff_core.measure.generalization import chebyshev_distance_to_set

    grid = centre_grid(config.image_size, config.increment_x, config.increment_y)
    dist = chebyshev_distance_to_set(grid, training_positions(config))
    acc = np.asarray(position_map["accuracy"], dtype=np.float64).reshape(-1)
    out = {}
    for d in UNSEEN_MAP_DISTANCES:
        far = dist >= d - 1e-6
        out[f"n_unseen_map_d{d}"], out[f"k_unseen_map_d{d}"] = int(far.sum()), int(np.round(acc[far].sum()))
    return out


def evaluate_run(run: Run, device=None, progress: bool = True):
    """Evaluate every scheduled checkpoint (cached ones cost nothing) and write metrics.csv; for
    designs other than grid, also the last checkpoint's `position_map.npz` (cached)."""
    import pandas as pd
    from tqdm.auto import tqdm

    started = time.time()
    losses = run.load_arrays(run.losses_path)["losses"] if run.losses_path.exists() else None
    rows, seconds = [], {}
    steps = checkpoint_steps(run.config)
    for step in tqdm(steps, desc=f"evaluate {run.path.name}", disable=not progress, unit="ckpt"):
        rows.append(evaluate_checkpoint(run, step, device, losses, seconds))
    if run.config.design == "latin":  # the test set at the last checkpoint instead of a position map
        t0 = time.perf_counter()
        cached = _cached(run, run.test_outcomes_path)
        if cached is None or int(cached["step"]) != steps[-1]:
            cached = evaluate_test_outcomes(run, steps[-1], device)
        rows[-1].update(test_accuracy=float(np.mean(cached["correct"])), test_n=int(np.size(cached["correct"])),
                        memoriser_test=float(np.mean(cached["memoriser_correct"])))
        seconds["test_outcomes"] = time.perf_counter() - t0
    elif run.config.design != "grid":
        t0 = time.perf_counter()
        cached = _cached(run, run.position_map_path)
        if cached is None or int(cached["step"]) != steps[-1]:
            cached = evaluate_position_map(run, steps[-1], device)
        rows[-1].update(unseen_map_counts(run.config, cached))
        seconds["position_map"] = time.perf_counter() - t0
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())
    run.update_meta(evaluate_seconds=time.time() - started, evaluate_sampling_seconds=seconds.get("sampling", 0.0),
                    evaluate_umap_seconds=seconds.get("umap", 0.0),
                    evaluate_measures_seconds=seconds.get("measures", 0.0),
                    evaluate_position_map_seconds=seconds.get("position_map", 0.0),
                    evaluate_test_outcomes_seconds=seconds.get("test_outcomes", 0.0),
                    evaluate_representation_seconds=seconds.get("representation", 0.0))
    return table
