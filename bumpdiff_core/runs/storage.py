"""Where the run store's bytes live: a local folder or an object store (S3, GCS, ... via fsspec).

The run store keeps every run under a *data root* (``$BUMPDIFF_DATA``). This module is the layer
beneath it: a small, explicit interface over "a place that holds whole files under '/'-separated
keys", with two implementations.

``open_storage(root)``
    A plain path (``data``, ``/scratch/bumpdiff``, ``C:\\data``) or a ``file://`` URL gives a
    `LocalStorage`; any other fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``memory://...``)
    gives an `ObjectStorage`. fsspec is imported only for the latter, so a local user never needs
    s3fs and friends.

Keys
    '/'-separated paths relative to the root (``runs/<run_id>/config.json``). Absolute keys,
    ``..`` or ``.`` segments, empty segments (``a//b``, ``a/``), backslashes and NUL are refused
    with a ValueError naming the key, so a key can never escape the root on any platform.
    Folders are implicit (object stores have none): `exists` answers for files only; a "folder"
    exists when `list(prefix)` is non-empty.

Writes are whole and atomic
    `write_bytes` never lets a reader see a torn file. Locally: a temporary file in the target's
    folder (``.<name>.<random>.tmp``, matched by `TEMP_FILE`), flushed, fsync'ed and renamed into
    place with ``os.replace`` (the folder is fsync'ed too, where the platform allows). On an object
    store: one whole-object put (S3 makes an object visible only once its put, or its multipart
    upload, completes); nothing is ever appended or written in parts that a reader could see.
    A read-modify-write (e.g. a manifest update) is therefore: read the object, change it in
    memory, `write_bytes` the whole new content, under a `lock` when several writers may race.

Locks
    ``with storage.lock(key, timeout=None, on_wait=None) as held: ...`` is exclusive across
    processes and machines that share the root.

    * `LocalStorage`: the cross-platform ``filelock`` package (flock on POSIX, msvcrt on Windows);
      this module never imports fcntl. A holder that dies releases its lock with its process.
    * `ObjectStorage`: a *lease object* ``<key>.lease`` (JSON: owner host, pid, a random token,
      and an expiry time in seconds since the epoch). To acquire: read the lease; when it is absent,
      expired or unreadable, write our own, wait ``lease_settle`` seconds, re-read it and own the
      lock if it still carries our token, else keep waiting. While held, a daemon thread renews the
      lease every ``lease_ttl / 3`` seconds; release deletes the lease only if it is still ours.
      A holder that dies stops renewing, and its lease is taken over once expired.

      The race, and why it is harmless here: object stores offer no compare-and-swap through the
      plain fsspec interface, so two workers that both read "absent/expired" and both write are
      resolved by "last writer wins" after the settle time. A writer whose read-to-put gap exceeds
      the settle time (or a holder paused longer than the lease ttl, or clocks skewed by more than
      the ttl) can still end up believing it holds the lock alongside another. For the run store
      that costs compute but loses nothing: run ids are content hashes of the config, training is
      deterministic, and every file is written as a whole object, so two concurrent computations
      of the same run write the same bytes and the last complete put of each file stands.

    Both accept ``lock_factory``: a callable ``name -> lock`` with ``acquire(blocking=..., timeout=...)
    -> bool`` and ``release()`` (``distributed.Lock`` and ``threading.Lock`` both fit). When given,
    `lock` uses it with ``name = storage.url(key)`` instead of the built-in mechanism, e.g.
    ``ObjectStorage(url, lock_factory=distributed.Lock)`` on a Dask cluster, whose scheduler then
    serialises the workers exactly.

    A lock not acquired within ``timeout`` seconds raises `LockTimeout` (a TimeoutError) whose
    message starts with the lock's URL.

Errors name locations
    `url(key)` is the human-readable full location of a key: the absolute local path for
    `LocalStorage` (``/data/runs/ab12/config.json``, as in today's messages), the root URL as given
    plus the key for `ObjectStorage` (``s3://bucket/data/runs/ab12/config.json``). A missing key
    raises FileNotFoundError whose ``filename`` and message carry that URL.

Optional read cache (object storage)
    ``ObjectStorage(url, cache_dir=...)`` keeps local copies of objects read with
    ``read_bytes(key, sha256=<expected hash>)``, keyed by that content hash (never by mtime):
    a cached copy is used only when its bytes still hash to it, and a downloaded object is cached
    only when it does. Without ``sha256`` (or without a cache_dir) every read goes to the store.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Iterator

import filelock

__all__ = ["Storage", "LocalStorage", "ObjectStorage", "Lease", "LockTimeout", "Missing", "open_storage",
           "check_key", "TEMP_FILE", "LEASE_SUFFIX"]

TEMP_FILE = re.compile(r"^\..+\.tmp$")  # LocalStorage's in-flight temporaries: .<name>.<random>.tmp
LEASE_SUFFIX = ".lease"
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")  # >= 2 letters: "C://x" is a Windows drive
_CHAINED = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]+::")  # fsspec URL chaining, e.g. simplecache::s3://

FaultPoint = Callable[[str, str], None]  # (point, target): the store's fault injection hook


class LockTimeout(TimeoutError):
    """A lock not acquired in time; ``url`` is the lock's location, which starts the message."""

    def __init__(self, url: str, message: str):
        super().__init__(f"{url}: {message}")
        self.url, self.reason = url, message

    def __reduce__(self):  # picklable (Dask sends exceptions between processes)
        return type(self), (self.url, self.reason)


