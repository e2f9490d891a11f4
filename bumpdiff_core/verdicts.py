"""The paper's claims judged on metrics tables: one rule per claim, thresholds declared once, an
interval behind every number, and `undecided` wherever an interval straddles its threshold.

Input: per-checkpoint metrics tables (`evaluate.METRIC_COLUMNS`, one row per checkpoint) keyed by
seed. Optional columns are used when present and named in the detail when absent:
`n_labels`, `accuracy_low/high` (Wilson), `r2_x_raw_low/high`, `r2_y_raw_low/high` (bootstrap),
`intrinsic_dim` (TwoNN), `knn_r2_x/y`, `error_x/y` (px). Nothing here reads files or trains.

Why a new module (a reviewer's objections to `analysis.claim_verdicts`):
- A → B → C follows almost by construction from the behavioural phase rule, so the claims that
  carry weight are about the *representation* in each phase: phase B is judged against A (closer
  to a 2D sheet) and against C (less ordered), with intervals.
- "The representation orders first" needs a *strictly* earlier checkpoint; a tie is not first.
- Verdicts use the seeds the default profile was not tuned on (`TUNED_SEEDS` are left out when any
  other seed is there; the result says which seeds it used).

Verdict words (exactly these): reproduced, partly, not reproduced, undecided, no claim.
Intervals: a quantity measured on one run uses its own intervals (Wilson for accuracies, bootstrap
for R²; the interval of a mean of x and y is the mean of their bounds, an approximation); a
quantity over several seeds is a mean with a Student t interval across seeds; a phase average in a
single run is a t interval over that phase's checkpoints (a spread across checkpoints, stated as
such). A check passes when its whole interval is on the claimed side of the threshold, fails when
the whole interval is on the other side, and is undecided otherwise (or when no interval exists,
e.g. R² without its bootstrap columns; accuracy intervals are computed from `n_labels` when the
table has no Wilson columns). The one exception: `error_x/y` come without intervals and are judged
on their point values (said in the detail).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from . import metrics
from .intervals import bootstrap_spearman, spearman_permutation, t_interval, wilson

REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NO_CLAIM = (
    "reproduced", "partly", "not reproduced", "undecided", "no claim")
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, UNDECIDED, NO_CLAIM)
CLAIM_COLUMNS = ["claim", "verdict", "value", "low", "high", "detail"]

# the quick profile's defaults were tuned while looking at seeds 0-2; verdicts use the others
TUNED_SEEDS = frozenset({0, 1, 2})

# order measures: name -> (x column, y column)
ORDER_MEASURES = {"raw": ("r2_x_raw", "r2_y_raw"), "umap": ("r2_x", "r2_y"), "knn": ("knn_r2_x", "knn_r2_y")}
ORDER_NAMES = {"raw": "raw-activation ridge R²", "umap": "UMAP R²", "knn": "k-NN R²"}


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
    sheet_dim: float = _t(2.0, "intrinsic dimension of a sheet", "—")
    dim_tolerance: float = _t(
        0.5, "a manifold is 'a 2D sheet' when its TwoNN intrinsic dimension is within sheet_dim ± this",
        "phase B (and C) is only 'partly' if its intrinsic-dimension interval lies outside 2 ± tolerance")
    error_px: float = _t(
        1.0, "per-axis error (px, brightest region) that counts as 'this coordinate is learned' (Fig. 5)",
        "coupling fails for a run if x and y reach it more than `together_checkpoints` apart")
    together_checkpoints: int = _t(
        1, "x and y crossing at most this many checkpoints apart count as 'together' (Fig. 5)",
        "coupling fails if the whole crossing-gap interval lies beyond it")
    order_measure: str = _t("raw", "which order measure the claims read: raw, umap or knn", "—")
    level: float = _t(0.95, "confidence level of every interval", "—")

    def __post_init__(self):
        if self.order_measure not in ORDER_MEASURES:
            raise ValueError(f"order_measure must be one of {', '.join(ORDER_MEASURES)}; got {self.order_measure!r}")


DEFAULT = Thresholds()
# the sensitivity grid: every combination is judged
SENSITIVITY_ACCURACY = (0.3, 0.4, 0.5, 0.6, 0.7)
SENSITIVITY_R2 = (0.7, 0.8, 0.9, 0.95)

CLAIMS = {
    "phases": "Training passes through phases A → B → C (abstract, Fig. 3; behaviour labels)",
    "phase_A": "Phase A: no latent structure",
    "phase_B": "Phase B: a disordered, quasi-2D sheet (more 2D than A, less ordered than C)",
    "phase_C": "Phase C: an ordered 2D sheet, one bump in the right place",
    "order_first": "The representation orders strictly before accuracy rises",
    "fig4_trend": "Fig. 4: the B → C step against the data increment (the caption states no trend)",
    "fig5_coupling": "Fig. 5: on imbalanced data x and y are learned together, not x first",
}
CLAIM_SHORT = {"phases": "A → B → C", "phase_A": "phase A", "phase_B": "phase B", "phase_C": "phase C",
               "order_first": "order first", "fig4_trend": "Fig. 4 trend", "fig5_coupling": "Fig. 5 coupling"}
_KEY_OF = {text: key for key, text in CLAIMS.items()}


def thresholds_table(thresholds: Thresholds = DEFAULT) -> pd.DataFrame:
    """name, value, meaning, what would make a claim fail: for the page's prose."""
    return pd.DataFrame([{"name": f.name, "value": getattr(thresholds, f.name), "meaning": f.metadata["meaning"],
                          "fails if": f.metadata["fails"]} for f in fields(thresholds)])


