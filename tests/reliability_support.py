"""Helpers shared by the tests (mostly tests/test_reliability_*.py: nothing lost, nothing executed)."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TINY = ["train", "tiny", "--threads", "1", "--quiet"]
BUMPDIFF = [sys.executable, "-m", "bumpdiff_core"]
REPO = Path(__file__).resolve().parents[1]


def wait_or_kill(proc: subprocess.Popen, timeout: float) -> None:
    """Wait for a process told to stop; kill it if it has not stopped after `timeout` seconds."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def env_for(root: Path, **extra) -> dict:
    """Environment of a `bumpdiff` subprocess writing under `root` (no fault unless asked)."""
    env = dict(os.environ)
    env.pop("BUMPDIFF_FAULT", None)
    env["BUMPDIFF_DATA"] = str(root)
    env.setdefault("NUMBA_CACHE_DIR", str(Path(root).parent / "numba_cache"))
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def start(args: list[str], root: Path, **extra) -> subprocess.Popen:
    return subprocess.Popen(BUMPDIFF + list(args), cwd=REPO, env=env_for(root, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def copy_run(run_path: Path, root: Path) -> Path:
    """A private copy of a finished run under `root`/runs, as a user would receive one."""
    dest = Path(root) / "runs" / Path(run_path).name
    shutil.copytree(run_path, dest)
    return dest


def snapshot(root: Path) -> dict:
    """relative path -> sha256 of every file under `root` (what "untouched" means)."""
    out = {}
    for p in sorted(Path(root).rglob("*")):
        if p.is_file():
            out[p.relative_to(root).as_posix()] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def temp_files(run_path: Path) -> list[Path]:
    return sorted(Path(run_path).rglob(".*.tmp"))


def manifest(run_path: Path) -> dict:
    return json.loads((Path(run_path) / "manifest.json").read_text())


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(Path(path).read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    Path(path).write_bytes(bytes(data))


def truncate(path: Path, keep: float = 0.5) -> None:
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])


def damage(path: Path, how: str) -> None:
    {"flip": flip_byte, "truncate": truncate}[how](path)


def assert_same_as_reference(run_path: Path, ref_path: Path) -> None:
    """Same recorded files, byte-identical weights, evaluations and metrics; train states equal
    tensor by tensor (safetensors writes their metadata keys in a random order)."""
    from safetensors.torch import load

    run_path, ref_path = Path(run_path), Path(ref_path)
    got, want = manifest(run_path), manifest(ref_path)
    assert sorted(got) == sorted(want), "different set of recorded files"
    for rel in want:
        if rel.startswith("states/"):
            a, b = load((run_path / rel).read_bytes()), load((ref_path / rel).read_bytes())
            assert sorted(a) == sorted(b), rel
            assert all(bool((a[k] == b[k]).all()) for k in a), f"{rel}: tensors differ"
        else:
            assert got[rel] == want[rel], f"{rel} differs from the uninterrupted run"
    assert (run_path / "metrics.csv").read_bytes() == (ref_path / "metrics.csv").read_bytes()
    assert (run_path / "COMPLETE").exists()
    assert not temp_files(run_path), temp_files(run_path)
    from bumpdiff_core.runs.store import Run
    assert Run.open(run_path).verify() == []


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """`bumpdiff ARGV` in this process (shares the UMAP JIT the session already paid)."""
    from bumpdiff_core import cli

    capsys.readouterr()
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err
