"""UMAP embedding and frame alignment; numba's cache for umap's compiled code."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from bumpdiff_core.measure.manifold import align_to


def test_align_to_undoes_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    moved = 2.5 * ref @ q + np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(align_to(ref, moved), ref, atol=1e-8)


def test_umap_compiled_code_is_cached_on_disk_and_numba_is_left_as_found(tmp_path):
    """umap/pynndescent declare most numba functions without cache=True; `_import_umap` turns the
    cache on for them, so a new process does not recompile on its first fit (~9 s each)."""
    code = """
import numba, numpy as np
real = numba.njit
from bumpdiff_core.measure.manifold import umap_embed
x = np.random.default_rng(0).normal(size=(40, 16)).astype(np.float32)
a, b = umap_embed(x, n_neighbors=5), umap_embed(x, n_neighbors=5)
assert numba.njit is real, "numba.njit not restored"
assert a.shape == (40, 3) and a.dtype == np.float32 and np.array_equal(a, b)
"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "cache"))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=300)
    cached = {p.parent.name.split("_")[0] for p in (tmp_path / "cache").rglob("*.nbi")}
    assert {"umap", "pynndescent"} <= cached, cached
    umap_layouts = [p for p in (tmp_path / "cache").rglob("*.nbi") if "layouts" in p.name]
    assert umap_layouts, "umap's layout optimiser (the bulk of the first-fit JIT) was not cached"
