"""Data scaling fits (the old M* ladders of `sweeps.ladders`): M* per ladder read off finished
runs (`m_star_table`) and the slope of log M* on log K with a bootstrap interval (`slope_fits`)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bumpdiff_core.results import tables as tables_mod

from bumpdiff_core.sweeps.ladders import (  # noqa: F401  (the ladders these fits read, re-exported)
    CHECKPOINTS, LADDER_POINTS, M_STAR_ACCURACY, MEASURED_SMALL, MIN_K_FOR_SLOPE, MIN_UNSEEN, REFERENCE_ACCURACY,
    SCALING_MODELS, SCALING_SEEDS, SCALING_SIZES, SMALL_SIZES, Ladder, bisect_next, bisection_length, design_size,
    estimate, estimated_seconds, ladders, lines_ladder, n_unseen, random_ladder, reference_overrides,
    scaling_overrides, step_budget, unseen_mask)


# above: when no rung passed, the largest trained size (it failed): M* lies above it (censored)
MSTAR_COLUMNS = ["design", "model", "K", "seed", "m_star", "above", "reference_accuracy", "rungs", "detail"]


def _final(row, name):
    value = row.get(name) if hasattr(row, "get") else None
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def m_star_table(finals, threshold: float = M_STAR_ACCURACY,
                 reference_level: float = REFERENCE_ACCURACY) -> pd.DataFrame:
    """M* per (design, model, K, seed) from `finals`: [(config, last metrics row)] of finished
    runs. M* = the smallest design size whose final `accuracy_unseen` >= `threshold`; NaN when no
    rung reaches it (censored: "more than the ladder's top", said in `detail`) or when the K's
    full-grid reference run is missing or below `reference_level` (the budget was too short)."""
    reference, rungs = {}, {}
    for config, row in finals:
        key = (config.conditioning, config.image_size, config.seed)
        if config.design == "grid":
            reference[key] = _final(row, "accuracy")
        elif config.design in ("random", "lines"):
            rung = config.design_count if config.design == "random" else config.design_lines
            size = design_size(config.design, config.image_size, rung)
            rungs.setdefault((config.design, *key), []).append((size, _final(row, "accuracy_unseen")))
    out = []
    for (design, model, k, seed), points in sorted(rungs.items()):
        points.sort()
        ref = reference.get((model, k, seed), math.nan)
        passing = [size for size, acc in points if np.isfinite(acc) and acc >= threshold]
        above = math.nan
        if not np.isfinite(ref):
            m, detail = math.nan, "no finished full-grid reference run"
        elif ref < reference_level:
            m, detail = math.nan, f"reference accuracy {ref:.2f} < {reference_level:g}: budget too short, left out"
        elif passing:
            below = [size for size, acc in points if size < passing[0]]
            m, detail = float(passing[0]), (f"smallest of {len(points)} trained rungs with unseen accuracy >= "
                                            f"{threshold:g}" + (f"; {below[-1]} positions did not" if below else
                                                                "; no smaller rung trained (the ladder's bottom): "
                                                                "an upper bound"))
        else:
            above = float(points[-1][0])
            m, detail = math.nan, (f"no trained rung up to {points[-1][0]} positions reached {threshold:g} "
                                   "(censored: M* above the ladder)")
        out.append({"design": design, "model": model, "K": k, "seed": seed, "m_star": m, "above": above,
                    "reference_accuracy": ref, "rungs": len(points), "detail": detail})
    return pd.DataFrame(out, columns=MSTAR_COLUMNS)


def _slope(logk, logm) -> float:
    if len(set(np.round(logk, 9))) < 2:
        return math.nan
    return float(np.polyfit(logk, logm, 1)[0])


def slope_fits(mstar: pd.DataFrame, n_boot: int = 2000, seed: int = 0, level: float = 0.95,
               min_k: int = MIN_K_FOR_SLOPE) -> list[dict]:
    """Per (design, model): least-squares slope of log M* on log K over every (K, seed) with an M*,
    and a percentile bootstrap interval that resamples the K values (each with all its seeds):
    the K values, not the seeds, are the independent units of a slope. Fewer than `min_k` K values
    with an M* -> no slope (NaN), said in `detail`."""
    fits = []
    for (design, model), group in mstar.groupby(["design", "model"], sort=True):
        ok = group.dropna(subset=["m_star"])
        ks = sorted(ok["K"].unique())
        censored = int(group["m_star"].isna().sum())
        if len(ks) < min_k:
            fits.append({"design": design, "model": model, "slope": math.nan, "low": math.nan, "high": math.nan,
                         "detail": f"M* found at {len(ks)} K value(s) ({', '.join(map(str, ks)) or 'none'}); "
                                   f"fewer than {min_k} cannot decide a slope, none fitted "
                                   f"({censored} (K, seed) without M*)"})
            continue
        logk, logm = np.log(ok["K"].to_numpy(float)), np.log(ok["m_star"].to_numpy(float))
        slope = _slope(logk, logm)
        rng = np.random.default_rng(seed)
        by_k = {k: ok["K"].to_numpy() == k for k in ks}
        boot = []
        for _ in range(n_boot):
            pick = rng.choice(ks, size=len(ks), replace=True)
            idx = np.concatenate([np.flatnonzero(by_k[k]) for k in pick])
            s = _slope(logk[idx], logm[idx])
            if np.isfinite(s):
                boot.append(s)
        low, high = (np.quantile(boot, [(1 - level) / 2, (1 + level) / 2]) if boot else (math.nan, math.nan))
        low, high = min(float(low), slope), max(float(high), slope)
        fits.append({"design": design, "model": model, "slope": slope, "low": low, "high": high,
                     "detail": f"{len(ok)} (K, seed) points at K = {', '.join(map(str, ks))}; bootstrap over K "
                               f"({n_boot} resamples, {level:.0%}); {censored} (K, seed) without M* left out; "
                               f"M* threshold: unseen accuracy >= {M_STAR_ACCURACY:g}"})
    return fits


# --- a data-scaling sweep's fits, from its finished runs ---------------------------------------

def _finals(sweep, tables: dict) -> list:
    """(config, last row) of every finished efficiency run and of every rung of a decided ladder
    (an undecided ladder's M* is not known yet: its rungs wait)."""
    specs = list(sweep.efficiency_runs())
    specs += [s for _, rung_specs, _, i in tables_mod.ladder_states(sweep, tables) if i is None for s in rung_specs]
    return [(spec.config, tables[spec.run_id].iloc[-1]) for spec in specs
            if spec.run_id in tables and len(tables[spec.run_id])]


def scaling_table(sweep, tables: dict) -> pd.DataFrame:
    """M* per (design, model, K, seed) of a data-scaling sweep (`m_star_table`); empty
    for a sweep without scaling runs. `tables`: {run_id: metrics table} of its finished runs."""
    if not getattr(sweep, "scaling", False):
        return pd.DataFrame(columns=MSTAR_COLUMNS)
    return m_star_table(_finals(sweep, tables))


def scaling_fits(sweep, tables: dict) -> list[dict]:
    """Fits of a data-scaling sweep ({"design", "model", "slope", "low", "high", "detail"} each,
    `slope_fits`); [] for a sweep without scaling runs."""
    if not getattr(sweep, "scaling", False):
        return []
    return slope_fits(scaling_table(sweep, tables))


