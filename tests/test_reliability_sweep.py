"""Reliability through `bumpdiff sweep`: a sweep killed (the whole process group, as a scheduler or
Ctrl-C would) while its notebook is training; then two Dask workers are asked for that same run
at once (one resumes it, the other waits and reuses it); then the same sweep command finishes.

The sweep is a one-run `tiny` sweep registered by the command itself, so the test pays for one
training notebook, not for the book.
"""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from reliability_support import REPO, assert_same_as_reference, env_for

notebooks = pytest.importorskip("bumpdiff_core.execute.notebooks")

SWEEP_COMMAND = (
    "import sys\n"
    "from bumpdiff_core import cli\n"
    "from bumpdiff_core.sweeps import definitions as sweep\n"
    "sweep.SWEEPS['reliability-tiny'] = sweep.Sweep('reliability-tiny', 'tiny', description='one tiny run')\n"
    "sys.exit(cli.main(['sweep', 'reliability-tiny', '--serial', '--out', sys.argv[1]]))\n"
)


def _recorded(run_path) -> set:
    try:
        return set(json.loads((run_path / "manifest.json").read_text()))
    except (FileNotFoundError, json.JSONDecodeError):
        return set()


def _wait_until_unlocked(lock_file, timeout=60.0) -> None:
    deadline = time.time() + timeout
    with open(lock_file, "a+") as f:
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(f, fcntl.LOCK_UN)
                return
            except BlockingIOError:
                assert time.time() < deadline, "the killed notebook's kernel still holds the run"
                time.sleep(0.1)


def _notebook_text(path) -> str:
    cells = json.loads(open(path).read())["cells"]
    return "\n".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))


def test_sweep_killed_mid_notebook_is_finished_by_two_dask_workers_and_a_rerun(tmp_path, tiny_run):
    from distributed import Client, LocalCluster

    root, out = tmp_path / "data", tmp_path / "book"
    run_path = root / "runs" / tiny_run.path.name
    page = out / "generated" / "runs" / f"{tiny_run.path.name}.ipynb"
    command = [sys.executable, "-c", SWEEP_COMMAND, str(out)]

    # 1. kill the sweep, papermill and the kernel together once the notebook has saved step 20
    proc = subprocess.Popen(command, cwd=REPO, env=env_for(root), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while "states/step_0000020.safetensors" not in _recorded(run_path):
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline, "the notebook never reached step 20"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the kernel runs in its own session (jupyter_client), so the kill above misses it; ipykernel
    # ends it within about a second of its parent's death, and with it the run's lock
    _wait_until_unlocked(run_path / ".lock")
    assert not (run_path / "COMPLETE").exists()
    assert not page.exists()  # no half-executed page where the book looks

    # 2. two Dask workers execute the run's notebook at the same time
    tasks = [notebooks.NotebookTask("run", tiny_run.path.name, str(REPO / "notebooks" / "train_and_evaluate.ipynb"),
                                    str(tmp_path / f"worker{i}.ipynb"), {"profile": "tiny", "overrides": {}, "threads": 1},
                                    str(root), str(REPO / "notebooks"), [str(run_path / "COMPLETE")])
             for i in range(2)]
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as cluster, Client(cluster) as client:
        records = client.gather([client.submit(notebooks.execute_notebook_task, t, pure=False) for t in tasks])
    assert [r["status"] for r in records] == ["ok", "ok"], records
    texts = [_notebook_text(t.output) for t in tasks]
    assert sum("waiting: " in t for t in texts) == 1, texts  # one waited for the other ...
    resumed = [int(t.split("from step ")[1].split()[0]) for t in texts if "resuming" in t]
    assert len(resumed) == 1 and resumed[0] >= 20  # ... which resumed: at most one interval lost
    assert_same_as_reference(run_path, tiny_run.path)

    # 3. the same sweep command now finishes, reusing the run
    done = subprocess.run(command, cwd=REPO, env=env_for(root), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert page.exists() and "resuming" not in _notebook_text(page)
    assert_same_as_reference(run_path, tiny_run.path)
