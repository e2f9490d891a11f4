"""The per-checkpoint columns added to metrics.csv: present and finite on a tiny run, intervals
that hold their values, the grid design unchanged (tests/test_golden.py), and for a lines design
the unseen split sampled in the same pass, scored apart, with a memoriser that scores 0."""
from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest

from bumpdiff_core.measure import evaluate, intervals, metrics
from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.data import evaluation_positions, training_positions
from bumpdiff_core.measure.generalization import UNSEEN_MIN_DISTANCE, chebyshev_distance_to_set
from bumpdiff_core.runs.store import Run
from bumpdiff_core.results.view import RunView

ORIGINAL = ["step", "loss", "accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1", "frac_multi",
            "r2_x", "r2_y", "r2_x_raw", "r2_y_raw", "phase"]
UNSEEN_COLUMNS = ["accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high", "error_unseen",
                  "memoriser_unseen"]
INTERVALS = [("accuracy", "accuracy_low", "accuracy_high"), ("r2_x_raw", "r2_x_raw_low", "r2_x_raw_high"),
             ("r2_y_raw", "r2_y_raw_low", "r2_y_raw_high")]


@pytest.fixture(scope="session")
def lines_run(tmp_path_factory):
    """A finished tiny run trained on 2 rows + 2 columns of the 8 x 8 grid (~5 s)."""
    from bumpdiff_core.execute.pipeline import ensure_run

    root = tmp_path_factory.mktemp("lines_run_data")
    return ensure_run(profile_config("tiny", {"design": "lines", "design_lines": 2}), threads=1,
                      progress=False, root=root)


def test_columns_extend_the_original_ones_in_order():
    assert evaluate.METRIC_COLUMNS[:len(ORIGINAL)] == ORIGINAL
    assert len(set(evaluate.METRIC_COLUMNS)) == len(evaluate.METRIC_COLUMNS)


def test_new_columns_are_present_and_finite_on_the_tiny_run(tiny_run):
    table = pd.read_csv(tiny_run.metrics_path)
    assert list(table.columns) == evaluate.METRIC_COLUMNS
    # the sheet null exists only where the noise does not swamp the neighbour spacing (dim_noise finite);
    # the position-map counts only on the last row of a design other than grid
    null = [c for c in evaluate.METRIC_COLUMNS if c.startswith("dim_null") or c.startswith("dim_twonn_null")]
    maps = [c for c in evaluate.METRIC_COLUMNS if "_unseen_map_" in c]
    latin = ["test_accuracy", "memoriser_test"]  # design=latin only (test_n is 0 elsewhere)
    assert table[latin].isna().all().all() and (table["test_n"] == 0).all()
    new = [c for c in evaluate.METRIC_COLUMNS
           if c not in ORIGINAL and c not in UNSEEN_COLUMNS + null + maps + latin + ["dim_noise"]]
    assert np.isfinite(table[new].to_numpy(float)).all(), table[new]
    built = np.isfinite(table["dim_noise"].to_numpy(float))
    assert np.isfinite(table.loc[built, null].to_numpy(float)).all() and table.loc[~built, null].isna().all().all()
    assert table[maps].isna().all().all()
    # design=grid: no unseen position; seen accuracy is the accuracy
    assert (table["n_unseen"] == 0).all() and table[UNSEEN_COLUMNS].isna().all().all()
    np.testing.assert_array_equal(table["accuracy_seen"], table["accuracy"])
    assert (table["n_labels"] == tiny_run.config.eval_labels).all()


def test_intervals_contain_their_values_and_have_positive_width(tiny_run, lines_run):
    for run in (tiny_run, lines_run):
        table = pd.read_csv(run.metrics_path)
        for value, low, high in INTERVALS + [("accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high")]:
            rows = table.dropna(subset=[value])
            assert len(rows) or value == "accuracy_unseen"
            assert (rows[low] <= rows[value]).all() and (rows[value] <= rows[high]).all(), (value, rows)
            assert (rows[high] - rows[low] > 0).all(), value


