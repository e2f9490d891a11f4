"""What a claim of the paper is and how a number is checked against it: the verdict words, the
thresholds (declared once, each with what would make its claim fail), the claims' definitions, and
the interval checks the verdicts are built from (pass when the whole interval is on the claimed
side, fail when it is all on the other side, undecided otherwise). `verdicts` applies them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

import numpy as np
import pandas as pd

from bumpdiff_core.measure import metrics
from bumpdiff_core.measure.intervals import t_interval, wilson
from bumpdiff_core.sweeps.definitions import TUNED_SEEDS  # noqa: F401  (declared with the sweeps' seed roles)

REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NO_CLAIM = (
    "reproduced", "partly", "not reproduced", "undecided", "no claim")
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NO_CLAIM)
CLAIM_COLUMNS = ["claim", "verdict", "value", "low", "high", "detail", "runs"]  # runs: the run ids it read

# order measures: name -> (x column, y column)
ORDER_MEASURES = {"raw": ("r2_x_raw", "r2_y_raw"), "umap": ("r2_x", "r2_y"), "knn": ("knn_r2_x", "knn_r2_y")}
ORDER_NAMES = {"raw": "raw-activation ridge R²", "umap": "UMAP R²", "knn": "k-NN R²"}


DIM_BANDS = (0.9, 0.95, 0.99)  # the null bands the metrics table stores (measure/representation.py)


def dim_band_columns(band: float) -> tuple[str, str]:
    """The metrics columns of the sheet null's central `band` (low, high)."""
    return ("dim_null_low", "dim_null_high") if band == 0.95 else (f"dim_null_low_{band * 100:.0f}",
                                                                     f"dim_null_high_{band * 100:.0f}")


def _t(default, meaning: str, fails: str):
    return field(default=default, metadata={"meaning": meaning, "fails": fails})


@dataclass(frozen=True)
class Thresholds:
    """Every level a verdict compares against, declared once. `meaning` says what the level is,
    `fails` what result would make the claim that uses it fail (read by `thresholds_table`)."""

    accuracy_level: float = _t(
        metrics.PHASE_ACCURATE, "accuracy that counts as 'behaviour is right' (phase C label, accuracy crossing)",
        "order-first fails if accuracy reaches it at the same checkpoint as the representation or earlier")
    single_bump_level: float = _t(
        metrics.PHASE_SINGLE_BUMP, "fraction of single-bump samples that ends phase A (phase label)",
        "the phase-order claim fails if a run never leaves A, or reaches C without a B checkpoint")
    r2_level: float = _t(
        0.9, "order measure (mean of x and y) that counts as 'the representation is ordered'",
        "phase C fails if the final order interval lies below it; order-first fails if it is reached no earlier than accuracy")
    unstructured_level: float = _t(
        0.5, "mean order measure over phase A below which A has 'no latent structure'",
        "phase A fails if its mean order interval lies above it")
    final_accuracy: float = _t(
        0.9, "final accuracy that counts as 'one bump in the right place' (phase C)",
        "phase C fails if the final accuracy interval lies below it")
    sheet_dim: float = _t(2.0, "intrinsic dimension of a sheet (figures' reference line only; no verdict reads it)", "—")
    dim_tolerance: float = _t(
        0.5, "figures' TwoNN band around sheet_dim (shown only: TwoNN reads ~4.5 for a noiseless sheet through the "
        "grid labels, so no verdict reads it)", "—")
    dim_band: float = _t(
        0.95, "central quantile band of the sheet null (smooth 2D sheets through the same labels with the measured "
        "noise and curvature) inside which the MLE dimension counts as '2D'; 0.9, 0.95 or 0.99",
        "phase B / C is at most 'partly' if the MLE dimension lies above the null band (not 2D)")
    error_px: float = _t(
        1.0, "per-axis error (px, brightest region) that counts as 'this coordinate is learned' (Fig. 5)",
        "Fig. 5: the x-learned checkpoint is the first with error_x at or below it")
    together_checkpoints: int = _t(
        1, "Fig. 5: a shift of the x-learned checkpoint over dy 0.1 → 1.0 within ± this many checkpoints counts as "
        "'x learned independently of dy'",
        "coupling fails if the global model's shift interval lies within it (independent); it is undecided unless the "
        "separable control's interval lies within it (the test's power is shown by the factorizing model)")
    compose_level: float = _t(
        0.5, "unseen accuracy on `lines` (every x and y value seen, few combinations) that separates 'composes "
        "unseen (x, y)' from 'does not'",
        "no-factorization fails if the global model's interval across networks lies above it; it is undecided if "
        "that interval straddles it, the separable control's does not lie above it, or no coordinate control was run")
    unseen_distance: int = _t(
        2, "an unseen position lies at Chebyshev distance ≥ this (px) from every training position (2 or 3)",
        "— (changes which positions the `lines` claim scores)")
    min_seeds: int = _t(
        3, "untuned networks (seeds) a verdict needs for an interval across networks",
        "with fewer, the verdicts that need one say undecided: too few seeds")
    order_measure: str = _t("raw", "which order measure the claims read: raw, umap or knn", "—")
    level: float = _t(0.95, "confidence level of every interval", "—")

    def __post_init__(self):
        if self.order_measure not in ORDER_MEASURES:
            raise ValueError(f"order_measure must be one of {', '.join(ORDER_MEASURES)}; got {self.order_measure!r}")
        if self.dim_band not in DIM_BANDS:
            raise ValueError(f"dim_band must be one of {', '.join(map(str, DIM_BANDS))} (the stored null bands); "
                             f"got {self.dim_band!r}")
        if self.unseen_distance not in (2, 3):
            raise ValueError(f"unseen_distance must be 2 or 3 (the distances the metrics table scores); got "
                             f"{self.unseen_distance!r}")
        if self.min_seeds < 2:
            raise ValueError(f"min_seeds must be >= 2 (an interval across networks needs two); got {self.min_seeds!r}")