def check_key(key: str, *, allow_root: bool = False) -> str:
    """`key` when it is a valid relative '/'-separated key, else ValueError naming it."""
    if not isinstance(key, str):
        raise ValueError(f"invalid storage key {key!r}: not a string")
    if key == "" and allow_root:
        return key
    problem = None
    if key == "":
        problem = "empty"
    elif key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        problem = "absolute (keys are relative to the data root)"
    elif "\\" in key or "\0" in key:
        problem = "contains a backslash or NUL (use '/' between segments)"
    else:
        parts = key.split("/")
        if any(p == "" for p in parts):
            problem = "has an empty segment"
        elif any(p in (".", "..") for p in parts):
            problem = "has a '.' or '..' segment"
    if problem:
        raise ValueError(f"invalid storage key {key!r}: {problem}")
    return key


def _no_fault(point: str, target: str) -> None:  # module level: storages stay picklable (Dask)
    return None


class Missing(FileNotFoundError):
    """A missing key: a FileNotFoundError (errno ENOENT, ``filename`` the key's URL) whose message
    is "<url>: missing", in the store's style of messages that start with the location."""

    def __str__(self) -> str:
        return f"{self.filename}: missing"


def _missing(url: str) -> FileNotFoundError:
    return Missing(errno.ENOENT, os.strerror(errno.ENOENT), url)


class _Held:
    """What `Storage.lock` yields: the lock's URL and, for leases, whether it was lost meanwhile."""

    def __init__(self, url: str, lease: "Lease | None" = None):
        self.url, self.lease = url, lease

    @property
    def lost(self) -> bool:
        return bool(self.lease and self.lease.lost)


class Storage:
    """A root holding whole files under '/'-separated keys (see the module docstring)."""

    is_local: bool = False

    def __init__(self, *, lock_factory: Callable[[str], object] | None = None,
                 fault_point: FaultPoint | None = None):
        self.lock_factory = lock_factory
        self._fault = fault_point or _no_fault

    # -- the interface ------------------------------------------------------------------------------
    def url(self, key: str) -> str:
        """The full location of `key` for messages (`url("")` is the root itself)."""
        raise NotImplementedError

    def read_bytes(self, key: str, sha256: str | None = None) -> bytes:
        """The whole content of `key`; FileNotFoundError naming its URL when missing. `sha256`
        (the expected content hash, when the caller knows it) only serves a read cache."""
        raise NotImplementedError

    def write_bytes(self, key: str, data: bytes) -> None:
        """Replace `key` with `data` atomically: readers see the old or the new content, whole."""
        raise NotImplementedError

    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys (relative to the root, usable with `read_bytes`) of every file at or under
        the folder `prefix` ("" for all); [] when there is none."""
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is missing."""
        raise NotImplementedError

    def size(self, key: str) -> int:
        raise NotImplementedError

    def local_path(self, key: str) -> Path | None:
        """The real file of `key` for local storage (for libraries that want a path), else None."""
        check_key(key)
        return None

    @contextlib.contextmanager
    def lock(self, key: str, timeout: float | None = None, on_wait: Callable[[], None] | None = None
             ) -> Iterator[_Held]:
        """Exclusive lock named by `key`, held for the `with` block. `timeout` None waits forever;
        `on_wait()` is called once first when another holder makes this one wait; LockTimeout
        (a TimeoutError starting with the lock's URL) when not acquired within `timeout` s."""
        check_key(key)
        if self.lock_factory is None:
            with self._native_lock(key, timeout, on_wait) as held:
                yield held
            return
        url = self.url(key)
        lk = self.lock_factory(url)
        if not lk.acquire(blocking=False):
            if on_wait is not None:
                on_wait()
            ok = lk.acquire() if timeout is None else lk.acquire(timeout=max(timeout, 0))
            if not ok:
                raise LockTimeout(url, f"lock not acquired within {timeout} s (held through {lk!r})")
        try:
            yield _Held(url)
        finally:
            lk.release()

    def _native_lock(self, key, timeout, on_wait):
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _join(prefix: str, key: str) -> str:
        return f"{prefix}/{key}" if prefix else key

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url('')!r})"


