"""`bumpdiff report SWEEP [--json]`: a sweep's results, computed from its finished runs.

It never trains or evaluates: each run of the sweep is looked up in the data root
(`_finished_table`, the one place that knows how a finished run is found and read); a run that is
not finished is listed as missing, the claims are judged on the finished runs alone, and the
command exits with `EXIT_INCOMPLETE` (3) so a script can tell a partial report from a full one
(0). Markdown tables for people; `--json` prints one strict JSON object (NaN → null):

    {"sweep", "seeds_used", "seeds_note", "missing": [run ids],
     "runs": [{"run_id", "run_dir", "config", "final": {metric: value}}],   (finished runs only)
     "claims": [{"claim", "verdict", "value", "low", "high", "detail"}],
     "fits": [{"design", "model", "slope", "low", "high", "detail"}],
     "m_star": [{"design", "model", "K", "seed", "m_star", "above", "reference_accuracy", "rungs", "detail"}],
     "efficiency": [{"run_id", "label", "design", "conditioning", ..., "accuracy_unseen",
                     "accuracy_unseen_low", "accuracy_unseen_high", "memoriser_unseen"}]}

`fits` is filled by `scaling_fits` for a data-scaling sweep (`efficiency-full`: the slope of
log M* on log K per design and model, scaling.py) and is empty for every other sweep; there,
`missing` also lists the next bisection step of every ladder not yet decided;
`efficiency` has one row per efficiency run (`efficiency_row`: its last checkpoint).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from types import SimpleNamespace

import pandas as pd

from . import scaling, verdicts
from .sweep import design_label, get_sweep

EXIT_COMPLETE, EXIT_INCOMPLETE = 0, 3
FIT_COLUMNS = ["design", "model", "slope", "low", "high", "detail"]


def _finished_table(spec, root=None):
    """(run directory, metrics table) of the finished run for `spec`, or None when it is not
    finished (not there, or no completion marker). The only use of store/pipeline names here."""
    from .pipeline import completed_run
    from .store import StoreError

    try:
        run = completed_run(spec.config, root)
    except StoreError:
        return None
    import io
    return run.path, pd.read_csv(io.BytesIO(run.read_bytes(run.metrics_path)))


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python, tuples -> lists (recursively)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _passes(table) -> bool | None:
    """A ladder rung's outcome: None when not finished, else whether its last checkpoint's unseen
    accuracy reached `scaling.M_STAR_ACCURACY` (no unseen score counts as not reached)."""
    if table is None or not len(table):
        return None
    value = scaling._final(table.iloc[-1], "accuracy_unseen")
    return bool(math.isfinite(value) and value >= scaling.M_STAR_ACCURACY)


def ladder_states(sweep, tables: dict) -> list:
    """[(ladder, rung specs, outcomes, next rung index or None when decided)] for every ladder of
    a data-scaling sweep, from `tables` ({run_id: metrics table} of finished runs)."""
    out = []
    for ladder in sweep.ladders:
        specs = sweep.ladder_runs(ladder)
        passed = [_passes(tables.get(s.run_id)) for s in specs]
        out.append((ladder, specs, passed, scaling.bisect_next(passed)))
    return out


def _finished_rungs(sweep, root=None) -> dict:
    """{run_id: (run directory, metrics table)} of every finished rung of the sweep's ladders."""
    found = {}
    for ladder in sweep.ladders:
        for spec in sweep.ladder_runs(ladder):
            got = _finished_table(spec, root)
            if got is not None:
                found[spec.run_id] = got
    return found


def next_ladder_runs(sweep, root=None, skip=()) -> list:
    """The rung each undecided ladder trains next (its bisection step), read from the runs
    finished under `root`; ladders whose next run id is in `skip` (it failed) are left alone."""
    tables = {run_id: table for run_id, (_, table) in _finished_rungs(sweep, root).items()}
    skip = set(skip)
    nxt = [specs[i] for _, specs, _, i in ladder_states(sweep, tables) if i is not None]
    return [s for s in nxt if s.run_id not in skip]


