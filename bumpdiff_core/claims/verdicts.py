"""The paper's claims judged on metrics tables: one rule per claim, thresholds declared once, an
interval behind every number, and `undecided` wherever an interval straddles its threshold.

Input: per-checkpoint metrics tables (`results.schema.METRIC_COLUMNS`, one row per checkpoint) keyed by
seed. Optional columns are used when present and named in the detail when absent:
`n_labels`, `accuracy_low/high` (Wilson), `r2_x_raw_low/high`, `r2_y_raw_low/high` (bootstrap),
`intrinsic_dim` (TwoNN), `knn_r2_x/y`, `error_x/y` (px) with `error_x/y_low/high` (t intervals).
Nothing here reads files or trains. The two claims with a positive control (Fig. 5 coupling, the
`lines` test) live in `claims_controls`.

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
table has no Wilson columns). `error_x/y` of runs evaluated before their intervals existed are
judged on their point values (said in the detail).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bumpdiff_core.claims.thresholds import (  # noqa: F401  (re-exported: pages and tests read them from here)
    CLAIMS,
    CLAIM_COLUMNS,
    CLAIM_SHORT,
    DEFAULT,
    FAIL,
    NOT_REPRODUCED,
    NO_CLAIM,
    OPEN,
    ORDER_MEASURES,
    ORDER_NAMES,
    PARTLY,
    PASS,
    REPRODUCED,
    SENSITIVITY_ACCURACY,
    SENSITIVITY_R2,
    TUNED_SEEDS,
    Thresholds,
    UNDECIDED,
    dim_band_columns,
    run_ids,
    VERDICTS,
    _above,
    _accuracy,
    _across,
    _below,
    _crossing,
    _difference,
    _f,
    _finite,
    _iv,
    _order,
    _phase_stat,
    _phases,
    _row,
    _within,
    claim_definitions,
    has_columns,
    thresholds_table,
)
from bumpdiff_core.claims.controls import compose_claim, coupling_claim, coupling_reading  # noqa: F401  (pages read it here)
from bumpdiff_core.sweeps.definitions import pick_seeds  # noqa: F401  (pages read it here)
from bumpdiff_core.measure.intervals import bootstrap_spearman, spearman_permutation, t_interval, wilson

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
    return _row("phases", verdict, ok / n, low, high, detail, run_ids(*tables.values()))


def _phase_a_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    mean, low, high, per_seed, how = _phase_stat(tables, "A", lambda tb: _order(tb, t)[0], t)
    if not per_seed:
        has = any(has_columns(tb, *ORDER_MEASURES[t.order_measure]) for tb in tables.values())
        why = "no checkpoint was labelled A" if has else f"the tables have no {order}"
        return _row("phase_A", NOT_REPRODUCED if has else UNDECIDED, detail=why, runs=run_ids(*tables.values()))
    check = _below(low, high, t.unstructured_level)
    verdict = {PASS: REPRODUCED, FAIL: NOT_REPRODUCED, OPEN: UNDECIDED}[check]
    return _row("phase_A", verdict, mean, low, high,
                f"mean {order} over phase A {_iv(mean, low, high)} ({how}); 'no structure' needs it below "
                f"{t.unstructured_level:g}", run_ids(*tables.values()))


def _dim_of(table):
    return table["dim_mle"].to_numpy(float) if has_columns(table, "dim_mle") else np.full(len(table), np.nan)


def _band_of(table, t: Thresholds):
    """(low, high) arrays of the sheet null's `t.dim_band` band per checkpoint (NaN when absent)."""
    lo, hi = dim_band_columns(t.dim_band)
    if not has_columns(table, lo, hi):
        nan = np.full(len(table), np.nan)
        return nan, nan
    return table[lo].to_numpy(float), table[hi].to_numpy(float)


def _excess_of(table):
    """MLE minus the null's median: how far from a sheet with this run's noise and curvature."""
    if not has_columns(table, "dim_mle", "dim_null_median"):
        return np.full(len(table), np.nan)
    return table["dim_mle"].to_numpy(float) - table["dim_null_median"].to_numpy(float)


