"""The two claims about whether x and y are learned separately, each judged with a positive control
(DESIGN.md: a claim that a mechanism is absent needs a model in which it is present, run through
the same statistic). `verdicts.judge` calls them; pages read `coupling_reading` for one run.

- Fig. 5 coupling: per imbalanced run, the gap (checkpoints) between x and y reaching per-axis
  error ≤ `error_px`, with crossing intervals from the errors' t intervals (`error_x_low/high`).
  The separable model (x only through column features, y only through row features: it can only
  factorize) on the same (dx, dy) is the control: if it reads 'together' as well, the statistic
  cannot tell coupled from factorized learning and the claim is `undecided`.
- Compositional generalisation on `lines` (every x and every y value seen, few combinations):
  the global model's unseen accuracy must lie below `compose_level` while the separable model's
  lies above it. Input: rows of `report.efficiency_row` (a run's last checkpoint).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bumpdiff_core.claims.thresholds import (FAIL, NO_CLAIM, NOT_REPRODUCED, OPEN, PARTLY, PASS, REPRODUCED, UNDECIDED, Thresholds,
                           _above, _accuracy, _below, _crossing, _iv, _row, has_columns)
from bumpdiff_core.measure.intervals import t_interval

CONTROL_TOGETHER = "the separable control reads together too: the statistic cannot tell coupled from factorized"
NO_CONTROL = "no positive control was run (no separable model on an imbalanced pair), so 'together' cannot be told from factorized learning"


def coupling_reading(table: pd.DataFrame, t: Thresholds) -> dict:
    """One run's Fig. 5 reading: {"reading": pass (together) / fail (one axis first) / undecided,
    "gap", "low", "high" (checkpoints, y − x; NaN when neither axis crossed), "what", "first"}."""
    tb = table.reset_index(drop=True)
    if has_columns(tb, "error_x", "error_y"):
        def err(axis):
            v = tb[f"error_{axis}"].to_numpy(float)
            if has_columns(tb, f"error_{axis}_low", f"error_{axis}_high"):
                return v, tb[f"error_{axis}_low"].to_numpy(float), tb[f"error_{axis}_high"].to_numpy(float)
            return v, v, v
        sampled = has_columns(tb, "error_x_low", "error_x_high", "error_y_low", "error_y_high")
        cx = _crossing(*err("x"), t.error_px, upward=False)
        cy = _crossing(*err("y"), t.error_px, upward=False)
        what = f"per-axis error ≤ {t.error_px:g} px" + (" (t intervals of the mean error)" if sampled else
                                                          " (point values: no error intervals in this table)")
    else:
        cx = _crossing(*_accuracy(tb, t, "accuracy_x"), t.accuracy_level)
        cy = _crossing(*_accuracy(tb, t, "accuracy_y"), t.accuracy_level)
        what = (f"accuracy_x/y ≥ {t.accuracy_level:g} (no error_x/y: both need exactly one bump, "
                "so 'together' is partly built in)")
    n = len(tb)
    if cx[1] >= n and cy[1] >= n:
        return {"reading": OPEN, "gap": math.nan, "low": math.nan, "high": math.nan, "what": what,
                "first": "neither axis reached it"}
    gap, lo, hi = cy[1] - cx[1], cy[0] - cx[2], cy[2] - cx[0]
    k = t.together_checkpoints
    reading = PASS if (lo >= -k and hi <= k) else FAIL if (lo > k or hi < -k) else OPEN
    first = ("together" if reading == PASS else "open" if reading == OPEN else
             "x first" if gap > 0 else "y (the sparse axis) first")
    return {"reading": reading, "gap": float(gap), "low": float(lo), "high": float(hi), "what": what, "first": first}


def _reading_text(r: dict) -> str:
    if not np.isfinite(r["gap"]):
        return f"{r['what']}: neither x nor y reached it → {r['reading']}"
    return (f"{r['what']}; gap y − x {r['gap']:.0f} checkpoint(s) [{r['low']:.0f}, {r['high']:.0f}] → "
            f"{r['reading']} ({r['first']})")


def _key(key):
    return key if len(key) == 3 else (*key, "?")


def coupling_claim(pairs: dict, t: Thresholds, controls: dict | None = None) -> dict:
    """The Fig. 5 row: `pairs` {(dx, dy, seed): global model's table}, `controls` the same for the
    separable model. Global runs all 'together' → reproduced only if a control reads 'apart'."""
    readings, parts = [], []
    for key in sorted(pairs, key=str):
        dx, dy, seed = _key(key)
        r = coupling_reading(pairs[key], t)
        readings.append(r)
        parts.append(f"global dx {dx:g}, dy {dy:g} (seed {seed}): {_reading_text(r)}")
    if not readings:
        return _row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs")
    together = [r["reading"] for r in readings]
    if all(v == PASS for v in together):
        verdict = REPRODUCED
    elif all(v == FAIL for v in together):
        verdict = NOT_REPRODUCED
    elif PASS in together and FAIL in together:
        verdict = PARTLY
    else:
        verdict = UNDECIDED
    pair_xy = {(_key(k)[0], _key(k)[1]) for k in pairs}
    ctrl = {k: coupling_reading(tb, t) for k, tb in (controls or {}).items() if (_key(k)[0], _key(k)[1]) in pair_xy}
    for key in sorted(ctrl, key=str):
        dx, dy, seed = _key(key)
        parts.append(f"separable control dx {dx:g}, dy {dy:g} (seed {seed}): {_reading_text(ctrl[key])}")
    c_read = [r["reading"] for r in ctrl.values()]
    if not ctrl:
        why = NO_CONTROL
        verdict = PARTLY if verdict == REPRODUCED else verdict
    elif PASS in c_read:
        why, verdict = CONTROL_TOGETHER, (UNDECIDED if verdict in (REPRODUCED, PARTLY) else verdict)
    elif all(v == FAIL for v in c_read):
        why = "the separable control reads apart: the statistic can detect factorized learning"
    else:
        why = "the separable control is undecided: the statistic's power to detect factorized learning is not shown"
        verdict = UNDECIDED if verdict in (REPRODUCED, PARTLY) else verdict
    value, low, high, summary = _gap_summary(readings, t)
    return _row("fig5_coupling", verdict, value, low, high, "; ".join(parts) + f". {summary}; {why}")


def _gap_summary(readings: list, t: Thresholds):
    """The claim's value: the mean gap over the global runs. Interval: one run, its crossing
    interval; several, the t interval across runs widened to the mean of their crossing intervals
    (identical gaps would otherwise give a zero-width interval to a sampled quantity)."""
    done = [r for r in readings if np.isfinite(r["gap"])]
    if not done:
        return math.nan, math.nan, math.nan, "no run reached the level on either axis"
    gaps = [r["gap"] for r in done]
    lo_mean, hi_mean = float(np.mean([r["low"] for r in done])), float(np.mean([r["high"] for r in done]))
    if len(done) == 1:
        return gaps[0], done[0]["low"], done[0]["high"], f"gap {_iv(gaps[0], lo_mean, hi_mean)} checkpoints (one run)"
    mean, tl, th = t_interval(gaps, t.level)
    low, high = min(tl, lo_mean), max(th, hi_mean)
    return mean, low, high, (f"mean gap {_iv(mean, low, high)} checkpoints over {len(done)} runs (t interval across "
                             "runs, widened to the mean of the runs' crossing intervals)")


# ---------------------------------------------------------------------------------------------
# compositional generalisation on `lines`
# ---------------------------------------------------------------------------------------------

def efficiency_records(efficiency) -> list[dict]:
    """Rows of `report.efficiency_row` from a list, a DataFrame or {label: row}."""
    if efficiency is None:
        return []
    if isinstance(efficiency, pd.DataFrame):
        return efficiency.to_dict("records")
    if isinstance(efficiency, dict):
        return [dict(r, label=r.get("label", k)) for k, r in efficiency.items()]
    return [dict(r) for r in efficiency]


def _num(r: dict, k: str) -> float:
    try:
        return float(r.get(k, math.nan))
    except (TypeError, ValueError):
        return math.nan


def _design(r: dict) -> str:
    return str(r.get("label", r.get("design", ""))).split(" · ")[0]


def _unseen(r: dict) -> str:
    mem = _num(r, "memoriser_unseen")
    return (f"{_iv(_num(r, 'accuracy_unseen'), _num(r, 'accuracy_unseen_low'), _num(r, 'accuracy_unseen_high'))}"
            + (f", memoriser {mem:.2f}" if np.isfinite(mem) else "")
            + (f", {_num(r, 'n_unseen'):.0f} unseen positions" if np.isfinite(_num(r, "n_unseen")) else ""))


def _random_note(rows: list) -> str:
    bits = [f"{_design(r)} · {r.get('conditioning')} unseen {_unseen(r)}" for r in rows
            if r.get("design") == "random" and np.isfinite(_num(r, "accuracy_unseen"))]
    if not bits:
        return ""
    return (" Not part of the rule, the random design: " + "; ".join(bits) + " (the global model interpolates "
            "between scattered training positions, which `lines` leaves too far apart).")


def compose_claim(efficiency, t: Thresholds) -> dict:
    """The `lines` row: reproduced if the global model's unseen interval lies below `compose_level`
    and the separable control's above it; not reproduced if the global one lies above it."""
    rows = efficiency_records(efficiency)
    if not rows:
        return _row("compose", NO_CLAIM, detail="no efficiency runs")
    scored = [r for r in rows if r.get("design") == "lines" and np.isfinite(_num(r, "accuracy_unseen"))]
    glob = sorted((r for r in scored if r.get("conditioning") == "global"), key=lambda r: (_num(r, "seed"), _design(r)))
    if not glob:
        return _row("compose", NO_CLAIM, detail="no `lines` run of the global model with unseen positions scored"
                    + "." + _random_note(rows))
    lvl = t.compose_level
    checks, parts = [], []
    for g in glob:  # every global `lines` run, each against the separable control of the nearest seed
        seps = [r for r in scored if r.get("conditioning") == "separable" and _design(r) == _design(g)]
        sep = min(seps, key=lambda r: abs(_num(r, "seed") - _num(g, "seed"))) if seps else None
        g_check = _below(_num(g, "accuracy_unseen_low"), _num(g, "accuracy_unseen_high"), lvl)
        s_check = (_above(_num(sep, "accuracy_unseen_low"), _num(sep, "accuracy_unseen_high"), lvl, strict=True)
                   if sep else None)
        checks.append((g_check, s_check))
        seed = f" (seed {int(_num(g, 'seed'))})" if np.isfinite(_num(g, "seed")) else ""
        parts.append(f"{_design(g)} · global{seed}: unseen accuracy {_unseen(g)} (must lie below {lvl:g}) → {g_check}")
        parts.append(f"{_design(sep)} · separable control: unseen {_unseen(sep)} (must lie above {lvl:g}) → {s_check}"
                     if sep else f"no separable control on {_design(g)}")
    verdicts = [_compose_verdict(g_check, s_check, lvl) for g_check, s_check in checks]
    if len(set(v for v, _ in verdicts)) == 1:
        verdict, why = verdicts[0]
    elif any(v == REPRODUCED for v, _ in verdicts):
        verdict, why = PARTLY, "; ".join(f"run {i + 1}: {w}" for i, (_, w) in enumerate(verdicts))
    else:
        verdict, why = UNDECIDED, "; ".join(f"run {i + 1}: {w}" for i, (_, w) in enumerate(verdicts))
    values = np.array([_num(g, "accuracy_unseen") for g in glob])
    # one run: its Wilson interval; several: the envelope of their Wilson intervals (conservative)
    low = min(_num(g, "accuracy_unseen_low") for g in glob)
    high = max(_num(g, "accuracy_unseen_high") for g in glob)
    runs = f" over {len(glob)} global `lines` runs (mean; interval: envelope of their Wilson intervals)" \
        if len(glob) > 1 else ""
    return _row("compose", verdict, float(values.mean()), low, high,
                "; ".join(parts) + f"{runs}: {why}." + _random_note(rows))


def _compose_verdict(g_check, s_check, lvl) -> tuple[str, str]:
    """One global `lines` run against its separable control -> (verdict, why)."""
    if g_check == FAIL:
        return NOT_REPRODUCED, "the global model composes unseen positions"
    if g_check == OPEN:
        return UNDECIDED, f"the global model's interval straddles {lvl:g}"
    if s_check is None:
        return UNDECIDED, "no positive control was run: a failure on unseen positions may be the test's"
    if s_check != PASS:
        return UNDECIDED, ("the separable control fails too: the test has not shown that a factorizing learner "
                           "passes it" if s_check == FAIL else f"the separable control's interval straddles {lvl:g}")
    return REPRODUCED, "the global model fails where the factorizing control succeeds"


__all__ = ["CONTROL_TOGETHER", "NO_CONTROL", "compose_claim", "coupling_claim", "coupling_reading", "efficiency_records"]
