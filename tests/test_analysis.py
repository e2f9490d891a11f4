"""Cross-run numbers on hand-made tables whose answers are known."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from bumpdiff_core import analysis


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
    assert s.mean["step_A_to_B"] == 150 and s.sd["step_A_to_B"] == pytest.approx(70.71, abs=0.01)
    assert s.mean["step_B_to_C"] == 250


def test_phase_transitions_and_first_steps_agree():
    from bumpdiff_core import metrics

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


def _story(phase, accuracy, r2, raw, frac_1=None, steps=None):
    steps = steps or [100 * i for i in range(len(phase))]
    frac_1 = frac_1 or [0.2 if p == "A" else 0.8 if p == "B" else 1.0 for p in phase]
    return _table(steps, phase=list(phase), accuracy=accuracy, r2_x=r2, r2_y=r2, r2_x_raw=raw, r2_y_raw=raw,
                  frac_1=frac_1, frac_0=[1 - f for f in frac_1])


def test_claim_verdicts_on_a_run_that_reproduces():
    t = _story("AABBCC", accuracy=[0, 0, 0.1, 0.2, 0.8, 0.95], r2=[0.1, 0.1, 0.4, 0.5, 0.9, 0.9],
               raw=[0.1, 0.2, 0.6, 0.92, 0.95, 0.97])
    v = analysis.claim_verdicts(t).set_index("claim")["verdict"]
    assert list(v) == [analysis.REPRODUCED] * 5
    assert "checkpoints: AABBCC;" in analysis.claim_verdicts(t)["measured here"].iloc[0]


def test_claim_verdicts_catch_failures():
    # relapse B -> A, representation orders after accuracy rises, final accuracy too low
    t = _story("ABACC", accuracy=[0, 0.1, 0, 0.6, 0.7], r2=[0.1, 0.3, 0.2, 0.85, 0.85],
               raw=[0.1, 0.3, 0.3, 0.5, 0.95])
    v = list(analysis.claim_verdicts(t)["verdict"])
    assert v[0] == analysis.PARTLY                    # order holds up to one relapse
    assert v[3] == analysis.NOT_REPRODUCED            # accuracy 0.7 < 0.9
    assert v[4] == analysis.NOT_REPRODUCED            # raw R² 0.9 at 400 after accuracy 0.5 at 300
    never = _story("AAAA", accuracy=[0] * 4, r2=[0.7] * 4, raw=[0.1] * 4)
    v = list(analysis.claim_verdicts(never)["verdict"])
    assert v[0] == v[1] == v[2] == analysis.NOT_REPRODUCED   # A with R² 0.7 is not "no structure"


def test_claim_verdicts_fig4_and_fig5():
    t = _story("ABC", accuracy=[0, 0.1, 1], r2=[0, 0.3, 0.9], raw=[0, 0.5, 0.95])
    inc = {0.5: _story("ABC", accuracy=[0, 0, 1], r2=[0] * 3, raw=[0] * 3),
           1.0: _story("ABBC", accuracy=[0, 0, 0, 1], r2=[0] * 4, raw=[0] * 4)}
    steps = [0, 100, 200, 300]
    together = _table(steps, accuracy_x=[0, 0.2, 0.6, 1], accuracy_y=[0, 0, 0.6, 1])
    x_first = _table(steps, accuracy_x=[0, 0.6, 1, 1], accuracy_y=[0, 0, 0, 0.6])
    rows = analysis.claim_verdicts(t, inc, {(0.1, 1.0, 0): together}).set_index("verdict")
    assert "sparser data reach C later" in rows.loc[analysis.NOT_TESTED, "measured here"]
    accuracy_row = lambda pairs: analysis.claim_verdicts(t, pairs=pairs).iloc[-2]  # noqa: E731
    assert accuracy_row({(0.1, 1.0, 0): together})["verdict"] == analysis.REPRODUCED
    assert accuracy_row({(0.1, 1.0, 0): together, (0.1, 0.5, 0): x_first})["verdict"] == analysis.PARTLY
    row = accuracy_row({(0.1, 0.5, 0): x_first})
    assert row["verdict"] == analysis.NOT_REPRODUCED and "x first" in row["measured here"]
    # the representation row reads the raw R² columns: here y orders two checkpoints before x
    y_first = _table(steps, r2_x_raw=[0, 0, 0.2, 0.9], r2_y_raw=[0, 0.7, 0.9, 0.9])
    rep = analysis.claim_verdicts(t, pairs={(0.1, 1.0, 0): y_first}).iloc[-1]
    assert rep["verdict"] == analysis.NOT_REPRODUCED and "y (the sparse axis) first" in rep["measured here"]
