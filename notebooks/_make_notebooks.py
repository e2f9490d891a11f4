"""Write the six notebooks of the book (sources, no outputs) from the cells below.

    .venv/bin/python notebooks/_make_notebooks.py

Edit the cells here, not the .ipynb files, so the notebooks stay thin and alike: a plain-words
introduction, a cell that picks plotly's renderer (its output carries plotly.js: keep it), the
papermill `parameters` cell, a few library calls, figures, and an interpretation printed from
numbers computed in the notebook.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
KERNEL = {"name": "bumpdiff", "display_name": "bumpdiff (Python 3)", "language": "python"}

def renderer():
    return new_code_cell(
        "# Plotly figures must name their renderer: the default output type vanishes from the book.\n"
        "from bumpdiff_core.figures import use_book_renderer\n"
        "\n"
        "use_book_renderer()",
        metadata={"tags": ["remove-input"]})


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags=()):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = list(tags)
    return cell


def parameters(text: str):
    return code(text, tags=["parameters"])


NOTEBOOKS: dict[str, list] = {}

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["train_and_evaluate"] = [
    md("""
# Train and evaluate one configuration

A small diffusion model learns to draw a bright spot (a Gaussian "bump") at the position (x, y) it
is asked for. This page trains one such model, or reuses it if it was trained before, and then
checks every saved checkpoint: do the samples contain exactly one bump, is it in the right place,
and can x and y be read off the network's internal representation?

The coloured bands mark the automatic phase label of each checkpoint: **A** (no structure: no
bump or several), **B** (one bump, wrong place), **C** (one bump, right place).
"""),
    renderer(),
    parameters("""
profile = "quick"   # a profile of bumpdiff_core.config.PROFILES
overrides = {}      # RunConfig fields to change, e.g. {"seed": 1, "increment_x": 0.5}
threads = 1         # CPU threads for training and evaluation
"""),
    code("""
from IPython.display import Markdown, display

from bumpdiff_core import analysis, metrics
from bumpdiff_core.config import profile_config
from bumpdiff_core.evaluate import load_metrics
from bumpdiff_core.figures import metric_curves
from bumpdiff_core.pipeline import ensure_run

config = profile_config(profile, overrides)
run = ensure_run(config, threads=threads, progress=False)  # reuses a finished run
table = load_metrics(run)
print(f"run {config.run_id}: {config.image_size}x{config.image_size}, increments "
      f"({config.increment_x:g}, {config.increment_y:g}), seed {config.seed}, {config.steps} steps")
print(f"stored in {run.path}")
"""),
    code("""
metric_curves(table, title=f"{profile} profile, run {config.run_id}")
"""),
    md("""
## What the curves say

The numbers below are read from this run's checkpoints. The order of events that the paper
describes is: the representation becomes ordered (R² rises), then behaviour follows (accuracy
rises), and the training loss shows none of it.
"""),
    code("""
summary = analysis.transition_summary({config.seed: table})
s = summary.per_seed.iloc[0]
final = table.iloc[-1]
fmt = lambda v: "never" if v != v else f"step {v:.0f}"  # NaN: never reached
if s["step_raw_r2_0.9"] != s["step_raw_r2_0.9"]:
    order = "the representation never ordered that far in this run"
else:
    order = f"the representation ordered {'before' if s['representation_first'] else 'not before'} the behaviour"
