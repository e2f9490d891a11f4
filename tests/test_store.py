"""The run store's parts on their own: the folder layout (its file names are a format: existing
run folders must stay readable), the manifest, opening and creating runs, temp cleanup, and the
fault-injection hook. Seconds, no training."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bumpdiff_core.config import profile_config
from bumpdiff_core.runs.store import CorruptFileError, Manifest, Run, RunLayout, StoreError

REPO = Path(__file__).resolve().parents[1]


def test_layout_names_are_the_on_disk_format(tmp_path):
    layout = RunLayout.of("abc123", tmp_path)
    run = tmp_path / "runs" / "abc123"
    assert layout.path == run
    assert (layout.config_path, layout.meta_path, layout.manifest_path, layout.losses_path,
            layout.metrics_path, layout.complete_path, layout.lock_path, layout.manifest_lock_path) == (
        run / "config.json", run / "meta.json", run / "manifest.json", run / "losses.npz",
        run / "metrics.csv", run / "COMPLETE", run / ".lock", run / ".manifest.lock")
    assert layout.checkpoint_path(500) == run / "checkpoints" / "step_0000500.safetensors"
    assert layout.train_state_path(500) == run / "states" / "step_0000500.safetensors"
    assert layout.eval_path(500) == run / "evals" / "step_0000500.npz"
    assert layout.umap_path(500) == run / "umap" / "step_0000500.npz"
    assert not layout.is_complete and not run.exists()  # a layout touches nothing


def test_layout_default_root_is_the_data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path))
    assert RunLayout.of("r").complete_path == tmp_path / "runs" / "r" / "COMPLETE"


def test_layout_classifies_files(tmp_path):
    layout = RunLayout(tmp_path)
    assert layout.checkpoint_step(layout.checkpoint_path(40)) == 40
    for other in (layout.train_state_path(40), layout.eval_path(40), layout.losses_path,
                  tmp_path / "checkpoints" / "notes.txt", tmp_path / "elsewhere" / "checkpoints" / "step_0000040.safetensors"):
        assert layout.checkpoint_step(other) is None, other
    assert layout.is_training_output(layout.checkpoint_path(0)) and layout.is_training_output(layout.losses_path)
    assert not any(layout.is_training_output(p) for p in (layout.train_state_path(0), layout.eval_path(0),
                                                           layout.umap_path(0), layout.metrics_path))


def test_layout_lists_steps_on_disk(tmp_path):
    layout = RunLayout(tmp_path)
    for step in (40, 0, 20):
        layout.checkpoint_path(step).parent.mkdir(exist_ok=True)
        layout.checkpoint_path(step).write_bytes(b"x")
    layout.train_state_path(20).parent.mkdir()
    layout.train_state_path(20).write_bytes(b"x")
    assert layout.checkpoint_steps_on_disk() == [0, 20, 40]
    assert layout.train_state_steps() == [20]


def test_manifest_records_checks_forgets_and_verifies(tmp_path):
    m = Manifest(tmp_path, tmp_path / "manifest.json", tmp_path / ".manifest.lock")
    f = tmp_path / "evals" / "step_0000001.npz"
    f.parent.mkdir()
    f.write_bytes(b"hello")
    m.record(f, b"hello")
    assert json.loads((tmp_path / "manifest.json").read_text()) == {
        "evals/step_0000001.npz": {"size": 5, "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"}}
    m.check(f, b"hello")
    with pytest.raises(CorruptFileError, match=f"^{f}: truncated or extended"):
        m.check(f, b"hell")
    with pytest.raises(CorruptFileError, match=f"^{f}: content hash differs"):
        m.check(f, b"jello")
    f.write_bytes(b"jello")
    stray = tmp_path / "umap" / "step_0000001.npz"
    stray.parent.mkdir()
    stray.write_bytes(b"?")
    (tmp_path / "notes.txt").write_text("not a data file: ignored")
    assert m.verify(RunLayout.RECORDED) == [
        (f, "content hash differs from the one recorded when written"),
        (stray, "not recorded in manifest.json (not written by bumpdiff)")]
    m.forget(f)
    assert m.entries() == {}
    with pytest.raises(CorruptFileError, match="not recorded in manifest.json"):
        m.check(f, b"jello")


@pytest.mark.parametrize("text", ["[1, 2]", '{"a": {"size": "5"}}', "{not json"])
def test_damaged_manifest_is_refused_with_its_path(tmp_path, text):
    (tmp_path / "manifest.json").write_text(text)
    m = Manifest(tmp_path, tmp_path / "manifest.json", tmp_path / ".manifest.lock")
    with pytest.raises(CorruptFileError, match=f"^{tmp_path / 'manifest.json'}: "):
        m.verify(RunLayout.RECORDED)


def test_run_reads_back_what_it_wrote_and_refuses_changes(tmp_path):
    run = Run(tmp_path, None)
    run.save_arrays(run.eval_path(20), a=[1, 2, 3])
    assert run.load_arrays(run.eval_path(20))["a"].tolist() == [1, 2, 3]
    assert run.verify() == [] and run.is_valid(run.eval_path(20))
    run.eval_path(20).write_bytes(run.eval_path(20).read_bytes()[:-1])
    assert not run.is_valid(run.eval_path(20))
    run.remove(run.eval_path(20))
    assert run.verify() == [] and not run.eval_path(20).exists()
    with pytest.raises(FileNotFoundError, match="missing"):
        run.read_bytes(run.eval_path(20))


def test_create_or_open_creates_then_opens_and_validates(tmp_path):
    config = profile_config("tiny")
    run = Run.create_or_open(config, tmp_path)
    assert run.path == RunLayout.of(config.run_id, tmp_path).path
    assert json.loads(run.config_path.read_text()) == config.to_dict()
    before = run.config_path.stat().st_mtime_ns
    again = Run.create_or_open(config, tmp_path)
    assert again.path == run.path and run.config_path.stat().st_mtime_ns == before  # opened, not rewritten
    assert Run.open(run.path).config == config
    run.config_path.write_text(json.dumps({**config.to_dict(), "seed": config.seed + 1}))
    with pytest.raises(CorruptFileError, match="not to the folder name"):
        Run.create_or_open(config, tmp_path)


def test_open_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(StoreError, match="no such folder"):
        Run.open(tmp_path / "nothing")
    with pytest.raises(StoreError, match=r"no config\.json"):
        Run.open(tmp_path)


def test_completion_marker_and_meta(tmp_path, capsys):
    run = Run(tmp_path, None)
    assert not run.is_complete and run.read_meta() == {}
    run.update_meta(a=1)
    run.update_meta(b=2)
    assert json.loads(run.meta_path.read_text()) == {"a": 1, "b": 2}
    run.mark_complete()
    assert run.is_complete and RunLayout(tmp_path).is_complete
    run.unmark_complete()
    assert not run.is_complete
    run.meta_path.write_text("{torn")
    assert run.read_meta() == {}
    assert f"warning: {run.meta_path}: " in capsys.readouterr().out


def test_stale_temps_are_removed_but_a_fresh_config_temp_is_kept(tmp_path):
    run = Run(tmp_path, None)
    torn = tmp_path / "checkpoints" / ".step_0000060.safetensors.abc123.tmp"
    torn.parent.mkdir()
    torn.write_bytes(b"half")
    fresh_config = tmp_path / ".config.json.xyz.tmp"
    old_config = tmp_path / ".config.json.old.tmp"
    fresh_config.write_text("{")
    old_config.write_text("{")
    os.utime(old_config, (time.time() - 7200,) * 2)
    assert sorted(run.remove_stale_temps()) == sorted([torn, old_config])
    assert fresh_config.exists() and not torn.exists() and not old_config.exists()


_FAULT = """
import sys
from bumpdiff_core.runs.faults import fault_point
for i in range(5):
    fault_point("save", "/data/runs/r/checkpoints/step_0000020.safetensors")
    print(i, flush=True)
"""


@pytest.mark.parametrize("fault, printed, killed", [
    (None, "0 1 2 3 4", False),
    ("save:checkpoints/step_0000020.safetensors#3", "0 1", True),
    ("save:step_0000040.safetensors", "0 1 2 3 4", False),
    ("write:checkpoints/step_0000020.safetensors", "0 1 2 3 4", False),
])
def test_fault_point_kills_at_the_nth_matching_hit(fault, printed, killed):
    env = {k: v for k, v in os.environ.items() if k != "BUMPDIFF_FAULT"}
    env["PYTHONPATH"] = str(REPO)
    if fault:
        env["BUMPDIFF_FAULT"] = fault
    p = subprocess.run([sys.executable, "-c", _FAULT], env=env, capture_output=True, text=True, timeout=60)
    assert p.stdout.split() == printed.split()
    assert (p.returncode == -9) == killed, p.stderr
