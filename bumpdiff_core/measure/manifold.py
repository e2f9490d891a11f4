"""The representation's shape: UMAP of trajectory-averaged activations, and frame alignment.

UMAP gets a fixed `random_state` (repeatable embeddings; it also pins UMAP to one thread).
numba's compiled code is cached under the data root so only the first process pays the JIT.
"""
from __future__ import annotations

import os
import warnings

import numpy as np


def _numba_cache() -> None:
    # numba's default OpenMP pool keeps spinning after UMAP returns and starved torch's sampling
    # 10x on 2 cores (measured: 12 s instead of 1.1 s per checkpoint); the workqueue layer sleeps.
    os.environ.setdefault("NUMBA_THREADING_LAYER", "workqueue")
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    if "NUMBA_CACHE_DIR" not in os.environ:
        import tempfile
        from pathlib import Path

        from bumpdiff_core.runs.store import data_root, is_url
        root = data_root()  # an object-store URL has no folder for it: the temp folder then
        path = Path(tempfile.gettempdir(), "bumpdiff-numba-cache") if is_url(root) else root / ".numba_cache"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = str(path)


def _import_umap():
    """`import umap`, with numba's on-disk cache switched on for umap's and pynndescent's compiled
    functions. Most of them are declared without `cache=True`, so every new process recompiled
    them on its first fit: ~9 s of JIT per run (measured), more than evaluating all its
    checkpoints. Only the decorator's default changes; numba still checks the cache against the
    source files, and a function it cannot cache just compiles as before."""
    import sys

    _numba_cache()  # numba reads its environment once, at its first compile: set it before
    if "umap" in sys.modules:
        return sys.modules["umap"]
    import numba

    real_njit, real_jit = numba.njit, numba.jit

    def with_cache(decorator):
        def wrapped(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)
        return wrapped

    numba.njit, numba.jit = with_cache(real_njit), with_cache(real_jit)
    try:
        import umap
    finally:
        numba.njit, numba.jit = real_njit, real_jit
    return umap


def umap_embed(latents: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1,
               random_state: int = 0) -> np.ndarray:
    """(n, D) activations -> (n, 3) embedding."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap = _import_umap()

        latents = np.asarray(latents, dtype=np.float32)
        if not np.isfinite(latents).all():
            latents = np.nan_to_num(latents, nan=0.0, posinf=0.0, neginf=0.0)
        reducer = umap.UMAP(n_components=3, n_neighbors=min(n_neighbors, len(latents) - 1),
                            min_dist=min_dist, random_state=random_state, init="spectral")
        from bumpdiff_core.runs.faults import fault_point
        fault_point("umap")  # tests/test_reliability*.py: kill a process mid-UMAP
        return reducer.fit_transform(latents).astype(np.float32)


def align_to(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Rotate/reflect, scale and shift `points` onto `reference` (orthogonal Procrustes).

    UMAP embeddings of different checkpoints live in arbitrary frames; aligning each to its
    neighbour makes a checkpoint slider show the manifold changing, not spinning.
    """
    from scipy.linalg import orthogonal_procrustes

    ref_c = reference - reference.mean(0)
    pts_c = points - points.mean(0)
    ref_scale = np.linalg.norm(ref_c) or 1.0
    pts_scale = np.linalg.norm(pts_c) or 1.0
    rotation, _ = orthogonal_procrustes(pts_c / pts_scale, ref_c / ref_scale)
    return (pts_c / pts_scale) @ rotation * ref_scale + reference.mean(0)


def align_sequence(embeddings: list[np.ndarray]) -> list[np.ndarray]:
    """Align each embedding to the (aligned) next one, starting from the last, most ordered frame."""
    if not embeddings:
        return []
    out = [None] * len(embeddings)
    out[-1] = embeddings[-1]
    for i in range(len(embeddings) - 2, -1, -1):
        out[i] = align_to(out[i + 1], embeddings[i])
    return out
