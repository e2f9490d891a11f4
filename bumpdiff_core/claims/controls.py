"""The two claims about whether x and y are learned separately, each judged with a positive control
(DESIGN.md: a claim that a mechanism is absent needs a model in which it is present, run through
the same statistic). `verdicts.judge` calls them; pages read `coupling_reading` for one run.

- Fig. 5 coupling: at dx = 0.1, the checkpoint at which x is learned (error_x ≤ `error_px`) for
  dy ∈ {0.1, 0.5, 1}; the least-squares shift of that checkpoint over the dy range with the t
  interval of the slope (declared). A factorized learner learns x whatever dy; the separable model
  (x only through column features, y only through row features) on the same designs must read
  'independent' for the test to count. (`coupling_reading`, the older x/y crossing gap, stays for
  the pages: on the separable model it also read 'together', so no verdict reads it.)
- Compositional generalisation on `lines` (every x and every y value seen, few combinations): every
  far-unseen position of the last checkpoint's position map, per network (Wilson) and across
  networks (t interval of the logits, declared); the global model against the separable model and
  the global model with coordinate channels of the same untuned seeds. Input: rows of
  `results.tables.efficiency_row`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bumpdiff_core.claims.thresholds import (FAIL, NO_CLAIM, NOT_REPRODUCED, OPEN, PARTLY, PASS, REPRODUCED, UNDECIDED, Thresholds,
                           _above, _accuracy, _below, _crossing, _iv, _row, has_columns)
from bumpdiff_core.measure.intervals import t_interval, wilson

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


def x_learned_checkpoint(table: pd.DataFrame, t: Thresholds) -> tuple[int, int, int]:
    """(earliest, point, latest) checkpoint index at which x is learned: error_x ≤ `error_px`
    (per-axis error of the brightest region), the interval from error_x's t interval; len = never."""
    tb = table.reset_index(drop=True)
    if not has_columns(tb, "error_x"):
        n = len(tb)
        return n, n, n
    v = tb["error_x"].to_numpy(float)
    lo, hi = ((tb["error_x_low"].to_numpy(float), tb["error_x_high"].to_numpy(float))
              if has_columns(tb, "error_x_low", "error_x_high") else (v, v))
    return _crossing(v, lo, hi, t.error_px, upward=False)


def dy_shift(runs: dict, t: Thresholds) -> dict:
    """The Fig. 5 statistic on one model: {(dx, dy, seed): table} at dx = 0.1 → the least-squares
    shift of the x-learned checkpoint over the dy range (slope × (max dy − min dy)), its t interval
    (slope's standard error, n − 2 df; declared), the per-dy points, and the reading: independent
    (interval within ±together_checkpoints), coupled (wholly beyond), else undecided."""
    pts = []
    for key, tb in sorted(runs.items(), key=lambda kv: str(kv[0])):
        dx, dy, seed = _key(key)
        if abs(float(dx) - 0.1) > 1e-9:
            continue
        e, c, l = x_learned_checkpoint(tb, t)
        pts.append((float(dy), seed, c, len(tb) if hasattr(tb, "__len__") else c, e, l))
    out = {"points": pts, "shift": math.nan, "low": math.nan, "high": math.nan, "reading": OPEN, "seeds_per_dy": 0}
    dys = sorted({p[0] for p in pts})
    if len(dys) < 2 or len(pts) < 3:
        out["why"] = f"{len(pts)} run(s) over {len(dys)} dy value(s): no trend"
        return out
    x = np.array([p[0] for p in pts])
    y = np.array([p[2] for p in pts], dtype=float)
    xc = x - x.mean()
    slope = float((xc * (y - y.mean())).sum() / (xc**2).sum())
    resid = y - y.mean() - slope * xc
    dof = len(pts) - 2
    span = float(x.max() - x.min())
    from scipy import stats

    if dof > 0:
        se = float(np.sqrt((resid**2).sum() / dof / (xc**2).sum()))
        q = float(stats.t.ppf((1 + t.level) / 2, dof))
        lo, hi = (slope - q * se) * span, (slope + q * se) * span
    else:
        lo = hi = math.nan
    k = t.together_checkpoints
    reading = (PASS if _finite_pair(lo, hi) and lo >= -k and hi <= k else
               FAIL if _finite_pair(lo, hi) and (lo > k or hi < -k) else OPEN)
    out.update(shift=slope * span, low=lo, high=hi, reading=reading,
               seeds_per_dy=min(sum(1 for p in pts if p[0] == d) for d in dys))
    return out


