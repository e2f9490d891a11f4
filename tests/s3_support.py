"""An S3 endpoint for tests: moto's server mode, a real HTTP server in a subprocess.

Use from a test module with ``from s3_support import moto_server, s3_env, s3_root  # noqa: F401``.

* ``moto_server`` (session): starts ``python -m moto.server -H 127.0.0.1 -p <free port>``, waits
  until it answers, yields a `MotoServer` (``.endpoint``, ``.env``: the variables a subprocess
  needs) and kills it at the end. Skips (with the reason) when moto, its server extra, or s3fs is
  not installed.
* ``s3_env`` (function): sets AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID=testing,
  AWS_SECRET_ACCESS_KEY=testing, AWS_DEFAULT_REGION=us-east-1 through monkeypatch (and drops
  AWS_PROFILE / session tokens that would shadow them), so the standard botocore variables are
  the only configuration: s3fs reads AWS_ENDPOINT_URL itself.
* ``s3_root`` (function): a fresh bucket per test; yields ``"s3://bucket-<uuid>/data"``.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest


class MotoServer:
    def __init__(self, endpoint: str, log: Path):
        self.endpoint, self.log = endpoint, log
        self.env = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",  # never probe an instance metadata service
        }


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy
    try:
        with opener.open(url, timeout=1) as r:
            return r.status < 500
    except urllib.error.HTTPError as e:
        return e.code < 500
    except OSError:
        return False


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    pytest.importorskip("moto", reason="moto is not installed (pip install -e .[test])")
    pytest.importorskip("moto.server", reason="moto's server mode needs moto[server] (flask, werkzeug)")
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e .[test])")
    log = tmp_path_factory.mktemp("moto") / "server.log"
    proc = endpoint = None
    for _attempt in range(3):  # the free port may be taken between probing and binding
        port = _free_port()
        endpoint = f"http://127.0.0.1:{port}"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                    stdout=out, stderr=subprocess.STDOUT,
                                    env=dict(os.environ, NO_PROXY="127.0.0.1,localhost"))
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and not _answers(endpoint + "/"):
            time.sleep(0.1)
        if proc.poll() is None and _answers(endpoint + "/"):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"moto server did not start; its log:\n{log.read_text()[-3000:]}")
    try:
        yield MotoServer(endpoint, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        try:  # cached S3FileSystem instances point at the dead endpoint
            import s3fs
            s3fs.S3FileSystem.clear_instance_cache()
        except Exception:
            pass


@pytest.fixture
def s3_env(moto_server, monkeypatch):
    for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(var, raising=False)
    for var, value in moto_server.env.items():
        monkeypatch.setenv(var, value)
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    monkeypatch.setenv("NO_PROXY", no_proxy)
    monkeypatch.setenv("no_proxy", no_proxy)
    return moto_server.env


@pytest.fixture
def s3_root(s3_env):
    """``s3://bucket-<uuid>/data`` in a bucket made for this test (deleted afterwards)."""
    import s3fs

    fs = s3fs.S3FileSystem()  # endpoint and credentials from the environment only
    bucket = f"bucket-{uuid.uuid4().hex[:20]}"
    fs.mkdir(bucket)
    try:
        yield f"s3://{bucket}/data"
    finally:
        try:
            fs.rm(bucket, recursive=True)
        except Exception:
            pass
