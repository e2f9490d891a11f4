"""`bumpdiff export RUN_DIR --out DIR`: the numbers behind a run's figures, as plain CSV.

Written (every file atomically, so a reader never sees half of one):

    metrics.csv      one row per evaluated checkpoint (a copy of the run's own metrics.csv)
    losses.csv       step, loss: the training loss of every optimizer step
    embeddings.csv   one long table, one row per (checkpoint, evaluation label): the label, the raw
                     3D UMAP embedding, the same embedding Procrustes-aligned across checkpoints (the
                     coordinates the manifold figures and the scrubber draw), and the bump detection
    README.txt       what every column means

The run is read, never written, through `view.RunView` (the same view the figures draw from, so
the aligned coordinates are the plotted ones) over the verified store, so a damaged file is refused
with its path rather than exported.

Book pages offer the same files next to the page: a cell ends with `download_links(files, folder)`
(or `run_download_links(view, folder)`), which shows links to `<folder>/<name>` and carries the files
in its output (gzip + base64, mime type `PAGE_FILES_MIME`). The book's Sphinx build loads this module
as an extension (`setup` below, named in book/_config.yml): it writes those files into the built
site beside the page, so the pre-executed notebook is the only input and a plain link works in a
strict build. In a live kernel (`BUMPDIFF_STATIC_BOOK` unset) the files are also written to
`<folder>/` under the working directory (the notebook's folder in JupyterLab), where the links point.
"""
from __future__ import annotations

import base64
import gzip
import html
import io
import re
from pathlib import Path

import numpy as np

from bumpdiff_core.runs.store import Run, StoreError, atomic_write_bytes


class ExportError(StoreError):
    """The thing to export is not a finished run; the message starts with its path."""


EMBEDDING_COLUMNS = ["step", "label_index", "x", "y", "umap_1", "umap_2", "umap_3",
                     "aligned_1", "aligned_2", "aligned_3", "bump_count", "centre_x", "centre_y"]

README = """\
bumpdiff export of run {run_id}
source: {path}
config: {config}

metrics.csv: one row per evaluated checkpoint
  step         training step of the checkpoint
  loss         mean training loss since the previous checkpoint (NaN at step 0)
  accuracy     fraction of samples with exactly one bump within 1 px of the label in x and in y
  accuracy_x   ... within 1 px in x only;  accuracy_y: in y only
  frac_0, frac_1, frac_multi   fraction of samples with no bump, exactly one, two or more
  r2_x, r2_y   in-sample R^2 of a linear fit of the label from the 3D UMAP embedding
  r2_x_raw, r2_y_raw   leave-one-out ridge R^2 from the raw tapped activations ({tap})
  phase        A (fewer than half with one bump), B (one bump, inaccurate) or C (accurate)

losses.csv: one row per optimizer step
  step         1-based training step
  loss         that step's epsilon-prediction MSE (batch mean)

embeddings.csv: one row per (checkpoint, evaluation label), {n_labels} labels x {n_steps} checkpoints
  step         training step of the checkpoint
  label_index  index of the label in the evaluation set (the same labels at every checkpoint)
  x, y         the requested bump centre in pixels (x = column, y = row; image {size}x{size})
  umap_1..3    3D UMAP embedding of the tapped layer, as fitted for this checkpoint alone
  aligned_1..3 the same points Procrustes-aligned checkpoint to checkpoint, starting from the last
               (these are the coordinates the manifold figures draw; UMAP units mean nothing)
  bump_count   number of bumps detected in the sample drawn for this label
  centre_x, centre_y   detected bump centre in pixels; empty unless bump_count == 1
"""


def as_view(run_or_view):
    """A `view.RunView` of a `store.Run`, a run directory (str or Path) or a `RunView` itself.
    A run read from disk must be finished (ExportError otherwise, naming its folder)."""
    from bumpdiff_core.results.view import RunView

    if isinstance(run_or_view, RunView):
        run = run_or_view.run
        view = run_or_view
    elif isinstance(run_or_view, Run):
        run, view = run_or_view, None
    elif isinstance(run_or_view, (str, Path)):
        run, view = Run.open(run_or_view), None
    else:
        raise TypeError(f"export_run needs a RunView, a Run or a run directory; got {type(run_or_view).__name__}")
    if run is not None and not run.is_complete:
        raise ExportError(f"{run.path}: run is not finished (no COMPLETE marker); "
                          "`bumpdiff train` with its config finishes it")
    return view if view is not None else RunView.open(run)


