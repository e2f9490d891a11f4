"""Corruption and foreign code: damaged files in a run folder are detected (size +
sha256 recorded in manifest.json when written) and reported with their path; `bumpdiff train`
recomputes them identically, `bumpdiff evaluate` recomputes its own caches but refuses damaged
weights, a damaged config.json or manifest.json is refused. Pickles planted where weights or
arrays are expected are refused without being unpickled.

Each test works on a private copy of the session's finished `tiny` run, in this process.
"""
from __future__ import annotations

import ast
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from reliability_support import (TINY, REPO, assert_same_as_reference, copy_run, damage, run_cli,
                                 snapshot)


@pytest.fixture
def run_copy(tiny_run, tmp_path, monkeypatch):
    """(data root, run path): a copy of the finished tiny run, with BUMPDIFF_DATA pointing at it."""
    root = tmp_path / "data"
    path = copy_run(tiny_run.path, root)
    monkeypatch.setenv("BUMPDIFF_DATA", str(root))
    return root, path


def _load(run, rel):
    """The library's reader for a file of this kind."""
    from bumpdiff_core.results.schema import load_metrics

    path = run.path / rel
    if rel.endswith(".safetensors"):
        return run.load_tensors(path)
    if rel.endswith(".npz"):
        return run.load_arrays(path)
    return load_metrics(run)


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


DAMAGE_REPAIRED_BY_TRAIN = [
    ("checkpoints/step_0000020.safetensors", "flip"),  # an early checkpoint: retrained from step 0
    ("checkpoints/step_0000020.safetensors", "truncate"),
    ("checkpoints/step_0000060.safetensors", "flip"),  # the final one: rewritten from the final state
    ("states/step_0000060.safetensors", "flip"),       # resumes from the state before it
    ("states/step_0000060.safetensors", "truncate"),
    ("evals/step_0000040.npz", "flip"),
    ("evals/step_0000040.npz", "truncate"),
    ("umap/step_0000020.npz", "flip"),
    ("metrics.csv", "flip"),
    ("metrics.csv", "truncate"),
    ("losses.npz", "truncate"),
]


@pytest.mark.parametrize("rel,how", DAMAGE_REPAIRED_BY_TRAIN)
def test_damaged_file_is_reported_and_recomputed_identically(rel, how, run_copy, tiny_run, capsys):
    from bumpdiff_core.runs.store import CorruptFileError, Run

    root, path = run_copy
    damage(path / rel, how)
    run = Run.open(path)
    assert [p for p, _ in run.verify()] == [path / rel]
    with pytest.raises(CorruptFileError) as caught:
        _load(run, rel)
    assert str(caught.value).startswith(f"{path / rel}: ")

    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0, err
    assert f"warning: {path / rel}: " in out
    if rel.startswith("evals/") or rel.startswith("umap/") or rel == "metrics.csv":
        assert "resuming" in out and "from step 60" in out  # nothing retrained for derived files
    assert_same_as_reference(path, tiny_run.path)


def test_both_train_states_damaged_retrains_from_scratch(run_copy, tiny_run, capsys):
    root, path = run_copy
    for state in (path / "states").glob("*.safetensors"):
        damage(state, "flip")
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0, err
    assert out.count("warning: ") == 2 and "resuming" not in out
    assert_same_as_reference(path, tiny_run.path)


def test_altered_manifest_entry_makes_its_file_recomputed(run_copy, tiny_run, capsys):
    root, path = run_copy
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["evals/step_0000020.npz"]["sha256"] = "0" * 64
    (path / "manifest.json").write_text(json.dumps(manifest))
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0 and f"warning: {path / 'evals/step_0000020.npz'}: content hash differs" in out
    assert_same_as_reference(path, tiny_run.path)


@pytest.mark.parametrize("rel,how", [("evals/step_0000020.npz", "flip"), ("umap/step_0000040.npz", "truncate"),
                                     ("metrics.csv", "truncate")])
def test_evaluate_recomputes_its_damaged_outputs(rel, how, run_copy, tiny_run, capsys):
    root, path = run_copy
    damage(path / rel, how)
    rc, out, err = run_cli(["evaluate", str(path), "--threads", "1", "--quiet"], capsys)
    assert rc == 0, err
    if rel != "metrics.csv":  # metrics.csv is rewritten by every evaluation anyway
        assert f"warning: {path / rel}: " in out and "recomputing it" in out
    assert_same_as_reference(path, tiny_run.path)


