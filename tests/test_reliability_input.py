"""Bad input: through the CLI (in this process and, where it is cheap, as a real
process) and through papermill parameters of notebooks/train_and_evaluate.ipynb. Each bad input
gives exactly one line naming the problem, a non-zero exit (2 for bad values, 1 for bad files or
disks), no traceback, no new run directory, and leaves every existing file byte-identical.
A full disk is simulated twice: a monkeypatched write that raises ENOSPC, and a real 256 KiB
tmpfs when this machine lets the tests mount one.
"""
from __future__ import annotations

import errno
import os
import subprocess
import sys

import pytest

from reliability_support import BUMPDIFF, REPO, TINY, copy_run, env_for, run_cli, snapshot, temp_files


@pytest.fixture(scope="module")
def store(tiny_run, tmp_path_factory):
    """A data root holding a finished run, a run missing its final checkpoint, a folder that is
    not a run and a plain file; placeholders for the argument table."""
    root = tmp_path_factory.mktemp("bad_input") / "data"
    good = copy_run(tiny_run.path, root)
    missing = copy_run(tiny_run.path, root / "broken")
    (missing / "checkpoints/step_0000060.safetensors").unlink()
    plain_dir = root / "not_a_run"
    plain_dir.mkdir()
    (plain_dir / "notes.txt").write_text("my notes\n")
    plain_file = root / "a_file.txt"
    plain_file.write_text("not a folder\n")
    out = root.parent / "out"
    out.mkdir()
    return dict(root=root, good=good, missing=missing, plain_dir=plain_dir, plain_file=plain_file,
                png=out / "sample.png", out=out)


# (id, argv, exit code, what the error line must say, BUMPDIFF_DATA override or None)
CASES = [
    ("unknown profile", ["train", "huge"], 2, "profile: must be one of tiny", None),
    ("unknown field", ["train", "tiny", "--set", "stepz=5"], 2, "stepz: unknown field", None),
    ("override without =", ["train", "tiny", "--set", "steps"], 2, "steps: expected field=value", None),
    ("integer field given text", ["train", "tiny", "--set", "steps=many"], 2, "steps: must be an integer", None),
    ("integer field given 1.5", ["train", "tiny", "--set", "steps=1.5"], 2, "steps: must be an integer", None),
    ("negative steps", ["train", "tiny", "--set", "steps=-5"], 2, "steps: must be >= 1", None),
    ("sigma nan", ["train", "tiny", "--set", "sigma=nan"], 2, "sigma: must be a finite number", None),
    ("lr infinite", ["train", "tiny", "--set", "lr=inf"], 2, "lr: must be a finite number", None),
    ("zero increment", ["train", "tiny", "--set", "increment_x=0"], 2, "increment_x: must be > 0", None),
    ("image size 10", ["train", "tiny", "--set", "image_size=10"], 2, "image_size: must be a multiple of 4", None),
    ("unknown layer", ["train", "tiny", "--set", "tap_layer=layer99"], 2, "tap_layer: must be one of", None),
    ("list of words", ["train", "tiny", "--set", "channel_mults=a,b"], 2, "channel_mults: must be a comma", None),
    ("bool given maybe", ["train", "tiny", "--set", "coord_channels=maybe"], 2, "coord_channels: must be true", None),
    ("unknown sampler", ["train", "tiny", "--set", "eval_sampler=euler"], 2, "eval_sampler: must be 'ddim'", None),
    ("more neighbours than labels", ["train", "tiny", "--set", "umap_neighbors=50"], 2, "umap_neighbors", None),
    ("zero threads", ["train", "tiny", "--threads", "0"], 2, "--threads: must be >= 1", None),
    ("threads not a number", ["train", "tiny", "--threads", "two"], 2, "--threads: invalid int value", None),
    ("unknown command", ["frobnicate"], 2, "invalid choice: 'frobnicate'", None),
    ("missing --x", ["sample", "{good}", "--y", "1", "--out", "{png}"], 2, "--x", None),
    ("no such run folder", ["evaluate", "{root}/runs/0123456789abcdef"], 1, "not a run directory", None),
    ("folder that is not a run", ["evaluate", "{plain_dir}"], 1, "not a run directory (no config.json)", None),
    ("file instead of a run folder", ["sample", "{plain_file}", "--x", "1", "--y", "1", "--out", "{png}"],
     1, "not a run directory", None),
    ("x outside the image", ["sample", "{good}", "--x", "8", "--y", "1", "--out", "{png}"], 2,
     "--x: must be >= 0 and < image_size (8); got 8.0", None),
    ("negative y", ["sample", "{good}", "--x", "1", "--y", "-0.5", "--out", "{png}"], 2, "--y: must be >= 0", None),
    ("x nan", ["sample", "{good}", "--x", "nan", "--y", "1", "--out", "{png}"], 2, "--x: must be >= 0", None),
    ("output not a png", ["sample", "{good}", "--x", "1", "--y", "1", "--out", "{out}/o.jpg"], 2,
     "--out: must be a .png file", None),
    ("sample: final checkpoint missing", ["sample", "{missing}", "--x", "1", "--y", "1", "--out", "{png}"], 1,
     "checkpoints/step_0000060.safetensors: missing", None),
    ("evaluate: checkpoint missing", ["evaluate", "{missing}", "--quiet"], 1,
     "checkpoints/step_0000060.safetensors: missing", None),
    ("data directory below a plain file", ["train", "tiny", "--set", "seed=7", "--quiet"], 1,
     ("a_file.txt/data/runs/", ": Not a directory"), "{plain_file}/data"),
]


