"""Fault injection, for the reliability tests only: kill this process at a named point.

Inert unless $BUMPDIFF_FAULT is set. Every file write of the store (bumpdiff_core/runs/atomic.py), the
training loop (bumpdiff_core/learn/train.py) and UMAP (bumpdiff_core/measure/manifold.py) call `fault_point` at
the places where a killed process could leave damage behind; tests/test_reliability_interrupt.py
kills real processes there and checks that a rerun repairs the damage.
"""
from __future__ import annotations

import os
import signal

ENV = "BUMPDIFF_FAULT"

_hits: dict[str, int] = {}


def fault_point(point: str, target: str = "") -> None:
    """SIGKILL this process at a named point when $BUMPDIFF_FAULT asks for it (inert when unset).

    BUMPDIFF_FAULT = "<point>[:<target>][#<nth>]" kills at the nth (default first) time the point
    is reached with a matching target. Points: `step:<s>` (inside training step s, gradients
    computed, optimizer step not yet taken), `save:<path tail>` (just before that file's write
    starts), `write:<path tail>` (half the file written to its temporary file), `umap` (inside a
    UMAP embedding).
    """
    spec = os.environ.get(ENV)
    if not spec:
        return
    spec, _, nth = spec.partition("#")
    want_point, _, want_target = spec.partition(":")
    if want_point != point or (want_target and target != want_target
                               and not target.endswith("/" + want_target)):
        return
    _hits[spec] = _hits.get(spec, 0) + 1
    if _hits[spec] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
