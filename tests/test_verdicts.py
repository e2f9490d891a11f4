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
               final_acc=0.97, final_r2=0.96, b_r2=0.4, seed=0, intervals=True, cross_first=None, cross_drawn=None,
               band=(1.9, 2.9)):
    """A run that leaves A at `leave_a`, orders (raw R² jumps to `final_r2`) at `cross_r2` and
    becomes accurate at `cross_acc` (checkpoint indices); MLE dimension per phase `dims` against a
    sheet-null band `band`; the first-step representation orders at `cross_first` (default
    `cross_r2`), the drawn positions (behavioural R²) at `cross_drawn` (default `cross_acc`)."""
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
    t["dim_mle"] = dim
    t["dim_null_low"], t["dim_null_high"], t["dim_null_median"] = band[0], band[1], (band[0] + band[1]) / 2
    t["dim_null_low_90"], t["dim_null_high_90"] = band[0] + 0.1, band[1] - 0.1
    t["dim_null_low_99"], t["dim_null_high_99"] = band[0] - 0.1, band[1] + 0.3
    t["dim_noise"], t["dim_sheet_scale"] = 0.3, 0.2
    first = np.where(i < (cross_r2 if cross_first is None else cross_first), 0.3, final_r2)
    drawn = np.where(i < (cross_acc if cross_drawn is None else cross_drawn), 0.5, 0.98)
    for a in "xy":
        t[f"r2_{a}_first"], t[f"r2_{a}_behaviour"] = first, drawn
        if intervals:
            for name, v in (("first", first), ("behaviour", drawn)):
                t[f"r2_{a}_{name}_low"], t[f"r2_{a}_{name}_high"] = v - r2_halfwidth, np.minimum(v + r2_halfwidth, 1)
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
    # the same call on the tuned seeds alone says so, and no verdict reads them
    j0 = v.judge(bad)
    assert j0.seeds_used == (0, 1, 2) and "no untuned seed" in j0.note
    assert verdict_of(j0, "order_first")["verdict"] == v.UNDECIDED
    assert "only tuned seeds" in verdict_of(j0, "order_first")["detail"]