def _fill(items, store):
    return [str(a).format(**store) for a in items]


def _check_one_clear_line(rc, out, err, want_rc, says):
    assert rc == want_rc, (rc, out, err)
    assert "Traceback" not in out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    says = (says,) if isinstance(says, str) else says
    assert lines[0].startswith("bumpdiff: error: ") and all(s in lines[0] for s in says), lines[0]


@pytest.mark.parametrize("argv,want_rc,says,data", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_cli_input_in_process(argv, want_rc, says, data, store, capsys, monkeypatch):
    root = store["root"]
    monkeypatch.setenv("BUMPDIFF_DATA", str(data).format(**store) if data else str(root))
    before = snapshot(root)
    try:
        rc, out, err = run_cli(_fill(argv, store), capsys)
    except SystemExit as e:  # argparse's errors end the process
        rc, (out, err) = e.code, capsys.readouterr()
    _check_one_clear_line(rc, out, err, want_rc, says)
    assert snapshot(root) == before  # no new run directory, nothing existing changed
    assert not store["png"].exists()


FAST = [c for c in CASES if c[1][0] in ("train", "frobnicate")]  # fail before torch is imported


@pytest.mark.parametrize("argv,want_rc,says,data", [c[1:] for c in FAST], ids=[c[0] for c in FAST])
def test_bad_cli_input_as_a_real_process(argv, want_rc, says, data, store):
    root = store["root"]
    before = snapshot(root)
    env = env_for(str(data).format(**store) if data else root)
    p = subprocess.run(BUMPDIFF + _fill(argv, store), cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=120)
    _check_one_clear_line(p.returncode, p.stdout, p.stderr, want_rc, says)
    assert snapshot(root) == before


def test_the_table_is_large_enough():
    assert len(CASES) >= 15 and len({c[0] for c in CASES}) == len(CASES)


# ---------------------------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------------------------

def _disk_with(monkeypatch, root, free_bytes: int) -> None:
    """Writes to files under `root` fail with ENOSPC once `free_bytes` are used up."""
    real_fdopen = os.fdopen
    free = [free_bytes]

    class Quota:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            if len(data) > free[0]:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            free[0] -= len(data)
            return self._f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self._f, name)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return f
        return Quota(f) if target.startswith(str(root)) else f

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_full_disk_before_the_first_write_leaves_no_run_folder(store, capsys, monkeypatch):
    root = store["root"]
    monkeypatch.setenv("BUMPDIFF_DATA", str(root))
    before = snapshot(root)
    runs_before = sorted((root / "runs").iterdir())
    _disk_with(monkeypatch, root, 0)
    rc, out, err = run_cli(["train", "tiny", "--set", "seed=7", "--quiet"], capsys)
    _check_one_clear_line(rc, out, err, 1, "config.json: No space left on device")
    assert sorted((root / "runs").iterdir()) == runs_before
    assert snapshot(root) == before