def test_r2_interval_is_around_the_same_leave_one_out_r2(tiny_run):
    table = pd.read_csv(tiny_run.metrics_path)
    step = int(table["step"].iloc[-1])
    ev = tiny_run.load_arrays(tiny_run.eval_path(step))
    for j, axis in enumerate("xy"):
        value, low, high = intervals.bootstrap_r2_loo(ev["latents"], ev["labels"][:, j],
                                                      n_boot=evaluate.BOOTSTRAP_REPLICATES, seed=evaluate.BOOTSTRAP_SEED)
        assert value == pytest.approx(table[f"r2_{axis}_raw"].iloc[-1], rel=1e-9, abs=1e-12)
        assert (low, high) == pytest.approx((table[f"r2_{axis}_raw_low"].iloc[-1], table[f"r2_{axis}_raw_high"].iloc[-1]),
                                            rel=1e-9, abs=1e-12)


def test_a_lines_design_is_scored_on_unseen_positions_a_memoriser_fails(lines_run):
    c = lines_run.config
    table = pd.read_csv(lines_run.metrics_path)
    assert (table["n_unseen"] > 0).all()
    assert np.isfinite(table[UNSEEN_COLUMNS].to_numpy(float)).all()
    assert (table["memoriser_unseen"] == 0).all()
    np.testing.assert_array_equal(table["accuracy_seen"], table["accuracy"])
    ev = lines_run.load_arrays(lines_run.eval_path(int(table["step"].iloc[-1])))
    split = ev["split"]
    n = c.eval_labels
    assert (split[:n] == evaluate.SEEN).all() and (split[n:] == evaluate.UNSEEN).all()
    assert len(split) == n + int(table["n_unseen"].iloc[-1])
    np.testing.assert_array_equal(ev["labels"][:n], evaluation_positions(c))  # appended after them
    far = chebyshev_distance_to_set(ev["labels"][n:], training_positions(c))
    assert (far >= UNSEEN_MIN_DISTANCE).all()
    # the representation (per-layer R², UMAP) uses the evaluation labels only
    assert lines_run.load_arrays(lines_run.umap_path(0))["embedding"].shape[0] == n


def test_the_unseen_labels_do_not_change_the_evaluation_labels_samples(lines_run):
    c = lines_run.config
    step = evaluate.checkpoint_steps(c)[-1]
    alone, _, _ = evaluate.sample_checkpoint(lines_run, step, "cpu", labels=evaluation_positions(c), tap_names=[])
    stored = lines_run.load_arrays(lines_run.eval_path(step))["samples"][:c.eval_labels]
    np.testing.assert_array_equal(alone.astype(np.float16), stored)


def test_the_view_hands_out_the_split_and_the_position_map(lines_run, tiny_run):
    view = RunView.open(lines_run)
    ev = view.evaluation(view.last_step)
    assert len(ev.labels) == len(ev.samples) == len(ev.latents) == len(ev.embedding) == lines_run.config.eval_labels
    assert len(ev.unseen_labels) == len(ev.unseen_samples) == int(view.row(view.last_step)["n_unseen"]) > 0
    pm = view.position_map
    shape = (8, 8)
    assert pm["accuracy"].shape == pm["training_mask"].shape == pm["unseen_mask"].shape == shape
    assert np.isfinite(pm["accuracy"]).all() and int(pm["step"]) == view.last_step
    assert pm["training_mask"].sum() == len(training_positions(lines_run.config))
    assert not (pm["training_mask"] & pm["unseen_mask"]).any() and pm["unseen_mask"].any()
    assert RunView.open(tiny_run).position_map is None
    assert not tiny_run.position_map_path.exists()
    assert RunView.open(tiny_run).evaluation(0).unseen_labels.shape == (0, 2)