def _finite_pair(a, b) -> bool:
    return a is not None and b is not None and np.isfinite(a) and np.isfinite(b)


def _shift_text(name: str, r: dict) -> str:
    pts = ", ".join(f"dy {dy:g} seed {seed}: {'never' if c >= n else c}" for dy, seed, c, n, _, _ in r["points"])
    word = {PASS: "independent", FAIL: "coupled", OPEN: "undecided"}[r["reading"]]
    if not np.isfinite(r["shift"]):
        return f"{name}: x learned at checkpoint {pts or 'n/a'}; {r.get('why', 'no trend')}"
    return (f"{name}: x learned at checkpoint ({pts}); shift over dy {_iv(r['shift'], r['low'], r['high'])} checkpoints "
            f"(t interval of the slope) → {word}")


def coupling_claim(pairs: dict, t: Thresholds, controls: dict | None = None) -> dict:
    """The Fig. 5 row: does the step at which x is learned (dx = 0.1) move with dy ∈ {0.1, 0.5, 1}?
    `pairs` {(dx, dy, seed): global model's table}, `controls` the same for the separable model (it
    can only factorize: it must read 'independent' for the test to count). Coupled global +
    independent control → reproduced; independent global → not reproduced."""
    from bumpdiff_core.claims.thresholds import run_ids

    runs = run_ids(*pairs.values(), *(controls or {}).values())
    g = dy_shift(pairs, t)
    if not g["points"]:
        return _row("fig5_coupling", NO_CLAIM, detail="no imbalanced runs at dx = 0.1", runs=runs)
    c = dy_shift(controls or {}, t)
    parts = [_shift_text("global", g), _shift_text("separable control", c) if c["points"] else NO_CONTROL]
    if not c["points"]:
        verdict, why = UNDECIDED, "no positive control"
    elif c["reading"] != PASS:
        verdict, why = UNDECIDED, ("the separable control does not read independent: the test has not shown it can "
                                   "recognise a factorized learner")
    elif g["reading"] == FAIL:
        verdict, why = REPRODUCED, "x is learned later (or earlier) as y gets sparser, while the factorizing control's is not"
    elif g["reading"] == PASS:
        verdict, why = NOT_REPRODUCED, "the global model learns x at the same step whatever dy, like the factorizing control"
    else:
        verdict, why = UNDECIDED, "the global model's shift interval straddles the tolerance"
    few = min(g["seeds_per_dy"], c["seeds_per_dy"] if c["points"] else 0)
    if few < t.min_seeds and verdict != UNDECIDED:
        verdict, why = UNDECIDED, f"too few seeds ({few} per dy < {t.min_seeds}); as read: {why}"
    elif few < t.min_seeds:
        why += f"; too few seeds ({few} per dy < {t.min_seeds})"
    return _row("fig5_coupling", verdict, g["shift"], g["low"], g["high"], "; ".join(parts) + f". {why}", runs)


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


def _logit_interval(ks, ns, level: float):
    """Across networks: t interval of the logits of (k + ½)/(n + 1), back-transformed (declared
    for the `lines` claim; stays inside (0, 1)). -> (mean accuracy, low, high)."""
    p = (np.asarray(ks, float) + 0.5) / (np.asarray(ns, float) + 1)
    mean, lo, hi = t_interval(np.log(p / (1 - p)), level)
    inv = lambda z: float(1 / (1 + np.exp(-z))) if np.isfinite(z) else math.nan  # noqa: E731
    return float(np.mean(np.asarray(ks, float) / np.asarray(ns, float))), inv(lo), inv(hi)


def _map_score(r: dict, t: Thresholds):
    """(k, n, how) of one run's unseen positions: every far position of the position map when the
    row has it (n_/k_unseen_map_d<distance>), else the sampled unseen labels (said so)."""
    n, k = _num(r, f"n_unseen_map_d{t.unseen_distance}"), _num(r, f"k_unseen_map_d{t.unseen_distance}")
    if np.isfinite(n) and np.isfinite(k) and n > 0:
        return int(k), int(n), "position map"
    n, acc = _num(r, "n_unseen"), _num(r, "accuracy_unseen")
    if np.isfinite(n) and np.isfinite(acc) and n > 0 and t.unseen_distance == 2:
        return int(round(acc * n)), int(n), "sampled unseen labels only (no position map counts)"
    return None


COMPOSE_MODELS = (("global", False, "global"), ("separable", None, "separable control"),
                  ("global", True, "global + coord_channels (architecture control)"))