def _sheet_readings(tables: dict, t: Thresholds, phase: str | None):
    """Per seed: (seed, mle, band low, band high, reading) over `phase`'s checkpoints (means), or
    the last checkpoint when `phase` is None; reading '2D' / 'not 2D' / 'below 2D' / None."""
    out = []
    for seed, tb in tables.items():
        lo, hi = _band_of(tb, t)
        d = _dim_of(tb)
        pick = (np.arange(len(tb)) == len(tb) - 1) if phase is None else (_phases(tb, t) == phase)
        ok = pick & np.isfinite(d) & np.isfinite(lo) & np.isfinite(hi)
        if not ok.any():
            out.append((seed, math.nan, math.nan, math.nan, None))
            continue
        m, l, h = float(d[ok].mean()), float(lo[ok].mean()), float(hi[ok].mean())
        out.append((seed, m, l, h, "not 2D" if m > h else "below 2D" if m < l else "2D"))
    return out


def _sheet_check(readings, t: Thresholds):
    """pass when every seed reads 2D, fail when every seed reads not 2D, else undecided; and the text."""
    got = [r for r in readings if r[4]]
    if not got:
        return OPEN, "dim_mle or its null band not measured (runs evaluated before the sheet null existed)"
    parts = [f"seed {s}: MLE {m:.2f} vs null {t.dim_band:.0%} band [{l:.2f}, {h:.2f}] → {r}" for s, m, l, h, r in got]
    words = [r[4] for r in got]
    check = PASS if all(w == "2D" for w in words) else FAIL if all(w == "not 2D" for w in words) else OPEN
    if len(got) < t.min_seeds:
        check = OPEN
        parts.append(f"too few seeds ({len(got)} < {t.min_seeds})")
    return check, "; ".join(parts)


def _null_note(tables: dict) -> str:
    """What the null band was made of (the last checkpoint of the first table that has it)."""
    for tb in tables.values():
        if has_columns(tb, "dim_noise", "dim_sheet_scale", "dim_null_low"):
            r = tb.iloc[-1]
            return (f" (null: smooth 2D sheets through the same {int(r.get('n_labels', 0) or 0) or 'evaluation'} labels "
                    f"with the measured noise σ/δ {float(r['dim_noise']):.2f} and a length scale ×/÷ 1.5 around the "
                    f"measured {float(r['dim_sheet_scale']):.2f} of the label span, at the last checkpoint of "
                    "the first seed; MLE = Levina–Bickel, k = 5..10)")
    return ""


def _twonn_note(tables: dict) -> str:
    bits = []
    for seed, tb in tables.items():
        if has_columns(tb, "intrinsic_dim", "dim_twonn_null_low", "dim_twonn_null_high"):
            r = tb.iloc[-1]
            bits.append(f"seed {seed} TwoNN {float(r['intrinsic_dim']):.2f} vs its null [{float(r['dim_twonn_null_low']):.2f}, "
                        f"{float(r['dim_twonn_null_high']):.2f}]")
    return ("; beside it (not judged), " + ", ".join(bits)) if bits else ""


def _phase_b_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    runs = run_ids(*tables.values())
    if not any((_phases(tb, t) == "B").any() for tb in tables.values()):
        return _row("phase_B", NOT_REPRODUCED, detail="no checkpoint was labelled B", runs=runs)
    order_of = lambda tb: _order(tb, t)[0]  # noqa: E731
    dim, dlow, dhigh, _, dhow = _phase_stat(tables, "B", _dim_of, t)
    vs_c = _difference(tables, ("C", order_of), ("B", order_of), t)
    vs_a = _difference(tables, ("A", _excess_of), ("B", _excess_of), t)
    sheet, sheet_text = _sheet_check(_sheet_readings(tables, t, "B"), t)
    closer = _above(vs_a[1], vs_a[2], 0.0, strict=True)
    less_ordered = _above(vs_c[1], vs_c[2], 0.0, strict=True)
    has_dim = any(has_columns(tb, "dim_mle", "dim_null_median") for tb in tables.values())
    parts = [f"MLE dimension over B {_iv(dim, dlow, dhigh)} ({dhow}); {sheet_text} → {sheet}" + _null_note(tables),
             f"(MLE − null median) in A minus in B {_iv(*vs_a[:3])} ({vs_a[3]}) → {closer}" if has_dim else "",
             f"{order} in C minus in B {_iv(*vs_c[:3])} ({vs_c[3]}) → {less_ordered}"]
    if FAIL in (closer, less_ordered) or (sheet == FAIL and closer != PASS):
        verdict = NOT_REPRODUCED  # as ordered as C, or neither a sheet nor more sheet-like than A
    elif OPEN in (closer, less_ordered, sheet):
        verdict = UNDECIDED
    else:
        verdict = PARTLY if sheet == FAIL else REPRODUCED
    return _row("phase_B", verdict, dim, dlow, dhigh, "; ".join(p for p in parts if p) + _twonn_note(tables), runs)


