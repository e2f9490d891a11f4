"""The read layer's ground floor: what a finished run's files hold and how to load them.

The metrics table's columns (`METRIC_COLUMNS`, with the fallback for runs evaluated by older code
in one place: `with_metric_columns`), the stored evaluation arrays (`load_evaluation`), the losses
and the per-position map. Written by `measure.evaluate`; read by everything after it. No torch:
reading a finished sweep never imports it.
"""
from __future__ import annotations

import io

import numpy as np

from bumpdiff_core.measure import metrics
from bumpdiff_core.runs.store import Run

from bumpdiff_core.measure.columns import (BOOTSTRAP_REPLICATES, BOOTSTRAP_SEED, KNN_K, METRIC_COLUMNS,  # noqa: F401
                                          OVERLAP_K, SEEN, UNSEEN, UNSEEN_LABELS)


def load_losses(run: Run):
    return run.load_arrays(run.losses_path)["losses"] if run.losses_path.exists() else None


def with_metric_columns(table):
    """`table` with every column of `METRIC_COLUMNS` (a run evaluated by older code lacks the later
    ones: they are added as NaN, in `METRIC_COLUMNS` order; other columns are kept after them)."""
    missing = [k for k in METRIC_COLUMNS if k not in table.columns]
    if not missing:
        return table
    table = table.copy()
    for k in missing:
        table[k] = np.nan
    return table[METRIC_COLUMNS + [k for k in table.columns if k not in METRIC_COLUMNS]]


def read_metrics_csv(run: Run):
    """metrics.csv as written (checked against the manifest), without filling in later columns."""
    import pandas as pd
    return pd.read_csv(io.BytesIO(run.read_bytes(run.metrics_path)))


def load_metrics(run: Run):
    """metrics.csv, with the columns a run evaluated by older code lacks filled with NaN
    (`bumpdiff evaluate RUN_DIR` recomputes them from the cached evaluations)."""
    import pandas as pd
    return with_metric_columns(read_metrics_csv(run))


def split_evaluation(arrays: dict) -> dict:
    """Stored eval arrays as pages read them: `labels`, `samples`, `latents` are the evaluation
    labels' rows (split 0, aligned with the UMAP embedding); a non-grid design's unseen rows come
    as `unseen_labels`, `unseen_samples`, `unseen_latents` (absent for grid)."""
    if "split" not in arrays:
        return arrays
    out = dict(arrays)
    split = np.asarray(arrays["split"])
    for k in ("labels", "samples", "latents"):
        out[k] = arrays[k][split == SEEN]
        out[f"unseen_{k}"] = arrays[k][split == UNSEEN]
    return out


def load_evaluation(run: Run, step: int, detect: bool = True) -> dict:
    """Samples, labels, activations and the UMAP embedding of one evaluated checkpoint, plus the
    bump detection of its samples (`bump_count`, `centres`) unless `detect` is False. Pages read a
    run through `view.RunView`, which reads each checkpoint once and detects bumps on first use.
    For designs other than grid: the evaluation labels' rows, the unseen ones apart
    (`split_evaluation`)."""
    out = split_evaluation(run.load_arrays(run.eval_path(step)))
    out.update(run.load_arrays(run.umap_path(step)))
    if detect:
        out["bump_count"], out["centres"] = metrics.detect_bumps(out["samples"], run.config.sigma)
    return out


def load_position_map(run: Run) -> dict | None:
    """position_map.npz (`evaluate_position_map`), or None when the run has none (design=grid, or
    evaluated by older code)."""
    if not run.position_map_path.exists():
        return None
    return run.load_arrays(run.position_map_path)
