"""`bumpdiff report scaling [--json]`: the data-efficiency answer from a scaling sweep's finished runs
(never trains). One JSON object (NaN → null):

    {"sweep", "design": {sizes, seeds, models, design_seed, step rule, threshold},
     "verdict_rule", "coverage_note",
     "fits": [{"model", "gamma", "low", "high", "verdict", "m50_by_k": {K: {m50, low, high, bound}}, ...}
              or {"model", "error"} when a model cannot be fitted yet],
     "references": [{"run_id", "K", "seed", "steps", "seen_accuracy", "under_trained", ...}],
     "under_trained": [K], "unchecked": [K without a finished reference],
     "budget_check": {"K", "model", "seed", "rung", "steps", "test_accuracy", "doubled_steps", "doubled_test_accuracy"},
     "runs": [{"run_id", "design", "model", "K", "seed", "rung", "M", "factor", "seen_accuracy",
               "test_accuracy", "memoriser_test", ...}],
     "machine", "img_per_s", "date", "commit", "wall_seconds"}

A K enters the fit only when its full-grid reference finished with seen accuracy (rounding rule)
of at least `sweeps.scaling.REFERENCE_ACCURACY`; ladders of other K values are listed, not fitted.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import pandas as pd

from bumpdiff_core.claims.scaling_fit import VERDICT_RULE, fit_scaling
from bumpdiff_core.present.report import _clean, _md_table
from bumpdiff_core.results import scaling as read
from bumpdiff_core.runs.store import runs_root
from bumpdiff_core.sweeps import scaling as design
from bumpdiff_core.sweeps.definitions import get_sweep

COVERAGE_NOTE = ("The interval resamples networks (seed × K) and positions within them; with only 1-2 seeds per K "
                 "the network resampling has little to draw from, and in simulation (tests/test_scaling_fit.py) such "
                 "intervals can under-cover (about 80 % instead of 95 % at high between-network variance): read a "
                 "verdict near an interval end with that in mind.")


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _wall_seconds(run_dirs) -> float | None:
    """From the first run folder made to the last completion marker written (a sweep stopped early
    has no timings.json; this counts the same span, including runs reused from earlier sweeps)."""
    span = _span(run_dirs)
    return round(span[1] - span[0], 1) if span else None


def _span(run_dirs):
    starts, ends = [], []
    for d in run_dirs:
        d = Path(d)
        try:
            starts.append((d / "config.json").stat().st_mtime)
            ends.append((d / "COMPLETE").stat().st_mtime)
        except OSError:
            continue
    return (min(starts), max(ends)) if starts else None


def _iso(t) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def budget_check(runs: pd.DataFrame) -> dict | None:
    """The rung rerun with `BUDGET_FACTOR` × the steps beside the same rung at the ladder's steps."""
    doubled = runs[runs["factor"] == design.BUDGET_FACTOR]
    if not len(doubled):
        return None
    d = doubled.iloc[0]
    same = runs[(runs["factor"] == 1) & (runs["K"] == d["K"]) & (runs["model"] == d["model"])
                & (runs["seed"] == d["seed"]) & (runs["rung"] == d["rung"])]
    base = same.iloc[0] if len(same) else None
    return {"K": int(d["K"]), "model": d["model"], "seed": int(d["seed"]), "rung": int(d["rung"]), "M": int(d["M"]),
            "steps": None if base is None else int(base["steps"]),
            "test_accuracy": None if base is None else float(base["test_accuracy"]),
            "doubled_steps": int(d["steps"]), "doubled_test_accuracy": float(d["test_accuracy"])}


def example_map(sweep, found: dict, root=None, K: int = design.BUDGET_K, model: str = design.BUDGET_MODEL) -> dict | None:
    """One rung's outcomes on its K×K grid, for the page's map: the first seed's rung nearest M50
    at K (the budget-check ladder), else any finished rung at the largest K. {"K", "model",
    "seed", "rung", "train_mask" (K×K 0/1 [y][x]), "positions" (x, y), "correct" (per sample)}."""
    from bumpdiff_core.learn.latin import rung_mask

    search = sweep.search
    finished = {key: acc for key, acc in read.finished_accuracy(sweep, root, found).items()}
    chosen = None
    if search.seeds and K in search.sizes:
        r = search.nearest_m50(finished, (K, model, search.seeds[0]))
        if r is not None:
            chosen = (K, model, search.seeds[0], r, 1)
    if chosen is None:
        ladder_keys = sorted((k for k in found if k[4] == 1), key=lambda k: (-k[0], k))
        chosen = ladder_keys[0] if ladder_keys else None
    if chosen is None:
        return None
    spec = found[chosen][0]
    try:
        from bumpdiff_core.runs.store import completed_run

        run = completed_run(spec.config, root)
        arrays = run.load_arrays(run.test_outcomes_path)
    except Exception:  # noqa: BLE001  (a run without outcomes has no map)
        return None
    Kc, m, seed, r, _ = chosen
    return {"K": Kc, "model": m, "seed": seed, "rung": r,
            "train_mask": rung_mask(Kc, r, search.design_seed).astype(int).tolist(),
            "positions": arrays["positions"].tolist(), "correct": arrays["correct"].astype(int).tolist()}


