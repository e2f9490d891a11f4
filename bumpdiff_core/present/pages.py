"""The sentences and small tables the book's pages print, built from measured numbers.

A notebook cell calls one of these and shows the result (`IPython.display.Markdown(text)`), so the
wording is tested here rather than assembled in cells. Each takes a `view.RunView`, metrics tables
or a config; none reads a file.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bumpdiff_core.claims import analysis, verdicts


def step_text(value) -> str:
    """'step 700', or 'never' for a step that was not reached (NaN or None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "never"
    return f"step {float(value):.0f}"


def _bullets(lines) -> str:
    return "\n".join(f"- {line}" for line in lines)


# --- train_and_evaluate ----------------------------------------------------------------------------

def run_heading(view) -> str:
    """One run in two lines: id, image size, increments, seed, steps; where it is stored."""
    c = view.config
    text = (f"run {view.run_id}: {c.image_size}x{c.image_size}, increments ({c.increment_x:g}, "
            f"{c.increment_y:g}), seed {c.seed}, {c.steps} steps")
    if view.run is not None:
        text += f"\nstored in {view.run.path}"
    return text


def run_summary(table: pd.DataFrame) -> str:
    """What one run's curves say: the phase transitions, when the representation and the
    behaviour got there (which first), and the scores at the last checkpoint (Markdown)."""
    t = verdicts.DEFAULT
    s = analysis.transition_summary([table], t).per_seed.iloc[0]
    final = table.iloc[-1]
    if math.isnan(s["step_order"]):
        order = "the representation never ordered that far in this run"
    else:
        order = f"the representation ordered {'before' if s['representation_first'] else 'not before'} the behaviour"
    return _bullets([
        f"Phase A → B (at least half the samples have exactly one bump): **{step_text(s['step_A_to_B'])}**; "
        f"B → C (at least half are in the right place): **{step_text(s['step_B_to_C'])}**.",
        f"The {verdicts.ORDER_NAMES[t.order_measure]} (mean of x and y) first reaches {t.r2_level:g}: "
        f"**{step_text(s['step_order'])}**; accuracy first reaches {t.accuracy_level:g}: "
        f"**{step_text(s['step_accuracy'])}**; {order}.",
        f"At the last checkpoint (step {final['step']:.0f}): accuracy {final['accuracy']:.2f}, one bump in "
        f"{final['frac_1']:.0%} of samples, R² from UMAP x {final['r2_x']:.2f} / y {final['r2_y']:.2f}, "
        f"from raw activations x {final['r2_x_raw']:.2f} / y {final['r2_y_raw']:.2f}.",
    ])


# --- findings ----------------------------------------------------------------------------------------

# --- phases ------------------------------------------------------------------------------------------

def phase_profile_summary(table: pd.DataFrame) -> str:
    """Per phase: checkpoints, step range, bump counts, accuracy and UMAP R²; the phases never
    reached; when the representation and the behaviour got there (Markdown)."""
    profile = analysis.phase_profile(table)
    lines = [f"**{phase}** ({row['checkpoints']:.0f} checkpoints, steps {row['first_step']:.0f}–"
             f"{row['last_step']:.0f}): no bump {row['frac_0']:.0%}, one bump {row['frac_1']:.0%}, "
             f"several {row['frac_multi']:.0%}; accuracy {row['accuracy']:.2f}; "
             f"R² (UMAP) x {row['r2_x']:.2f}, y {row['r2_y']:.2f}" for phase, row in profile.iterrows()]
    missing = [p for p in "ABC" if p not in profile.index]
    if missing:
        lines.append(f"never reached in this run: {', '.join(missing)}")
    t = verdicts.DEFAULT
    s = analysis.transition_summary([table], t).per_seed.iloc[0]
    lines.append(f"the {verdicts.ORDER_NAMES[t.order_measure]} reached {t.r2_level:g}: "
                 f"{step_text(s['step_order'])}; accuracy reached {t.accuracy_level:g}: "
                 f"{step_text(s['step_accuracy'])}; ordered representation "
                 f"{'strictly first' if s['representation_first'] else 'not strictly first'}")
    return _bullets(lines)


# --- phase diagram -----------------------------------------------------------------------------------

def phase_boundaries_summary(bounds: pd.DataFrame, steps: int, trend: dict | None = None) -> str:
    """How many increments (runs, with several seeds) reached C within `steps` training steps,
    where C began for the densest and the sparsest of them, the trend (`verdicts.trend_claim`'s
    row: Spearman rho, permutation p, bootstrap interval; a direction word only when the interval
    excludes 0), and the range of final scores (Markdown)."""
    reached = bounds.dropna(subset=["step_B_to_C"])
    many = bounds["increment"].duplicated().any()
    what = "runs (increment × seed)" if many else "increments"
    lines = [f"{len(reached)} of {len(bounds)} {what} reached phase C within {steps} steps."]
    if reached["increment"].nunique() >= 2:
        by_inc = reached.groupby("increment")["step_B_to_C"].mean()
        mean = " (mean over seeds)" if many else ""
        lines.append(f"Phase C began at step {by_inc.iloc[0]:.0f} for increment {by_inc.index[0]:g} "
                     f"and at step {by_inc.iloc[-1]:.0f} for increment {by_inc.index[-1]:g}{mean}.")
    if trend is not None and np.isfinite(trend.get("value", math.nan)):
        lines.append(f"Trend: {trend['detail']}.")
    never = sorted(set(bounds[bounds["step_B_to_C"].isna()]["increment"].tolist()))
    if never:
        lines.append(f"Never reached C: increments {', '.join(f'{v:g}' for v in never)}.")
    lines.append(f"Final accuracy ranged from {bounds['final_accuracy'].min():.2f} to "
                 f"{bounds['final_accuracy'].max():.2f}; final mean R² from {bounds['final_mean_r2'].min():.2f} "
                 f"to {bounds['final_mean_r2'].max():.2f}.")
    return _bullets(lines)


# --- imbalanced --------------------------------------------------------------------------------------

# --- data --------------------------------------------------------------------------------------------

DATA_SPACINGS = [(d, d) for d in (1.0, 0.75, 0.5, 0.25, 0.2, 0.1)] + [(0.1, 1.0), (0.1, 0.5)]


def data_set_sizes(image_size: int, spacings=DATA_SPACINGS) -> pd.DataFrame:
    """Training-set size (number of centres) per spacing (dx, dy) at `image_size`."""
    from bumpdiff_core.learn.data import centre_grid

    return pd.DataFrame([{"dx": dx, "dy": dy, "images": len(centre_grid(image_size, dx, dy))} for dx, dy in spacings])


def data_size_sentence(image_size: int) -> str:
    from bumpdiff_core.learn.data import centre_grid

    return (f"At {image_size}×{image_size}, increment 1 gives {len(centre_grid(image_size, 1.0, 1.0)):,} images "
            f"and increment 0.1 gives {len(centre_grid(image_size, 0.1, 0.1)):,}.")


# --- appendix ----------------------------------------------------------------------------------------

def run_provenance(view) -> str:
    """Parameters, device and wall times of a run, from its meta.json."""
    meta = view.meta
    params = meta.get("parameters")
    return (f"run {view.run_id}: {params:,} parameters" if isinstance(params, int) else f"run {view.run_id}: ? parameters") + (
        f", trained on {meta.get('device')} in {meta.get('train_seconds', math.nan):.0f} s, "
        f"evaluated in {meta.get('evaluate_seconds', math.nan):.0f} s")


def loss_by_phase(table: pd.DataFrame) -> str:
    """'Loss averaged over each phase's checkpoints: A: 0.1234, B: ...' (phases in order A, B, C)."""
    phases = [p for p in "ABC" if (table["phase"] == p).any()]
    return "Loss averaged over each phase's checkpoints: " + ", ".join(
        f"{p}: {table.loc[table['phase'] == p, 'loss'].mean():.4f}" for p in phases) + "."


def algorithm_sources() -> str:
    """The training loss, the training loop and the samplers (the DDPM and DDIM updates and the
    loop that applies them), printed from the installed code (Markdown code blocks)."""
    import inspect

    from bumpdiff_core.learn import diffusion
    from bumpdiff_core.learn.train import Trainer

    parts = [("diffusion.epsilon_loss", diffusion.epsilon_loss), ("train.Trainer.train", Trainer.train)]
    parts += [(f"diffusion.{name}", getattr(diffusion, name))
              for name in ("ddpm_step", "ddim_step", "sample_loop", "ddpm_sample", "ddim_sample")
              if hasattr(diffusion, name)]
    return "\n\n".join(f"**`{name}`**\n\n```python\n{inspect.getsource(obj)}```" for name, obj in parts)


# --- findings (seeds, claims, the representation by phase) ------------------------------------------

def seeds_sentence(judgement, profile: str, tuned_seeds=verdicts.TUNED_SEEDS) -> str:
    """Which seeds the verdicts use, and that the profile and its tuned seeds were tuned (Markdown)."""
    tuned = ", ".join(str(s) for s in sorted(tuned_seeds))
    used = ", ".join(str(s) for s in judgement.seeds_used) or "none"
    text = (f"The verdicts below are computed on the main configuration's seed(s) **{used}** "
            f"({len(judgement.seeds_used)} run(s)). The `{profile}` profile's settings were tuned while "
            f"looking at seeds {tuned} until the phases looked like the paper's")
    if judgement.seeds_left_out:
        left = ", ".join(str(s) for s in judgement.seeds_left_out)
        text += f", so seed(s) {left} are left out of the verdicts (they appear in the seeds table)."
    elif set(judgement.seeds_used) & set(tuned_seeds):
        text += "; no untuned seed was available here, so these verdicts are on tuned seeds: read them as such."
    else:
        text += "; none of the seeds used here played a part in that tuning."
    counts = judgement.table["verdict"].value_counts()
    return text + " Verdicts: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."


def thresholds_sentence(t: verdicts.Thresholds = verdicts.DEFAULT) -> str:
    """The levels the verdicts use, read from `verdicts.Thresholds` (Markdown)."""
    return (f"Levels (declared once, in `verdicts.Thresholds`): accuracy counts as right at ≥ {t.accuracy_level:g}; "
            f"the representation counts as ordered when the {verdicts.ORDER_NAMES[t.order_measure]} (mean of x and y) "
            f"is ≥ {t.r2_level:g}; phase A has 'no structure' below {t.unstructured_level:g}; phase C needs final "
            f"accuracy ≥ {t.final_accuracy:g}; a representation is a 2D sheet when its Levina–Bickel MLE dimension lies "
            f"inside the {t.dim_band:.0%} band of a null made from the run's own labels, noise and curvature; an axis "
            f"is learned at error ≤ {t.error_px:g} px; a verdict across networks needs ≥ {t.min_seeds} untuned seeds; "
            "every interval is "
            f"{t.level:.0%}. A check passes only when its whole interval is on the claimed side, fails when it is "
            "wholly on the other side, and is `undecided` otherwise.")


def _iv(value, low, high, fmt=".2f") -> str:
    if value is None or not np.isfinite(value):
        return "—"
    if low is None or high is None or not (np.isfinite(low) and np.isfinite(high)):
        return format(value, fmt)
    return f"{format(value, fmt)} [{format(low, fmt)}, {format(high, fmt)}]"


def seeds_display(seeds: pd.DataFrame, judgement=None) -> pd.DataFrame:
    """`analysis.seed_table` for a page: one row per seed (marked tuned / untuned), then the mean
    with its t interval across seeds; steps as integers, intervals in brackets."""
    t = verdicts.DEFAULT
    per_seed = seeds.drop(index=["mean", "low", "high"])
    mean, low, high = seeds.loc["mean"], seeds.loc["low"], seeds.loc["high"]

    def steps(v):
        return "never" if not np.isfinite(v) else f"{v:.0f}"

    rows = []
    for seed, r in per_seed.iterrows():
        used = judgement is None or seed in judgement.seeds_used
        rows.append({"seed": f"{seed}" + ("" if used else " (tuned, not judged)"),
                     "A → B": steps(r["step_A_to_B"]), "B → C": steps(r["step_B_to_C"]),
                     f"raw R² ≥ {t.r2_level:g}": steps(r["step_raw_r2"]),
                     f"accuracy ≥ {t.accuracy_level:g}": steps(r["step_accuracy"]),
                     "final accuracy [Wilson]": _iv(r["final_accuracy"], r["final_accuracy_low"], r["final_accuracy_high"]),
                     "final raw R² [bootstrap]": _iv(r["final_raw_r2"], r["final_raw_r2_low"], r["final_raw_r2_high"])})
    n = len(per_seed)
    fmt = {c: ".0f" for c in ("step_A_to_B", "step_B_to_C", "step_raw_r2", "step_accuracy")}
    cols = ["step_A_to_B", "step_B_to_C", "step_raw_r2", "step_accuracy", "final_accuracy", "final_raw_r2"]
    summary = [_iv(mean[c], low[c], high[c], fmt.get(c, ".2f")) for c in cols]
    rows.append(dict(zip(rows[0].keys() if rows else [], [f"mean of {n} [t interval]"] + summary)))
    return pd.DataFrame(rows)


def seeds_summary(seeds: pd.DataFrame) -> str:
    """One sentence: how many seeds, and the mean B → C step and final accuracy with t intervals."""
    per_seed = seeds.drop(index=["mean", "low", "high"])
    n = len(per_seed)
    m, lo, hi = seeds.loc["mean"], seeds.loc["low"], seeds.loc["high"]
    reached = int(np.isfinite(per_seed["step_B_to_C"].to_numpy(float)).sum())
    if n == 1:
        return (f"One seed: phase C from {step_text(m['step_B_to_C'])}; final accuracy "
                f"{_iv(m['final_accuracy'], per_seed['final_accuracy_low'].iloc[0], per_seed['final_accuracy_high'].iloc[0])} "
                "(Wilson); no spread across seeds can be estimated from one run.")
    return (f"{n} seeds ({reached} reached C): phase C began at step {_iv(m['step_B_to_C'], lo['step_B_to_C'], hi['step_B_to_C'], '.0f')} "
            f"and the final accuracy is {_iv(m['final_accuracy'], lo['final_accuracy'], hi['final_accuracy'])} "
            f"(mean [{verdicts.DEFAULT.level:.0%} t interval across seeds]).")


def _measure_row(summary: pd.DataFrame, measure: str, phase: str):
    r = summary[(summary["measure"] == measure) & (summary["phase"] == phase)]
    return None if r.empty or not np.isfinite(r["mean"].iloc[0]) else r.iloc[0]


def _compare(summary, measure, first, second) -> str:
    """'higher than X' / 'lower than X' when the two phases' intervals do not overlap, else
    'not distinguishable from X'."""
    a, b = _measure_row(summary, measure, first), _measure_row(summary, measure, second)
    if a is None or b is None:
        return f"not comparable with {second} (a phase is missing)"
    if np.isfinite(a["low"]) and np.isfinite(b["high"]) and a["low"] > b["high"]:
        return f"higher than {second}"
    if np.isfinite(a["high"]) and np.isfinite(b["low"]) and a["high"] < b["low"]:
        return f"lower than {second}"
    return f"not distinguishable from {second} (the intervals overlap)"


def phase_measures_summary(summary: pd.DataFrame, t: verdicts.Thresholds = verdicts.DEFAULT) -> str:
    """Phase B against A and against C on each representation measure, in words from
    `analysis.phase_measures` (a difference is named only when the intervals do not overlap)."""
    lines = []
    for m in ("intrinsic_dim", "knn_r2", "umap_r2", "raw_r2"):
        rows = {p: _measure_row(summary, m, p) for p in "ABC"}
        name = analysis.PHASE_MEASURES[m]
        if all(r is None for r in rows.values()):
            lines.append(f"{name}: not measured in these runs.")
            continue
        vals = "; ".join(f"{p} {_iv(r['mean'], r['low'], r['high'])}" for p, r in rows.items() if r is not None)
        line = f"{name}: {vals}. B is {_compare(summary, m, 'B', 'A')} and {_compare(summary, m, 'B', 'C')}"
        if m == "intrinsic_dim" and rows["B"] is not None:
            b = rows["B"]
            inside = (np.isfinite(b["low"]) and b["low"] >= t.sheet_dim - t.dim_tolerance
                      and b["high"] <= t.sheet_dim + t.dim_tolerance)
            line += (f"; B's interval {'lies within' if inside else 'is not within'} the TwoNN band "
                     f"{t.sheet_dim:g} ± {t.dim_tolerance:g}, which no verdict reads (TwoNN reads ~4.5 for a "
                     "noiseless sheet through these grid labels; the verdicts use the MLE against its null)")
        lines.append(line + ".")
    how = summary["how"].dropna().iloc[0] if summary["how"].notna().any() else ""
    return _bullets(lines) + (f"\n\nIntervals: {how}." if how else "")


def order_inside_b_summary(inside: pd.DataFrame, t: verdicts.Thresholds = verdicts.DEFAULT) -> str:
    """The reviewer's point, from `analysis.order_inside_b`: in how many seeds each order measure
    already reaches `r2_level` while the behaviour is still labelled B, and how much of B that is
    (Markdown)."""
    lines = []
    for m, g in inside.groupby("measure", sort=False):
        name = analysis.PHASE_MEASURES[m]
        if not g["measured"].any():
            lines.append(f"{name}: not measured in these runs.")
            continue
        hit = g[g["first_ordered_in_B"].notna()]
        if hit.empty:
            lines.append(f"{name}: never ≥ {t.r2_level:g} inside phase B in any of {len(g)} seed(s): "
                         "by this measure B is not yet ordered.")
            continue
        parts = [f"seed {r.seed}: from step {r.first_ordered_in_B:.0f}, {r.B_checkpoints_ordered_on} of "
                 f"{r.b_checkpoints} B checkpoints before C begins ({step_text(r.C_begins)})" for r in hit.itertuples()]
        lines.append(f"{name} is already ≥ {t.r2_level:g} inside phase B in {len(hit)} of {len(g)} seed(s) ("
                     + "; ".join(parts) + "): by this measure late B is already ordered, and the B/C boundary "
                     "marks when behaviour catches up, not when the map orders.")
    return _bullets(lines)


def axis_coupling_summary(crossings: pd.DataFrame) -> str:
    """Fig. 5's statistic from `analysis.axis_crossings`, per (dx, dy): the gap y − x in
    checkpoints (positive: x first) per seed, with the mean and t interval across seeds; primary
    the per-axis error, secondary accuracy_x/y (Markdown)."""
    if crossings.empty:
        return "No imbalanced runs."
    lines = []
    level = verdicts.DEFAULT.level
    for (dx, dy), g in crossings.groupby(["dx", "dy"], sort=True):
        for stat, h in g.groupby("statistic", sort=False):
            label = "primary" if stat == "error" else "secondary, partly built in"
            gaps = h["gap_checkpoints"].to_numpy(float)
            per = ", ".join(f"seed {s}: " + ("never both" if not np.isfinite(v) else f"{v:+.0f}")
                            for s, v in zip(h["seed"], gaps))
            finite = gaps[np.isfinite(gaps)]
            mean = ""
            if len(finite) >= 2:
                from bumpdiff_core.measure.intervals import t_interval

                mu, lo, hi = t_interval(finite, level)
                mean = f"; mean {mu:+.1f} [{lo:+.1f}, {hi:+.1f}] ({level:.0%} t interval over {len(finite)} seeds)"
            lines.append(f"dx = {dx:g}, dy = {dy:g}, {h['what'].iloc[0]} ({label}): gap y − x in checkpoints {per}{mean}")
    return _bullets(lines)


def claim_sentence(judgement, key: str) -> str:
    """'**Verdict** (claim): **verdict**. detail' for one claim of a `verdicts.Judgement` (Markdown)."""
    row = judgement.table[judgement.table["claim"] == verdicts.CLAIMS[key]].iloc[0]
    return f"**Verdict** ({row['claim']}): **{row['verdict']}**. {row['detail']}"


# what changed in the verdicts (the findings page states it; the current verdict is read from the judgement)
CHANGES = {
    "phase_B": ("the dimension test", "B's TwoNN dimension was judged against 2 ± 0.5. On the evaluation labels (100 "
                "points of the integer grid, many neighbours tied) TwoNN reads a noiseless smooth 2D sheet as ~4.5 and a "
                "noisy one as ~12, so 'not 2D' was the estimator's artefact. Now the Levina–Bickel MLE (which tolerates "
                "the ties) is judged against a null made from the run's own labels: smooth 2D sheets through the same "
                "labels with the noise and curvature measured at each checkpoint from a second noise seed per label."),
    "phase_C": ("the dimension test", "the same change as phase B, at the last checkpoint; the detail names the null band."),
    "order_first": ("what 'before' is measured against", "the representation (the tapped block averaged over the "
                    "sampling trajectory, whose later inputs contain the bump being drawn) was compared with accuracy. "
                    "Its R² then partly measures where the model draws, and drawn positions can be ordered well before "
                    "they fall within 1 px. Now both the trajectory mean and the first denoising step (pure noise in, "
                    "nothing drawn) are compared with the behavioural R² (the drawn positions regressed on the label), "
                    "per untuned seed, strictly earlier."),
    "fig5_coupling": ("the statistic", "the gap between x and y reaching 1 px error read 'together' on the separable "
                      "model too (a model that can only factorize), so it had no power. Now: at dx = 0.1, the step at "
                      "which x is learned for dy ∈ {0.1, 0.5, 1}; a factorized learner learns x at a step that does not "
                      "depend on dy, and the separable model must read 'independent' for the test to count."),
    "compose": ("the controls", "the seed-3 global run was judged against the seed-0 separable control on 40 of the "
                "100 far-unseen positions, and the separable model had pixel coordinates the global one lacked. Now "
                "every far-unseen position of the position map, the same untuned seeds for every model, an interval "
                "across networks, and a global model with coordinate channels that separates 'factorized' from 'has "
                "coordinates'."),
}


def changed_verdicts(judgement) -> str:
    """One bullet per changed claim: what was wrong, what is judged now, and the verdict it gets now
    (read from `judgement`, so the sentence holds whatever the result), plus the seed rule (Markdown)."""
    rows = judgement.table.set_index("claim")
    lines = []
    for key, (what, why) in CHANGES.items():
        verdict = rows.loc[verdicts.CLAIMS[key], "verdict"]
        line = f"**{verdicts.CLAIM_SHORT[key]}** — {what} changed: {why} **Now: {verdict}.**"
        if key == "order_first" and verdict != verdicts.REPRODUCED:
            line += (" So “the representation orders first” does not hold as a finding here"
                     + (": " + _short_reason(rows.loc[verdicts.CLAIMS[key], "detail"]) if verdict != verdicts.UNDECIDED
                        else " until the runs decide it (" + _short_reason(rows.loc[verdicts.CLAIMS[key], "detail"]) + ")")
                     + ".")
        lines.append(line)
    lines.append("**Seeds** — no verdict reads seed 0 (it was used to tune the quick profile): every claim reads the "
                 "untuned seeds 3, 4, 5 of every model, and a claim with too few of them says `undecided` and why. "
                 "Each claim lists the run ids it read (`bumpdiff report --json`, field `runs`).")
    return _bullets(lines)


def _short_reason(detail: str) -> str:
    """The last sentence of a claim's detail (its reason)."""
    parts = [p.strip() for p in str(detail).split(". ") if p.strip()]
    return parts[-1].rstrip(".") if parts else ""


def threshold_flips_sentence(flips: dict) -> str:
    """`sensitivity.threshold_flips` as bullets: for each verdict, the declared thresholds that flip it (Markdown)."""
    lines = []
    for claim, changes in flips.items():
        key = next((k for k, v in verdicts.CLAIMS.items() if v == claim), None)
        name = verdicts.CLAIM_SHORT.get(key, claim)
        lines.append(f"{name}: " + ("no declared threshold in the grid flips it" if not changes
                                     else "flips at " + ", ".join(changes)))
    return _bullets(lines) if lines else "No verdicts."