DEFAULT = Thresholds()
# the sensitivity grid: every combination is judged
SENSITIVITY_ACCURACY = (0.3, 0.4, 0.5, 0.6, 0.7)
SENSITIVITY_R2 = (0.7, 0.8, 0.9, 0.95)
# every declared threshold, one at a time (`sensitivity.threshold_flips`): the values tried besides the default
SENSITIVITY_GRID = {
    "accuracy_level": (0.3, 0.4, 0.6, 0.7),
    "single_bump_level": (0.3, 0.7),
    "r2_level": (0.7, 0.8, 0.95),
    "unstructured_level": (0.3, 0.7),
    "final_accuracy": (0.8, 0.95),
    "dim_band": (0.9, 0.99),
    "error_px": (0.5, 1.5),
    "together_checkpoints": (0, 2),
    "compose_level": (0.3, 0.7),
    "unseen_distance": (3,),
}

CLAIMS = {
    "phases": "Training passes through phases A → B → C (abstract, Fig. 3; behaviour labels)",
    "phase_A": "Phase A: no latent structure",
    "phase_B": "Phase B: a disordered, quasi-2D sheet (more 2D than A, less ordered than C)",
    "phase_C": "Phase C: an ordered 2D sheet, one bump in the right place",
    "order_first": "The representation orders strictly before accuracy rises",
    "fig4_trend": "Fig. 4: the B → C step against the data increment (the caption states no trend)",
    "fig5_coupling": "Fig. 5: on imbalanced data x and y are learned together, not x first",
    "compose": ("The vanilla model does not learn x and y separately (Fig. 1; abstract): trained on `lines`, it fails "
                "on unseen positions where a factorizing model succeeds"),
}
CLAIM_SHORT = {"phases": "A → B → C", "phase_A": "phase A", "phase_B": "phase B", "phase_C": "phase C",
               "order_first": "order first", "fig4_trend": "Fig. 4 trend", "fig5_coupling": "Fig. 5 coupling",
               "compose": "no factorization"}
_KEY_OF = {text: key for key, text in CLAIMS.items()}


def thresholds_table(thresholds: Thresholds = DEFAULT) -> pd.DataFrame:
    """name, value, meaning, what would make a claim fail: for the page's prose."""
    def shown(v):  # general format: 0.5, not 0.500000
        return format(v, "g") if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    return pd.DataFrame([{"name": f.name, "value": shown(getattr(thresholds, f.name)), "meaning": f.metadata["meaning"],
                          "fails if": f.metadata["fails"]} for f in fields(thresholds)])