def _csv_bytes(table) -> bytes:
    buf = io.StringIO()
    table.to_csv(buf, index=False, float_format="%.9g", na_rep="")
    return buf.getvalue().encode()


def embeddings_table(view):
    """The long table of embeddings.csv for a `RunView` (a DataFrame, columns `EMBEDDING_COLUMNS`)."""
    import pandas as pd

    parts = []
    for ev, al in zip(view.evaluations(), view.aligned_embeddings):
        labels, emb = np.asarray(ev.labels, dtype=np.float64), np.asarray(ev.embedding, dtype=np.float64)
        centres = np.asarray(ev.centres, dtype=np.float64)
        n = len(labels)
        parts.append(pd.DataFrame({
            "step": np.full(n, ev.step, dtype=np.int64), "label_index": np.arange(n),
            "x": labels[:, 0], "y": labels[:, 1],
            **{f"umap_{k + 1}": emb[:, k] for k in range(3)},
            **{f"aligned_{k + 1}": np.asarray(al)[:, k] for k in range(3)},
            "bump_count": np.asarray(ev.bump_count, dtype=np.int64),
            "centre_x": centres[:, 0], "centre_y": centres[:, 1]}))
    return pd.concat(parts, ignore_index=True)[EMBEDDING_COLUMNS] if parts else pd.DataFrame(columns=EMBEDDING_COLUMNS)


def run_files(run_or_view) -> dict[str, bytes]:
    """{name: bytes} of metrics.csv, losses.csv, embeddings.csv and README.txt (in that order)
    for a finished run (a `view.RunView`, a `store.Run` or a run directory)."""
    import json

    import pandas as pd

    view = as_view(run_or_view)
    losses = np.asarray([] if view.losses is None else view.losses, dtype=np.float64)
    loss_table = pd.DataFrame({"step": np.arange(1, len(losses) + 1, dtype=np.int64), "loss": losses})
    embeddings = embeddings_table(view)
    c = view.config
    readme = README.format(run_id=view.run_id, path=view.run.path if view.run is not None else "(in memory)",
                           config=json.dumps(c.to_dict(), sort_keys=True), tap=view.tap,
                           n_labels=embeddings["label_index"].nunique() if len(embeddings) else 0,
                           n_steps=len(view.steps), size=view.image_size)
    # the run's own metrics.csv, byte for byte (verified against the manifest) when there is one
    metrics_csv = view.metrics_csv
    return {"metrics.csv": metrics_csv, "losses.csv": _csv_bytes(loss_table),
            "embeddings.csv": _csv_bytes(embeddings), "README.txt": readme.encode()}


def export_run(run_or_view, out_dir) -> list[Path]:
    """Write metrics.csv, losses.csv, embeddings.csv and README.txt for a finished run (a
    `view.RunView`, a `store.Run` or a run directory) into `out_dir`, created if needed; returns
    the paths written, in that order."""
    files = run_files(run_or_view)  # everything is computed first: a failure leaves no partial export
    out = Path(out_dir)
    for name, data in files.items():
        atomic_write_bytes(out / name, data)
    return [out / name for name in files]


# ---------------------------------------------------------------------------------------------
# the files behind a book page, linked from it
# ---------------------------------------------------------------------------------------------

# set while the book executes its pages: links are written by the book build, widgets stay static
STATIC_ENV = "BUMPDIFF_STATIC_BOOK"
PAGE_FILES_MIME = "application/vnd.bumpdiff.page-files+json"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _as_bytes(content) -> bytes:
    if isinstance(content, bytes):
        return content
    if isinstance(content, str):
        return content.encode()
    if hasattr(content, "to_csv"):  # a DataFrame (or Series)
        return _csv_bytes(content if hasattr(content, "columns") else content.to_frame())
    raise TypeError(f"a page file is bytes, str or a DataFrame; got {type(content).__name__}")