def claim_definitions(t: Thresholds = DEFAULT) -> pd.DataFrame:
    """Each claim: the statistic judged and the rule, with the thresholds filled in (read from
    `t`, so prose and verdicts cannot disagree), and what result would make it fail."""
    order = ORDER_NAMES[t.order_measure]
    tol = f"{t.sheet_dim:g} ± {t.dim_tolerance:g}"
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
        ("phase_B", f"intrinsic dimension (TwoNN) over phase B; |dim − {t.sheet_dim:g}| in A minus in B; "
         f"{order} in C minus in B",
         f"reproduced if B's dimension interval is within {tol}, B is closer to {t.sheet_dim:g} than A and "
         "less ordered than C (both difference intervals above 0); partly if only the within-tolerance check fails",
         "B no closer to 2 than A, or B as ordered as C (difference interval at or below 0), or B's dimension "
         f"outside {tol} without being shown closer to 2 than A; undecided when intrinsic_dim is not measured"),
        ("phase_C", f"final checkpoint: {order} (value), accuracy, intrinsic dimension",
         f"reproduced if order ≥ {t.r2_level:g} and accuracy ≥ {t.final_accuracy:g} (whole intervals); "
         f"partly if the dimension interval lies outside {tol}",
         f"final order interval below {t.r2_level:g} or final accuracy interval below {t.final_accuracy:g}"),
        ("order_first", f"lead = (checkpoint where accuracy first ≥ {t.accuracy_level:g}) − (checkpoint where "
         f"{order} first ≥ {t.r2_level:g}), in checkpoints; never = one past the last",
         "one run: reproduced if the lead interval (earliest/latest crossings allowed by the intervals) is ≥ 1; "
         "several seeds: reproduced if the t interval of the leads is above 0 and every seed leads by ≥ 1",
         "a tie (lead 0) or accuracy first: lead interval ≤ 0"),
        ("fig4_trend", "Spearman rho of increment with the B → C step (permutation p, bootstrap interval)",
         "no claim (the caption states no trend); a direction is named only when the interval excludes 0",
         "—"),
        ("fig5_coupling", f"per run: gap (checkpoints) between x and y reaching error ≤ {t.error_px:g} px "
         f"(error_x/y; without them accuracy_x/y ≥ {t.accuracy_level:g}, which both need one bump, so "
         "'together' is partly built in); the errors carry no interval and are judged on their point values",
         f"together if the gap interval is within ±{t.together_checkpoints}; reproduced if every run is together, "
         "partly if some are",
         f"a gap interval entirely beyond ±{t.together_checkpoints} checkpoints (one axis first)"),
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


