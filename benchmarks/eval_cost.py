"""Evaluation cost per checkpoint: the strided DDIM sampler vs 1000-step ancestral DDPM.

On the final checkpoint of a finished run, with >= 300 labels, prints for each sampler: seconds,
cost in training steps, accuracy, mean position error; and the ratio to DDPM-1000. Also times one
full `evaluate_checkpoint` (sampling + bump detection + R^2 + UMAP + the representation columns:
second draw, first-step tap, behavioural R², sheet null) at the profile's settings, split by part.

`--early 3` (phases A and B, where the verdicts read bump counts): at the first three checkpoints
the eval sampler labels A or B, the bump counts (fraction of samples with 0, 1, >1 bumps) of
DDIM-20 vs 1000-step DDPM on the evaluation labels, and whether they differ (a two-proportion
z test on the single-bump fraction, |z| > 2, which the phase labels read; and a chi-square test of
the whole 0 / 1 / >1 count distribution, p < 0.01). `--early-only` skips everything else.
Run: .venv/bin/python benchmarks/eval_cost.py [--profile quick] [--labels 300] [--threads 1] [--early 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import torch

from bumpdiff_core.measure import metrics
from bumpdiff_core.config import profile_config
from bumpdiff_core.learn.data import evaluation_positions
from bumpdiff_core.measure.evaluate import evaluate_checkpoint, sample_checkpoint
from bumpdiff_core.execute.pipeline import ensure_run
from bumpdiff_core.runs.store import Run


def training_step_seconds(run: Run, steps: int = 30) -> float:
    from bumpdiff_core.learn.data import BumpDataset
    from bumpdiff_core.learn.diffusion import LinearSchedule, epsilon_loss
    from bumpdiff_core.learn.train import build_model

    c = run.config
    model, data, sched = build_model(c), BumpDataset(c), LinearSchedule.from_config(c)
    opt = torch.optim.AdamW(model.parameters(), lr=c.lr)
    gen = torch.Generator().manual_seed(0)
    t0 = None
    for i in range(steps + 5):
        if i == 5:
            t0 = time.perf_counter()
        x, xy = data.batch(torch.randint(0, len(data), (c.batch_size,), generator=gen))
        loss = epsilon_loss(model, sched, x, xy, gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samplers", default="ddim:10,ddim:20,ddim:50,ddpm:1000")
    ap.add_argument("--early", type=int, default=0, help="compare bump counts at this many early A/B checkpoints")
    ap.add_argument("--early-only", action="store_true")
    args = ap.parse_args()
    from bumpdiff_core.config import parse_override
    torch.set_num_threads(args.threads)
    config = profile_config(args.profile, dict(parse_override(o) for o in args.overrides))
    run = ensure_run(config, threads=args.threads, progress=False)
    final = run.checkpoint_steps_on_disk()[-1]
    if args.early:
        early_bump_counts(run, args.early)
    if args.early_only:
        return
    step_s = training_step_seconds(run)
    labels = evaluation_positions(config.replace(eval_labels=args.labels, umap_neighbors=min(config.umap_neighbors, args.labels - 1)))
    print(f"run {run.path.name} ({args.profile}), checkpoint {final}, {args.labels} labels, "
          f"threads={args.threads}; one training step = {step_s * 1000:.1f} ms")
    print(f"{'sampler':>10} {'seconds':>8} {'= train steps':>13} {'accuracy':>8} {'pos err px':>10} {'frac_1':>7}")
    results = {}
    for spec in args.samplers.split(","):
        name, steps = spec.split(":")
        t0 = time.perf_counter()
        images, lab, _ = sample_checkpoint(run, final, sampler=name, sampler_steps=int(steps), labels=labels,
                                           tap_names=())
        secs = time.perf_counter() - t0
        counts, centres = metrics.detect_bumps(images, config.sigma)
        s = metrics.score_samples(counts, centres, lab)
        results[spec] = (secs, s)
        print(f"{spec:>10} {secs:>8.2f} {secs / step_s:>13.0f} {s['accuracy']:>8.3f} {s['position_error']:>10.3f} {s['frac_1']:>7.2f}")
    ref = results.get("ddpm:1000")
    if ref:
        for spec, (secs, s) in results.items():
            if spec != "ddpm:1000":
                print(f"{spec} vs ddpm:1000: {ref[0] / secs:.1f}x faster, accuracy {s['accuracy'] - ref[1]['accuracy']:+.3f}")
    # a full evaluation of one checkpoint (sampling + taps + R^2 + UMAP), on a scratch copy
    with tempfile.TemporaryDirectory() as tmp:
        import shutil
        scratch = Run.open(shutil.copytree(run.path, f"{tmp}/{run.path.name}"))
        for p in (scratch.eval_path(final), scratch.umap_path(final)):
            p.unlink(missing_ok=True)
        t0 = time.perf_counter()
        parts: dict = {}
        evaluate_checkpoint(scratch, final, seconds=parts)
        secs = time.perf_counter() - t0
    print(f"full evaluate_checkpoint ({config.eval_labels} labels, {config.eval_sampler}-{config.eval_sampler_steps}, "
          f"taps + R^2 + UMAP + representation columns): {secs:.2f} s = {secs / step_s:.0f} training steps; "
          + ", ".join(f"{k} {v:.2f} s" for k, v in parts.items()))


def _bump_fractions(run, step, labels, sampler, steps):
    images, lab, _ = sample_checkpoint(run, step, sampler=sampler, sampler_steps=steps, labels=labels, tap_names=())
    counts, centres = metrics.detect_bumps(images, run.config.sigma)
    s = metrics.score_samples(counts, centres, lab)
    return s, np.asarray(counts)


def early_bump_counts(run: Run, n: int) -> None:
    """Bump counts of DDIM-20 vs DDPM-1000 at the first `n` checkpoints the eval sampler labels A or B."""
    config = run.config
    labels = evaluation_positions(config)
    print(f"early checkpoints (phases A, B): bump counts, {len(labels)} labels, DDIM-20 vs DDPM-1000")
    print(f"{'step':>6} {'phase':>5} {'sampler':>10} {'frac_0':>7} {'frac_1':>7} {'frac_>1':>7} {'seconds':>8}")
    done = 0
    for step in run.checkpoint_steps_on_disk():
        if step == 0 or done >= n:
            continue
        t0 = time.perf_counter()
        d, dc = _bump_fractions(run, step, labels, "ddim", 20)
        td = time.perf_counter() - t0
        phase = metrics.phase_label(d["frac_1"], d["accuracy"])
        if phase not in ("A", "B"):
            continue
        t0 = time.perf_counter()
        p, pc = _bump_fractions(run, step, labels, "ddpm", 1000)
        tp = time.perf_counter() - t0
        for name, s, secs in (("ddim:20", d, td), ("ddpm:1000", p, tp)):
            print(f"{step:>6} {phase:>5} {name:>10} {s['frac_0']:>7.2f} {s['frac_1']:>7.2f} {s['frac_multi']:>7.2f} {secs:>8.2f}")
        pooled = (d["frac_1"] + p["frac_1"]) / 2
        se = np.sqrt(max(pooled * (1 - pooled), 1e-12) * 2 / len(labels))
        z = (d["frac_1"] - p["frac_1"]) / se
        # the whole count distribution (0, 1, >1 bumps): chi-square test of the 2 x 3 table
        from scipy.stats import chi2_contingency

        table = np.array([[np.sum(c == 0), np.sum(c == 1), np.sum(c > 1)] for c in (dc, pc)])
        table = table[:, table.sum(axis=0) > 0]
        p_counts = chi2_contingency(table)[1] if table.shape[1] > 1 else 1.0
        print(f"{'':>6} single-bump fraction DDIM − DDPM {d['frac_1'] - p['frac_1']:+.2f} (z = {z:+.1f}): "
              + ("DIFFER" if abs(z) > 2 else "no difference shown")
              + f"; bump-count distribution chi-square p = {p_counts:.2g}: " + ("DIFFER" if p_counts < 0.01 else "no difference shown"))
        done += 1


if __name__ == "__main__":
    main()
