"""Interruption and concurrency: real `bumpdiff train` processes are SIGKILLed at exact
points (the BUMPDIFF_FAULT hook in bumpdiff_core/faults.py), then the same command is rerun; two
processes asked for the same run at once share the work.

The killed processes all run at once (each in its own data root) and stop before the UMAP JIT,
so they cost seconds; the reruns happen in this process, which has paid the JIT already.
"""
from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap

import pytest

from reliability_support import (TINY, assert_same_as_reference, manifest, run_cli, start,
                                 temp_files, env_for, REPO)

INTERVAL = 20  # tiny: a checkpoint every 20 steps

# name -> (BUMPDIFF_FAULT, training steps done when killed)
FAULTS = {
    "mid training step": ("step:50", 50),
    "mid checkpoint write": ("write:checkpoints/step_0000040.safetensors", 40),
    "mid train-state write": ("write:states/step_0000040.safetensors", 40),
    "mid manifest write": ("write:manifest.json#3", 20),  # checkpoint 20 on disk, not yet recorded
    "mid evaluation": ("save:evals/step_0000000.npz", 60),  # samples drawn, not yet saved
    "mid UMAP": ("umap", 60),  # inside the first UMAP embedding
}


@pytest.fixture(scope="module")
def killed(tmp_path_factory, tiny_run):
    """Every fault at once: name -> (data root, return code, stdout + stderr). (After tiny_run,
    which points NUMBA_CACHE_DIR at the session's cache.)"""
    procs = {}
    for name, (fault, _) in FAULTS.items():
        root = tmp_path_factory.mktemp("killed") / "data"
        procs[name] = (root, start(TINY, root, BUMPDIFF_FAULT=fault))
    out = {}
    for name, (root, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        out[name] = (root, proc.returncode, stdout + stderr)
    return out


def _steps_resumed_from(output: str) -> int:
    m = re.search(r"resuming \S+ from step (\d+)", output)
    return int(m.group(1)) if m else 0


@pytest.mark.parametrize("name", list(FAULTS))
def test_killed_run_finishes_identically_when_rerun(name, killed, tiny_run, capsys, monkeypatch):
    root, returncode, output = killed[name]
    fault, steps_done = FAULTS[name]
    assert returncode == -signal.SIGKILL, f"the fault did not fire: rc {returncode}\n{output}"
    run_path = root / "runs" / tiny_run.path.name
    assert not (run_path / "COMPLETE").exists()

    # what the kill left behind is what each point should leave
    recorded = manifest(run_path) if (run_path / "manifest.json").exists() else {}
    if name == "mid checkpoint write":
        assert [p.parent.name for p in temp_files(run_path)] == ["checkpoints"]  # a torn temp file
        assert not (run_path / "checkpoints/step_0000040.safetensors").exists()
    if name == "mid train-state write":
        assert "checkpoints/step_0000040.safetensors" in recorded
        assert [p.parent.name for p in temp_files(run_path)] == ["states"]
    if name == "mid manifest write":
        assert (run_path / "checkpoints/step_0000020.safetensors").exists()
        assert "checkpoints/step_0000020.safetensors" not in recorded
    if name in ("mid evaluation", "mid UMAP"):
        assert "checkpoints/step_0000060.safetensors" in recorded
        assert ("evals/step_0000000.npz" in recorded) == (name == "mid UMAP")
        assert "umap/step_0000000.npz" not in recorded
    finished_work = [p for d in ("checkpoints", "states", "evals", "umap") for p in (run_path / d).glob("*")]
    before = {p: p.stat().st_mtime_ns for p in finished_work}

    monkeypatch.setenv("BUMPDIFF_DATA", str(root))
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0, err
    assert out.strip().splitlines()[-1] == str(run_path)
    lost = steps_done - _steps_resumed_from(out)
    assert 0 <= lost <= INTERVAL, f"{lost} training steps redone (more than one checkpoint interval)"
    if steps_done == 60:  # evaluation was interrupted: nothing trained or evaluated is redone
        assert "resuming" in out and lost == 0
        assert all(p.stat().st_mtime_ns == t for p, t in before.items()), "finished work was redone"
    assert_same_as_reference(run_path, tiny_run.path)


def test_two_processes_for_one_run_share_the_work(tmp_path, tiny_run):
    """Both started together: one trains, the other says it is waiting, then reuses the result."""
    root = tmp_path / "data"
    procs = [start(TINY, root) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    outs = [out for out, _ in results]
    run_path = root / "runs" / tiny_run.path.name
    assert [o.strip().splitlines()[-1] for o in outs] == [str(run_path)] * 2
    waiting = [o for o in outs if o.startswith("waiting: ")]
    assert len(waiting) == 1, outs
    assert "being computed by another process" in waiting[0]
    assert_same_as_reference(run_path, tiny_run.path)
    # no interleaved writer: every file is whole and was written exactly once per step
    assert sorted(p.name for p in (run_path / "checkpoints").iterdir()) == \
        sorted(p.name for p in (tiny_run.path / "checkpoints").iterdir())


_WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from bumpdiff_core.runs.store import Run
    run, who, n, go = Run(Path(sys.argv[1]), None), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    while not go.exists():
        time.sleep(0.001)
    for i in range(n):
        run.write_bytes(run.path / "evals" / f"step_{who}{i:05d}.npz", f"{who} {i}".encode() * 50)
""")


def test_concurrent_writers_lose_no_manifest_entry(tmp_path):
    """manifest.json is read-modified-written on every write; its lock keeps every entry."""
    run_path = tmp_path / "run"
    run_path.mkdir()
    go = tmp_path / "go"
    writers, per_writer = 4, 25
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(run_path), str(w + 1), str(per_writer),
                               str(go)], cwd=REPO, env=env_for(tmp_path)) for w in range(writers)]
    go.touch()
    assert [p.wait(timeout=120) for p in procs] == [0] * writers
    recorded = manifest(run_path)
    assert len(recorded) == writers * per_writer
    from bumpdiff_core.runs.store import Run
    assert Run(run_path, None).verify() == []
    assert not temp_files(run_path)
