"""The storage layer beneath the run store (bumpdiff_core/runs/storage.py), one behaviour suite
run against three backends: a local folder, fsspec's in-process ``memory://`` filesystem, and a
real S3 endpoint (moto's server mode over HTTP, tests/s3_support.py)."""
from __future__ import annotations

import contextlib
import errno
import importlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
import warnings
from pathlib import Path

import pytest

from bumpdiff_core.runs import storage as storage_mod
from bumpdiff_core.runs.storage import (LocalStorage, LockTimeout, ObjectStorage, TEMP_FILE, check_key,
                                        open_storage)
from s3_support import moto_server, s3_env, s3_root  # noqa: F401  (fixtures)

BACKENDS = ["local", "memory", "s3"]
FAST_LEASES = dict(lease_ttl=5.0, lease_settle=0.05, lease_poll=0.05)


class Backend:
    """A root of one kind, and a way to open more storages on it (other workers, other options)."""

    def __init__(self, kind: str, root):
        self.kind, self.root = kind, root

    def open(self, **options) -> storage_mod.Storage:
        if self.kind == "local":
            for name in ("lease_ttl", "lease_settle", "lease_poll", "heartbeat"):
                options.pop(name, None)
            return LocalStorage(self.root, **options)
        return ObjectStorage(self.root, **{**FAST_LEASES, **options})


@pytest.fixture(params=BACKENDS)
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        yield Backend("local", tmp_path / "data")
    elif request.param == "memory":
        root = f"memory://bumpdiff-test-{uuid.uuid4().hex}/data"
        yield Backend("memory", root)
        import fsspec
        with contextlib.suppress(FileNotFoundError):
            fsspec.filesystem("memory").rm(root.replace("memory://", "/"), recursive=True)
    else:
        yield Backend("s3", request.getfixturevalue("s3_root"))


@pytest.fixture
def store(backend):
    return backend.open()


# --- bytes ---------------------------------------------------------------------------------------------------

def test_write_read_round_trip(store):
    data = bytes(range(256)) * 100
    store.write_bytes("runs/ab12/checkpoints/step_0000500.safetensors", data)
    assert store.read_bytes("runs/ab12/checkpoints/step_0000500.safetensors") == data
    store.write_bytes("runs/ab12/config.json", b'{"a": 1}\n')
    store.write_bytes("runs/ab12/config.json", b'{"a": 2}\n')  # overwrite
    assert store.read_bytes("runs/ab12/config.json") == b'{"a": 2}\n'
    store.write_bytes("runs/ab12/COMPLETE", b"")
    assert store.read_bytes("runs/ab12/COMPLETE") == b"" and store.exists("runs/ab12/COMPLETE")
    assert store.url("runs/ab12/config.json").endswith("/runs/ab12/config.json")
    if store.is_local:
        path = store.local_path("runs/ab12/config.json")
        assert path.read_bytes() == b'{"a": 2}\n' and str(path) == store.url("runs/ab12/config.json")
    else:
        assert store.local_path("runs/ab12/config.json") is None
        assert store.url("runs/ab12/config.json") == f"{store.root_url}/runs/ab12/config.json"


def test_list_exists_delete_size(store):
    for key, data in {"runs/r1/config.json": b"12345", "runs/r1/evals/step_0000001.npz": b"x" * 10,
                      "runs/r10/config.json": b"1", "sweeps/s.json": b"{}"}.items():
        store.write_bytes(key, data)
    assert store.list() == ["runs/r1/config.json", "runs/r1/evals/step_0000001.npz",
                            "runs/r10/config.json", "sweeps/s.json"]
    assert store.list("runs/r1") == ["runs/r1/config.json", "runs/r1/evals/step_0000001.npz"]  # a folder,
    assert store.list("runs/r") == [] and store.list("nowhere") == []  # not a string prefix
    assert store.exists("runs/r1/config.json") and not store.exists("runs/r1/missing.json")
    assert not store.exists("runs/r1")  # folders are implicit: exists() answers for files
    assert store.size("runs/r1/config.json") == 5 and store.size("runs/r1/evals/step_0000001.npz") == 10
    store.delete("runs/r1/config.json")
    store.delete("runs/r1/config.json")  # missing: nothing happens
    assert not store.exists("runs/r1/config.json")
    assert store.list("runs/r1") == ["runs/r1/evals/step_0000001.npz"]
    url = store.url("runs/r1/config.json")
    for missing in (lambda: store.read_bytes("runs/r1/config.json"), lambda: store.size("runs/r1/config.json")):
        with pytest.raises(FileNotFoundError) as e:
            missing()
        assert str(e.value) == f"{url}: missing" and e.value.filename == url and e.value.errno == errno.ENOENT


