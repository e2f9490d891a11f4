"""The run store on object storage (an S3 endpoint: moto's server mode over HTTP, started here),
and a sweep on a real multi-process Dask cluster whose workers share no disk with the client or
with each other; one worker is killed mid-training. Also: the store and the CLI without fcntl.

The cluster test (`@pytest.mark.cluster`) runs `bumpdiff sweep book-tiny` once (about 2-3 min on
2 cores); the others take seconds once the session's `tiny_run` exists.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import bumpdiff_command
from s3_support import moto_server, s3_env, s3_root  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _flip(data: bytes, at: int | None = None) -> bytes:
    at = len(data) // 2 if at is None else at
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1:]


def _upload(run_dir: Path, url: str) -> None:
    """Copy a finished local run folder into the object store, file by file (no lock files)."""
    from bumpdiff_core.runs.store import open_location

    storage = open_location(url)
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and not rel.startswith(".") and "/." not in rel:
            storage.write_bytes(rel, path.read_bytes())


# --- no fcntl (Windows) -------------------------------------------------------------------------------

def test_cli_and_store_work_without_fcntl(tmp_path):
    """A Windows-like interpreter: `import fcntl` fails. The CLI imports, and a run's files, its
    manifest and its lock work on a local data root."""
    code = (
        "import sys; sys.modules['fcntl'] = None\n"
        "import bumpdiff_core.cli\n"
        "from bumpdiff_core.config import profile_config\n"
        "from bumpdiff_core.runs.store import Run\n"
        "from bumpdiff_core.runs.atomic import file_lock\n"
        f"run = Run.create_or_open(profile_config('tiny'), {str(tmp_path)!r})\n"
        "with run.lock():\n"
        "    run.save_arrays(run.eval_path(0), x=__import__('numpy').arange(3))\n"
        "    run.mark_complete()\n"
        "with file_lock(run.path / 'other.lock'):\n"
        "    pass\n"
        "assert list(run.load_arrays(run.eval_path(0))['x']) == [0, 1, 2] and run.is_complete\n"
        "assert not run.verify() and Run.open(run.path).config == run.config\n"
        "assert 'fcntl' not in vars(sys.modules['bumpdiff_core.runs.atomic'])\n"
        "print('ok', sys.modules['fcntl'])\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok None"


# --- the store on S3 -----------------------------------------------------------------------------------

def test_a_run_on_s3_reads_like_a_local_one_and_refuses_flipped_bytes_with_its_url(tiny_run, s3_root, capsys,
                                                                                    monkeypatch, tmp_path):
    """A finished run put into a bucket opens and reads like the local one; an object with a byte
    flipped is refused with its s3:// URL; the damage policy then applies as locally: a damaged
    evaluation is recomputed by `ensure_run`, a damaged checkpoint is refused by `bumpdiff
    evaluate` and regenerated, byte for byte, by `bumpdiff train`; a damaged config is refused."""
    from bumpdiff_core.execute.pipeline import ensure_run
    from bumpdiff_core.results.view import completed_view
    from bumpdiff_core.runs.store import CorruptFileError, Run, RunLayout

    url = str(RunLayout.of(tiny_run.config.run_id, s3_root).path)
    assert url == f"{s3_root}/runs/{tiny_run.config.run_id}"
    _upload(tiny_run.path, url)
    run = Run.open(url)
    assert run.is_complete and not run.verify() and not run.is_local
    assert run.train_state_steps() == tiny_run.train_state_steps()
    assert completed_view(tiny_run.config, s3_root).table.equals(completed_view(tiny_run.config, tiny_run.path.parents[1]).table)

    # a derived file (an evaluation): refused on read with its URL, recomputed by ensure_run
    ev = run.eval_path(20)
    run.storage.write_bytes(run.key(ev), _flip(ev.read_bytes()))
    monkeypatch.setenv("BUMPDIFF_CACHE", str(tmp_path / "cache"))  # a machine that has not read it yet
    run = Run.open(url)
    ev = run.eval_path(20)
    with pytest.raises(CorruptFileError, match=f"^{str(ev)}: content hash differs"):
        run.load_arrays(ev)
    assert [str(p) for p, _ in run.verify()] == [str(ev)]
    capsys.readouterr()
    again = ensure_run(tiny_run.config, threads=1, progress=False, root=s3_root)
    assert f"warning: {ev}: content hash differs" in capsys.readouterr().out
    assert not again.verify() and again.read_bytes(run.metrics_path) == tiny_run.read_bytes(tiny_run.metrics_path)

    # training output (the final checkpoint): `evaluate` refuses it, `train` regenerates it
    ckpt = run.checkpoint_path(60)
    weights = ckpt.read_bytes()
    run.storage.write_bytes(run.key(ckpt), _flip(weights))
    env = dict(os.environ, BUMPDIFF_DATA=s3_root)
    proc = subprocess.run(bumpdiff_command() + ["evaluate", url, "--threads", "1", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and f"{ckpt}: content hash differs" in proc.stderr, proc.stderr
    assert "`bumpdiff train`" in proc.stderr
    proc = subprocess.run(bumpdiff_command() + ["train", "tiny", "--threads", "1", "--quiet"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert f"warning: {ckpt}: content hash differs" in proc.stdout and proc.stdout.strip().endswith(url)
    assert ckpt.read_bytes() == weights and not Run.open(url).verify()

    # config.json: refused with its URL, never guessed
    cfg = run.config_path
    cfg.write_bytes(cfg.read_bytes().replace(b'"seed": 0', b'"seed": 7'))
    with pytest.raises(CorruptFileError, match=f"^{cfg}: config hashes to"):
        Run.open(url)


def test_object_store_lock_is_a_lease_that_a_dead_holder_loses(s3_root, monkeypatch):
    """The run lock on S3 is a lease object: held, it makes others wait; a holder that stops
    renewing (dies) loses it once the lease expires."""
    from bumpdiff_core.config import profile_config
    from bumpdiff_core.runs.storage import LockTimeout
    from bumpdiff_core.runs.store import LEASE_TTL_ENV, Run

    monkeypatch.setenv(LEASE_TTL_ENV, "3")
    run = Run.create_or_open(profile_config("tiny"), s3_root)
    assert run.storage.lease_ttl == 3
    with run.lock() as held:
        assert run.storage.exists(".lock.lease") and held.url.endswith("/.lock.lease")
        with pytest.raises(LockTimeout, match=f"^{run.storage.url('.lock.lease')}: lock not acquired"):
            with run.storage.lock(".lock", timeout=0.5):
                pass
    assert not run.storage.exists(".lock.lease")
    # a dead holder: its lease stays, unrenewed; the next one takes it over after the ttl
    dead = json.dumps({"owner": {"host": "gone", "pid": 1, "token": "x"}, "expires": time.time() + 2}).encode()
    run.storage.write_bytes(".lock.lease", dead)
    waited = []
    started = time.monotonic()
    with run.lock(on_wait=lambda: waited.append(True)):
        assert time.monotonic() - started >= 1.5 and waited


# --- a sweep on a cluster without a shared disk ------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and everything it started (papermill, the kernel, which runs in a session
    of its own): what the loss of its machine does."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.send_signal(signal.SIGKILL)


class Cluster:
    """`dask scheduler` + `dask worker` processes (one thread each), each started in an empty
    folder of its own, with the S3 endpoint in their environment and no BUMPDIFF_DATA."""

    def __init__(self, tmp: Path, env: dict):
        self.tmp, self.env, self.workers = tmp, env, {}
        port = _free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        (tmp / "scheduler").mkdir()
        self.scheduler = self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                                   "--no-dashboard"])

    def _start(self, name: str, args: list) -> subprocess.Popen:
        cwd = self.tmp / name
        cwd.mkdir(exist_ok=True)
        return subprocess.Popen([str(BIN / "dask"), *args], env=self.env, cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=open(self.tmp / f"{name}.log", "w"))

    def add_worker(self, name: str) -> Path:
        self.workers[name] = self._start(name, ["worker", self.address, "--name", name, "--nthreads", "1",
                                                "--no-nanny", "--host", "127.0.0.1", "--no-dashboard",
                                                "--local-directory", str(self.tmp / name)])
        return self.tmp / name

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        deadline = time.time() + 90
        while True:  # the scheduler needs a moment before it accepts connections
            try:
                with Client(self.address, timeout=5) as client:
                    client.wait_for_workers(n, timeout=90)
                return
            except (OSError, TimeoutError):
                if time.time() > deadline:
                    raise
                time.sleep(0.5)

    def worker_running(self, key_part: str) -> str | None:
        """The name of the worker processing the task whose key contains `key_part`."""
        from distributed import Client

        with Client(self.address, timeout=10) as client:
            names = {a: w["name"] for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
            for address, keys in client.processing().items():
                if any(key_part in str(k) for k in keys):
                    return names.get(address)
        return None

    def close(self) -> None:
        for p in [*self.workers.values(), self.scheduler]:  # nothing left to save: no graceful wait
            _kill_tree(p.pid)
            p.wait()


@pytest.fixture(scope="module")
def s3_sweep(moto_server, tmp_path_factory):
    """`bumpdiff sweep book-tiny --scheduler ...` with BUMPDIFF_DATA=s3://... from a client folder;
    the worker training the main run is killed (with its kernel) once its step-20 train state is
    in the bucket, and a fresh worker joins in a third empty folder."""
    import s3fs

    from bumpdiff_core.config import profile_config

    tmp = tmp_path_factory.mktemp("s3_sweep")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BUMPDIFF_"))}
    env.update(moto_server.env, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
               BUMPDIFF_LEASE_TTL="6",  # a dead worker's run lock is taken over after 6 s
               NUMBA_CACHE_DIR=str(tmp / "numba_cache"))
    bucket = f"sweep-{uuid.uuid4().hex[:16]}"
    root = f"s3://{bucket}/data"
    with pytest.MonkeyPatch.context() as mp:
        for var, value in moto_server.env.items():
            mp.setenv(var, value)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir(bucket)
        cluster = Cluster(tmp, env)
        try:
            dirs = [cluster.add_worker("w0"), cluster.add_worker("w1")]
            cluster.wait_for_workers(2)
            client_dir = tmp / "client"
            client_dir.mkdir()
            main_id = profile_config("tiny").run_id
            started = time.time()
            sweep = subprocess.Popen(bumpdiff_command() + ["sweep", "book-tiny", "--scheduler", cluster.address,
                                                           "--out", "book", "--data", root],
                                     env=env, cwd=client_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
            state = f"{bucket}/data/runs/{main_id}/states/step_0000020.safetensors"
            complete = f"{bucket}/data/runs/{main_id}/COMPLETE"
            killed = None
            deadline = time.time() + 300
            while sweep.poll() is None and time.time() < deadline:
                fs.invalidate_cache()
                if fs.exists(state):
                    victim = cluster.worker_running(f"run-{main_id}")
                    if victim is not None:
                        at_kill = {"complete": fs.exists(complete),
                                   "states": sorted(p.rsplit("/", 1)[-1] for p in fs.ls(state.rsplit("/", 1)[0]))}
                        _kill_tree(cluster.workers[victim].pid)
                        killed = {"worker": victim, **at_kill}
                        dirs.append(cluster.add_worker("w2"))  # the cluster replaces the lost machine
                        break
                time.sleep(0.2)
            stdout, stderr = sweep.communicate(timeout=600)
            yield {"root": root, "bucket": bucket, "fs": fs, "code": sweep.returncode, "stdout": stdout,
                   "stderr": stderr, "seconds": time.time() - started, "killed": killed, "main_id": main_id,
                   "out": client_dir / "book", "worker_dirs": dirs, "env": env, "tmp": tmp}
        finally:
            cluster.close()
            with contextlib.suppress(Exception):
                fs.rm(bucket, recursive=True)
            s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.cluster
def test_sweep_on_s3_with_workers_in_empty_folders_and_a_report_from_a_third(s3_sweep):
    from bumpdiff_core.sweeps.definitions import get_sweep

    print(f"sweep book-tiny on the two-worker cluster against moto: {s3_sweep['seconds']:.1f} s")
    assert s3_sweep["code"] == 0, s3_sweep["stdout"][-3000:] + s3_sweep["stderr"][-3000:]
    sweep = get_sweep("book-tiny")
    fs, bucket = s3_sweep["fs"], s3_sweep["bucket"]
    for spec in sweep.runs():  # every run finished in the bucket
        assert fs.exists(f"{bucket}/data/runs/{spec.run_id}/COMPLETE"), spec.run_id
    out = s3_sweep["out"]
    for page in sweep.page_specs():  # the executed pages came back to the client
        nb = json.loads((out / "generated" / f"{page.name}.ipynb").read_text())
        assert not nb["metadata"]["papermill"]["exception"], page.name
        if page.needs:  # the digests of its runs' COMPLETE objects: what its freshness is judged by
            assert set(nb["metadata"]["bumpdiff"]["inputs"]) == {
                f"{s3_sweep['root']}/runs/{s.run_id}/COMPLETE" for s in page.needs}, page.name
    for folder in s3_sweep["worker_dirs"]:  # workers kept nothing of the runs
        assert not [p for p in folder.rglob("*") if p.name in ("COMPLETE", "manifest.json", "metrics.csv")]
    report_dir = s3_sweep["tmp"] / "reporter"
    report_dir.mkdir()
    env = dict(s3_sweep["env"], BUMPDIFF_DATA=s3_sweep["root"])
    rep = subprocess.run(bumpdiff_command() + ["report", "book-tiny", "--json"], env=env, cwd=report_dir,
                         capture_output=True, text=True, timeout=300)
    assert rep.returncode == 0, rep.stderr
    body = json.loads(rep.stdout)
    assert s3_sweep["main_id"] in rep.stdout and not body.get("missing")
    assert list(report_dir.iterdir()) == []  # it read the bucket, wrote nothing here


@pytest.mark.cluster
def test_a_worker_killed_mid_training_costs_no_result_and_the_run_resumes_exactly(s3_sweep, tiny_run):
    killed = s3_sweep["killed"]
    assert killed is not None, "the main run finished before a worker could be killed"
    assert not killed["complete"] and "step_0000060.safetensors" not in killed["states"], killed
    assert s3_sweep["code"] == 0
    fs, bucket, main_id = s3_sweep["fs"], s3_sweep["bucket"], s3_sweep["main_id"]
    # the rescheduled task resumed from the newest state in the bucket ...
    executed = (s3_sweep["out"] / "generated" / "runs" / f"{main_id}.ipynb").read_text()
    assert f"resuming {main_id} from step" in executed
    # ... and its final metrics equal those of the same run trained without interruption
    metrics = fs.cat_file(f"{bucket}/data/runs/{main_id}/metrics.csv")
    assert metrics == tiny_run.read_bytes(tiny_run.metrics_path)
    records = json.loads((s3_sweep["out"] / "generated" / "timings.json").read_text())["notebooks"]
    assert all(r["status"] == "ok" for r in records), records
