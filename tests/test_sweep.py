"""Sweeps: definitions, the derived table of contents, and one small sweep executed three ways
(in-process, a local Dask cluster of two worker processes, and `--scheduler` against a
`dask scheduler` + `dask worker` started here) giving the same runs with the same metrics, with one
deliberately broken run reported by its notebook while the others finish."""
from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from bumpdiff_core.config import ConfigError, profile_config
from bumpdiff_core.execute.sweep_run import run_sweep
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep, toc_yaml
from reliability_support import wait_or_kill

BIN = Path(sys.executable).parent

# two real runs (3 checkpoints each) and a third whose run folder is damaged before the sweep
SMALL = dict(steps=20, checkpoint_dense_every=10, checkpoint_dense_until=20)
TEST_SWEEP = Sweep("test-tiny", "tiny", overrides=SMALL, seeds=(0,), increments=(0.5, 2.0))
GOOD_IDS = {profile_config("tiny", SMALL).run_id,
            profile_config("tiny", {**SMALL, "increment_x": 0.5, "increment_y": 0.5}).run_id}
BROKEN_ID = profile_config("tiny", {**SMALL, "increment_x": 2.0, "increment_y": 2.0}).run_id


# ---------------------------------------------------------------------------------------------
# definitions (no execution)
# ---------------------------------------------------------------------------------------------

def test_book_quick_expands_to_distinct_runs_and_pages():
    sweep = SWEEPS["book-quick"]
    runs = sweep.runs()
    ids = [r.run_id for r in runs]
    assert len(ids) == len(set(ids))
    # main seeds 0 (tuned: shown on the phases page, read by no verdict) and 3-5 (untuned); 4
    # 3 increments and 3 Fig. 5 designs on figure seed 3 (increment 1.0 is the main run of seed 3,
    # dy 0.1 the increment 0.1 run), their separable controls, 9 `lines` runs
    assert sweep.main_seeds == (0, 3, 4, 5) and sweep.figure_seeds == (3,)
    assert [r.config.seed for r in sweep.main_runs()] == [0, 3, 4, 5]
    assert len(runs) == 4 + 2 + 2 + 3 + 9 == 20
    main = profile_config("quick")
    assert ids[0] == main.run_id and runs[0].overrides_dict == {}
    grid_runs = [r for r in runs if r.config.design == "grid" and r.config.conditioning == "global"]
    incs = {(r.config.increment_x, r.config.increment_y) for r in grid_runs}
    assert {(i, i) for i in (0.1, 0.5, 1.0)} | {(0.1, 1.0), (0.1, 0.5)} == incs
    pages = {p.name: p for p in sweep.page_specs()}
    assert list(pages) == ["findings", "data", "phases", "phase_diagram", "imbalanced", "efficiency", "appendix"]
    assert {s.run_id for s in pages["findings"].needs} == {r.run_id for r in sweep.main_runs() + sweep.increment_runs()
                                                           + sweep.pair_runs() + sweep.control_runs()
                                                           + sweep.efficiency_runs()}  # the verdicts read these
    for name in ("findings", "phases", "phase_diagram", "imbalanced", "efficiency", "appendix"):
        assert pages[name].parameters == {"sweep": "book-quick"}, name
    assert {s.run_id for s in pages["phase_diagram"].needs} == {r.run_id for r in sweep.increment_runs()}
    assert pages["data"].parameters == {"profile": "quick"}
    assert {s.run_id for s in pages["phases"].needs} == {main.run_id}
    # every run a page reads is one the sweep trains, and every run is read by a page
    assert {s.run_id for p in pages.values() for s in p.needs} == set(ids)


def test_no_verdict_input_is_a_tuned_seed():
    from bumpdiff_core.sweeps.definitions import TUNED_SEEDS

    for name in ("book-quick", "book-full"):
        sweep = SWEEPS[name]
        for role in ("increments", "pairs", "controls", "efficiency"):
            assert not {r.config.seed for r in sweep.role_runs(role)} & TUNED_SEEDS, (name, role)


