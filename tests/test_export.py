"""`bumpdiff export` / `export.export_run`: the CSVs behind a run's figures, on the session's tiny run."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from bumpdiff_core.results.schema import load_losses, load_metrics
from bumpdiff_core.present.export import EMBEDDING_COLUMNS, ExportError, export_run
from bumpdiff_core.runs.store import Run
from bumpdiff_core.results.view import RunView


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    return out, export_run(tiny_run, out)


def test_writes_the_four_files_and_nothing_else(exported):
    out, paths = exported
    assert [p.name for p in paths] == ["metrics.csv", "losses.csv", "embeddings.csv", "README.txt"]
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in paths)  # no temp files left


def test_metrics_and_losses_match_the_run(exported, tiny_run):
    out, _ = exported
    pd.testing.assert_frame_equal(pd.read_csv(out / "metrics.csv"), load_metrics(tiny_run), check_exact=False,
                                  rtol=1e-7)
    losses = pd.read_csv(out / "losses.csv")
    assert list(losses.columns) == ["step", "loss"]
    assert list(losses["step"]) == list(range(1, tiny_run.config.steps + 1))
    np.testing.assert_allclose(losses["loss"], load_losses(tiny_run), rtol=1e-6)


def test_embeddings_table_is_the_evaluation_of_every_checkpoint(exported, tiny_run):
    out, _ = exported
    table = pd.read_csv(out / "embeddings.csv")
    assert list(table.columns) == EMBEDDING_COLUMNS
    steps = [int(s) for s in load_metrics(tiny_run)["step"]]
    assert sorted(table["step"].unique()) == steps
    view = RunView.open(tiny_run)  # what the figures draw
    for step in (steps[0], steps[-1]):
        ev, rows = view.evaluation(step), table[table["step"] == step]
        assert list(rows["label_index"]) == list(range(len(ev.labels)))
        np.testing.assert_allclose(rows[["x", "y"]], ev.labels, rtol=1e-6)
        np.testing.assert_allclose(rows[["umap_1", "umap_2", "umap_3"]], ev.embedding, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rows[["aligned_1", "aligned_2", "aligned_3"]],
                                   view.aligned_embeddings[steps.index(step)], rtol=1e-5, atol=1e-5)
        assert list(rows["bump_count"]) == list(ev.bump_count)
        # a centre exactly when one bump was found
        np.testing.assert_array_equal(rows["centre_x"].notna(), ev.bump_count == 1)
        np.testing.assert_allclose(rows[["centre_x", "centre_y"]], ev.centres, rtol=1e-6)
    # alignment starts from the last checkpoint, so there the aligned and raw frames coincide
    last = table[table["step"] == steps[-1]]
    np.testing.assert_allclose(last[["aligned_1", "aligned_2", "aligned_3"]].to_numpy(),
                               last[["umap_1", "umap_2", "umap_3"]].to_numpy(), rtol=1e-5, atol=1e-5)


def test_readme_names_every_column(exported, tiny_run):
    out, _ = exported
    text = (out / "README.txt").read_text()
    assert tiny_run.config.run_id in text
    for name in ("metrics.csv", "losses.csv", "embeddings.csv", "phase", "bump_count", "centre_x", "aligned_1..3"):
        assert name in text, name


def test_export_is_repeatable_and_accepts_a_view_or_a_path(exported, tiny_run, tmp_path):
    out, paths = exported

    again = export_run(RunView.open(tiny_run), tmp_path / "a")
    by_path = export_run(str(tiny_run.path), tmp_path / "b")
    for first, second, third in zip(paths, again, by_path):
        assert first.read_bytes() == second.read_bytes() == third.read_bytes()


def _unfinished_copy(tiny_run, tmp_path) -> Run:
    copy = tmp_path / "runs" / tiny_run.path.name
    shutil.copytree(tiny_run.path, copy, ignore=shutil.ignore_patterns(".lock", ".manifest.lock"))
    (copy / "COMPLETE").unlink()
    return Run.open(copy)


def test_an_unfinished_run_is_refused(tiny_run, tmp_path):
    run = _unfinished_copy(tiny_run, tmp_path)
    with pytest.raises(ExportError, match="not finished"):
        export_run(run, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_cli_export_prints_the_files(tiny_run, bumpdiff_cli, tmp_path):
    result = bumpdiff_cli(["export", tiny_run.path, "--out", tmp_path / "out"], tmp_path)
    assert result.returncode == 0, result.stderr
    printed = result.stdout.strip().splitlines()
    assert [p.rsplit("/", 1)[-1] for p in printed] == ["metrics.csv", "losses.csv", "embeddings.csv", "README.txt"]
    assert all((tmp_path / "out" / name).is_file() for name in ("metrics.csv", "embeddings.csv"))


@pytest.mark.parametrize("case", ["missing", "unfinished", "not_a_run"])
def test_cli_export_refuses_a_bad_run_dir_with_one_line(case, tiny_run, bumpdiff_cli, tmp_path):
    if case == "missing":
        target = tmp_path / "no_such_run"
    elif case == "unfinished":
        target = _unfinished_copy(tiny_run, tmp_path).path
    else:
        target = tmp_path / "empty"
        target.mkdir()
    result = bumpdiff_cli(["export", target, "--out", tmp_path / "out"], tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0], result.stderr
    assert not (tmp_path / "out").exists()


# --- files beside a book page: download_links + the Sphinx hook -------------------------------------

def test_download_links_carry_the_files_and_link_them(monkeypatch, tmp_path):
    import json

    from bumpdiff_core.present.export import PAGE_FILES_MIME, download_links, page_files_of
    from bumpdiff_core.present.widgets import STATIC_ENV

    monkeypatch.setenv(STATIC_ENV, "1")       # executing for the book: nothing is written now
    monkeypatch.chdir(tmp_path)
    table = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    links = download_links({"t.csv": table, "n.txt": "hello"}, "page-files")
    assert not (tmp_path / "page-files").exists()
    bundle = links._repr_mimebundle_()
    assert 'href="page-files/t.csv"' in bundle["text/html"] and 'href="page-files/n.txt"' in bundle["text/html"]
    assert "[t.csv](page-files/t.csv)" in bundle["text/markdown"]
    # what an executed notebook stores, read back as the book build does
    notebook = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "execute_result",
                                                             "data": json.loads(json.dumps(bundle))}]}]}
    [(folder, files)] = page_files_of(notebook)
    assert folder == "page-files" and files["n.txt"] == b"hello"
    pd.testing.assert_frame_equal(pd.read_csv(__import__("io").BytesIO(files["t.csv"])), table)
    assert PAGE_FILES_MIME in bundle

    monkeypatch.setenv(STATIC_ENV, "")        # a live kernel: the files are written where the links point
    download_links({"t.csv": table}, "page-files")
    assert (tmp_path / "page-files" / "t.csv").read_bytes() == files["t.csv"]
    with pytest.raises(ValueError):
        download_links({"../evil.csv": "x"}, "page-files")


def test_run_download_links_offer_the_run_export(tiny_run, monkeypatch, exported):
    from bumpdiff_core.present.export import run_download_links
    from bumpdiff_core.present.widgets import STATIC_ENV

    monkeypatch.setenv(STATIC_ENV, "1")
    out, paths = exported
    links = run_download_links(RunView.open(tiny_run), "run-files")
    assert links.hrefs() == [f"run-files/{p.name}" for p in paths]
    for p in paths:
        assert links.files[p.name] == p.read_bytes()


def test_named_tables_writes_one_file_per_table_and_seed():
    import pandas as pd

    from bumpdiff_core.present.export import named_tables

    t = pd.DataFrame({"step": [0]})
    files = named_tables("metrics", {1.0: t, 0.5: [t, t], (0.1, 1.0, 3): t})
    assert sorted(files) == ["metrics_0.1_1_3.csv", "metrics_0.5_0.csv", "metrics_0.5_1.csv", "metrics_1.csv"]
