"""`make book` stage timings: train, evaluate (sampling + R^2 + UMAP), notebooks, book build.

Reads what the last `make book` left behind (book/generated/timings.json from the sweep, each
run's meta.json) and, with --build, times a `jupyter-book build` itself. Prints seconds and each
stage's share of the total, side by side.
Run: .venv/bin/python benchmarks/book_stages.py [--book book] [--build]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from bumpdiff_core.runs.store import RunLayout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--book", default="book")
    ap.add_argument("--build", action="store_true", help="also time a strict jupyter-book build")
    args = ap.parse_args()
    timings_file = Path(args.book) / "generated" / "timings.json"
    if not timings_file.exists():
        sys.exit(f"{timings_file}: missing; run `make book` first")
    timings = json.loads(timings_file.read_text())
    run_ids = {r.get("run_id") for r in timings.get("notebooks", []) if r.get("run_id")}
    train = evaluate = sampling = umap = 0.0
    for run_id in run_ids:
        meta_file = RunLayout.of(run_id).meta_path
        if meta_file.exists():
            meta = json.loads(meta_file.read_text())
            train += meta.get("train_seconds", 0.0)
            evaluate += meta.get("evaluate_seconds", 0.0)
            sampling += meta.get("evaluate_sampling_seconds", float("nan"))  # NaN: run from before the split
            umap += meta.get("evaluate_umap_seconds", float("nan"))
    rows = [("train (sum over runs, CPU-seconds of one worker)", train),
            ("evaluate, all of it (sum over runs)", evaluate),
            ("  of which sampling + per-layer R² (sum over runs)", sampling),
            ("  of which UMAP (sum over runs)", umap),
            ("sweep stage 1: run notebooks (wall)", timings.get("train_stage_seconds", float("nan"))),
            ("sweep stage 2: analysis notebooks (wall)", timings.get("analysis_stage_seconds", float("nan"))),
            ("sweep total (wall)", timings.get("total_seconds", float("nan")))]
    if args.build:
        t0 = time.time()
        subprocess.run([str(Path(sys.executable).parent / "jupyter-book"), "build", args.book, "-W", "-n",
                        "--keep-going", "-q"], check=True, capture_output=True)
        rows.append(("jupyter-book build (wall)", time.time() - t0))
    total = timings.get("total_seconds", 0) + (rows[-1][1] if args.build else 0)
    print(f"sweep {timings.get('sweep')}: {len(run_ids)} runs, {timings.get('pages')} pages")
    for name, secs in rows:
        print(f"{name:52} {secs:8.1f} s  {secs / total if total else float('nan'):6.1%} of sweep+build wall")
    if train and evaluate:
        print(f"evaluate / train ratio: {evaluate / train:.2f}")


if __name__ == "__main__":
    main()
