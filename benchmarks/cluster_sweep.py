"""A sweep on a two-worker Dask cluster without a shared disk: S3 (moto's server) vs a local folder.

Starts an S3 endpoint (`python -m moto.server`), a `dask scheduler` and two `dask worker`
processes (one thread each, each in an empty folder of its own), then runs the same
`bumpdiff sweep SWEEP --scheduler ...` twice from a client folder, from empty data roots: once with
BUMPDIFF_DATA=s3://bucket/data, once with a local folder. Prints both wall times, their ratio, the
stage times from timings.json, and how many objects and bytes the bucket holds afterwards.
Needs the test extra (moto[server], s3fs).
Run: .venv/bin/python benchmarks/cluster_sweep.py [--sweep book-tiny]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 60) -> None:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            opener.open(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    sys.exit(f"{url}: no answer")


def bumpdiff() -> list[str]:
    script = BIN / "bumpdiff"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bumpdiff_core"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default="book-tiny")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bumpdiff-cluster-"))
    s3_port, port = free_port(), free_port()
    endpoint, address = f"http://127.0.0.1:{s3_port}", f"tcp://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BUMPDIFF_"))}
    env.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost",
               NUMBA_CACHE_DIR=str(tmp / "numba_cache"))
    procs = []

    def start(name, cmd):
        (tmp / name).mkdir()
        procs.append(subprocess.Popen(cmd, cwd=tmp / name, env=env, stdout=subprocess.DEVNULL,
                                      stderr=open(tmp / f"{name}.log", "w")))

    try:
        start("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)])
        wait_http(endpoint + "/")
        start("scheduler", [str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                            "--no-dashboard"])
        for w in ("w0", "w1"):
            start(w, [str(BIN / "dask"), "worker", address, "--name", w, "--nthreads", "1", "--host", "127.0.0.1",
                      "--no-dashboard", "--local-directory", str(tmp / w)])
        from distributed import Client
        time.sleep(2)
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
        import s3fs
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        results = {}
        for kind, root in (("s3", "s3://bench/data"), ("local", str(tmp / "local-data"))):
            client_dir = tmp / f"client-{kind}"
            client_dir.mkdir()
            started = time.time()
            proc = subprocess.run(bumpdiff() + ["sweep", args.sweep, "--scheduler", address, "--out", "book",
                                                "--data", root], cwd=client_dir, env=env, capture_output=True,
                                  text=True)
            seconds = time.time() - started
            if proc.returncode != 0:
                sys.exit(f"{kind}: sweep failed\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
            timings = json.loads((client_dir / "book" / "generated" / "timings.json").read_text())
            results[kind] = (seconds, timings)
            print(f"{kind:5s}: {seconds:6.1f} s wall (train stage {timings['train_stage_seconds']:.1f} s, "
                  f"pages {timings['analysis_stage_seconds']:.1f} s; {timings['runs']} runs, "
                  f"{timings['pages']} pages)", flush=True)
        objects = fs.find("bench/data")
        size = sum(fs.size(p) for p in objects)
        print(f"s3 / local wall time: {results['s3'][0] / results['local'][0]:.2f}; bucket: {len(objects)} objects, "
              f"{size / 1e6:.1f} MB")
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
