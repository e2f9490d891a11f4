"""Sweeps: named sets of runs and book pages, executed as notebooks through papermill on Dask.

A sweep has two stages:

1. every distinct run config executes `notebooks/train_and_evaluate.ipynb` (the only notebook that
   trains) into `<out>/generated/runs/<run_id>.ipynb`;
2. the analysis notebooks (`phases`, `phase_diagram`, ...), which only read finished runs, execute
   into `<out>/generated/<page>.ipynb`. A page whose runs failed is reported and skipped.

Both stages run on a Dask cluster: a local one (one single-threaded worker process per core; two
single-threaded workers beat one two-threaded process on this kind of machine) or an existing
one at `--scheduler tcp://HOST:PORT`, which must see the same file system (data root, notebooks,
output folder) at the same paths. Each notebook executes in its own papermill subprocess, so the
data root reaches the kernel through an explicit environment and no worker state leaks between
tasks. The book's `_toc.yml` is written from the sweep definition: it is derived, never edited.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import ConfigError, profile_config
from .store import RunLayout, atomic_write_bytes, atomic_write_json, data_root

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
KERNEL_NAME = "bumpdiff"
TRAIN_NOTEBOOK = "train_and_evaluate"

# analysis pages in book order: notebook name -> page title
PAGE_TITLES = {
    "findings": "What reproduced",
    "data": "Data",
    "phases": "The three phases",
    "phase_diagram": "Phase diagram",
    "imbalanced": "Imbalanced data",
    "appendix": "Appendix",
}
FINDINGS_PAGES = ("findings", "data", "phases", "phase_diagram", "imbalanced")


# ---------------------------------------------------------------------------------------------
# definitions
# ---------------------------------------------------------------------------------------------

def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class RunSpec:
    """One run: a profile plus the overrides that differ from it (canonical, so equal configs
    have equal specs and notebook parameters)."""
    profile: str
    overrides: tuple  # sorted (field, value) pairs

    @classmethod
    def make(cls, profile: str, overrides: dict | None = None) -> "RunSpec":
        config = profile_config(profile, overrides)  # validates: a bad sweep fails before any work
        default = profile_config(profile).to_dict()
        changed = {k: v for k, v in config.to_dict().items() if v != default[k]}
        return cls(profile, tuple(sorted((k, _jsonable(v)) for k, v in changed.items())))

    @property
    def overrides_dict(self) -> dict:
        return {k: v for k, v in self.overrides}

    @property
    def config(self):
        return profile_config(self.profile, self.overrides_dict)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def title(self) -> str:
        """A short human name for the table of contents."""
        o = self.overrides_dict
        parts = []
        if "increment_x" in o or "increment_y" in o:
            dx, dy = self.config.increment_x, self.config.increment_y
            parts.append(f"increment {dx:g}" if dx == dy else f"dx {dx:g}, dy {dy:g}")
        if "seed" in o:
            parts.append(f"seed {o['seed']}")
        parts += [f"{k}={v}" for k, v in self.overrides if k not in ("increment_x", "increment_y", "seed")]
        return f"{self.profile}: " + (", ".join(parts) if parts else "default")


@dataclass(frozen=True)
class Page:
    name: str            # notebooks/<name>.ipynb -> <out>/generated/<name>.ipynb
    title: str
    parameters: dict
    needs: tuple         # RunSpecs this page reads


@dataclass(frozen=True)
class Sweep:
    """A named set of runs (main runs per seed, Fig. 4 increments, Fig. 5 pairs) and book pages."""
    name: str
    profile: str
    overrides: dict = field(default_factory=dict)
    seeds: tuple = (0,)
    increments: tuple = ()       # Fig. 4: one run per increment, increment_x = increment_y
    pairs: tuple = ()            # Fig. 5: (increment_x, increment_y), one run per pair and seed
    pages: tuple = ()            # analysis pages (keys of PAGE_TITLES), in book order
    book: bool = False           # write the book's _toc.yml into `out`
    description: str = ""

    def _spec(self, **changes) -> RunSpec:
        return RunSpec.make(self.profile, {**self.overrides, **changes})

    def main_runs(self) -> list[RunSpec]:
        return [self._spec(seed=s) for s in self.seeds]

    def increment_runs(self) -> list[RunSpec]:
        return [self._spec(increment_x=inc, increment_y=inc) for inc in self.increments]

    def pair_runs(self) -> list[RunSpec]:
        return [self._spec(increment_x=dx, increment_y=dy, seed=s) for dx, dy in self.pairs for s in self.seeds]

    def main_run(self) -> RunSpec:
        """The default run: the sweep's profile and overrides, nothing changed."""
        return self._spec()

    def page_specs(self) -> list[Page]:
        # an analysis page takes the sweep's name and asks `get_sweep(name)` for its runs
        # (view.SweepView), so the same notebook runs by hand with `sweep = "book-quick"`
        base = {"sweep": self.name}
        main = (self.main_run(),)
        table = {
            "findings": (base, main + tuple(self.increment_runs()) + tuple(self.pair_runs())),
            "data": ({"profile": self.profile}, ()),
            "phases": (base, main),
            "phase_diagram": (base, tuple(self.increment_runs())),
            "imbalanced": (base, tuple(self.pair_runs())),
            "appendix": (base, main),
        }
        unknown = [p for p in self.pages if p not in table]
        if unknown:
            raise ConfigError("pages", f"must be among {', '.join(table)}; got {unknown}")
        return [Page(p, PAGE_TITLES[p], table[p][0], table[p][1]) for p in self.pages]

    def runs(self) -> list[RunSpec]:
        """Every distinct run (by run id) the sweep needs, in a stable order."""
        seen: dict[str, RunSpec] = {}
        candidates = self.main_runs() + self.increment_runs() + self.pair_runs()
        candidates += [spec for page in self.page_specs() for spec in page.needs]
        for spec in candidates:
            seen.setdefault(spec.run_id, spec)
        return list(seen.values())


