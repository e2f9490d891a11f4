"""A finished run made of synthetic arrays (no training): 5 checkpoints whose samples are drawn so
that detection labels them A, A, B, C, C. `synthetic_view()` holds it in memory; `write_run(root)`
stores it as a finished run folder, read through the real store."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd

from bumpdiff_core.measure import metrics
from bumpdiff_core.config import profile_config, tap_layer_names
from bumpdiff_core.results.schema import METRIC_COLUMNS
from bumpdiff_core.results.view import RunView

STEPS = [0, 10, 20, 30, 40]
PHASES = ["A", "A", "B", "C", "C"]
SIZE = 16
OVERRIDES = {"image_size": SIZE, "steps": 40}


def config(**changes):
    return profile_config("tiny", {**OVERRIDES, **changes})


def _bumps(centres, n_pixels, sigma):
    yy, xx = np.mgrid[0:n_pixels, 0:n_pixels]
    img = np.zeros((n_pixels, n_pixels))
    for x, y in centres:
        img = np.maximum(img, np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2)))
    return img * 2 - 1


def evaluations(n: int = 12, seed: int = 0) -> dict:
    """{step: arrays} as `evaluate` stores them (eval + umap files)."""
    c = config()
    rng = np.random.default_rng(seed)
    labels = rng.integers(3, SIZE - 3, size=(n, 2)).astype(np.float32)
    names = tap_layer_names(len(c.channel_mults))
    out = {}
    for k, (step, phase) in enumerate(zip(STEPS, PHASES)):
        if phase == "A":      # no bump or two
            samples = [_bumps([] if i % 2 else [lab, lab[::-1] + 6], SIZE, c.sigma) for i, lab in enumerate(labels)]
        elif phase == "B":    # one bump, 3 px off in x
            samples = [_bumps([(lab[0] + 3 * (1 if lab[0] < SIZE / 2 else -1), lab[1])], SIZE, c.sigma)
                       for lab in labels]
        else:                 # one bump where asked (the first one misplaced at step 30)
            samples = [_bumps([lab + (2.5 if (i == 0 and step == 30) else 0)], SIZE, c.sigma)
                       for i, lab in enumerate(labels)]
        order = (k + 1) / len(STEPS)
        embedding = np.concatenate([labels * order, rng.normal(size=(n, 1))], axis=1) + rng.normal(size=(n, 3)) * (1 - order)
        out[step] = dict(step=np.int64(step), labels=labels, samples=np.asarray(samples, dtype=np.float16),
                         latents=rng.normal(size=(n, 6)).astype(np.float32), layer_names=np.array(names),
                         layer_r2_raw=rng.uniform(0, 1, size=(len(names), 2)),
                         embedding=embedding.astype(np.float32))
    return out


def table(evals: dict) -> pd.DataFrame:
    """The metrics table `evaluate` would write for these evaluations (R² made up, scores real)."""
    c = config()
    rows = []
    for i, step in enumerate(STEPS):
        ev = evals[step]
        counts, centres = metrics.detect_bumps(ev["samples"], c.sigma)
        row = {"step": step, "loss": np.nan if step == 0 else 1.0 / (1 + i)}
        row.update(metrics.score_samples(counts, centres, ev["labels"]))
        order = i / (len(STEPS) - 1)
        row.update(r2_x=order, r2_y=order * 0.9, r2_x_raw=order, r2_y_raw=min(1.0, order * 1.1))
        row["phase"] = metrics.phase_label(row["frac_1"], row["accuracy"])
        rows.append(row)
    out = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    assert list(out["phase"]) == PHASES, list(out["phase"])
    return with_measures(out, len(evals[STEPS[0]]["labels"]))


def with_measures(out: pd.DataFrame, n: int) -> pd.DataFrame:
    """The interval and representation-measure columns (made up, shaped like the phases: a
    high-dimensional cloud in A, a near-2D sheet from B on, ordered in C), for columns the
    table lacks or leaves empty."""
    from bumpdiff_core.measure.intervals import wilson

    order = np.linspace(0, 1, len(out))
    dims = {"A": 5.0, "B": 2.3, "C": 2.0}
    low, high = wilson(np.round(out["accuracy"].to_numpy(float) * n), np.full(len(out), n))
    extra = {"n_labels": n, "accuracy_low": low, "accuracy_high": high,
             "intrinsic_dim": [dims[p] + 0.05 * k for k, p in enumerate(out["phase"])],
             "participation_ratio": [dims[p] + 1.0 for p in out["phase"]],
             "knn_r2_x": order, "knn_r2_y": order * 0.95, "neighbour_overlap": 0.1 + 0.8 * order,
             "error_x": 4.0 * (1 - order) + 0.2, "error_y": 4.5 * (1 - order) + 0.2}
    for c in ("r2_x_raw", "r2_y_raw"):
        extra[c + "_low"] = out[c] - 0.05
        extra[c + "_high"] = np.minimum(out[c] + 0.05, 1.0)
    return out.assign(**{k: v for k, v in extra.items() if k not in out.columns or out[k].isna().all()})


def losses() -> np.ndarray:
    return (1.0 / np.arange(1, STEPS[-1] + 1)).astype(np.float32)


def synthetic_view(n: int = 12) -> RunView:
    evals = evaluations(n)
    return RunView.from_data(config(), table(evals), evals, losses=losses(), run_id=config().run_id,
                             meta={"parameters": 1234, "device": "cpu", "train_seconds": 1.0,
                                   "evaluate_seconds": 2.0})


def write_run(root, n: int = 12, **changes):
    """Store the synthetic run as a finished run folder under data root `root`, its config changed
    by `changes` (e.g. increment_x=0.5: the same arrays under another run id); returns its Run."""
    from bumpdiff_core.runs.store import Run, atomic_write_json, runs_root

    c = config(**changes)
    run = Run(runs_root(root) / c.run_id, c)
    run.path.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run.path / "config.json", c.to_dict())
    evals = evaluations(n)
    for step, arrays in evals.items():
        run.save_arrays(run.eval_path(step), **{k: v for k, v in arrays.items() if k != "embedding"})
        run.save_arrays(run.umap_path(step), embedding=arrays["embedding"])
    buf = io.StringIO()
    table(evals).to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())
    run.save_arrays(run.path / "losses.npz", losses=losses())
    run.update_meta(parameters=1234, device="cpu", train_seconds=1.0, evaluate_seconds=2.0)
    run.mark_complete()
    return run
