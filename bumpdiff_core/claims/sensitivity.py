"""How much each verdict depends on its thresholds: every verdict recomputed over a grid of
accuracy and R² levels (a table, a matrix for a page and one sentence), and every declared
threshold varied one at a time (`threshold_flips`: for each verdict, the settings that flip it)."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from bumpdiff_core.claims.thresholds import CLAIM_SHORT, CLAIMS, DEFAULT, NO_CLAIM, SENSITIVITY_ACCURACY, SENSITIVITY_GRID, \
    SENSITIVITY_R2, TUNED_SEEDS, Thresholds, _KEY_OF
from bumpdiff_core.claims.verdicts import _verdict_css, judge


def sensitivity(tables: dict, tuned_seeds=TUNED_SEEDS, increments: dict | None = None, pairs: dict | None = None,
                thresholds: Thresholds = DEFAULT, accuracy_levels=SENSITIVITY_ACCURACY,
                r2_levels=SENSITIVITY_R2, control_pairs: dict | None = None, efficiency=None) -> pd.DataFrame:
    """Every verdict recomputed on the grid accuracy_levels × r2_levels (other thresholds as
    given; `control_pairs` and `efficiency` passed to `judge`): long table claim, accuracy_level,
    r2_level, verdict, default (the setting is `thresholds`'s)."""
    rows = []
    for acc in accuracy_levels:
        for r2 in r2_levels:
            t = replace(thresholds, accuracy_level=float(acc), r2_level=float(r2))
            table = judge(tables, tuned_seeds, increments, pairs, t, control_pairs=control_pairs,
                          efficiency=efficiency).table
            for claim, verdict in zip(table["claim"], table["verdict"]):
                rows.append({"claim": claim, "accuracy_level": float(acc), "r2_level": float(r2), "verdict": verdict,
                             "default": acc == thresholds.accuracy_level and r2 == thresholds.r2_level})
    return pd.DataFrame(rows)


def threshold_flips(inputs: dict, tuned_seeds=TUNED_SEEDS, thresholds: Thresholds = DEFAULT,
                    grid: dict = SENSITIVITY_GRID) -> dict:
    """Every declared threshold in `grid` ({name: values}) varied one at a time, the others as in
    `thresholds`; `inputs` are `judge`'s keyword inputs (`results.tables.verdict_inputs`). ->
    {claim: ["name=value → verdict", ...]} listing the settings whose verdict differs from the
    default one (an empty list: no declared threshold flips it)."""
    inputs = {k: v for k, v in inputs.items() if k in ("tables", "increments", "pairs", "control_pairs", "efficiency")}
    inputs.setdefault("tables", {})
    base = judge(tuned_seeds=tuned_seeds, thresholds=thresholds, **inputs).table
    default = dict(zip(base["claim"], base["verdict"]))
    flips = {claim: [] for claim in default}
    for name, values in grid.items():
        for value in values:
            if value == getattr(thresholds, name):
                continue
            t = replace(thresholds, **{name: type(getattr(thresholds, name))(value)})
            table = judge(tuned_seeds=tuned_seeds, thresholds=t, **inputs).table
            for claim, verdict in zip(table["claim"], table["verdict"]):
                if verdict != default[claim]:
                    flips[claim].append(f"{name}={value:g} → {verdict}")
    return flips


def flips_text(flips: dict) -> str:
    """One sentence per verdict: which declared thresholds flip it (or that none does)."""
    out = []
    for claim, changes in flips.items():
        short = CLAIM_SHORT.get(_KEY_OF.get(claim), claim)
        out.append(f"“{short}”: " + ("no declared threshold in the grid flips it" if not changes else
                                     "flips at " + ", ".join(changes)))
    return "; ".join(out) + "." if out else "No verdicts."


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


def style_sensitivity(matrix: pd.DataFrame):
    """`sensitivity_matrix` for a page: every cell coloured by its verdict."""
    short = {CLAIMS[k]: v for k, v in CLAIM_SHORT.items()}
    return (matrix.rename(index=lambda c: short.get(c, c)).style.map(_verdict_css)
            .set_properties(**{"font-size": "0.8em", "text-align": "center"}))