def _final_stat(tables: dict, of, t: Thresholds, proportion: bool = False):
    """Last checkpoint's (value, low, high): one seed, its own interval; several, a t interval
    across seeds (for a `proportion`, on the logits of (k + ½)/(n + 1), back-transformed, so it
    stays inside [0, 1])."""
    vals = [of(tb) for tb in tables.values()]
    if len(vals) >= 2 and proportion:
        finals = np.array([v[0][-1] for v in vals], float)
        ns = np.array([float(tb["n_labels"].iloc[-1]) if has_columns(tb, "n_labels") else 100.0
                       for tb in tables.values()])
        p = (finals * ns + 0.5) / (ns + 1)
        _, lo, hi = t_interval(np.log(p / (1 - p)), t.level)
        inv = lambda z: float(1 / (1 + np.exp(-z))) if np.isfinite(z) else math.nan  # noqa: E731
        return float(finals.mean()), inv(lo), inv(hi), f"t interval of the logits across {len(vals)} seeds"
    if len(vals) >= 2:
        return (*_across([v[0][-1] for v in vals], t), f"t interval across {len(vals)} seeds")
    v, lo, hi = vals[0]
    return float(v[-1]), float(lo[-1]), float(hi[-1]), "the last checkpoint's own interval"


def _phase_c_claim(tables: dict, t: Thresholds) -> dict:
    order = ORDER_NAMES[t.order_measure]
    r2 = _final_stat(tables, lambda tb: _order(tb, t), t)
    acc = _final_stat(tables, lambda tb: _accuracy(tb, t), t, proportion=True)
    ordered = _above(r2[1], r2[2], t.r2_level)
    right = _above(acc[1], acc[2], t.final_accuracy)
    readings = _sheet_readings(tables, t, None)
    measured = any(r[4] for r in readings)
    sheet, sheet_text = _sheet_check(readings, t) if measured else (None, "dim_mle or its null band not measured")
    if FAIL in (ordered, right):
        verdict = NOT_REPRODUCED
    elif OPEN in (ordered, right, sheet):  # a measured dimension that cannot be judged (too few seeds, mixed)
        verdict = UNDECIDED
    else:
        verdict = PARTLY if sheet == FAIL else REPRODUCED
    step = max(float(tb["step"].iloc[-1]) for tb in tables.values())
    detail = (f"last checkpoint (step {step:.0f}): {order} {_iv(*r2[:3])} ({r2[3]}; needs ≥ {t.r2_level:g}) → {ordered}; "
              f"accuracy {_iv(*acc[:3])} ({acc[3]}; needs ≥ {t.final_accuracy:g}) → {right}; "
              f"dimension: {sheet_text}" + (f" → {sheet}" if sheet else "") + _null_note(tables) + _twonn_note(tables))
    return _row("phase_C", verdict, *r2[:3], detail, run_ids(*tables.values()))


REPRESENTATIONS = {"trajectory": None, "first step": ("r2_x_first", "r2_y_first")}
BEHAVIOUR = ("r2_x_behaviour", "r2_y_behaviour")


def _r2_pair(table: pd.DataFrame, columns) -> tuple:
    """(value, low, high) arrays of the mean of two R² columns and their bootstrap bounds."""
    cx, cy = columns
    n = len(table)
    nan = np.full(n, np.nan)
    if not has_columns(table, cx, cy):
        return nan, nan, nan
    value = table[[cx, cy]].to_numpy(float).mean(axis=1)
    lows, highs = [f"{cx}_low", f"{cy}_low"], [f"{cx}_high", f"{cy}_high"]
    if has_columns(table, *lows, *highs):
        return value, table[lows].to_numpy(float).mean(axis=1), table[highs].to_numpy(float).mean(axis=1)
    return value, nan, nan


