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
with its path rather than exported. Book pages call `export_run(view, dir)` to put the files next to
the page.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from .store import Run, StoreError, atomic_write_bytes


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
    from .view import RunView

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


def export_run(run_or_view, out_dir) -> list[Path]:
    """Write metrics.csv, losses.csv, embeddings.csv and README.txt for a finished run (a
    `view.RunView`, a `store.Run` or a run directory) into `out_dir`, created if needed; returns
    the paths written, in that order."""
    import json

    import pandas as pd

    view = as_view(run_or_view)
    out = Path(out_dir)
    losses = np.asarray([] if view.losses is None else view.losses, dtype=np.float64)
    loss_table = pd.DataFrame({"step": np.arange(1, len(losses) + 1, dtype=np.int64), "loss": losses})
    embeddings = embeddings_table(view)
    c = view.config
    readme = README.format(run_id=view.run_id, path=view.run.path if view.run is not None else "(in memory)",
                           config=json.dumps(c.to_dict(), sort_keys=True), tap=view.tap,
                           n_labels=embeddings["label_index"].nunique() if len(embeddings) else 0,
                           n_steps=len(view.steps), size=view.image_size)
    # the run's own metrics.csv, byte for byte (verified against the manifest) when there is one
    metrics_csv = view.run.read_bytes(view.run.metrics_path) if view.run is not None else _csv_bytes(view.table)
    files = [(out / "metrics.csv", metrics_csv), (out / "losses.csv", _csv_bytes(loss_table)),
             (out / "embeddings.csv", _csv_bytes(embeddings)), (out / "README.txt", readme.encode())]
    for path, data in files:  # everything is computed first: a failure leaves no partial export
        atomic_write_bytes(path, data)
    return [path for path, _ in files]


__all__ = ["export_run", "embeddings_table", "as_view", "ExportError", "EMBEDDING_COLUMNS"]
