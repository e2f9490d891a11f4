"""Finished runs as tables, by the role they play in a sweep: the one place that finds a finished
run (`finished_table`), fills in what older runs lack (`with_n_labels`), and gathers what the
verdicts take (`verdict_inputs`). `present.report` and the pages format what this returns.
"""
from __future__ import annotations

import math

import pandas as pd

from bumpdiff_core.results.schema import read_metrics_csv
from bumpdiff_core.runs.store import StoreError, completed_run


def with_n_labels(table: pd.DataFrame, config) -> pd.DataFrame:
    """Runs evaluated before `n_labels` existed drew one sample per evaluation label."""
    if "n_labels" in table.columns and table["n_labels"].notna().any():
        return table
    return table.assign(n_labels=int(config.eval_labels))


def _final(row, name) -> float:
    value = row.get(name) if hasattr(row, "get") else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def finished_table(spec, root=None):
    """(run directory, metrics table) of the finished run for `spec`, or None when it is not
    finished (not there, or no completion marker). The one place that knows how a finished run is found."""
    try:
        run = completed_run(spec.config, root)
    except StoreError:
        return None
    return run.path, with_n_labels(read_metrics_csv(run), spec.config)


EFFICIENCY_COLUMNS = ["run_id", "label", "design", "conditioning", "image_size", "seed", "positions", "step",
                      "accuracy_seen", "accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high",
                      "n_unseen", "memoriser_unseen", "coord_channels",
                      "n_unseen_map_d2", "k_unseen_map_d2", "n_unseen_map_d3", "k_unseen_map_d3"]


def efficiency_row(config, table: pd.DataFrame, run_id: str = "") -> dict:
    """One efficiency run at its last checkpoint: design, model, training positions, seen and
    unseen accuracy (Wilson interval over `n_unseen` positions), the memoriser on the same unseen
    positions. Columns a run evaluated by older code lacks are NaN."""
    from bumpdiff_core.learn.data import training_positions
    from bumpdiff_core.measure.intervals import wilson
    from bumpdiff_core.sweeps.definitions import design_label

    last = table.iloc[-1] if len(table) else pd.Series(dtype=float)

    def num(name):
        try:
            return float(last.get(name, math.nan))
        except (TypeError, ValueError):
            return math.nan

    acc, n = num("accuracy_unseen"), num("n_unseen")
    low, high = num("accuracy_unseen_low"), num("accuracy_unseen_high")
    if math.isfinite(acc) and math.isfinite(n) and n > 0 and not (math.isfinite(low) and math.isfinite(high)):
        low, high = wilson(int(round(acc * n)), int(n))
    seen = num("accuracy_seen")
    return {"run_id": run_id, "label": design_label(config), "design": config.design,
            "conditioning": config.conditioning, "image_size": config.image_size, "seed": config.seed,
            "positions": len(training_positions(config)), "step": num("step"),
            "accuracy_seen": seen if math.isfinite(seen) else num("accuracy"),
            "accuracy_unseen": acc, "accuracy_unseen_low": low, "accuracy_unseen_high": high,
            "n_unseen": n, "memoriser_unseen": num("memoriser_unseen"), "coord_channels": bool(config.coord_channels),
            # every far-unseen position of the last checkpoint's position map (NaN for older runs)
            **{f"{k}_unseen_map_d{d}": num(f"{k}_unseen_map_d{d}") for d in (2, 3) for k in ("n", "k")}}


def efficiency_rows(sweep, tables: dict) -> list[dict]:
    """`efficiency_row` of every finished efficiency run of `sweep` (definition order)."""
    return [efficiency_row(spec.config, tables[spec.run_id], spec.run_id)
            for spec in sweep.efficiency_runs() if spec.run_id in tables]


def pair_key(config) -> tuple:
    """(dx, dy, seed): how imbalanced runs and their controls are keyed everywhere."""
    return (float(config.increment_x), float(config.increment_y), int(config.seed))


def verdict_inputs(sweep, found: dict, tuned_seeds=None) -> dict:
    """What `claims.verdicts.judge` takes, from {run_id: metrics table} of a sweep's finished runs,
    each run taken from the role that declares it: main tables by seed, Fig. 4 increments (the
    first untuned figure seed), Fig. 5 pairs, the separable controls, the efficiency rows."""
    from bumpdiff_core.sweeps.definitions import TUNED_SEEDS, pick_seeds

    tuned_seeds = TUNED_SEEDS if tuned_seeds is None else tuned_seeds

    def pick(specs, key):  # each table carries its run id, so a claim can list the runs it read
        return {key(s.config): found[s.run_id].assign(run_id=s.run_id) for s in specs if s.run_id in found}

    fig_seeds = pick_seeds(sweep.figure_seeds, tuned_seeds)[0][:1]
    return {"tables": pick(sweep.main_runs(), lambda c: c.seed),
            "increments": pick(sweep.increment_runs(seeds=fig_seeds), lambda c: c.increment_x),
            "pairs": pick(sweep.pair_runs(), pair_key),
            "control_pairs": pick(sweep.control_runs(), pair_key),
            "efficiency": efficiency_rows(sweep, found),
            "figure_seed": fig_seeds[0] if fig_seeds else None}


def read_sweep(sweep, root=None) -> tuple[dict, list, list]:
    """A sweep's finished runs: ({run_id: metrics table}, [{"run_id", "run_dir", "config",
    "final"}], [run ids not finished]). A scaling sweep's rungs are read by `results.scaling`."""
    found, runs, missing = {}, [], []
    for spec in sweep.runs():
        got = finished_table(spec, root)
        if got is None:
            missing.append(spec.run_id)
            continue
        run_dir, table = got
        found[spec.run_id] = table
        final = table.iloc[-1].to_dict() if len(table) else {}
        runs.append({"run_id": spec.run_id, "run_dir": str(run_dir), "config": spec.config.to_dict(),
                     "final": final})

    return found, runs, missing
