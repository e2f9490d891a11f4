"""Executing a sweep: every run's notebook (stage 1), then the pages (stage 2), through papermill
on Dask (a local cluster, or an existing one at `--scheduler`). What a sweep contains is declared in
`bumpdiff_core.sweeps.definitions`; this module only executes it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from bumpdiff_core.config import ConfigError
from bumpdiff_core.execute.notebooks import (PACKAGE_DIR, DaskExecutor, NotebookTask, SerialExecutor, _record)
from bumpdiff_core.runs.store import RunLayout, atomic_write_bytes, atomic_write_json, data_root, is_url
from bumpdiff_core.sweeps.definitions import TRAIN_NOTEBOOK, RunSpec, Sweep, get_sweep, toc_yaml

NOTEBOOKS_DIR = PACKAGE_DIR.parent / "notebooks"



def _run_task(spec: RunSpec, out: Path, notebooks: Path, data) -> NotebookTask:
    """`data`: the data root, a Path or an object-store URL (workers then need no shared disk)."""
    return NotebookTask("run", spec.run_id, str(notebooks / f"{TRAIN_NOTEBOOK}.ipynb"),
                        str(out / "generated" / "runs" / f"{spec.run_id}.ipynb"),
                        {"profile": spec.profile, "overrides": spec.overrides_dict, "threads": 1},
                        str(data), str(notebooks), [str(RunLayout.of(spec.run_id, data).complete_path)])


def default_out(sweep_name: str, data) -> Path:
    """Where executed notebooks go without --out: under a local data root, else (object storage:
    pages are made for the client) ./bumpdiff-book/<sweep> in the current folder."""
    return Path("bumpdiff-book", sweep_name).absolute() if is_url(data) else Path(data) / "notebooks" / sweep_name


def _tasks(sweep: Sweep, out: Path, notebooks: Path, data):
    run_tasks = [_run_task(spec, out, notebooks, data) for spec in sweep.runs()]
    page_tasks = [(NotebookTask("page", page.name, str(notebooks / f"{page.name}.ipynb"),
                                str(out / "generated" / f"{page.name}.ipynb"), page.parameters,
                                str(data), str(notebooks),
                                [str(RunLayout.of(s.run_id, data).complete_path) for s in page.needs]),
                   {s.run_id for s in page.needs})
                  for page in sweep.page_specs()]
    return run_tasks, page_tasks


def run_sweep(name, scheduler: str | None = None, workers: int | None = None, serial: bool = False,
              out=None, notebooks=None, progress: bool = True) -> int:
    """Execute a sweep (a name in SWEEPS or a Sweep); returns 0 when every notebook succeeded."""
    from tqdm import tqdm

    sweep = get_sweep(name)
    if workers is not None and workers < 1:
        raise ConfigError("--workers", f"must be >= 1; got {workers}")
    data = data_root()
    out = Path(out).absolute() if out else default_out(sweep.name, data)
    notebooks = Path(notebooks or NOTEBOOKS_DIR).absolute()
    run_tasks, page_tasks = _tasks(sweep, out, notebooks, data)
    for task in run_tasks[:1] + [t for t, _ in page_tasks]:
        if not Path(task.source).is_file():
            raise FileNotFoundError(f"{task.source}: notebook missing")
    (out / "generated" / "runs").mkdir(parents=True, exist_ok=True)
    if sweep.book:
        atomic_write_bytes(out / "_toc.yml", toc_yaml(sweep).encode())

    records: list[dict] = []
    timings = {"sweep": sweep.name, "runs": len(run_tasks), "pages": len(page_tasks),
               "executor": "serial" if serial else (scheduler or f"local dask, {workers or os.cpu_count()} workers")}
    bar = tqdm(total=len(run_tasks) + len(page_tasks), desc=f"sweep {sweep.name}", unit="notebook",
               disable=not progress, file=sys.stderr)
    started = time.time()
    executor = SerialExecutor() if serial else DaskExecutor(scheduler, workers)
    timings["startup_seconds"] = round(time.time() - started, 2)

    def execute(stage: str, tasks: list) -> None:
        stage_start = time.time()
        for record in executor.map(tasks):
            records.append(record)
            bar.update(1)
            bad = sum(r["status"] in ("failed", "skipped") for r in records)
            bar.set_postfix_str(f"{stage} stage" + (f", {bad} failed" if bad else ""))
        timings[f"{stage}_stage_seconds"] = round(time.time() - stage_start, 2)

    def search() -> None:
        """A scaling sweep: its static runs (the references) first, then, as each run finishes,
        the rungs `sweep.search` proposes from the finished ones (read through results/), in its
        priority order, never more than the workers can take (a K's full-grid reference is
        proposed ahead of its ladders); a K's ladders start once its reference finished above `REFERENCE_ACCURACY` (an under-trained K gets none). A
        rung is tried once: a ladder whose rung failed stops there (reported)."""
        from bumpdiff_core.results.scaling import finished_accuracy, reference_table

        tried: set = set()
        references = {s.run_id for s in sweep.reference_runs()}  # proposed by the search, in its order
        queue = [t for t in run_tasks if t.name not in references]
        names = {}
        started_train = time.time()

        def next_tasks(free: int) -> list:
            out = []
            while queue and len(out) < free:
                out.append(queue.pop(0))
            if len(out) < free:
                finished = finished_accuracy(sweep, data)
                refs = reference_table(sweep, data)  # a K's ladders start once its reference trained
                trained = set(refs.loc[~refs["under_trained"].astype(bool), "K"].astype(int))
                for key in sweep.search.propose(finished, trained, set(refs["K"].astype(int))):
                    spec = sweep.search_spec(key)
                    if spec.run_id not in tried and len(out) < free:
                        out.append(_run_task(spec, out_dir, notebooks, data))
                        names[spec.run_id] = (f"K={key[1]} full-grid reference" if key[0] == "reference" else
                                              "K={}, {}, seed {}, rung {}".format(*key[:4])
                                              + (f", {key[4]}x steps" if key[4] != 1 else ""))
            tried.update(t.name for t in out)
            bar.total = max(bar.total, len(records) + len(out) + 1)
            bar.refresh()
            return out

        for record in executor.stream(next_tasks):
            records.append(record)
            bar.update(1)
            print(f"[{time.strftime('%H:%M:%S')}] {record['status']} {record['name'][:8]} "
                  f"({names.get(record['name'], '')}; {record['seconds']:.0f} s); "
                  f"{sum(r['status'] in ('ok', 'reused') for r in records)} done, "
                  f"{sum(r['status'] == 'failed' for r in records)} failed, {time.time() - started_train:.0f} s",
                  file=sys.stderr, flush=True)
        timings["train_stage_seconds"] = round(time.time() - started_train, 2)

    out_dir = out
    try:
        if sweep.search:
            search()
        else:
            execute("train", run_tasks)
        finished = {r["run_id"] for r in records if r["kind"] == "run" and r["status"] != "failed"}
        pages = []
        for task, needs in page_tasks:  # a page whose runs failed is reported, not executed
            missing = sorted(needs - finished)
            if missing:
                records.append(_record(task, "skipped", f"needs runs that failed: {', '.join(missing)}"))
                bar.update(1)
            else:
                pages.append(task)
        execute("analysis", pages)
    finally:
        executor.close()
        bar.close()
    timings["total_seconds"] = round(time.time() - started, 2)
    timings["notebooks"] = records
    atomic_write_json(out / "generated" / "timings.json", timings)
    return _report(sweep, records, timings)


def _report(sweep: Sweep, records: list[dict], timings: dict) -> int:
    bad = [r for r in records if r["status"] in ("failed", "skipped")]
    counts = {s: sum(r["status"] == s for r in records) for s in ("ok", "reused", "failed", "skipped")}
    print(f"sweep {sweep.name}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
          + f"; train stage {timings['train_stage_seconds']:.1f} s, "
            f"analysis stage {timings['analysis_stage_seconds']:.1f} s", flush=True)
    for r in bad:
        print(f"{r['status'].upper()}: {r['kind']} {r['name']}: {r['error']}\n  notebook: {r['notebook']}", flush=True)
    return 1 if bad else 0