def _row(key, verdict, value=math.nan, low=math.nan, high=math.nan, detail="") -> dict:
    assert verdict in VERDICTS, verdict
    return {"claim": CLAIMS[key], "verdict": verdict, "value": float(value), "low": float(low),
            "high": float(high), "detail": detail}


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
    if len(per_seed) == 1:
        return (*t_interval(pooled[0], t.level), per_seed, f"t interval over {len(pooled[0])} checkpoints of one run")
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
        a = _phase_stat(tables, first[0], first[1], t)
        b = _phase_stat(tables, second[0], second[1], t)
        return diffs[0], a[1] - b[2], a[2] - b[1], "difference of the two phases' checkpoint intervals (one run)"
    return math.nan, math.nan, math.nan, "a phase is missing"


# ---------------------------------------------------------------------------------------------
# the claims
# ---------------------------------------------------------------------------------------------

def _phase_order_claim(tables: dict, t: Thresholds) -> dict:
    ok, parts, relapsed = 0, [], 0
    for seed, table in tables.items():
        ph = _phases(table, t)
        steps = table["step"].to_numpy(float)
        first = {p: (float(steps[ph == p][0]) if (ph == p).any() else math.nan) for p in "ABC"}
        rank = ["ABC".index(p) for p in ph]
        back = sum(1 for a, b in zip(rank, rank[1:]) if b < a)
        ordered = all(np.isfinite(list(first.values()))) and first["A"] < first["B"] < first["C"]
        ok += ordered
        relapsed += ordered and back > 0
        parts.append(f"seed {seed}: {''.join(ph)} (first A, B, C at "
                     f"{', '.join(_f(first[p], '.0f') for p in 'ABC')}" + (f"; {back} step(s) back" if back else "") + ")")
    n = len(tables)
    low, high = wilson(ok, n, t.level)
    verdict = (REPRODUCED if ok == n and not relapsed else PARTLY if ok else NOT_REPRODUCED)
    detail = (f"{ok} of {n} seeds go A → B → C: " + "; ".join(parts)
              + ". The labels come from behaviour alone, so this order is nearly built in.")
    return _row("phases", verdict, ok / n, low, high, detail)


def _phase_a_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    mean, low, high, per_seed, how = _phase_stat(tables, "A", lambda tb: _order(tb, t)[0], t)
    if not per_seed:
        has = any(has_columns(tb, *ORDER_MEASURES[t.order_measure]) for tb in tables.values())
        why = "no checkpoint was labelled A" if has else f"the tables have no {order}"
        return _row("phase_A", NOT_REPRODUCED if has else UNDECIDED, detail=why)
    check = _below(low, high, t.unstructured_level)
    verdict = {PASS: REPRODUCED, FAIL: NOT_REPRODUCED, OPEN: UNDECIDED}[check]
    return _row("phase_A", verdict, mean, low, high,
                f"mean {order} over phase A {_iv(mean, low, high)} ({how}); 'no structure' needs it below "
                f"{t.unstructured_level:g}")


def _dim_of(table):
    return table["intrinsic_dim"].to_numpy(float) if has_columns(table, "intrinsic_dim") else np.full(len(table), np.nan)


