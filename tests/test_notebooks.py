"""The notebooks in notebooks/ are their own sources: kept without outputs, each with one
`parameters` cell and the `bumpdiff` kernel; their code runs against finished runs in-process."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from synthetic import OVERRIDES, write_run

from bumpdiff_core.execute.notebooks import KERNEL_NAME
from bumpdiff_core.sweeps.definitions import ALL_PAGES, SWEEPS, TRAIN_NOTEBOOK, Sweep

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
ALL = sorted(NOTEBOOKS.glob("*.ipynb"))


def notebook_problems(nb: dict) -> list[str]:
    """What keeps a notebook (as JSON) from being a committed source: outputs, execution counts,
    not exactly one `parameters` cell, another kernel."""
    problems = []
    for i, cell in enumerate(nb["cells"]):
        if cell.get("outputs"):
            problems.append(f"cell {i} has outputs")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has an execution count")
    n_parameters = sum("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"])
    if n_parameters != 1:
        problems.append(f"{n_parameters} cells tagged `parameters` (want exactly 1)")
    kernel = nb.get("metadata", {}).get("kernelspec", {}).get("name")
    if kernel != KERNEL_NAME:
        problems.append(f"kernel {kernel!r} (want {KERNEL_NAME!r})")
    return problems


def test_every_page_of_the_book_has_its_notebook():
    assert {p.stem for p in ALL} == set(ALL_PAGES) | {TRAIN_NOTEBOOK}


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
def test_notebook_is_a_clean_source(path):
    assert notebook_problems(json.loads(path.read_text())) == []


def test_the_checker_reports_outputs_and_parameter_cells():
    nb = json.loads((NOTEBOOKS / "phases.ipynb").read_text())
    dirty = copy.deepcopy(nb)
    code = next(c for c in dirty["cells"] if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", []))
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": ["hello\n"]}]
    code["execution_count"] = 3
    assert notebook_problems(dirty) == [f"cell {dirty['cells'].index(code)} has outputs",
                                        f"cell {dirty['cells'].index(code)} has an execution count"]
    no_parameters = copy.deepcopy(nb)
    for c in no_parameters["cells"]:
        c["metadata"].pop("tags", None)
    no_parameters["metadata"]["kernelspec"]["name"] = "python3"
    assert notebook_problems(no_parameters) == ["0 cells tagged `parameters` (want exactly 1)",
                                                "kernel 'python3' (want 'bumpdiff')"]


@pytest.fixture(scope="module")
def synthetic_sweep(tmp_path_factory):
    """A sweep whose runs (main = increment 1.0, increment 0.5, one pair) are finished synthetic runs."""
    root = tmp_path_factory.mktemp("synthetic_sweep")
    write_run(root)
    write_run(root, increment_x=0.5, increment_y=0.5)
    write_run(root, increment_x=0.5)
    write_run(root, increment_x=0.5, conditioning="separable")  # Fig. 5's control on the pair
    return root, Sweep("synthetic-pages", "tiny", overrides=OVERRIDES, increments=(0.5, 1.0),
                       pairs=((0.5, 1.0),), pages=ALL_PAGES)


@pytest.mark.parametrize("page", ALL_PAGES)
def test_page_code_runs_on_finished_runs(page, synthetic_sweep, monkeypatch):
    """Each analysis notebook's cells, executed in order with the parameters the sweep gives it
    (papermill's injection), in this process: a renamed library function fails here in seconds."""
    root, sweep = synthetic_sweep
    monkeypatch.setenv("BUMPDIFF_DATA", str(root))
    monkeypatch.setenv("BUMPDIFF_STATIC_BOOK", "1")
    monkeypatch.setitem(SWEEPS, sweep.name, sweep)
    parameters = {p.name: p.parameters for p in sweep.page_specs()}[page]
    if page == "data":
        parameters = {"profile": "tiny"}
    namespace: dict = {}
    nb = json.loads((NOTEBOOKS / f"{page}.ipynb").read_text())
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), f"{page}.ipynb", "exec"), namespace)
            if "parameters" in cell["metadata"].get("tags", []):
                namespace.update(parameters)
