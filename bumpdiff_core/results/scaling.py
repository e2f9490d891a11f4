"""A scaling sweep's finished runs (`sweeps/scaling.py`) as tables, torch-free: what the rung search
reads to propose the next rungs (`finished_accuracy`), the per-position outcomes the fit takes
(`outcome_table`, columns `claims.scaling_fit.COLUMNS`), one row per run (`run_table`) and the
full-grid references (`reference_table`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bumpdiff_core.results.tables import finished_table
from bumpdiff_core.runs.store import StoreError, completed_run

RUN_COLUMNS = ["run_id", "design", "model", "K", "seed", "rung", "M", "factor", "steps", "seen_accuracy",
               "test_accuracy", "test_n", "memoriser_test", "train_seconds"]
REFERENCE_COLUMNS = ["run_id", "K", "seed", "steps", "seen_accuracy", "under_trained", "train_seconds", "img_per_s"]


def _last(table, name) -> float:
    try:
        return float(table.iloc[-1][name]) if len(table) else math.nan
    except (KeyError, TypeError, ValueError):
        return math.nan


def _meta(run_dir) -> dict:
    import json
    from pathlib import Path

    try:
        return json.loads((Path(run_dir) / "meta.json").read_text())
    except (OSError, ValueError):
        return {}


def finished_search(sweep, root=None) -> dict:
    """{key: (spec, run directory, metrics table)} of the rung-search runs finished under `root`."""
    out = {}
    for key, spec in sweep.search_candidates():
        got = finished_table(spec, root)
        if got is not None:
            out[key] = (spec, *got)
    return out


def finished_accuracy(sweep, root=None, found: dict | None = None) -> dict:
    """{key: final test accuracy} of the finished rungs (what `RungSearch.propose` takes); a run
    without a test score counts as 0 (never as a pass)."""
    found = finished_search(sweep, root) if found is None else found
    out = {}
    for key, (_, _, table) in found.items():
        acc = _last(table, "test_accuracy")
        out[key] = acc if math.isfinite(acc) else 0.0
    return out


def run_table(sweep, root=None, found: dict | None = None) -> pd.DataFrame:
    """One row per finished rung: `RUN_COLUMNS` (seen accuracy under the rounding rule on the
    evaluation labels, test accuracy over every test sample, the memoriser on the test set)."""
    found = finished_search(sweep, root) if found is None else found
    rows = []
    for (K, model, seed, rung, factor), (spec, run_dir, table) in sorted(found.items()):
        rows.append({"run_id": spec.run_id, "design": "latin", "model": model, "K": K, "seed": seed, "rung": rung,
                     "M": rung * K, "factor": factor, "steps": spec.config.steps,
                     "seen_accuracy": _last(table, "seen_round_accuracy"),
                     "test_accuracy": _last(table, "test_accuracy"), "test_n": _last(table, "test_n"),
                     "memoriser_test": _last(table, "memoriser_test"),
                     "train_seconds": _meta(run_dir).get("train_seconds", math.nan)})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def outcome_table(sweep, root=None, found: dict | None = None, factor: int = 1) -> pd.DataFrame:
    """Per-sample outcomes of every finished rung with `factor` (the ladders; the budget check has
    its own): columns model, K, seed, rung, M, position (y·K + x), correct, one row per test
    sample (test_outcomes.npz; `TEST_SAMPLES` rows per position)."""
    found = finished_search(sweep, root) if found is None else found
    parts = []
    for (K, model, seed, rung, f), (spec, _, _) in sorted(found.items()):
        if f != factor:
            continue
        try:
            run = completed_run(spec.config, root)
            arrays = run.load_arrays(run.test_outcomes_path)
        except (StoreError, OSError):
            continue
        correct = np.asarray(arrays["correct"], dtype=bool)
        ids = np.repeat(np.asarray(arrays["position_ids"], dtype=np.int64), correct.shape[1])
        parts.append(pd.DataFrame({"model": model, "K": K, "seed": seed, "rung": rung, "M": rung * K,
                                   "position": ids, "correct": correct.reshape(-1).astype(np.int64)}))
    columns = ["model", "K", "seed", "rung", "M", "position", "correct"]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def reference_table(sweep, root=None, level: float | None = None) -> pd.DataFrame:
    """One row per K's full-grid reference (finished ones): seen accuracy under the rounding rule
    at the last checkpoint and whether it is under-trained (below `level`, by default
    `sweeps.scaling.REFERENCE_ACCURACY`), with its training time and img/s."""
    from bumpdiff_core.sweeps.scaling import REFERENCE_ACCURACY

    level = REFERENCE_ACCURACY if level is None else level
    rows = []
    for spec in sweep.reference_runs():
        got = finished_table(spec, root)
        if got is None:
            continue
        run_dir, table = got
        c, meta = spec.config, _meta(run_dir)
        seen = _last(table, "seen_round_accuracy")
        seconds = meta.get("train_seconds", math.nan)
        rows.append({"run_id": spec.run_id, "K": c.image_size, "seed": c.seed, "steps": c.steps,
                     "seen_accuracy": seen, "under_trained": not (math.isfinite(seen) and seen >= level),
                     "train_seconds": seconds,
                     "img_per_s": c.steps * c.batch_size / seconds if seconds and math.isfinite(seconds) else math.nan})
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)