def test_storages_and_lock_timeouts_pickle(store):
    """Dask ships storages to workers and lock errors back to the client."""
    import pickle

    copy = pickle.loads(pickle.dumps(store))
    store.write_bytes("runs/r/config.json", b"{}")
    assert copy.read_bytes("runs/r/config.json") == b"{}" and copy.url("x") == store.url("x")
    error = pickle.loads(pickle.dumps(LockTimeout(store.url("runs/r/.lock"), "not acquired")))
    assert isinstance(error, TimeoutError) and error.url == store.url("runs/r/.lock")
    assert str(error) == f"{store.url('runs/r/.lock')}: not acquired"


BAD_KEYS = ["", "/abs/key", "a//b", "a/", "a/../b", "..", "./a", "a/./b", "a\\b", "C:/x", "a\0b"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_bad_keys_rejected_naming_the_key(store, key):
    operations = {
        "read_bytes": lambda: store.read_bytes(key), "write_bytes": lambda: store.write_bytes(key, b"x"),
        "exists": lambda: store.exists(key), "delete": lambda: store.delete(key), "size": lambda: store.size(key),
        "local_path": lambda: store.local_path(key), "lock": lambda: store.lock(key, timeout=0).__enter__(),
    }
    if key:
        operations["url"] = lambda: store.url(key)  # url("") is the root
        operations["list"] = lambda: store.list(key)
    for name, op in operations.items():
        with pytest.raises(ValueError, match=re.escape(repr(key))):
            op()
    assert store.list() == []  # nothing was written anywhere


# --- atomic overwrites -----------------------------------------------------------------------------------------

def test_overwrite_is_atomic_for_a_concurrent_reader(store):
    """A reader racing a writer that alternates two contents sees one of them, whole, every time."""
    size = 1 << 20 if store.is_local else 1 << 17
    contents = [b"a" * size, b"b" * (size + 1)]
    store.write_bytes("runs/r/metrics.csv", contents[0])
    stop, seen, errors = threading.Event(), set(), []

    writes = []

    def write():
        while not stop.is_set():
            writes.append(1)
            store.write_bytes("runs/r/metrics.csv", contents[len(writes) % 2])

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 1.0
        reads = 0
        while time.monotonic() < deadline or (len(writes) < 4 and time.monotonic() < deadline + 10):
            reads += 1
            data = store.read_bytes("runs/r/metrics.csv")
            if data not in contents:
                errors.append((len(data), data[:1], data[-1:]))
            seen.add(len(data))
    finally:
        stop.set()
        writer.join()
    assert not errors, f"torn reads: {errors[:3]}"
    assert seen <= {size, size + 1}
    assert len(writes) >= 4 and reads >= 4, (len(writes), reads)  # the race did happen


def test_local_writes_go_through_a_temporary_and_os_replace(backend, monkeypatch):
    if backend.kind != "local":
        pytest.skip("local mechanism")
    replaced = []
    real_replace = os.replace

    def spy(src, dst):
        assert TEMP_FILE.match(Path(src).name) and Path(src).parent == Path(dst).parent
        replaced.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)

    class Killed(Exception):
        pass

    def fault(point, target):
        if point == "write" and target.endswith("manifest.json") and fail["on"]:
            raise Killed  # half the data is in the temporary file

    fail = {"on": False}
    store = backend.open(fault_point=fault)
    store.write_bytes("runs/r/manifest.json", b"old manifest")
    store.write_bytes("runs/r/manifest.json", b"new manifest")
    assert [dst.name for _src, dst in replaced] == ["manifest.json", "manifest.json"]
    fail["on"] = True
    with pytest.raises(Killed):
        store.write_bytes("runs/r/manifest.json", b"a torn manifest")
    assert store.read_bytes("runs/r/manifest.json") == b"new manifest"  # untouched
    assert store.list() == ["runs/r/manifest.json"]  # no temporary left behind
    assert not [p for p in Path(backend.root).rglob("*") if TEMP_FILE.match(p.name)]