def _phase_b_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    if not any((_phases(tb, t) == "B").any() for tb in tables.values()):
        return _row("phase_B", NOT_REPRODUCED, detail="no checkpoint was labelled B")
    order_of = lambda tb: _order(tb, t)[0]  # noqa: E731
    off2d = lambda tb: np.abs(_dim_of(tb) - t.sheet_dim)  # noqa: E731
    dim, dlow, dhigh, _, dhow = _phase_stat(tables, "B", _dim_of, t)
    vs_c = _difference(tables, ("C", order_of), ("B", order_of), t)
    vs_a = _difference(tables, ("A", off2d), ("B", off2d), t)
    sheet = _within(dlow, dhigh, t.sheet_dim, t.dim_tolerance)
    closer = _above(vs_a[1], vs_a[2], 0.0, strict=True)
    less_ordered = _above(vs_c[1], vs_c[2], 0.0, strict=True)
    has_dim = any(has_columns(tb, "intrinsic_dim") for tb in tables.values())
    parts = [f"intrinsic dimension over B {_iv(dim, dlow, dhigh)} ({dhow}; 2D sheet: "
             f"{t.sheet_dim:g} ± {t.dim_tolerance:g}) → {sheet}" if has_dim else "intrinsic_dim not measured",
             f"|dim − {t.sheet_dim:g}| in A minus in B {_iv(*vs_a[:3])} ({vs_a[3]}) → {closer}" if has_dim else "",
             f"{order} in C minus in B {_iv(*vs_c[:3])} ({vs_c[3]}) → {less_ordered}"]
    if FAIL in (closer, less_ordered) or (sheet == FAIL and closer != PASS):
        verdict = NOT_REPRODUCED  # as ordered as C, or neither a sheet nor more sheet-like than A
    elif OPEN in (closer, less_ordered, sheet):
        verdict = UNDECIDED
    else:
        verdict = PARTLY if sheet == FAIL else REPRODUCED
    return _row("phase_B", verdict, dim, dlow, dhigh, "; ".join(p for p in parts if p))


def _final_stat(tables: dict, of, t: Thresholds):
    """Last checkpoint's (value, low, high): one seed, its own interval; several, a t interval."""
    vals = [of(tb) for tb in tables.values()]
    if len(vals) >= 2:
        return (*_across([v[0][-1] for v in vals], t), f"t interval across {len(vals)} seeds")
    v, lo, hi = vals[0]
    return float(v[-1]), float(lo[-1]), float(hi[-1]), "the last checkpoint's own interval"


def _phase_c_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    r2 = _final_stat(tables, lambda tb: _order(tb, t), t)
    acc = _final_stat(tables, lambda tb: _accuracy(tb, t), t)
    dims = [_dim_of(tb)[-1] for tb in tables.values()]
    dim = t_interval(dims, t.level) if len(dims) >= 2 else (dims[0], math.nan, math.nan)
    ordered = _above(r2[1], r2[2], t.r2_level)
    right = _above(acc[1], acc[2], t.final_accuracy)
    sheet = _within(dim[1], dim[2], t.sheet_dim, t.dim_tolerance) if np.isfinite(dim[0]) else None
    if FAIL in (ordered, right):
        verdict = NOT_REPRODUCED
    elif OPEN in (ordered, right):
        verdict = UNDECIDED
    else:
        verdict = PARTLY if sheet == FAIL else REPRODUCED
    step = max(float(tb["step"].iloc[-1]) for tb in tables.values())
    detail = (f"last checkpoint (step {step:.0f}): {order} {_iv(*r2[:3])} ({r2[3]}; needs ≥ {t.r2_level:g}) → {ordered}; "
              f"accuracy {_iv(*acc[:3])} ({acc[3]}; needs ≥ {t.final_accuracy:g}) → {right}; "
              + (f"intrinsic dimension {_iv(*dim)} → {sheet}" if sheet else "intrinsic_dim not measured"))
    return _row("phase_C", verdict, *r2[:3], detail)


