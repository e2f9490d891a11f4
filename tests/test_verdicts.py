"""verdicts.py on hand-made metrics tables: cases the old rules (analysis.claim_verdicts) passed as
"reproduced" although the truth is a tie, an interval straddling its threshold, or a phase B no
more 2D than A; a clean case; untuned seeds; the sensitivity grid; the Fig. 4 / Fig. 5 claims."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bumpdiff_core.claims import verdicts as v
from bumpdiff_core.claims import sensitivity


def make_table(n_ckpt=12, leave_a=3, cross_r2=5, cross_acc=7, n=100, dims=(6.0, 2.2, 2.0), r2_halfwidth=0.02,
               final_acc=0.97, final_r2=0.96, b_r2=0.4, seed=0, intervals=True):
    """A run that leaves A at `leave_a`, orders (raw R² jumps to `final_r2`) at `cross_r2` and
    becomes accurate at `cross_acc` (checkpoint indices); intrinsic dimension per phase `dims`."""
    rng = np.random.default_rng(seed)
    i = np.arange(n_ckpt)
    frac1 = np.where(i < leave_a, 0.2, 0.85)
    acc = np.where(i < cross_acc, 0.05, final_acc)
    r2 = np.where(i < leave_a, 0.1, np.where(i < cross_r2, b_r2, final_r2)) + rng.normal(0, 0.005, n_ckpt)
    dim = np.where(i < leave_a, dims[0], np.where(i < cross_acc, dims[1], dims[2])) + rng.normal(0, 0.03, n_ckpt)
    t = pd.DataFrame({"step": i * 100, "loss": 0.1, "accuracy": acc, "accuracy_x": acc, "accuracy_y": acc,
                      "frac_0": 1 - frac1, "frac_1": frac1, "frac_multi": 0.0, "r2_x": r2, "r2_y": r2,
                      "r2_x_raw": r2, "r2_y_raw": r2, "intrinsic_dim": dim})
    if intervals:
        t["n_labels"] = n
        for c in ("r2_x_raw", "r2_y_raw"):
            t[c + "_low"], t[c + "_high"] = t[c] - r2_halfwidth, np.minimum(t[c] + r2_halfwidth, 1.0)
    t["phase"] = np.where(frac1 < 0.5, "A", np.where(acc >= 0.5, "C", "B"))
    return t


def verdict_of(judgement, key):
    row = judgement.table[judgement.table["claim"] == v.CLAIMS[key]]
    assert len(row) == 1
    return row.iloc[0]


def check_rows(table):
    assert list(table.columns) == v.CLAIM_COLUMNS
    assert set(table["verdict"]) <= set(v.VERDICTS)
    for r in table.itertuples():
        if np.isfinite(r.value) and np.isfinite(r.low):
            assert r.low <= r.value <= r.high, r
        assert isinstance(r.detail, str) and r.detail


def test_clean_case_is_reproduced_on_untuned_seeds_only():
    good = {s: make_table(cross_r2=4 + s % 2, seed=s) for s in (3, 4, 5)}
    bad = {s: make_table(cross_r2=9, seed=s) for s in (0, 1, 2)}  # tuned seeds: would fail order-first
    j = v.judge({**good, **bad})
    check_rows(j.table)
    assert j.seeds_used == (3, 4, 5) and j.seeds_left_out == (0, 1, 2)
    assert "untuned seeds 3, 4, 5" in j.note
    for key in ("phases", "phase_A", "phase_B", "phase_C", "order_first"):
        assert verdict_of(j, key)["verdict"] == v.REPRODUCED, verdict_of(j, key)["detail"]
    assert verdict_of(j, "fig4_trend")["verdict"] == v.NO_CLAIM
    # the same call on the tuned seeds alone says so, and the late ordering fails there
    j0 = v.judge(bad)
    assert j0.seeds_used == (0, 1, 2) and "no untuned seed" in j0.note
    assert verdict_of(j0, "order_first")["verdict"] == v.NOT_REPRODUCED


def test_tie_is_not_first():
    # old rule: raw R² step <= accuracy step -> "reproduced"; here both cross at checkpoint 6
    t = make_table(cross_r2=6, cross_acc=6)
    one = v.judge({3: t})
    row = verdict_of(one, "order_first")
    assert row["verdict"] == v.NOT_REPRODUCED
    assert row["value"] == 0 and row["high"] <= 0
    many = v.judge({s: make_table(cross_r2=6, cross_acc=6, seed=s) for s in (3, 4, 5)})
    assert verdict_of(many, "order_first")["verdict"] == v.NOT_REPRODUCED
    # without interval columns a crossing cannot be placed: undecided, never "first"
    bare = make_table(cross_r2=6, cross_acc=6, intervals=False)
    assert verdict_of(v.judge({3: bare}), "order_first")["verdict"] == v.UNDECIDED
    bare = make_table(cross_r2=3, cross_acc=9, intervals=False)
    assert verdict_of(v.judge({3: bare}), "order_first")["verdict"] == v.UNDECIDED


def test_interval_straddling_threshold_is_undecided():
    # final accuracy exactly 0.90 of 100 labels: Wilson [0.83, 0.94] straddles 0.9 (old rule: >= 0.9 passes)
    t = make_table(final_acc=0.90)
    row = verdict_of(v.judge({3: t}), "phase_C")
    assert row["verdict"] == v.UNDECIDED
    assert "accuracy 0.90 [0.83, 0.94]" in row["detail"]
    # the representation crosses 0.9 one checkpoint before accuracy, but only just: the R² interval
    # [0.86, 0.94] straddles 0.9 there, so the lead interval is [0, 1] -> undecided, not "first"
    t = make_table(cross_r2=6, cross_acc=7)
    t.loc[6, ["r2_x_raw", "r2_y_raw"]] = 0.905
    t.loc[6, ["r2_x_raw_low", "r2_y_raw_low"]] = 0.86
    t.loc[6, ["r2_x_raw_high", "r2_y_raw_high"]] = 0.94
    row = verdict_of(v.judge({3: t}), "order_first")
    assert row["verdict"] == v.UNDECIDED
    assert (row["value"], row["low"], row["high"]) == (1, 0, 1)
    # across seeds: leads 1, 0, 2 -> t interval straddles 0 -> undecided
    seeds = {3: make_table(cross_r2=6, seed=3), 4: make_table(cross_r2=7, seed=4), 5: make_table(cross_r2=5, seed=5)}
    assert verdict_of(v.judge(seeds), "order_first")["verdict"] == v.UNDECIDED


def test_phase_b_no_more_2d_than_a_is_not_reproduced():
    # old rule: UMAP R² in B below C's and below 0.8 -> "reproduced"; here B's manifold is as
    # high-dimensional as A's (no sheet), though less ordered than C
    tables = {s: make_table(dims=(6.0, 6.0 + 0.1 * (s - 4), 2.0), seed=s) for s in (3, 4, 5)}
    row = verdict_of(v.judge(tables), "phase_B")
    assert row["verdict"] == v.NOT_REPRODUCED
    assert "→ fail" in row["detail"]
    # B as ordered as C: "less ordered than C" cannot be shown (undecided); more ordered: fails
    tables = {s: make_table(b_r2=0.96, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.UNDECIDED
    tables = {s: make_table(b_r2=0.99, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.NOT_REPRODUCED
    # closer to 2 than A and less ordered than C, but at dimension 3.5: only "partly" a 2D sheet
    tables = {s: make_table(dims=(6.0, 3.5 + 0.05 * (s - 4), 2.0), seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.PARTLY


def test_missing_optional_columns_say_undecided_not_crash():
    t = make_table(intervals=False).drop(columns=["intrinsic_dim"])
    j = v.judge({3: t})
    check_rows(j.table)
    assert verdict_of(j, "phase_B")["verdict"] == v.UNDECIDED
    assert "intrinsic_dim not measured" in verdict_of(j, "phase_B")["detail"]
    assert verdict_of(j, "phase_C")["verdict"] == v.UNDECIDED  # no interval for final accuracy / R²
    # today's columns only (no knn): the knn order measure is undecided, not an error
    j = v.judge({3: t}, thresholds=v.Thresholds(order_measure="knn"))
    assert verdict_of(j, "phase_A")["verdict"] == v.UNDECIDED
    empty = v.judge({})
    assert set(empty.table["verdict"]) == {v.NO_CLAIM}


def test_wilson_from_n_labels_when_no_accuracy_bounds():
    t = make_table()
    assert "accuracy_low" not in t.columns
    row = verdict_of(v.judge({3: t}), "phase_C")
    assert row["verdict"] == v.REPRODUCED
    assert "accuracy 0.97 [0.92, 0.99]" in row["detail"]


def test_sensitivity_grid_shape_and_summary():
    tables = {s: make_table(cross_r2=4 + s % 2, seed=s) for s in (3, 4, 5)}
    # a phase-C final R² of 0.85: fails at R² level 0.9 and 0.95, passes at 0.7 and 0.8
    for t in tables.values():
        t.loc[t.index[-1], ["r2_x_raw", "r2_y_raw"]] = 0.85
    sens = sensitivity.sensitivity(tables)
    n_settings = len(v.SENSITIVITY_ACCURACY) * len(v.SENSITIVITY_R2)
    assert len(sens) == len(v.CLAIMS) * n_settings
    assert set(sens.columns) >= {"claim", "accuracy_level", "r2_level", "verdict", "default"}
    assert sens["default"].sum() == len(v.CLAIMS)
    matrix = sensitivity.sensitivity_matrix(sens)
    assert matrix.shape == (len(v.CLAIMS), n_settings)
    c = sens[sens["claim"] == v.CLAIMS["phase_C"]]
    assert set(c[c["r2_level"] <= 0.8]["verdict"]) == {v.REPRODUCED}
    assert set(c[c["r2_level"] >= 0.9]["verdict"]) == {v.NOT_REPRODUCED}
    text = sensitivity.sensitivity_summary(sens)
    assert "hold over the whole range" in text
    assert "“phase C” is not reproduced at the default but reproduced at R² level 0.7, 0.8" in text


def test_definitions_read_thresholds_from_code():
    t = v.Thresholds(r2_level=0.8, dim_tolerance=0.25)
    d = v.claim_definitions(t)
    assert list(d.columns) == ["claim", "statistic", "rule", "fails if"] and len(d) == len(v.CLAIMS)
    assert "≥ 0.8" in " ".join(d["rule"]) and "2 ± 0.25" in " ".join(d["rule"])
    tt = v.thresholds_table()
    assert {"accuracy_level", "r2_level", "dim_tolerance"} <= set(tt["name"])
    assert tt["fails if"].str.len().min() > 0
    with pytest.raises(ValueError):
        v.Thresholds(order_measure="pca")


def test_fig4_trend_direction_only_when_interval_excludes_zero():
    def inc_table(step_c):
        t = make_table(cross_acc=step_c)
        return t
    monotone = {inc: inc_table(k) for inc, k in zip((0.1, 0.2, 0.25, 0.5, 0.75, 1.0), (4, 5, 6, 7, 8, 9))}
    row = verdict_of(v.judge({3: make_table()}, increments=monotone), "fig4_trend")
    assert row["verdict"] == v.NO_CLAIM and row["value"] == pytest.approx(1.0)
    assert "sparser data reach C later" in row["detail"] and "permutation p = 0.003" in row["detail"]
    noisy = {inc: inc_table(k) for inc, k in zip((0.1, 0.2, 0.25, 0.5, 0.75, 1.0), (6, 4, 7, 5, 8, 5))}
    row = verdict_of(v.judge({3: make_table()}, increments=noisy), "fig4_trend")
    assert "no trend detectable" in row["detail"] and row["low"] < 0 < row["high"]
    assert row["low"] <= row["value"] <= row["high"]


def fig5_pair(gap, errors=True, halfwidth=None, cross=5):
    """An imbalanced run whose x error drops below 1 px at checkpoint `cross`, y `gap` later; with
    `halfwidth`, t-interval columns error_x/y_low/high of that half-width."""
    t = make_table()
    i = np.arange(len(t))
    if errors:
        t["error_x"] = np.where(i < cross, 4.0, 0.3)
        t["error_y"] = np.where(i < cross + gap, 4.0, 0.3)
        if halfwidth is not None:
            for a in "xy":
                t[f"error_{a}_low"], t[f"error_{a}_high"] = t[f"error_{a}"] - halfwidth, t[f"error_{a}"] + halfwidth
    return t


def test_fig5_coupling_uses_per_axis_errors_when_present():
    pair = fig5_pair
    together = {(0.1, 1.0, 3): pair(0), (0.1, 0.5, 3): pair(1)}
    apart_control = {(0.1, 1.0, 3): pair(4)}
    row = verdict_of(v.judge({3: make_table()}, pairs=together, control_pairs=apart_control), "fig5_coupling")
    assert row["verdict"] == v.REPRODUCED and "per-axis error ≤ 1 px" in row["detail"]
    apart = {(0.1, 1.0, 3): pair(3), (0.1, 0.5, 3): pair(4)}
    row = verdict_of(v.judge({3: make_table()}, pairs=apart), "fig5_coupling")
    assert row["verdict"] == v.NOT_REPRODUCED and "x first" in row["detail"]
    mixed = {(0.1, 1.0, 3): pair(0), (0.1, 0.5, 3): pair(4)}
    assert verdict_of(v.judge({3: make_table()}, pairs=mixed), "fig5_coupling")["verdict"] == v.PARTLY
    # without error_x/y: accuracy_x/y, and the detail says why that is weaker
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): pair(0, errors=False)}), "fig5_coupling")
    assert "partly built in" in row["detail"]
    # pair runs on tuned seeds are left out when untuned ones exist
    row = verdict_of(v.judge({3: make_table()}, pairs={**together, (0.1, 1.0, 0): pair(6)},
                             control_pairs=apart_control), "fig5_coupling")
    assert row["verdict"] == v.REPRODUCED and "seed 0 " not in row["detail"].replace("(seed 0)", "")


def test_fig5_control_reads_together_too_is_undecided():
    together = {(0.1, 1.0, 3): fig5_pair(0)}
    row = verdict_of(v.judge({3: make_table()}, pairs=together, control_pairs={(0.1, 1.0, 3): fig5_pair(0)}),
                     "fig5_coupling")
    assert row["verdict"] == v.UNDECIDED
    assert "the separable control reads together too: the statistic cannot tell coupled from factorized" in row["detail"]


def test_fig5_control_apart_and_global_together_is_reproduced():
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): fig5_pair(0)},
                             control_pairs={(0.1, 1.0, 3): fig5_pair(3)}), "fig5_coupling")
    assert row["verdict"] == v.REPRODUCED and "separable control" in row["detail"]
    # a control on another (dx, dy) is not a control for this pair
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): fig5_pair(0)},
                             control_pairs={(0.1, 0.5, 3): fig5_pair(3)}), "fig5_coupling")
    assert row["verdict"] == v.PARTLY


def test_fig5_without_control_is_at_most_partly():
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): fig5_pair(0), (0.1, 0.5, 3): fig5_pair(0)}),
                     "fig5_coupling")
    assert row["verdict"] == v.PARTLY and "no positive control was run" in row["detail"]


def test_fig5_gap_interval_comes_from_the_error_intervals():
    # the errors' intervals straddle 1 px at the crossing: the gap interval has positive width
    t = fig5_pair(0)
    t["error_x_low"], t["error_x_high"] = t["error_x"] - 0.5, t["error_x"] + 0.5
    t.loc[4, ["error_x", "error_x_low", "error_x_high"]] = [1.2, 0.8, 1.6]  # x may cross one checkpoint early
    t["error_y_low"], t["error_y_high"] = t["error_y"] - 0.5, t["error_y"] + 0.5
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): t}), "fig5_coupling")
    assert row["low"] <= row["value"] <= row["high"] and row["low"] < row["high"]
    assert "t intervals of the mean error" in row["detail"]
    # several runs with identical gaps: not a zero-width interval when the crossings are uncertain
    row = verdict_of(v.judge({3: make_table()}, pairs={(0.1, 1.0, 3): t, (0.1, 0.5, 3): t}), "fig5_coupling")
    assert row["low"] <= row["value"] == 0 < row["high"]


def eff_row(design, conditioning, acc, low, high, label=None, seed=0):
    what = label or {"lines": "lines k=2", "random": "random 60"}[design]
    return {"label": f"{what} · {conditioning}", "design": design, "conditioning": conditioning, "seed": seed,
            "accuracy_unseen": acc, "accuracy_unseen_low": low, "accuracy_unseen_high": high, "n_unseen": 40,
            "memoriser_unseen": 0.0}


def compose_row(*rows):
    return verdict_of(v.judge({3: make_table()}, efficiency=list(rows)), "compose")


def test_compose_claim_four_cases():
    sep_ok = eff_row("lines", "separable", 0.95, 0.83, 0.99)
    random = eff_row("random", "global", 0.65, 0.45, 0.81)
    # reproduced: global below the level, the factorizing control above it
    row = compose_row(eff_row("lines", "global", 0.03, 0.004, 0.13), sep_ok, random)
    assert row["verdict"] == v.REPRODUCED and row["low"] <= row["value"] <= row["high"]
    assert "random 60 · global unseen 0.65 [0.45, 0.81]" in row["detail"]
    # not reproduced: the global model composes unseen positions
    assert compose_row(eff_row("lines", "global", 0.9, 0.77, 0.96), sep_ok)["verdict"] == v.NOT_REPRODUCED
    # undecided: the global interval straddles the level
    row = compose_row(eff_row("lines", "global", 0.45, 0.3, 0.6), sep_ok)
    assert row["verdict"] == v.UNDECIDED and "straddles" in row["detail"]
    # undecided: the control fails too, or there is none
    row = compose_row(eff_row("lines", "global", 0.03, 0.004, 0.13), eff_row("lines", "separable", 0.1, 0.03, 0.24))
    assert row["verdict"] == v.UNDECIDED and "the separable control fails too" in row["detail"]
    row = compose_row(eff_row("lines", "global", 0.03, 0.004, 0.13))
    assert row["verdict"] == v.UNDECIDED and "no positive control" in row["detail"]
    # no claim without efficiency runs (or without a lines run)
    assert verdict_of(v.judge({3: make_table()}), "compose")["verdict"] == v.NO_CLAIM
    assert compose_row(random)["verdict"] == v.NO_CLAIM


def test_compose_claim_judges_every_seed_of_the_global_model():
    sep_ok = eff_row("lines", "separable", 0.95, 0.83, 0.99)
    fails = eff_row("lines", "global", 0.03, 0.004, 0.13)
    # two seeds that both fail where the control succeeds: reproduced, value the mean, envelope interval
    row = compose_row(fails, eff_row("lines", "global", 0.05, 0.01, 0.17, seed=3), sep_ok)
    assert row["verdict"] == v.REPRODUCED and "(seed 3)" in row["detail"]
    assert row["value"] == pytest.approx(0.04) and (row["low"], row["high"]) == (0.004, 0.17)
    # one seed composes, the other does not: partly
    row = compose_row(fails, eff_row("lines", "global", 0.9, 0.77, 0.96, seed=3), sep_ok)
    assert row["verdict"] == v.PARTLY and row["low"] <= row["value"] <= row["high"]
    # the level is declared, with what would make the claim fail
    tt = v.thresholds_table()
    assert tt.set_index("name").loc["compose_level", "value"] == "0.5"
    assert "fails" in v.claim_definitions()["rule"].iloc[-1] or len(v.claim_definitions()) == len(v.CLAIMS)


def test_sensitivity_passes_controls_and_efficiency():
    sens = sensitivity.sensitivity({3: make_table()}, pairs={(0.1, 1.0, 3): fig5_pair(0)},
                                   control_pairs={(0.1, 1.0, 3): fig5_pair(3)},
                                   efficiency=[eff_row("lines", "global", 0.03, 0.004, 0.13),
                                               eff_row("lines", "separable", 0.95, 0.83, 0.99)])
    got = sens[sens["default"]].set_index("claim")["verdict"]
    assert got[v.CLAIMS["fig5_coupling"]] == v.REPRODUCED and got[v.CLAIMS["compose"]] == v.REPRODUCED


def test_records_are_strict_json():
    j = v.judge({3: make_table()})
    text = json.dumps(j.records(), allow_nan=False)
    rows = json.loads(text)
    assert [r["claim"] for r in rows] == list(v.CLAIMS.values())
    assert all(r["value"] is None or math.isfinite(r["value"]) for r in rows)
