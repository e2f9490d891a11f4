"""Numbers across checkpoints and runs, for the notebooks and the README: when a metric first
reaches a level, how far apart x and y cross, when the phases change (per seed, with a t interval
across seeds), the representation measures by phase, the phase boundaries of Fig. 4 and the
per-axis crossings of Fig. 5. Everything here takes metrics tables; the runs of a sweep are opened
by `view.SweepView`. The claims are judged in `verdicts` (one place); every level used here is
read from `verdicts.Thresholds`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from bumpdiff_core.measure import metrics
from bumpdiff_core.claims import verdicts
from bumpdiff_core.config import RunConfig
from bumpdiff_core.measure.intervals import t_interval

# (name, x column, y column) of the metrics whose x/y coupling we measure
COUPLED_METRICS = [("accuracy", "accuracy_x", "accuracy_y"), ("r2 (UMAP)", "r2_x", "r2_y"),
                   ("r2 (raw)", "r2_x_raw", "r2_y_raw")]
COUPLING_LEVELS = (verdicts.DEFAULT.accuracy_level, verdicts.DEFAULT.r2_level)
# representation measures compared across phases: column (mean of x and y when a pair) -> name
PHASE_MEASURES = {"intrinsic_dim": "intrinsic dimension (TwoNN)", "participation_ratio": "participation ratio",
                  "knn_r2": "k-NN R² (mean of x, y)", "neighbour_overlap": "neighbour overlap",
                  "umap_r2": "UMAP R² (mean of x, y)", "raw_r2": "raw ridge R² (mean of x, y)"}
_PAIRS = {"knn_r2": ("knn_r2_x", "knn_r2_y"), "umap_r2": ("r2_x", "r2_y"), "raw_r2": ("r2_x_raw", "r2_y_raw")}


def crossing_step(table: pd.DataFrame, column, level: float) -> float:
    """First checkpoint step at which `column` >= `level` (NaN if never). `column` may be a
    column name or a Series aligned with `table` (e.g. a mean of two columns)."""
    values = table[column] if isinstance(column, str) else column
    hit = np.flatnonzero(values.to_numpy(dtype=float) >= level)
    return float(table["step"].iloc[hit[0]]) if len(hit) else math.nan


def coupling(table: pd.DataFrame, levels=COUPLING_LEVELS) -> pd.DataFrame:
    """For accuracy, R² (UMAP) and R² (raw): the step at which x and y first reach each level and
    the gap step_y - step_x (positive: x first). Small gaps = x and y learned together."""
    rows = []
    for name, cx, cy in COUPLED_METRICS:
        for level in levels:
            sx, sy = crossing_step(table, cx, level), crossing_step(table, cy, level)
            rows.append({"metric": name, "level": level, "step_x": sx, "step_y": sy, "gap_y_minus_x": sy - sx})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class TransitionSummary:
    """Per-seed transition steps and their mean and sd (NaN steps are left out of mean/sd)."""
    per_seed: pd.DataFrame
    mean: pd.Series
    sd: pd.Series


def _items(tables):
    return list(tables.items()) if isinstance(tables, dict) else list(enumerate(tables))


def transition_summary(tables, thresholds: verdicts.Thresholds = verdicts.DEFAULT) -> TransitionSummary:
    """`tables`: {seed: metrics table} or a list of tables. Per seed: step of A->B and of B->C
    (`metrics.phase_transitions`), the step at which the order measure (`thresholds.order_measure`,
    mean of x and y) first reaches `thresholds.r2_level` (`step_order`) and at which accuracy first
    reaches `thresholds.accuracy_level` (`step_accuracy`), and whether the representation got there
    *strictly* first (a tie is not first; ordering while accuracy never rises counts as first;
    never ordering does not)."""
    t = thresholds
    rows = []
    for seed, table in _items(tables):
        tr = metrics.phase_transitions(table)
        order = pd.Series(verdicts.order_interval(table, t)[0], index=table.index)
        step_r2 = crossing_step(table, order, t.r2_level)
        step_acc = crossing_step(table, "accuracy", t.accuracy_level)
        first = (not math.isnan(step_r2)) and (math.isnan(step_acc) or step_r2 < step_acc)
        rows.append({"seed": seed, "step_A_to_B": tr["step_A_to_B"], "step_B_to_C": tr["step_B_to_C"],
                     "step_order": step_r2, "step_accuracy": step_acc,
                     "lead_steps": step_acc - step_r2, "representation_first": first,
                     "final_accuracy": float(table["accuracy"].iloc[-1])})
    per_seed = pd.DataFrame(rows).set_index("seed")
    numeric = per_seed.drop(columns=["representation_first"])
    return TransitionSummary(per_seed, numeric.mean(), numeric.std(ddof=1))


def seed_table(tables: dict, thresholds: verdicts.Thresholds = verdicts.DEFAULT) -> pd.DataFrame:
    """One row per seed: A → B and B → C steps, the step where raw R² (mean of x and y) first
    reaches `r2_level` and where accuracy first reaches `accuracy_level`, the final accuracy with
    its Wilson interval and the final raw R² with its bootstrap interval (NaN bounds when the
    table has neither the columns nor `n_labels`). Then a row `mean` and rows `low`/`high`: the
    mean across seeds and its Student t interval (NaN bounds with one seed)."""
    t = thresholds
    raw = replace(t, order_measure="raw")
    rows = []
    for seed, table in _items(tables):
        table = table.reset_index(drop=True)
        s = transition_summary({seed: table}, raw).per_seed.iloc[0]
        acc, alo, ahi = verdicts.accuracy_interval(table, t)
        r2, rlo, rhi = verdicts.order_interval(table, raw)
        rows.append({"seed": seed, "step_A_to_B": s["step_A_to_B"], "step_B_to_C": s["step_B_to_C"],
                     "step_raw_r2": s["step_order"], "step_accuracy": s["step_accuracy"],
                     "final_accuracy": float(acc[-1]), "final_accuracy_low": float(alo[-1]),
                     "final_accuracy_high": float(ahi[-1]), "final_raw_r2": float(r2[-1]),
                     "final_raw_r2_low": float(rlo[-1]), "final_raw_r2_high": float(rhi[-1])})
    out = pd.DataFrame(rows).set_index("seed")
    out.index = out.index.astype(object)
    summary = {c: t_interval(out[c].to_numpy(float), t.level) for c in out.columns}
    for k, name in enumerate(("mean", "low", "high")):
        out.loc[name] = [summary[c][k] for c in out.columns]
    return out


def _measure(table: pd.DataFrame, name: str) -> np.ndarray:
    cols = _PAIRS.get(name, (name,))
    if not verdicts.has_columns(table, *cols):
        return np.full(len(table), np.nan)
    return table[list(cols)].to_numpy(float).mean(axis=1)


def phase_measures(tables: dict, thresholds: verdicts.Thresholds = verdicts.DEFAULT,
                   measures=tuple(PHASE_MEASURES)) -> pd.DataFrame:
    """Each representation measure averaged over each phase's checkpoints (phases under
    `thresholds`): measure, name, phase, mean, low, high, how (t interval of per-seed means across
    seeds; with one seed a t interval over the phase's checkpoints). NaN when not measured."""
    tables = {k: tb.reset_index(drop=True) for k, tb in _items(tables)}
    rows = []
    for m in measures:
        with_col = {k: tb.assign(**{"_m": _measure(tb, m)}) for k, tb in tables.items()}
        for phase in "ABC":
            mean, low, high, how = verdicts.phase_stat(with_col, phase, "_m", thresholds)
            rows.append({"measure": m, "name": PHASE_MEASURES.get(m, m), "phase": phase, "mean": mean,
                         "low": low, "high": high, "how": how})
    return pd.DataFrame(rows)


def order_inside_b(tables: dict, thresholds: verdicts.Thresholds = verdicts.DEFAULT,
                   measures=("raw_r2", "umap_r2", "knn_r2")) -> pd.DataFrame:
    """Per seed and order measure: the first step *labelled B* at which the measure (mean of x
    and y) is ≥ `thresholds.r2_level`, the step C begins, and how many B checkpoints come from
    that step on (the part of phase B that the measure already calls ordered). NaN/0 when the
    measure never reaches the level inside B or is not measured."""
    t = thresholds
    rows = []
    for seed, table in _items(tables):
        table = table.reset_index(drop=True)
        ph = verdicts.phases_under(table, t)
        steps = table["step"].to_numpy(float)
        c_start = float(steps[ph == "C"][0]) if (ph == "C").any() else math.nan
        n_b = int((ph == "B").sum())
        for m in measures:
            v = _measure(table, m)
            with np.errstate(invalid="ignore"):
                hit = np.flatnonzero((ph == "B") & (v >= t.r2_level))
            first = float(steps[hit[0]]) if len(hit) else math.nan
            late = int(((ph == "B") & (steps >= first)).sum()) if len(hit) else 0
            rows.append({"seed": seed, "measure": m, "name": PHASE_MEASURES[m],
                         "measured": bool(np.isfinite(v).any()), "b_checkpoints": n_b,
                         "first_ordered_in_B": first, "B_checkpoints_ordered_on": late, "C_begins": c_start})
    return pd.DataFrame(rows)


def phase_profile(table: pd.DataFrame) -> pd.DataFrame:
    """Per phase label: how many checkpoints, their step range, and the mean bump-count fractions,
    accuracy, R² and (when measured) the representation measures over them."""
    cols = ["frac_0", "frac_1", "frac_multi", "accuracy", "r2_x", "r2_y", "r2_x_raw", "r2_y_raw"]
    cols += [c for c in ("intrinsic_dim", "participation_ratio", "knn_r2_x", "knn_r2_y", "neighbour_overlap",
                         "error_x", "error_y") if verdicts.has_columns(table, c)]
    g = table.groupby("phase")
    out = g[cols].mean()
    out.insert(0, "last_step", g["step"].max())
    firsts = metrics.first_step_of_phase(table)
    out.insert(0, "first_step", [firsts.get(p) for p in out.index])
    out.insert(0, "checkpoints", g.size())
    return out.reindex([p for p in "ABC" if p in out.index])


def group_by_pair(tables_by_key: dict) -> dict[tuple, list]:
    """{(dx, dy, seed): table} -> {(dx, dy): [tables in seed order]} for `figures.imbalanced_curves`."""
    out: dict[tuple, list] = {}
    for (dx, dy, seed) in sorted(tables_by_key):
        out.setdefault((dx, dy), []).append(tables_by_key[(dx, dy, seed)])
    return out


def coupling_table(tables_by_key: dict) -> pd.DataFrame:
    """`coupling` of every (dx, dy, seed) run in one long table."""
    parts = []
    for (dx, dy, seed), table in tables_by_key.items():
        c = coupling(table)
        c.insert(0, "seed", seed)
        c.insert(0, "dy", dy)
        c.insert(0, "dx", dx)
        parts.append(c)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _runs_of(group) -> list:
    return list(group) if isinstance(group, (list, tuple)) else [group]


def phase_boundaries(tables_by_increment: dict) -> pd.DataFrame:
    """Fig. 4 in numbers: per increment (and run, when an increment has several seeds: `run` is
    its position in the list), the first step of phase B and of phase C, the final accuracy and
    mean UMAP R². The trend is judged by `verdicts.trend_claim`."""
    rows = []
    for inc in sorted(tables_by_increment):
        for k, t in enumerate(_runs_of(tables_by_increment[inc])):
            tr = metrics.phase_transitions(t)
            last = t.iloc[-1]
            rows.append({"increment": inc, "run": k, "step_A_to_B": tr["step_A_to_B"],
                         "step_B_to_C": tr["step_B_to_C"], "final_accuracy": float(last["accuracy"]),
                         "final_mean_r2": float(np.nanmean([last["r2_x"], last["r2_y"]]))})
    return pd.DataFrame(rows)


def axis_crossings(tables_by_key: dict, thresholds: verdicts.Thresholds = verdicts.DEFAULT) -> pd.DataFrame:
    """Fig. 5 in numbers, per (dx, dy, seed) run and statistic: the step at which x and at which y
    first get there, and the gap y − x in steps and in checkpoints (positive: x first). Primary:
    per-axis error of the brightest region ≤ `error_px` (`error_x/y`; no single-bump requirement);
    secondary: `accuracy_x/y` ≥ `accuracy_level` (both need exactly one bump, so 'together' is
    partly built in). Rows of a statistic a table lacks are left out."""
    t = thresholds
    stats = [("error", "error_x", "error_y", t.error_px, False, f"per-axis error ≤ {t.error_px:g} px"),
             ("accuracy", "accuracy_x", "accuracy_y", t.accuracy_level, True,
              f"accuracy_x/y ≥ {t.accuracy_level:g}")]
    rows = []
    for key in sorted(tables_by_key):
        table = tables_by_key[key].reset_index(drop=True)
        dx, dy, seed = key
        steps = table["step"].to_numpy(float)
        n = len(steps)
        for stat, cx, cy, level, upward, what in stats:
            if not verdicts.has_columns(table, cx, cy):
                continue
            ix = verdicts.crossing(*(table[cx].to_numpy(float),) * 3, level, upward)[1]
            iy = verdicts.crossing(*(table[cy].to_numpy(float),) * 3, level, upward)[1]
            sx = steps[ix] if ix < n else math.nan
            sy = steps[iy] if iy < n else math.nan
            rows.append({"dx": dx, "dy": dy, "seed": seed, "statistic": stat, "what": what, "step_x": sx,
                         "step_y": sy, "gap_steps": sy - sx,
                         "gap_checkpoints": (iy - ix) if ix < n and iy < n else math.nan})
    return pd.DataFrame(rows, columns=["dx", "dy", "seed", "statistic", "what", "step_x", "step_y", "gap_steps",
                                       "gap_checkpoints"])


# ---------------------------------------------------------------------------------------------
# the choices the paper leaves open, read from the config and the constants
# ---------------------------------------------------------------------------------------------

def reconstructed_choices(config: RunConfig) -> pd.DataFrame:
    """Every choice the paper does not state, with the knob that changes it and its value here."""
    from bumpdiff_core.measure import columns as schema
    from bumpdiff_core.config import resolve_tap

    tap = resolve_tap(config.tap_layer, len(config.channel_mults))
    m = metrics
    rows = [
        ("Image size", "image_size", config.image_size,
         "The paper uses 32×32. The CPU profiles use 16×16 so the phases appear within minutes; "
         "the cpu32 and paper profiles use 32."),
        ("Bump polarity and scale", "(data.render_bumps)", "bright bump exp(−r²/2σ²), [0,1] → [−1,1]",
         "A bright Gaussian on a dark background, scaled like natural images are for DDPMs."),
        ("Centre grid", "increment_x, increment_y", f"{config.increment_x:g}, {config.increment_y:g}",
         "Centres {0, d, 2d, …, N − d} in x and y independently, the construction of the follow-up paper."),
        ("Conditioning", "(model.ConditionalUNet.condition)",
         "sinusoidal(t) ⊕ sinusoidal(x) ⊕ sinusoidal(y) → MLP → FiLM in every ResBlock",
         "The follow-up paper concatenates sinusoidal encodings of t, x and y and feeds them to every "
         "block; here that vector sets a per-channel scale and shift (FiLM) in each ResBlock."),
        ("Coordinate input channels", "coord_channels", config.coord_channels,
         "Off, as in the paper. CoordConv (two extra channels holding x and y) shortens phase B but "
         "does not remove it."),
        ("UNet width and depth", "base_channels, channel_mults, blocks_per_level, attention_levels",
         f"{config.base_channels}, {list(config.channel_mults)}, {config.blocks_per_level}, {list(config.attention_levels)}",
         "Small on CPU; the paper profile is the ≈23 M-parameter width."),
        ("Which block is “layer 4”", "tap_layer", f"{config.tap_layer} = {tap}",
         "The 4th block in forward order (stem, down1, down2, down3, …): with three levels the output of "
         "the last encoder block before the bottleneck. Every block is recorded, see the per-layer R² profile."),
        ("How a latent vector is read", "(evaluate: trajectory mean)", f"mean over all {config.eval_sampler_steps} "
         f"{config.eval_sampler.upper()} steps of the same pass that draws the sample",
         "Representation and behaviour then come from one pass; no timestep is singled out."),
        ("Evaluation sampler", "eval_sampler, eval_sampler_steps", f"{config.eval_sampler}, {config.eval_sampler_steps}",
         "Deterministic DDIM-20 is ~40× cheaper than 1000-step ancestral DDPM (the reference) at the same accuracy (benchmarks/eval_cost.py)."),
        ("Evaluation labels", "eval_labels, eval_seed", f"{config.eval_labels}, {config.eval_seed}",
         "One sample per label, drawn from the training centres, the same labels and noise at every checkpoint."),
        ("Bump detection", "metrics.BUMP_THRESHOLD, MIN_BUMP_AREA",
         f"> {m.BUMP_THRESHOLD} of full height, ≥ {m.MIN_BUMP_AREA} px, 8-connected",
         "A bump is a bright connected region shaped like a bump (window correlation ≥ "
         f"{m.MIN_BUMP_CORRELATION:g} with an ideal one); its centre is where an ideal bump of width σ best "
         f"matches the {2 * m.CENTROID_RADIUS + 1} × {2 * m.CENTROID_RADIUS + 1} window around its brightest pixel (to 0.01 px), which, unlike a centroid, is "
         "not pulled inwards where the image border cuts the bump off."),
        ("Accuracy rule", "metrics.TOLERANCE_PX", f"exactly one bump, |x̂ − x| ≤ {m.TOLERANCE_PX:g} and |ŷ − y| ≤ {m.TOLERANCE_PX:g} px",
         "accuracy_x / accuracy_y apply the same rule to one coordinate."),
        ("R² (the paper's measure)", "(metrics.r2_in_sample)", "linear regression from the 3D UMAP to x (y), in-sample",
         "As the paper describes it."),
        ("R² control", "(metrics.r2_cross_validated)", "leave-one-out ridge regression from the raw activations",
         "Does not depend on UMAP; an ordered 3D UMAP without it would be suspicious."),
        ("Intrinsic dimension", "(geometry.twonn_dimension)", "TwoNN (Facco et al. 2017) on the tapped activations",
         f"Only the ratio of each point's 2nd to 1st nearest-neighbour distance; a 2D sheet on continuous labels "
         f"reads {verdicts.DEFAULT.sheet_dim:g} ± {verdicts.DEFAULT.dim_tolerance:g}, on the grid labels ~4.5 (tied "
         "neighbours), so no verdict reads it: they judge the Levina–Bickel MLE (`dim_mle`) against a sheet null "
         "through the same labels with the measured noise (`dim_null_low/high`). The participation ratio beside it "
         "is the *linear* dimension."),
        ("Order without a linear read-out", "(geometry.knn_r2, geometry.neighbourhood_overlap)",
         f"leave-one-out k-NN regression R² (k = {schema.KNN_K}); neighbour overlap "
         f"(k = {schema.OVERLAP_K}); each k at most n − 1",
         "Both score a sheet that is ordered but curved, where a linear read-out of the UMAP fails; "
         "the overlap's chance level is about k / (n − 1)."),
        ("Per-axis error", "(geometry.axis_errors)", "centre of the brightest region, |x̂ − x| and |ŷ − y| in px",
         "Needs no single bump (unlike accuracy_x / accuracy_y), so Fig. 5's 'x and y together' is not "
         f"built in; an axis counts as learned at ≤ {verdicts.DEFAULT.error_px:g} px."),
        ("Intervals", "(intervals.wilson, bootstrap_r2_loo, t_interval)",
         f"{verdicts.DEFAULT.level:.0%}: Wilson for accuracies; percentile bootstrap of the leave-one-out "
         "(prediction, target) pairs for R²; Student t across seeds",
         "The bootstrap resamples leave-one-out predictions rather than refitting on duplicated points "
         "(which would leak a point into its own test)."),
        ("UMAP", "umap_neighbors, umap_min_dist", f"{config.umap_neighbors}, {config.umap_min_dist:g}",
         "3 components, fixed random_state = eval_seed, so embeddings repeat exactly."),
        ("Phase labels", "metrics.PHASE_SINGLE_BUMP, PHASE_ACCURATE",
         f"A if < {m.PHASE_SINGLE_BUMP:.0%} single bumps; else C if accuracy ≥ {m.PHASE_ACCURATE:.0%}; else B",
         "The paper labels phases by eye; this rule reads the generation behaviour it describes."),
        ("Optimiser", "lr, lr_final_ratio, weight_decay, batch_size, ema_decay",
         f"AdamW, lr {config.lr:g} → {config.lr * config.lr_final_ratio:g} (cosine), weight decay "
         f"{config.weight_decay:g}, batch {config.batch_size}, EMA {config.ema_decay:g}",
         "The paper names none of these. A constant lr left accuracy wobbling at 32×32; a decay settles it."),
        ("Checkpoints", "checkpoint_dense_every, checkpoint_dense_until, checkpoint_log_count",
         f"every {config.checkpoint_dense_every} to {config.checkpoint_dense_until}, then {config.checkpoint_log_count} log-spaced",
         "Dense early, where the phases happen."),
    ]
    return pd.DataFrame(rows, columns=["choice", "config field / constant", "value in this run", "why"])