def test_tie_is_not_first():
    # the representation orders at the same checkpoint as the drawn positions: not first
    many = {s: make_table(cross_r2=6, cross_drawn=6, seed=s) for s in (3, 4, 5)}
    row = verdict_of(v.judge(many), "order_first")
    assert row["verdict"] == v.NOT_REPRODUCED
    assert row["value"] == 0 and "lead 0" in row["detail"]
    # without interval columns a crossing cannot be placed: undecided, never "first"
    bare = {s: make_table(cross_r2=3, cross_acc=9, intervals=False, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(bare), "order_first")["verdict"] == v.UNDECIDED


def test_a_representation_that_copies_the_drawn_position_does_not_order_first():
    # the "representation" is the drawn position itself: its R² is the behavioural R² at every checkpoint
    tables = {}
    for s in (3, 4, 5):
        t = make_table(cross_r2=2, cross_acc=8, seed=s)
        for a in "xy":
            for suffix in ("", "_low", "_high"):
                t[f"r2_{a}_raw{suffix}"] = t[f"r2_{a}_behaviour{suffix}"]
                t[f"r2_{a}_first{suffix}"] = t[f"r2_{a}_behaviour{suffix}"]
        tables[s] = t
    row = verdict_of(v.judge(tables), "order_first")
    assert row["verdict"] == v.NOT_REPRODUCED, row["detail"]
    # accuracy rises late (checkpoint 8) while the representation ordered at 2: the old rule would pass
    assert all(t["accuracy"].iloc[7] < 0.5 for t in tables.values())


def test_order_first_reads_both_representations_and_needs_seeds():
    good = {s: make_table(cross_r2=4, cross_drawn=7, seed=s) for s in (3, 4, 5)}
    row = verdict_of(v.judge(good), "order_first")
    assert row["verdict"] == v.REPRODUCED and "first step" in row["detail"] and "trajectory" in row["detail"]
    # the trajectory mean leads but the first-step tap orders only with the drawn positions: partly
    half = {s: make_table(cross_r2=4, cross_drawn=7, cross_first=7, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(half), "order_first")["verdict"] == v.PARTLY
    # one untuned seed: too few for a verdict
    row = verdict_of(v.judge({3: good[3]}), "order_first")
    assert row["verdict"] == v.UNDECIDED and "too few seeds" in row["detail"]
    # no behavioural R² (older runs): undecided, said why
    old = {s: t.drop(columns=[c for c in t.columns if "behaviour" in c]) for s, t in good.items()}
    row = verdict_of(v.judge(old), "order_first")
    assert row["verdict"] == v.UNDECIDED and "behavioural" in row["detail"]


def test_interval_straddling_threshold_is_undecided():
    # final accuracy exactly 0.90 of 100 labels: Wilson [0.83, 0.94] straddles 0.9 (old rule: >= 0.9 passes)
    t = make_table(final_acc=0.90)
    row = verdict_of(v.judge({3: t}), "phase_C")
    assert row["verdict"] == v.UNDECIDED
    assert "accuracy 0.90 [0.83, 0.94]" in row["detail"]
    # the representation crosses 0.9 one checkpoint before the drawn positions, but only just
    tables = {}
    for s in (3, 4, 5):
        t = make_table(cross_r2=6, cross_acc=7, seed=s)
        t.loc[6, ["r2_x_raw", "r2_y_raw"]] = 0.905
        t.loc[6, ["r2_x_raw_low", "r2_y_raw_low"]] = 0.86
        t.loc[6, ["r2_x_raw_high", "r2_y_raw_high"]] = 0.94
        tables[s] = t
    row = verdict_of(v.judge(tables), "order_first")
    assert row["verdict"] == v.UNDECIDED and "lead 1 [0, 1]" in row["detail"]


def test_phase_b_no_more_2d_than_a_is_not_reproduced():
    # B's manifold as high-dimensional as A's (no sheet), though less ordered than C
    tables = {s: make_table(dims=(6.0, 6.0 + 0.1 * (s - 4), 2.0), seed=s) for s in (3, 4, 5)}
    row = verdict_of(v.judge(tables), "phase_B")
    assert row["verdict"] == v.NOT_REPRODUCED
    assert "→ fail" in row["detail"] and "null 95% band [1.90, 2.90]" in row["detail"]
    # B as ordered as C: "less ordered than C" cannot be shown (undecided); more ordered: fails
    tables = {s: make_table(b_r2=0.96, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.UNDECIDED
    tables = {s: make_table(b_r2=0.99, seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.NOT_REPRODUCED
    # closer to a sheet than A and less ordered than C, but above the null band: only "partly"
    tables = {s: make_table(dims=(6.0, 3.5 + 0.05 * (s - 4), 2.0), seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.PARTLY
    # the same dimension 3.5 inside a wider null band (a noisier, more curved sheet): 2D, reproduced
    tables = {s: make_table(dims=(6.0, 3.5 + 0.05 * (s - 4), 3.4), band=(2.8, 4.0), seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_B")["verdict"] == v.REPRODUCED
    # one seed: no interval across networks (never a t interval over one run's checkpoints)
    row = verdict_of(v.judge({3: make_table()}), "phase_B")
    assert row["verdict"] == v.UNDECIDED and "too few seeds" in row["detail"]


def test_phase_c_names_the_null_band_and_reads_not_2d_above_it():
    tables = {s: make_table(dims=(6.0, 2.2, 3.6), seed=s) for s in (3, 4, 5)}
    row = verdict_of(v.judge(tables), "phase_C")
    assert row["verdict"] == v.PARTLY
    assert "null 95% band [1.90, 2.90]" in row["detail"] and "not 2D" in row["detail"]
    assert "noise σ/δ 0.30" in row["detail"]
    # the band quantile is a declared threshold: at the 99 % band (up to 3.2) the same 3.1 reads 2D
    tables = {s: make_table(dims=(6.0, 2.2, 3.1), seed=s) for s in (3, 4, 5)}
    assert verdict_of(v.judge(tables), "phase_C")["verdict"] == v.PARTLY
    assert verdict_of(v.judge(tables, thresholds=v.Thresholds(dim_band=0.99)), "phase_C")["verdict"] == v.REPRODUCED


def test_missing_optional_columns_say_undecided_not_crash():
    t = make_table(intervals=False).drop(columns=["intrinsic_dim", "dim_mle"])
    j = v.judge({3: t})
    check_rows(j.table)
    assert verdict_of(j, "phase_B")["verdict"] == v.UNDECIDED
    assert "not measured" in verdict_of(j, "phase_B")["detail"]
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
    assert row["verdict"] == v.UNDECIDED and "too few seeds" in row["detail"]  # the 2D check needs 3 seeds
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
    t = v.Thresholds(r2_level=0.8, dim_band=0.99, min_seeds=4)
    d = v.claim_definitions(t)
    assert list(d.columns) == ["claim", "statistic", "rule", "fails if"] and len(d) == len(v.CLAIMS)
    assert "≥ 0.8" in " ".join(d["rule"]) and "99% null band" in " ".join(d["rule"])
    assert "fewer than 4 untuned seeds" in " ".join(d["rule"])
    tt = v.thresholds_table()
    assert {"accuracy_level", "r2_level", "dim_band", "unseen_distance", "min_seeds"} <= set(tt["name"])
    for bad in (dict(dim_band=0.8), dict(unseen_distance=5), dict(min_seeds=1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            v.Thresholds(**bad)
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


def fig5_run(x_at, n_ckpt=12, halfwidth=0.2):
    """An imbalanced run whose x error drops below 1 px at checkpoint `x_at` (y two later)."""
    t = make_table(n_ckpt=n_ckpt)
    i = np.arange(len(t))
    t["error_x"] = np.where(i < x_at, 4.0, 0.3)
    t["error_y"] = np.where(i < x_at + 2, 4.0, 0.3)
    for a in "xy":
        t[f"error_{a}_low"], t[f"error_{a}_high"] = t[f"error_{a}"] - halfwidth, t[f"error_{a}"] + halfwidth
    return t


def fig5_design(x_at_of_dy, seeds=(3, 4, 5), jitter=(0, 0, 1)):
    return {(0.1, dy, s): fig5_run(x_at_of_dy(dy) + j) for dy in (0.1, 0.5, 1.0) for s, j in zip(seeds, jitter)}


def test_fig5_coupled_global_against_an_independent_control_is_reproduced():
    coupled = fig5_design(lambda dy: int(3 + 6 * dy))        # x learned later as y gets sparser
    flat = fig5_design(lambda dy: 4, jitter=(0, 0, 0))       # x learned at the same step whatever dy
    row = verdict_of(v.judge({3: make_table()}, pairs=coupled, control_pairs=flat), "fig5_coupling")
    assert row["verdict"] == v.REPRODUCED, row["detail"]
    assert row["low"] <= row["value"] <= row["high"] and row["low"] > 1
    assert "separable control" in row["detail"] and "→ independent" in row["detail"]
    # the global model independent too: not reproduced (the test could see coupling, and there is none)
    row = verdict_of(v.judge({3: make_table()}, pairs=flat, control_pairs=flat), "fig5_coupling")
    assert row["verdict"] == v.NOT_REPRODUCED


def test_fig5_needs_a_control_that_reads_independent_and_enough_seeds():
    coupled = fig5_design(lambda dy: int(3 + 6 * dy))
    # the control moves with dy as well: the test has not shown it can recognise a factorized learner
    row = verdict_of(v.judge({3: make_table()}, pairs=coupled, control_pairs=coupled), "fig5_coupling")
    assert row["verdict"] == v.UNDECIDED and "does not read independent" in row["detail"]
    row = verdict_of(v.judge({3: make_table()}, pairs=coupled), "fig5_coupling")
    assert row["verdict"] == v.UNDECIDED
    # one seed per dy: too few seeds, whatever it reads
    one = fig5_design(lambda dy: int(3 + 6 * dy), seeds=(3,), jitter=(0,))
    flat = fig5_design(lambda dy: 4, seeds=(3,), jitter=(0,))
    row = verdict_of(v.judge({3: make_table()}, pairs=one, control_pairs=flat), "fig5_coupling")
    assert row["verdict"] == v.UNDECIDED and "too few seeds" in row["detail"]
    # seed-0 runs are never read
    row = verdict_of(v.judge({3: make_table()}, pairs={**coupled, (0.1, 1.0, 0): fig5_run(1)},
                             control_pairs=fig5_design(lambda dy: 4, jitter=(0, 0, 0))), "fig5_coupling")
    assert "seed 0" not in row["detail"]


def eff_row(model, k, n=100, seed=3, design="lines"):
    cond, coord = {"global": ("global", False), "separable": ("separable", False), "coord": ("global", True)}[model]
    return {"label": f"{design} k=2 · {cond}", "design": design, "conditioning": cond, "coord_channels": coord,
            "seed": seed, "run_id": f"{model}-{seed}", "accuracy_unseen": k / n, "n_unseen": 40,
            "n_unseen_map_d2": n, "k_unseen_map_d2": k, "n_unseen_map_d3": n // 2, "k_unseen_map_d3": k // 2,
            "memoriser_unseen": 0.0}


def compose_row(rows, **kw):
    return verdict_of(v.judge({3: make_table()}, efficiency=list(rows), **kw), "compose")


def lines_set(glob=(3, 5, 4), sep=(95, 92, 97), coord=(6, 8, 4), seeds=(3, 4, 5)):
    return ([eff_row("global", k, seed=s) for k, s in zip(glob, seeds)]
            + [eff_row("separable", k, seed=s) for k, s in zip(sep, seeds)]
            + [eff_row("coord", k, seed=s) for k, s in zip(coord, seeds)])


def test_compose_claim_same_seed_controls_every_unseen_position():
    row = compose_row(lines_set())
    assert row["verdict"] == v.REPRODUCED, row["detail"]
    assert 0 <= row["low"] <= row["value"] <= row["high"] <= 1
    assert "at least 100 per run" in row["detail"] and "coord_channels" in row["detail"]
    assert "seed 3: 3/100" in row["detail"]  # each network's Wilson interval beside the one across networks
    assert set(row["runs"]) == {f"{m}-{s}" for m in ("global", "separable", "coord") for s in (3, 4, 5)}
    # coordinates suffice: the global model with coordinate channels composes -> partly
    assert compose_row(lines_set(coord=(90, 93, 88)))["verdict"] == v.PARTLY
    # the global model composes: not reproduced
    assert compose_row(lines_set(glob=(90, 93, 88)))["verdict"] == v.NOT_REPRODUCED
    # no coordinate control: the controls differ in two ways -> undecided
    rows = [r for r in lines_set() if not r["coord_channels"]]
    row = compose_row(rows)
    assert row["verdict"] == v.UNDECIDED and "two ways" in row["detail"]
    # the separable control fails too
    assert compose_row(lines_set(sep=(10, 12, 8)))["verdict"] == v.UNDECIDED
    # tuned seeds are never read; one untuned seed is too few
    row = compose_row(lines_set(seeds=(0, 1, 2)))
    assert row["verdict"] == v.NO_CLAIM and not row["runs"]
    row = compose_row(lines_set(glob=(3,), sep=(95,), coord=(5,), seeds=(3,)))
    assert row["verdict"] == v.UNDECIDED and "too few seeds" in row["detail"]
    # the unseen distance is a declared threshold (d >= 3: half as many positions here)
    row = compose_row(lines_set(), thresholds=v.Thresholds(unseen_distance=3))
    assert "at least 50 per run" in row["detail"]
    assert verdict_of(v.judge({3: make_table()}), "compose")["verdict"] == v.NO_CLAIM


def test_threshold_flips_name_the_thresholds_that_change_a_verdict():
    tables = {s: make_table(cross_r2=4 + s % 2, seed=s) for s in (3, 4, 5)}
    for t in tables.values():  # final R² 0.85: phase C flips with the R² level
        t.loc[t.index[-1], ["r2_x_raw", "r2_y_raw"]] = 0.85
    flips = sensitivity.threshold_flips(dict(tables=tables, efficiency=lines_set()))
    assert set(flips) == set(v.CLAIMS.values())
    assert any(f.startswith("r2_level=0.7") for f in flips[v.CLAIMS["phase_C"]])
    assert all(not f.startswith("compose_level") or "0.7" not in f for f in flips[v.CLAIMS["phase_A"]])
    text = sensitivity.flips_text(flips)
    assert "phase C" in text and "r2_level" in text


def test_claims_list_the_runs_they_read():
    tables = {s: make_table(seed=s).assign(run_id=f"main-{s}") for s in (0, 3, 4, 5)}
    j = v.judge(tables, efficiency=lines_set())
    for key in ("phases", "phase_A", "phase_B", "phase_C", "order_first"):
        assert verdict_of(j, key)["runs"] == ["main-3", "main-4", "main-5"]


def test_records_are_strict_json():
    j = v.judge({3: make_table()})
    text = json.dumps(j.records(), allow_nan=False)
    rows = json.loads(text)
    assert [r["claim"] for r in rows] == list(v.CLAIMS.values())
    assert all(r["value"] is None or math.isfinite(r["value"]) for r in rows)


def test_accuracy_interval_across_seeds_stays_inside_0_1():
    tables = {s: make_table(final_acc=a, seed=s) for s, a in zip((3, 4, 5), (0.99, 1.0, 0.97))}
    row = verdict_of(v.judge(tables), "phase_C")
    acc = row["detail"].split("accuracy ")[1]
    low, high = (float(x) for x in acc.split("[")[1].split("]")[0].split(", "))
    assert 0 <= low <= high <= 1 and "logits" in row["detail"]
