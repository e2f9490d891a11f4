"""The `bumpdiff` command line: train prints the run folder, a finished run costs nothing, sample
writes the N x N PNG, and every invalid value ends in one line, exit code 2, nothing written."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from bumpdiff_core.cli import main
from bumpdiff_core.config import profile_config
from bumpdiff_core.present.pngio import read_png


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_train_prints_the_run_directory_as_the_last_line(cli_tiny_run):
    run_dir = cli_tiny_run.run_dir
    assert run_dir == cli_tiny_run.data_root.absolute() / "runs" / profile_config("tiny").run_id
    assert (run_dir / "COMPLETE").is_file() and (run_dir / "config.json").is_file()
    assert (run_dir / "metrics.csv").is_file()


def test_asking_for_a_finished_run_again_does_no_work(cli_tiny_run, bumpdiff_cli):
    before = _snapshot(cli_tiny_run.data_root)
    started = time.perf_counter()
    again = bumpdiff_cli(["train", "tiny", "--threads", "1"], cli_tiny_run.data_root)
    seconds = time.perf_counter() - started
    assert again.returncode == 0, again.stderr
    assert Path(again.stdout.strip().splitlines()[-1]) == cli_tiny_run.run_dir
    assert _snapshot(cli_tiny_run.data_root) == before  # nothing trained, evaluated or rewritten
    assert seconds < min(30.0, cli_tiny_run.seconds), seconds


def test_sample_writes_the_raw_n_by_n_grayscale_sample_of_the_last_checkpoint(cli_tiny_run, bumpdiff_cli,
                                                                              tmp_path):
    import torch

    from bumpdiff_core.learn.diffusion import LinearSchedule, sample
    from bumpdiff_core.runs.store import Run
    from bumpdiff_core.learn.train import load_weights

    out = tmp_path / "bump.png"
    result = bumpdiff_cli(["sample", cli_tiny_run.run_dir, "--x", 2.5, "--y", 6, "--out", out, "--threads", 1],
                          cli_tiny_run.data_root)
    assert result.returncode == 0, result.stderr
    pixels = read_png(out)
    run = Run.open(cli_tiny_run.run_dir)
    n = run.config.image_size
    assert pixels.shape == (n, n) and pixels.dtype == np.uint8

    # the same sample drawn through the library: last checkpoint, seed 0, the run's sampler
    model = load_weights(run, run.checkpoint_steps_on_disk()[-1])
    image, _ = sample(model, LinearSchedule.from_config(run.config), torch.tensor([[2.5, 6.0]]), [0],
                      sampler=run.config.eval_sampler, steps=run.config.eval_sampler_steps)
    expected = np.round((image[0, 0].numpy() + 1) * 127.5)
    assert np.abs(pixels.astype(int) - expected).max() <= 1  # thread counts may differ in the last bit

    pil = pytest.importorskip("PIL.Image")  # an independent PNG reader, when installed
    with pil.open(out) as img:
        assert img.mode == "L" and img.size == (n, n)
        np.testing.assert_array_equal(np.asarray(img), pixels)


def test_png_rows_are_y_and_columns_are_x(tmp_path):
    from bumpdiff_core.present.pngio import write_png

    pixels = np.zeros((8, 16), dtype=np.uint8)
    pixels[6, 2] = 255  # y = 6 (row), x = 2 (column)
    write_png(tmp_path / "p.png", pixels)
    back = read_png(tmp_path / "p.png")
    assert back.shape == (8, 16) and back[6, 2] == 255 and back.sum() == 255
    pil = pytest.importorskip("PIL.Image")
    with pil.open(tmp_path / "p.png") as img:
        assert img.size == (16, 8) and img.getpixel((2, 6)) == 255  # PIL: (x, y)


# (argv after `train`, the field the one line must name, words of the allowed range it must state)
INVALID = [
    (["nosuchprofile"], "profile", "must be one of tiny"),
    (["tiny", "--set", "nosuchfield=1"], "nosuchfield", "unknown field; known fields: attention_levels, base_channels"),
    (["tiny", "--set", "sigma=0"], "sigma", "must be > 0 and <= 4.0"),
    (["tiny", "--set", "sigma=-1"], "sigma", "must be > 0 and <= 4.0"),
    (["tiny", "--set", "increment_x=0"], "increment_x", "must be > 0 and < image_size (8)"),
    (["tiny", "--set", "increment_y=-0.5"], "increment_y", "must be > 0 and < image_size (8)"),
    (["tiny", "--set", "increment_x=8"], "increment_x", "must be > 0 and < image_size (8)"),
    (["tiny", "--set", "image_size=32", "--set", "increment_y=40"], "increment_y", "< image_size (32)"),
    (["tiny", "--set", "image_size=10"], "image_size", "must be a multiple of 4"),
    (["tiny", "--set", "steps=0"], "steps", "must be >= 1"),
    (["tiny", "--set", "sigma=abc"], "sigma", "must be a finite number, > 0 and <= 4.0"),
    (["tiny", "--set", "steps=ten"], "steps", "must be an integer, >= 1"),
    (["tiny", "--set", "image_size=thirty-two"], "image_size", "must be an integer, a multiple of 4"),
    (["tiny", "--set", "design=nope"], "design", "must be 'grid', 'random', 'lines', 'holdout' or 'latin'"),
    (["tiny", "--set", "design_count=0"], "design_count", "must be >= 1"),
    (["tiny", "--set", "design=random", "--set", "design_count=65"], "design_count", "<= grid positions (64)"),
    (["tiny", "--set", "conditioning=both"], "conditioning", "must be 'global' or 'separable'"),
    (["tiny", "--set", "image_size=16", "--set", "increment_x=fine"], "increment_x", "< image_size (16)"),
]


@pytest.mark.parametrize("argv, field, allowed", INVALID, ids=[" ".join(c[0]) for c in INVALID])
def test_an_invalid_value_ends_in_one_line_exit_2_and_no_run_directory(argv, field, allowed, tmp_path,
                                                                        monkeypatch, capsys):
    monkeypatch.setenv("BUMPDIFF_DATA", str(tmp_path / "data"))
    code = main(["train"] + argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"bumpdiff: error: {field}: ") and allowed in lines[0], lines[0]
    assert out == ""
    assert not (tmp_path / "data").exists()


def test_an_invalid_value_through_the_real_command(bumpdiff_cli, tmp_path):
    result = bumpdiff_cli(["train", "tiny", "--set", "sigma=abc"], tmp_path / "data")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "bumpdiff: error: sigma: must be a finite number, > 0 and <= 4.0; got 'abc'"]
    assert result.stdout == "" and not (tmp_path / "data").exists()


def test_a_lines_design_reports_seen_and_unseen_accuracy_and_evaluate_recomputes_the_table(bumpdiff_cli,
                                                                                          tmp_path):
    import pandas as pd

    result = bumpdiff_cli(["train", "tiny", "--set", "design=lines", "--set", "design_lines=2", "--threads", 1,
                           "--quiet"], tmp_path / "data")
    assert result.returncode == 0, result.stderr
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    table = pd.read_csv(run_dir / "metrics.csv")
    assert "accuracy_seen" in table and table["accuracy_unseen"].notna().all() and len(table)
    assert (run_dir / "position_map.npz").is_file()

    # a table written before the new columns: `bumpdiff evaluate` recomputes it from the cached evals
    from bumpdiff_core.runs.store import Run
    run = Run.open(run_dir)
    run.write_bytes(run.metrics_path, table[table.columns[:13]].to_csv(index=False).encode())
    evals = {p: p.stat().st_mtime_ns for p in sorted((run_dir / "evals").glob("*.npz"))}
    again = bumpdiff_cli(["evaluate", run_dir, "--threads", 1, "--quiet"], tmp_path / "data")
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in evals} == evals  # nothing resampled
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "metrics.csv"), table)
