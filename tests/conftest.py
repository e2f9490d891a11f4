"""Shared fixtures. Runs go to temporary data roots: tests never touch ./data."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One finished `tiny` run (trained and evaluated once per test session, ~20-40 s on 1 thread)."""
    from bumpdiff_core.config import profile_config
    from bumpdiff_core.execute.pipeline import ensure_run

    root = tmp_path_factory.mktemp("tiny_run_data")
    # UMAP's numba cache would otherwise land under ./data
    os.environ.setdefault("NUMBA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "numba_cache"))
    return ensure_run(profile_config("tiny"), threads=1, progress=False, root=root)


# --- the CLI's own tiny run, and a data root that is never ./data ---------------------

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _isolated_data_root(tmp_path_factory):
    """Any test that forgets to pick a data root writes to a temporary one, never to ./data."""
    if "BUMPDIFF_DATA" not in os.environ:
        os.environ["BUMPDIFF_DATA"] = str(tmp_path_factory.mktemp("default_data_root"))
    os.environ.setdefault("NUMBA_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "numba_cache"))


def bumpdiff_command() -> list[str]:
    """The installed `bumpdiff` console script when present (what a user runs), else `-m`."""
    script = Path(sys.executable).with_name("bumpdiff")
    return [str(script)] if script.exists() else [sys.executable, "-m", "bumpdiff_core"]


def run_bumpdiff(args, data_root, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, BUMPDIFF_DATA=str(data_root))
    env.pop("BUMPDIFF_FAULT", None)
    return subprocess.run(bumpdiff_command() + [str(a) for a in args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def child_cpu_seconds() -> float:
    """User + system CPU time of this process's finished children (a subprocess.run is one)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CliRun:
    """A `bumpdiff train tiny` done by the real command line: what it printed, its wall-clock
    seconds and its CPU seconds (the latter do not grow when other work shares the machine)."""

    def __init__(self, data_root: Path, result: subprocess.CompletedProcess, seconds: float,
                 cpu_seconds: float):
        self.data_root, self.result, self.seconds, self.cpu_seconds = data_root, result, seconds, cpu_seconds
        lines = result.stdout.strip().splitlines()
        self.run_dir = Path(lines[-1]) if lines else None


@pytest.fixture(scope="session")
def cli_tiny_run(tmp_path_factory) -> CliRun:
    """`bumpdiff train tiny --threads 1 --quiet` in a fresh data root, timed (train + evaluate)."""
    root = tmp_path_factory.mktemp("cli_tiny_data")
    started, cpu_started = time.perf_counter(), child_cpu_seconds()
    result = run_bumpdiff(["train", "tiny", "--threads", "1", "--quiet"], root)
    seconds, cpu_seconds = time.perf_counter() - started, child_cpu_seconds() - cpu_started
    assert result.returncode == 0, result.stderr
    return CliRun(root, result, seconds, cpu_seconds)


@pytest.fixture(scope="session")
def bumpdiff_cli():
    """`bumpdiff_cli(args, data_root)` runs the command line in a subprocess."""
    return run_bumpdiff


# --- the book built once per session from the `book-tiny` sweep ----------------------

class TinyBook:
    """A copy of book/ with the `book-tiny` sweep executed into it and built strictly."""

    def __init__(self, book: Path, data_root: Path, sweep_seconds: float, build_seconds: float):
        self.book, self.data_root = book, data_root
        self.html = book / "_build" / "html"
        self.sweep_seconds, self.build_seconds = sweep_seconds, build_seconds


@pytest.fixture(scope="session")
def tiny_book(tmp_path_factory) -> TinyBook:
    """`bumpdiff sweep book-tiny` (local Dask, 2 workers) then `jupyter-book build -W -n --keep-going`."""
    import shutil

    base = tmp_path_factory.mktemp("tiny_book")
    book, data = base / "book", base / "data"
    shutil.copytree(Path(__file__).resolve().parent.parent / "book", book,
                    ignore=shutil.ignore_patterns("_build", "generated", "_toc.yml"))
    started = time.perf_counter()
    sweep = run_bumpdiff(["sweep", "book-tiny", "--workers", "2", "--out", book], data, timeout=900)
    sweep_seconds = time.perf_counter() - started
    assert sweep.returncode == 0, f"sweep failed:\n{sweep.stdout}\n{sweep.stderr[-3000:]}"
    started = time.perf_counter()
    build = subprocess.run([str(Path(sys.executable).with_name("jupyter-book")), "build", str(book),
                            "-W", "-n", "--keep-going"], capture_output=True, text=True, timeout=600)
    build_seconds = time.perf_counter() - started
    assert build.returncode == 0, f"book build failed:\n{build.stdout[-5000:]}\n{build.stderr[-5000:]}"
    return TinyBook(book, data, sweep_seconds, build_seconds)
