"""The sentences and small tables the book's pages print, built from measured numbers.

A notebook cell calls one of these and shows the result (`IPython.display.Markdown(text)`), so the
wording is tested here rather than assembled in cells. Each takes a `view.RunView`, metrics tables
or a config; none reads a file.
"""
from __future__ import annotations

import math

import pandas as pd

from . import analysis


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
    s = analysis.transition_summary([table]).per_seed.iloc[0]
    final = table.iloc[-1]
    if math.isnan(s["step_raw_r2_0.9"]):
        order = "the representation never ordered that far in this run"
    else:
        order = f"the representation ordered {'before' if s['representation_first'] else 'not before'} the behaviour"
    return _bullets([
        f"Phase A → B (at least half the samples have exactly one bump): **{step_text(s['step_A_to_B'])}**; "
        f"B → C (at least half are in the right place): **{step_text(s['step_B_to_C'])}**.",
        f"The raw-activation R² (mean of x and y) first reaches {analysis.REPRESENTATION_LEVEL}: "
        f"**{step_text(s['step_raw_r2_0.9'])}**; accuracy first reaches {analysis.ACCURACY_LEVEL}: "
        f"**{step_text(s['step_accuracy_0.5'])}**; {order}.",
        f"At the last checkpoint (step {final['step']:.0f}): accuracy {final['accuracy']:.2f}, one bump in "
        f"{final['frac_1']:.0%} of samples, R² from UMAP x {final['r2_x']:.2f} / y {final['r2_y']:.2f}, "
        f"from raw activations x {final['r2_x_raw']:.2f} / y {final['r2_y_raw']:.2f}.",
    ])


# --- findings ----------------------------------------------------------------------------------------

def verdict_counts(profile: str, config, verdicts: pd.DataFrame) -> str:
    """'Profile **quick** (16×16, 1500 steps, seed 0): 5 reproduced, 1 partly, ...'."""
    counts = verdicts["verdict"].value_counts()
    return (f"Profile **{profile}** ({config.image_size}×{config.image_size}, {config.steps} steps, "
            f"seed {config.seed}): " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".")


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
    s = analysis.transition_summary([table]).per_seed.iloc[0]
    lines.append(f"the raw representation reached R² {analysis.REPRESENTATION_LEVEL}: "
                 f"{step_text(s['step_raw_r2_0.9'])}; accuracy reached {analysis.ACCURACY_LEVEL}: "
                 f"{step_text(s['step_accuracy_0.5'])}; ordered representation "
                 f"{'first' if s['representation_first'] else 'not first'}")
    return _bullets(lines)


# --- phase diagram -----------------------------------------------------------------------------------

def phase_boundaries_summary(bounds: pd.DataFrame, steps: int) -> str:
    """How many increments reached C within `steps` training steps, where C began for the densest
    and the sparsest of them, the trend, and the range of final scores (Markdown)."""
    reached = bounds.dropna(subset=["step_B_to_C"])
    lines = [f"{len(reached)} of {len(bounds)} increments reached phase C within {steps} steps."]
    if len(reached) >= 2:
        dense, sparse = reached.iloc[0], reached.iloc[-1]
        lines.append(f"Phase C began at step {dense['step_B_to_C']:.0f} for increment {dense['increment']:g} "
                     f"and at step {sparse['step_B_to_C']:.0f} for increment {sparse['increment']:g}.")
        trend = analysis.boundary_trend(bounds)
        if trend:
            lines.append(f"The {trend}.")
    never = bounds[bounds["step_B_to_C"].isna()]["increment"].tolist()
    if never:
        lines.append(f"Never reached C: increments {', '.join(f'{v:g}' for v in never)}.")
    lines.append(f"Final accuracy ranged from {bounds['final_accuracy'].min():.2f} to "
                 f"{bounds['final_accuracy'].max():.2f}; final mean R² from {bounds['final_mean_r2'].min():.2f} "
                 f"to {bounds['final_mean_r2'].max():.2f}.")
    return _bullets(lines)


# --- imbalanced --------------------------------------------------------------------------------------

def coupling_summary(tables_by_key: dict) -> str:
    """For each (dx, dy) and metric, the step gap y − x at each level (mean ± sd over seeds),
    after the checkpoint interval that is its resolution (Markdown). `tables_by_key`:
    {(dx, dy, seed): metrics table}."""
    gaps = analysis.coupling_table(tables_by_key)
    steps = next(iter(tables_by_key.values()))["step"].to_numpy()
    interval = int(min(b - a for a, b in zip(steps, steps[1:])))
    n_seeds = len({seed for _, _, seed in tables_by_key})
    lines = []
    for (dx, dy), group in gaps.groupby(["dx", "dy"]):
        for metric in ["accuracy", "r2 (raw)", "r2 (UMAP)"]:
            parts = []
            for level, h in group[group["metric"] == metric].groupby("level"):
                vals = h["gap_y_minus_x"].dropna()
                parts.append(f"{level:.0%}: " + ("never crossed by both" if vals.empty else
                                                f"{vals.mean():+.0f} steps" + (f" ± {vals.std():.0f}" if len(vals) > 1 else "")))
            lines.append(f"dx = {dx:g}, dy = {dy:g}, {metric}: gap y − x at " + "; ".join(parts))
    return f"Checkpoint interval: {interval} steps; {n_seeds} seed(s) per pair.\n" + _bullets(lines)


# --- data --------------------------------------------------------------------------------------------

DATA_SPACINGS = [(d, d) for d in (1.0, 0.75, 0.5, 0.25, 0.2, 0.1)] + [(0.1, 1.0), (0.1, 0.5)]


def data_set_sizes(image_size: int, spacings=DATA_SPACINGS) -> pd.DataFrame:
    """Training-set size (number of centres) per spacing (dx, dy) at `image_size`."""
    from .data import centre_grid

    return pd.DataFrame([{"dx": dx, "dy": dy, "images": len(centre_grid(image_size, dx, dy))} for dx, dy in spacings])


def data_size_sentence(image_size: int) -> str:
    from .data import centre_grid

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

    from . import diffusion
    from .train import Trainer

    parts = [("diffusion.epsilon_loss", diffusion.epsilon_loss), ("train.Trainer.train", Trainer.train)]
    parts += [(f"diffusion.{name}", getattr(diffusion, name))
              for name in ("ddpm_step", "ddim_step", "sample_loop", "ddpm_sample", "ddim_sample")
              if hasattr(diffusion, name)]
    return "\n\n".join(f"**`{name}`**\n\n```python\n{inspect.getsource(obj)}```" for name, obj in parts)