def test_book_quick_efficiency_runs():
    from bumpdiff_core.config import checkpoint_steps
    from bumpdiff_core.sweeps.definitions import design_label

    eff = SWEEPS["book-quick"].efficiency_runs()
    assert len({r.run_id for r in eff}) == len(eff) == 9
    labels = [design_label(r.config) for r in eff]
    assert labels[:3] == ["lines k=2 · global, seed 3", "lines k=2 · global, seed 4", "lines k=2 · global, seed 5"]
    models = {(r.config.conditioning, r.config.coord_channels) for r in eff}
    assert models == {("global", False), ("separable", False), ("global", True)}
    for model in models:  # each model on the same untuned seeds
        assert sorted(r.config.seed for r in eff if (r.config.conditioning, r.config.coord_channels) == model) == [3, 4, 5]
    assert all(len(checkpoint_steps(r.config)) == 6 for r in eff)
    assert len(set(labels)) == len(labels) and "lines k=2 · global + coord, seed 3" in labels  # distinct page keys
    controls = SWEEPS["book-quick"].control_runs()
    assert [(r.config.conditioning, r.config.increment_x, r.config.increment_y) for r in controls] == [
        ("separable", 0.1, 0.1), ("separable", 0.1, 0.5), ("separable", 0.1, 1.0)]
    assert all(checkpoint_steps(r.config) == checkpoint_steps(profile_config("quick")) for r in controls)


def test_book_full_and_seed_lists():
    full, quick = SWEEPS["book-full"], SWEEPS["book-quick"]
    assert full.main_seeds == (0, 1, 2, 3, 4, 5) and full.figure_seeds == (3, 4, 5)
    assert [r.config.seed for r in full.pair_runs()] == [3, 4, 5] * 3
    assert {r.config.seed for r in full.increment_runs()} == {3, 4, 5} and len(full.increment_runs()) == 18
    assert {r.run_id for r in quick.runs()} <= {r.run_id for r in full.runs()}
    # main 6; increments 18 minus increment 1.0 of seeds 3-5 (main runs); pairs 9 minus dy 0.1 (increment
    # 0.1 runs); controls 9; lines 9; random and holdout 3
    assert len(full.runs()) == 6 + 15 + 6 + 9 + 9 + 3
    # `seeds` is shorthand for both lists (sweeps written before they were split)
    legacy = Sweep("x", "tiny", pairs=((0.5, 1.0),), seeds=(1, 2))
    assert legacy.main_seeds == legacy.figure_seeds == (1, 2)


def test_tiny_and_seed_sweeps():
    tiny = SWEEPS["book-tiny"]
    assert len(tiny.runs()) == 6 and all(r.profile == "tiny" for r in tiny.runs())  # + the separable control
    assert len(tiny.efficiency_runs()) == 2
    assert {r.config.conditioning for r in tiny.efficiency_runs()} == {"global", "separable"}
    seeds = SWEEPS["seeds-quick"]
    assert [r.config.seed for r in seeds.runs()] == [0, 1, 2, 3, 4, 5]
    assert seeds.page_specs() == [] and not seeds.book
    # equal configs give equal specs, however they were written
    assert Sweep("x", "quick", overrides={"seed": 0}).runs() == Sweep("x", "quick").runs()