ALL_PAGES = tuple(PAGE_TITLES)
SWEEPS: dict[str, Sweep] = {s.name: s for s in [
    Sweep("book-quick", "quick", increments=(0.1, 0.2, 0.25, 0.5, 0.75, 1.0),
          pairs=((0.1, 1.0), (0.1, 0.5)), seeds=(0,), pages=ALL_PAGES, book=True,
          description="the book: the default quick run, Fig. 4 increments, Fig. 5 pairs"),
    Sweep("book-tiny", "tiny", increments=(0.5, 1.0), pairs=((0.5, 1.0),), seeds=(0,),
          pages=ALL_PAGES, book=True, description="the book at test scale (seconds per run)"),
    Sweep("seeds-quick", "quick", seeds=(0, 1, 2),
          description="the default quick run with three seeds (transition steps, mean +- sd)"),
]}


def get_sweep(name) -> Sweep:
    if isinstance(name, Sweep):
        return name
    if name not in SWEEPS:
        raise ConfigError("sweep", f"must be one of {', '.join(SWEEPS)}; got {name!r}")
    return SWEEPS[name]


# ---------------------------------------------------------------------------------------------
# one notebook execution (runs on a Dask worker, or in this process with serial=True)
# ---------------------------------------------------------------------------------------------

@dataclass
class NotebookTask:
    kind: str              # "run" (stage 1) or "page" (stage 2)
    name: str              # run id or page name
    source: str            # the notebook to execute (absolute path)
    output: str            # the executed copy (absolute path)
    parameters: dict
    data_root: str         # BUMPDIFF_DATA for the kernel (absolute)
    cwd: str
    run_markers: list = field(default_factory=list)  # completion markers of the runs this output needs


def _library_mtime() -> float:
    return max(p.stat().st_mtime for p in PACKAGE_DIR.rglob("*.py"))  # figures/ too


def _read_notebook(path: Path):
    import nbformat
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # unreadable or torn: treat as absent
        return None


def is_fresh(task: NotebookTask) -> bool:
    """The executed copy can be reused: it finished without error, with the same parameters, and
    is newer than its source notebook, the library and every run it reads."""
    output = Path(task.output)
    if not output.exists():
        return False
    markers = [Path(m) for m in task.run_markers]
    if not all(m.exists() for m in markers):
        return False
    newest_input = max([Path(task.source).stat().st_mtime, _library_mtime()] + [m.stat().st_mtime for m in markers])
    if output.stat().st_mtime <= newest_input:
        return False
    nb = _read_notebook(output)
    meta = (nb.metadata.get("papermill") or {}) if nb is not None else {}
    return (bool(meta.get("end_time")) and not meta.get("exception")
            and json.loads(json.dumps(meta.get("parameters"))) == json.loads(json.dumps(task.parameters)))


def notebook_error(path: Path) -> str | None:
    """`ename: evalue` of the first error output in an executed notebook."""
    nb = _read_notebook(path) if Path(path).exists() else None
    if nb is None:
        return None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"{out.get('ename')}: {out.get('evalue')}"
    return None


def _hide_default_parameters(path: Path) -> None:
    """Tag the notebook's own `parameters` cell `remove-cell`: the page shows the values it was
    executed with (papermill's injected cell) rather than the notebook's defaults above them."""
    import nbformat

    nb = _read_notebook(path)
    if nb is None:
        return
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if "parameters" in tags and "injected-parameters" not in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    nbformat.write(nb, str(path))


def _record(task: NotebookTask, status: str, error: str | None = None) -> dict:
    """What one task reports: status is ok, reused, failed or skipped."""
    return {"kind": task.kind, "name": task.name, "run_id": task.name if task.kind == "run" else None,
            "notebook": task.output, "status": status, "seconds": 0.0, "error": error}


