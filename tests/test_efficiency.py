"""The efficiency chapter: the fast unseen count, the report's efficiency rows, the figure builders on synthetic arrays, the page's sentences, and the
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
from bumpdiff_core.claims import verdicts
from bumpdiff_core.config import profile_config
from bumpdiff_core.measure.generalization import n_unseen, unseen_mask, unseen_positions
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


# ---------------------------------------------------------------------------------------------
# the fast unseen count
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("design,kw", [("random", {"count": 60}), ("lines", {"lines": 2}),
                                       ("holdout", {"holdout_size": 6}), ("random", {"count": 9, "seed": 3})])
def test_fast_unseen_count_matches_the_scoring_rule(design, kw):
    k = 16 if design != "random" or kw["count"] > 10 else 8
    mask = data.design_mask(design, (k, k), **kw)
    grid = data.centre_grid(k, 1.0, 1.0)
    assert n_unseen(mask) == len(unseen_positions(grid[mask.ravel()], grid))


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
    pm = {"accuracy": acc, "training_mask": masks["lines k=2"], "unseen_mask": unseen_mask(masks["lines k=2"])}
    maps = figures.position_maps({"lines": pm, "grid": None})
    markers = [t for t in maps.data if t.type == "scatter"]
    assert {t.name for t in markers} == {"training position", "unseen position"}
    # a run without a map (design=grid) is left out rather than drawn as an empty panel
    assert len(markers[0].x) == 60 and [a.text for a in maps.layout.annotations] == ["lines"]


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
    assert "memoriser" in pages.efficiency_predictions()


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
