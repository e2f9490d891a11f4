"""What one evaluated checkpoint writes: the metrics table's columns, in order, and the settings
they were measured with. Read by `measure.evaluate` (the writer) and `results.schema` (the
readers); no torch here, so reading a finished run never imports it."""

METRIC_COLUMNS = ["step", "loss", "accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1",
                  "frac_multi", "r2_x", "r2_y", "r2_x_raw", "r2_y_raw", "phase",
                  # added later (runs evaluated before lack them: NaN when loaded)
                  "n_labels", "accuracy_low", "accuracy_high",
                  "r2_x_raw_low", "r2_x_raw_high", "r2_y_raw_low", "r2_y_raw_high",
                  "intrinsic_dim", "participation_ratio", "knn_r2_x", "knn_r2_y", "neighbour_overlap",
                  "error_x", "error_y",
                  "accuracy_seen", "accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high",
                  "n_unseen", "error_seen", "error_unseen", "memoriser_unseen",
                  "error_x_low", "error_x_high", "error_y_low", "error_y_high",
                  # the rounding rule (learn/latin.rounding_correct) on the evaluation labels; for
                  # design=latin at the last checkpoint: the test set (test_outcomes.npz) and its memoriser
                  "seen_round_accuracy", "test_accuracy", "test_n", "memoriser_test"]
# representation vs behaviour, and the dimension null (measure/representation.py; the names are
# repeated there as REPRESENTATION_COLUMNS, a test checks they agree)
METRIC_COLUMNS += ([f"r2_{a}_behaviour{s}" for a in "xy" for s in ("", "_low", "_high")]
                   + [f"r2_{a}_first{s}" for a in "xy" for s in ("", "_low", "_high")]
                   + ["dim_mle", "dim_noise", "dim_sheet_scale", "dim_null_low", "dim_null_high", "dim_null_median",
                      "dim_null_low_90", "dim_null_high_90", "dim_null_low_99", "dim_null_high_99",
                      "dim_twonn_null_low", "dim_twonn_null_high"])
# every unseen grid position scored from the last checkpoint's position map (last row only; NaN
# elsewhere): positions at Chebyshev distance >= d px from every training position, and how many
# of them were drawn right, for each d in UNSEEN_MAP_DISTANCES
UNSEEN_MAP_DISTANCES = (2, 3)
METRIC_COLUMNS += [f"{k}_unseen_map_d{d}" for d in UNSEEN_MAP_DISTANCES for k in ("n", "k")]

SEEN, UNSEEN = 0, 1  # values of the eval npz's `split`

# how the columns were measured (measure.evaluate reads them; pages quote them)
UNSEEN_LABELS = 40  # unseen positions sampled per checkpoint (all of them when fewer exist)
BOOTSTRAP_REPLICATES = 200
BOOTSTRAP_SEED = 0
KNN_K = 5
OVERLAP_K = 10