def test_a_run_evaluated_before_loads_with_nan_and_evaluate_recomputes_from_the_cache(lines_run, tmp_path):
    from bumpdiff_core.runs.store import RunLayout

    copy = RunLayout.of(lines_run.path.name, tmp_path).path
    shutil.copytree(lines_run.path, copy)
    run = Run.open(copy)
    fresh = pd.read_csv(run.metrics_path)
    buf = io.StringIO()
    fresh[ORIGINAL].to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())  # what the old code wrote
    table = RunView.open(run).table
    assert list(table.columns) == evaluate.METRIC_COLUMNS
    assert table["accuracy_unseen"].isna().all() and table["n_labels"].isna().all()
    cached = {p: p.stat().st_mtime_ns for p in sorted(copy.rglob("*.npz")) if p.name != "losses.npz"}
    evaluate.evaluate_run(run, progress=False)  # what `bumpdiff evaluate RUN_DIR` does
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # nothing resampled
    again = pd.read_csv(run.metrics_path)
    pd.testing.assert_frame_equal(again, fresh)


def test_an_evaluation_cached_before_the_split_is_resampled_once(lines_run, tmp_path):
    from bumpdiff_core.runs.store import RunLayout

    copy = RunLayout.of(lines_run.path.name, tmp_path).path
    shutil.copytree(lines_run.path, copy)
    run = Run.open(copy)
    n = run.config.eval_labels
    old = run.load_arrays(run.eval_path(0))
    run.save_arrays(run.eval_path(0), **{k: (v[:n] if k in ("labels", "samples", "latents") else v)
                                         for k, v in old.items() if k != "split"})
    row = evaluate.evaluate_checkpoint(run, 0)
    assert row["n_unseen"] > 0 and "split" in run.load_arrays(run.eval_path(0))
    np.testing.assert_array_equal(run.load_arrays(run.eval_path(0))["samples"], old["samples"])


def test_the_measures_cost_milliseconds_per_checkpoint(tiny_run):
    seconds = {}
    for step in evaluate.checkpoint_steps(tiny_run.config):
        evaluate.evaluate_checkpoint(tiny_run, step, seconds=seconds)  # all cached: no sampling
    assert set(seconds) >= {"sampling", "umap", "measures"}


def test_memoriser_accuracy_is_the_baseline_on_those_labels(lines_run):
    from bumpdiff_core.measure.generalization import memoriser_baseline

    c = lines_run.config
    labels = np.array([[0.0, 0.0], [7.0, 7.0]], dtype=np.float64)
    assert evaluate._memoriser_accuracy(c, labels) == memoriser_baseline(
        training_positions(c), labels, c.sigma, c.image_size)["accuracy"] == 0.0
    assert metrics.TOLERANCE_PX < UNSEEN_MIN_DISTANCE


def test_the_position_map_scores_every_far_unseen_position_on_the_last_row(lines_run):
    from bumpdiff_core.learn.data import centre_grid, training_positions
    from bumpdiff_core.measure.generalization import chebyshev_distance_to_set

    c = lines_run.config
    table = pd.read_csv(lines_run.metrics_path)
    last = table.iloc[-1]
    grid = centre_grid(c.image_size, c.increment_x, c.increment_y)
    far = chebyshev_distance_to_set(grid, training_positions(c)) >= 2 - 1e-6
    assert last["n_unseen_map_d2"] == far.sum() >= last["n_unseen"]  # every one, not a sample of 40
    assert 0 <= last["k_unseen_map_d2"] <= last["n_unseen_map_d2"]
    assert last["n_unseen_map_d3"] <= last["n_unseen_map_d2"]
    assert table.iloc[:-1][["n_unseen_map_d2", "k_unseen_map_d2"]].isna().all().all()


def test_the_second_draw_and_the_first_step_tap_are_stored(tiny_run):
    step = int(pd.read_csv(tiny_run.metrics_path)["step"].iloc[-1])
    ev = tiny_run.load_arrays(tiny_run.eval_path(step))
    assert ev["latents_b"].shape == ev["latents"].shape == ev["latents_first"].shape
    assert not np.allclose(ev["latents_b"], ev["latents"])  # another noise seed
    assert not np.allclose(ev["latents_first"], ev["latents"])  # one step, not the trajectory mean
