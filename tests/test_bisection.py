"""Data scaling by bisection: `scaling.bisect_next` finds the smallest passing rung of a ladder in
at most log2(rungs + 1) trained rungs, the report reads M* only off decided ladders and lists the
next bisection step as missing, and `run_sweep` trains round after round until every ladder is
decided (a fake executor and store here: no training)."""
from __future__ import annotations

import contextlib
import io
import json

import pandas as pd
import pytest

from bumpdiff_core.present import report
from bumpdiff_core.results import tables as tables_mod
from bumpdiff_core.claims import scaling
from bumpdiff_core.execute.sweep_run import run_sweep
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep


def _bisect(n: int, first_pass: int):
    """Run the bisection on a monotone ladder of n rungs whose rungs >= first_pass pass."""
    passed, trained = [None] * n, []
    while (i := scaling.bisect_next(passed)) is not None:
        assert passed[i] is None  # never asks for a rung twice
        passed[i] = i >= first_pass
        trained.append(i)
    return passed, trained


@pytest.mark.parametrize("n", range(0, 11))
def test_bisection_finds_the_smallest_passing_rung_in_log_steps(n):
    for first_pass in range(n + 1):  # n: no rung passes (censored)
        passed, trained = _bisect(n, first_pass)
        assert len(trained) <= scaling.bisection_length(n)
        found = [i for i in trained if passed[i]]
        assert (min(found) if found else n) == first_pass
        if 0 < first_pass:           # the rung below M* was trained and failed: M* is bracketed
            assert passed[first_pass - 1] is False
        if first_pass == n and n:    # censored only when the top rung itself failed
            assert passed[n - 1] is False


def test_bisection_reuses_results_on_its_path_and_ignores_others():
    assert scaling.bisect_next([None, None, None, None, None]) == 2
    assert scaling.bisect_next([None, None, True, None, None]) == 1
    assert scaling.bisect_next([None, False, True, None, None]) is None   # M* = rung 2
    assert scaling.bisect_next([True, None, None, None, False]) == 2      # off-path results are not used


def test_efficiency_small_bisects_the_same_ladders_as_efficiency_full():
    full, small = SWEEPS["efficiency-full"], SWEEPS["efficiency-small"]
    full_ladders = {(lad.design, lad.model, lad.k, lad.seed): lad for lad in full.ladders}
    assert small.ladders and all(full_ladders[(lad.design, lad.model, lad.k, lad.seed)] == lad for lad in small.ladders)
    assert {s.run_id for s in small.runs()} <= {s.run_id for s in full.runs()}
    assert {lad.k for lad in small.ladders} == set(scaling.SMALL_SIZES)


# ---------------------------------------------------------------------------------------------
# the report and the sweep on a fake store where a rung passes once size >= K ** power
# ---------------------------------------------------------------------------------------------

POWER = 1.3
SMALL = Sweep("bisect-test", "quick", main_seeds=(), figure_seeds=(), scaling=True,
              efficiency=tuple(scaling.reference_overrides((8, 12, 16, 24), (0,), ("global",))),
              ladders=tuple(scaling.ladders((8, 12, 16, 24), (0,), ("global",))))


def _table(config) -> pd.DataFrame:
    if config.design == "grid":
        return pd.DataFrame({"step": [config.steps], "accuracy": [0.97]})
    rung = config.design_count if config.design == "random" else config.design_lines
    size = scaling.design_size(config.design, config.image_size, rung)
    return pd.DataFrame({"step": [config.steps], "accuracy": [0.97],
                         "accuracy_unseen": [0.95 if size >= config.image_size ** POWER else 0.1], "memoriser_unseen": [0.0]})