def _size_text(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{max(n / 1e3, 0.1):.1f} kB"


class DownloadLinks:
    """Links to files offered beside a page (`download_links`); `files`: {name: bytes}."""

    def __init__(self, files: dict, folder: str, caption: str):
        for name in [folder, *files]:
            if not _SAFE_NAME.match(name):
                raise ValueError(f"{name!r}: file and folder names are letters, digits, '.', '_', '-'")
        self.files = {name: _as_bytes(content) for name, content in files.items()}
        self.folder, self.caption = folder, caption

    def hrefs(self) -> list[str]:
        return [f"{self.folder}/{name}" for name in self.files]

    def _repr_html_(self) -> str:
        links = " · ".join(f'<a href="{self.folder}/{name}" download="{name}" class="bumpdiff-download">'
                           f"{name}</a> ({_size_text(len(data))})" for name, data in self.files.items())
        return f'<p class="bumpdiff-downloads">{html.escape(self.caption)}: {links}</p>'

    def _repr_markdown_(self) -> str:
        return f"{self.caption}: " + " · ".join(f"[{name}]({self.folder}/{name})" for name in self.files)

    def _repr_mimebundle_(self, include=None, exclude=None):
        packed = {name: base64.b64encode(gzip.compress(data, mtime=0)).decode() for name, data in self.files.items()}
        return {"text/html": self._repr_html_(), "text/markdown": self._repr_markdown_(),
                "text/plain": self._repr_markdown_(),
                PAGE_FILES_MIME: {"folder": self.folder, "files": packed}}

    def write(self, directory) -> list[Path]:
        """Write the files to `directory/<folder>/`; returns their paths."""
        out = Path(directory) / self.folder
        for name, data in self.files.items():
            atomic_write_bytes(out / name, data)
        return [out / name for name in self.files]


def named_tables(prefix: str, tables: dict) -> dict:
    """{key: table, or [table per seed]} -> {"<prefix>_<key>[_<i>].csv": table}, keys written
    plainly (1.0 -> "1", (0.1, 1.0, 3) -> "0.1_1_3"), for `download_links`."""
    def word(key):
        parts = key if isinstance(key, tuple) else (key,)
        return "_".join(f"{p:g}" if isinstance(p, float) else str(p) for p in parts)

    files = {}
    for key, value in tables.items():
        if isinstance(value, (list, tuple)):
            files.update({f"{prefix}_{word(key)}_{i}.csv": t for i, t in enumerate(value)})
        else:
            files[f"{prefix}_{word(key)}.csv"] = value
    return files


def download_links(files: dict, folder: str, caption: str = "Data behind this page's figures") -> DownloadLinks:
    """Offer `files` ({name: DataFrame | bytes | str}) beside the page, in `folder/`, and show links
    to them. As a cell's last value: in the book the files land next to the page (`setup`); in a
    live kernel they are written under the working directory now."""
    import os


    links = DownloadLinks(files, folder, caption)
    if os.environ.get(STATIC_ENV, "") in ("", "0"):
        links.write(Path.cwd())
    return links


def run_download_links(view, folder: str, caption: str = "Data behind this page's figures") -> DownloadLinks:
    """`download_links` of a run's export (`run_files`: metrics, losses, embeddings, README)."""
    return download_links(run_files(view), folder, caption)


def page_files_of(notebook: dict) -> list[tuple[str, dict[str, bytes]]]:
    """[(folder, {name: bytes})] carried by an executed notebook's outputs (`PAGE_FILES_MIME`)."""
    found = []
    for cell in notebook.get("cells", []):
        for out in cell.get("outputs", []):
            bundle = (out.get("data") or {}).get(PAGE_FILES_MIME)
            if not bundle:
                continue
            folder = bundle["folder"]
            files = {name: gzip.decompress(base64.b64decode(data)) for name, data in bundle["files"].items()}
            for name in [folder, *files]:
                if not _SAFE_NAME.match(name):
                    raise ValueError(f"{name!r}: not a plain file name")
            found.append((folder, files))
    return found


__all__ = ["export_run", "run_files", "embeddings_table", "as_view", "ExportError", "EMBEDDING_COLUMNS",
           "download_links", "run_download_links", "DownloadLinks", "page_files_of", "PAGE_FILES_MIME"]