def test_bad_definitions_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="sweep"):
        run_sweep("no-such-sweep", serial=True, out=tmp_path)
    with pytest.raises(ConfigError, match="increment_x"):
        Sweep("bad", "tiny", increments=(9.0,)).runs()
    r = subprocess.run([BIN / "bumpdiff", "sweep", "no-such-sweep", "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "sweep" in r.stderr and not (tmp_path / "generated").exists()


def test_toc_is_derived_from_the_sweep():
    sweep = SWEEPS["book-tiny"]
    toc = yaml.safe_load(toc_yaml(sweep))
    assert toc["format"] == "jb-book" and toc["root"] == "intro"
    entries = [(part["caption"], c["file"], c.get("title")) for part in toc["parts"] for c in part["chapters"]]
    titles = [t for _, _, t in entries]
    assert titles[:7] == ["What reproduced", "Data", "The three phases", "Phase diagram", "Imbalanced data",
                          "Can x and y be learned separately?", "Appendix"]
    assert entries[5][1] == "generated/efficiency" and entries[5][0] == "The findings"
    assert [e[1] for e in entries[7:9]] == ["methods", "reproduce"]
    runs = [f for cap, f, _ in entries if cap == "Runs"]
    assert runs == [f"generated/runs/{r.run_id}" for r in sweep.runs()]


# ---------------------------------------------------------------------------------------------
# one sweep, three ways
# ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _break_run(data: Path) -> None:
    """A damaged run folder: its config.json does not parse as a config, so ensure_run raises."""
    folder = data / "runs" / BROKEN_ID
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"not": "a config"}\n')


def _sweep_one_way(tmp: Path, name: str, **how) -> dict:
    data, out = tmp / name / "data", tmp / name / "out"
    _break_run(data)
    stdout = io.StringIO()
    started = time.time()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setenv("BUMPDIFF_DATA", str(data))
        code = run_sweep(TEST_SWEEP, out=out, progress=False, **how)
    return {"code": code, "data": data, "out": out, "stdout": stdout.getvalue(),
            "seconds": time.time() - started,
            "timings": json.loads((out / "generated" / "timings.json").read_text())}


def _finished(way: dict) -> dict:
    runs = way["data"] / "runs"
    return {p.name: (p / "metrics.csv").read_bytes() for p in runs.iterdir() if (p / "COMPLETE").exists()}


@pytest.fixture(scope="module")
def dask_pair(tmp_path_factory):
    """`dask scheduler` + `dask worker` (two single-threaded processes) on 127.0.0.1."""
    from distributed import Client

    tmp = tmp_path_factory.mktemp("dask_pair")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    # the workers' own BUMPDIFF_DATA is a decoy: each task must carry the sweep's data root
    env = dict(os.environ, BUMPDIFF_DATA=str(tmp / "decoy"))
    procs = [subprocess.Popen([BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                              stderr=open(tmp / "scheduler.log", "w"))]
    try:
        procs.append(subprocess.Popen([BIN / "dask", "worker", address, "--nworkers", "2", "--nthreads", "1",
                                       "--host", "127.0.0.1", "--no-dashboard", "--local-directory", str(tmp)],
                                      env=env, cwd=tmp, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / "worker.log", "w")))
        deadline = time.time() + 60
        while True:  # the scheduler needs a moment before it accepts connections
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield {"address": address, "decoy": tmp / "decoy"}
    finally:
        with contextlib.suppress(Exception):  # the quick way down: the scheduler tells its workers
            with Client(address, timeout=5) as client:
                client.shutdown()
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(procs):
            wait_or_kill(p, 20)


@pytest.fixture(scope="module")
def three_ways(tmp_path_factory, dask_pair):
    tmp = tmp_path_factory.mktemp("three_ways")
    os.environ.setdefault("NUMBA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "numba_cache"))
    return {
        "serial": _sweep_one_way(tmp, "serial", serial=True),
        "local dask": _sweep_one_way(tmp, "local", workers=2),
        "scheduler": _sweep_one_way(tmp, "scheduler", scheduler=dask_pair["address"]),
    }


def test_same_runs_and_same_metrics_each_way(three_ways):
    reference = _finished(three_ways["serial"])
    assert set(reference) == GOOD_IDS
    for name, way in three_ways.items():
        finished = _finished(way)
        assert set(finished) == GOOD_IDS, name
        for run_id in GOOD_IDS:
            assert finished[run_id] == reference[run_id], f"{name}: metrics.csv of {run_id} differs"
        for run_id in GOOD_IDS:  # executed notebooks, named by run id, next to each other
            nb = json.loads((way["out"] / "generated" / "runs" / f"{run_id}.ipynb").read_text())
            assert nb["metadata"]["papermill"]["parameters"]["profile"] == "tiny"
            assert not nb["metadata"]["papermill"]["exception"]


def test_a_failed_run_is_reported_with_its_notebook_and_loses_nothing(three_ways):
    for name, way in three_ways.items():
        assert way["code"] == 1, name
        notebook = way["out"] / "generated" / "runs" / f"{BROKEN_ID}.ipynb"
        assert f"FAILED: run {BROKEN_ID}" in way["stdout"], name
        assert f"notebook: {notebook}" in way["stdout"], name
        assert "CorruptFileError" in way["stdout"], name
        executed = json.loads(notebook.read_text())  # the executed copy shows the error
        assert executed["metadata"]["papermill"]["exception"] is True
        records = {r["name"]: r for r in way["timings"]["notebooks"]}
        assert records[BROKEN_ID]["status"] == "failed"
        assert all(records[i]["status"] == "ok" for i in GOOD_IDS), name
        assert way["timings"]["train_stage_seconds"] > 0 and "analysis_stage_seconds" in way["timings"]


def test_remote_workers_use_the_sweeps_data_root(three_ways, dask_pair):
    assert not dask_pair["decoy"].exists()
    assert "2 workers" in three_ways["local dask"]["timings"]["executor"]
    assert three_ways["scheduler"]["timings"]["executor"] == dask_pair["address"]


def test_rerun_reuses_finished_notebooks_and_retries_the_failed_one(three_ways):
    way = three_ways["serial"]
    stdout = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setenv("BUMPDIFF_DATA", str(way["data"]))
        code = run_sweep(TEST_SWEEP, serial=True, out=way["out"], progress=False)
    records = {r["name"]: r for r in json.loads((way["out"] / "generated" / "timings.json").read_text())["notebooks"]}
    assert code == 1
    assert all(records[i]["status"] == "reused" for i in GOOD_IDS)
    assert records[BROKEN_ID]["status"] == "failed"


def test_an_executed_notebook_is_reused_only_while_it_is_current(tmp_path):
    import nbformat

    from bumpdiff_core.execute.notebooks import NotebookTask, is_fresh

    source, output, marker = tmp_path / "src.ipynb", tmp_path / "out.ipynb", tmp_path / "COMPLETE"
    nbformat.write(nbformat.v4.new_notebook(), source)
    marker.write_text("{}")
    params = {"profile": "tiny", "overrides": {}, "threads": 1}

    def executed(parameters=params, exception=None, end_time="2026-01-01T00:00:00"):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"parameters": parameters, "exception": exception, "end_time": end_time}
        nbformat.write(nb, output)
        later = time.time() + 5  # newer than the source, the marker and the library
        os.utime(output, (later, later))

    task = NotebookTask("run", "x", str(source), str(output), params, str(tmp_path), str(tmp_path), [str(marker)])
    executed()
    assert is_fresh(task)
    executed(parameters={**params, "profile": "quick"})
    assert not is_fresh(task)                     # other parameters
    executed(exception=True)
    assert not is_fresh(task)                     # it failed
    executed(end_time=None)
    assert not is_fresh(task)                     # it never finished
    executed()
    later = time.time() + 10
    os.utime(source, (later, later))
    assert not is_fresh(task)                     # the source notebook changed since
    executed()
    os.utime(marker, (later + 10, later + 10))
    assert not is_fresh(task)                     # the run was recomputed since
    executed()
    marker.unlink()
    assert not is_fresh(task)                     # the run is gone


def test_pages_whose_runs_failed_are_skipped_and_reported(tmp_path, monkeypatch):
    """Stand-in notebooks (seconds): the run with increment_x 0.5 fails, so the page reading it is
    skipped while the page reading the other run executes."""
    import nbformat

    def notebook(name, parameters, body):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [cell, nbformat.v4.new_code_cell(body)]
        nb.metadata["kernelspec"] = {"name": "bumpdiff", "language": "python", "display_name": "bumpdiff"}
        nbformat.write(nb, tmp_path / "nb" / f"{name}.ipynb")

    (tmp_path / "nb").mkdir()
    notebook("train_and_evaluate", 'profile = "quick"\noverrides = {}\nthreads = 1',
             'if overrides.get("increment_x") == 0.5:\n    raise RuntimeError("deliberately broken run")')
    notebook("phases", 'profile = "quick"\noverrides = {}', "print(profile)")
    notebook("imbalanced", 'profile = "quick"\npairs = []\nseeds = [0]\noverrides = {}', "print(pairs)")
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path / "data"))
    sweep = Sweep("stub", "tiny", pairs=((0.5, 1.0),), pages=("phases", "imbalanced"))
    out = tmp_path / "out"
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = run_sweep(sweep, serial=True, out=out, notebooks=tmp_path / "nb", progress=False)
    records = {r["name"]: r for r in json.loads((out / "generated" / "timings.json").read_text())["notebooks"]}
    pair_id = profile_config("tiny", {"increment_x": 0.5}).run_id
    assert code == 1
    assert records[profile_config("tiny").run_id]["status"] == "ok"
    assert records[pair_id]["status"] == "failed" and "deliberately broken run" in records[pair_id]["error"]
    assert records["phases"]["status"] == "ok" and (out / "generated" / "phases.ipynb").exists()
    assert records["imbalanced"]["status"] == "skipped" and pair_id in records["imbalanced"]["error"]
    assert not (out / "generated" / "imbalanced.ipynb").exists()
    assert f"SKIPPED: page imbalanced: needs runs that failed: {pair_id}" in stdout.getvalue()
    # the executed page shows the injected parameters, not the notebook's defaults
    executed = nbformat.read(out / "generated" / "phases.ipynb", as_version=4)
    tags = [c.metadata.get("tags", []) for c in executed.cells]
    assert ["parameters", "remove-cell"] in tags and ["injected-parameters"] in tags