def _order_first_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    leads, seed_verdicts, parts = [], [], []
    single = None
    for seed, table in tables.items():
        r = _crossing(*_order(table, t), t.r2_level)
        a = _crossing(*_accuracy(table, t), t.accuracy_level)
        lead = a[1] - r[1]
        lo, hi = a[0] - r[2], a[2] - r[0]
        leads.append(lead)
        seed_verdicts.append(PASS if lo >= 1 else FAIL if hi <= 0 else OPEN)
        steps = table["step"].to_numpy(float)
        at = lambda i: "never" if i >= len(steps) else f"{steps[i]:.0f}"  # noqa: E731
        parts.append(f"seed {seed}: {order} ≥ {t.r2_level:g} at step {at(r[1])}, accuracy ≥ {t.accuracy_level:g} "
                     f"at step {at(a[1])}: lead {lead} checkpoint(s) [{lo}, {hi}] → {seed_verdicts[-1]}")
        single = (lead, lo, hi)
    if len(leads) >= 2:
        mean, low, high = _across(leads, t)
        check = _above(low, high, 0.0, strict=True)
        if check == PASS:
            verdict = REPRODUCED if all(x >= 1 for x in leads) else PARTLY
        else:
            verdict = NOT_REPRODUCED if check == FAIL else UNDECIDED
        how = f"mean lead over {len(leads)} seeds {_iv(mean, low, high)} (t interval; must be above 0)"
    else:
        mean, low, high = single
        verdict = {PASS: REPRODUCED, FAIL: NOT_REPRODUCED, OPEN: UNDECIDED}[seed_verdicts[0]]
        how = "lead interval from the earliest and latest crossings the intervals allow; must be ≥ 1 (a tie is not first)"
    return _row("order_first", verdict, mean, low, high, "; ".join(parts) + f". {how}")


def _trend_claim(increments: dict, t: Thresholds) -> dict:
    rows = []
    for inc in sorted(increments):
        group = increments[inc]  # one table, or a list of them (seeds): each run is a point
        for tb in (list(group) if isinstance(group, (list, tuple)) else [group]):
            ph = _phases(tb, t)
            steps = tb["step"].to_numpy(float)
            rows.append((float(inc), float(steps[ph == "C"][0]) if (ph == "C").any() else math.nan))
    reached = [(i, s) for i, s in rows if np.isfinite(s)]
    n_inc = len(increments)
    head = (f"{len(reached)} of {len(rows)} increments reached C" if len(rows) == n_inc else
            f"{len(reached)} of {len(rows)} runs ({n_inc} increments × seeds) reached C")
    if len(reached) < 3:
        return _row("fig4_trend", NO_CLAIM, detail=head + "; fewer than 3, no trend computed")
    x, y = np.array(reached).T
    rho, p = spearman_permutation(x, y)
    _, low, high = bootstrap_spearman(x, y, level=t.level)
    if not np.isfinite(rho):
        return _row("fig4_trend", NO_CLAIM, detail=head + f", all at step {y[0]:.0f}: no trend")
    if _finite(low, high) and (low > 0 or high < 0):
        words = "sparser data reach C later" if rho > 0 else "denser data reach C later"
    else:
        words = "no trend detectable"
    low, high = (min(low, rho), max(high, rho)) if _finite(low, high) else (low, high)
    return _row("fig4_trend", NO_CLAIM, rho, low, high,
                f"{head}, at steps {y.min():.0f}–{y.max():.0f}; Spearman rho of increment with the B → C step "
                f"{rho:+.2f} (bootstrap {t.level:.0%} [{_f(low)}, {_f(high)}], permutation p = {_f(p, '.3f')}, "
                f"n = {len(x)}): {words}")