def _lead(table, rep, t: Thresholds):
    """(lead, low, high, text) of one seed: behavioural crossing minus the representation's."""
    r = _crossing(*rep, t.r2_level)
    b = _crossing(*_r2_pair(table, BEHAVIOUR), t.r2_level)
    lead, lo, hi = b[1] - r[1], b[0] - r[2], b[2] - r[0]
    steps = table["step"].to_numpy(float)
    at = lambda i: "never" if i >= len(steps) else f"{steps[i]:.0f}"  # noqa: E731
    reading = PASS if lo >= 1 else FAIL if hi <= 0 else OPEN
    return lead, lo, hi, reading, f"representation at step {at(r[1])}, drawn positions at {at(b[1])}: lead {lead} [{lo}, {hi}] → {reading}"


def _order_first_claim(tables: dict, t: Thresholds) -> dict:
    """The representation orders (R² ≥ r2_level) strictly before the drawn positions do
    (behavioural R² ≥ r2_level), per untuned seed, for the trajectory-mean and first-step taps."""
    order = ORDER_NAMES[t.order_measure]
    runs = run_ids(*tables.values())
    if not any(has_columns(tb, *BEHAVIOUR) for tb in tables.values()):
        return _row("order_first", UNDECIDED, detail="no behavioural R² (r2_x/y_behaviour): runs evaluated before it "
                    "existed; re-evaluate them (`bumpdiff evaluate RUN_DIR`)", runs=runs)
    per_rep, parts, traj_leads = {}, [], []
    for name, cols in REPRESENTATIONS.items():
        readings = []
        for seed, tb in tables.items():
            rep = _order(tb, t) if cols is None else _r2_pair(tb, cols)
            if not np.isfinite(rep[0]).any():
                parts.append(f"{name}, seed {seed}: not measured")
                continue
            lead, lo, hi, reading, text = _lead(tb, rep, t)
            readings.append(reading)
            if cols is None:
                traj_leads.append(lead)
            parts.append(f"{name} ({order if cols is None else 'raw ridge R²'}), seed {seed}: {text}")
        if not readings:
            per_rep[name] = None
        elif all(r == PASS for r in readings):
            per_rep[name] = PASS
        elif all(r == FAIL for r in readings):
            per_rep[name] = FAIL
        elif PASS in readings and FAIL in readings:
            per_rep[name] = "mixed"
        else:
            per_rep[name] = OPEN
    got = [v for v in per_rep.values() if v is not None]
    n = max(len([1 for tb in tables.values() if has_columns(tb, *BEHAVIOUR)]), 0)
    if n < t.min_seeds:
        verdict, why = UNDECIDED, f"too few seeds ({n} < {t.min_seeds})"
    elif len(got) < len(per_rep):
        verdict, why = UNDECIDED, "one representation not measured"
    elif all(v == PASS for v in got):
        verdict, why = REPRODUCED, "both representations order strictly before the drawn positions, on every seed"
    elif all(v == FAIL for v in got):
        verdict, why = NOT_REPRODUCED, "neither representation orders before the drawn positions on any seed"
    elif OPEN in got:
        verdict, why = UNDECIDED, "a lead interval straddles 0 or 1"
    else:
        verdict, why = PARTLY, ", ".join(f"{k}: {v}" for k, v in per_rep.items())
    mean, low, high = _across(traj_leads, t) if len(traj_leads) >= 2 else (
        (traj_leads[0], math.nan, math.nan) if traj_leads else (math.nan, math.nan, math.nan))
    how = (f"mean trajectory lead {_iv(mean, low, high)} checkpoints"
           + (f" (t interval across {len(traj_leads)} seeds)" if len(traj_leads) >= 2 else " (one seed)")
           if traj_leads else "")
    return _row("order_first", verdict, mean, low, high, "; ".join(parts) + f". {how}. {why}", runs)