def test_object_writes_are_single_whole_puts(backend, monkeypatch):
    if backend.kind == "local":
        pytest.skip("object storage mechanism")
    store = backend.open()
    puts, opens = [], []
    real_pipe, real_open = store.fs.pipe_file, store.fs.open
    monkeypatch.setattr(store.fs, "pipe_file", lambda path, data, **kw: (puts.append((path, bytes(data))),
                                                                         real_pipe(path, data, **kw))[1])
    monkeypatch.setattr(store.fs, "open", lambda path, mode="rb", **kw: (opens.append(mode),
                                                                         real_open(path, mode, **kw))[1])
    s3_calls = []
    if backend.kind == "s3":
        real_call = store.fs._call_s3

        async def call(method, *args, **kwargs):
            s3_calls.append(method)
            return await real_call(method, *args, **kwargs)

        monkeypatch.setattr(store.fs, "_call_s3", call)
    data = os.urandom(300_000)
    store.write_bytes("runs/r/states/step_0000100.safetensors", data)
    store.write_bytes("runs/r/states/step_0000100.safetensors", data[::-1])
    assert [(p.rsplit("/", 3)[-3:], len(d)) for p, d in puts] == [(["r", "states", "step_0000100.safetensors"],
                                                                  300_000)] * 2
    assert puts[1][1] == data[::-1]
    assert all(mode in ("wb", "rb") for mode in opens), opens  # never appended, never updated in place
    if backend.kind == "s3":  # one PutObject per write: no multipart upload, no partial object
        writes = [m for m in s3_calls if m in ("put_object", "create_multipart_upload", "upload_part",
                                               "complete_multipart_upload", "copy_object")]
        assert writes == ["put_object", "put_object"], s3_calls

    class Killed(Exception):
        pass

    def fault(point, target):
        raise Killed(target)

    with pytest.raises(Killed, match=re.escape(store.url("runs/r/states/step_0000100.safetensors"))):
        backend.open(fault_point=fault).write_bytes("runs/r/states/step_0000100.safetensors", b"torn")
    assert store.read_bytes("runs/r/states/step_0000100.safetensors") == data[::-1]


# --- locks -----------------------------------------------------------------------------------------------------

def test_lock_is_exclusive_between_two_holders(backend):
    first, second = backend.open(), backend.open()  # e.g. two workers on the same data root
    waited = []
    with first.lock("runs/r/.lock", timeout=5):
        t0 = time.monotonic()
        with pytest.raises(TimeoutError) as e:
            with second.lock("runs/r/.lock", timeout=0.3, on_wait=lambda: waited.append(1)):
                pytest.fail("two holders at once")
        assert 0.25 < time.monotonic() - t0 < 5
        assert isinstance(e.value, LockTimeout)
        assert str(e.value).startswith(second.url("runs/r/.lock")), str(e.value)
        assert e.value.url.startswith(second.url("runs/r/.lock"))
        assert waited == [1]
    with second.lock("runs/r/.lock", timeout=5) as held:  # free again
        assert held.url.startswith(second.url("runs/r/.lock")) and not held.lost
    if backend.kind != "local":
        assert not second.exists("runs/r/.lock.lease")  # released leases are deleted