def test_full_disk_mid_training_is_reported_then_resumed(store, tmp_path, capsys, monkeypatch):
    from bumpdiff_core.runs.store import Run

    root = tmp_path / "data"
    copy_run(store["good"], root)
    monkeypatch.setenv("BUMPDIFF_DATA", str(root))
    before = snapshot(root)
    with monkeypatch.context() as m:
        _disk_with(m, root, 300_000)  # room for config.json and the first checkpoint, not its state
        rc, out, err = run_cli(["train", "tiny", "--set", "seed=7", "--quiet"], capsys)
    _check_one_clear_line(rc, out, err, 1, "No space left on device")
    new = [p for p in (root / "runs").iterdir() if p.name != store["good"].name]
    assert len(new) == 1 and str(new[0]) in err  # the line names the file that did not fit
    assert not temp_files(new[0])
    assert {k: v for k, v in snapshot(root).items() if not k.startswith(f"runs/{new[0].name}/")} == before
    # space freed: the same command finishes the run
    rc, out, err = run_cli(["train", "tiny", "--set", "seed=7", "--quiet"], capsys)
    assert rc == 0, err
    assert Run.open(new[0]).is_complete and Run.open(new[0]).verify() == []


def test_real_full_filesystem(tmp_path):
    """A 256 KiB tmpfs as the data root (needs root and a kernel that allows the mount)."""
    mnt = tmp_path / "tiny_fs"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        env = env_for(mnt / "data", NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
        p = subprocess.run(BUMPDIFF + TINY, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        _check_one_clear_line(p.returncode, p.stdout, p.stderr, 1, "No space left on device")
        assert str(mnt) in p.stderr
        assert not list(mnt.rglob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


# ---------------------------------------------------------------------------------------------
# papermill parameters of notebooks/train_and_evaluate.ipynb
# ---------------------------------------------------------------------------------------------

NOTEBOOK_CASES = [
    ("field given text", {"profile": "tiny", "overrides": {"steps": "abc"}}, "steps: must be an integer"),
    ("overrides not a dict", {"profile": "tiny", "overrides": "steps=5"}, "overrides: must be a dict"),
]  # (each costs a kernel start; the other notebook parameters reach the same checks, tested below)


@pytest.mark.parametrize("profile,overrides,threads,says", [
    ("tiny", {"no_such_field": 1}, 1, "no_such_field: unknown field"),
    (["tiny"], {}, 1, "profile: must be one of"),
    ("tiny", [("steps", 5)], 1, "overrides: must be a dict"),
    ("tiny", {}, "two", "threads: must be a whole number"),
    ("tiny", {}, 0, "threads: must be a whole number"),
])
def test_notebook_parameters_are_checked_before_any_work(profile, overrides, threads, says, store, monkeypatch):
    """What train_and_evaluate.ipynb does with its parameters, without a kernel."""
    from bumpdiff_core.config import ConfigError, profile_config
    from bumpdiff_core.execute.pipeline import ensure_run

    monkeypatch.setenv("BUMPDIFF_DATA", str(store["root"]))
    before = snapshot(store["root"])
    with pytest.raises(ConfigError, match=says):
        ensure_run(profile_config(profile, overrides), threads=threads, progress=False)
    assert snapshot(store["root"]) == before


@pytest.mark.parametrize("parameters,says", [c[1:] for c in NOTEBOOK_CASES], ids=[c[0] for c in NOTEBOOK_CASES])
def test_bad_notebook_parameters_fail_with_the_config_error(parameters, says, store, tmp_path, monkeypatch):
    import papermill as pm

    notebook = REPO / "notebooks" / "train_and_evaluate.ipynb"
    root = store["root"]
    monkeypatch.setenv("BUMPDIFF_DATA", str(root))  # the kernel inherits it
    before = snapshot(root)
    with pytest.raises(pm.PapermillExecutionError) as caught:
        pm.execute_notebook(str(notebook), str(tmp_path / "out.ipynb"), parameters=parameters,
                            kernel_name="bumpdiff", progress_bar=False, cwd=str(REPO / "notebooks"))
    error = caught.value
    line = f"{error.ename}: {error.evalue}"
    assert error.ename == "ConfigError" and "\n" not in line and says in line, line
    assert snapshot(root) == before
