"""Evaluation of checkpoints: one sampling pass per checkpoint gives both the samples (scored by
`metrics`) and the tapped activations (embedded by `manifold`); results are cached per checkpoint.
"""
from __future__ import annotations

import io
import time

import numpy as np
import torch

from . import metrics
from .config import SEED_STRIDE, checkpoint_steps, resolve_tap
from .data import evaluation_positions
from .diffusion import LinearSchedule, sample
from .manifold import umap_embed
from .store import CorruptFileError, Run
from .train import load_weights, pick_device

METRIC_COLUMNS = ["step", "loss", "accuracy", "accuracy_x", "accuracy_y", "frac_0", "frac_1",
                  "frac_multi", "r2_x", "r2_y", "r2_x_raw", "r2_y_raw", "phase"]


def sample_seeds(config, n: int) -> np.ndarray:
    """One noise seed per evaluation label, the same at every checkpoint (only the model changes)."""
    return config.eval_seed * SEED_STRIDE + np.arange(n)


def sample_checkpoint(run: Run, step: int, device=None, sampler=None, sampler_steps=None,
                      labels=None, tap_names=None):
    """Draw one sample per label from checkpoint `step`; returns (images (B, N, N), labels, taps)."""
    c = run.config
    device = pick_device(device)
    model = load_weights(run, step, device)
    labels = evaluation_positions(c) if labels is None else np.asarray(labels, dtype=np.float32)
    taps = model.tap_names if tap_names is None else tap_names
    xy = torch.as_tensor(labels, dtype=torch.float32, device=device)
    images, activations = sample(model, LinearSchedule.from_config(c), xy, sample_seeds(c, len(labels)),
                                 sampler=sampler or c.eval_sampler,
                                 steps=sampler_steps or c.eval_sampler_steps, tap_names=taps)
    return images[:, 0].cpu().numpy(), labels, activations


def _evaluate_samples(run: Run, step: int, device) -> dict:
    c = run.config
    tap = resolve_tap(c.tap_layer, len(c.channel_mults))
    images, labels, activations = sample_checkpoint(run, step, device)
    names = list(activations)
    layer_r2 = np.array([metrics.r2_cross_validated(activations[n], labels) for n in names])
    arrays = dict(step=np.int64(step), labels=labels, samples=images.astype(np.float16),
                  latents=activations[tap].astype(np.float32),
                  layer_names=np.array(names), layer_r2_raw=layer_r2)
    run.save_arrays(run.eval_path(step), **arrays)
    return arrays


def _cached(run: Run, path):
    """Load a cached result; a damaged one is reported and recomputed, a missing one is None."""
    if not path.exists():
        return None
    try:
        return run.load_arrays(path)
    except (CorruptFileError, OSError) as e:
        print(f"warning: {e}; recomputing it", flush=True)
        return None


def evaluate_checkpoint(run: Run, step: int, device=None, losses=None, seconds: dict | None = None) -> dict:
    """Metrics row for one checkpoint (computing and caching samples and UMAP when missing).
    `seconds`, when given, accumulates the time spent in "sampling" (incl. per-layer R²) and "umap"."""
    c = run.config
    seconds = {} if seconds is None else seconds
    t0 = time.perf_counter()
    ev = _cached(run, run.eval_path(step)) or _evaluate_samples(run, step, device)
    t1 = time.perf_counter()
    um = _cached(run, run.umap_path(step))
    if um is None:
        um = {"embedding": umap_embed(ev["latents"], c.umap_neighbors, c.umap_min_dist, random_state=c.eval_seed)}
        run.save_arrays(run.umap_path(step), **um)
    seconds["sampling"] = seconds.get("sampling", 0.0) + t1 - t0
    seconds["umap"] = seconds.get("umap", 0.0) + time.perf_counter() - t1
    labels = ev["labels"]
    # detection is re-run from the stored samples (milliseconds), so a changed rule needs no resampling
    counts, centres = metrics.detect_bumps(ev["samples"], c.sigma)
    score = metrics.score_samples(counts, centres, labels)
    row = {"step": step, "loss": _interval_loss(run, step, losses)}
    row.update({k: score[k] for k in METRIC_COLUMNS if k in score})
    row["r2_x"] = metrics.r2_in_sample(um["embedding"], labels[:, 0])
    row["r2_y"] = metrics.r2_in_sample(um["embedding"], labels[:, 1])
    tap = resolve_tap(c.tap_layer, len(c.channel_mults))
    names = list(ev["layer_names"])
    row["r2_x_raw"], row["r2_y_raw"] = (float(v) for v in ev["layer_r2_raw"][names.index(tap)])
    row["phase"] = metrics.phase_label(row["frac_1"], row["accuracy"])
    return row


def _interval_loss(run: Run, step: int, losses) -> float:
    """Mean training loss over the steps since the previous checkpoint (NaN at step 0)."""
    if losses is None or step == 0:
        return float("nan")
    steps = checkpoint_steps(run.config)
    prev = max([s for s in steps if s < step], default=0)
    window = losses[prev:step]
    return float(np.mean(window)) if len(window) else float("nan")


def load_losses(run: Run):
    return run.load_arrays(run.losses_path)["losses"] if run.losses_path.exists() else None


def evaluate_run(run: Run, device=None, progress: bool = True):
    """Evaluate every scheduled checkpoint (cached ones cost nothing) and write metrics.csv."""
    import pandas as pd
    from tqdm.auto import tqdm

    started = time.time()
    losses = load_losses(run)
    rows, seconds = [], {}
    for step in tqdm(checkpoint_steps(run.config), desc=f"evaluate {run.path.name}", disable=not progress,
                     unit="ckpt"):
        rows.append(evaluate_checkpoint(run, step, device, losses, seconds))
    table = pd.DataFrame(rows, columns=METRIC_COLUMNS)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())
    run.update_meta(evaluate_seconds=time.time() - started, evaluate_sampling_seconds=seconds.get("sampling", 0.0),
                    evaluate_umap_seconds=seconds.get("umap", 0.0))
    return table


def load_metrics(run: Run):
    import pandas as pd
    return pd.read_csv(io.BytesIO(run.read_bytes(run.metrics_path)))


def load_evaluation(run: Run, step: int, detect: bool = True) -> dict:
    """Samples, labels, activations and the UMAP embedding of one evaluated checkpoint, plus the
    bump detection of its samples (`bump_count`, `centres`) unless `detect` is False. Pages read a
    run through `view.RunView`, which reads each checkpoint once and detects bumps on first use."""
    out = run.load_arrays(run.eval_path(step))
    out.update(run.load_arrays(run.umap_path(step)))
    if detect:
        out["bump_count"], out["centres"] = metrics.detect_bumps(out["samples"], run.config.sigma)
    return out
