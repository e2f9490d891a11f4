"""`bumpdiff report SWEEP [--json]`: a sweep's results, computed from its finished runs.

It never trains or evaluates: each run of the sweep is looked up in the data root
(`results.tables.finished_table`, the one place that knows how a finished run is found and read); a run that is
not finished is listed as missing, the claims are judged on the finished runs alone, and the
command exits with `EXIT_INCOMPLETE` (3) so a script can tell a partial report from a full one
(0). Markdown tables for people; `--json` prints one strict JSON object (NaN → null):

    {"sweep", "seeds_used", "seeds_note", "missing": [run ids],
     "runs": [{"run_id", "run_dir", "config", "final": {metric: value}}],   (finished runs only)
     "claims": [{"claim", "verdict", "value", "low", "high", "detail"}],
     "efficiency": [{"run_id", "label", "design", "conditioning", ..., "accuracy_unseen",
                     "accuracy_unseen_low", "accuracy_unseen_high", "memoriser_unseen"}]}

`efficiency` has one row per efficiency run (`efficiency_row`: its last checkpoint). A scaling
sweep (one with a rung search) is reported by `present.report_scaling` instead.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from types import SimpleNamespace

import pandas as pd

from bumpdiff_core.claims import verdicts
from bumpdiff_core.claims.sensitivity import threshold_flips
from bumpdiff_core.results.tables import EFFICIENCY_COLUMNS, read_sweep, verdict_inputs
from bumpdiff_core.sweeps.definitions import design_label, get_sweep

EXIT_COMPLETE, EXIT_INCOMPLETE = 0, 3


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


@dataclass
class SweepReport:
    sweep: str
    runs: list                      # [{"run_id", "run_dir", "config", "final"}] of finished runs
    missing: list                   # run ids not finished
    claims: pd.DataFrame            # verdicts.CLAIM_COLUMNS
    seeds_used: tuple = ()
    seeds_note: str = ""
    efficiency: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_INCOMPLETE if self.missing else EXIT_COMPLETE

    def to_dict(self) -> dict:
        keys = verdicts.CLAIM_COLUMNS + (["flips"] if "flips" in self.claims.columns else [])
        claims = [{k: r.get(k) for k in keys} for r in self.claims.to_dict("records")]
        return _clean({"sweep": self.sweep, "seeds_used": list(self.seeds_used), "seeds_note": self.seeds_note,
                       "missing": list(self.missing), "runs": self.runs, "claims": claims,
                       "efficiency": [{k: r.get(k) for k in EFFICIENCY_COLUMNS} for r in self.efficiency]})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False, indent=2, ensure_ascii=False)

    def to_markdown(self) -> str:
        return report_markdown(self)


def sweep_report(name, root=None, tuned_seeds=verdicts.TUNED_SEEDS,
                 thresholds: verdicts.Thresholds = verdicts.DEFAULT) -> SweepReport:
    """The report of sweep `name` (a name in sweep.SWEEPS or a Sweep) from the runs finished
    under data root `root` (default $BUMPDIFF_DATA or ./data)."""
    sweep = get_sweep(name)
    found, runs, missing = read_sweep(sweep, root)
    inputs = verdict_inputs(sweep, found, tuned_seeds)
    fig_seed = inputs.pop("figure_seed")
    efficiency = inputs["efficiency"]
    judgement = verdicts.judge(tuned_seeds=tuned_seeds, thresholds=thresholds, **inputs)
    # every declared threshold varied one at a time: the settings that flip each verdict
    flips = threshold_flips(inputs, tuned_seeds, thresholds)
    judgement = replace(judgement, table=judgement.table.assign(flips=[flips.get(c, []) for c in judgement.table["claim"]]))
    increments = inputs["increments"]
    note = judgement.note + (f"; {len(missing)} run(s) not finished, judged without them" if missing else "")
    if len(sweep.figure_seeds) > 1 and increments:
        note += f"; the Fig. 4 trend on figure seed {fig_seed} (one table per increment)"
    return SweepReport(sweep.name, _clean(runs), missing, judgement.table, judgement.seeds_used, note, efficiency)


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


def report_markdown(report: SweepReport) -> str:
    """Claims, then runs (final checkpoint), then missing runs and fits, as Markdown."""
    out = [f"# Sweep `{report.sweep}`", "", report.seeds_note + ".", "", "## Claims", ""]
    if len(report.claims) and (report.claims["verdict"] == "no claim").all():
        out += ["No claim applies to this sweep's runs.", ""]
    else:
        shown = report.claims.copy()
        if "runs" in shown.columns:  # short ids: the full ones are in --json
            shown["runs"] = [", ".join(str(r)[:8] for r in (rs if isinstance(rs, (list, tuple)) else []))
                             for rs in shown["runs"]]
        if "flips" in shown.columns:
            shown["flips"] = ["; ".join(f) if isinstance(f, (list, tuple)) and f else "none" for f in shown["flips"]]
        out += [_md_table(shown), ""]
    if report.runs:
        columns = FINAL_COLUMNS
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
