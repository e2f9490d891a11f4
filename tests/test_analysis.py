"""Cross-run numbers on hand-made tables whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bumpdiff_core.claims import analysis


def _table(steps, **cols):
    n = len(steps)
    base = {c: np.zeros(n) for c in ["loss", "accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1",
                                     "frac_multi", "r2_x", "r2_y", "r2_x_raw", "r2_y_raw"]}
    base.update({k: np.asarray(v, dtype=float) for k, v in cols.items() if k != "phase"})
    t = pd.DataFrame({"step": steps, **base})
    t["phase"] = cols.get("phase", ["A"] * n)
    return t


def test_crossing_step():
    t = _table([0, 100, 200, 300], accuracy=[0.0, 0.4, 0.5, 0.9])
    assert analysis.crossing_step(t, "accuracy", 0.5) == 200
    assert analysis.crossing_step(t, "accuracy", 0.9) == 300
    assert math.isnan(analysis.crossing_step(t, "accuracy", 0.95))
    assert analysis.crossing_step(t, t["accuracy"] * 2, 0.9) == 200


def test_coupling_gaps():
    t = _table([0, 100, 200, 300, 400], accuracy_x=[0, 0.6, 0.95, 1, 1], accuracy_y=[0, 0, 0.6, 0.7, 0.92],
               r2_x=[0, 0.5, 0.9, 1, 1], r2_y=[0, 0.5, 0.9, 1, 1])
    c = analysis.coupling(t).set_index(["metric", "level"])
    assert c.loc[("accuracy", 0.5), "gap_y_minus_x"] == 100
    assert c.loc[("accuracy", 0.9), "gap_y_minus_x"] == 200
    assert c.loc[("r2 (UMAP)", 0.9), "gap_y_minus_x"] == 0
    assert math.isnan(c.loc[("r2 (raw)", 0.5), "gap_y_minus_x"])


def test_transition_summary_mean_sd_and_order():
    a = _table([0, 100, 200, 300], phase=["A", "B", "C", "C"], accuracy=[0, 0.1, 0.6, 0.9],
               r2_x_raw=[0, 0.95, 0.95, 0.95], r2_y_raw=[0, 0.9, 0.95, 0.95])
    b = _table([0, 100, 200, 300], phase=["A", "A", "B", "C"], accuracy=[0, 0, 0.2, 0.6],
               r2_x_raw=[0, 0.5, 0.5, 0.95], r2_y_raw=[0, 0.5, 0.5, 0.95])
    s = analysis.transition_summary({0: a, 1: b})
    assert list(s.per_seed["step_A_to_B"]) == [100, 200]
    assert list(s.per_seed["step_B_to_C"]) == [200, 300]
    assert list(s.per_seed["representation_first"]) == [True, False]   # b: R² and accuracy at the same step
    assert list(s.per_seed["step_order"]) == [100, 300] and list(s.per_seed["step_accuracy"]) == [200, 300]
    assert s.mean["step_A_to_B"] == 150 and s.sd["step_A_to_B"] == pytest.approx(70.71, abs=0.01)
    assert s.mean["step_B_to_C"] == 250


def test_phase_transitions_and_first_steps_agree():
    from bumpdiff_core.measure import metrics

    skip_b = _table([0, 100, 200, 300], phase=["A", "C", "B", "C"])
    assert metrics.first_step_of_phase(skip_b) == {"A": 0, "B": 200, "C": 100}
    assert metrics.phase_transitions(skip_b) == {"step_A_to_B": 100.0, "step_B_to_C": 100.0}
    never = metrics.phase_transitions(_table([0, 100], phase=["A", "A"]))
    assert math.isnan(never["step_A_to_B"]) and math.isnan(never["step_B_to_C"])
    assert metrics.first_step_of_phase(_table([0, 100], phase=["A", "A"])) == {"A": 0, "B": None, "C": None}


def test_reconstructed_choices_read_the_config():
    from bumpdiff_core.config import profile_config

    table = analysis.reconstructed_choices(profile_config("quick", {"tap_layer": "layer2"}))
    tap = table.set_index("choice").loc["Which block is “layer 4”"]
    assert tap["config field / constant"] == "tap_layer" and tap["value in this run"] == "layer2 = down1"
    assert table["why"].str.len().min() > 20
    described = " ".join(table["value in this run"].astype(str)) + " ".join(table["why"])
    assert "leave-one-out" in described and "5-fold" not in described  # what metrics.r2_cross_validated does
    assert "centroid around its peak" not in described and "ideal bump" in described  # metrics.detect_bumps


def test_phase_profile_groups_checkpoints_by_phase():
    t = _table([0, 100, 200, 300], phase=["A", "B", "B", "C"], frac_1=[0.2, 0.8, 0.9, 1.0],
               accuracy=[0, 0.1, 0.3, 0.95])
    p = analysis.phase_profile(t)
    assert list(p.index) == ["A", "B", "C"]
    assert list(p["checkpoints"]) == [1, 2, 1]
    assert p.loc["B", "first_step"] == 100 and p.loc["B", "last_step"] == 200
    assert p.loc["B", "frac_1"] == pytest.approx(0.85) and p.loc["B", "accuracy"] == pytest.approx(0.2)


def _runs(n_seeds=3):
    """Seeds of one story: A at 0-100, B at 200-300 (raw R² 0.95 already at 300), C from 400."""
    out = {}
    for seed in range(n_seeds):
        raw = [0.1, 0.1, 0.5, 0.95, 0.97, 0.98]
        t = _table([0, 100, 200, 300, 400, 500], phase=list("AABBCC"), frac_1=[0.2, 0.3, 0.8, 0.9, 1, 1],
                   accuracy=[0, 0, 0.1, 0.2, 0.8, 0.95 - 0.01 * seed], r2_x_raw=raw, r2_y_raw=raw,
                   r2_x=[0.1, 0.1, 0.4, 0.6, 0.9, 0.9], r2_y=[0.1, 0.1, 0.4, 0.6, 0.9, 0.9],
                   intrinsic_dim=[6, 5.5, 2.4 + 0.1 * seed, 2.3, 2.1, 2.0])
        t["n_labels"] = 100
        out[seed + 3] = t
    return out


def test_seed_table_has_a_row_per_seed_and_a_t_interval():
    s = analysis.seed_table(_runs())
    assert list(s.index) == [3, 4, 5, "mean", "low", "high"]
    assert list(s.loc[[3, 4, 5], "step_B_to_C"]) == [400] * 3
    assert list(s.loc[[3, 4, 5], "step_raw_r2"]) == [300] * 3 and list(s.loc[[3, 4, 5], "step_accuracy"]) == [400] * 3
    assert s.loc[3, "final_accuracy_low"] < 0.95 < s.loc[3, "final_accuracy_high"]   # Wilson from n_labels
    assert s.loc["low", "final_accuracy"] < s.loc["mean", "final_accuracy"] < s.loc["high", "final_accuracy"]
    one = analysis.seed_table({3: _runs()[3]})
    assert math.isnan(one.loc["low", "final_accuracy"])   # no spread from one seed


def test_phase_measures_compare_b_with_a_and_c():
    m = analysis.phase_measures(_runs()).set_index(["measure", "phase"])
    assert m.loc[("intrinsic_dim", "A"), "mean"] == pytest.approx(5.75)
    assert m.loc[("intrinsic_dim", "B"), "low"] < m.loc[("intrinsic_dim", "B"), "mean"] < m.loc[("intrinsic_dim", "B"), "high"]
    assert math.isnan(m.loc[("knn_r2", "B"), "mean"])   # not measured in these tables
    assert m.loc[("raw_r2", "C"), "mean"] > m.loc[("raw_r2", "B"), "mean"] > m.loc[("raw_r2", "A"), "mean"]


def test_order_inside_b_finds_late_b_ordered():
    inside = analysis.order_inside_b(_runs(1)).set_index("measure")
    assert inside.loc["raw_r2", "first_ordered_in_B"] == 300 and inside.loc["raw_r2", "B_checkpoints_ordered_on"] == 1
    assert inside.loc["raw_r2", "C_begins"] == 400
    assert math.isnan(inside.loc["umap_r2", "first_ordered_in_B"]) and not inside.loc["knn_r2", "measured"]


def test_axis_crossings_primary_error_secondary_accuracy():
    steps = [0, 100, 200, 300]
    t = _table(steps, accuracy_x=[0, 0.6, 1, 1], accuracy_y=[0, 0, 0.6, 1],
               error_x=[5, 0.8, 0.5, 0.4], error_y=[5, 0.9, 0.5, 0.4])
    c = analysis.axis_crossings({(0.1, 1.0, 3): t}).set_index("statistic")
    assert c.loc["error", "gap_checkpoints"] == 0 and c.loc["error", "step_x"] == 100
    assert c.loc["accuracy", "gap_checkpoints"] == 1 and c.loc["accuracy", "gap_steps"] == 100
    old = analysis.axis_crossings({(0.1, 1.0, 3): t.drop(columns=["error_x", "error_y"])})
    assert list(old["statistic"]) == ["accuracy"]
    nan_cols = analysis.axis_crossings({(0.1, 1.0, 3): t.assign(error_x=np.nan, error_y=np.nan)})
    assert list(nan_cols["statistic"]) == ["accuracy"]   # an old run's all-NaN columns count as absent


def test_phase_boundaries_with_several_seeds_per_increment():
    runs = _runs(2)
    b = analysis.phase_boundaries({0.5: list(runs.values()), 1.0: runs[3]})
    assert list(b["increment"]) == [0.5, 0.5, 1.0] and list(b["run"]) == [0, 1, 0]
    assert list(b["step_B_to_C"]) == [400] * 3
