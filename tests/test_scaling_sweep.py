"""The scaling sweep end to end without training: the `latin` design in the config and the data,
the step rule, the rung search (bisection per ladder, gated by the references, the budget check),
the read layer and `bumpdiff report scaling` on hand-written finished runs whose test outcomes
follow a known law M50 ∝ K^γ, and the figures on synthetic input."""
from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
from scipy.special import expit

from bumpdiff_core.config import ConfigError, profile_config
from bumpdiff_core.learn import data, latin
from bumpdiff_core.present import figures
from bumpdiff_core.present import report_scaling
from bumpdiff_core.results import scaling as read
from bumpdiff_core.sweeps import scaling
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep


# ---------------------------------------------------------------------------------------------
# config, data, step rule
# ---------------------------------------------------------------------------------------------

def test_latin_config_and_training_positions():
    c = profile_config("quick", {"design": "latin", "design_rungs": 3, "design_seed": 0})
    pos = data.training_positions(c)
    assert len(pos) == 3 * 16
    assert np.array_equal(pos, latin.rung_positions(16, 3, 0))
    # every x and every y exactly r times; never a test position
    assert (np.bincount(pos[:, 0].astype(int), minlength=16) == 3).all()
    assert (np.bincount(pos[:, 1].astype(int), minlength=16) == 3).all()
    assert not data.training_mask(c)[latin.test_mask(16, 0)].any()
    # the default config's run id does not see the new field
    assert "design_rungs" not in profile_config("quick").to_dict() or \
        profile_config("quick").run_id == profile_config("quick", {"design_rungs": 1}).run_id


@pytest.mark.parametrize("rungs", [0, 15])
def test_design_rungs_out_of_range_names_the_field_and_range(rungs):
    with pytest.raises(ConfigError) as e:
        profile_config("quick", {"design": "latin", "design_rungs": rungs})
    assert "design_rungs" in str(e.value) and "14" in str(e.value)


def test_one_step_rule_for_every_k():
    steps = [scaling.step_budget(k) for k in scaling.FULL_SIZES]
    assert scaling.step_budget(16) == scaling.STEP_BASE and steps == sorted(steps)
    for k, s in zip(scaling.FULL_SIZES, steps):  # one smooth rule at every K (rounded up to 100): no kink
        assert 0 <= s - scaling.STEP_BASE * scaling.step_shape(k) < 100
    # the measured passing budgets stay (K = 8: 800, K = 12: 1200); K = 16 more than the 1500 that failed
    assert [scaling.step_budget(k) for k in (8, 12, 16, 20)] == [800, 1200, 2000, 3200]
    assert scaling.step_budget(16, factor=2) == 2 * scaling.STEP_BASE


def test_scaling_sweeps_are_declared():
    sweep = SWEEPS["scaling"]
    refs = [s.config for s in sweep.runs()]
    assert [c.image_size for c in refs] == list(scaling.SIZES) and all(c.design == "grid" for c in refs)
    assert all(c.seed == scaling.SEEDS[0] and c.steps == scaling.step_budget(c.image_size) for c in refs)
    assert set(scaling.SEEDS).isdisjoint({0, 1, 2})  # untuned seeds only
    keys = sweep.search.candidates()
    assert len(keys) == len({sweep.search_spec(k).run_id for k in keys})  # distinct runs
    c = sweep.search_spec((12, "separable", 4, 5, 1)).config
    assert (c.design, c.design_rungs, c.conditioning, c.seed, c.image_size, c.design_seed) == \
        ("latin", 5, "separable", 4, 12, scaling.DESIGN_SEED)
    assert sweep.search_spec((12, "global+coord", 4, 5, 1)).config.coord_channels
    assert [sweep.search_spec(("reference", k)).run_id for k in scaling.SIZES] == [s.run_id for s in sweep.runs()]
    full = SWEEPS["scaling-full"].search
    assert set(full.sizes) >= {24, 32} and 5 in full.seeds


# ---------------------------------------------------------------------------------------------
# the rung search
# ---------------------------------------------------------------------------------------------