def _coupling_claim(pairs: dict, t: Thresholds) -> dict:
    gaps, together, parts = [], [], []
    for key in sorted(pairs):
        tb = pairs[key]
        dx, dy, seed = key if len(key) == 3 else (*key, "?")
        if has_columns(tb, "error_x", "error_y"):
            # the per-axis errors come without intervals: judged on their point values
            cx = _crossing(*(tb["error_x"].to_numpy(float),) * 3, t.error_px, upward=False)
            cy = _crossing(*(tb["error_y"].to_numpy(float),) * 3, t.error_px, upward=False)
            what = f"per-axis error ≤ {t.error_px:g} px (point values)"
        else:
            cx = _crossing(*_accuracy(tb, t, "accuracy_x"), t.accuracy_level)
            cy = _crossing(*_accuracy(tb, t, "accuracy_y"), t.accuracy_level)
            what = (f"accuracy_x/y ≥ {t.accuracy_level:g} (no error_x/y: both need exactly one bump, "
                    "so 'together' is partly built in)")
        n = len(tb)
        if cx[1] >= n and cy[1] >= n:
            together.append(OPEN)
            parts.append(f"dx {dx:g}, dy {dy:g} (seed {seed}): neither x nor y reached {what}")
            continue
        gap, lo, hi = cy[1] - cx[1], cy[0] - cx[2], cy[2] - cx[0]
        k = t.together_checkpoints
        verdict = PASS if (lo >= -k and hi <= k) else FAIL if (lo > k or hi < -k) else OPEN
        gaps.append(gap)
        together.append(verdict)
        first = "together" if verdict == PASS else ("x first" if gap > 0 else "y (the sparse axis) first" if gap < 0 else "open")
        parts.append(f"dx {dx:g}, dy {dy:g} (seed {seed}): {what}; gap y − x {gap} checkpoint(s) [{lo}, {hi}] → "
                     f"{verdict} ({first})")
    if not together:
        return _row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs")
    if all(v == PASS for v in together):
        verdict = REPRODUCED
    elif all(v == FAIL for v in together):
        verdict = NOT_REPRODUCED
    elif PASS in together and FAIL in together:
        verdict = PARTLY
    else:
        verdict = UNDECIDED
    mean, low, high = (t_interval(gaps, t.level) if len(gaps) >= 2 else
                       ((gaps[0], math.nan, math.nan) if gaps else (math.nan,) * 3))
    summary = (f"mean gap {_iv(mean, low, high)} checkpoints over {len(gaps)} runs (t interval)" if len(gaps) >= 2 else "")
    return _row("fig5_coupling", verdict, mean, low, high, "; ".join(parts) + (f". {summary}" if summary else ""))


# ---------------------------------------------------------------------------------------------
# the entry points
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Judgement:
    table: pd.DataFrame          # CLAIM_COLUMNS, one row per claim
    seeds_used: tuple
    seeds_left_out: tuple        # tuned seeds not used
    note: str                    # which seeds, in a sentence

    def records(self) -> list[dict]:
        """Rows as dicts with NaN -> None (strict JSON)."""
        return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()}
                for r in self.table.to_dict("records")]


def pick_seeds(seeds, tuned_seeds=TUNED_SEEDS) -> tuple[tuple, tuple, str]:
    """(used, left out, note): the untuned seeds when there are any, else all (said so)."""
    seeds = sorted(seeds)
    untuned = [s for s in seeds if s not in set(tuned_seeds)]
    if untuned:
        left = [s for s in seeds if s in set(tuned_seeds)]
        note = (f"verdicts on untuned seeds {', '.join(map(str, untuned))}"
                + (f" (tuned seeds {', '.join(map(str, left))} left out)" if left else ""))
        return tuple(untuned), tuple(left), note
    note = (f"no untuned seed available: verdicts on tuned seeds {', '.join(map(str, seeds))} "
            "(the profile was tuned on them; read them as such)") if seeds else "no runs"
    return tuple(seeds), (), note