def _model_of(r: dict):
    cc = bool(r.get("coord_channels", False)) if r.get("coord_channels") is not None else False
    for cond, coord, name in COMPOSE_MODELS:
        if r.get("conditioning") == cond and (coord is None or cc == coord):
            return name
    return None


def compose_claim(efficiency, t: Thresholds, tuned_seeds=frozenset({0, 1, 2})) -> dict:
    """The `lines` row: every far-unseen position of each network, the global model against the
    separable control and the global model with coordinate channels of the *same* seeds (untuned
    only); interval across networks (logit t, declared), each network's Wilson beside it."""
    rows = efficiency_records(efficiency)
    if not rows:
        return _row("compose", NO_CLAIM, detail="no efficiency runs")
    lines = [r for r in rows if r.get("design") == "lines" and np.isfinite(_num(r, "seed"))
             and int(_num(r, "seed")) not in set(tuned_seeds) and _model_of(r)]
    by = {}
    for r in lines:
        score = _map_score(r, t)
        if score:
            by.setdefault(_model_of(r), {})[int(_num(r, "seed"))] = (r, *score)
    names = [m[2] for m in COMPOSE_MODELS]
    glob, sep, coord = (by.get(n, {}) for n in names)
    runs = [x[0].get("run_id", "") for d in by.values() for x in d.values()]
    if not glob:
        return _row("compose", NO_CLAIM, detail="no `lines` run of the global model on an untuned seed with unseen "
                    "positions scored" + "." + _random_note(rows), runs=runs)
    seeds = sorted(set(glob) & set(sep) & set(coord)) or sorted(glob)
    lvl = t.compose_level
    parts, checks = [], {}
    for name, group in zip(names, (glob, sep, coord)):
        have = [s for s in seeds if s in group]
        if not have:
            parts.append(f"{name}: not run on seeds {', '.join(map(str, seeds))}")
            checks[name] = None
            continue
        ks, ns = [group[s][1] for s in have], [group[s][2] for s in have]
        mean, low, high = _logit_interval(ks, ns, t.level) if len(have) >= 2 else (ks[0] / ns[0], math.nan, math.nan)
        per = ", ".join(f"seed {s}: {k}/{n} = {_iv(k / n, *wilson(k, n, t.level))} ({group[s][3]})"
                        for s, k, n in zip(have, ks, ns))
        checks[name] = ((_below if name != names[1] else lambda lo, hi, x: _above(lo, hi, x, strict=True))(low, high, lvl),
                        mean, low, high, len(have))
        parts.append(f"{name}: {_iv(mean, low, high)} across {len(have)} network(s) (logit t interval) — {per} "
                     f"→ {checks[name][0]}")
    g, sp, co = (checks[n] for n in names)
    if g[0] == FAIL:
        verdict, why = NOT_REPRODUCED, "the global model composes unseen positions"
    elif g[0] == OPEN:
        verdict, why = UNDECIDED, f"the global model's interval straddles {lvl:g} (or has none)"
    elif sp is None or sp[0] != PASS:
        verdict, why = UNDECIDED, "the separable control has not shown that a factorizing learner passes the test"
    elif co is None:
        verdict, why = UNDECIDED, ("no coordinate control: the separable model differs from the global one in two ways "
                                   "(factorized, and given coordinates)")
    elif co[0] == PASS:  # below the level: coordinates alone do not rescue the vanilla model
        verdict, why = REPRODUCED, ("the global model fails where the factorizing control succeeds, and giving it "
                                    "coordinates does not help")
    elif co[0] == FAIL:
        verdict, why = PARTLY, ("the global model fails, but with coordinate channels it composes: the separable "
                                "model's success need not come from factorizing")
    else:
        verdict, why = UNDECIDED, f"the coordinate control's interval straddles {lvl:g}"
    n_min = min(c[4] for c in (g, sp, co) if c)
    if n_min < t.min_seeds:
        verdict, why = UNDECIDED, f"too few seeds ({n_min} < {t.min_seeds}); as read: {why}"
    n_unseen = min(group[s][2] for group in (glob, sep, coord) for s in group)
    return _row("compose", verdict, g[1], g[2], g[3],
                f"unseen = ≥ {t.unseen_distance} px from every training position, at least {n_unseen} per run; "
                + "; ".join(parts) + f": {why}." + _random_note(rows), runs)


__all__ = ["CONTROL_TOGETHER", "NO_CONTROL", "compose_claim", "coupling_claim", "coupling_reading", "dy_shift",
           "efficiency_records", "x_learned_checkpoint"]