def test_search_bisects_each_ladder_and_waits_for_references():
    search = scaling.RungSearch((8, 12), (3,), ("global", "separable"))
    first = search.propose({})
    assert first == [(8, "global", 3, 3, 1), (8, "separable", 3, 3, 1), (12, "global", 3, 5, 1),
                     (12, "separable", 3, 5, 1)]
    assert search.propose({}, trained_sizes={12}) == first[2:]  # K = 8's reference not (yet) trained
    nxt = search.propose({(8, "global", 3, 3, 1): 0.8})
    assert (8, "global", 3, 1, 1) in nxt and (8, "global", 3, 3, 1) not in nxt
    # with the references' state: a K's reference comes ahead of its ladders until it finished
    assert search.propose({}, set(), set()) == [("reference", 8), ("reference", 12)]
    assert search.propose({}, {8}, {8}) == [("reference", 12)] + first[:2]  # references first
    # breadth first: a ladder with fewer finished rungs goes before one with more
    assert search.propose({(8, "global", 3, 3, 1): 0.8})[:3] == [(8, "separable", 3, 3, 1), (12, "global", 3, 5, 1),
                                                                 (12, "separable", 3, 5, 1)]
    closed = {(8, "global", 3, 1, 1): 0.2, (8, "global", 3, 2, 1): 0.45, (8, "global", 3, 3, 1): 0.8}
    assert all(k[:3] != (8, "global", 3) for k in search.propose(closed))


def test_budget_check_reruns_the_rung_nearest_m50_once_its_ladder_is_closed():
    search = scaling.RungSearch((16,), (3,), ("global",))
    finished = {(16, "global", 3, 7, 1): 0.7, (16, "global", 3, 3, 1): 0.3, (16, "global", 3, 5, 1): 0.6,
                (16, "global", 3, 4, 1): 0.45}
    assert search.propose(finished) == [(16, "global", 3, 4, 2)]  # 0.45 is nearest 0.5
    assert search.propose({**finished, (16, "global", 3, 4, 2): 0.5}) == []
    two = scaling.RungSearch((16,), (3, 4), ("global",))  # the budget check comes before the next seed
    assert two.propose(finished)[:2] == [(16, "global", 3, 4, 2), (16, "global", 4, 7, 1)]


# ---------------------------------------------------------------------------------------------
# the read layer and the report on hand-written runs
# ---------------------------------------------------------------------------------------------

BETA = 4.0


def _write(root, spec, last: dict, outcomes: dict | None = None):
    from bumpdiff_core.runs.store import Run, atomic_write_json, runs_root

    c = spec.config
    run = Run(runs_root(root) / c.run_id, c)
    run.path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.path / "config.json", c.to_dict())
    table = pd.DataFrame([{"step": 0}, {"step": c.steps, **last}])
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())
    if outcomes is not None:
        run.save_arrays(run.test_outcomes_path, **outcomes)
    run.update_meta(train_seconds=10.0)
    run.mark_complete()


def _simulate(root, sweep, gamma, alpha, under_trained=()):
    """References, then the search round after round, each rung's outcomes drawn from
    p = sigmoid(β (log M - γ log K - α)) with one uniform draw per test sample (nested)."""
    for spec in sweep.reference_runs():
        K = spec.config.image_size
        _write(root, spec, {"seen_round_accuracy": 0.5 if K in under_trained else 0.97})
    rng = np.random.default_rng(0)
    draws = {}
    for _ in range(40):
        refs = read.reference_table(sweep, root)
        trained = set(refs.loc[~refs["under_trained"].astype(bool), "K"].astype(int))
        keys = sweep.search.propose(read.finished_accuracy(sweep, root), trained)
        if not keys:
            return
        for key in keys:
            K, model, seed, r, factor = key
            u = draws.setdefault((K, model, seed), rng.random((2 * K, 2)))
            p = expit(BETA * (math.log(r * K) - gamma * math.log(K) - alpha))
            correct = u < p
            pos = latin.test_positions(K, sweep.search.design_seed)
            outcomes = dict(step=np.int64(1), positions=pos, position_ids=latin.position_ids(pos, K), correct=correct,
                            memoriser_correct=np.zeros(2 * K, bool))
            _write(root, sweep.search_spec(key), {"seen_round_accuracy": 0.95, "test_accuracy": float(correct.mean()),
                                                  "test_n": correct.size, "memoriser_test": 0.0}, outcomes)
    raise AssertionError("the search did not close")


@pytest.fixture
def small_sweep(monkeypatch):
    sweep = Sweep("scaling-test", "tiny", main_seeds=(), figure_seeds=(),
                  search=scaling.RungSearch((8, 12, 16, 20), (3, 4), ("global",), step_base=40))
    monkeypatch.setitem(SWEEPS, sweep.name, sweep)
    return sweep


