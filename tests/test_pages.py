"""The sentences the pages print, from hand-made tables and the synthetic run."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
from synthetic import synthetic_view

from bumpdiff_core.claims import analysis, verdicts
from bumpdiff_core.present import pages


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


def test_phase_boundaries_summary():
    bounds = pd.DataFrame({"increment": [0.5, 1.0, 2.0], "run": [0, 0, 0], "step_A_to_B": [100, 100, 200],
                           "step_B_to_C": [300, 500, np.nan], "final_accuracy": [0.9, 0.8, 0.1],
                           "final_mean_r2": [0.9, 0.85, 0.2]})
    trend = {"value": 0.5, "detail": "Spearman rho ... no trend detectable"}
    text = pages.phase_boundaries_summary(bounds, 1500, trend)
    assert text.splitlines() == [
        "- 2 of 3 increments reached phase C within 1500 steps.",
        "- Phase C began at step 300 for increment 0.5 and at step 500 for increment 1.",
        "- Trend: Spearman rho ... no trend detectable.",
        "- Never reached C: increments 2.",
        "- Final accuracy ranged from 0.10 to 0.90; final mean R² from 0.20 to 0.90.",
    ]
    seeds = pd.concat([bounds, bounds.assign(run=1, step_B_to_C=[500, 700, np.nan])], ignore_index=True)
    text = pages.phase_boundaries_summary(seeds, 1500)
    assert text.splitlines()[0] == "- 4 of 6 runs (increment × seed) reached phase C within 1500 steps."
    assert "at step 400 for increment 0.5 and at step 600 for increment 1 (mean over seeds)" in text
    assert "Trend" not in text


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


def _seeds(n=3):
    t = synthetic_view(n=4).table
    return {s: t for s in range(3, 3 + n)} | {0: t}


def test_seeds_sentence_names_used_and_tuned_seeds():
    tables = _seeds()
    j = verdicts.judge(tables)
    text = pages.seeds_sentence(j, "quick")
    assert "seed(s) **3, 4, 5** (3 run(s))" in text and "tuned while looking at seeds 0, 1, 2" in text
    assert "seed(s) 0 are left out" in text and text.rstrip().endswith(".")
    only_tuned = pages.seeds_sentence(verdicts.judge({0: tables[0]}), "quick")
    assert "no untuned seed was available" in only_tuned


def test_thresholds_sentence_reads_the_code():
    t = verdicts.Thresholds(accuracy_level=0.6, r2_level=0.85)
    text = pages.thresholds_sentence(t)
    assert "≥ 0.6" in text and "≥ 0.85" in text and "≥ 0.5;" not in text.split("phase A")[0]


def test_seeds_display_and_summary_one_or_many_seeds():
    tables = _seeds()
    j = verdicts.judge(tables)
    seeds = analysis.seed_table(tables)
    shown = pages.seeds_display(seeds, j)
    assert list(shown["seed"]) == ["3", "4", "5", "0 (tuned, not judged)", "mean of 4 [t interval]"]
    assert shown.iloc[0]["B → C"] == "30" and shown.iloc[0]["final accuracy [Wilson]"].startswith("1.00 [")
    assert "4 seeds (4 reached C): phase C began at step 30" in pages.seeds_summary(seeds)
    one = analysis.seed_table({3: tables[3]})
    assert pages.seeds_summary(one).startswith("One seed: phase C from step 30; final accuracy 1.00 [")
    assert list(pages.seeds_display(one)["seed"]) == ["3", "mean of 1 [t interval]"]


def test_phase_measures_summary_compares_b_with_a_and_c():
    t = synthetic_view(n=4).table
    summary = analysis.phase_measures({3: t})
    text = pages.phase_measures_summary(summary)
    assert "- intrinsic dimension (TwoNN): A " in text and "B is " in text and "TwoNN band 2 ± 0.5, which no verdict reads" in text
    assert "Intervals: one run: no interval across networks" in text  # never a t interval over one run's checkpoints
    bare = analysis.phase_measures({3: t.drop(columns=["knn_r2_x", "knn_r2_y", "intrinsic_dim"])})
    assert "k-NN R² (mean of x, y): not measured in these runs." in pages.phase_measures_summary(bare)


def test_order_inside_b_summary_says_late_b_is_ordered():
    t = synthetic_view(n=4).table.assign(r2_x_raw=[0, 0.2, 0.95, 0.97, 1.0], r2_y_raw=[0, 0.2, 0.95, 0.97, 1.0])
    text = pages.order_inside_b_summary(analysis.order_inside_b({3: t}))
    assert ("raw ridge R² (mean of x, y) is already ≥ 0.9 inside phase B in 1 of 1 seed(s) (seed 3: from step 20, "
            "1 of 1 B checkpoints before C begins (step 30)): by this measure late B is already ordered") in text
    assert "UMAP R² (mean of x, y): never ≥ 0.9 inside phase B" in text


def test_axis_coupling_summary_and_claim_sentence():
    t = synthetic_view(n=4).table
    crossings = analysis.axis_crossings({(0.1, 1.0, 3): t, (0.1, 1.0, 4): t})
    text = pages.axis_coupling_summary(crossings)
    assert "- dx = 0.1, dy = 1, per-axis error ≤ 1 px (primary): gap y − x in checkpoints seed 3: +0, seed 4: +0" in text
    assert "accuracy_x/y ≥ 0.5 (secondary, partly built in)" in text
    j = verdicts.judge({}, pairs={(0.1, 1.0, 3): t})
    assert pages.claim_sentence(j, "fig5_coupling").startswith("**Verdict** (Fig. 5: on imbalanced data")


def test_changed_verdicts_states_each_change_and_the_current_verdict():
    from bumpdiff_core.claims import verdicts
    from tests.test_verdicts import make_table

    tables = {s: make_table(cross_r2=6, cross_drawn=6, seed=s) for s in (3, 4, 5)}  # a tie: not first
    j = verdicts.judge(tables)
    text = pages.changed_verdicts(j)
    for key in pages.CHANGES:
        assert f"**{verdicts.CLAIM_SHORT[key]}**" in text
    assert "**Now: not reproduced.**" in text
    assert "does not hold as a finding here" in text and "seed 0" in text
    good = verdicts.judge({s: make_table(cross_r2=4, cross_drawn=7, seed=s) for s in (3, 4, 5)})
    assert "does not hold" not in pages.changed_verdicts(good)


def test_threshold_flips_sentence_names_thresholds():
    from bumpdiff_core.claims import verdicts

    flips = {verdicts.CLAIMS["phase_C"]: ["r2_level=0.7 → reproduced"], verdicts.CLAIMS["phase_A"]: []}
    text = pages.threshold_flips_sentence(flips)
    assert "phase C: flips at r2_level=0.7 → reproduced" in text
    assert "phase A: no declared threshold in the grid flips it" in text
