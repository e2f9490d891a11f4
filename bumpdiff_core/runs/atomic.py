"""Files that are never seen half-written, and a file lock (cross-platform: no fcntl).

`atomic_write_bytes` writes to a temporary file in the target's folder (`.<name>.<random>.tmp`,
matched by `TEMP_FILE`) and renames it into place, so a reader, or a process killed mid-write,
never sees a torn file. The run store (bumpdiff_core/runs/store.py) writes every run file this way;
other outputs (sweep pages, PNGs, exports) use it too.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path

from bumpdiff_core.runs.faults import fault_point

TEMP_FILE = re.compile(r"^\..+\.tmp$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file + rename; an OSError (e.g. a full disk) names `path`."""
    path = Path(path)
    fault_point("save", str(path))
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            half = len(data) // 2
            f.write(data[:half])
            f.flush()
            fault_point("write", str(path))
            f.write(data[half:])
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(e, OSError) and e.errno is not None and not e.filename:
            raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def remove_temp_files(folder: Path, spare=lambda path: False) -> list[Path]:
    """Delete the temporary files of killed writers anywhere under `folder`, except those
    `spare(path)` keeps; call only where no writer can be at work (e.g. under its lock)."""
    removed = []
    for p in Path(folder).rglob(".*.tmp"):
        if not (p.is_file() and TEMP_FILE.match(p.name)):
            continue
        with contextlib.suppress(FileNotFoundError):  # gone meanwhile, or while `spare` looked
            if spare(p):
                continue
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def file_lock(path: Path, on_wait=None):
    """An exclusive lock on file `path` (created if missing), across processes and threads, on
    every platform (the `filelock` package: flock on POSIX, msvcrt on Windows; no fcntl here);
    `on_wait()` is called first when another holder makes this one wait."""
    from bumpdiff_core.runs.storage import LocalStorage

    path = Path(path).absolute()
    with LocalStorage(path.parent).lock(path.name, on_wait=on_wait):
        yield


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())