@pytest.mark.parametrize("gamma, alpha, verdict", [(1, math.log(4), "efficient (factorized)"),
                                                   (2, math.log(0.4), "coupled (O(K²))")])
def test_report_recovers_gamma_from_a_simulated_search(tmp_path, small_sweep, gamma, alpha, verdict):
    _simulate(tmp_path, small_sweep, gamma, alpha)
    rep = report_scaling.scaling_report(small_sweep.name, tmp_path, n_boot=100)
    json.loads(report_scaling.write_json(rep))  # strict JSON
    (fit,) = rep["fits"]
    assert fit["low"] <= gamma <= fit["high"] and fit["verdict"] == verdict, fit
    runs = pd.DataFrame(rep["runs"])
    assert set(runs["K"]) == {8, 12, 16, 20} and (runs["memoriser_test"] == 0).all()
    # bisection, not whole ladders: far fewer rungs than the ladders hold
    assert len(runs) < sum(K - 2 for K in (8, 12, 16, 20)) * 2 / 2
    b = rep["budget_check"]
    assert b["K"] == 16 and b["doubled_steps"] == 2 * b["steps"]
    assert rep["example_map"]["K"] == 16 and len(rep["example_map"]["positions"]) == 32
    md = report_scaling.scaling_markdown(rep)
    assert "γ = " in md and "M50 per K" in md and "Declared before any data" in md


def test_an_under_trained_k_gets_no_rungs_and_too_few_k_values_refuse(tmp_path, small_sweep):
    _simulate(tmp_path, small_sweep, 1, math.log(4), under_trained=(12, 16))
    rep = report_scaling.scaling_report(small_sweep.name, tmp_path, n_boot=20)
    assert rep["under_trained"] == [12, 16]
    assert {r["K"] for r in rep["runs"]} == {8, 20}
    (fit,) = rep["fits"]
    assert "at least 3" in fit["error"]


def test_page_source_falls_back_to_the_committed_json(tmp_path, small_sweep):
    committed = tmp_path / "scaling.json"
    assert report_scaling.load_scaling(small_sweep.name, tmp_path, committed) == (None, "none")
    committed.write_text(json.dumps({"sweep": "scaling", "runs": [], "fits": [], "date": "2026-12-05", "commit": "abc",
                                     "machine": "m", "img_per_s": 500.0, "wall_seconds": 3600}))
    rep, source = report_scaling.load_scaling(small_sweep.name, tmp_path, committed)
    assert source == "committed"
    text = report_scaling.source_sentence(rep, source)
    assert "results/scaling.json" in text and report_scaling.REPLACE_COMMAND in text


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------

def test_m50_plot_and_outcome_map_on_synthetic_input():
    fits = [{"model": "global", "gamma": 1.1, "low": 0.8, "high": 1.4, "a": -1.0, "b": 2.0, "c": -2.2,
             "m50_by_k": {"8": {"m50": 30.0, "low": 25.0, "high": 36.0, "bound": None},
                          "12": {"m50": None, "low": None, "high": None, "bound": "> 120"}}}]
    fig = figures.m50_plot(fits)
    names = [t.name for t in fig.data]
    assert "∝ K (factorized)" in names and "∝ K² (coupled)" in names
    assert any(n and n.startswith("global: γ = 1.10 [0.80, 1.40]") for n in names)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert any(t.marker.symbol == "triangle-up-open" for t in fig.data if t.marker is not None and t.marker.symbol)
    mask = latin.rung_mask(8, 2)
    pos = latin.test_positions(8)
    m = figures.latin_outcome_map(mask, pos, np.ones((16, 2)))
    assert isinstance(m, go.Figure) and np.nansum(m.data[1].z) == 16


def test_a_committed_result_from_a_stopped_sweep_says_what_it_covers():
    from bumpdiff_core.present.report_scaling import coverage_sentence

    design = {"sizes": [8, 12, 16, 20], "seeds": [3, 4]}
    runs = [{"K": k, "seed": 3} for k in (8, 12, 16)]
    text = coverage_sentence({"design": design, "runs": runs})
    assert "K = 8, 12, 16 and seed(s) 3" in text and "preliminary" in text
    whole = [{"K": k, "seed": s} for k in (8, 12, 16, 20) for s in (3, 4)]
    assert coverage_sentence({"design": design, "runs": whole}) == ""