def test_kernels_run_single_threaded_without_dasks_malloc_setting(tmp_path, monkeypatch):
    """Dask's nanny exports MALLOC_TRIM_THRESHOLD_ to its workers; a kernel that inherited it spent
    half its CPU time in page faults. Kernels must not inherit it, and run one thread each."""
    import nbformat

    from bumpdiff_core.execute.notebooks import NotebookTask, execute_notebook_task

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        'import os\nprint(os.environ.get("MALLOC_TRIM_THRESHOLD_"), os.environ.get("OMP_NUM_THREADS"))')]
    nb.metadata["kernelspec"] = {"name": "bumpdiff", "language": "python", "display_name": "bumpdiff"}
    nbformat.write(nb, tmp_path / "env.ipynb")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    task = NotebookTask("page", "env", str(tmp_path / "env.ipynb"), str(tmp_path / "out.ipynb"), {},
                        str(tmp_path), str(tmp_path))
    record = execute_notebook_task(task)
    assert record["status"] == "ok", record
    out = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert out.cells[-1].outputs[0]["text"].strip() == "None 1"


# --- a page's inputs are the runs of the roles it reads; its freshness follows from them --------

def _fresh_pages(sweep, out, data):
    from bumpdiff_core.execute.notebooks import is_fresh
    from bumpdiff_core.execute.sweep_run import NOTEBOOKS_DIR, _tasks

    _, page_tasks = _tasks(sweep, out, NOTEBOOKS_DIR, data)
    return {task.name: is_fresh(task) for task, _ in page_tasks}, page_tasks