def judge(tables: dict, tuned_seeds=TUNED_SEEDS, increments: dict | None = None, pairs: dict | None = None,
          thresholds: Thresholds = DEFAULT) -> Judgement:
    """Every claim, judged. `tables`: {seed: metrics table} of the main runs; `increments`:
    {increment: table or list of tables (seeds)} (Fig. 4); `pairs`: {(dx, dy, seed): table} (Fig. 5; filtered to the same
    untuned seeds when any pair run has one)."""
    t = thresholds
    used, left, note = pick_seeds(tables, tuned_seeds)
    main = {s: tables[s].reset_index(drop=True) for s in used}
    rows = []
    if main:
        rows += [_phase_order_claim(main, t), _phase_a_claim(main, t), _phase_b_claim(main, t),
                 _phase_c_claim(main, t), _order_first_claim(main, t)]
    else:
        rows += [_row(k, NO_CLAIM, detail="no main runs") for k in ("phases", "phase_A", "phase_B", "phase_C", "order_first")]
    rows.append(_trend_claim(increments, t) if increments else _row("fig4_trend", NO_CLAIM, detail="no increment runs"))
    if pairs:
        pair_seeds = {k[2] for k in pairs if len(k) == 3}
        keep, _, _ = pick_seeds(pair_seeds, tuned_seeds)
        pairs = {k: v.reset_index(drop=True) for k, v in pairs.items() if len(k) != 3 or k[2] in keep}
        rows.append(_coupling_claim(pairs, t))
    else:
        rows.append(_row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs"))
    return Judgement(pd.DataFrame(rows, columns=CLAIM_COLUMNS), used, left, note)


def claim_table(tables: dict, **kwargs) -> pd.DataFrame:
    """`judge(...).table`."""
    return judge(tables, **kwargs).table


def sensitivity(tables: dict, tuned_seeds=TUNED_SEEDS, increments: dict | None = None, pairs: dict | None = None,
                thresholds: Thresholds = DEFAULT, accuracy_levels=SENSITIVITY_ACCURACY,
                r2_levels=SENSITIVITY_R2) -> pd.DataFrame:
    """Every verdict recomputed on the grid accuracy_levels × r2_levels (other thresholds as
    given): long table claim, accuracy_level, r2_level, verdict, default (the setting is `thresholds`'s)."""
    rows = []
    for acc in accuracy_levels:
        for r2 in r2_levels:
            t = replace(thresholds, accuracy_level=float(acc), r2_level=float(r2))
            table = judge(tables, tuned_seeds, increments, pairs, t).table
            for claim, verdict in zip(table["claim"], table["verdict"]):
                rows.append({"claim": claim, "accuracy_level": float(acc), "r2_level": float(r2), "verdict": verdict,
                             "default": acc == thresholds.accuracy_level and r2 == thresholds.r2_level})
    return pd.DataFrame(rows)


def sensitivity_matrix(sens: pd.DataFrame) -> pd.DataFrame:
    """The long `sensitivity` table as claim × 'acc a / R² r' (for a page)."""
    s = sens.assign(setting=[f"acc {a:g} / R² {r:g}" for a, r in zip(sens["accuracy_level"], sens["r2_level"])])
    return s.pivot(index="claim", columns="setting", values="verdict").reindex(
        index=list(dict.fromkeys(sens["claim"])), columns=list(dict.fromkeys(s["setting"])))


def _where(settings: set, acc_all: list, r2_all: list) -> str:
    """A short description of a set of (accuracy, r2) grid points."""
    by_r2 = {r for r in r2_all if all((a, r) in settings for a in acc_all)}
    by_acc = {a for a in acc_all if all((a, r) in settings for r in r2_all)}
    if by_r2 and settings == {(a, r) for a in acc_all for r in by_r2}:
        return "at R² level " + ", ".join(f"{r:g}" for r in sorted(by_r2))
    if by_acc and settings == {(a, r) for a in by_acc for r in r2_all}:
        return "at accuracy level " + ", ".join(f"{a:g}" for a in sorted(by_acc))
    pts = sorted(settings)
    text = ", ".join(f"(acc {a:g}, R² {r:g})" for a, r in pts[:4])
    return "at " + text + (f" and {len(pts) - 4} more settings" if len(pts) > 4 else "")


def sensitivity_summary(sens: pd.DataFrame) -> str:
    """One sentence: which verdicts hold over the whole grid, and where the others change."""
    if sens.empty:
        return "No verdicts to summarise."
    acc_all = sorted(sens["accuracy_level"].unique())
    r2_all = sorted(sens["r2_level"].unique())
    stable, changes = [], []
    for claim in dict.fromkeys(sens["claim"]):
        s = sens[sens["claim"] == claim]
        d = s[s["default"]]
        default = d["verdict"].iloc[0] if len(d) else s["verdict"].mode().iloc[0]
        others = s[s["verdict"] != default]
        short = CLAIM_SHORT.get(_KEY_OF.get(claim), claim)
        if others.empty:
            if default != NO_CLAIM:  # nothing to hold
                stable.append(f"“{short}” ({default})")
            continue
        bits = []
        for v, g in others.groupby("verdict", sort=False):
            bits.append(f"{v} {_where(set(zip(g['accuracy_level'], g['r2_level'])), acc_all, r2_all)}")
        changes.append(f"“{short}” is {default} at the default but " + "; ".join(bits))
    rng = (f"accuracy level {acc_all[0]:g}–{acc_all[-1]:g} × R² level {r2_all[0]:g}–{r2_all[-1]:g}")
    out = []
    if stable:
        out.append(f"{', '.join(stable)} hold over the whole range ({rng})")
    if changes:
        out.append("; ".join(changes))
    if not out:
        return f"No claim is judged here (over {rng})."
    return "; ".join(out) + "."


# ---------------------------------------------------------------------------------------------
# public pieces for pages and figures (the same rules as the claims above)
# ---------------------------------------------------------------------------------------------

def trend_claim(increments: dict, thresholds: Thresholds = DEFAULT) -> dict:
    """The Fig. 4 row alone ({increment: table or [tables]}): Spearman rho of increment with the
    B → C step, permutation p, bootstrap interval, a direction word only when it excludes 0."""
    if not increments:
        return _row("fig4_trend", NO_CLAIM, detail="no increment runs")
    return _trend_claim(increments, thresholds)


def phases_under(table: pd.DataFrame, thresholds: Thresholds = DEFAULT) -> np.ndarray:
    """Each checkpoint's phase label under `thresholds` (the rule of metrics.phase_label)."""
    return _phases(table.reset_index(drop=True), thresholds)


def phase_stat(tables: dict, phase: str, column: str, thresholds: Thresholds = DEFAULT):
    """Mean of `column` over `phase`'s checkpoints -> (mean, low, high, how): across seeds a t
    interval of the per-seed means; one seed, a t interval over its checkpoints; NaN if absent."""
    def of(tb):
        return tb[column].to_numpy(float) if has_columns(tb, column) else np.full(len(tb), np.nan)
    mean, low, high, _, how = _phase_stat({k: tb.reset_index(drop=True) for k, tb in tables.items()},
                                          phase, of, thresholds)
    return mean, low, high, how


def accuracy_interval(table: pd.DataFrame, thresholds: Thresholds = DEFAULT, column: str = "accuracy"):
    """(value, low, high) arrays of an accuracy column: its Wilson columns, else Wilson from n_labels."""
    return _accuracy(table.reset_index(drop=True), thresholds, column)


def order_interval(table: pd.DataFrame, thresholds: Thresholds = DEFAULT):
    """(value, low, high) arrays of the order measure `thresholds.order_measure` (mean of x and y)."""
    return _order(table.reset_index(drop=True), thresholds)


def crossing(value, low, high, level, upward=True) -> tuple[int, int, int]:
    """(earliest, point, latest) checkpoint index of the first crossing of `level` (len = never)."""
    return _crossing(np.asarray(value, float), np.asarray(low, float), np.asarray(high, float), level, upward)


# presentation: one colour per verdict word
VERDICT_COLOURS = {REPRODUCED: "#d9f2d9", PARTLY: "#fff0c2", NOT_REPRODUCED: "#f8d0d0", UNDECIDED: "#dde6f5",
                   NO_CLAIM: "#e8e8e8"}


def _verdict_css(v) -> str:
    return f"background-color: {VERDICT_COLOURS.get(v, 'white')}; font-weight: 600" if v in VERDICT_COLOURS else ""


def style_claims(table: pd.DataFrame):
    """A claims table (CLAIM_COLUMNS) for a page: verdict cells coloured, numbers to 3 places."""
    return (table.style.hide(axis="index").map(_verdict_css, subset=["verdict"])
            .format({c: (lambda x: "" if not np.isfinite(x) else f"{x:.3g}") for c in ("value", "low", "high")})
            .set_properties(subset=["detail"], **{"font-size": "0.85em"})
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))


def style_sensitivity(matrix: pd.DataFrame):
    """`sensitivity_matrix` for a page: every cell coloured by its verdict."""
    short = {CLAIMS[k]: v for k, v in CLAIM_SHORT.items()}
    return (matrix.rename(index=lambda c: short.get(c, c)).style.map(_verdict_css)
            .set_properties(**{"font-size": "0.8em", "text-align": "center"}))