def _trend_claim(increments: dict, t: Thresholds) -> dict:
    rows = []
    runs = run_ids(*[tb for g in increments.values() for tb in (list(g) if isinstance(g, (list, tuple)) else [g])])
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
        return _row("fig4_trend", NO_CLAIM, detail=head + "; fewer than 3, no trend computed", runs=runs)
    x, y = np.array(reached).T
    rho, p = spearman_permutation(x, y)
    rho = float(np.round(rho, 12))  # a perfect rank order is 1, not 0.9999999999999998 (the bootstrap's reps are exact)
    _, low, high = bootstrap_spearman(x, y, level=t.level)
    if not np.isfinite(rho):
        return _row("fig4_trend", NO_CLAIM, detail=head + f", all at step {y[0]:.0f}: no trend", runs=runs)
    if _finite(low, high) and (low > 0 or high < 0):
        words = "sparser data reach C later" if rho > 0 else "denser data reach C later"
    else:
        words = "no trend detectable"
    how = "percentile bootstrap (declared; no switch after looking)"
    return _row("fig4_trend", NO_CLAIM, rho, low, high,
                f"{head}, at steps {y.min():.0f}–{y.max():.0f}; Spearman rho of increment with the B → C step "
                f"{rho:+.2f} ({how} {t.level:.0%} [{_f(low)}, {_f(high)}], permutation p = {_f(p, '.3f')}, "
                f"n = {len(x)}): {words}", runs)


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


def judge(tables: dict, tuned_seeds=TUNED_SEEDS, increments: dict | None = None, pairs: dict | None = None,
          thresholds: Thresholds = DEFAULT, control_pairs: dict | None = None, efficiency=None) -> Judgement:
    """Every claim, judged. `tables`: {seed: metrics table} of the main runs; `increments`:
    {increment: table or list of tables (seeds)} (Fig. 4); `pairs`: {(dx, dy, seed): table} (Fig. 5; filtered to the same
    untuned seeds when any pair run has one); `control_pairs`: the same for the separable model (Fig. 5's
    positive control); `efficiency`: rows of `report.efficiency_row` (list, DataFrame or {label: row}) for the
    `lines` claim."""
    t = thresholds
    used, left, note = pick_seeds(tables, tuned_seeds)
    untuned = [s for s in used if s not in set(tuned_seeds)]
    main = {s: tables[s].reset_index(drop=True) for s in untuned}
    rows = []
    if main:
        rows += [_phase_order_claim(main, t), _phase_a_claim(main, t), _phase_b_claim(main, t),
                 _phase_c_claim(main, t), _order_first_claim(main, t)]
    elif tables:  # no verdict reads a seed looked at while tuning
        rows += [_row(k, UNDECIDED, detail=f"only tuned seeds ({', '.join(map(str, sorted(tables)))}); no verdict "
                      "reads a seed looked at while tuning") for k in ("phases", "phase_A", "phase_B", "phase_C", "order_first")]
    else:
        rows += [_row(k, NO_CLAIM, detail="no main runs") for k in ("phases", "phase_A", "phase_B", "phase_C", "order_first")]
    rows.append(_trend_claim(increments, t) if increments else _row("fig4_trend", NO_CLAIM, detail="no increment runs"))
    if pairs:
        untuned = lambda k: len(k) != 3 or k[2] not in set(tuned_seeds)  # noqa: E731
        pairs = {k: v.reset_index(drop=True) for k, v in pairs.items() if untuned(k)}
        controls = {k: v.reset_index(drop=True) for k, v in (control_pairs or {}).items() if untuned(k)}
        rows.append(coupling_claim(pairs, t, controls))
    else:
        rows.append(_row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs"))
    rows.append(compose_claim(efficiency, t, tuned_seeds))
    return Judgement(pd.DataFrame(rows, columns=CLAIM_COLUMNS), used, left, note)


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
    """A claims table (CLAIM_COLUMNS) for a page: verdict cells coloured, numbers to 3 places (the
    run ids and threshold flips are left to `bumpdiff report --json` and their own page lines)."""
    table = table.drop(columns=[c for c in ("runs", "flips") if c in table.columns])
    return (table.style.hide(axis="index").map(_verdict_css, subset=["verdict"])
            .format({c: (lambda x: "" if not np.isfinite(x) else f"{x:.3g}") for c in ("value", "low", "high")})
            .set_properties(subset=["detail"], **{"font-size": "0.85em"})
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))
