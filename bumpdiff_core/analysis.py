"""Numbers across checkpoints and runs, for the notebooks and the README: when a metric first
reaches a level, how far apart x and y cross, when the phases change (mean ± sd over seeds), the
phase boundaries of Fig. 4 and the coupling of Fig. 5. Everything here takes metrics tables; the
runs of a sweep are opened by `view.SweepView`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import metrics
from .config import RunConfig

# (name, x column, y column) of the metrics whose x/y coupling we measure
COUPLED_METRICS = [("accuracy", "accuracy_x", "accuracy_y"), ("r2 (UMAP)", "r2_x", "r2_y"),
                   ("r2 (raw)", "r2_x_raw", "r2_y_raw")]
COUPLING_LEVELS = (0.5, 0.9)
REPRESENTATION_LEVEL = 0.9   # mean raw R² that counts as "the representation is ordered"
ACCURACY_LEVEL = 0.5         # accuracy that counts as "behaviour is right"


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


def transition_summary(tables) -> TransitionSummary:
    """`tables`: {seed: metrics table} or a list of tables. Per seed: step of A->B and of B->C
    (`metrics.phase_transitions`), the step at which mean(r2_x_raw, r2_y_raw) first reaches 0.9
    and at which accuracy first reaches 0.5, and whether the representation got there strictly
    first (a representation that orders while accuracy never rises counts as first; one that
    never orders does not)."""
    items = tables.items() if isinstance(tables, dict) else enumerate(tables)
    rows = []
    for seed, table in items:
        tr = metrics.phase_transitions(table)
        raw = table[["r2_x_raw", "r2_y_raw"]].mean(axis=1)
        step_r2 = crossing_step(table, raw, REPRESENTATION_LEVEL)
        step_acc = crossing_step(table, "accuracy", ACCURACY_LEVEL)
        first = (not math.isnan(step_r2)) and (math.isnan(step_acc) or step_r2 < step_acc)
        rows.append({"seed": seed, "step_A_to_B": tr["step_A_to_B"], "step_B_to_C": tr["step_B_to_C"],
                     "step_raw_r2_0.9": step_r2, "step_accuracy_0.5": step_acc,
                     "lead_steps": step_acc - step_r2, "representation_first": first,
                     "final_accuracy": float(table["accuracy"].iloc[-1])})
    per_seed = pd.DataFrame(rows).set_index("seed")
    numeric = per_seed.drop(columns=["representation_first"])
    return TransitionSummary(per_seed, numeric.mean(), numeric.std(ddof=1))


def phase_profile(table: pd.DataFrame) -> pd.DataFrame:
    """Per phase label: how many checkpoints, their step range, and the mean bump-count fractions,
    accuracy and R² over them (what each phase's samples and representation look like)."""
    cols = ["frac_0", "frac_1", "frac_multi", "accuracy", "r2_x", "r2_y", "r2_x_raw", "r2_y_raw"]
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


def boundary_trend(bounds: pd.DataFrame) -> str:
    """How the B -> C step moves with increment (`phase_boundaries` output), in words with the
    Spearman correlation; '' when fewer than two increments reached C or the steps do not vary.
    Larger increment = sparser data."""
    reached = bounds.dropna(subset=["step_B_to_C"])
    if len(reached) < 2:
        return ""
    corr = reached[["increment", "step_B_to_C"]].corr(method="spearman").iloc[0, 1]
    if corr != corr:  # NaN: every increment reached C at the same step
        return ""
    words = "sparser data reach C later" if corr > 0 else "denser data reach C later" if corr < 0 else "no trend"
    return f"rank correlation of increment with the B → C step: {corr:+.2f} ({words})"


def phase_boundaries(tables_by_increment: dict) -> pd.DataFrame:
    """Fig. 4 in numbers: per increment, the first step of phase B and of phase C, the final
    accuracy and mean UMAP R²."""
    rows = []
    for inc in sorted(tables_by_increment):
        t = tables_by_increment[inc]
        tr = metrics.phase_transitions(t)
        last = t.iloc[-1]
        rows.append({"increment": inc, "step_A_to_B": tr["step_A_to_B"], "step_B_to_C": tr["step_B_to_C"],
                     "final_accuracy": float(last["accuracy"]),
                     "final_mean_r2": float(np.nanmean([last["r2_x"], last["r2_y"]]))})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# the choices the paper leaves open, read from the config and the constants
# ---------------------------------------------------------------------------------------------

def reconstructed_choices(config: RunConfig) -> pd.DataFrame:
    """Every choice the paper does not state, with the knob that changes it and its value here."""
    from .config import resolve_tap

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
         "matches the 7 × 7 window around its brightest pixel (to 0.01 px), which, unlike a centroid, is "
         "not pulled inwards where the image border cuts the bump off."),
        ("Accuracy rule", "metrics.TOLERANCE_PX", f"exactly one bump, |x̂ − x| ≤ {m.TOLERANCE_PX:g} and |ŷ − y| ≤ {m.TOLERANCE_PX:g} px",
         "accuracy_x / accuracy_y apply the same rule to one coordinate."),
        ("R² (the paper's measure)", "(metrics.r2_in_sample)", "linear regression from the 3D UMAP to x (y), in-sample",
         "As the paper describes it."),
        ("R² control", "(metrics.r2_cross_validated)", "leave-one-out ridge regression from the raw activations",
         "Does not depend on UMAP; an ordered 3D UMAP without it would be suspicious."),
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