def claim_definitions(t: Thresholds = DEFAULT) -> pd.DataFrame:
    """Each claim: the statistic judged and the rule, with the thresholds filled in (read from
    `t`, so prose and verdicts cannot disagree), and what result would make it fail."""
    order = ORDER_NAMES[t.order_measure]
    rows = [
        ("phases", "per seed: first checkpoint labelled A, B, C (A if single-bump fraction < "
         f"{t.single_bump_level:g}, else C if accuracy ≥ {t.accuracy_level:g}, else B); value: fraction "
         "of seeds with A < B < C (Wilson interval)",
         "reproduced if every seed goes A < B < C without stepping back; partly if some do or some step back",
         "a seed that never reaches B or C, or reaches C before B. (Nearly guaranteed by the labelling "
         "rule: the representation claims below carry the weight.)"),
        ("phase_A", f"mean {order} over phase-A checkpoints",
         f"reproduced if the interval lies below {t.unstructured_level:g}",
         f"the interval lies above {t.unstructured_level:g} (phase A already has linear structure)"),
        ("phase_B", f"Levina–Bickel MLE dimension (dim_mle) over phase B against the {t.dim_band:.0%} band of a null "
         "made from the run's own labels (smooth 2D sheets through the same evaluation labels, with the noise and "
         "curvature measured at each checkpoint from a second noise seed per label); per seed, B's mean MLE against "
         f"B's mean band; (MLE − null median) in A minus in B; {order} in C minus in B (t intervals across seeds)",
         f"reproduced if every seed's B lies inside its band (2D), B is closer to a sheet than A and less ordered "
         f"than C (both difference intervals above 0); partly if only the 2D check fails; undecided with fewer than "
         f"{t.min_seeds} untuned seeds",
         "B no closer to a sheet than A, or B as ordered as C, or B above its band without being closer to a sheet "
         "than A; undecided when dim_mle or the null band is not measured"),
        ("phase_C", f"final checkpoint: {order} (value), accuracy, MLE dimension against its null band",
         f"reproduced if order ≥ {t.r2_level:g} and accuracy ≥ {t.final_accuracy:g} (whole intervals) and every "
         f"seed's MLE lies inside its {t.dim_band:.0%} null band; partly if the MLE lies above it (not 2D)",
         f"final order interval below {t.r2_level:g} or final accuracy interval below {t.final_accuracy:g}"),
        ("order_first", f"per untuned seed, lead = (checkpoint where the behavioural R² — the drawn positions' "
         f"brightest-region centres regressed on the label — first ≥ {t.r2_level:g}) − (checkpoint where the "
         f"representation's R² first ≥ {t.r2_level:g}), for two representations: the trajectory mean ({order}) "
         "and the first denoising step (pure noise in, nothing drawn); crossing intervals from the R² bootstrap "
         "intervals; never = one past the last",
         f"a seed passes when its lead interval is ≥ 1 (strictly first); reproduced if every seed passes for both "
         f"representations; partly if one representation passes and the other fails, or seeds disagree; undecided "
         f"with fewer than {t.min_seeds} untuned seeds",
         "a tie (lead 0) or the drawn positions first: lead interval ≤ 0 for every seed"),
        ("fig4_trend", "Spearman rho of increment with the B → C step (permutation p, bootstrap interval)",
         "no claim (the caption states no trend); a direction is named only when the interval excludes 0",
         "—"),
        ("fig5_coupling", f"at dx = 0.1, the checkpoint at which x is learned (error_x ≤ {t.error_px:g} px) for "
         "dy ∈ {0.1, 0.5, 1}; the trend: the least-squares shift of that checkpoint over dy 0.1 → 1 across runs "
         "(t interval of the slope, n − 2 df); the separable model (it can only factorize) on the same designs is "
         "the positive control",
         f"independent if the shift interval lies within ±{t.together_checkpoints} checkpoints, coupled if it lies "
         f"wholly beyond; reproduced if the global model reads coupled while the control reads independent; "
         f"undecided unless the control reads independent, or with fewer than {t.min_seeds} untuned seeds per dy",
         "the global model reads independent (x learned at the same step whatever dy)"),
        ("compose", f"unseen accuracy on `lines` over every grid position ≥ {t.unseen_distance} px from all training "
         "positions (the last checkpoint's position map), per network (Wilson) and across networks (t interval of "
         "the logits of (k + ½)/(n + 1), back-transformed, so it stays in [0, 1]); global model, separable model "
         "(positive control) and global model with coordinate channels (it separates 'factorized' from 'has "
         "coordinates'), each on the same untuned seeds",
         f"reproduced if the global and coordinate-control intervals lie below {t.compose_level:g} and the separable "
         f"one above; partly if the coordinate control also lies above (coordinates suffice); undecided with fewer "
         f"than {t.min_seeds} seeds of each",
         f"the global interval lies above {t.compose_level:g} (it composes unseen positions); undecided if it "
         f"straddles {t.compose_level:g}, or the control does not lie above it, or a control was not run"),
    ]
    return pd.DataFrame([{"claim": CLAIMS[k], "statistic": s, "rule": r, "fails if": f} for k, s, r, f in rows])


