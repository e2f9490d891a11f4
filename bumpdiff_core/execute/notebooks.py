"""Executing one notebook with papermill (`execute_notebook_task`), and the executors that run many:
in this process (`SerialExecutor`) or on Dask (`DaskExecutor`: a local cluster of single-threaded
worker processes, or an existing one at `--scheduler`). Split out of sweep.py, which defines what
to execute; this module knows how.

Workers need only the installed package: a task carries its notebook's source (`notebook`, the
JSON text) and parameters, the worker executes it in a temporary folder of its own with
`BUMPDIFF_DATA` = the sweep's data root (a path, or an object-store URL such as s3://...), and the
executed notebook (and, for a page, the run ids it read) come back in the task's record; the
client writes them under `--out`. Whether an executed page is still current is decided on the
client (`is_fresh`), before anything is submitted.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bumpdiff_core.runs.store import READ_LOG_ENV, atomic_write_bytes, is_url, read_location

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
    notebook: str | None = None  # the source notebook's JSON text (carried to workers); None: read `source`


def kernel_name() -> str:
    """The `bumpdiff` Jupyter kernel where it is registered (`make env`), else ipykernel's own
    `python3` kernel, which runs this very interpreter: a worker that has only `pip install
    bumpdiff` executes notebooks all the same."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
        return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"
    except Exception:
        return KERNEL_NAME


def _library_mtime() -> float:
    return max(p.stat().st_mtime for p in PACKAGE_DIR.rglob("*.py"))  # figures/ too


def _read_notebook(path: Path):
    import nbformat
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:  # unreadable or torn: treat as absent
        return None


def marker_digests(markers) -> dict | None:
    """{marker URL: sha256 of its content} for completion markers in an object store (their
    content, the time the run finished, changes whenever the run is recomputed); None when one is
    missing."""
    out = {}
    for m in markers:
        try:
            out[str(m)] = hashlib.sha256(read_location(m)).hexdigest()
        except FileNotFoundError:
            return None
    return out


def is_fresh(task: NotebookTask) -> bool:
    """The executed copy can be reused: it finished without error, with the same parameters, and
    is newer than its source notebook, the library and every run it reads. A run in a local data
    root is "older" by its completion marker's mtime; a run in an object store (no shared clock)
    by the content of its COMPLETE object, whose hash the page recorded when it was executed
    (`metadata.bumpdiff.inputs`)."""
    output = Path(task.output)
    if not output.exists():
        return False
    markers = [Path(m) for m in task.run_markers if not is_url(m)]
    remote = [m for m in task.run_markers if is_url(m)]
    if not all(m.exists() for m in markers):
        return False
    newest_input = max([Path(task.source).stat().st_mtime, _library_mtime()] + [m.stat().st_mtime for m in markers])
    if output.stat().st_mtime <= newest_input:
        return False
    nb = _read_notebook(output)
    meta = (nb.metadata.get("papermill") or {}) if nb is not None else {}
    if remote:
        digests = marker_digests(remote)
        if digests is None or (nb.metadata.get("bumpdiff") or {}).get("inputs") != digests:
            return False
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


def _hide_default_parameters(path: Path, inputs: dict | None = None) -> None:
    """Tag the notebook's own `parameters` cell `remove-cell`: the page shows the values it was
    executed with (papermill's injected cell) rather than the notebook's defaults above them.
    `inputs` (object-store markers' digests) go to `metadata.bumpdiff.inputs` (see `is_fresh`)."""
    import nbformat

    nb = _read_notebook(path)
    if nb is None:
        return
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if "parameters" in tags and "injected-parameters" not in tags and "remove-cell" not in tags:
            cell.metadata["tags"] = tags + ["remove-cell"]
    if inputs:
        nb.metadata["bumpdiff"] = {"inputs": inputs}
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
    """Execute one notebook here (reused when fresh) and write its executed copy; never raises,
    returns a record."""
    started = time.time()
    try:
        if is_fresh(task):
            record = _record(task, "reused")
            record["seconds"] = round(time.time() - started, 2)
            return record
    except Exception as e:
        return _record(task, "failed", f"{type(e).__name__}: {e}")
    return deliver(task, run_notebook(task))