def execute_notebook_task(task: NotebookTask) -> dict:
    """Execute one notebook with papermill in a subprocess; never raises, returns a record."""
    started = time.time()
    record = _record(task, "ok")
    output = Path(task.output)
    try:
        if is_fresh(task):
            record["status"] = "reused"
            return record
        # execute into a side file and rename, so a killed sweep never leaves a half-written page
        partial = output.parent / ".partial" / output.name
        partial.parent.mkdir(parents=True, exist_ok=True)
        # BUMPDIFF_STATIC_BOOK: the executed copies are static pages (see widgets.py)
        env = dict(os.environ, BUMPDIFF_DATA=task.data_root, BUMPDIFF_STATIC_BOOK="1")
        env.setdefault("NUMBA_CACHE_DIR", str(Path(task.data_root) / ".numba_cache"))
        # one notebook per single-threaded worker: more threads per kernel only spin against the
        # other workers' kernels (the run notebooks also pin torch to `threads` = 1 themselves)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(var, "1")
        # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ for its workers; inherited by the kernel it
        # turns off glibc's adaptive mmap threshold, so every large tensor is mmapped and faulted
        # in afresh: half of training's CPU time went to the kernel (sys) and runs took 2.5x longer
        env.pop("MALLOC_TRIM_THRESHOLD_", None)
        cmd = [sys.executable, "-m", "papermill", task.source, str(partial), "-k", KERNEL_NAME,
               "--cwd", task.cwd, "-y", json.dumps(task.parameters), "--no-progress-bar",
               "--log-level", "ERROR"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if partial.exists():
            _hide_default_parameters(partial)
            os.replace(partial, output)
        if proc.returncode != 0:
            record["status"] = "failed"
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            record["error"] = notebook_error(output) or tail or f"papermill exited with {proc.returncode}"
    except Exception as e:  # a record, not an exception: one failure must not lose the others
        record["status"] = "failed"
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        record["seconds"] = round(time.time() - started, 2)
    return record


# ---------------------------------------------------------------------------------------------
# executors: in-process, or Dask
# ---------------------------------------------------------------------------------------------

class _SerialExecutor:
    def map(self, tasks):
        for task in tasks:
            yield execute_notebook_task(task)

    def close(self):
        pass


class _DaskExecutor:
    def __init__(self, scheduler: str | None, workers: int | None):
        import logging

        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler:
            self.client = Client(scheduler, timeout=30)
        else:
            # loopback only; its HTTP endpoint on a free port (8787 may belong to another cluster)
            self.cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                                        processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                        silence_logs=logging.ERROR)
            self.client = Client(self.cluster)

    def map(self, tasks):
        from distributed import as_completed

        futures = {}
        for task in tasks:
            fut = self.client.submit(execute_notebook_task, task, pure=False,
                                     key=f"{task.kind}-{task.name}-{time.time_ns()}")
            futures[fut.key] = (fut, task)
        for fut in as_completed([f for f, _ in futures.values()]):
            task = futures[fut.key][1]
            try:
                yield fut.result()
            except Exception as e:  # the worker died (killed, out of memory): report, go on
                yield _record(task, "failed", f"{type(e).__name__}: {e}")

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


# ---------------------------------------------------------------------------------------------
# the table of contents, derived from the sweep
# ---------------------------------------------------------------------------------------------

def toc_yaml(sweep: Sweep) -> str:
    q = json.dumps  # a JSON string is a valid YAML scalar
    lines = [f"# Generated by `bumpdiff sweep {sweep.name}` from bumpdiff_core/sweep.py: do not edit.",
             "format: jb-book", "root: intro", "parts:"]

    def part(caption, entries):
        if entries:
            lines.append(f"- caption: {q(caption)}")
            lines.append("  chapters:")
            for file, title in entries:
                lines.append(f"  - file: {file}")
                if title:
                    lines.append(f"    title: {q(title)}")

    pages = {p.name: p for p in sweep.page_specs()}
    part("The findings", [(f"generated/{n}", pages[n].title) for n in FINDINGS_PAGES if n in pages])
    part("Details", [(f"generated/{n}", pages[n].title) for n in pages if n not in FINDINGS_PAGES]
         + [("reproduce", None)])
    part("Runs", [(f"generated/runs/{s.run_id}", f"Run {s.run_id[:8]} ({s.title})") for s in sweep.runs()])
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------

def _tasks(sweep: Sweep, out: Path, notebooks: Path, data: Path):
    run_tasks = [NotebookTask("run", spec.run_id, str(notebooks / f"{TRAIN_NOTEBOOK}.ipynb"),
                              str(out / "generated" / "runs" / f"{spec.run_id}.ipynb"),
                              {"profile": spec.profile, "overrides": spec.overrides_dict, "threads": 1},
                              str(data), str(notebooks), [str(RunLayout.of(spec.run_id, data).complete_path)])
                 for spec in sweep.runs()]
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
    out = Path(out).absolute() if out else data / "notebooks" / sweep.name
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
    executor = _SerialExecutor() if serial else _DaskExecutor(scheduler, workers)
    timings["startup_seconds"] = round(time.time() - started, 2)

    def execute(stage: str, tasks: list) -> None:
        stage_start = time.time()
        for record in executor.map(tasks):
            records.append(record)
            bar.update(1)
            bad = sum(r["status"] in ("failed", "skipped") for r in records)
            bar.set_postfix_str(f"{stage} stage" + (f", {bad} failed" if bad else ""))
        timings[f"{stage}_stage_seconds"] = round(time.time() - stage_start, 2)

    try:
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
