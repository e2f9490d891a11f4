"""Run directories: atomic writes, content hashes, safetensors, locks, lookup.

    <data root>/runs/<run_id>/
        config.json          the semantic config (its hash is run_id)
        meta.json            package versions, git commit, device, wall times
        manifest.json        size + sha256 of every file written here, checked on every read
        checkpoints/step_0000500.safetensors     weights (EMA weights when EMA is on)
        states/step_0000500.safetensors          weights + optimizer + EMA + loss log, the 2 newest (resume)
        evals/step_0000500.npz                   samples, labels, bump detection, tapped activations
        umap/step_0000500.npz                    3D UMAP embedding of the tapped activations
        metrics.csv                              one row per evaluated checkpoint
        COMPLETE                                 written last: the run is finished

Every write goes to a temporary file in the same folder and is renamed into place, so a reader
(or a process killed mid-write) never sees a torn file. Nothing here unpickles: weights go through
safetensors, tables through CSV, arrays through `np.load(allow_pickle=False)`, configs through JSON.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from .config import ConfigError, RunConfig

COMPLETE = "COMPLETE"


class StoreError(RuntimeError):
    """A problem with a file in the store; the message starts with the file's path."""


class CorruptFileError(StoreError):
    pass


def data_root() -> Path:
    return Path(os.environ.get("BUMPDIFF_DATA", "data")).absolute()


def runs_root(root: Path | None = None) -> Path:
    return (root or data_root()) / "runs"


# --------------------------------------------------------------------------------------------
# atomic writes
# --------------------------------------------------------------------------------------------

def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: Path):
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFileError(f"{path}: not valid JSON ({e})") from None


# --------------------------------------------------------------------------------------------
# a run directory
# --------------------------------------------------------------------------------------------

class Run:
    """One run directory. Writes go through `write_bytes`, which records size and sha256."""

    def __init__(self, path: Path, config: RunConfig):
        self.path = Path(path)
        self.config = config

    # -- lookup --------------------------------------------------------------------------------
    @classmethod
    def create(cls, config: RunConfig, root: Path | None = None) -> "Run":
        """Open the run for `config`, creating its folder and config.json when new."""
        path = runs_root(root) / config.run_id
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, config)
        cfg_file = path / "config.json"
        if cfg_file.exists():
            Run.open(path)  # validates the stored config against its folder name
        else:
            atomic_write_json(cfg_file, config.to_dict())
        return run

    @classmethod
    def open(cls, path) -> "Run":
        """Open an existing run directory, refusing anything that is not one."""
        path = Path(path)
        if not path.is_dir():
            raise StoreError(f"{path}: not a run directory (no such folder)")
        cfg_file = path / "config.json"
        if not cfg_file.is_file():
            raise StoreError(f"{path}: not a run directory (no config.json)")
        try:
            config = RunConfig.from_dict(read_json(cfg_file))
        except ConfigError as e:
            raise CorruptFileError(f"{cfg_file}: invalid config ({e})") from None
        except TypeError as e:
            raise CorruptFileError(f"{cfg_file}: invalid config ({e})") from None
        if config.run_id != path.name:
            raise CorruptFileError(f"{cfg_file}: config hashes to {config.run_id}, not to the folder name {path.name}")
        return cls(path, config)

    # -- files -------------------------------------------------------------------------------------
    def checkpoint_path(self, step: int) -> Path:
        return self.path / "checkpoints" / f"step_{step:07d}.safetensors"

    def eval_path(self, step: int) -> Path:
        return self.path / "evals" / f"step_{step:07d}.npz"

    def umap_path(self, step: int) -> Path:
        return self.path / "umap" / f"step_{step:07d}.npz"

    def train_state_path(self, step: int) -> Path:
        return self.path / "states" / f"step_{step:07d}.safetensors"

    def train_state_steps(self) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in (self.path / "states").glob("step_*.safetensors"))

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def is_complete(self) -> bool:
        return (self.path / COMPLETE).exists()

    def checkpoint_steps_on_disk(self) -> list[int]:
        return sorted(int(p.stem.split("_")[1]) for p in (self.path / "checkpoints").glob("step_*.safetensors"))

    # -- manifest: size + sha256 of everything written -------------------------------------------
    def _manifest(self) -> dict:
        f = self.path / "manifest.json"
        return read_json(f) if f.exists() else {}

    def write_bytes(self, path: Path, data: bytes) -> None:
        atomic_write_bytes(path, data)
        manifest = self._manifest()
        manifest[str(Path(path).relative_to(self.path))] = {
            "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        atomic_write_json(self.path / "manifest.json", manifest)

    def read_bytes(self, path: Path) -> bytes:
        """Read a file written by `write_bytes`, refusing it when size or hash differ."""
        path = Path(path)
        rel = str(path.relative_to(self.path))
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing")
        data = path.read_bytes()
        entry = self._manifest().get(rel)
        if entry is None:
            raise CorruptFileError(f"{path}: not recorded in manifest.json (not written by bumpdiff)")
        if len(data) != entry["size"]:
            raise CorruptFileError(f"{path}: truncated or extended ({len(data)} bytes, {entry['size']} recorded)")
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise CorruptFileError(f"{path}: content hash differs from the one recorded when written")
        return data

    def is_valid(self, path: Path) -> bool:
        try:
            self.read_bytes(path)
            return True
        except (OSError, StoreError):
            return False

    # -- typed helpers -------------------------------------------------------------------------------
    def save_tensors(self, path: Path, tensors: dict, metadata: dict | None = None) -> None:
        from safetensors.torch import save
        self.write_bytes(path, save({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                                    metadata=metadata))

    def load_tensors(self, path: Path) -> tuple[dict, dict]:
        """(tensors, metadata) from a verified safetensors file; never unpickles."""
        from safetensors.torch import load
        data = self.read_bytes(path)
        try:
            tensors = load(data)
            header_len = int.from_bytes(data[:8], "little")
            metadata = json.loads(data[8: 8 + header_len]).get("__metadata__") or {}
        except Exception as e:  # safetensors raises its own error types
            raise CorruptFileError(f"{path}: not a valid safetensors file ({e})") from None
        return tensors, metadata

    def save_arrays(self, path: Path, **arrays) -> None:
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        self.write_bytes(path, buf.getvalue())

    def load_arrays(self, path: Path) -> dict:
        data = self.read_bytes(path)
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except Exception as e:
            raise CorruptFileError(f"{path}: not a valid .npz file ({e})") from None

    def update_meta(self, **fields) -> None:
        f = self.path / "meta.json"
        meta = read_json(f) if f.exists() else {}
        meta.update(fields)
        atomic_write_json(f, meta)

    def mark_complete(self) -> None:
        atomic_write_json(self.path / COMPLETE, {"finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    # -- locking: one process computes a run, others wait -----------------------------------------
    @contextlib.contextmanager
    def lock(self, on_wait=None):
        lock_file = self.path / ".lock"
        with open(lock_file, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)


def list_runs(root: Path | None = None) -> list[Run]:
    runs = []
    base = runs_root(root)
    if base.is_dir():
        for p in sorted(base.iterdir()):
            if (p / "config.json").is_file():
                with contextlib.suppress(StoreError):
                    runs.append(Run.open(p))
    return runs
