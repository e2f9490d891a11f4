"""The efficiency chapter: the data-scaling ladder and its M* / slope fits (scaling.py), the report's
efficiency rows, the figure builders on synthetic arrays, the page's sentences, and the
efficiency notebook's code run in-process against a synthetic sweep."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from synthetic import OVERRIDES, write_run

from bumpdiff_core.learn import data
from bumpdiff_core.present import figures, report
from bumpdiff_core.present import pages_efficiency as pages
from bumpdiff_core.results import tables
from bumpdiff_core.claims import scaling, verdicts
from bumpdiff_core.config import profile_config
from bumpdiff_core.measure.generalization import unseen_positions
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


# ---------------------------------------------------------------------------------------------
# the ladder
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("design,kw", [("random", {"count": 60}), ("lines", {"lines": 2}),
                                       ("holdout", {"holdout_size": 6}), ("random", {"count": 9, "seed": 3})])
def test_fast_unseen_count_matches_the_scoring_rule(design, kw):
    k = 16 if design != "random" or kw["count"] > 10 else 8
    mask = data.design_mask(design, (k, k), **kw)
    grid = data.centre_grid(k, 1.0, 1.0)
    assert scaling.n_unseen(mask) == len(unseen_positions(grid[mask.ravel()], grid))


def test_ladders_stop_where_unseen_positions_run_out():
    assert scaling.lines_ladder(16) == [1, 2, 3, 4]
    ladder = scaling.random_ladder(16)
    assert ladder[0] == 16 and ladder == sorted(ladder)
    for c in ladder:
        assert all(scaling.n_unseen(data.design_mask("random", (16, 16), count=c, seed=s)) >= scaling.MIN_UNSEEN
                   for s in scaling.SCALING_SEEDS)
    assert scaling.design_size("lines", 16, 2) == 60 and scaling.design_size("random", 16, 45) == 45


def test_step_budget_follows_the_measured_points():
    assert scaling.step_budget(16) == 1500 and scaling.step_budget(32) == 6000  # quick and cpu32
    budgets = [scaling.step_budget(k) for k in scaling.SCALING_SIZES]
    assert budgets == sorted(budgets) and budgets[0] >= 600
    assert scaling.step_budget(12) > 900  # 900 left the global K = 12 reference at accuracy 0.76


# ---------------------------------------------------------------------------------------------
# M* and slopes on hand-made finals
# ---------------------------------------------------------------------------------------------

def _finals(power: float, sizes=(8, 12, 16, 24, 32), seeds=(0, 1), ref=0.95):
    """Finals of a fake scaling sweep where unseen accuracy reaches 0.8 once count >= K**power."""
    out = []
    for k in sizes:
        for seed in seeds:
            base = dict(image_size=k, conditioning="global", seed=seed)
            out.append((profile_config("quick", base), {"accuracy": ref}))
            for c in sorted({int(round(v)) for v in np.geomspace(k, k * k, 9)}):
                cfg = profile_config("quick", {**base, "design": "random", "design_count": c, "design_seed": seed})
                out.append((cfg, {"accuracy_unseen": 0.9 if c >= k ** power else 0.1}))
    return out


def test_m_star_and_slope_recover_the_exponent():
    for power in (1.0, 1.6):
        mstar = scaling.m_star_table(_finals(power))
        assert len(mstar) == 10 and mstar["m_star"].notna().all()
        (fit,) = scaling.slope_fits(mstar, n_boot=300)
        assert fit["design"] == "random" and fit["model"] == "global"
        assert fit["low"] <= fit["slope"] <= fit["high"]
        assert abs(fit["slope"] - power) < 0.15, fit


def test_fewer_than_four_k_values_give_no_slope_and_a_short_budget_is_left_out():
    mstar = scaling.m_star_table(_finals(1.0, sizes=(8, 16, 32)))
    (fit,) = scaling.slope_fits(mstar)
    assert math.isnan(fit["slope"]) and "fewer than 4 cannot decide a slope" in fit["detail"]
    short = scaling.m_star_table(_finals(1.0, ref=0.5))
    assert short["m_star"].isna().all() and "budget too short" in short["detail"].iloc[0]
    never = scaling.m_star_table(_finals(3.0))  # no rung reaches the threshold: censored
    assert never["m_star"].isna().all() and "censored" in never["detail"].iloc[0]
    assert never["above"].notna().all() and mstar["above"].isna().all()


def test_report_fits_for_a_scaling_sweep():
    sweep = Sweep("scaling-test", "quick", main_seeds=(), figure_seeds=(), scaling=True,
                  efficiency=tuple(dict(d) for d in scaling.scaling_overrides(sizes=(8, 12, 16, 24), seeds=(0,),
                                                                              models=("global",))))
    tables = {}
    for spec in sweep.efficiency_runs():
        c = spec.config
        if c.design == "grid":
            tables[spec.run_id] = pd.DataFrame({"step": [c.steps], "accuracy": [0.95]})
        else:
            size = scaling.design_size(c.design, c.image_size, c.design_count if c.design == "random" else c.design_lines)
            tables[spec.run_id] = pd.DataFrame({"step": [c.steps], "accuracy_unseen": [0.9 if size >= 2 * c.image_size else 0.2]})
    fits = scaling.scaling_fits(sweep, tables)
    assert {(f["design"], f["model"]) for f in fits} == {("random", "global"), ("lines", "global")}
    for f in fits:
        assert set(f) == set(report.FIT_COLUMNS)
        if f["slope"] == f["slope"]:
            assert f["low"] <= f["slope"] <= f["high"]
    assert scaling.scaling_fits(SWEEPS["book-quick"], tables) == []


# ---------------------------------------------------------------------------------------------
# the report's efficiency rows
# ---------------------------------------------------------------------------------------------

def _eff_table(acc_unseen=0.5, n=40, with_interval=True, memo=0.0):
    t = pd.DataFrame({"step": [0, 1500], "accuracy": [0.0, 0.97], "accuracy_seen": [0.0, 0.97],
                      "accuracy_unseen": [0.0, acc_unseen], "n_unseen": [n, n], "memoriser_unseen": [memo, memo]})
    if with_interval:
        t["accuracy_unseen_low"], t["accuracy_unseen_high"] = [0.0, acc_unseen - 0.1], [0.1, acc_unseen + 0.1]
    return t


def test_efficiency_row_fills_a_wilson_interval_when_the_table_has_none():
    c = profile_config("quick", {"design": "lines", "design_lines": 2})
    row = tables.efficiency_row(c, _eff_table(with_interval=False), "abc")
    assert row["label"] == "lines k=2 · global" and row["positions"] == 60 and row["step"] == 1500
    assert row["accuracy_unseen_low"] < 0.5 < row["accuracy_unseen_high"]
    old = tables.efficiency_row(c, pd.DataFrame({"step": [0, 10], "accuracy": [0.1, 0.9]}))  # an old run
    assert old["accuracy_seen"] == 0.9 and math.isnan(old["accuracy_unseen"]) and math.isnan(old["memoriser_unseen"])
    md = report.efficiency_markdown([row, old])
    assert "0.50 [" in md and "| lines k=2 · global | 60 | 1500 |" in md and "—" in md


def test_report_json_has_an_efficiency_section(tmp_path):
    from test_report import write_finished_run

    sweep = Sweep("eff-report", "tiny", main_seeds=(0,), efficiency=({"design": "lines", "design_lines": 2},
                                                                     {"design": "lines", "conditioning": "separable"}))
    from test_verdicts import make_table

    for spec in sweep.runs():
        t = make_table(seed=0)
        if spec.config.design == "lines":
            t = t.assign(accuracy_seen=t["accuracy"], accuracy_unseen=0.25, accuracy_unseen_low=0.1,
                         accuracy_unseen_high=0.4, n_unseen=4, memoriser_unseen=0.0)
        write_finished_run(spec, tmp_path, t)
    rep = report.sweep_report(sweep, root=tmp_path)
    obj = json.loads(rep.to_json())
    assert [r["conditioning"] for r in obj["efficiency"]] == ["global", "separable"]
    for r in obj["efficiency"]:
        assert set(r) == set(tables.EFFICIENCY_COLUMNS)
        assert r["accuracy_unseen_low"] <= r["accuracy_unseen"] <= r["accuracy_unseen_high"]
        assert r["memoriser_unseen"] == 0.0 and r["design"] == "lines"
    assert "## Efficiency" in rep.to_markdown()


# ---------------------------------------------------------------------------------------------
# figures and sentences
# ---------------------------------------------------------------------------------------------

def test_figure_builders_on_synthetic_arrays():
    masks = {"lines k=2": data.design_mask("lines", (16, 16), lines=2),
             "holdout 6": data.design_mask("holdout", (16, 16), holdout_size=6)}
    fig = figures.design_maps(masks)
    assert isinstance(fig, go.Figure) and sum(t.type == "heatmap" for t in fig.data) == 2
    assert "60 trained, 100 unseen" in fig.layout.annotations[0].text

    curves = figures.seen_unseen_curves({"a": _eff_table(), "old run": pd.DataFrame({"step": [0, 1], "accuracy": [0, 1.0]})})
    names = [t.name for t in curves.data]
    assert names.count("memoriser (unseen)") == 2 and "unseen, 95 % Wilson" in names
    assert "memoriser" in curves.layout.title.text

    acc = np.random.default_rng(0).uniform(size=(16, 16))
    pm = {"accuracy": acc, "training_mask": masks["lines k=2"], "unseen_mask": scaling.unseen_mask(masks["lines k=2"])}
    maps = figures.position_maps({"lines": pm, "grid": None})
    markers = [t for t in maps.data if t.type == "scatter"]
    assert {t.name for t in markers} == {"training position", "unseen position"}
    # a run without a map (design=grid) is left out rather than drawn as an empty panel
    assert len(markers[0].x) == 60 and [a.text for a in maps.layout.annotations] == ["lines"]

    mstar = scaling.m_star_table(_finals(1.0))
    plot = figures.scaling_plot(mstar, scaling.slope_fits(mstar, n_boot=50))
    names = [t.name for t in plot.data]
    assert "slope 1: factorized, O(K)" in names and "slope 2: coupled, O(K²)" in names
    assert plot.layout.xaxis.type == "log" and plot.layout.yaxis.type == "log"
    assert any(n and n.startswith("random · global (slope 1.0") for n in names)
    assert not any(n and "M* above" in n for n in names)
    # a censored ladder is drawn as a hollow triangle at the largest size trained (M* lies above)
    never = scaling.m_star_table(_finals(3.0))
    (above,) = [t for t in figures.scaling_plot(never).data if t.name and "M* above" in t.name]
    assert above.marker.symbol == "triangle-up-open" and list(above.y) == list(never["above"])


def test_page_sentences():
    rows = pd.DataFrame([
        tables.efficiency_row(profile_config("quick", {"design": "lines"}), _eff_table(0.6, memo=0.0)),
        tables.efficiency_row(profile_config("quick", {"design": "lines", "conditioning": "separable"}), _eff_table(0.95)),
    ])
    text = pages.efficiency_summary(rows)
    assert "**lines k=2 · global** (60 training positions, step 1500): seen 0.97; unseen 0.60 [0.50, 0.70] on 40 " \
           "positions; memoriser 0.00; above the memoriser" in text
    assert "separable higher" in pages.separable_vs_global(rows)
    close = rows.assign(accuracy_unseen=[0.6, 0.65], accuracy_unseen_low=[0.5, 0.55], accuracy_unseen_high=[0.7, 0.75])
    assert "no difference shown" in pages.separable_vs_global(close)
    assert pages.efficiency_summary(rows.iloc[:0]) == "This sweep has no efficiency runs."
    assert str(scaling.M_STAR_ACCURACY) in pages.efficiency_predictions() and "memoriser" in pages.efficiency_predictions()


def test_fig5_control_says_when_the_statistic_cannot_tell():
    steps = [0, 100, 200, 300, 400]
    together = pd.DataFrame({"step": steps, "error_x": [5, 3, 0.5, 0.3, 0.2], "error_y": [5, 3, 0.5, 0.3, 0.2],
                             "accuracy_x": [0, 0.2, 0.9, 1, 1], "accuracy_y": [0, 0.2, 0.9, 1, 1], "n_labels": 100})
    x_first = together.assign(error_y=[5, 4, 4, 3, 0.5])
    both = pages.fig5_control(together, together)
    assert "cannot tell the hypotheses apart" in both
    assert both.count("reads **together**") == 2
    contrast = pages.fig5_control(x_first, together)
    assert "**separable** model: reads **apart**" in contrast and "can detect factorized learning" in contrast
    assert "missing: separable" in pages.fig5_control(None, together)


def test_scaling_section_without_runs_says_how_and_how_long():
    empty = report.SweepReport("efficiency-full", [], [], pd.DataFrame(columns=verdicts.CLAIM_COLUMNS))
    text = pages.scaling_section(empty)
    assert "bumpdiff sweep efficiency-full" in text and "Estimated time on 2 cores" in text
    assert f"K = 32: {scaling.step_budget(32)} steps" in text


# ---------------------------------------------------------------------------------------------
# the notebook, in-process, on a synthetic sweep
# ---------------------------------------------------------------------------------------------

def test_efficiency_notebook_runs_on_finished_synthetic_runs(tmp_path, monkeypatch):
    efficiency = ({"design": "lines", "design_lines": 2}, {"design": "lines", "design_lines": 2, "conditioning": "separable"},
                  {"conditioning": "separable", "increment_x": 0.1, "increment_y": 1.0})
    sweep = Sweep("synthetic-efficiency", "tiny", overrides=OVERRIDES, pairs=((0.1, 1.0),), efficiency=efficiency,
                  pages=("efficiency",))
    for spec in sweep.runs():
        write_run(tmp_path, **{k: v for k, v in spec.overrides_dict.items() if k not in OVERRIDES})
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path))
    monkeypatch.setenv("BUMPDIFF_STATIC_BOOK", "1")
    monkeypatch.setitem(SWEEPS, sweep.name, sweep)
    namespace: dict = {}
    nb = json.loads((NOTEBOOKS / "efficiency.ipynb").read_text())
    shown = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "efficiency.ipynb", "exec"), namespace)
            if "parameters" in cell["metadata"].get("tags", []):
                namespace.update(sweep.page_specs()[0].parameters)
    assert namespace["sweep"] == sweep.name
    assert list(namespace["views"]) == ["lines k=2 · global", "lines k=2 · separable", "grid dx 0.1, dy 1 · separable"]
    separable, global_ = pages.fig5_views(namespace["views"], namespace["runs"].pairs())
    assert separable.config.conditioning == "separable" and global_.config.conditioning == "global"
    assert "bumpdiff sweep efficiency-full" in pages.scaling_section(namespace["scaling"])
