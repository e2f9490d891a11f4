"""Executing one notebook with papermill (`execute_notebook_task`), and the executors that run many:
in this process (`SerialExecutor`) or on Dask (`DaskExecutor`: a local cluster of single-threaded
worker processes, or an existing one at `--scheduler`). Split out of sweep.py, which defines what
to execute; this module knows how.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bumpdiff_core.runs.store import READ_LOG_ENV

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # bumpdiff_core/
KERNEL_NAME = "bumpdiff"


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


def reads_log(task: NotebookTask) -> Path:
    """Where a page task logs the run ids it opened: `<out>/generated/.reads/<page>.txt`."""
    output = Path(task.output)
    return output.parent / ".reads" / f"{output.stem}.txt"


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
        if task.kind == "page":  # which runs the page really opens (runs.store.completed_run)
            reads = reads_log(task)
            reads.parent.mkdir(parents=True, exist_ok=True)
            reads.unlink(missing_ok=True)
            env[READ_LOG_ENV] = str(reads)
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

class SerialExecutor:
    slots = 1

    def map(self, tasks):
        for task in tasks:
            yield execute_notebook_task(task)

    def stream(self, next_tasks):
        """Run what `next_tasks(free)` hands out (at most `free` tasks), asking again after every
        finished task, until it hands out nothing; yields each record."""
        while True:
            tasks = next_tasks(self.slots)
            if not tasks:
                return
            for task in tasks:
                yield execute_notebook_task(task)

    def close(self):
        pass


class DaskExecutor:
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

    @property
    def slots(self) -> int:
        """Tasks that run at once: the cluster's worker threads (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def stream(self, next_tasks):
        """Keep every worker busy with what `next_tasks(free)` hands out (at most `free` tasks,
        asked again after every finished task) until it hands out nothing and nothing runs;
        yields each record as its task finishes."""
        from distributed import as_completed

        running, done = {}, as_completed()
        slots = self.slots

        def fill():
            for task in next_tasks(slots - len(running)):
                fut = self.client.submit(execute_notebook_task, task, pure=False,
                                         key=f"{task.kind}-{task.name}-{time.time_ns()}")
                running[fut.key] = task
                done.add(fut)

        fill()
        for fut in done:
            task = running.pop(fut.key)
            try:
                yield fut.result()
            except Exception as e:  # the worker died: report, go on
                yield _record(task, "failed", f"{type(e).__name__}: {e}")
            fill()

    def close(self):
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