def test_changing_one_input_run_makes_exactly_its_readers_stale(tmp_path):
    import os
    import time

    import nbformat

    from bumpdiff_core.execute.sweep_run import NOTEBOOKS_DIR, _tasks
    from bumpdiff_core.runs.store import RunLayout
    from bumpdiff_core.sweeps.definitions import PAGE_ROLES, get_sweep

    sweep, out, data = get_sweep("book-tiny"), tmp_path / "out", tmp_path / "data"
    now = time.time()
    for spec in sweep.runs():  # every run "finished" a while ago
        marker = RunLayout.of(spec.run_id, data).complete_path
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("done")
        os.utime(marker, (now - 100, now - 100))
    _, page_tasks = _tasks(sweep, out, NOTEBOOKS_DIR, data)
    for task, _ in page_tasks:  # every page executed after them, with its own parameters
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"end_time": "2026-12-05", "exception": None, "parameters": task.parameters}
        Path(task.output).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, task.output)
        os.utime(task.output, (now + 100, now + 100))
    fresh, _ = _fresh_pages(sweep, out, data)
    assert all(fresh.values()), fresh

    pages = {p.name: p for p in sweep.page_specs()}
    for role, spec in [("efficiency", sweep.efficiency_runs()[0]), ("increments", sweep.increment_runs()[0]),
                       ("default", sweep.main_run())]:
        os.utime(RunLayout.of(spec.run_id, data).complete_path, (now + 200, now + 200))  # recomputed
        fresh, _ = _fresh_pages(sweep, out, data)
        stale = {name for name, ok in fresh.items() if not ok}
        readers = {name for name, page in pages.items() if spec.run_id in {s.run_id for s in page.needs}}
        assert stale == readers, (role, stale, readers)
        assert readers and readers != set(pages), role  # some pages read it, not all
        for name in readers:  # each reader declares a role that holds the run
            assert any(spec.run_id in {s.run_id for s in sweep.role_runs(r)} for r in PAGE_ROLES[name]), name
        for task, _ in _tasks(sweep, out, NOTEBOOKS_DIR, data)[1]:  # rebuild them: fresh again
            os.utime(task.output, (now + 300, now + 300))
        now += 300


def test_page_roles_are_declared_for_every_page_and_name_known_roles():
    from bumpdiff_core.sweeps.definitions import PAGE_ROLES, PAGE_TITLES, ROLES, Sweep

    assert set(PAGE_ROLES) == set(PAGE_TITLES)
    assert all(set(roles) <= set(ROLES) for roles in PAGE_ROLES.values())
    with pytest.raises(Exception, match="role"):
        Sweep("x", "tiny").role_runs("nonsense")