@pytest.mark.parametrize("how", ["flip", "truncate", "delete"])
def test_evaluate_and_sample_refuse_damaged_weights(how, run_copy, tmp_path, capsys):
    """Reading commands never load or overwrite damaged weights: one line with the path, exit 1,
    the run untouched (`bumpdiff train` is the command that regenerates them)."""
    root, path = run_copy
    ckpt = path / "checkpoints/step_0000060.safetensors"
    ckpt.unlink() if how == "delete" else damage(ckpt, how)
    before = snapshot(root)
    png = tmp_path / "out.png"
    for argv in (["evaluate", str(path), "--threads", "1", "--quiet"],
                 ["sample", str(path), "--x", "3", "--y", "4", "--out", str(png), "--threads", "1"]):
        rc, out, err = run_cli(argv, capsys)
        assert rc == 1, (argv, out, err)
        assert _one_error_line(err).startswith(f"bumpdiff: error: {ckpt}: ")
    assert snapshot(root) == before
    assert not png.exists()


def _alter_seed(cfg: Path) -> None:
    cfg.write_text(cfg.read_text().replace('"seed": 0', '"seed": 1'))


@pytest.mark.parametrize("how", ["truncate", "alter_seed", "unknown_field"])
def test_damaged_config_json_is_refused_with_its_path(how, run_copy, tmp_path, capsys):
    from bumpdiff_core.runs.store import CorruptFileError, Run

    root, path = run_copy
    cfg = path / "config.json"
    if how == "truncate":
        damage(cfg, "truncate")
    elif how == "alter_seed":
        _alter_seed(cfg)
    else:
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "exec": "import os"}))
    before = snapshot(root)
    with pytest.raises(CorruptFileError, match=f"^{path / 'config.json'}: "):
        Run.open(path)
    for argv in (TINY, ["evaluate", str(path)], ["sample", str(path), "--x", "1", "--y", "1",
                                                 "--out", str(tmp_path / "o.png")]):
        rc, out, err = run_cli(argv, capsys)
        assert rc == 1, (argv, out, err)
        assert _one_error_line(err).startswith(f"bumpdiff: error: {cfg}: ")
    assert snapshot(root) == before


@pytest.mark.parametrize("how", ["truncate", "not_a_manifest"])
def test_damaged_manifest_is_refused_with_its_path(how, run_copy, capsys):
    """Without its manifest nothing in the folder can be trusted: refuse, never guess."""
    root, path = run_copy
    manifest = path / "manifest.json"
    if how == "truncate":
        damage(manifest, "truncate")
    else:
        manifest.write_text(json.dumps({"checkpoints/step_0000060.safetensors": "trust me"}))
    before = snapshot(root)
    for argv in (TINY, ["evaluate", str(path), "--quiet"]):
        rc, out, err = run_cli(argv, capsys)
        assert rc == 1, (argv, out, err)
        assert _one_error_line(err).startswith(f"bumpdiff: error: {manifest}: ")
    assert snapshot(root) == before


def test_damaged_meta_json_is_reported_and_rewritten(run_copy, tiny_run, capsys):
    """meta.json only describes the run: a damaged one must not stop the work."""
    root, path = run_copy
    (path / "COMPLETE").unlink()
    damage(path / "meta.json", "truncate")
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0, err
    assert f"warning: {path / 'meta.json'}: " in out
    assert json.loads((path / "meta.json").read_text())["parameters"] > 0
    assert_same_as_reference(path, tiny_run.path)


def test_leftover_temp_files_are_removed_by_the_next_run(run_copy, capsys):
    root, path = run_copy
    torn = path / "checkpoints" / ".step_0000060.safetensors.abc123.tmp"
    torn.write_bytes(b"half a checkpoint")
    (path / "COMPLETE").unlink()
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0 and not torn.exists()


# ---------------------------------------------------------------------------------------------
# no foreign code
# ---------------------------------------------------------------------------------------------