def scaling_report(name="scaling", root=None, n_boot: int = 500) -> dict:
    """The report of scaling sweep `name` from the runs finished under `root` (a dict; see the
    module docstring)."""
    sweep = get_sweep(name)
    if sweep.search is None:
        raise ValueError(f"sweep {sweep.name!r} has no rung search: `bumpdiff report {sweep.name}` reports it")
    found = read.finished_search(sweep, root)
    runs = read.run_table(sweep, root, found)
    refs = read.reference_table(sweep, root)
    trained = sorted(int(k) for k in refs.loc[~refs["under_trained"].astype(bool), "K"])
    under = sorted(int(k) for k in refs.loc[refs["under_trained"].astype(bool), "K"])
    unchecked = sorted(set(sweep.search.sizes) - set(trained) - set(under))
    outcomes = read.outcome_table(sweep, root, found)
    outcomes = outcomes[outcomes["K"].isin(trained)]
    fits = []
    for model in sweep.search.models:
        rows = outcomes[outcomes["model"] == model]
        if not len(rows):
            fits.append({"model": model, "error": "no finished rung at a K whose full-grid reference trained "
                                                  f"(trained: {trained or 'none'}; under-trained: {under or 'none'})"})
            continue
        try:
            fits.append(fit_scaling(rows, model, n_boot=n_boot).to_dict())
        except ValueError as e:
            fits.append({"model": model, "error": str(e)})
    search = sweep.search
    ref_speed = refs["img_per_s"].dropna()
    run_dirs = [d for _, d, _ in found.values()] + [str(runs_root(root) / r) for r in refs["run_id"]]
    return _clean({
        "sweep": sweep.name,
        "design": {"sizes": list(search.sizes), "seeds": list(search.seeds), "models": list(search.models),
                   "design_seed": search.design_seed, "threshold": search.threshold,
                   "steps": {str(k): design.step_budget(k, 1, search.step_base) for k in search.sizes},
                   "step_rule": f"ceil({search.step_base}·(1200 - 150K + 12.5K²)/2000/100)·100",
                   "reference_accuracy": design.REFERENCE_ACCURACY},
        "verdict_rule": VERDICT_RULE, "coverage_note": COVERAGE_NOTE,
        "fits": fits, "references": refs.to_dict("records"), "under_trained": under, "unchecked": unchecked,
        "budget_check": budget_check(runs), "runs": runs.to_dict("records"),
        "example_map": example_map(sweep, found, root),
        "memoriser_max": float(runs["memoriser_test"].max()) if len(runs) else None,
        "machine": _machine(),
        "img_per_s": float(ref_speed.median()) if len(ref_speed) else None,
        "img_per_s_note": "median training img/s of the reference runs, measured while the sweep ran (2 workers)",
        "date": time.strftime("%Y-%m-%d"), "commit": _commit(), "wall_seconds": _wall_seconds(run_dirs),
        "first_run_started": _iso((_span(run_dirs) or (None, None))[0]),
        "last_run_finished": _iso((_span(run_dirs) or (None, None))[1])})


def _interval(f) -> str:
    lo, hi = f.get("low"), f.get("high")
    return f"[{'-∞' if lo is None else f'{lo:.2f}'}, {'∞' if hi is None else f'{hi:.2f}'}]"


def fit_lines(report: dict) -> list[str]:
    """One sentence per model: γ with its interval and the verdict, or why there is no fit."""
    out = []
    for f in report["fits"]:
        if "error" in f:
            out.append(f"{f['model']}: no fit ({f['error']})")
        else:
            out.append(f"{f['model']}: γ = {f['gamma']:.2f} {_interval(f)} → **{f['verdict']}** "
                       f"({f['n_networks']} networks, {f['n_positions']} test positions, {f['n_rows']} outcomes)")
    return out


def m50_table(report: dict) -> pd.DataFrame:
    """M50 per model and K (with its interval, or the censoring bound)."""
    rows = []
    for f in report["fits"]:
        for k, v in (f.get("m50_by_k") or {}).items():
            if v.get("bound"):
                shown = f"M50 {v['bound']} (censored)"
            else:
                shown = f"{v['m50']:.0f} {_interval(v)}"
            rows.append({"model": f["model"], "K": int(k), "M50 [95 %]": shown})
    return pd.DataFrame(rows, columns=["model", "K", "M50 [95 %]"])