def _finals(sweep, tables: dict) -> list:
    """(config, last row) of every finished efficiency run and of every rung of a decided ladder
    (an undecided ladder's M* is not known yet: its rungs wait)."""
    specs = list(sweep.efficiency_runs())
    specs += [s for _, rung_specs, _, i in ladder_states(sweep, tables) if i is None for s in rung_specs]
    return [(spec.config, tables[spec.run_id].iloc[-1]) for spec in specs
            if spec.run_id in tables and len(tables[spec.run_id])]


def scaling_table(sweep, tables: dict) -> pd.DataFrame:
    """M* per (design, model, K, seed) of a data-scaling sweep (`scaling.m_star_table`); empty
    for a sweep without scaling runs. `tables`: {run_id: metrics table} of its finished runs."""
    if not getattr(sweep, "scaling", False):
        return pd.DataFrame(columns=scaling.MSTAR_COLUMNS)
    return scaling.m_star_table(_finals(sweep, tables))


def scaling_fits(sweep, tables: dict) -> list[dict]:
    """Fits of a data-scaling sweep ({"design", "model", "slope", "low", "high", "detail"} each,
    `scaling.slope_fits`); [] for a sweep without scaling runs."""
    if not getattr(sweep, "scaling", False):
        return []
    return scaling.slope_fits(scaling_table(sweep, tables))


EFFICIENCY_COLUMNS = ["run_id", "label", "design", "conditioning", "image_size", "seed", "positions", "step",
                      "accuracy_seen", "accuracy_unseen", "accuracy_unseen_low", "accuracy_unseen_high",
                      "n_unseen", "memoriser_unseen"]


def efficiency_row(config, table: pd.DataFrame, run_id: str = "") -> dict:
    """One efficiency run at its last checkpoint: design, model, training positions, seen and
    unseen accuracy (Wilson interval over `n_unseen` positions), the memoriser on the same unseen
    positions. Columns a run evaluated by older code lacks are NaN."""
    from .data import training_positions
    from .intervals import wilson
    from .sweep import design_label

    last = table.iloc[-1] if len(table) else pd.Series(dtype=float)

    def num(name):
        try:
            return float(last.get(name, math.nan))
        except (TypeError, ValueError):
            return math.nan

    acc, n = num("accuracy_unseen"), num("n_unseen")
    low, high = num("accuracy_unseen_low"), num("accuracy_unseen_high")
    if math.isfinite(acc) and math.isfinite(n) and n > 0 and not (math.isfinite(low) and math.isfinite(high)):
        low, high = wilson(int(round(acc * n)), int(n))
    seen = num("accuracy_seen")
    return {"run_id": run_id, "label": design_label(config), "design": config.design,
            "conditioning": config.conditioning, "image_size": config.image_size, "seed": config.seed,
            "positions": len(training_positions(config)), "step": num("step"),
            "accuracy_seen": seen if math.isfinite(seen) else num("accuracy"),
            "accuracy_unseen": acc, "accuracy_unseen_low": low, "accuracy_unseen_high": high,
            "n_unseen": n, "memoriser_unseen": num("memoriser_unseen")}


def control_runs(sweep) -> list:
    """Fig. 5's positive control: the efficiency runs of the separable model on the full grid of an
    imbalanced pair (dx, dy) ≠ (1, 1)."""
    return [s for s in sweep.efficiency_runs() if s.config.conditioning == "separable" and s.config.design == "grid"
            and (s.config.increment_x, s.config.increment_y) != (1.0, 1.0)]


def efficiency_rows(sweep, tables: dict) -> list[dict]:
    """`efficiency_row` of every finished efficiency run of `sweep` (definition order)."""
    return [efficiency_row(spec.config, tables[spec.run_id], spec.run_id)
            for spec in sweep.efficiency_runs() if spec.run_id in tables]