class _Payload:
    """Unpickling this creates `marker`: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _record(path: Path) -> None:
    """Make the manifest vouch for the planted file: whoever hands us a folder controls it."""
    manifest_file = path.parents[1] / "manifest.json" if path.parent.name in (
        "checkpoints", "states", "evals", "umap") else path.parent / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    data = path.read_bytes()
    manifest[path.relative_to(manifest_file.parent).as_posix()] = {
        "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest_file.write_text(json.dumps(manifest))


def _torch_pickle(path: Path, marker: Path) -> None:
    import torch
    torch.save({"stem.conv.weight": _Payload(marker)}, path)


def _npz_pickle(path: Path, marker: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, latents=np.array([_Payload(marker)], dtype=object))
    path.write_bytes(buf.getvalue())


def test_planted_payloads_are_live(tmp_path):
    """Control: the payloads below do run code when unpickled (so their refusal means something)."""
    import torch

    marker = tmp_path / "control_marker"
    _torch_pickle(tmp_path / "p.pt", marker)  # (torch 2.13 hands *.safetensors to safetensors)
    torch.load(tmp_path / "p.pt", weights_only=False)
    assert marker.exists()
    marker.unlink()
    _npz_pickle(tmp_path / "p.npz", marker)
    np.load(tmp_path / "p.npz", allow_pickle=True)["latents"]
    assert marker.exists()


def test_pickle_where_the_final_checkpoint_should_be_is_refused(run_copy, tmp_path, capsys):
    from bumpdiff_core.runs.store import CorruptFileError, Run
    from bumpdiff_core.learn.train import load_weights

    root, path = run_copy
    marker = tmp_path / "pwned"
    ckpt = path / "checkpoints/step_0000060.safetensors"
    _torch_pickle(ckpt, marker)
    _record(ckpt)
    with pytest.raises(CorruptFileError, match="not a valid safetensors file"):
        load_weights(Run.open(path), 60)
    rc, out, err = run_cli(["sample", str(path), "--x", "3", "--y", "3", "--out", str(tmp_path / "o.png")], capsys)
    assert rc == 1 and _one_error_line(err).startswith(f"bumpdiff: error: {ckpt}: not a valid safetensors file")
    assert not marker.exists()


def test_pickle_where_a_train_state_should_be_is_refused(run_copy, tiny_run, tmp_path, capsys):
    root, path = run_copy
    marker = tmp_path / "pwned"
    state = path / "states/step_0000060.safetensors"
    _torch_pickle(state, marker)
    _record(state)
    (path / "COMPLETE").unlink()
    rc, out, err = run_cli(TINY, capsys)
    assert rc == 0, err
    assert f"warning: {state}: not a valid safetensors file" in out and "from step 40" in out
    assert not marker.exists()
    assert_same_as_reference(path, tiny_run.path)


def test_pickle_where_an_evaluation_should_be_is_refused(run_copy, tiny_run, tmp_path, capsys):
    from bumpdiff_core.runs.store import CorruptFileError, Run

    root, path = run_copy
    marker = tmp_path / "pwned"
    npz = path / "evals/step_0000020.npz"
    _npz_pickle(npz, marker)
    _record(npz)
    with pytest.raises(CorruptFileError, match="not a valid .npz file"):
        Run.open(path).load_arrays(npz)
    rc, out, err = run_cli(["evaluate", str(path), "--threads", "1", "--quiet"], capsys)
    assert rc == 0 and f"warning: {npz}: not a valid .npz file" in out
    assert not marker.exists()
    assert_same_as_reference(path, tiny_run.path)


# ---------------------------------------------------------------------------------------------
# static check: no unpickling anywhere in the library or the notebooks
# ---------------------------------------------------------------------------------------------

_FORBIDDEN_CALLS = {"torch.load", "pickle.load", "pickle.loads", "pickle.Unpickler", "dill.load",
                    "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "marshal.load",
                    "marshal.loads", "shelve.open", "pd.read_pickle", "pandas.read_pickle",
                    "torch.jit.load", "np.lib.format.read_array"}


def _dotted(node) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def unpickling_calls(source: str) -> list[str]:
    """Calls that can unpickle: the forbidden list, and np.load without allow_pickle=False."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module in ("pickle", "dill", "cloudpickle", "marshal"):
            found.append(f"from {node.module} import ...")
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        if name in _FORBIDDEN_CALLS or name.endswith("read_pickle"):
            found.append(name)
        if name in ("np.load", "numpy.load"):
            safe = any(k.arg == "allow_pickle" and isinstance(k.value, ast.Constant) and k.value.value is False
                       for k in node.keywords)
            if not safe:
                found.append(f"{name} without allow_pickle=False")
    return found


def test_the_checker_finds_unpickling_calls():
    bad = ("import torch, pickle, numpy as np\ntorch.load('x')\npickle.loads(b'')\n"
           "np.load('a.npz', allow_pickle=True)\nnp.load('b.npz')\n")
    assert unpickling_calls(bad) == ["torch.load", "pickle.loads", "np.load without allow_pickle=False",
                                     "np.load without allow_pickle=False"]
    assert unpickling_calls("import numpy as np\nnp.load(f, allow_pickle=False)\n") == []


def test_library_and_notebooks_never_unpickle():
    sources = {p: p.read_text() for p in sorted((REPO / "bumpdiff_core").glob("*.py"))}
    for nb in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        sources[nb] = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith(("%", "!")))
    assert len(sources) >= 10
    offenders = {str(p.relative_to(REPO)): calls for p, src in sources.items() if (calls := unpickling_calls(src))}
    assert offenders == {}