def test_lock_serialises_read_modify_write(backend):
    """Two threads (separate storages) increment a counter object under the lock: no update lost."""
    stores = [backend.open(lease_settle=0.25), backend.open(lease_settle=0.25)]
    stores[0].write_bytes("counter", b"0")

    def bump(store):
        for _ in range(3):
            with store.lock("counter.lock", timeout=30):
                value = int(store.read_bytes("counter"))
                time.sleep(0.01)
                store.write_bytes("counter", str(value + 1).encode())

    threads = [threading.Thread(target=bump, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].read_bytes("counter") == b"6"


def test_dead_holder_releases_a_local_lock(backend):
    if backend.kind != "local":
        pytest.skip("object storage: see the lease takeover tests")
    store = backend.open()
    code = ("import os, signal, sys\n"
            "from bumpdiff_core.runs.storage import LocalStorage\n"
            "s = LocalStorage(sys.argv[1])\n"
            "s.lock('runs/r/.lock').__enter__()\n"
            "print('held', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    result = subprocess.run([sys.executable, "-c", code, str(backend.root)], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert result.stdout.strip() == "held", result.stderr
    with store.lock("runs/r/.lock", timeout=5):
        pass


def _foreign_lease(expires: float) -> bytes:
    return json.dumps({"owner": {"host": "otherhost", "pid": 4242, "token": "f" * 32},
                       "expires": expires, "expires_utc": "then"}).encode()


def test_an_expired_lease_is_taken_over(backend):
    if backend.kind == "local":
        pytest.skip("leases are for object storage")
    store = backend.open()
    store.write_bytes("runs/r/.lock.lease", _foreign_lease(time.time() + 60))  # a live holder elsewhere
    with pytest.raises(TimeoutError, match=r"held by otherhost pid 4242"):
        with store.lock("runs/r/.lock", timeout=0.2):
            pass
    assert json.loads(store.read_bytes("runs/r/.lock.lease"))["owner"]["pid"] == 4242  # left alone
    store.write_bytes("runs/r/.lock.lease", _foreign_lease(time.time() - 1))  # its holder died
    t0 = time.monotonic()
    with store.lock("runs/r/.lock", timeout=5) as held:
        assert time.monotonic() - t0 < 2
        lease = json.loads(store.read_bytes("runs/r/.lock.lease"))
        assert lease["owner"]["token"] == held.lease.owner["token"] and lease["owner"]["pid"] == os.getpid()
        assert lease["expires"] > time.time()
    assert not store.exists("runs/r/.lock.lease")
    store.write_bytes("runs/r/.lock.lease", b"not json")  # an unreadable lease counts as expired
    with store.lock("runs/r/.lock", timeout=5):
        pass


def test_a_lease_is_not_released_by_a_non_owner(backend):
    if backend.kind == "local":
        pytest.skip("leases are for object storage")
    stalled = backend.open(lease_ttl=0.4, heartbeat=False)  # stops renewing, e.g. a paused worker
    taker = backend.open()
    with contextlib.ExitStack() as stack:
        held_a = stack.enter_context(stalled.lock("runs/r/.lock", timeout=5))
        time.sleep(0.5)  # its lease expires
        with taker.lock("runs/r/.lock", timeout=5) as held_b:
            token_b = held_b.lease.owner["token"]
            assert held_a.lease.renew() is False and held_a.lost  # it notices the takeover
            stack.close()  # the stalled holder leaves its `with`: must not delete the taker's lease
            assert json.loads(taker.read_bytes("runs/r/.lock.lease"))["owner"]["token"] == token_b
            assert storage_mod.Lease(stalled, "runs/r/.lock").release() is False  # a stranger neither
            assert json.loads(taker.read_bytes("runs/r/.lock.lease"))["owner"]["token"] == token_b
            with pytest.raises(TimeoutError):
                with stalled.lock("runs/r/.lock", timeout=0.2):
                    pass
    assert not taker.exists("runs/r/.lock.lease")  # the owner's release deletes it


def test_a_held_lease_is_renewed(backend):
    if backend.kind == "local":
        pytest.skip("leases are for object storage")
    holder, other = backend.open(lease_ttl=0.6), backend.open()
    with holder.lock("runs/r/.lock", timeout=5) as held:
        first = json.loads(holder.read_bytes("runs/r/.lock.lease"))["expires"]
        time.sleep(1.3)  # over twice the ttl: only the heartbeat keeps it
        assert json.loads(holder.read_bytes("runs/r/.lock.lease"))["expires"] > first
        with pytest.raises(TimeoutError):
            with other.lock("runs/r/.lock", timeout=0):
                pass
        assert not held.lost


def test_an_injected_lock_factory_replaces_the_builtin_lock(tmp_path):
    """e.g. ``lock_factory=distributed.Lock`` on a Dask cluster; here a threading.Lock per name."""
    locks, names = {}, []

    def factory(name):
        names.append(name)
        return locks.setdefault(name, threading.Lock())

    root = f"memory://bumpdiff-test-{uuid.uuid4().hex}/data"
    for store in (ObjectStorage(root, lock_factory=factory), LocalStorage(tmp_path, lock_factory=factory)):
        with store.lock("runs/r/.lock", timeout=1):
            with pytest.raises(LockTimeout, match="^" + re.escape(store.url("runs/r/.lock"))):
                with store.lock("runs/r/.lock", timeout=0.1):
                    pass
        assert names[-1] == store.url("runs/r/.lock")
        assert not store.exists("runs/r/.lock.lease") and not store.exists("runs/r/.lock")  # no builtin lock


# --- choosing a backend, and no fcntl ---------------------------------------------------------------------------

def test_open_storage_chooses_the_backend(tmp_path):
    assert isinstance(open_storage(tmp_path), LocalStorage) and open_storage(tmp_path).root == tmp_path
    assert open_storage(str(tmp_path)).root == tmp_path
    assert open_storage(f"file://{tmp_path}").root == tmp_path
    assert open_storage("data").root == Path("data").absolute()
    memory = open_storage("memory://somewhere/data/")
    assert isinstance(memory, ObjectStorage) and not memory.is_local
    assert memory.url("runs/x/config.json") == "memory://somewhere/data/runs/x/config.json"
    assert check_key("runs/x/config.json") == "runs/x/config.json"
    # a local user never imports fsspec (nor s3fs)
    code = ("import sys\nfrom bumpdiff_core.runs.storage import open_storage\n"
            "s = open_storage(sys.argv[1]); s.write_bytes('a/b', b'1'); assert s.read_bytes('a/b') == b'1'\n"
            "with s.lock('a/.lock', timeout=1): pass\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('fsspec', 's3fs', 'botocore', 'fcntl')]\n"
            "print(bad)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "d")], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout)
    assert not [m for m in loaded if m != "fcntl"], loaded  # fcntl may come from filelock on POSIX only


@pytest.fixture
def no_fcntl(monkeypatch):
    """A Windows-like interpreter: `import fcntl` fails; the storage module and filelock are
    imported afresh (and the originals put back afterwards)."""
    saved = {name: mod for name, mod in sys.modules.items()
             if name == "filelock" or name.startswith("filelock.") or name == storage_mod.__name__}
    package = sys.modules["bumpdiff_core.runs"]
    monkeypatch.setitem(sys.modules, "fcntl", None)
    for name in saved:
        monkeypatch.delitem(sys.modules, name)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="only soft file lock is available")
        fresh = importlib.import_module(storage_mod.__name__)
    yield fresh
    for name in [n for n in sys.modules if n == "filelock" or n.startswith("filelock.")]:
        if name not in saved:
            del sys.modules[name]
    package.storage = storage_mod  # the import bound the fresh module there


def test_storage_works_without_fcntl(no_fcntl, tmp_path):
    fresh = no_fcntl
    assert fresh is not storage_mod and "fcntl" not in vars(fresh)
    assert not fresh.filelock.has_fcntl  # filelock really saw no fcntl
    assert "import fcntl" not in Path(fresh.__file__).read_text()
    for store in (fresh.open_storage(tmp_path / "data"),
                  fresh.open_storage(f"memory://bumpdiff-test-{uuid.uuid4().hex}/data", **FAST_LEASES)):
        store.write_bytes("runs/r/config.json", b"{}")
        store.write_bytes("runs/r/config.json", b'{"x": 1}')
        assert store.read_bytes("runs/r/config.json") == b'{"x": 1}' and store.list("runs") == ["runs/r/config.json"]
        other = type(store)(store.root if store.is_local else store.root_url, **({} if store.is_local else FAST_LEASES))
        with store.lock("runs/r/.lock", timeout=2):
            with pytest.raises(TimeoutError, match="^" + re.escape(store.url("runs/r/.lock"))):
                with other.lock("runs/r/.lock", timeout=0.2):
                    pass
        with other.lock("runs/r/.lock", timeout=2):
            pass


def test_object_read_cache_is_keyed_by_content_hash(tmp_path):
    import hashlib

    root = f"memory://bumpdiff-test-{uuid.uuid4().hex}/data"
    store = ObjectStorage(root, cache_dir=tmp_path / "cache")
    old, new = b"old weights", b"new weights"
    store.write_bytes("runs/r/checkpoints/step_0000001.safetensors", old)
    old_hash, new_hash = hashlib.sha256(old).hexdigest(), hashlib.sha256(new).hexdigest()
    key = "runs/r/checkpoints/step_0000001.safetensors"
    assert store.read_bytes(key, sha256=old_hash) == old
    cached = tmp_path / "cache" / old_hash[:2] / old_hash
    assert cached.read_bytes() == old
    store.write_bytes(key, new)  # the object changes: the caller's hash (from the manifest) changes too
    assert store.read_bytes(key, sha256=new_hash) == new
    assert store.read_bytes(key, sha256=old_hash) == old  # the old hash still names the old content
    store.write_bytes(key, b"tampered")
    assert store.read_bytes(key, sha256="0" * 64) == b"tampered"  # no match: read through, not cached
    assert not (tmp_path / "cache" / "00").exists()
    cached.write_bytes(b"rotten cache")  # a damaged cache entry is never returned
    assert store.read_bytes(key, sha256=old_hash) == b"tampered"
    assert store.read_bytes(key) == b"tampered"