# --- a local folder -----------------------------------------------------------------------------------

class LocalStorage(Storage):
    """A folder on a local (or shared POSIX/SMB) disk: today's behaviour of the run store."""

    is_local = True

    def __init__(self, root: str | os.PathLike, **kwargs):
        super().__init__(**kwargs)
        self.root = Path(root).absolute()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def url(self, key: str) -> str:
        return str(self.root if key == "" else self._path(key))

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def read_bytes(self, key: str, sha256: str | None = None) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise _missing(str(path)) from None

    def write_bytes(self, key: str, data: bytes) -> None:
        """Temporary file in the same folder + flush + fsync + os.replace (+ fsync of the folder);
        an OSError (e.g. a full disk) names the target; a failed write leaves no temporary."""
        path = self._path(key)
        data = bytes(data)
        self._fault("save", str(path))
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                half = len(data) // 2
                f.write(data[:half])
                f.flush()
                self._fault("write", str(path))
                f.write(data[half:])
                f.flush()
                os.fsync(f.fileno())
            _replace(tmp, path)
        except BaseException as e:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            if isinstance(e, OSError) and e.errno is not None and not e.filename:
                raise type(e)(e.errno, e.strerror or str(e), str(path)) from None
            raise
        with contextlib.suppress(OSError, AttributeError):  # make the rename durable (not on Windows)
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        check_key(prefix, allow_root=True)
        base = self.root.joinpath(*prefix.split("/")) if prefix else self.root
        if base.is_file():
            return [prefix]
        keys = []
        for folder, _dirs, files in os.walk(base):
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in files:
                keys.append(name if rel == "." else f"{rel}/{name}")
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise _missing(str(path)) from None

    @contextlib.contextmanager
    def _native_lock(self, key, timeout, on_wait):
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        lk = filelock.FileLock(str(path))
        try:
            lk.acquire(timeout=0)
        except filelock.Timeout:
            if on_wait is not None:
                on_wait()
            try:
                lk.acquire(timeout=-1 if timeout is None else max(timeout, 0))
            except filelock.Timeout:
                raise LockTimeout(str(path), f"lock not acquired within {timeout} s "
                                             "(held by another process)") from None
        try:
            yield _Held(str(path))
        finally:
            lk.release()


def _replace(src: str, dst: Path) -> None:
    """os.replace; on Windows retried briefly while a reader holds the target open."""
    for attempt in range(50):
        try:
            os.replace(src, dst)
            return
        except PermissionError:
            if os.name != "nt" or attempt == 49:
                raise
            time.sleep(0.02)


# --- an object store through fsspec ---------------------------------------------------------------------