# ---------------------------------------------------------------------------------------------
# small pieces
# ---------------------------------------------------------------------------------------------

PASS, FAIL, OPEN = "pass", "fail", "undecided"


def has_columns(table: pd.DataFrame, *columns) -> bool:
    """Every column is there and holds at least one finite value (runs evaluated before a column
    existed load it as all NaN: that counts as absent)."""
    return all(c in table.columns and np.isfinite(pd.to_numeric(table[c], errors="coerce").to_numpy(float)).any()
               for c in columns)


def _finite(*xs) -> bool:
    return all(x is not None and np.isfinite(x) for x in xs)


def _above(low, high, threshold, strict=False) -> str:
    """The interval [low, high] is at/above `threshold` (pass), wholly below (fail), or straddles."""
    if not _finite(low, high):
        return OPEN
    if low > threshold or (not strict and low >= threshold):
        return PASS
    if high < threshold or (strict and high <= threshold):
        return FAIL
    return OPEN


def _below(low, high, threshold) -> str:
    return {PASS: FAIL, FAIL: PASS, OPEN: OPEN}[_above(low, high, threshold, strict=True)]


def _within(low, high, centre, tol) -> str:
    if not _finite(low, high):
        return OPEN
    if low >= centre - tol and high <= centre + tol:
        return PASS
    if high < centre - tol or low > centre + tol:
        return FAIL
    return OPEN


def _f(x, fmt=".2f") -> str:
    return "n/a" if x is None or not np.isfinite(x) else format(x, fmt)


def _iv(value, low, high, fmt=".2f") -> str:
    if _finite(low, high):
        return f"{_f(value, fmt)} [{_f(low, fmt)}, {_f(high, fmt)}]"
    return f"{_f(value, fmt)} (no interval)"


def _row(key, verdict, value=math.nan, low=math.nan, high=math.nan, detail="", runs=()) -> dict:
    assert verdict in VERDICTS, verdict
    return {"claim": CLAIMS[key], "verdict": verdict, "value": float(value), "low": float(low),
            "high": float(high), "detail": detail, "runs": sorted(set(str(r) for r in runs if r))}


def run_ids(*tables) -> list:
    """The run ids a claim read: the `run_id` column `results.tables.verdict_inputs` adds to each
    table (hand-made tables have none)."""
    out = []
    for tb in tables:
        if isinstance(tb, pd.DataFrame) and "run_id" in tb.columns and len(tb):
            out.append(str(tb["run_id"].iloc[0]))
    return out


def _phases(table: pd.DataFrame, t: Thresholds) -> np.ndarray:
    """Phase labels under `t` (the same rule as metrics.phase_label, with t's levels)."""
    if {"frac_1", "accuracy"} <= set(table.columns):
        f1, acc = table["frac_1"].to_numpy(float), table["accuracy"].to_numpy(float)
        return np.where(f1 < t.single_bump_level, "A", np.where(acc >= t.accuracy_level, "C", "B"))
    return table["phase"].astype(str).to_numpy()


