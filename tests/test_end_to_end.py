"""The whole path a user takes: `bumpdiff train tiny`, then `bumpdiff evaluate RUN_DIR`, in under a
minute, leaving a metrics table with exactly the agreed columns and a self-describing run folder."""
from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

from conftest import child_cpu_seconds

from bumpdiff_core.config import RunConfig, checkpoint_steps, profile_config

COLUMNS = ["step", "loss", "accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1", "frac_multi",
           "r2_x", "r2_y", "r2_x_raw", "r2_y_raw", "phase",
           # intervals, representation geometry, per-axis errors, seen / unseen scoring
           "n_labels", "accuracy_low", "accuracy_high", "r2_x_raw_low", "r2_x_raw_high", "r2_y_raw_low",
           "r2_y_raw_high", "intrinsic_dim", "participation_ratio", "knn_r2_x", "knn_r2_y", "neighbour_overlap",
           "error_x", "error_y", "accuracy_seen", "accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high",
           "n_unseen", "error_seen", "error_unseen", "memoriser_unseen", "error_x_low", "error_x_high",
           "error_y_low", "error_y_high",
           # the rounding rule (seen) and a latin run's test set
           "seen_round_accuracy", "test_accuracy", "test_n", "memoriser_test",
           # representation vs behaviour, the dimension null, every far-unseen position (measure/columns.py)
           *[f"r2_{a}_{k}{s}" for k in ("behaviour", "first") for a in "xy" for s in ("", "_low", "_high")],
           "dim_mle", "dim_noise", "dim_sheet_scale", "dim_null_low", "dim_null_high", "dim_null_median",
           "dim_null_low_90", "dim_null_high_90", "dim_null_low_99", "dim_null_high_99",
           "dim_twonn_null_low", "dim_twonn_null_high",
           "n_unseen_map_d2", "k_unseen_map_d2", "n_unseen_map_d3", "k_unseen_map_d3"]


def test_tiny_train_then_evaluate_in_under_a_minute(cli_tiny_run, bumpdiff_cli):
    started, cpu_started = time.perf_counter(), child_cpu_seconds()
    evaluated = bumpdiff_cli(["evaluate", cli_tiny_run.run_dir, "--quiet", "--threads", "1"],
                             cli_tiny_run.data_root)
    seconds = cli_tiny_run.seconds + time.perf_counter() - started
    cpu_seconds = cli_tiny_run.cpu_seconds + child_cpu_seconds() - cpu_started
    assert evaluated.returncode == 0, evaluated.stderr
    # CPU time is what the two commands cost, wherever they run. Wall-clock time also counts
    # whatever else shares the machine (on a 2-core box shared by several test runs it was 4x the
    # CPU time), so it is held to the minute where CI runs alone (CI=true).
    assert cpu_seconds < 60, f"train + evaluate used {cpu_seconds:.0f} CPU s"
    if os.environ.get("CI"):
        assert seconds < 60, f"train + evaluate took {seconds:.0f} s"
    # evaluate prints the table it wrote
    assert "accuracy" in evaluated.stdout and "phase" in evaluated.stdout


def test_metrics_table_has_exactly_the_agreed_columns_and_sane_values(cli_tiny_run):
    table = pd.read_csv(cli_tiny_run.run_dir / "metrics.csv")
    assert list(table.columns) == COLUMNS
    config = RunConfig.from_dict(json.loads((cli_tiny_run.run_dir / "config.json").read_text()))
    assert config == profile_config("tiny")
    assert table["step"].tolist() == checkpoint_steps(config)
    fractions = table[["frac_0", "frac_1", "frac_multi"]].sum(axis=1)
    np.testing.assert_allclose(fractions, 1.0)
    for column in ("accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1", "frac_multi"):
        assert table[column].between(0, 1).all(), column
    assert (table["accuracy"] <= table[["accuracy_x", "accuracy_y"]].min(axis=1)).all()
    assert table["r2_x"].between(0, 1).all() and table["r2_y"].between(0, 1).all()  # in-sample OLS
    assert set(table["phase"]) <= {"A", "B", "C"}
    assert np.isnan(table["loss"].iloc[0]) and (table["loss"].iloc[1:] > 0).all()


def test_the_run_folder_describes_itself(cli_tiny_run):
    from bumpdiff_core.results.schema import load_evaluation
    from bumpdiff_core.runs.store import Run

    run = Run.open(cli_tiny_run.run_dir)
    meta = json.loads((run.path / "meta.json").read_text())
    for key in ("versions", "git_commit", "device", "train_seconds", "evaluate_seconds", "parameters"):
        assert key in meta, key
    assert meta["device"] == "cpu" and meta["threads"] == 1
    # the evaluation's split (benchmarks/book_stages.py prints it): parts within the whole
    parts = meta["evaluate_sampling_seconds"] + meta["evaluate_umap_seconds"]
    assert meta["evaluate_sampling_seconds"] > 0 and meta["evaluate_umap_seconds"] > 0
    assert parts <= meta["evaluate_seconds"] + 1e-6
    assert run.checkpoint_steps_on_disk() == checkpoint_steps(run.config)
    last = checkpoint_steps(run.config)[-1]
    evaluation = load_evaluation(run, last)
    n, size = run.config.eval_labels, run.config.image_size
    assert evaluation["samples"].shape == (n, size, size)
    assert evaluation["labels"].shape == (n, 2) and evaluation["embedding"].shape == (n, 3)
    assert evaluation["latents"].shape[0] == n
    assert list(evaluation["layer_names"]) == ["stem", "down1", "down2", "mid", "up1", "up2"]
