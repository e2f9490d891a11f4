"""The sentences the pages print, from hand-made tables and the synthetic run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from synthetic import synthetic_view

from bumpdiff_core import analysis, pages


def test_step_text():
    assert pages.step_text(700.0) == "step 700" and pages.step_text(math.nan) == "never"
    assert pages.step_text(None) == "never"


def test_run_summary_and_phase_profile_read_the_table():
    view = synthetic_view(n=4)
    text = pages.run_summary(view.table)
    assert "Phase A → B (at least half the samples have exactly one bump): **step 20**" in text
    assert "B → C (at least half are in the right place): **step 30**" in text
    assert "At the last checkpoint (step 40): accuracy 1.00" in text
    profile = pages.phase_profile_summary(view.table)
    assert profile.splitlines()[0].startswith("- **A** (2 checkpoints, steps 0–10)")
    assert "never reached" not in profile
    assert pages.run_heading(view).startswith(f"run {view.run_id}: 16x16, increments (1, 1), seed 0")


def test_phase_profile_names_phases_never_reached():
    view = synthetic_view(n=4)
    table = view.table.assign(phase=["A"] * 5)
    assert "- never reached in this run: B, C" in pages.phase_profile_summary(table)


def test_verdict_counts():
    view = synthetic_view(n=4)
    verdicts = pd.DataFrame({"verdict": ["reproduced", "reproduced", "partly"]})
    assert pages.verdict_counts("tiny", view.config, verdicts) == \
        "Profile **tiny** (16×16, 40 steps, seed 0): 2 reproduced, 1 partly."


def test_phase_boundaries_summary():
    bounds = pd.DataFrame({"increment": [0.5, 1.0, 2.0], "step_A_to_B": [100, 100, 200],
                           "step_B_to_C": [300, 500, np.nan], "final_accuracy": [0.9, 0.8, 0.1],
                           "final_mean_r2": [0.9, 0.85, 0.2]})
    text = pages.phase_boundaries_summary(bounds, 1500)
    assert text.splitlines() == [
        "- 2 of 3 increments reached phase C within 1500 steps.",
        "- Phase C began at step 300 for increment 0.5 and at step 500 for increment 1.",
        f"- The {analysis.boundary_trend(bounds)}.",
        "- Never reached C: increments 2.",
        "- Final accuracy ranged from 0.10 to 0.90; final mean R² from 0.20 to 0.90.",
    ]


def test_coupling_summary():
    steps = [0, 100, 200, 300]
    base = {c: [0.0] * 4 for c in ["r2_x", "r2_y", "r2_x_raw", "r2_y_raw"]}
    together = pd.DataFrame({"step": steps, "accuracy_x": [0, 0.6, 1, 1], "accuracy_y": [0, 0.6, 1, 1], **base})
    x_first = pd.DataFrame({"step": steps, "accuracy_x": [0, 0.6, 1, 1], "accuracy_y": [0, 0, 0.6, 1], **base})
    text = pages.coupling_summary({(0.1, 1.0, 0): together, (0.1, 1.0, 1): x_first})
    lines = text.splitlines()
    assert lines[0] == "Checkpoint interval: 100 steps; 2 seed(s) per pair."
    assert lines[1] == "- dx = 0.1, dy = 1, accuracy: gap y − x at 50%: +50 steps ± 71; 90%: +50 steps ± 71"
    assert "r2 (raw): gap y − x at 50%: never crossed by both" in lines[2]


def test_data_sizes():
    sizes = pages.data_set_sizes(16)
    assert sizes.set_index(["dx", "dy"]).loc[(1.0, 1.0), "images"] == 256
    assert pages.data_size_sentence(16).startswith("At 16×16, increment 1 gives 256 images")


def test_appendix_texts():
    view = synthetic_view(n=4)
    assert pages.run_provenance(view) == f"run {view.run_id}: 1,234 parameters, trained on cpu in 1 s, evaluated in 2 s"
    assert pages.loss_by_phase(view.table).startswith("Loss averaged over each phase's checkpoints: A: ")
    sources = pages.algorithm_sources()
    assert "**`diffusion.epsilon_loss`**" in sources and "def epsilon_loss" in sources