def _order(table: pd.DataFrame, t: Thresholds):
    """(value, low, high) arrays of the order measure (mean of x and y); NaN columns if absent."""
    cx, cy = ORDER_MEASURES[t.order_measure]
    n = len(table)
    nan = np.full(n, np.nan)
    if not has_columns(table, cx, cy):
        return nan, nan, nan
    value = table[[cx, cy]].to_numpy(float).mean(axis=1)
    lows = [f"{cx}_low", f"{cy}_low"]
    highs = [f"{cx}_high", f"{cy}_high"]
    if has_columns(table, *lows, *highs):
        return value, table[lows].to_numpy(float).mean(axis=1), table[highs].to_numpy(float).mean(axis=1)
    return value, nan, nan


def _accuracy(table: pd.DataFrame, t: Thresholds, column: str = "accuracy"):
    """(value, low, high) arrays: the table's Wilson bounds, else Wilson from n_labels, else none."""
    value = table[column].to_numpy(float)
    if has_columns(table, f"{column}_low", f"{column}_high"):
        return value, table[f"{column}_low"].to_numpy(float), table[f"{column}_high"].to_numpy(float)
    if has_columns(table, "n_labels"):
        n = table["n_labels"].to_numpy(float)
        low, high = wilson(np.round(value * n), n, t.level)
        return value, np.asarray(low, float), np.asarray(high, float)
    nan = np.full(len(table), np.nan)
    return value, nan, nan


def _crossing(value, low, high, level, upward=True) -> tuple[int, int, int]:
    """(earliest, point, latest) checkpoint index at which the quantity first reaches `level`
    (>= when upward, <= otherwise), as allowed by its interval; len = never. A checkpoint without
    an interval could be on either side (so a crossing without intervals is undecided); pass the
    value as its own bounds to judge a quantity that has no interval by its point value."""
    n = len(value)
    low = np.where(np.isfinite(low), low, -np.inf)
    high = np.where(np.isfinite(high), high, np.inf)

    def first(v):
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(v >= level if upward else v <= level)
        return int(hit[0]) if len(hit) else n

    return (first(high), first(value), first(low)) if upward else (first(low), first(value), first(high))


def _across(per_seed: list, t: Thresholds) -> tuple[float, float, float]:
    return t_interval(per_seed, t.level)


def _phase_stat(tables: dict, phase: str, values_of, t: Thresholds):
    """Mean over `phase`'s checkpoints of a per-checkpoint quantity: across seeds a t interval of
    the per-seed means; one seed, a t interval over its checkpoints. -> (mean, low, high, per-seed
    means, how) ; NaN when no checkpoint has the phase."""
    per_seed, pooled = [], []
    for table in tables.values():
        v = values_of(table)[_phases(table, t) == phase]
        v = v[np.isfinite(v)]
        if len(v):
            per_seed.append(float(v.mean()))
            pooled.append(v)
    if len(per_seed) >= 2:
        return (*_across(per_seed, t), per_seed, f"t interval across {len(per_seed)} seeds")
    if len(per_seed) == 1:  # no t interval over the autocorrelated checkpoints of one run
        return per_seed[0], math.nan, math.nan, per_seed, "one run: no interval across networks"
    return math.nan, math.nan, math.nan, per_seed, "no checkpoint in this phase"


def _difference(tables: dict, first: tuple, second: tuple, t: Thresholds):
    """first − second, each (phase, values_of): paired across seeds (t interval of per-seed
    differences) or, with one seed, the conservative difference of the two t intervals."""
    diffs = []
    for table in tables.values():
        ph = _phases(table, t)
        a = first[1](table)[ph == first[0]]
        b = second[1](table)[ph == second[0]]
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if len(a) and len(b):
            diffs.append(float(a.mean() - b.mean()))
    if len(diffs) >= 2:
        return (*_across(diffs, t), f"t interval of {len(diffs)} per-seed differences")
    if len(diffs) == 1:
        return diffs[0], math.nan, math.nan, "one run: no interval across networks"
    return math.nan, math.nan, math.nan, "a phase is missing"
