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
from bumpdiff_core.measure.intervals import bootstrap_spearman, bootstrap_spearman_bca, spearman_permutation, t_interval, wilson

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
    how = "bootstrap"
    if _finite(low, high) and not low <= rho <= high:  # the percentile interval excludes rho: BCa instead
        _, low, high = bootstrap_spearman_bca(x, y, level=t.level)
        how = "BCa bootstrap"
    return _row("fig4_trend", NO_CLAIM, rho, low, high,
                f"{head}, at steps {y.min():.0f}–{y.max():.0f}; Spearman rho of increment with the B → C step "
                f"{rho:+.2f} ({how} {t.level:.0%} [{_f(low)}, {_f(high)}], permutation p = {_f(p, '.3f')}, "
                f"n = {len(x)}): {words}")


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
        controls = {k: v.reset_index(drop=True) for k, v in (control_pairs or {}).items()}
        rows.append(coupling_claim(pairs, t, controls))
    else:
        rows.append(_row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs"))
    rows.append(compose_claim(efficiency, t))
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
    """A claims table (CLAIM_COLUMNS) for a page: verdict cells coloured, numbers to 3 places."""
    return (table.style.hide(axis="index").map(_verdict_css, subset=["verdict"])
            .format({c: (lambda x: "" if not np.isfinite(x) else f"{x:.3g}") for c in ("value", "low", "high")})
            .set_properties(subset=["detail"], **{"font-size": "0.85em"})
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))