class ObjectStorage(Storage):
    """A prefix in an object store (any fsspec filesystem: s3://, gs://, az://, memory://, ...).

    Endpoints and credentials come from the filesystem's standard configuration: for S3 that is
    botocore's (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``, ...), which s3fs
    honours. `storage_options` go to fsspec unchanged, for anything else. The bucket must exist.
    Listing caches of the filesystem are dropped before every metadata query, because other
    processes change the store behind its back.
    """

    is_local = False

    def __init__(self, root: str, *, storage_options: dict | None = None, cache_dir=None,
                 lease_ttl: float = 120.0, lease_settle: float = 1.0, lease_poll: float = 1.0,
                 heartbeat: bool = True, **kwargs):
        super().__init__(**kwargs)
        from fsspec.core import url_to_fs  # lazily: local users need no fsspec backends

        self.root_url = str(root).rstrip("/")
        self.fs, self.root = url_to_fs(self.root_url, **(storage_options or {}))
        self.root = self.root.rstrip("/")
        self.cache_dir = Path(cache_dir).absolute() if cache_dir is not None else None
        if lease_ttl <= 0 or lease_settle < 0 or lease_poll <= 0:
            raise ValueError("lease_ttl and lease_poll must be > 0, lease_settle >= 0")
        self.lease_ttl, self.lease_settle, self.lease_poll = lease_ttl, lease_settle, lease_poll
        self.heartbeat = heartbeat

    def _path(self, key: str) -> str:
        return self._join(self.root, check_key(key))

    def url(self, key: str) -> str:
        return self.root_url if key == "" else f"{self.root_url}/{check_key(key)}"

    def _fresh(self, path: str) -> None:
        with contextlib.suppress(Exception):
            self.fs.invalidate_cache(path)

    def read_bytes(self, key: str, sha256: str | None = None) -> bytes:
        path = self._path(key)
        cached = self._cache_file(sha256)
        if cached is not None:
            with contextlib.suppress(OSError):
                data = cached.read_bytes()
                if hashlib.sha256(data).hexdigest() == sha256:
                    return data
        try:
            data = self.fs.cat_file(path)
        except FileNotFoundError:
            raise _missing(self.url(key)) from None
        if cached is not None and hashlib.sha256(data).hexdigest() == sha256:
            with contextlib.suppress(OSError):
                LocalStorage(self.cache_dir).write_bytes(cached.relative_to(self.cache_dir).as_posix(), data)
        return data

    def _cache_file(self, sha256: str | None) -> Path | None:
        if self.cache_dir is None or not sha256 or not re.fullmatch(r"[0-9a-f]{64}", sha256):
            return None
        return self.cache_dir / sha256[:2] / sha256

    def write_bytes(self, key: str, data: bytes) -> None:
        """One whole-object put (``fs.pipe_file``): never appended, never visible half-written."""
        self._fault("save", self.url(key))
        self._put(key, data)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            self.fs.pipe_file(path, bytes(data))
        except OSError as e:
            if e.errno is not None and not e.filename:
                raise type(e)(e.errno, e.strerror or str(e), self.url(key)) from None
            raise
        finally:
            self._fresh(path)

    def exists(self, key: str) -> bool:
        path = self._path(key)
        self._fresh(path)
        return bool(self.fs.isfile(path))

    def list(self, prefix: str = "") -> list[str]:
        check_key(prefix, allow_root=True)
        base = self._join(self.root, prefix)
        self._fresh(base)
        try:
            found = self.fs.find(base, withdirs=False)
        except FileNotFoundError:
            return []
        start = self.fs._strip_protocol(self.root).rstrip("/")
        keys = set()
        for p in found:
            p = self.fs._strip_protocol(p)
            rel = p[len(start):].lstrip("/") if start else p.lstrip("/")
            if rel and not rel.endswith("/") and (not prefix or rel == prefix or rel.startswith(prefix + "/")):
                keys.add(rel)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass
        finally:
            self._fresh(path)

    def size(self, key: str) -> int:
        path = self._path(key)
        self._fresh(path)
        try:
            if not self.fs.isfile(path):
                raise FileNotFoundError(path)
            return int(self.fs.size(path))
        except FileNotFoundError:
            raise _missing(self.url(key)) from None

    @contextlib.contextmanager
    def _native_lock(self, key, timeout, on_wait):
        lease = Lease(self, key)
        lease.acquire(timeout, on_wait)
        try:
            if self.heartbeat:
                lease.start_heartbeat()
            yield _Held(lease.url, lease)
        finally:
            lease.release()