def run_notebook(task: NotebookTask) -> dict:
    """Execute one notebook with papermill in a subprocess, in a temporary folder of this machine
    (a Dask worker's, or ours); never raises. The record carries the executed notebook's bytes
    (`executed`) and, for a page, the run ids it opened (`reads`); `deliver` writes them."""
    started = time.time()
    record = _record(task, "ok")
    try:
        with tempfile.TemporaryDirectory(prefix="bumpdiff-notebook-") as tmp:
            tmp = Path(tmp)
            source, executed = tmp / "source.ipynb", tmp / "executed.ipynb"
            source.write_bytes(task.notebook.encode() if task.notebook is not None
                               else Path(task.source).read_bytes())
            # BUMPDIFF_STATIC_BOOK: the executed copies are static pages (see widgets.py)
            env = dict(os.environ, BUMPDIFF_DATA=task.data_root, BUMPDIFF_STATIC_BOOK="1")
            env.setdefault("NUMBA_CACHE_DIR", os.path.join(tempfile.gettempdir(), "bumpdiff-numba-cache")
                           if is_url(task.data_root) else str(Path(task.data_root) / ".numba_cache"))
            # one notebook per single-threaded worker: more threads per kernel only spin against the
            # other workers' kernels (the run notebooks also pin torch to `threads` = 1 themselves)
            for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
                env.setdefault(var, "1")
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ for its workers; inherited by the kernel it
            # turns off glibc's adaptive mmap threshold, so every large tensor is mmapped and faulted
            # in afresh: half of training's CPU time went to the kernel (sys) and runs took 2.5x longer
            env.pop("MALLOC_TRIM_THRESHOLD_", None)
            reads = tmp / "reads.txt"
            if task.kind == "page":  # which runs the page really opens (runs.store.completed_run)
                env[READ_LOG_ENV] = str(reads)
            cwd = task.cwd if task.cwd and Path(task.cwd).is_dir() else str(tmp)  # a worker may lack it
            cmd = [sys.executable, "-m", "papermill", str(source), str(executed), "-k", kernel_name(),
                   "--cwd", cwd, "-y", json.dumps(task.parameters), "--no-progress-bar",
                   "--log-level", "ERROR"]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if executed.exists():
                _hide_default_parameters(executed)
                record["executed"] = executed.read_bytes()
            if task.kind == "page" and reads.exists():
                record["reads"] = reads.read_text()
            if proc.returncode != 0:
                record["status"] = "failed"
                tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
                record["error"] = notebook_error(executed) or tail or f"papermill exited with {proc.returncode}"
    except Exception as e:  # a record, not an exception: one failure must not lose the others
        record["status"] = "failed"
        record["error"] = f"{type(e).__name__}: {e}"
    finally:
        record["seconds"] = round(time.time() - started, 2)
    return record


def deliver(task: NotebookTask, record: dict) -> dict:
    """Write what `run_notebook` brought back: the executed notebook at `task.output` (whole: a
    killed sweep never leaves a half-written page), stamped with the digests of its object-store
    inputs, and a page's reads log. Returns the record without the bytes."""
    record = dict(record)
    executed, reads = record.pop("executed", None), record.pop("reads", None)
    try:
        if executed is not None:
            output = Path(task.output)
            remote = [m for m in task.run_markers if is_url(m)]
            digests = marker_digests(remote) if remote and record["status"] == "ok" else None
            if digests:
                with tempfile.TemporaryDirectory(prefix="bumpdiff-deliver-") as tmp:
                    side = Path(tmp) / output.name
                    side.write_bytes(executed)
                    _hide_default_parameters(side, digests)
                    executed = side.read_bytes()
            atomic_write_bytes(output, executed)
        if task.kind == "page":
            log = reads_log(task)
            log.parent.mkdir(parents=True, exist_ok=True)
            if reads is None:
                log.unlink(missing_ok=True)
            else:
                atomic_write_bytes(log, reads.encode())
    except Exception as e:
        record["status"], record["error"] = "failed", f"{type(e).__name__}: {e}"
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
    retries = 2  # a task that raised (never ours: `run_notebook` returns records) runs again

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
        """Fresh notebooks are reused here; the others go to the workers, which need only the
        package: the task carries its notebook, the executed copy comes back. A worker lost
        mid-task (killed, its machine gone) makes the scheduler run the task again elsewhere (up to
        its `allowed-failures`, then KilledWorker, reported as a failure); a run resumes from the
        newest train state in the store, so nothing finished is recomputed."""
        from distributed import as_completed

        futures = {}
        for task in tasks:
            try:
                fresh = is_fresh(task)
            except Exception:  # e.g. the store did not answer: execute it again
                fresh = False
            if fresh:
                yield _record(task, "reused")
                continue
            if task.notebook is None:
                task.notebook = Path(task.source).read_text()
            fut = self.client.submit(run_notebook, task, pure=False, retries=self.retries,
                                     key=f"{task.kind}-{task.name}-{time.time_ns()}")
            futures[fut.key] = (fut, task)
        for fut in as_completed([f for f, _ in futures.values()]):
            task = futures[fut.key][1]
            try:
                record = fut.result()
            except Exception as e:  # the worker died too often (KilledWorker): report, go on
                yield _record(task, "failed", f"{type(e).__name__}: {e}")
                continue
            yield deliver(task, record)

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