display(Markdown(f\"\"\"
- Phase A → B (at least half the samples have exactly one bump): **{fmt(s['step_A_to_B'])}**;
  B → C (at least half are in the right place): **{fmt(s['step_B_to_C'])}**.
- The raw-activation R² (mean of x and y) first reaches {analysis.REPRESENTATION_LEVEL}:
  **{fmt(s['step_raw_r2_0.9'])}**; accuracy first reaches {analysis.ACCURACY_LEVEL}:
  **{fmt(s['step_accuracy_0.5'])}**; {order}.
- At the last checkpoint (step {final['step']:.0f}): accuracy {final['accuracy']:.2f},
  one bump in {final['frac_1']:.0%} of samples, R² from UMAP x {final['r2_x']:.2f} / y {final['r2_y']:.2f},
  from raw activations x {final['r2_x_raw']:.2f} / y {final['r2_y_raw']:.2f}.
\"\"\"))
analysis.coupling(table)
"""),
    code("""
table.round(3)
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["findings"] = [
    md("""
# What reproduced

Each claim of the paper that the runs of this book can test, what was measured here, and a
verdict computed from those numbers when the book was built (nothing on this page is typed in by
hand). The phase labels come from what the model draws, so for phases A and B the claim under test
is the *representation* that goes with that behaviour. The thresholds are constants in
`bumpdiff_core.analysis`: an ordered manifold has mean UMAP R² ≥ 0.8, phase A counts as "no
structure" below 0.5, final accuracy must reach 0.9, and "x and y together" means their accuracies
cross 50 % within one checkpoint spacing of each other.
"""),
    parameters("""
profile = "quick"
overrides = {}
increments = [0.1, 0.2, 0.25, 0.5, 0.75, 1.0]
pairs = [[0.1, 1.0], [0.1, 0.5]]
seeds = [0]
"""),
    code("""
from IPython.display import Markdown, display

from bumpdiff_core import analysis
from bumpdiff_core.config import profile_config
from bumpdiff_core.evaluate import load_metrics
from bumpdiff_core.pipeline import completed_run

config = profile_config(profile, overrides)
main = load_metrics(completed_run(config))  # never trains: the sweep computed every run
increment_tables = analysis.completed_tables(analysis.runs_for_increments(profile, increments, overrides))
pair_tables = analysis.completed_tables(analysis.runs_for_pairs(profile, pairs, seeds, overrides))
verdicts = analysis.claim_verdicts(main, increment_tables, pair_tables)
counts = verdicts["verdict"].value_counts()
display(Markdown(f"Profile **{profile}** ({config.image_size}×{config.image_size}, {config.steps} steps, "
                 f"seed {config.seed}): " + ", ".join(f"{n} {v}" for v, n in counts.items()) + "."))
"""),
    code("""
analysis.verdict_table(verdicts)
"""),
    md("""
## What this page cannot tell

- The paper labels phases by eye from UMAP pictures; here a rule labels them from the samples.
  Whether a phase-B manifold is *two-dimensional* is not measured; look at the 3D views on
  {doc}`phases`.
- The paper's runs are 32×32 with a 23 M-parameter UNet; this book's default is 16×16 with
  0.19 M parameters so that it builds on a laptop CPU. The `cpu32` profile checks the paper's
  image size (see {doc}`../reproduce`).
- One seed per configuration: the README gives the transition steps over three seeds.
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["phases"] = [
    md("""
# The three phases (Fig. 3)

The paper reports that, as training goes on, the network's internal picture of the positions goes
through three stages, and that each stage goes with a recognisable way of drawing:

- **A, no structure**: the representation is a cloud; samples show no bump, or several.
- **B, a disordered sheet**: the representation becomes two-dimensional but scrambled; samples
  show one clean bump, in the wrong place.
- **C, an ordered sheet**: the sheet unfolds so that position in it follows (x, y); the bump lands
  where it was asked for.

The representation is the output of the UNet block called "layer 4", averaged over the sampling
pass, reduced to 3D with UMAP and coloured by the true x. Red dots mark the requested position.
"""),
    renderer(),
    parameters("""
profile = "quick"
overrides = {}
"""),
    code("""
from IPython.display import Markdown, display

from bumpdiff_core import analysis, figures
from bumpdiff_core.config import profile_config
from bumpdiff_core.evaluate import load_metrics
from bumpdiff_core.pipeline import completed_run

config = profile_config(profile, overrides)
run = completed_run(config)  # never trains: the sweep computed it
table = load_metrics(run)
firsts = figures.first_step_of_phase(table)
firsts
"""),
    md("""
## One checkpoint per phase

The first checkpoint that the automatic rule labels A, B and C (top: 25 samples; bottom: the 3D
UMAP of the representation at that checkpoint).
"""),
    code("""
figures.phase_panels(run)
"""),
    md("""
## Every checkpoint

Drag the slider (or press ▶) to watch the sheet form. The manifold frames are rotated onto each
other (Procrustes), so what changes between frames is the shape, not UMAP's arbitrary orientation.
The buttons switch the colouring between the true x and the true y.
"""),
    code("""
figures.manifold_scrubber(run)
"""),
    code("""
figures.sample_grid_scrubber(run)
"""),
    md("""
## What each phase looks like, in numbers

Means over the checkpoints that carry each label. Phase A should be dominated by samples with no
bump or several bumps, phase B by single bumps in the wrong place, phase C by correct ones.
"""),
    code("""
profile_table = analysis.phase_profile(table)
summary = analysis.transition_summary({config.seed: table}).per_seed.iloc[0]
lines = []
for phase, row in profile_table.iterrows():
    lines.append(f"- **{phase}** ({row['checkpoints']:.0f} checkpoints, steps {row['first_step']:.0f}–"
                 f"{row['last_step']:.0f}): no bump {row['frac_0']:.0%}, one bump {row['frac_1']:.0%}, "
                 f"several {row['frac_multi']:.0%}; accuracy {row['accuracy']:.2f}; "
                 f"R² (UMAP) x {row['r2_x']:.2f}, y {row['r2_y']:.2f}")
missing = [p for p in "ABC" if p not in profile_table.index]
if missing:
    lines.append(f"- never reached in this run: {', '.join(missing)}")
fmt = lambda v: "never" if v != v else f"step {v:.0f}"  # NaN: never reached
lines.append(f"- the raw representation reached R² {analysis.REPRESENTATION_LEVEL}: "
             f"{fmt(summary['step_raw_r2_0.9'])}; accuracy reached {analysis.ACCURACY_LEVEL}: "
             f"{fmt(summary['step_accuracy_0.5'])}; ordered representation "
             f"{'first' if summary['representation_first'] else 'not first'}")
display(Markdown("\\n".join(lines)))
profile_table.round(3)
"""),
    md("""
## The live version

In a running Jupyter kernel, `Scrubber(run)` (from `bumpdiff_core.widgets`) shows the same
checkpoints as an ipywidgets slider driving two live plotly figures. A static page cannot run
Python, so in the book this cell shows a note instead.
"""),
    code("""
from bumpdiff_core.widgets import live_scrubber

live_scrubber(run)
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["phase_diagram"] = [
    md("""
# Phase diagram: data density × training time (Fig. 4)

The same model is trained on data sets of different density. The *increment* is the spacing of
the bump centres on the grid: 1.0 means one training image per pixel position, 0.1 means a
hundred times more images, placed ten times more finely in each direction. Every model trains for
the same number of steps. Left: accuracy; right: how well x and y can be read linearly from the 3D
UMAP of the representation. The letter in each cell is the automatic phase label.
"""),
    renderer(),
    parameters("""
profile = "quick"
increments = [0.1, 0.2, 0.25, 0.5, 0.75, 1.0]
overrides = {}
"""),
    code("""
from IPython.display import Markdown, display

from bumpdiff_core import analysis, figures

configs = analysis.runs_for_increments(profile, increments, overrides)
tables = analysis.completed_tables(configs)  # never trains: the sweep computed them
figures.phase_diagram(tables)
"""),
    md("""
## Where the phase boundaries lie

For each increment: the first checkpoint labelled B (one clean bump) and C (right place), and the
scores at the last checkpoint.
"""),
    code("""
bounds = analysis.phase_boundaries(tables)
reached = bounds.dropna(subset=["step_B_to_C"])
lines = [f"- {len(reached)} of {len(bounds)} increments reached phase C within "
         f"{configs[increments[0]].steps} steps."]
if len(reached) >= 2:
    dense, sparse = reached.iloc[0], reached.iloc[-1]
    lines.append(f"- Phase C began at step {dense['step_B_to_C']:.0f} for increment {dense['increment']:g} "
                 f"and at step {sparse['step_B_to_C']:.0f} for increment {sparse['increment']:g}.")
    trend = analysis.boundary_trend(bounds)
    if trend:
        lines.append(f"- The {trend}.")
never = bounds[bounds["step_B_to_C"].isna()]["increment"].tolist()
if never:
    lines.append(f"- Never reached C: increments {', '.join(f'{v:g}' for v in never)}.")
lines.append(f"- Final accuracy ranged from {bounds['final_accuracy'].min():.2f} to "
             f"{bounds['final_accuracy'].max():.2f}; final mean R² from {bounds['final_mean_r2'].min():.2f} "
             f"to {bounds['final_mean_r2'].max():.2f}.")
display(Markdown("\\n".join(lines)))
bounds.round(3)
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["imbalanced"] = [
    md("""
# Imbalanced data: are x and y learned separately? (Fig. 5)

If a network could learn x and y as two separate one-dimensional problems ("factorized"), then on
data that is dense in x (spacing dx = 0.1) but sparse in y (dy = 1.0 or 0.5) it should learn x
first and y later. The paper finds instead that x and y are learned *together* ("coupled"). Below,
blue lines are x and magenta dashed lines are y; the table gives the step gap between y and x
crossing 50 % and 90 % (positive: x first).
"""),
    renderer(),
    parameters("""
profile = "quick"
pairs = [[0.1, 1.0], [0.1, 0.5]]   # (dx, dy) of each data set
seeds = [0]
overrides = {}
"""),
    code("""
from IPython.display import Markdown, display

from bumpdiff_core import analysis, figures
from bumpdiff_core.config import checkpoint_steps

configs = analysis.runs_for_pairs(profile, pairs, seeds, overrides)
tables = analysis.completed_tables(configs)  # never trains: the sweep computed them
figures.imbalanced_curves(analysis.group_by_pair(tables))
"""),
    md("""
## How coupled: the step gaps

One checkpoint interval is the resolution of these gaps: a gap of zero or one interval means x
and y crossed the level at the same time, as far as the checkpoints can tell. A negative gap means
y, the *sparse* axis, got there first: the opposite of what a factorized learner would do. The
UMAP R² of x can stay low on these data sets even when x is learned (a likely reason, not
verified here: the evaluation labels take only a few distinct y values, UMAP may cluster by them,
and a linear read-out of x from the 3D embedding then fails); the raw-activation R² does not depend
on UMAP, so read the coupling from accuracy and the raw R².
"""),
    code("""
gaps = analysis.coupling_table(tables)
steps = checkpoint_steps(next(iter(configs.values())))
interval = min(b - a for a, b in zip(steps, steps[1:]))
lines = [f"Checkpoint interval: {interval} steps; {len(seeds)} seed(s) per pair."]
for (dx, dy), group in gaps.groupby(["dx", "dy"]):
    for metric in ["accuracy", "r2 (raw)", "r2 (UMAP)"]:
        g = group[group["metric"] == metric]
        parts = []
        for level, h in g.groupby("level"):
            vals = h["gap_y_minus_x"].dropna()
            parts.append(f"{level:.0%}: " + ("never crossed by both" if vals.empty else
                                            f"{vals.mean():+.0f} steps" + (f" ± {vals.std():.0f}" if len(vals) > 1 else "")))
        lines.append(f"- dx = {dx:g}, dy = {dy:g}, {metric}: gap y − x at " + "; ".join(parts))
display(Markdown("\\n".join(lines)))
gaps.round(3)
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["data"] = [
    md("""
# The data (Figs. 1 and 2)

Every training image is a single bright, round spot: a Gaussian bump of width σ centred at a
position (x, y), measured in pixels, x along columns and y down the rows. The model is told
(x, y) and must draw the spot there.

A bump can be built in two ways. *Factorized*: multiply an oval that only pins down x by an oval
that only pins down y; a model that worked this way would learn x and y separately, from about 2K
examples for K positions per axis. *Coupled*: learn each bump as a whole, which needs about K²
examples.
"""),
    renderer(),
    parameters("""
profile = "quick"
"""),
    code("""
from IPython.display import Markdown, display
import pandas as pd

from bumpdiff_core import figures
from bumpdiff_core.config import profile_config
from bumpdiff_core.data import centre_grid

config = profile_config(profile)
figures.factorized_vs_coupled(config.image_size, config.sigma)
"""),
    code("""
figures.example_images(config)
"""),
    md("""
## How big the data sets are

The centres tile the canvas on a grid with spacing dx along x and dy along y. The sizes below are
computed for this profile's image size.
"""),
    code("""
N = config.image_size
spacings = [(d, d) for d in (1.0, 0.75, 0.5, 0.25, 0.2, 0.1)] + [(0.1, 1.0), (0.1, 0.5)]
sizes = pd.DataFrame([{"dx": dx, "dy": dy, "images": len(centre_grid(N, dx, dy))} for dx, dy in spacings])
display(Markdown(f"At {N}×{N}, increment 1 gives {len(centre_grid(N, 1.0, 1.0)):,} images and "
                 f"increment 0.1 gives {len(centre_grid(N, 0.1, 0.1)):,}."))
sizes
"""),
]

# ---------------------------------------------------------------------------------------------
NOTEBOOKS["appendix"] = [
    md("""
# Appendix: how the measurements are made

Details behind the other pages: which layer carries the position, how the loss behaves, what the
failures of each phase look like, the exact training and sampling code that produced these runs,
and every choice the paper leaves open, with the setting that changes it.
"""),
    renderer(),
    parameters("""
profile = "quick"
overrides = {}
"""),
    code("""
import inspect
import json

from IPython.display import Markdown, display

from bumpdiff_core import analysis, diffusion, figures
from bumpdiff_core.config import profile_config
from bumpdiff_core.evaluate import load_metrics
from bumpdiff_core.pipeline import completed_run
from bumpdiff_core.train import Trainer

config = profile_config(profile, overrides)
run = completed_run(config)  # never trains: the sweep computed it
table = load_metrics(run)
meta = json.loads((run.path / "meta.json").read_text())
print(f"run {config.run_id}: {meta.get('parameters', '?'):,} parameters, trained on {meta.get('device')} "
      f"in {meta.get('train_seconds', float('nan')):.0f} s, evaluated in {meta.get('evaluate_seconds', float('nan')):.0f} s")
"""),
    md("""
## Which layer knows the position?

Cross-validated R² of a linear read-out of x and y from each UNet block's raw activations, at the
last checkpoint. The highlighted block is the one the other pages call "the representation".
"""),
    code("""
figures.layer_r2_profile(run)
"""),
    md("""
## The loss does not show the phases

The training loss falls smoothly across all three phases (bands); the phases are visible only in
what the model draws and in its representation.
"""),
    code("""
figures.loss_curves(run)
"""),
    code("""
bands = analysis.phase_profile(table)
display(Markdown("Loss averaged over each phase's checkpoints: " + ", ".join(
    f"{p}: {table.loc[table['phase'] == p, 'loss'].mean():.4f}" for p in bands.index) + "."))
"""),
    md("""
## Failure modes by phase

A few samples from the middle checkpoint of each phase, failures first.
"""),
    code("""
figures.failure_gallery(run)
"""),
    md("""
## The algorithms as run

The training loss (Algorithm 1 of Ho et al. 2020), the training step that calls it, the
reference ancestral sampler (Algorithm 2) and the deterministic strided sampler used for
evaluation, printed from the installed code.
"""),
    code("""
train_loop = inspect.getsource(Trainer.train)
for name, source in [("diffusion.epsilon_loss", inspect.getsource(diffusion.epsilon_loss)),
                     ("train.Trainer.train", train_loop),
                     ("diffusion.ddpm_sample", inspect.getsource(diffusion.ddpm_sample)),
                     ("diffusion.ddim_sample", inspect.getsource(diffusion.ddim_sample))]:
    display(Markdown(f"**`{name}`**\\n\\n```python\\n{source}```"))
"""),
    md("""
## Choices the paper leaves open

The paper's methods are not public. Each row is a reconstruction: what we chose, the setting that
changes it (a `RunConfig` field for `bumpdiff train --set field=value`, or a constant in
`bumpdiff_core.metrics`), and its value in this run.
"""),
    code("""
analysis.reconstructed_choices(config).style.hide(axis="index")
"""),
]


def build(name: str, cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = {"name": "python"}
    for i, cell in enumerate(nb.cells):  # stable ids keep diffs small
        cell["id"] = f"{name[:12]}-{i:02d}"
    nbformat.validate(nb)
    return nb


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nbformat.write(build(name, cells), HERE / f"{name}.ipynb")
        print(f"wrote notebooks/{name}.ipynb")


if __name__ == "__main__":
    main()