class Lease:
    """A lease object ``<key>.lease`` in an `ObjectStorage` (see the module docstring).

    ``owner`` is {"host", "pid", "token"}; the random token alone identifies the holder, so two
    leases of one process (two threads, two `lock` calls) are distinct owners."""

    def __init__(self, storage: ObjectStorage, key: str, ttl: float | None = None,
                 settle: float | None = None, poll: float | None = None):
        self.storage, self.key = storage, check_key(key) + LEASE_SUFFIX
        self.url = storage.url(self.key)
        self.ttl = storage.lease_ttl if ttl is None else ttl
        self.settle = storage.lease_settle if settle is None else settle
        self.poll = storage.lease_poll if poll is None else poll
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}
        self.held = self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()  # the heartbeat's renewals vs release

    # -- the lease object ------------------------------------------------------------------------------
    def read(self) -> dict | None:
        """The current lease: None when absent; {} when unreadable (treated as expired)."""
        try:
            record = json.loads(self.storage.read_bytes(self.key))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError):
            return {}
        return record if isinstance(record, dict) else {}

    @staticmethod
    def _token(record: dict | None):
        owner = (record or {}).get("owner")
        return owner.get("token") if isinstance(owner, dict) else None

    @staticmethod
    def expired(record: dict | None, now: float | None = None) -> bool:
        if record is None:
            return True
        expires = record.get("expires")
        return not isinstance(expires, (int, float)) or expires <= (time.time() if now is None else now)

    def _write(self) -> None:
        now = time.time()
        record = {"owner": self.owner, "expires": now + self.ttl, "ttl": self.ttl,
                  "written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
                  "expires_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + self.ttl))}
        self.storage._put(self.key, (json.dumps(record, sort_keys=True) + "\n").encode())  # no fault point

    def is_ours(self, record: dict | None) -> bool:
        return self._token(record) == self.owner["token"]

    @staticmethod
    def describe(record: dict | None) -> str:
        if not record:
            return "an unreadable lease"
        owner = record.get("owner") if isinstance(record.get("owner"), dict) else {}
        return (f"held by {owner.get('host', '?')} pid {owner.get('pid', '?')} until "
                f"{record.get('expires_utc', record.get('expires', '?'))}")

    # -- acquire, renew, release -------------------------------------------------------------------------
    def acquire(self, timeout: float | None = None, on_wait: Callable[[], None] | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + max(timeout, 0)
        waited = False
        while True:
            current = self.read()
            if self.expired(current) or self.is_ours(current):
                self._write()
                if self.settle:
                    time.sleep(self.settle)
                current = self.read()
                if self.is_ours(current):  # still ours after the settle time: last writer won
                    self.held, self.lost = True, False
                    return
            if deadline is not None and time.monotonic() >= deadline:
                raise LockTimeout(self.url, f"lock not acquired within {timeout} s ({self.describe(current)})")
            if not waited and on_wait is not None:
                on_wait()
            waited = True
            pause = self.poll if deadline is None else min(self.poll, max(deadline - time.monotonic(), 0))
            time.sleep(pause)

    def renew(self) -> bool:
        """Extend the lease when it is still ours; else mark it lost. Whether it is still ours."""
        with self._mutex:
            if not self.held:
                return False
            if self.is_ours(self.read()):
                self._write()
                return True
            self.lost = True
            print(f"warning: {self.url}: lease taken over by another worker; this one keeps going "
                  "(a duplicate computation writes the same bytes)", file=sys.stderr, flush=True)
            return False

    def start_heartbeat(self) -> None:
        def beat():
            while not self._stop.wait(self.ttl / 3):
                try:
                    if not self.renew():
                        return
                except Exception as e:  # a network hiccup: try again next beat
                    print(f"warning: {self.url}: lease renewal failed ({e})", file=sys.stderr, flush=True)
        self._thread = threading.Thread(target=beat, name=f"lease {self.url}", daemon=True)
        self._thread.start()

    def release(self) -> bool:
        """Stop renewing; delete the lease only if it is still ours. Whether it was deleted."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(self.ttl, 1.0))
        with self._mutex:
            self.held = False
            if self.is_ours(self.read()):
                self.storage.delete(self.key)
                return True
            return False


# --- choosing one ------------------------------------------------------------------------------------------

def open_storage(root: str | os.PathLike, **options) -> Storage:
    """`LocalStorage` for a plain path or a ``file://`` / ``local://`` URL, `ObjectStorage` for
    any other fsspec URL. `options` go to the chosen class (e.g. ``lock_factory``, ``fault_point``;
    ``storage_options``, ``cache_dir``, ``lease_ttl`` ... for object storage only)."""
    if isinstance(root, os.PathLike):
        return LocalStorage(root, **options)
    root = str(root)
    m = _URL.match(root)
    if m and m.group(1).lower() in ("file", "local"):
        rest = root[m.end():]
        if re.match(r"^/[A-Za-z]:", rest):  # file:///C:/data
            rest = rest[1:]
        return LocalStorage(rest or "/", **options)
    if m or _CHAINED.match(root):
        return ObjectStorage(root, **options)
    return LocalStorage(root, **options)
