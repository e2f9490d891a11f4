"""From a config to a finished run: train, evaluate, mark complete. Finished runs cost nothing."""
from __future__ import annotations

import numpy as np

from bumpdiff_core.config import ConfigError, RunConfig
from bumpdiff_core.measure.evaluate import evaluate_run
from bumpdiff_core.runs.store import Run
from bumpdiff_core.learn.train import Trainer


def ensure_run(config: RunConfig, device=None, threads: int | None = None, progress: bool = True,
               root=None) -> Run:
    """Return the finished run for `config`, computing whatever is missing or damaged.

    A second process asking for the same run waits on its lock and then finds it finished.
    Every recorded file is checked against manifest.json first: damaged ones are reported with
    their path, removed, and recomputed (checkpoints and train states by retraining from the
    newest intact state before them; training is deterministic, so they come back identical).
    """
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ConfigError("threads", f"must be a whole number >= 1; got {threads!r}")
    run = Run.create_or_open(config, root)
    if run.is_complete and not run.verify():
        return run
    with run.lock(on_wait=lambda: print(f"waiting: {run.path} is being computed by another process", flush=True)):
        run.remove_stale_temps()  # leftovers of a killed writer; we hold the lock, nobody writes
        damaged = run.verify()
        if run.is_complete and not damaged:
            return run
        run.unmark_complete()
        regenerate_from = None
        for path, problem in damaged:
            print(f"warning: {path}: {problem}; recomputing it", flush=True)
            run.remove(path)
            step = run.checkpoint_step(path)
            if step is not None:
                regenerate_from = step if regenerate_from is None else min(regenerate_from, step)
        trainer = Trainer(run, device=device, threads=threads, progress=progress)
        trainer.train(resume_at_most=regenerate_from)
        run.save_arrays(run.losses_path, losses=np.asarray(trainer.losses, dtype=np.float32))
        evaluate_run(run, device=device, progress=progress)
        run.mark_complete()
    return run