def scaling_markdown(report: dict) -> str:
    """The report as Markdown: fits, M50 per K, references, budget check, runs."""
    d = report["design"]
    out = [f"# Sweep `{report['sweep']}`", "",
           f"K = {', '.join(map(str, d['sizes']))}; seeds {', '.join(map(str, d['seeds']))}; models "
           f"{', '.join(d['models'])}; steps {d['step_rule']}. Machine: {report['machine']}, "
           f"{report['img_per_s'] or float('nan'):.0f} img/s ({report['img_per_s_note']}); wall "
           f"{(report['wall_seconds'] or 0) / 60:.0f} min; commit {report['commit']}; {report['date']}.", "",
           "## γ per model (M50 ∝ K^γ)", ""] + [f"- {line}" for line in fit_lines(report)]
    out += ["", report["verdict_rule"], "", report["coverage_note"], "", "## M50 per K", "",
            _md_table(m50_table(report)), "", "## Full-grid references", ""]
    refs = pd.DataFrame(report["references"])
    out += [_md_table(refs.drop(columns=["run_id"])) if len(refs) else "none finished", ""]
    if report["under_trained"]:
        out += [f"Under-trained, left out of the fit: K = {', '.join(map(str, report['under_trained']))}.", ""]
    if report["unchecked"]:
        out += [f"No finished reference, left out of the fit: K = {', '.join(map(str, report['unchecked']))}.", ""]
    b = report["budget_check"]
    if b:
        out += ["## Budget check", "", f"K = {b['K']}, {b['model']}, seed {b['seed']}, rung {b['rung']} (M = {b['M']}): "
                f"test accuracy {b['test_accuracy']} at {b['steps']} steps, {b['doubled_test_accuracy']:.2f} at "
                f"{b['doubled_steps']} steps.", ""]
    runs = pd.DataFrame(report["runs"])
    out += ["## Runs", "", _md_table(runs.drop(columns=["run_id"])) if len(runs) else "none finished", ""]
    if report["memoriser_max"] is not None:
        out += [f"The nearest-training-position memoriser scores at most {report['memoriser_max']:.2f} on any test set.", ""]
    return "\n".join(out)


def write_json(report: dict) -> str:
    return json.dumps(report, allow_nan=False, indent=2, ensure_ascii=False)


COMMITTED = Path(__file__).resolve().parents[2] / "results" / "scaling.json"
REPLACE_COMMAND = "bumpdiff sweep scaling && bumpdiff report scaling --json > results/scaling.json"


def load_scaling(name: str = "scaling", root=None, committed=COMMITTED) -> tuple[dict | None, str]:
    """(report, source) for the efficiency page: `scaling_report` of the sweep's runs in the data
    root when at least one of its runs is finished there ("data root"), else the committed
    `results/scaling.json` ("committed"), else (None, "none")."""
    sweep = get_sweep(name)
    if read.finished_search(sweep, root):
        return scaling_report(name, root), "data root"
    path = Path(committed)
    if path.is_file():
        return json.loads(path.read_text()), "committed"
    return None, "none"


def coverage_sentence(report: dict) -> str:
    """' It covers K = …, seeds … of the design's K = …, seeds … (…).' when the finished rungs cover
    less than the sweep's design (a sweep stopped early), else ''."""
    design, runs = report.get("design") or {}, report.get("runs") or []
    sizes, seeds = sorted({r["K"] for r in runs}), sorted({r["seed"] for r in runs})
    want_sizes, want_seeds = sorted(design.get("sizes") or []), sorted(design.get("seeds") or [])
    if not runs or (sizes == want_sizes and seeds == want_seeds):
        return ""
    return (f" Its rungs cover K = {', '.join(map(str, sizes))} and seed(s) {', '.join(map(str, seeds))} of the "
            f"design's K = {', '.join(map(str, want_sizes))} and seeds {', '.join(map(str, want_seeds))}: "
            "a sweep stopped before it finished, so read γ as preliminary.")


def source_sentence(report: dict | None, source: str) -> str:
    """What the page shows and the one command that replaces it (Markdown)."""
    if source == "data root":
        return (f"Shown: the `{report['sweep']}` sweep's runs in this data root ({len(report['runs'])} rungs finished), "
                "fitted now.")
    if source == "committed":
        minutes = (report.get("wall_seconds") or 0) / 60
        return (f"Shown: the committed `results/scaling.json` (sweep `{report['sweep']}`, {report.get('date')}, commit "
                f"{str(report.get('commit'))[:10]}, {report.get('machine')}, {report.get('img_per_s') or float('nan'):.0f} "
                f"img/s, {minutes:.0f} min wall).{coverage_sentence(report)} Replace it with your own measurement: "
                f"`{REPLACE_COMMAND}`.")
    return f"No scaling sweep is finished here and no committed result exists: `{REPLACE_COMMAND}`."
