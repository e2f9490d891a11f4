"""The sentences of the efficiency page (can x and y be learned separately?), built from measured
numbers; re-exported by `pages` (kept apart so that neither module grows past a sitting). Each
takes run views (`view.RunView`), rows of `report.efficiency_row` or tables; none reads a file.
"""
from __future__ import annotations

import math

import pandas as pd

from bumpdiff_core.claims import verdicts
from bumpdiff_core.learn.latin import M50_THRESHOLD
from bumpdiff_core.measure.generalization import UNSEEN_MIN_DISTANCE

FIG5_PAIR = (0.1, 1.0)   # the imbalanced pair on which the separable model is run


def _bullets(lines) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _num(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def efficiency_table(views: dict) -> pd.DataFrame:
    """`report.efficiency_row` of each run ({label: RunView}) as a table (one row per run)."""
    from bumpdiff_core.results.tables import EFFICIENCY_COLUMNS, efficiency_row

    return pd.DataFrame([efficiency_row(v.config, v.table, v.run_id) for v in views.values()],
                        columns=EFFICIENCY_COLUMNS)


def efficiency_predictions(threshold: float = M50_THRESHOLD) -> str:
    """What result would make each reading fail, stated before the numbers (Markdown)."""
    k = verdicts.DEFAULT.together_checkpoints
    return _bullets([
        f"**Factorized** (x and y learned as two 1D problems, O(2K) examples): it fails if a model trained on "
        f"`lines` (every x and every y value seen, only 2kK − k² combinations) stays at the memoriser's level on "
        f"positions ≥ {UNSEEN_MIN_DISTANCE:g} px from every training position, and if γ in M50 ∝ K^γ (M50: "
        f"training positions at which a share {threshold:g} of the Latin-square test set is drawn right) has "
        f"an interval that excludes 1.",
        "**Coupled** (each (x, y) learned as a whole, O(K²)): it fails if unseen accuracy on `lines` is well "
        "above the memoriser with an interval that excludes it, or if γ's interval excludes 2.",
        f"**The Fig. 5 statistic as a test**: it can tell the two apart only if a model that *can* factorize "
        f"(the separable model) reads differently from the global one (x and y more than {k} checkpoint(s) "
        f"apart). If both read 'together', the statistic cannot distinguish the hypotheses.",
    ])


def _iv(acc, low, high) -> str:
    if not math.isfinite(acc):
        return "not scored (no unseen position)"
    return f"{acc:.2f} [{low:.2f}, {high:.2f}]" if math.isfinite(low) and math.isfinite(high) else f"{acc:.2f}"


def efficiency_summary(table: pd.DataFrame) -> str:
    """One line per run: positions, seen accuracy, unseen accuracy with its Wilson interval, the
    memoriser on the same positions, and whether the model beats it (Markdown)."""
    if table.empty:
        return "This sweep has no efficiency runs."
    lines = []
    for r in table.to_dict("records"):
        acc, low, high, memo = (_num(r[c]) for c in ("accuracy_unseen", "accuracy_unseen_low",
                                                      "accuracy_unseen_high", "memoriser_unseen"))
        if not math.isfinite(acc):
            verdict = ""
        elif math.isfinite(low) and math.isfinite(memo) and low > memo:
            verdict = "; above the memoriser (its interval excludes it)"
        elif math.isfinite(high) and math.isfinite(memo) and high < memo:
            verdict = "; below the memoriser"
        else:
            verdict = "; not distinguishable from the memoriser"
        n = _num(r["n_unseen"])
        lines.append(f"**{r['label']}** ({r['positions']} training positions, step {_num(r['step']):.0f}): seen "
                     f"{_num(r['accuracy_seen']):.2f}; unseen {_iv(acc, low, high)}"
                     + (f" on {n:.0f} positions" if math.isfinite(n) and n > 0 else "")
                     + (f"; memoriser {memo:.2f}" if math.isfinite(memo) else "") + verdict)
    return _bullets(lines)


def separable_vs_global(table: pd.DataFrame) -> str:
    """Per design that has both models: unseen accuracy of the separable against the global model,
    and whether their Wilson intervals overlap (Markdown)."""
    lines = []
    keyed = {}
    for r in table.to_dict("records"):  # per design and seed (the controls of a run are of the same seed)
        seed = r.get("seed")
        design = r["label"].split(" · ")[0] + (f", seed {seed}" if seed not in (None, 0) else "")
        model = r["conditioning"] + (" + coord" if r.get("coord_channels") is True else "")
        keyed.setdefault(design, {})[model] = r
    for design, models in keyed.items():
        if not {"global", "separable"} <= set(models):
            continue
        g, s = models["global"], models["separable"]
        ga, sa = _num(g["accuracy_unseen"]), _num(s["accuracy_unseen"])
        if not (math.isfinite(ga) and math.isfinite(sa)):
            lines.append(f"{design}: unseen accuracy not scored for both models")
            continue
        apart = _num(s["accuracy_unseen_low"]) > _num(g["accuracy_unseen_high"]) or \
            _num(g["accuracy_unseen_low"]) > _num(s["accuracy_unseen_high"])
        word = ("higher" if sa > ga else "lower" if sa < ga else "equal") if apart else "within the other's interval"
        lines.append(f"{design}: separable {_iv(sa, _num(s['accuracy_unseen_low']), _num(s['accuracy_unseen_high']))} "
                     f"vs global {_iv(ga, _num(g['accuracy_unseen_low']), _num(g['accuracy_unseen_high']))}: "
                     f"separable {word}" + ("" if apart else " (the intervals overlap: no difference shown)"))
    return _bullets(lines) if lines else "No design was run with both models."


def fig5_views(efficiency: dict, pairs: dict, pair=FIG5_PAIR):
    """(separable view, global view) of the Fig. 5 pair `pair` = (dx, dy): the separable model
    among the efficiency runs, the global one among the sweep's pair runs (lowest seed); None
    for a model without such a run. `efficiency`: {label: view}; `pairs`: {(dx, dy, seed): view}."""
    sep = next((v for v in efficiency.values() if v.config.conditioning == "separable" and v.config.design == "grid"
                and (v.config.increment_x, v.config.increment_y) == tuple(pair)), None)
    glob = [pairs[k] for k in sorted(pairs) if (k[0], k[1]) == tuple(pair) and pairs[k].config.conditioning == "global"]
    return sep, (glob[0] if glob else None)


def _coupling_row(table: pd.DataFrame, pair) -> dict:
    """One run through the Fig. 5 statistic (`verdicts.coupling_reading`, the claim's own code):
    verdict reproduced = together, not reproduced = one axis first; detail its reading."""
    from bumpdiff_core.claims.controls import _reading_text

    r = verdicts.coupling_reading(table, verdicts.DEFAULT)
    verdict = {verdicts.PASS: verdicts.REPRODUCED, verdicts.FAIL: verdicts.NOT_REPRODUCED}.get(r["reading"], verdicts.UNDECIDED)
    return {"verdict": verdict, "detail": f"dx {pair[0]:g}, dy {pair[1]:g}: {_reading_text(r)}"}


def fig5_control(separable_table, global_table, pair=FIG5_PAIR) -> str:
    """The Fig. 5 coupling statistic (`verdicts`, the same code as the Fig. 5 claim) on the
    separable and on the global model at dx, dy = `pair`, and what the pair of readings means
    (Markdown). 'together' = the claim's `reproduced`."""
    if separable_table is None or global_table is None:
        missing = [n for n, t in (("separable", separable_table), ("global", global_table)) if t is None]
        return f"The Fig. 5 control needs both models at dx = {pair[0]:g}, dy = {pair[1]:g}; missing: {', '.join(missing)}."
    rows = {"separable": _coupling_row(separable_table, pair), "global": _coupling_row(global_table, pair)}
    reads = {m: ("together" if r["verdict"] == verdicts.REPRODUCED else
                 "apart" if r["verdict"] == verdicts.NOT_REPRODUCED else r["verdict"]) for m, r in rows.items()}
    lines = [f"**{m}** model: reads **{reads[m]}**. {rows[m]['detail']}" for m in ("separable", "global")]
    if reads["separable"] == reads["global"] == "together":
        lines.append("Both read 'together': on these runs the Fig. 5 statistic **cannot tell the hypotheses apart** "
                     "(a model built to factorize reads as coupled too), so 'together' on the global model is no "
                     "evidence of coupling.")
    elif reads["separable"] == "apart" and reads["global"] == "together":
        lines.append("The separable model reads 'apart' and the global one 'together': the statistic can detect "
                     "factorized learning, and the global model does not show it.")
    else:
        lines.append(f"Separable: {reads['separable']}; global: {reads['global']}. The statistic does not give the "
                     "clean contrast a positive control needs; read both rows above.")
    return _bullets(lines)


def fig5_control_of(runs, pair=FIG5_PAIR) -> str:
    """`fig5_control` for a `view.SweepView`: its separable control run and global pair run."""
    from bumpdiff_core.sweeps.definitions import design_label

    controls = {design_label(s.config): runs.view(s) for s in runs.sweep.control_runs()}
    separable, global_ = fig5_views(controls, runs.pairs(), pair)
    return fig5_control(None if separable is None else separable.table, None if global_ is None else global_.table, pair)


def compose_sentence(judgement) -> str:
    """The `lines` claim and the Fig. 5 claim with their positive controls, in two bullets (Markdown)."""
    rows = judgement.table.set_index("claim")
    return _bullets([f"**{rows.loc[verdicts.CLAIMS[k], 'verdict']}** — {verdicts.CLAIMS[k]}: "
                     f"{rows.loc[verdicts.CLAIMS[k], 'detail']}" for k in ("compose", "fig5_coupling")])