@dataclass
class SweepReport:
    sweep: str
    runs: list                      # [{"run_id", "run_dir", "config", "final"}] of finished runs
    missing: list                   # run ids not finished
    claims: pd.DataFrame            # verdicts.CLAIM_COLUMNS
    fits: list = field(default_factory=list)
    seeds_used: tuple = ()
    seeds_note: str = ""
    efficiency: list = field(default_factory=list)
    m_star: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=scaling.MSTAR_COLUMNS))
    scaling: bool = False           # a data-scaling sweep (it has ladders)

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.missing else EXIT_COMPLETE

    def to_dict(self) -> dict:
        claims = [{k: r[k] for k in verdicts.CLAIM_COLUMNS} for r in self.claims.to_dict("records")]
        return _clean({"sweep": self.sweep, "seeds_used": list(self.seeds_used), "seeds_note": self.seeds_note,
                       "missing": list(self.missing), "runs": self.runs, "claims": claims,
                       "fits": [{k: f.get(k) for k in FIT_COLUMNS} for f in self.fits],
                       "efficiency": [{k: r.get(k) for k in EFFICIENCY_COLUMNS} for r in self.efficiency],
                       "m_star": [{k: r[k] for k in scaling.MSTAR_COLUMNS} for r in self.m_star.to_dict("records")]})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        return report_markdown(self)


def sweep_report(name, root=None, tuned_seeds=verdicts.TUNED_SEEDS,
                 thresholds: verdicts.Thresholds = verdicts.DEFAULT) -> SweepReport:
    """The report of sweep `name` (a name in sweep.SWEEPS or a Sweep) from the runs finished
    under data root `root` (default $BUMPDIFF_DATA or ./data)."""
    sweep = get_sweep(name)
    found, runs, missing = {}, [], []
    for spec in sweep.runs():
        got = _finished_table(spec, root)
        if got is None:
            missing.append(spec.run_id)
            continue
        run_dir, table = got
        if "n_labels" not in table.columns:  # runs evaluated before the column existed: one sample per label
            table = table.assign(n_labels=spec.config.eval_labels)
        found[spec.run_id] = table
        final = table.iloc[-1].to_dict() if len(table) else {}
        runs.append({"run_id": spec.run_id, "run_dir": str(run_dir), "config": spec.config.to_dict(),
                     "final": final})

    rungs = _finished_rungs(sweep, root)  # the rungs bisection trained: finished, never missing
    for spec in (s for ladder in sweep.ladders for s in sweep.ladder_runs(ladder) if s.run_id in rungs):
        run_dir, table = rungs[spec.run_id]
        found[spec.run_id] = table
        runs.append({"run_id": spec.run_id, "run_dir": str(run_dir), "config": spec.config.to_dict(),
                     "final": table.iloc[-1].to_dict() if len(table) else {}})
    # an undecided ladder's next bisection step is missing
    missing += [specs[i].run_id for _, specs, _, i in ladder_states(sweep, found) if i is not None]

    def pick(specs, key):
        return {key(s.config): found[s.run_id] for s in specs if s.run_id in found}

    main = pick(sweep.main_runs(), lambda c: c.seed)
    # Fig. 4's trend claim takes one table per increment: the first figure seed that is untuned
    fig_seeds = verdicts.pick_seeds(sweep.figure_seeds, tuned_seeds)[0][:1]
    increments = pick(sweep.increment_runs(seeds=fig_seeds), lambda c: c.increment_x)
    pairs = pick(sweep.pair_runs(), lambda c: (c.increment_x, c.increment_y, c.seed))
    efficiency = efficiency_rows(sweep, found)
    judgement = verdicts.judge(main, tuned_seeds, increments, pairs, thresholds,
                               control_pairs=pick(control_runs(sweep), lambda c: (c.increment_x, c.increment_y, c.seed)),
                               efficiency=efficiency)
    note = judgement.note + (f"; {len(missing)} run(s) not finished, judged without them" if missing else "")
    if len(sweep.figure_seeds) > 1 and increments:
        note += f"; the Fig. 4 trend on figure seed {fig_seeds[0]} (one table per increment)"
    return SweepReport(sweep.name, _clean(runs), missing, judgement.table, scaling_fits(sweep, found),
                       judgement.seeds_used, note, efficiency, scaling_table(sweep, found), bool(sweep.ladders))