# ---------------------------------------------------------------------------------------------
# the paper's claims, checked against the runs of a sweep (the book's "What reproduced" page)
# ---------------------------------------------------------------------------------------------

REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED = "reproduced", "partly", "not reproduced", "no claim to test"
ORDERED_UMAP_R2 = 0.8        # final mean UMAP R² that counts as "an ordered manifold"
UNSTRUCTURED_UMAP_R2 = 0.5   # mean UMAP R² over phase A below which it counts as "no structure"
FINAL_ACCURACY = 0.9


def _steps_text(value: float) -> str:
    return "never" if math.isnan(value) else f"{value:.0f}"


def _spacing_at(table: pd.DataFrame, step: float) -> float:
    """Checkpoint spacing just before `step` (the resolution of a crossing measured there)."""
    steps = table["step"].to_numpy(dtype=float)
    i = int(np.searchsorted(steps, step))
    return float(steps[i] - steps[i - 1]) if 0 < i < len(steps) else float(steps[1] - steps[0])


def _phase_order(table: pd.DataFrame) -> tuple[str, str]:
    labels = "".join(table["phase"])
    rank = [("ABC".index(p)) for p in labels]
    relapses = sum(1 for a, b in zip(rank, rank[1:]) if b < a)
    steps = {p: float(table.loc[table["phase"] == p, "step"].min()) if p in labels else math.nan for p in "ABC"}
    measured = (f"labels over the checkpoints: {labels}; first A, B, C at steps "
                f"{', '.join(_steps_text(steps[p]) for p in 'ABC')}")
    if any(math.isnan(steps[p]) for p in "ABC") or not steps["A"] < steps["B"] < steps["C"]:
        return measured, NOT_REPRODUCED
    if relapses:
        return measured + f"; {relapses} step(s) back to an earlier phase", PARTLY
    return measured, REPRODUCED


def _coupling_verdict(pairs: dict, col_x: str, col_y: str, name: str, level: float = 0.5) -> tuple[str, str]:
    """Do x and y cross `level` within one checkpoint spacing of each other in every imbalanced run?
    A miss says which coordinate came first: x first is the factorized prediction."""
    parts, coupled = [], []
    for (dx, dy, seed), table in sorted(pairs.items()):
        sx, sy = crossing_step(table, col_x, level), crossing_step(table, col_y, level)
        if math.isnan(sx) or math.isnan(sy):
            parts.append(f"dx {dx:g}, dy {dy:g} (seed {seed}): {name} of x or y never reached {level:g}")
            coupled.append(False)
            continue
        tol = _spacing_at(table, max(sx, sy))
        together = abs(sy - sx) <= tol
        coupled.append(together)
        first = "together" if together else ("x first" if sx < sy else "y (the sparse axis) first")
        parts.append(f"dx {dx:g}, dy {dy:g} (seed {seed}): {name} of x and y reach {level:g} at steps "
                     f"{sx:.0f} and {sy:.0f}: {first} (checkpoint spacing there {tol:.0f})")
    verdict = REPRODUCED if all(coupled) else PARTLY if any(coupled) else NOT_REPRODUCED
    return "; ".join(parts), verdict


