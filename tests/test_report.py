"""report.py and `bumpdiff report`: a sweep's results from finished runs only, strict JSON, missing
runs listed (exit 3), never any training."""
from __future__ import annotations

import io
import json

import pytest

from bumpdiff_core.present import report
from bumpdiff_core.claims import verdicts
from bumpdiff_core.sweeps.definitions import Sweep, get_sweep

from test_verdicts import make_table

SWEEP = Sweep("report-test", "tiny", main_seeds=(0, 3), increments=(0.25, 0.5, 1.0), pairs=((0.5, 1.0),),
              description="a sweep for the report tests (hand-written runs)")


def write_finished_run(spec, root, table):
    """A finished run written by hand: config.json, a recorded metrics.csv, the COMPLETE marker."""
    from bumpdiff_core.runs.store import Run

    make = getattr(Run, "create_or_open", None) or Run.create
    run = make(spec.config, root)
    buf = io.StringIO()
    table.to_csv(buf, index=False)
    run.write_bytes(run.metrics_path, buf.getvalue().encode())
    run.mark_complete()
    return run


def assert_schema(obj, sweep_name):
    assert set(obj) >= {"sweep", "runs", "claims", "missing", "efficiency"}
    assert obj["sweep"] == sweep_name
    for r in obj["runs"]:
        assert set(r) == {"run_id", "run_dir", "config", "final"}
        assert isinstance(r["config"], dict) and isinstance(r["final"], dict)
    for c in obj["claims"]:
        assert list(c) == ["claim", "verdict", "value", "low", "high", "detail", "runs", "flips"]
        assert isinstance(c["runs"], list) and isinstance(c["flips"], list)
        assert c["verdict"] in verdicts.VERDICTS
        if c["value"] is not None and c["low"] is not None:
            assert c["low"] <= c["value"] <= c["high"]
    assert isinstance(obj["efficiency"], list)


@pytest.fixture
def fake_root(tmp_path):
    tables = {}
    for spec in SWEEP.runs():
        c = spec.config
        t = make_table(seed=c.seed, cross_acc=6 + int(c.increment_x * 2))
        t.loc[t.index[-1], "r2_x"] = float("nan")  # a NaN in a final metric must become null
        tables[spec.run_id] = t
        write_finished_run(spec, tmp_path, t)
    return tmp_path


def test_report_json_schema_on_hand_written_runs(fake_root):
    rep = report.sweep_report(SWEEP, root=fake_root)
    assert rep.missing == [] and rep.exit_code == report.EXIT_COMPLETE
    text = rep.to_json()
    obj = json.loads(text)  # strict: to_json uses allow_nan=False
    assert_schema(obj, "report-test")
    assert len(obj["runs"]) == len(SWEEP.runs())
    assert obj["seeds_used"] == [3]  # seed 0 is tuned
    assert any(r["final"]["r2_x"] is None for r in obj["runs"])
    claims = {c["claim"]: c for c in obj["claims"]}
    assert list(claims) == list(verdicts.CLAIMS.values())
    assert claims[verdicts.CLAIMS["fig4_trend"]]["value"] is not None
    md = rep.to_markdown()
    assert "## Claims" in md and "| claim | verdict |" in md


def test_unfinished_runs_are_missing_and_nothing_trains(fake_root):
    first = SWEEP.runs()[1]
    (fake_root / "runs" / first.run_id / "COMPLETE").unlink()
    rep = report.sweep_report(SWEEP, root=fake_root)
    assert rep.missing == [first.run_id] and rep.exit_code == report.EXIT_INCOMPLETE
    assert "not finished" in rep.seeds_note
    assert first.run_id in rep.to_markdown()
    assert not (fake_root / "runs" / first.run_id / "checkpoints").exists()
    assert json.loads(rep.to_json())["missing"] == [first.run_id]


def test_cli_report(fake_root, monkeypatch, capsys):
    from bumpdiff_core import cli
    from bumpdiff_core.sweeps import definitions as sweep

    monkeypatch.setenv("BUMPDIFF_DATA", str(fake_root))
    monkeypatch.setitem(sweep.SWEEPS, SWEEP.name, SWEEP)
    assert cli.main(["report", SWEEP.name, "--json"]) == 0
    assert_schema(json.loads(capsys.readouterr().out), SWEEP.name)
    assert cli.main(["report", SWEEP.name]) == 0
    assert capsys.readouterr().out.startswith("# Sweep `report-test`")
    assert cli.main(["report", "no-such-sweep"]) == 2
    monkeypatch.setenv("BUMPDIFF_DATA", str(fake_root / "empty"))
    assert cli.main(["report", SWEEP.name, "--json"]) == report.EXIT_INCOMPLETE
    out = capsys.readouterr()
    obj = json.loads(out.out)
    assert obj["runs"] == [] and len(obj["missing"]) == len(SWEEP.runs())
    assert {c["verdict"] for c in obj["claims"]} == {verdicts.NO_CLAIM}
    assert "not finished" in out.err


def test_report_on_the_tiny_run(tiny_run):
    """book-tiny's main run is the tiny run; its other runs are not there: listed as missing."""
    root = tiny_run.path.parent.parent
    rep = report.sweep_report("book-tiny", root=root)
    obj = json.loads(rep.to_json())
    assert_schema(obj, "book-tiny")
    assert [r["run_id"] for r in obj["runs"]] == [tiny_run.path.name]
    assert set(obj["missing"]) == {s.run_id for s in get_sweep("book-tiny").runs()} - {tiny_run.path.name}
    assert rep.exit_code == report.EXIT_INCOMPLETE
    assert obj["runs"][0]["final"]["step"] == tiny_run.config.steps


def test_report_json_properties_on_a_hand_made_sweep(fake_root):
    """The JSON parses; every claim has one of the five verdicts; low ≤ value ≤ high wherever both
    exist; a sampled value (an accuracy, an R², a crossing gap) has low < high."""
    obj = json.loads(report.sweep_report(SWEEP, root=fake_root).to_json())
    claims = {c["claim"]: c for c in obj["claims"]}
    assert list(claims) == list(verdicts.CLAIMS.values())
    for c in obj["claims"]:
        assert c["verdict"] in verdicts.VERDICTS
        if c["value"] is not None and c["low"] is not None and c["high"] is not None:
            assert c["low"] <= c["value"] <= c["high"], c
            if c["claim"] in (verdicts.CLAIMS["phases"], verdicts.CLAIMS["phase_C"]):
                assert c["low"] < c["high"], c
    # no efficiency runs in this sweep: the lines claim is not made; no control: Fig. 5 at most partly
    assert claims[verdicts.CLAIMS["compose"]]["verdict"] == verdicts.NO_CLAIM
    assert claims[verdicts.CLAIMS["fig5_coupling"]]["verdict"] != verdicts.REPRODUCED