def _md_table(df: pd.DataFrame) -> str:
    def cell(v):
        if isinstance(v, float):
            return "" if not math.isfinite(v) else f"{v:.3g}"
        return str(v).replace("|", "\\|").replace("\n", " ")
    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


FINAL_COLUMNS = ["step", "phase", "accuracy", "accuracy_low", "accuracy_high", "r2_x_raw", "r2_y_raw",
                 "r2_x", "r2_y", "intrinsic_dim"]
# a data-scaling sweep's runs are read by their unseen accuracy (M*), beside the memoriser's
SCALING_FINAL_COLUMNS = ["step", "accuracy", "accuracy_seen", "accuracy_unseen", "accuracy_unseen_low",
                         "accuracy_unseen_high", "n_unseen", "memoriser_unseen"]


def report_markdown(report: SweepReport) -> str:
    """Claims, then runs (final checkpoint), then missing runs and fits, as Markdown."""
    out = [f"# Sweep `{report.sweep}`", "", report.seeds_note + ".", "", "## Claims", ""]
    if len(report.claims) and (report.claims["verdict"] == "no claim").all():
        out += ["No claim applies to this sweep's runs.", ""]
    else:
        out += [_md_table(report.claims), ""]
    if report.runs:
        columns = SCALING_FINAL_COLUMNS if report.scaling else FINAL_COLUMNS
        rows = []
        for r in report.runs:
            c = r["config"]
            rows.append({"run": r["run_id"][:12], "training set": design_label(SimpleNamespace(**c)),
                         "seed": c.get("seed"), "dx": c.get("increment_x"),
                         "dy": c.get("increment_y"),
                         **{k: (math.nan if r["final"].get(k) is None else r["final"].get(k))
                            for k in columns if k in r["final"]}})
        out += ["## Runs (last checkpoint)", "", _md_table(pd.DataFrame(rows)), ""]
    if report.missing:
        out += ["## Missing (not finished; train them with `bumpdiff sweep " + report.sweep + "`)", ""]
        out += [f"- {m}" for m in report.missing] + [""]
    if any(r.get("design") != "grid" for r in report.efficiency):
        out += ["## Efficiency (last checkpoint; unseen: >= 2 px from every training position)", "",
                efficiency_markdown(report.efficiency), ""]
    out += ["## Fits", "", _md_table(pd.DataFrame(report.fits, columns=FIT_COLUMNS)) if report.fits
            else ("No ladder is decided yet: see the missing runs." if report.scaling
                  else "No data-scaling runs in this sweep."), ""]
    if len(report.m_star):
        out += ["### M* per K and seed", "", _md_table(report.m_star), ""]
    return "\n".join(out)


def efficiency_markdown(rows: list[dict]) -> str:
    """The efficiency rows as a Markdown table: run, positions, seen, unseen [Wilson], memoriser."""
    def iv(r):
        a, lo, hi = r["accuracy_unseen"], r["accuracy_unseen_low"], r["accuracy_unseen_high"]
        if a is None or not math.isfinite(a):
            return "—"
        return f"{a:.2f} [{lo:.2f}, {hi:.2f}]" if math.isfinite(lo) and math.isfinite(hi) else f"{a:.2f}"
    def whole(v):
        return str(int(v)) if v is not None and math.isfinite(v) else "—"
    table = pd.DataFrame([{"run": r["label"], "positions": r["positions"], "step": whole(r["step"]),
                           "seen accuracy": r["accuracy_seen"], "unseen accuracy [95 % Wilson]": iv(r),
                           "unseen positions": whole(r["n_unseen"]), "memoriser (unseen)": r["memoriser_unseen"]}
                          for r in rows])
    return _md_table(table)