def claim_verdicts(main: pd.DataFrame, increments: dict | None = None, pairs: dict | None = None) -> pd.DataFrame:
    """Each claim of the paper that these runs can test, what was measured, and a verdict.

    `main`: the metrics table of the default run; `increments`: {increment: table} (Fig. 4);
    `pairs`: {(dx, dy, seed): table} (Fig. 5). The phase labels come from generation behaviour
    (`metrics.phase_label`), so the testable part of each phase claim is the representation that
    goes with that behaviour; a phase's behaviour numbers are given for reference."""
    rows = []
    umap_r2 = main[["r2_x", "r2_y"]].mean(axis=1)
    raw_r2 = main[["r2_x_raw", "r2_y_raw"]].mean(axis=1)

    measured, verdict = _phase_order(main)
    rows.append(("Training passes through three phases, A → B → C (abstract, Fig. 3)", measured, verdict))

    prof = phase_profile(main)
    r2_by_phase = prof[["r2_x", "r2_y"]].mean(axis=1)
    if "A" in prof.index:
        a = prof.loc["A"]
        measured = (f"mean UMAP R² over phase A {r2_by_phase['A']:.2f}; samples: no bump {a['frac_0']:.0%}, "
                    f"several {a['frac_multi']:.0%}, one {a['frac_1']:.0%}")
        verdict = REPRODUCED if r2_by_phase["A"] < UNSTRUCTURED_UMAP_R2 else NOT_REPRODUCED
    else:
        measured, verdict = "no checkpoint was labelled A", NOT_REPRODUCED
    rows.append(("Phase A: no latent structure; no bump or several bumps", measured, verdict))

    if "B" in prof.index and "C" in prof.index:
        b = prof.loc["B"]
        measured = (f"mean UMAP R² over phase B {r2_by_phase['B']:.2f} vs phase C {r2_by_phase['C']:.2f}; "
                    f"samples: one bump {b['frac_1']:.0%}, accuracy {b['accuracy']:.2f} (2D-ness not measured)")
        verdict = REPRODUCED if r2_by_phase["B"] < r2_by_phase["C"] and r2_by_phase["B"] < ORDERED_UMAP_R2 else NOT_REPRODUCED
    else:
        measured, verdict = "phase B or C never reached", NOT_REPRODUCED
    rows.append(("Phase B: a disordered manifold; one bump in the wrong place", measured, verdict))

    final = main.iloc[-1]
    ok = (final["accuracy"] >= FINAL_ACCURACY and umap_r2.iloc[-1] >= ORDERED_UMAP_R2
          and raw_r2.iloc[-1] >= REPRESENTATION_LEVEL)
    rows.append(("Phase C: an ordered manifold; one bump in the right place",
                 f"last checkpoint (step {final['step']:.0f}): accuracy {final['accuracy']:.2f}, "
                 f"mean R² from UMAP {umap_r2.iloc[-1]:.2f}, from raw activations {raw_r2.iloc[-1]:.2f}",
                 REPRODUCED if ok else NOT_REPRODUCED))

    s = transition_summary([main]).per_seed.iloc[0]
    r, acc = s["step_raw_r2_0.9"], s["step_accuracy_0.5"]
    ordered_first = not math.isnan(r) and (math.isnan(acc) or r <= acc)  # never ordering fails the claim
    verdict = REPRODUCED if ordered_first else NOT_REPRODUCED
    rows.append(("An ordered representation is what good generation needs (abstract)",
                 f"raw R² first ≥ {REPRESENTATION_LEVEL} at step {_steps_text(r)}, accuracy first ≥ "
                 f"{ACCURACY_LEVEL} at step {_steps_text(acc)}", verdict))

    if increments:
        bounds = phase_boundaries(increments)
        reached = bounds.dropna(subset=["step_B_to_C"])
        measured = f"{len(reached)} of {len(bounds)} increments reached C"
        if len(reached):
            measured += (f", at steps {reached['step_B_to_C'].min():.0f}–{reached['step_B_to_C'].max():.0f}")
        trend = boundary_trend(bounds)
        if trend:
            measured += f"; {trend}"
        rows.append(("Fig. 4: phase diagram over increment × training steps (the caption states no trend)",
                     measured, NOT_TESTED))

    if pairs:
        rows.append(("Fig. 5: on imbalanced data x and y are learned together, not x first (accuracy)",
                     *_coupling_verdict(pairs, "accuracy_x", "accuracy_y", "accuracy")))
        rows.append(("Fig. 5: … and represented together (raw-activation R² of x and of y)",
                     *_coupling_verdict(pairs, "r2_x_raw", "r2_y_raw", "raw R²")))

    return pd.DataFrame(rows, columns=["claim", "measured here", "verdict"])


VERDICT_COLOURS = {REPRODUCED: "#d9f2d9", PARTLY: "#fff0c2", NOT_REPRODUCED: "#f8d0d0", NOT_TESTED: "#e8e8e8"}


def verdict_table(verdicts: pd.DataFrame):
    """`claim_verdicts` as a table with the verdict cells coloured (green / amber / red / grey)."""
    colour = lambda v: f"background-color: {VERDICT_COLOURS.get(v, 'white')}; font-weight: 600"  # noqa: E731
    return (verdicts.style.hide(axis="index").map(colour, subset=["verdict"])
            .set_properties(subset=["measured here"], **{"font-size": "0.9em"})
            .set_properties(**{"text-align": "left", "vertical-align": "top"}))