@pytest.fixture
def fake_store(monkeypatch):
    """`results.tables.finished_table` answers from `done` ({run_id: config}); the serial executor
    'trains' a run by adding it to `done` (or fails the run ids in `broken`)."""
    from bumpdiff_core.execute import sweep_run as sweep_module
    from bumpdiff_core.results import tables as tables_module
    from bumpdiff_core.config import profile_config
    from bumpdiff_core.execute.notebooks import _record

    done, broken, executed = {}, set(), []

    def finished(spec, root=None):
        return (f"/runs/{spec.run_id}", _table(done[spec.run_id])) if spec.run_id in done else None

    class FakeExecutor:
        def map(self, tasks):
            for task in tasks:
                executed.append(task.name)
                if task.name in broken:
                    yield _record(task, "failed", "deliberately broken")
                    continue
                done[task.name] = profile_config("quick", task.parameters["overrides"])
                yield _record(task, "ok")

        def close(self):
            pass

    monkeypatch.setattr(tables_module, "finished_table", finished)
    monkeypatch.setattr(sweep_module, "SerialExecutor", FakeExecutor)
    return done, broken, executed


def _sweep(tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        code = run_sweep(SMALL, serial=True, out=tmp_path / "out", progress=False)
    return code, json.loads((tmp_path / "out" / "generated" / "timings.json").read_text())


def test_sweep_bisects_until_every_ladder_is_decided(tmp_path, fake_store):
    done, _, executed = fake_store
    before = report.sweep_report(SMALL)
    assert len(before.missing) == len(SMALL.runs()) + len(SMALL.ladders)  # references + first steps
    assert before.exit_code == report.EXIT_INCOMPLETE and len(before.m_star) == 0

    code, timings = _sweep(tmp_path)
    assert code == 0 and len(executed) == len(set(executed))          # nothing trained twice
    every_rung = sum(len(lad.rungs) for lad in SMALL.ladders)
    rungs_trained = len(executed) - len(SMALL.runs())
    assert rungs_trained <= sum(scaling.bisection_length(len(lad.rungs)) for lad in SMALL.ladders) < every_rung
    assert timings["bisection_rounds"] >= 2

    after = report.sweep_report(SMALL)
    assert after.missing == [] and after.exit_code == report.EXIT_COMPLETE
    # M* from bisection equals M* from the full ladder
    full = scaling.m_star_table([(spec.config, _table(spec.config).iloc[-1]) for spec in SMALL.runs()]
                                + [(s.config, _table(s.config).iloc[-1]) for lad in SMALL.ladders
                                   for s in SMALL.ladder_runs(lad)])
    pd.testing.assert_series_equal(after.m_star["m_star"].reset_index(drop=True), full["m_star"].reset_index(drop=True))
    assert after.m_star["m_star"].notna().any()

    n = len(executed)                                                 # a second sweep trains no rung
    code, _ = _sweep(tmp_path)                                        # (its static runs are reused)
    assert code == 0 and set(executed[n:]) <= {s.run_id for s in SMALL.runs()}


def test_a_failed_rung_stops_its_ladder_and_is_reported(tmp_path, fake_store):
    done, broken, executed = fake_store
    first = tables_mod.next_ladder_runs(SMALL)[0]
    broken.add(first.run_id)
    code, timings = _sweep(tmp_path)
    assert code == 1 and executed.count(first.run_id) == 1             # tried once, not in a loop
    assert any(r["run_id"] == first.run_id and r["status"] == "failed" for r in timings["notebooks"])
    left = report.sweep_report(SMALL)
    assert left.missing == [first.run_id] and left.exit_code == report.EXIT_INCOMPLETE


def test_report_of_a_finished_scaling_sweep_shows_m_star_and_unseen_accuracy(tmp_path, fake_store):
    _sweep(tmp_path)
    done = report.sweep_report(SMALL)
    md, obj = done.to_markdown(), json.loads(done.to_json())
    assert "accuracy_unseen" in md and "memoriser_unseen" in md and "### M* per K and seed" in md
    assert "No claim applies to this sweep's runs." in md and "## Efficiency" not in md  # references only
    assert len(obj["m_star"]) == len(SMALL.ladders) and {f["design"] for f in obj["fits"]} == {"random", "lines"}
    bottom = [r for r in obj["m_star"] if r["detail"].endswith("an upper bound")]
    assert all(r["m_star"] == scaling.design_size(r["design"], r["K"], 1 if r["design"] == "lines" else r["K"])
               for r in bottom)
