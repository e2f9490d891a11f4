"""The read-only run view: each file of a run is read at most once per view, bump detection runs
once per checkpoint, and a sweep's runs are the ones the sweep defines."""
from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest
from synthetic import OVERRIDES, STEPS, config, synthetic_view, write_run

from bumpdiff_core.measure import metrics
from bumpdiff_core.runs import store
from bumpdiff_core.sweeps.definitions import SWEEPS, Sweep
from bumpdiff_core.results.view import RunView, SweepView

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


@pytest.fixture
def reads(monkeypatch):
    """Counts of reads through the store, by file name relative to its run folder."""
    counts = collections.Counter()
    real = store.Run.read_bytes

    def counting(self, path):
        counts[Path(path).relative_to(self.path).as_posix()] += 1
        return real(self, path)

    monkeypatch.setattr(store.Run, "read_bytes", counting)
    return counts


def test_a_view_reads_each_file_once_and_detects_bumps_once(tmp_path, reads, monkeypatch):
    view = RunView.open(write_run(tmp_path))
    detections = []
    real_detect = metrics.detect_bumps
    monkeypatch.setattr(metrics, "detect_bumps", lambda *a, **k: detections.append(1) or real_detect(*a, **k))
    for _ in range(3):
        assert view.steps == STEPS
        for step in STEPS:
            ev = view.evaluation(step)
            ev.bump_count, ev.centres, ev.correct, ev.embedding  # noqa: B018
        view.aligned_embeddings, view.losses, view.first_steps  # noqa: B018
    assert reads["metrics.csv"] == 1 and reads["losses.npz"] == 1
    assert {k: v for k, v in reads.items() if k.startswith(("evals/", "umap/"))} == {
        f"{folder}/step_{s:07d}.npz": 1 for folder in ("evals", "umap") for s in STEPS}
    assert len(detections) == len(STEPS)


def test_view_values_match_the_stored_run(tmp_path):
    from bumpdiff_core.results.schema import load_evaluation

    run = write_run(tmp_path)
    view = RunView.open(run)
    assert view.run_id == run.path.name == config().run_id
    for step in STEPS:
        stored, ev = load_evaluation(run, step), view.evaluation(step)
        np.testing.assert_array_equal(ev.samples, stored["samples"])
        np.testing.assert_array_equal(ev.embedding, stored["embedding"])
        np.testing.assert_array_equal(ev.bump_count, stored["bump_count"])
        np.testing.assert_array_equal(ev.centres, stored["centres"])
    assert view.first_steps == {"A": 0, "B": 20, "C": 30}
    assert view.meta["parameters"] == 1234
    with pytest.raises(KeyError, match="not evaluated"):
        view.evaluation(15)
    with pytest.raises(KeyError, match="not evaluated"):
        view.row(15)


def test_evaluation_correct_is_the_accuracy_rule():
    view = synthetic_view()
    for step in STEPS:
        ev = view.evaluation(step)
        assert ev.correct.mean() == pytest.approx(view.row(step)["accuracy"])


def test_sweep_view_opens_the_runs_the_sweep_defines(tmp_path, monkeypatch):
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path))
    main = write_run(tmp_path)
    pair = write_run(tmp_path, increment_x=0.5)
    sweep = Sweep("synthetic-view", "tiny", overrides=OVERRIDES, increments=(1.0,), pairs=((0.5, 1.0),),
                  main_seeds=(0,), figure_seeds=(0,))
    monkeypatch.setitem(SWEEPS, sweep.name, sweep)
    runs = SweepView(sweep.name)
    assert runs.main.run_id == main.path.name
    assert {k: v.run_id for k, v in runs.increments().items()} == {1.0: main.path.name}
    assert {k: v.run_id for k, v in runs.pairs().items()} == {(0.5, 1.0, 0): pair.path.name}
    assert runs.increments()[1.0] is runs.main  # one view per run
    # with several figure seeds, Fig. 4 shows the first untuned one, the seed `bumpdiff report` judges
    seeds = write_run(tmp_path, seed=3)
    several = Sweep("synthetic-view-seeds", "tiny", overrides=OVERRIDES, increments=(1.0,), figure_seeds=(0, 3))
    assert {k: v.run_id for k, v in SweepView(several).increments().items()} == {1.0: seeds.path.name}
    from bumpdiff_core.runs.store import StoreError

    with pytest.raises(StoreError, match="not computed"):
        SweepView(Sweep("other", "tiny", overrides={**OVERRIDES, "seed": 5})).main.table




def test_the_phases_page_reads_each_checkpoint_once(tmp_path, reads, monkeypatch):
    """Execute the phases notebook's code cells against a finished synthetic run."""
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path))
    monkeypatch.delenv("BUMPDIFF_STATIC_BOOK", raising=False)  # the live scrubber reads through the view too
    monkeypatch.chdir(tmp_path)  # a live kernel writes the page's download files into its working folder
    write_run(tmp_path)
    sweep = Sweep("synthetic-phases", "tiny", overrides=OVERRIDES, pages=("phases",))
    monkeypatch.setitem(SWEEPS, sweep.name, sweep)
    namespace: dict = {}
    cells = json.loads((NOTEBOOKS / "phases.ipynb").read_text())["cells"]
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        exec(compile("".join(cell["source"]), "phases.ipynb", "exec"), namespace)
        if "parameters" in cell["metadata"].get("tags", []):
            namespace["sweep"] = sweep.name  # what papermill injects
    assert namespace["view"].run_id == config().run_id
    assert reads["metrics.csv"] == 1
    evaluation_reads = {k: v for k, v in reads.items() if k.startswith(("evals/", "umap/"))}
    assert evaluation_reads == {f"{folder}/step_{s:07d}.npz": 1 for folder in ("evals", "umap") for s in STEPS}


def test_a_table_evaluated_before_the_new_columns_loads_with_nan(tmp_path):
    from bumpdiff_core.results.schema import METRIC_COLUMNS

    view = synthetic_view()
    old = view.table[METRIC_COLUMNS[:13]]
    again = RunView.from_data(view.config, old, {})
    assert list(again.table.columns) == METRIC_COLUMNS
    assert again.table["accuracy_unseen"].isna().all() and again.table["intrinsic_dim"].isna().all()
    np.testing.assert_array_equal(again.table["accuracy"], old["accuracy"])
    assert again.position_map is None  # design=grid / no map given
